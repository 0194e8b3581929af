//! WebSockets over HTTP/2 (RFC 8441), loopback: silverback's client
//! (`Connector::http2_connect`) against `Upgrader::upgrade_hyper` on hyper's
//! HTTP/2 server, over h2c and TLS; a raw HTTP/2 client (the h2 crate) for
//! bad requests and stream resets. Every test bounds itself.

mod common;

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http::{Method, Request, StatusCode, Version};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use silverback::rustls::ClientConfig;
use silverback::tokio_rustls::TlsAcceptor;
use silverback::{
    CloseCode, Config, Connector, DeflateConfig, Error, HandshakeError, Message, ProtocolError, Shutdown, Upgrader,
};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// Fails the test instead of hanging.
async fn bounded<F: Future>(fut: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(20), fut).await.expect("test timed out")
}

/// What the server did with one request.
#[derive(Debug)]
enum Outcome {
    /// Upgraded over this version; whether the stream compresses.
    Upgraded { version: Version, compressing: bool },
    /// Refused with this error.
    Refused(HandshakeError),
    /// A WebSocket ended with this error.
    Ended(Error),
}

/// How the server speaks.
#[derive(Clone)]
enum Mode {
    /// HTTP/2 only, plain TCP (h2c); extended CONNECT on or off.
    H2c { connect: bool },
    /// HTTP/1.1 and HTTP/2 on plain TCP (hyper-util's auto builder), extended
    /// CONNECT off.
    AutoNoConnect,
    /// HTTP/2 over TLS (ALPN h2), extended CONNECT on.
    Tls(TlsAcceptor),
}

/// A server on a fresh loopback port: `/sink` holds the WebSocket without
/// ever reading it, every other path echoes.
async fn server(upgrader: Upgrader, mode: Mode) -> (SocketAddr, mpsc::UnboundedReceiver<Outcome>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (report, outcomes) = mpsc::unbounded_channel();
    let upgrader = Arc::new(upgrader);
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let (upgrader, report, mode) = (upgrader.clone(), report.clone(), mode.clone());
            let service = service_fn(move |mut req: hyper::Request<Incoming>| {
                let (report, version, path) = (report.clone(), req.version(), req.uri().path().to_owned());
                let decided = upgrader.upgrade_hyper(&mut req);
                async move {
                    Ok::<_, Infallible>(match decided {
                        Ok((response, upgrade)) => {
                            tokio::spawn(async move {
                                let Ok(mut ws) = upgrade.await else { return };
                                let compressing = ws.is_compressing();
                                let _ = report.send(Outcome::Upgraded { version, compressing });
                                if path == "/sink" {
                                    tokio::time::sleep(Duration::from_secs(30)).await;
                                    return;
                                }
                                while let Some(msg) = ws.next().await {
                                    match msg {
                                        Ok(msg) if msg.is_text() || msg.is_binary() => {
                                            if ws.send(msg).await.is_err() {
                                                break;
                                            }
                                        }
                                        Ok(_) => {}
                                        Err(err) => {
                                            let _ = report.send(Outcome::Ended(err));
                                            break;
                                        }
                                    }
                                }
                            });
                            response
                        }
                        Err(refusal) => {
                            let _ = report.send(Outcome::Refused(refusal.error()));
                            refusal.into_response()
                        }
                    })
                }
            });
            tokio::spawn(async move {
                match mode {
                    Mode::H2c { connect } => {
                        let mut builder = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
                        if connect {
                            builder.enable_connect_protocol();
                        }
                        // A stalled stream holds at most its window of the
                        // connection's: room for the others.
                        builder.initial_stream_window_size(64 * 1024).initial_connection_window_size(1024 * 1024);
                        let _ = builder.serve_connection(TokioIo::new(tcp), service).await;
                    }
                    Mode::AutoNoConnect => {
                        let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                        let _ = builder.serve_connection_with_upgrades(TokioIo::new(tcp), service).await;
                    }
                    Mode::Tls(acceptor) => {
                        let Ok(tls) = acceptor.accept(tcp).await else { return };
                        let mut builder = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
                        builder.enable_connect_protocol();
                        let _ = builder.serve_connection(TokioIo::new(tls), service).await;
                    }
                }
            });
        }
    });
    (addr, outcomes)
}

/// The next outcome the server reports.
async fn next(outcomes: &mut mpsc::UnboundedReceiver<Outcome>) -> Outcome {
    bounded(outcomes.recv()).await.expect("server gone")
}

/// A connector that never uses a proxy from the environment.
fn connector() -> Connector {
    Connector::new().no_proxy()
}

/// Sends `text` and expects it back.
async fn round_trip<S>(ws: &mut silverback::WebSocketStream<S>, text: &str)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    ws.send(Message::text(text)).await.unwrap();
    let echoed = bounded(ws.next()).await.expect("stream ended").unwrap();
    assert_eq!(echoed.as_text(), Some(text));
}

#[tokio::test]
async fn h2c_several_websockets_on_one_connection() {
    let (addr, mut outcomes) = server(Upgrader::new(), Mode::H2c { connect: true }).await;
    let h2 = bounded(connector().http2_connect(&format!("ws://{addr}"))).await.unwrap();
    assert!(h2.is_http2());
    let mut streams = Vec::new();
    for path in ["/a", "/b?x=1", "/c"] {
        let (ws, response) = bounded(h2.open(path)).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert!(response.headers().get("sec-websocket-accept").is_none());
        assert_eq!(response.version(), Version::HTTP_2);
        streams.push(ws);
        assert!(matches!(next(&mut outcomes).await, Outcome::Upgraded { version: Version::HTTP_2, .. }));
    }
    // Concurrently, interleaved.
    let tasks: Vec<_> = streams
        .into_iter()
        .enumerate()
        .map(|(i, mut ws)| {
            tokio::spawn(async move {
                for n in 0..50 {
                    round_trip(&mut ws, &format!("stream {i} message {n}")).await;
                }
                ws.close(None).await.unwrap();
            })
        })
        .collect();
    for task in tasks {
        bounded(task).await.unwrap();
    }
    assert!(!h2.is_closed());
}

/// A self-signed certificate for localhost, a server acceptor offering h2
/// only, and a client configuration trusting it.
fn tls_pair() -> (TlsAcceptor, Arc<ClientConfig>) {
    let cert = common::LocalhostCert::generate();
    (TlsAcceptor::from(Arc::new(cert.server(false, &[b"h2"]))), cert.client())
}

#[tokio::test]
async fn tls_h2_with_subprotocol_and_compression() {
    let (acceptor, client_tls) = tls_pair();
    let upgrader = Upgrader::new().subprotocols(["chat"]).deflate(DeflateConfig::default());
    let (addr, mut outcomes) = server(upgrader, Mode::Tls(acceptor)).await;
    let connector =
        connector().tls_config(client_tls).subprotocols(["other", "chat"]).deflate(DeflateConfig::default());
    let url = format!("wss://localhost:{}", addr.port());
    let h2 = bounded(connector.http2_connect(&url)).await.unwrap();
    let (mut ws, response) = bounded(h2.open("/chat")).await.unwrap();
    assert_eq!(response.headers()["sec-websocket-protocol"], "chat");
    assert!(response.headers()["sec-websocket-extensions"].to_str().unwrap().starts_with("permessage-deflate"));
    assert!(ws.is_compressing());
    assert!(matches!(next(&mut outcomes).await, Outcome::Upgraded { version: Version::HTTP_2, compressing: true }));
    round_trip(&mut ws, &"compressible ".repeat(1000)).await;
    ws.close(None).await.unwrap();
}

#[tokio::test]
async fn one_stalled_reader_does_not_stop_the_other_streams() {
    let (addr, mut outcomes) = server(Upgrader::new(), Mode::H2c { connect: true }).await;
    let connector = connector().config(Config::default().write_buffer_size(16 * 1024));
    let h2 = bounded(connector.http2_connect(&format!("ws://{addr}"))).await.unwrap();
    let (mut sink, _) = bounded(h2.open("/sink")).await.unwrap();
    let (mut echo, _) = bounded(h2.open("/echo")).await.unwrap();
    for _ in 0..2 {
        assert!(matches!(next(&mut outcomes).await, Outcome::Upgraded { .. }));
    }
    // The sink never reads: sending to it must come to wait, with a bounded
    // amount accepted (the stream window, 64 KiB here, plus the buffers on
    // the way: the write buffer, hyper's one-chunk channel, the socket's).
    let chunk = Bytes::from(vec![7u8; 16 * 1024]);
    let mut accepted = 0usize;
    let wait = Duration::from_millis(300);
    while let Ok(sent) = tokio::time::timeout(wait, sink.send(Message::binary(chunk.clone()))).await {
        sent.unwrap();
        accepted += chunk.len();
        assert!(accepted < 1024 * 1024, "send never waited: {accepted} bytes accepted");
    }
    assert!(accepted >= 16 * 1024, "{accepted}");
    // Meanwhile the other stream flows, many times the sink's window.
    for n in 0..20 {
        let big = format!("{n}{}", "x".repeat(32 * 1024));
        round_trip(&mut echo, &big).await;
    }
}

#[tokio::test]
async fn without_extended_connect_the_client_fails_or_falls_back() {
    let (addr, _outcomes) = server(Upgrader::new(), Mode::H2c { connect: false }).await;
    let err = bounded(connector().http2_connect(&format!("ws://{addr}"))).await.unwrap_err();
    assert!(matches!(err, Error::Handshake(HandshakeError::ExtendedConnectNotEnabled)), "{err:?}");

    let (addr, mut outcomes) = server(Upgrader::new(), Mode::AutoNoConnect).await;
    let err = bounded(connector().http2_connect(&format!("ws://{addr}"))).await.unwrap_err();
    assert!(matches!(err, Error::Handshake(HandshakeError::ExtendedConnectNotEnabled)), "{err:?}");
    let h2 = bounded(connector().allow_http1_fallback().http2_connect(&format!("ws://{addr}"))).await.unwrap();
    assert!(!h2.is_http2());
    let (mut ws, response) = bounded(h2.open("/fallback")).await.unwrap();
    assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
    assert_eq!(response.version(), Version::HTTP_11);
    assert!(matches!(next(&mut outcomes).await, Outcome::Upgraded { version: Version::HTTP_11, .. }));
    round_trip(&mut ws, "over http/1.1").await;
}

/// A raw HTTP/2 client (h2 crate) on a new connection to `addr`.
async fn raw_client(addr: SocketAddr) -> h2::client::SendRequest<Bytes> {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (send, connection) = h2::client::handshake(tcp).await.unwrap();
    tokio::spawn(connection);
    send
}

/// An extended CONNECT for `/ws` with `protocol` (none: a plain CONNECT).
fn raw_request(addr: SocketAddr, protocol: Option<&str>, fields: &[(&str, &str)]) -> Request<()> {
    let uri = match protocol {
        Some(_) => format!("http://{addr}/ws"),
        None => addr.to_string(),
    };
    let mut request = Request::builder().method(Method::CONNECT).uri(uri).header("sec-websocket-version", "13");
    for (name, value) in fields {
        request = request.header(*name, *value);
    }
    let mut request = request.body(()).unwrap();
    if let Some(protocol) = protocol {
        request.extensions_mut().insert(h2::ext::Protocol::from(protocol));
    }
    request
}

/// Sends `request` and answers the status, and the stream, left open
/// (dropping it resets the stream).
async fn raw_status(
    send: &mut h2::client::SendRequest<Bytes>,
    request: Request<()>,
) -> (StatusCode, h2::SendStream<Bytes>) {
    let mut ready = bounded(send.clone().ready()).await.unwrap();
    let (response, stream) = ready.send_request(request, false).unwrap();
    (bounded(response).await.unwrap().status(), stream)
}

#[tokio::test]
async fn bad_requests_are_refused_on_their_stream_only() {
    let (addr, mut outcomes) = server(Upgrader::new(), Mode::H2c { connect: true }).await;
    let mut send = raw_client(addr).await;
    let mut open = Vec::new();
    type Case<'a> = (Option<&'a str>, &'a [(&'a str, &'a str)], HandshakeError);
    let bad: [Case; 4] = [
        (None, &[], HandshakeError::MissingConnectProtocol),
        (Some("webtransport"), &[], HandshakeError::UnsupportedConnectProtocol),
        (Some("websocket"), &[("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")], HandshakeError::ForbiddenHttp2Field),
        (Some("websocket"), &[("origin", "https://evil.example")], HandshakeError::OriginRejected),
    ];
    for (protocol, fields, error) in bad {
        let (status, _) = raw_status(&mut send, raw_request(addr, protocol, fields)).await;
        assert_eq!(Some(status), error.status(), "{error:?}");
        match next(&mut outcomes).await {
            Outcome::Refused(refused) => assert_eq!(refused, error),
            other => panic!("{other:?}"),
        }
        // The connection carries on: a good request on it still works.
        let good = raw_request(addr, Some("websocket"), &[("origin", &format!("http://{addr}"))]);
        let (status, stream) = raw_status(&mut send, good).await;
        assert_eq!(status, StatusCode::OK);
        open.push(stream);
        assert!(matches!(next(&mut outcomes).await, Outcome::Upgraded { version: Version::HTTP_2, .. }));
    }
}

/// Opens a WebSocket with the raw client, sends the start of a 100-byte
/// masked text frame, then resets the stream with `reason`; answers what
/// the server's WebSocket ended with.
async fn reset_mid_message(reason: h2::Reason) -> Error {
    let (addr, mut outcomes) = server(Upgrader::new(), Mode::H2c { connect: true }).await;
    let mut send = raw_client(addr).await;
    let mut ready = bounded(send.clone().ready()).await.unwrap();
    let (response, mut stream) = ready.send_request(raw_request(addr, Some("websocket"), &[]), false).unwrap();
    assert_eq!(bounded(response).await.unwrap().status(), StatusCode::OK);
    assert!(matches!(next(&mut outcomes).await, Outcome::Upgraded { .. }));
    let mut partial = vec![0x81, 0x80 | 100, 1, 2, 3, 4];
    partial.extend_from_slice(&[b'a'; 10]);
    stream.send_data(Bytes::from(partial), false).unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    stream.send_reset(reason);
    // The connection survives the reset.
    let (status, _open) = raw_status(&mut send, raw_request(addr, Some("websocket"), &[])).await;
    assert_eq!(status, StatusCode::OK);
    loop {
        match next(&mut outcomes).await {
            Outcome::Ended(err) => return err,
            Outcome::Upgraded { .. } => {}
            other => panic!("{other:?}"),
        }
    }
}

#[tokio::test]
async fn a_stream_reset_mid_message_is_a_connection_reset() {
    match reset_mid_message(h2::Reason::INTERNAL_ERROR).await {
        Error::Io(err) => assert_eq!(err.kind(), io::ErrorKind::ConnectionReset, "{err:?}"),
        other => panic!("{other:?}"),
    }
    // hyper reports CANCEL as the end of the stream: no close frame came.
    match reset_mid_message(h2::Reason::CANCEL).await {
        Error::Protocol(ProtocolError::UnexpectedEof) => {}
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn shutdown_closes_http2_websockets_with_1001() {
    let shutdown = Shutdown::new();
    let (addr, mut outcomes) = server(Upgrader::new().shutdown(&shutdown), Mode::H2c { connect: true }).await;
    let h2 = bounded(connector().http2_connect(&format!("ws://{addr}"))).await.unwrap();
    let mut streams = Vec::new();
    for path in ["/one", "/two"] {
        let (mut ws, _) = bounded(h2.open(path)).await.unwrap();
        round_trip(&mut ws, path).await;
        streams.push(ws);
        assert!(matches!(next(&mut outcomes).await, Outcome::Upgraded { .. }));
    }
    shutdown.trigger();
    for mut ws in streams {
        loop {
            match bounded(ws.next()).await {
                Some(Ok(Message::Close(frame))) => {
                    assert_eq!(frame.map(|f| f.code), Some(CloseCode::GOING_AWAY));
                    break;
                }
                Some(Ok(_)) => {}
                other => panic!("{other:?}"),
            }
        }
    }
    bounded(shutdown.drained()).await;
    // New WebSockets are refused with 503 on their stream.
    let err = bounded(h2.open("/three")).await.unwrap_err();
    assert!(
        matches!(err, Error::Handshake(HandshakeError::UnexpectedStatus(StatusCode::SERVICE_UNAVAILABLE))),
        "{err:?}"
    );
}
