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
use tokio::sync::{mpsc, watch};

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
    /// The HTTP/2 connection finished serving (after a graceful shutdown),
    /// without an error or with one.
    ConnectionDone(Result<(), String>),
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
    /// HTTP/1.1 and HTTP/2 over TLS (hyper-util's auto builder, extended
    /// CONNECT on), as the acceptor's ALPN list allows.
    TlsAuto(TlsAcceptor),
    /// h2c with extended CONNECT, shut down gracefully (hyper's
    /// `graceful_shutdown`: GOAWAY) once `true` is sent; reports
    /// [`Outcome::ConnectionDone`] when the connection finished.
    H2cGoaway(watch::Receiver<bool>),
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
            let done = report.clone();
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
                                if let Some(err) = common::echo_or_sink(&mut ws, &path).await {
                                    let _ = report.send(Outcome::Ended(err));
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
                    Mode::TlsAuto(acceptor) => {
                        let Ok(tls) = acceptor.accept(tcp).await else { return };
                        let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                        builder.http2().enable_connect_protocol();
                        let _ = builder.serve_connection_with_upgrades(TokioIo::new(tls), service).await;
                    }
                    Mode::H2cGoaway(mut goaway) => {
                        let mut builder = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
                        builder.enable_connect_protocol();
                        let connection = builder.serve_connection(TokioIo::new(tcp), service);
                        tokio::pin!(connection);
                        tokio::select! {
                            _ = connection.as_mut() => return,
                            _ = goaway.wait_for(|go| *go) => connection.as_mut().graceful_shutdown(),
                        }
                        let result = connection.await.map_err(|e| e.to_string());
                        let _ = done.send(Outcome::ConnectionDone(result));
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
    tls_pair_with_alpn(&[b"h2"])
}

/// [`tls_pair`] with the server offering `alpn`.
fn tls_pair_with_alpn(alpn: &[&[u8]]) -> (TlsAcceptor, Arc<ClientConfig>) {
    let cert = common::LocalhostCert::generate();
    (TlsAcceptor::from(Arc::new(cert.server(false, alpn))), cert.client())
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

#[tokio::test]
async fn tls_alpn_http11_falls_back_to_http11() {
    // The server's TLS offers only http/1.1 (its HTTP/2 would take
    // extended CONNECT): ALPN picks http/1.1 when the client offers it.
    let (acceptor, client_tls) = tls_pair_with_alpn(&[b"http/1.1"]);
    let (addr, mut outcomes) = server(Upgrader::new(), Mode::TlsAuto(acceptor)).await;
    let url = format!("wss://localhost:{}", addr.port());
    // Without the fallback the client offers only h2, which the server
    // refuses in the TLS handshake (no_application_protocol).
    let err = bounded(connector().tls_config(client_tls.clone()).http2_connect(&url)).await.unwrap_err();
    assert!(!matches!(err, Error::Handshake(HandshakeError::ExtendedConnectNotEnabled)), "{err:?}");
    match &err {
        Error::Io(io) => assert!(format!("{io:?}").contains("NoApplicationProtocol"), "{err:?}"),
        other => panic!("expected the TLS alert no_application_protocol, got {other:?}"),
    }
    let h2 = bounded(connector().tls_config(client_tls).allow_http1_fallback().http2_connect(&url)).await.unwrap();
    assert!(!h2.is_http2());
    let mut streams = Vec::new();
    for path in ["/one", "/two"] {
        let (mut ws, response) = bounded(h2.open(path)).await.unwrap();
        assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
        assert_eq!(response.version(), Version::HTTP_11);
        assert!(matches!(next(&mut outcomes).await, Outcome::Upgraded { version: Version::HTTP_11, .. }));
        round_trip(&mut ws, path).await;
        streams.push(ws);
    }
    for mut ws in streams {
        ws.close(None).await.unwrap();
    }
}

/// Reads `ws` until its close frame; its code.
async fn close_code<S>(ws: &mut silverback::WebSocketStream<S>) -> Option<CloseCode>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    loop {
        match bounded(ws.next()).await {
            Some(Ok(Message::Close(frame))) => return frame.map(|f| f.code),
            Some(Ok(_)) => {}
            other => panic!("expected a close frame, got {other:?}"),
        }
    }
}

/// Waits for the server to report the end of its connection.
async fn connection_done(outcomes: &mut mpsc::UnboundedReceiver<Outcome>) -> Result<(), String> {
    loop {
        match next(outcomes).await {
            Outcome::ConnectionDone(result) => return result,
            Outcome::Upgraded { .. } => {}
            other => panic!("{other:?}"),
        }
    }
}

/// Waits until `h2` is closed.
async fn until_closed(h2: &silverback::http2::Http2Connection) {
    bounded(async {
        while !h2.is_closed() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
}

/// An h2c server that shuts down gracefully on demand, a client
/// connection to it and WebSockets at `paths` on it, each round-tripped once.
async fn goaway_setup(
    upgrader: Upgrader,
    paths: &[&str],
) -> (
    watch::Sender<bool>,
    mpsc::UnboundedReceiver<Outcome>,
    silverback::http2::Http2Connection,
    Vec<silverback::WebSocketStream<silverback::http2::Http2Io>>,
) {
    let (goaway, goaway_rx) = watch::channel(false);
    let (addr, mut outcomes) = server(upgrader, Mode::H2cGoaway(goaway_rx)).await;
    let h2 = bounded(connector().http2_connect(&format!("ws://{addr}"))).await.unwrap();
    let mut streams = Vec::new();
    for path in paths {
        let (mut ws, _) = bounded(h2.open(path)).await.unwrap();
        assert!(matches!(next(&mut outcomes).await, Outcome::Upgraded { .. }));
        round_trip(&mut ws, path).await;
        streams.push(ws);
    }
    (goaway, outcomes, h2, streams)
}

/// How long the GOAWAYs take to reach the client on loopback, with margin
/// (hyper sends one with the highest stream id and a PING, then, on the
/// PING's answer, one with the last stream it took).
const GOAWAY_SETTLES: Duration = Duration::from_millis(200);

#[tokio::test]
async fn goaway_alone_lets_open_websockets_run_to_their_end() {
    // hyper's graceful shutdown sends GOAWAY and takes no new streams, but
    // the streams already open (RFC 9113 §6.8: those up to the last stream
    // id) carry on, WebSockets included: the application on either side
    // sees nothing until it closes them itself, and the connection ends
    // after the last of them.
    let (goaway, mut outcomes, h2, mut streams) = goaway_setup(Upgrader::new(), &["/one", "/two"]).await;
    goaway.send(true).unwrap();
    tokio::time::sleep(GOAWAY_SETTLES).await;
    for ws in &mut streams {
        for n in 0..5 {
            round_trip(ws, &format!("still open after GOAWAY {n}")).await;
        }
    }
    // Not done while they are open. Their close() used to fail with
    // ConnectionReset: hyper's server resets each finished stream with
    // NO_ERROR during a graceful shutdown, which UpgradedIo now takes as the
    // peer being done (RFC 9113 §8.1) when flushing or shutting down.
    let early = tokio::time::timeout(Duration::from_millis(300), connection_done(&mut outcomes)).await;
    assert!(early.is_err(), "the connection ended with WebSockets open: {early:?}");
    for mut ws in streams {
        ws.close(None).await.unwrap();
    }
    assert_eq!(connection_done(&mut outcomes).await, Ok(()));
    until_closed(&h2).await;
    let refused = bounded(h2.open("/late")).await.unwrap_err();
    assert!(matches!(refused, Error::Io(_)), "{refused:?}");
}

#[tokio::test]
async fn opening_after_goaway_fails_and_leaves_the_open_websockets_alone() {
    let (goaway, _outcomes, h2, mut streams) = goaway_setup(Upgrader::new(), &["/one", "/two"]).await;
    goaway.send(true).unwrap();
    tokio::time::sleep(GOAWAY_SETTLES).await;
    let refused = bounded(h2.open("/late")).await.unwrap_err();
    assert!(matches!(refused, Error::Io(_)), "{refused:?}");
    for ws in &mut streams {
        round_trip(ws, "still open after a refused open").await;
    }
}

#[tokio::test]
async fn shutdown_with_goaway_closes_http2_websockets_with_1001() {
    // The documented way to end an HTTP/2 connection with WebSockets on it:
    // silverback's Shutdown closes each with 1001 (Going Away), hyper's
    // graceful shutdown (GOAWAY) refuses new streams and ends the
    // connection once the closed WebSockets' streams are done.
    let shutdown = Shutdown::new();
    let upgrader = Upgrader::new().shutdown(&shutdown);
    let (goaway, mut outcomes, h2, mut streams) = goaway_setup(upgrader, &["/one", "/two", "/three"]).await;
    shutdown.trigger();
    goaway.send(true).unwrap();
    for ws in &mut streams {
        assert_eq!(close_code(ws).await, Some(CloseCode::GOING_AWAY));
        // The client's reply finishes the closing handshake, and the stream.
        assert!(bounded(ws.next()).await.is_none());
    }
    bounded(shutdown.drained()).await;
    assert_eq!(connection_done(&mut outcomes).await, Ok(()));
    until_closed(&h2).await;
    let refused = bounded(h2.open("/four")).await.unwrap_err();
    assert!(matches!(refused, Error::Io(_)), "{refused:?}");
}

#[tokio::test]
async fn protocol_sent_to_a_server_without_the_setting_resets_that_stream_only() {
    // RFC 8441 §3: `:protocol` on a connection whose server did not send
    // SETTINGS_ENABLE_CONNECT_PROTOCOL makes a malformed request. The raw
    // client sends it anyway (silverback's client refuses to, with
    // `ExtendedConnectNotEnabled`: see above).
    let (addr, mut outcomes) = server(Upgrader::new(), Mode::H2c { connect: false }).await;
    let mut send = raw_client(addr).await;
    let mut ready = bounded(send.clone().ready()).await.unwrap();
    let (response, _stream) = ready.send_request(raw_request(addr, Some("websocket"), &[]), false).unwrap();
    let err = bounded(response).await.unwrap_err();
    assert_eq!(err.reason(), Some(h2::Reason::PROTOCOL_ERROR), "{err:?}");
    // It never reached the upgrader, and the connection carries on: the
    // next request on it is answered (a plain CONNECT, refused).
    let (status, _) = raw_status(&mut send, raw_request(addr, None, &[])).await;
    match next(&mut outcomes).await {
        Outcome::Refused(refused) => {
            assert_eq!(refused, HandshakeError::MissingConnectProtocol);
            assert_eq!(Some(status), refused.status());
        }
        other => panic!("{other:?}"),
    }
}
