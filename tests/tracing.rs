//! The `tracing` feature: the events a connection emits, captured by a
//! small subscriber written here (no subscriber crate needed): a refused
//! handshake, a protocol error, a clean close. Each event is recorded with
//! its fields and the `role` of the connection span it happened in.

mod common;

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use common::{client_frame, op, request_with_fields, server_and_raw_peer, ws_pair};
use futures_util::StreamExt;
use silverback::{CloseFrame, Config, Error, Upgrader};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

/// One captured event: its fields as text, `role` from its span.
type Fields = HashMap<String, String>;

#[derive(Default)]
struct Capture {
    next_id: AtomicU64,
    /// The fields each span was created or recorded with.
    spans: Mutex<HashMap<u64, Fields>>,
    /// The spans entered, innermost last (the tests run on one thread).
    stack: Mutex<Vec<u64>>,
    events: Mutex<Vec<Fields>>,
}

struct Collect<'a>(&'a mut Fields);

impl Visit for Collect<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
}

#[derive(Clone, Default)]
struct Shared(Arc<Capture>);

impl Subscriber for Shared {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, span: &Attributes<'_>) -> Id {
        let id = self.0.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let mut fields = Fields::new();
        span.record(&mut Collect(&mut fields));
        self.0.spans.lock().unwrap().insert(id, fields);
        Id::from_u64(id)
    }
    fn record(&self, span: &Id, values: &Record<'_>) {
        let mut spans = self.0.spans.lock().unwrap();
        values.record(&mut Collect(spans.entry(span.into_u64()).or_default()));
    }
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut fields = Fields::new();
        event.record(&mut Collect(&mut fields));
        if let Some(span) = self.0.stack.lock().unwrap().last() {
            if let Some(role) = self.0.spans.lock().unwrap().get(span).and_then(|f| f.get("role")) {
                fields.insert("span.role".to_owned(), role.clone());
            }
        }
        self.0.events.lock().unwrap().push(fields);
    }
    fn enter(&self, span: &Id) {
        self.0.stack.lock().unwrap().push(span.into_u64());
    }
    fn exit(&self, span: &Id) {
        let mut stack = self.0.stack.lock().unwrap();
        if let Some(at) = stack.iter().rposition(|id| *id == span.into_u64()) {
            stack.remove(at);
        }
    }
}

impl Shared {
    /// The captured events whose message is `message`.
    fn events(&self, message: &str) -> Vec<Fields> {
        let events = self.0.events.lock().unwrap();
        events.iter().filter(|e| e.get("message").is_some_and(|m| m == message)).cloned().collect()
    }
}

fn capture() -> (Shared, tracing::subscriber::DefaultGuard) {
    let capture = Shared::default();
    let guard = tracing::subscriber::set_default(capture.clone());
    (capture, guard)
}

/// The default origin policy refuses a cross-origin request with 403: one
/// event, with the status and why.
#[tokio::test]
async fn a_refused_handshake_emits_its_status() {
    let (capture, _guard) = capture();
    let (server_io, mut client_io) = tokio::io::duplex(1 << 16);
    let request = request_with_fields("Origin: https://evil.example\r\n");
    client_io.write_all(request.as_bytes()).await.unwrap();
    let result = Upgrader::new().accept(server_io).await;
    assert!(result.is_err());
    let mut response = vec![0; 12];
    client_io.read_exact(&mut response).await.unwrap();
    assert_eq!(&response, b"HTTP/1.1 403");

    let refused = capture.events("handshake refused");
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0]["status"], "403");
    assert!(refused[0]["reason"].contains("origin"), "{refused:?}");
}

/// A frame with RSV1 set and no extension is a protocol error: the close
/// code sent (1002) is in one event, inside the connection's span.
#[tokio::test]
async fn a_protocol_error_emits_the_close_code() {
    let (capture, _guard) = capture();
    let (mut ws, mut peer) = server_and_raw_peer(Config::default(), 1 << 16);
    peer.write_all(&client_frame(true, 0x4, op::TEXT, b"x")).await.unwrap();
    assert!(matches!(ws.next().await, Some(Err(Error::Protocol(_)))));

    let failed = capture.events("connection failed, closing with an error code");
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0]["code"], "1002");
    assert_eq!(failed[0]["span.role"], "server");
}

/// A clean close: each side emits one event naming the code and the side
/// that started the closing handshake.
#[tokio::test]
async fn a_clean_close_emits_the_code_and_who_started_it() {
    let (capture, _guard) = capture();
    let (mut client, mut server) = ws_pair(Config::default(), 1 << 16);
    let server_task = async {
        while let Some(msg) = server.next().await {
            msg.unwrap();
        }
    };
    let (closed, ()) = tokio::join!(client.close(Some(CloseFrame::new(4000u16.into(), "done"))), server_task);
    closed.unwrap();

    let started = capture.events("closing handshake started");
    assert_eq!(started.len(), 2, "one per side: {started:?}");
    let by_role = |role: &str| started.iter().find(|e| e["span.role"] == role).cloned().unwrap();
    let (ours, theirs) = (by_role("client"), by_role("server"));
    assert_eq!((ours["initiator"].as_str(), ours["code"].as_str()), ("local", "4000"));
    assert_eq!(ours["reason"], "done");
    assert_eq!((theirs["initiator"].as_str(), theirs["code"].as_str()), ("peer", "4000"));
    assert!(capture.events("connection failed, closing with an error code").is_empty());
}

/// A connection upgraded through hyper records the agreed subprotocol in
/// its span, as `accept` does.
#[cfg(feature = "hyper")]
#[tokio::test]
async fn a_hyper_upgrade_records_the_subprotocol_in_its_span() {
    use hyper::service::service_fn;
    use hyper_util::rt::TokioIo;
    use silverback::Connector;

    let (capture, _guard) = capture();
    let (server_io, client_io) = tokio::io::duplex(1 << 16);
    let upgrader = Upgrader::new().subprotocols(["chat.v2"]);
    let (upgraded_tx, upgraded_rx) = tokio::sync::oneshot::channel();
    let upgraded_tx = Mutex::new(Some(upgraded_tx));
    let service = service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
        let (response, upgrade) = upgrader.upgrade_hyper(&mut req).expect("upgrade accepted");
        if let Some(tx) = upgraded_tx.lock().unwrap().take() {
            tokio::spawn(async move {
                let _ = tx.send(upgrade.await);
            });
        }
        async move { Ok::<_, std::convert::Infallible>(response) }
    });
    // The runtime has one thread, so the spawned task sees the subscriber.
    tokio::spawn(
        hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(server_io), service).with_upgrades(),
    );
    let connector = Connector::new().subprotocols(["chat.v2"]);
    let span = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        let (_client, response) = connector.connect_on(client_io, "ws://a.example/chat").await.unwrap();
        assert_eq!(response.headers()["sec-websocket-protocol"], "chat.v2");
        let _server_ws = upgraded_rx.await.unwrap().unwrap();
        let spans = capture.0.spans.lock().unwrap();
        let server_span = spans.values().find(|f| f.get("role").is_some_and(|r| r == "server")).cloned();
        server_span.expect("a server span")
    })
    .await
    .expect("test timed out");
    assert_eq!(span.get("subprotocol").map(String::as_str), Some("chat.v2"), "{span:?}");
}
