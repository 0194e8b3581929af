//! WebSockets over HTTP/3 (RFC 9220), loopback QUIC on 127.0.0.1: the
//! client (`Connector::http3_connect`) against `Upgrader::accept_h3` on a
//! quinn endpoint with rcgen certificates; raw requests through
//! `Http3Connection::send_request` for refusals and stream resets; a bare
//! quinn peer whose SETTINGS lack extended CONNECT. Every test bounds
//! itself.

mod common;

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http::{Method, Request, StatusCode, Version};
use silverback::http3::quinn;
use silverback::rustls::ClientConfig;
use silverback::{CloseCode, Config, Connector, DeflateConfig, Error, HandshakeError, Message, Shutdown, Upgrader};
use tokio::io::AsyncWriteExt;
use tokio::sync::{mpsc, watch};

/// Fails the test instead of hanging.
async fn bounded<F: Future>(fut: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(20), fut).await.expect("test timed out")
}

/// What the server did with one request.
#[derive(Debug)]
enum Outcome {
    /// Upgraded; the path, whether the stream compresses, the peer.
    Upgraded { path: String, compressing: bool, peer: SocketAddr },
    /// Refused with this error.
    Refused(Error),
    /// A WebSocket ended with this error.
    Ended(Error),
    /// `Http3Acceptor::accept` returned `None`.
    AcceptorDone,
}

/// A certificate for `localhost`: the server's QUIC configuration (ALPN
/// `h3`, a 64 KiB stream window) and a client TLS configuration trusting it.
fn tls_pair() -> (quinn::ServerConfig, Arc<ClientConfig>) {
    let cert = common::LocalhostCert::generate();
    let crypto = quinn::crypto::rustls::QuicServerConfig::try_from(cert.server(true, &[b"h3"])).unwrap();
    let mut quic = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    let mut transport = quinn::TransportConfig::default();
    transport.stream_receive_window(quinn::VarInt::from_u32(64 * 1024));
    quic.transport_config(Arc::new(transport));
    (quic, cert.client())
}

/// An HTTP/3 server on a fresh loopback UDP port: `/sink` holds the
/// WebSocket without reading it, every other path echoes. Returns the
/// URL, the client TLS configuration and the outcomes.
fn server(upgrader: Upgrader) -> (String, Arc<ClientConfig>, mpsc::UnboundedReceiver<Outcome>) {
    let (_goaway, never) = watch::channel(false);
    server_with(upgrader, never)
}

/// As [`server`], each connection shut down gracefully
/// (`Http3Acceptor::graceful_shutdown`) once `goaway` turns true.
fn server_with(
    upgrader: Upgrader,
    goaway: watch::Receiver<bool>,
) -> (String, Arc<ClientConfig>, mpsc::UnboundedReceiver<Outcome>) {
    let (quic, client_tls) = tls_pair();
    let endpoint = quinn::Endpoint::server(quic, "127.0.0.1:0".parse().unwrap()).unwrap();
    let port = endpoint.local_addr().unwrap().port();
    let (report, outcomes) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(incoming) = endpoint.accept().await {
            let (upgrader, report, mut goaway) = (upgrader.clone(), report.clone(), goaway.clone());
            tokio::spawn(async move {
                let Ok(quic) = incoming.await else { return };
                let mut acceptor = upgrader.accept_h3(quic).await.unwrap();
                let peer = acceptor.remote_address();
                let mut gone_away = false;
                loop {
                    let accepted = tokio::select! {
                        accepted = acceptor.accept() => accepted,
                        Ok(_) = goaway.wait_for(|&on| on), if !gone_away => {
                            acceptor.graceful_shutdown();
                            gone_away = true;
                            continue;
                        }
                    };
                    let Some(accepted) = accepted else { break };
                    let (mut ws, request) = match accepted {
                        Ok(accepted) => accepted,
                        Err(err) => {
                            let _ = report.send(Outcome::Refused(err));
                            continue;
                        }
                    };
                    let path = request.uri().path().to_owned();
                    let _ =
                        report.send(Outcome::Upgraded { path: path.clone(), compressing: ws.is_compressing(), peer });
                    let report = report.clone();
                    tokio::spawn(async move {
                        if let Some(err) = common::echo_or_sink(&mut ws, &path).await {
                            let _ = report.send(Outcome::Ended(err));
                        }
                    });
                }
                let _ = report.send(Outcome::AcceptorDone);
            });
        }
    });
    (format!("wss://localhost:{port}"), client_tls, outcomes)
}

async fn next(outcomes: &mut mpsc::UnboundedReceiver<Outcome>) -> Outcome {
    bounded(outcomes.recv()).await.expect("server gone")
}

/// Sends `text` and expects it back.
async fn round_trip(ws: &mut silverback::http3::H3WebSocket, text: &str) {
    ws.send(Message::text(text)).await.unwrap();
    let echoed = bounded(ws.next()).await.expect("stream ended").unwrap();
    assert_eq!(echoed.as_text(), Some(text));
}

#[tokio::test]
async fn echo_and_a_clean_close() {
    let (url, tls, mut outcomes) = server(Upgrader::new());
    let h3 = bounded(Connector::new().tls_config(tls).http3_connect(&url)).await.unwrap();
    let (mut ws, response) = bounded(h3.open("/echo?x=1")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.version(), Version::HTTP_3);
    assert!(!ws.is_compressing());
    match next(&mut outcomes).await {
        Outcome::Upgraded { path, .. } => assert_eq!(path, "/echo"),
        other => panic!("{other:?}"),
    }
    round_trip(&mut ws, "hello over quic").await;
    // Larger than a DATA frame and than the stream window.
    let big = "y".repeat(300 * 1024);
    round_trip(&mut ws, &big).await;
    ws.send(Message::binary(Bytes::from_static(&[1, 2, 3]))).await.unwrap();
    let echoed = bounded(ws.next()).await.unwrap().unwrap();
    assert_eq!(echoed.into_data(), Bytes::from_static(&[1, 2, 3]));
    bounded(ws.close(None)).await.unwrap();
    // `close` returned once the server's close came back (the closing
    // handshake over the stream); nothing follows it.
    assert!(bounded(ws.next()).await.is_none());
    assert!(!h3.is_closed());
}

#[tokio::test]
async fn several_websockets_on_one_connection_concurrently() {
    let (url, tls, mut outcomes) = server(Upgrader::new());
    let h3 = bounded(Connector::new().tls_config(tls).http3_connect(&url)).await.unwrap();
    let mut tasks = Vec::new();
    for n in 0..6 {
        let h3 = h3.clone();
        tasks.push(tokio::spawn(async move {
            let (mut ws, _) = bounded(h3.open(&format!("/ws{n}"))).await.unwrap();
            for i in 0..20 {
                round_trip(&mut ws, &format!("{n}:{i}:{}", "z".repeat(i * 500))).await;
            }
            ws.close(None).await.unwrap();
        }));
    }
    for task in tasks {
        bounded(task).await.unwrap();
    }
    let mut peers = Vec::new();
    for _ in 0..6 {
        match next(&mut outcomes).await {
            Outcome::Upgraded { peer, .. } => peers.push(peer),
            other => panic!("{other:?}"),
        }
    }
    peers.dedup();
    assert_eq!(peers.len(), 1, "one QUIC connection: {peers:?}");
}

#[tokio::test]
async fn subprotocol_and_permessage_deflate() {
    let upgrader = Upgrader::new().subprotocols(["chat"]).deflate(DeflateConfig::default());
    let (url, tls, mut outcomes) = server(upgrader);
    let connector = Connector::new().tls_config(tls).subprotocols(["other", "chat"]).deflate(DeflateConfig::default());
    let h3 = bounded(connector.http3_connect(&url)).await.unwrap();
    let (mut ws, response) = bounded(h3.open("/chat")).await.unwrap();
    assert_eq!(response.headers()["sec-websocket-protocol"], "chat");
    assert!(response.headers()["sec-websocket-extensions"].to_str().unwrap().starts_with("permessage-deflate"));
    assert!(ws.is_compressing());
    assert!(matches!(next(&mut outcomes).await, Outcome::Upgraded { compressing: true, .. }));
    round_trip(&mut ws, &"compressible ".repeat(1000)).await;
    ws.close(None).await.unwrap();
}

/// A request as the tests send it raw: CONNECT to the server's `/chat`.
fn raw_request(url: &str, extra: &[(&str, &str)]) -> Request<()> {
    let uri = format!("{}/chat", url.replace("wss://", "https://"));
    let mut request = Request::builder().method(Method::CONNECT).uri(uri).header("sec-websocket-version", "13");
    for (name, value) in extra {
        request = request.header(*name, *value);
    }
    request.body(()).unwrap()
}

#[tokio::test]
async fn bad_requests_are_refused_with_typed_errors_and_the_connection_carries_on() {
    let (url, tls, mut outcomes) = server(Upgrader::new());
    let h3 = bounded(Connector::new().tls_config(tls).http3_connect(&url)).await.unwrap();
    let cases: [(Request<()>, Option<&str>, StatusCode, HandshakeError); 4] = [
        (raw_request(&url, &[]), None, StatusCode::BAD_REQUEST, HandshakeError::MissingConnectProtocol),
        (
            raw_request(&url, &[]),
            Some("webtransport"),
            StatusCode::BAD_REQUEST,
            HandshakeError::UnsupportedConnectProtocol,
        ),
        (
            raw_request(&url, &[("sec-websocket-key", common::WS_KEY)]),
            Some("websocket"),
            StatusCode::BAD_REQUEST,
            HandshakeError::ForbiddenHttp2Field,
        ),
        (
            Request::builder()
                .method(Method::GET)
                .uri(format!("{}/", url.replace("wss://", "https://")))
                .body(())
                .unwrap(),
            None,
            StatusCode::METHOD_NOT_ALLOWED,
            HandshakeError::MethodNotAllowed,
        ),
    ];
    for (request, protocol, status, error) in cases {
        let (response, _io) = bounded(h3.send_request(request, protocol)).await.unwrap();
        assert_eq!(response.status(), status, "{error:?}");
        assert!(!response.headers().contains_key("connection"));
        match next(&mut outcomes).await {
            Outcome::Refused(Error::Handshake(got)) => assert_eq!(got, error),
            other => panic!("{other:?}"),
        }
    }
    // The same connection still opens WebSockets.
    let (mut ws, _) = bounded(h3.open("/after")).await.unwrap();
    round_trip(&mut ws, "still here").await;
}

#[tokio::test]
async fn a_refusal_of_check_request_is_an_unexpected_status_for_the_client() {
    let upgrader = Upgrader::new().check_request(|request| {
        if request.uri().path() == "/private" {
            Err(silverback::Rejection::new(StatusCode::FORBIDDEN))
        } else {
            Ok(())
        }
    });
    let (url, tls, mut outcomes) = server(upgrader);
    let h3 = bounded(Connector::new().tls_config(tls).http3_connect(&url)).await.unwrap();
    let err = bounded(h3.open("/private")).await.unwrap_err();
    assert!(matches!(err, Error::Handshake(HandshakeError::UnexpectedStatus(StatusCode::FORBIDDEN))), "{err:?}");
    assert!(matches!(next(&mut outcomes).await, Outcome::Refused(Error::Handshake(HandshakeError::Rejected(_)))));
    let (mut ws, _) = bounded(h3.open("/public")).await.unwrap();
    round_trip(&mut ws, "ok").await;
}

#[tokio::test]
async fn a_stream_reset_mid_message_is_a_connection_reset() {
    let (url, tls, mut outcomes) = server(Upgrader::new());
    let h3 = bounded(Connector::new().tls_config(tls).http3_connect(&url)).await.unwrap();
    let (response, mut io) = bounded(h3.send_request(raw_request(&url, &[]), Some("websocket"))).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(matches!(next(&mut outcomes).await, Outcome::Upgraded { .. }));
    // Half of a 1000-byte binary frame, then RESET_STREAM (H3_REQUEST_CANCELLED).
    let frame = common::client_frame(true, 0, 0x2, &[9u8; 1000]);
    io.write_all(&frame[..500]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    io.reset(0x10c);
    match next(&mut outcomes).await {
        Outcome::Ended(Error::Io(err)) => assert_eq!(err.kind(), io::ErrorKind::ConnectionReset, "{err}"),
        other => panic!("{other:?}"),
    }
    // Other streams are not affected.
    let (mut ws, _) = bounded(h3.open("/next")).await.unwrap();
    round_trip(&mut ws, "after the reset").await;
}

#[tokio::test]
async fn one_stalled_reader_does_not_stop_the_other_streams() {
    let (url, tls, mut outcomes) = server(Upgrader::new());
    let connector = Connector::new().tls_config(tls).config(Config::default().write_buffer_size(16 * 1024));
    let h3 = bounded(connector.http3_connect(&url)).await.unwrap();
    let (mut sink, _) = bounded(h3.open("/sink")).await.unwrap();
    let (mut echo, _) = bounded(h3.open("/echo")).await.unwrap();
    for _ in 0..2 {
        assert!(matches!(next(&mut outcomes).await, Outcome::Upgraded { .. }));
    }
    // The sink never reads: sending must come to wait, after a bounded
    // amount (the 64 KiB stream window, the write buffer, quinn's send
    // buffer).
    let chunk = Bytes::from(vec![7u8; 16 * 1024]);
    let mut accepted = 0usize;
    while let Ok(sent) =
        tokio::time::timeout(Duration::from_millis(300), sink.send(Message::binary(chunk.clone()))).await
    {
        sent.unwrap();
        accepted += chunk.len();
        assert!(accepted < 8 * 1024 * 1024, "send never waited: {accepted} bytes accepted");
    }
    assert!(accepted >= 16 * 1024, "{accepted}");
    for n in 0..20 {
        round_trip(&mut echo, &format!("{n}{}", "x".repeat(32 * 1024))).await;
    }
}

#[tokio::test]
async fn shutdown_closes_http3_websockets_with_1001_and_refuses_new_ones() {
    let shutdown = Shutdown::new();
    let (url, tls, mut outcomes) = server(Upgrader::new().shutdown(&shutdown));
    let h3 = bounded(Connector::new().tls_config(tls).http3_connect(&url)).await.unwrap();
    let (mut ws, _) = bounded(h3.open("/echo")).await.unwrap();
    assert!(matches!(next(&mut outcomes).await, Outcome::Upgraded { .. }));
    shutdown.trigger();
    match bounded(ws.next()).await {
        Some(Ok(Message::Close(frame))) => assert_eq!(frame.map(|f| f.code), Some(CloseCode::GOING_AWAY)),
        other => panic!("{other:?}"),
    }
    bounded(shutdown.drained()).await;
    // The trigger also sent GOAWAY: the client knows not to open more
    // (ConnectionRefused) or, had it not heard yet, sees the stream
    // rejected (ConnectionReset); before any GOAWAY this was a 503.
    let err = bounded(h3.open("/late")).await.unwrap_err();
    assert!(
        matches!(&err, Error::Io(e) if matches!(e.kind(), io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionReset)),
        "{err:?}"
    );
    assert!(h3.is_closed());
}

/// Waits (bounded) until `h3` has heard the server's GOAWAY.
async fn until_gone_away(h3: &silverback::http3::Http3Connection) {
    bounded(async {
        while !h3.is_closed() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
}

#[tokio::test]
async fn goaway_lets_open_websockets_run_and_refuses_new_ones() {
    let (goaway, goaway_rx) = watch::channel(false);
    let (url, tls, mut outcomes) = server_with(Upgrader::new(), goaway_rx);
    let h3 = bounded(Connector::new().tls_config(tls).http3_connect(&url)).await.unwrap();
    let mut streams = Vec::new();
    for path in ["/one", "/two"] {
        let (mut ws, _) = bounded(h3.open(path)).await.unwrap();
        assert!(matches!(next(&mut outcomes).await, Outcome::Upgraded { .. }));
        round_trip(&mut ws, path).await;
        streams.push(ws);
    }
    goaway.send(true).unwrap();
    until_gone_away(&h3).await;
    // The acceptor is done (nothing was pending)...
    assert!(matches!(next(&mut outcomes).await, Outcome::AcceptorDone));
    // ... the WebSockets carry on ...
    for ws in &mut streams {
        for n in 0..5 {
            round_trip(ws, &format!("still open after GOAWAY {n}")).await;
        }
    }
    // ... a new one is refused on this connection, with a typed error ...
    let err = bounded(h3.open("/late")).await.unwrap_err();
    match &err {
        Error::Io(e) => assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused, "{e}"),
        other => panic!("{other:?}"),
    }
    // ... and the QUIC connection ends once the last of them is closed.
    let quic = h3.connection().clone();
    for mut ws in streams {
        assert!(quic.close_reason().is_none(), "closed with a WebSocket open");
        bounded(ws.close(None)).await.unwrap();
    }
    match bounded(quic.closed()).await {
        quinn::ConnectionError::ApplicationClosed(close) => assert_eq!(close.error_code.into_inner(), 0x100),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn goaway_on_the_wire_and_a_request_past_it_is_rejected() {
    let (goaway, goaway_rx) = watch::channel(false);
    let (url, tls, mut outcomes) = server_with(Upgrader::new(), goaway_rx);
    let port: u16 = url.rsplit(':').next().unwrap().parse().unwrap();
    let (_endpoint, conn) = raw_client(&tls, port).await;
    let mut control = conn.open_uni().await.unwrap();
    control.write_all(&[0x00, 0x04, 0x00]).await.unwrap();
    let authority = format!("localhost:{port}");
    let request = |path: &str| {
        h3_frame(
            0x01,
            &qpack_literals(&[
                (":method", "CONNECT"),
                (":protocol", "websocket"),
                (":scheme", "https"),
                (":authority", &authority),
                (":path", path),
                ("sec-websocket-version", "13"),
            ]),
        )
    };
    // Stream 0: a WebSocket, open before the GOAWAY.
    let (mut send, mut recv) = conn.open_bi().await.unwrap();
    send.write_all(&request("/first")).await.unwrap();
    assert!(matches!(next(&mut outcomes).await, Outcome::Upgraded { .. }));
    goaway.send(true).unwrap();
    // The server's control stream: type 0x00, SETTINGS, then GOAWAY naming
    // stream 4, the first it did not take (RFC 9114 §5.2).
    let mut server_control = bounded(conn.accept_uni()).await.unwrap();
    let mut got = Vec::new();
    let id = loop {
        let chunk = bounded(server_control.read_chunk(4096, true)).await.unwrap().expect("control stream ended");
        got.extend_from_slice(&chunk.bytes);
        let settings_len = usize::from(got.get(2).copied().unwrap_or(u8::MAX));
        // Settings here take under 64 bytes: one-byte lengths.
        if let Some(&[kind, len, id]) = got.get(3 + settings_len..6 + settings_len) {
            assert_eq!((kind, len), (0x07, 1), "{got:?}");
            break id;
        }
    };
    assert_eq!((got[0], got[1]), (0x00, 0x04), "control stream type, then SETTINGS");
    assert_eq!(id, 4);
    // Stream 4, past the GOAWAY: rejected, for the client to retry elsewhere.
    let (mut late_send, mut late_recv) = conn.open_bi().await.unwrap();
    late_send.write_all(&request("/late")).await.unwrap();
    match bounded(late_recv.read_chunk(4096, true)).await {
        Err(quinn::ReadError::Reset(code)) => assert_eq!(code.into_inner(), 0x10b, "H3_REQUEST_REJECTED"),
        other => panic!("{other:?}"),
    }
    // Stream 0 still echoes.
    let ws_frame = common::client_frame(true, 0, 0x1, b"after goaway");
    send.write_all(&h3_frame(0x00, &ws_frame)).await.unwrap();
    let echo = common::server_frame(true, 0, 0x1, b"after goaway");
    let mut got = Vec::new();
    while !got.windows(echo.len()).any(|w| w == echo.as_slice()) {
        let chunk = bounded(recv.read_chunk(4096, true)).await.unwrap().expect("stream ended early");
        got.extend_from_slice(&chunk.bytes);
    }
}

#[tokio::test]
async fn without_extended_connect_the_client_fails_with_a_typed_error() {
    // A bare HTTP/3 peer: its control stream's SETTINGS are empty.
    let (quic, tls) = tls_pair();
    let endpoint = quinn::Endpoint::server(quic, "127.0.0.1:0".parse().unwrap()).unwrap();
    let port = endpoint.local_addr().unwrap().port();
    tokio::spawn(async move {
        let Some(incoming) = endpoint.accept().await else { return };
        let Ok(conn) = incoming.await else { return };
        let mut control = conn.open_uni().await.unwrap();
        // Stream type 0x00 (control), SETTINGS (0x04) of length 0.
        control.write_all(&[0x00, 0x04, 0x00]).await.unwrap();
        let _ = conn.closed().await;
    });
    let err =
        bounded(Connector::new().tls_config(tls).http3_connect(&format!("wss://localhost:{port}"))).await.unwrap_err();
    assert!(matches!(err, Error::Handshake(HandshakeError::ExtendedConnectNotEnabled)), "{err:?}");
}

/// A bare HTTP/3 server whose control stream carries SETTINGS (extended
/// CONNECT on) and then `frames`; the error code our client closes the
/// connection with, as the server sees it.
async fn client_closes_on_control_frames(frames: &'static [u8]) -> u64 {
    let (quic, tls) = tls_pair();
    let endpoint = quinn::Endpoint::server(quic, "127.0.0.1:0".parse().unwrap()).unwrap();
    let port = endpoint.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        let conn = endpoint.accept().await.unwrap().await.unwrap();
        let mut control = conn.open_uni().await.unwrap();
        // Control stream (0x00); SETTINGS (0x04) of 2 bytes: 0x08 = 1.
        control.write_all(&[0x00, 0x04, 0x02, 0x08, 0x01]).await.unwrap();
        control.write_all(frames).await.unwrap();
        conn.closed().await
    });
    let connected = bounded(Connector::new().tls_config(tls).http3_connect(&format!("wss://localhost:{port}"))).await;
    let closed = bounded(server).await.unwrap();
    drop(connected);
    match closed {
        quinn::ConnectionError::ApplicationClosed(close) => close.error_code.into_inner(),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_malformed_goaway_closes_the_connection_with_its_error_code() {
    // RFC 9114 §5.2, §7.2.6: a server's GOAWAY names a client-initiated
    // bidirectional stream (a multiple of 4), never more than an earlier one.
    assert_eq!(client_closes_on_control_frames(&[0x07, 0x01, 0x01]).await, 0x108, "stream 1: H3_ID_ERROR");
    assert_eq!(client_closes_on_control_frames(&[0x07, 0x01, 0x04, 0x07, 0x01, 0x08]).await, 0x108, "rising");
    // The payload is exactly one variable-length integer (H3_FRAME_ERROR).
    assert_eq!(client_closes_on_control_frames(&[0x07, 0x02, 0x04, 0x00]).await, 0x106, "trailing byte");
    assert_eq!(client_closes_on_control_frames(&[0x07, 0x09, 0, 0, 0, 0, 0, 0, 0, 0, 0]).await, 0x106, "9 bytes");
}

#[tokio::test]
async fn ws_urls_and_bad_paths_are_refused_before_any_packet() {
    let err = Connector::new().http3_connect("ws://localhost:1").await.unwrap_err();
    assert!(matches!(err, Error::Handshake(HandshakeError::UnsupportedScheme)), "{err:?}");
    let (url, tls, _outcomes) = server(Upgrader::new());
    let h3 = bounded(Connector::new().tls_config(tls).http3_connect(&url)).await.unwrap();
    let err = bounded(h3.open("no-slash")).await.unwrap_err();
    assert!(matches!(err, Error::Handshake(HandshakeError::InvalidUrl)), "{err:?}");
}

/// A frame (type and payload) of HTTP/3, for the raw client below; types
/// and lengths below 2^14.
fn h3_frame(kind: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![kind];
    if payload.len() < 64 {
        out.push(payload.len() as u8);
    } else {
        out.extend_from_slice(&(payload.len() as u16 | 0x4000).to_be_bytes());
    }
    out.extend_from_slice(payload);
    out
}

/// A QPACK field section of literal names and values (RFC 9204 §4.5.6:
/// `001 N H` and the name length with a 3-bit prefix, then the value
/// length with a 7-bit one), names shorter than 134 bytes, values than 127.
fn qpack_literals(fields: &[(&str, &str)]) -> Vec<u8> {
    let mut out = vec![0, 0];
    for (name, value) in fields {
        assert!(name.len() < 7 + 127 && value.len() < 127);
        if name.len() < 7 {
            out.push(0x20 | name.len() as u8);
        } else {
            out.extend_from_slice(&[0x27, (name.len() - 7) as u8]);
        }
        out.extend_from_slice(name.as_bytes());
        out.push(value.len() as u8);
        out.extend_from_slice(value.as_bytes());
    }
    out
}

/// A raw QUIC connection (ALPN `h3`) to the server on `port`, for writing
/// HTTP/3 by hand, and its endpoint.
async fn raw_client(tls: &ClientConfig, port: u16) -> (quinn::Endpoint, quinn::Connection) {
    let mut tls = tls.clone();
    tls.alpn_protocols = vec![b"h3".to_vec()];
    let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(tls).unwrap();
    let mut endpoint = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
    endpoint.set_default_client_config(quinn::ClientConfig::new(Arc::new(crypto)));
    let conn = bounded(endpoint.connect(([127, 0, 0, 1], port).into(), "localhost").unwrap()).await.unwrap();
    (endpoint, conn)
}

#[tokio::test]
async fn unknown_frames_and_a_websocket_frame_split_across_data_frames() {
    let (url, tls, mut outcomes) = server(Upgrader::new());
    let port: u16 = url.rsplit(':').next().unwrap().parse().unwrap();
    // A raw HTTP/3 client on quinn: reserved ("grease", RFC 9114 §7.2.8)
    // frames before the HEADERS and between DATA frames, which must be
    // skipped, and a WebSocket frame cut across two DATA frames.
    let (_endpoint, conn) = raw_client(&tls, port).await;
    let mut control = conn.open_uni().await.unwrap();
    control.write_all(&[0x00, 0x04, 0x00]).await.unwrap();
    let (mut send, mut recv) = conn.open_bi().await.unwrap();
    let authority = format!("localhost:{port}");
    let fields = qpack_literals(&[
        (":method", "CONNECT"),
        (":protocol", "websocket"),
        (":scheme", "https"),
        (":authority", &authority),
        (":path", "/raw"),
        ("sec-websocket-version", "13"),
    ]);
    let mut out = h3_frame(0x21, b"grease");
    out.extend(h3_frame(0x01, &fields));
    let ws_frame = common::client_frame(true, 0, 0x1, b"split across frames");
    out.extend(h3_frame(0x00, &ws_frame[..5]));
    out.extend(h3_frame(0x21, b""));
    out.extend(h3_frame(0x00, &ws_frame[5..]));
    send.write_all(&out).await.unwrap();
    match next(&mut outcomes).await {
        Outcome::Upgraded { path, .. } => assert_eq!(path, "/raw"),
        other => panic!("{other:?}"),
    }
    // The response (literal fields, ":status" "200"), then a DATA frame
    // with the echo, unmasked.
    let mut got = Vec::new();
    let echo = common::server_frame(true, 0, 0x1, b"split across frames");
    while !got.windows(echo.len()).any(|w| w == echo.as_slice()) {
        let chunk = bounded(recv.read_chunk(4096, true)).await.unwrap().expect("stream ended early");
        got.extend_from_slice(&chunk.bytes);
    }
    assert_eq!(got[0], 0x01, "HEADERS first");
    assert!(got.windows(11).any(|w| w == b":status\x03200"), "{got:?}");
}

#[tokio::test]
async fn an_oversized_request_header_section_is_refused_with_431() {
    let (url, tls, mut outcomes) = server(Upgrader::new().max_head_size(4096));
    let h3 = bounded(Connector::new().tls_config(tls).http3_connect(&url)).await.unwrap();
    // Over the limit once decoded (each field counts 32 bytes more, RFC
    // 9114 §4.2.2: 150 small fields take ~1.5 KiB on the wire), and as a
    // HEADERS frame already (one 5000-byte field).
    let names: Vec<String> = (0..150).map(|i| format!("x-{i}")).collect();
    let many: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), "v")).collect();
    let big = "b".repeat(5000);
    for fields in [many, vec![("x-big", big.as_str())]] {
        let request = raw_request(&url, &fields);
        let (response, _io) = bounded(h3.send_request(request, Some("websocket"))).await.unwrap();
        assert_eq!(response.status(), StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE, "{} fields", fields.len());
        match next(&mut outcomes).await {
            Outcome::Refused(Error::Handshake(got)) => assert_eq!(got, HandshakeError::RequestHeadTooLarge),
            other => panic!("{other:?}"),
        }
    }
    let (mut ws, _) = bounded(h3.open("/small")).await.unwrap();
    round_trip(&mut ws, "fits").await;
}
