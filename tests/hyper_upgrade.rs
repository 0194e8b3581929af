//! Upgrading through hyper and axum, and the application's own refusals.
//!
//! A hyper 1.x HTTP/1.1 server (upgrades on, loopback TCP) hands requests
//! to `Upgrader::upgrade_hyper` and echoes on the streams; an axum Router
//! does the same through `silverback::axum::WebSocketUpgrade`. They are
//! driven by silverback's client and by a raw TCP client that reads the
//! refusals byte for byte. `Upgrader::check_request` is also played
//! through plain `accept`.
//!
//! Every test bounds itself with `bounded`, so none can hang.

mod common;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use http::StatusCode;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use silverback::{
    CloseCode, Connector, DeflateConfig, Error, HandshakeError, Message, Rejection, Request, Shutdown, Upgrader,
    WebSocketStream,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use common::{edit_request, UPGRADE_REQUEST, WS_ACCEPT};

/// A masked client text frame (RFC 6455 §5.7: "Hello", masked).
const MASKED_HELLO: &[u8] = &[0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58];
/// An unmasked server text frame (RFC 6455 §5.7: "Hello").
const UNMASKED_HELLO: &[u8] = &[0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f];

/// Fails the test instead of hanging.
async fn bounded<F: Future>(fut: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(10), fut).await.expect("test timed out")
}

/// What the server did with one request.
#[derive(Debug, PartialEq)]
enum Outcome {
    /// Upgraded; whether the stream compresses.
    Upgraded { compressing: bool },
    /// Refused with this error.
    Refused(HandshakeError),
    /// Accepted, but the upgrade future failed.
    Failed(String),
}

/// Echoes data messages until the peer closes.
async fn echo<S>(mut ws: WebSocketStream<S>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    while let Some(Ok(msg)) = ws.next().await {
        if (msg.is_text() || msg.is_binary()) && ws.send(msg).await.is_err() {
            break;
        }
    }
}

/// Serves `listener` with hyper's HTTP/1.1 server, upgrades on, sending
/// each request to `upgrader.upgrade_hyper`, echoing on the streams and
/// reporting each outcome.
fn serve_hyper(listener: TcpListener, upgrader: Upgrader) -> mpsc::UnboundedReceiver<Outcome> {
    let (report, outcomes) = mpsc::unbounded_channel();
    let upgrader = Arc::new(upgrader);
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let (upgrader, report) = (upgrader.clone(), report.clone());
            let service = service_fn(move |mut req: hyper::Request<Incoming>| {
                let report = report.clone();
                let decided = upgrader.upgrade_hyper(&mut req);
                async move {
                    let response = match decided {
                        Ok((response, upgrade)) => {
                            tokio::spawn(async move {
                                match upgrade.await {
                                    Ok(ws) => {
                                        let compressing = ws.is_compressing();
                                        let _ = report.send(Outcome::Upgraded { compressing });
                                        echo(ws).await;
                                    }
                                    Err(err) => {
                                        let _ = report.send(Outcome::Failed(err.to_string()));
                                    }
                                }
                            });
                            response
                        }
                        Err(refusal) => {
                            let _ = report.send(Outcome::Refused(refusal.error()));
                            refusal.into_response()
                        }
                    };
                    Ok::<_, Infallible>(response)
                }
            });
            tokio::spawn(
                hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(tcp), service).with_upgrades(),
            );
        }
    });
    outcomes
}

/// A hyper server with `upgrader` on a fresh loopback port.
async fn hyper_server(upgrader: Upgrader) -> (SocketAddr, mpsc::UnboundedReceiver<Outcome>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    (addr, serve_hyper(listener, upgrader))
}

/// Sends `request` on a new connection and reads everything until the
/// server closes.
async fn raw_exchange(addr: SocketAddr, request: &[u8]) -> String {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(request).await.unwrap();
    let mut reply = Vec::new();
    tcp.read_to_end(&mut reply).await.unwrap();
    String::from_utf8(reply).unwrap()
}

/// The head of an HTTP reply (up to the blank line) and its body.
fn split_reply(reply: &str) -> (&str, &str) {
    reply.split_once("\r\n\r\n").expect("a complete head")
}

/// Whether a head has `name: value`, the name compared case-insensitively.
fn has_field(head: &str, name: &str, value: &str) -> bool {
    head.lines()
        .skip(1)
        .any(|line| line.split_once(':').is_some_and(|(n, v)| n.eq_ignore_ascii_case(name) && v.trim() == value))
}

/// Connects silverback's client to `url` on a TCP connection to `addr`.
async fn connect_with(
    connector: &Connector,
    addr: SocketAddr,
    url: &str,
) -> silverback::Result<(WebSocketStream<TcpStream>, silverback::Response)> {
    let tcp = TcpStream::connect(addr).await.unwrap();
    connector.connect_on(tcp, url).await
}

// ------------------------------------------------------------ hyper

#[tokio::test]
async fn hyper_upgrades_and_echoes_with_silverback_client() {
    bounded(async {
        let (addr, mut outcomes) = hyper_server(Upgrader::new()).await;
        let url = format!("ws://{addr}/echo");
        let (mut ws, response) = connect_with(&Connector::new(), addr, &url).await.unwrap();
        assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
        assert_eq!(outcomes.recv().await, Some(Outcome::Upgraded { compressing: false }));
        for text in ["hello", "", "ünïcödé"] {
            ws.send(Message::text(text)).await.unwrap();
            assert_eq!(ws.next().await.unwrap().unwrap().as_text(), Some(text));
        }
        ws.send(Message::binary(vec![7; 100_000])).await.unwrap();
        assert_eq!(ws.next().await.unwrap().unwrap().into_data(), vec![7; 100_000]);
        ws.close(None).await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn hyper_answers_the_rfc_example_and_keeps_frames_sent_with_the_request() {
    bounded(async {
        let (addr, mut outcomes) = hyper_server(Upgrader::new()).await;
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        // The request and the first frame in one write: hyper reads both,
        // and must hand the frame over with the connection.
        tcp.write_all(&[UPGRADE_REQUEST.as_bytes(), MASKED_HELLO].concat()).await.unwrap();
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            head.push(tcp.read_u8().await.unwrap());
        }
        let head = String::from_utf8(head).unwrap();
        assert!(head.starts_with("HTTP/1.1 101 Switching Protocols\r\n"), "{head}");
        assert!(has_field(&head, "upgrade", "websocket"), "{head}");
        assert!(has_field(&head, "connection", "Upgrade"), "{head}");
        assert!(has_field(&head, "sec-websocket-accept", WS_ACCEPT), "{head}");
        assert!(!head.to_ascii_lowercase().contains("sec-websocket-protocol"), "{head}");
        let mut echoed = [0; UNMASKED_HELLO.len()];
        tcp.read_exact(&mut echoed).await.unwrap();
        assert_eq!(echoed, UNMASKED_HELLO);
        assert_eq!(outcomes.recv().await, Some(Outcome::Upgraded { compressing: false }));
    })
    .await;
}

#[tokio::test]
async fn hyper_refuses_bad_requests_with_the_same_statuses() {
    bounded(async {
        let (addr, mut outcomes) = hyper_server(Upgrader::new()).await;
        use HandshakeError::*;
        let key = "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";
        /// A request, the status line and fields it is answered with, the error.
        type Case = (String, &'static str, &'static [(&'static str, &'static str)], HandshakeError);
        let table: &[Case] = &[
            (
                edit_request("Version: 13", "Version: 8"),
                "426 Upgrade Required",
                &[("sec-websocket-version", "13"), ("upgrade", "websocket")],
                UnsupportedVersion,
            ),
            (edit_request(key, ""), "400 Bad Request", &[], InvalidKey),
            (edit_request(key, "Sec-WebSocket-Key: c2hvcnQ=\r\n"), "400 Bad Request", &[], InvalidKey),
            (edit_request("Upgrade: websocket\r\n", "Upgrade: h2c\r\n"), "400 Bad Request", &[], MissingUpgrade),
            (
                edit_request("Connection: Upgrade", "Connection: keep-alive, Upgrade\r\nOrigin: https://evil.example"),
                "403 Forbidden",
                &[],
                OriginRejected,
            ),
            (edit_request("GET /chat", "POST /chat"), "405 Method Not Allowed", &[("allow", "GET")], MethodNotAllowed),
            (
                edit_request("HTTP/1.1\r\n", "HTTP/1.0\r\n"),
                "505 HTTP Version Not Supported",
                &[],
                HttpVersionNotSupported,
            ),
        ];
        for (request, status_line, fields, err) in table {
            let reply = raw_exchange(addr, request.as_bytes()).await;
            let (head, body) = split_reply(&reply);
            // hyper answers an HTTP/1.0 request in HTTP/1.0.
            assert!(head.starts_with("HTTP/1."), "{reply}");
            assert!(head[9..].starts_with(&format!("{status_line}\r\n")), "{reply}");
            assert!(has_field(head, "connection", "close"), "{reply}");
            assert!(has_field(head, "content-type", "text/plain; charset=utf-8"), "{reply}");
            assert!(has_field(head, "content-length", &body.len().to_string()), "{reply}");
            assert_eq!(body, format!("{err}\n"));
            for (name, value) in *fields {
                assert!(has_field(head, name, value), "{name} missing from {reply}");
            }
            assert_eq!(outcomes.recv().await, Some(Outcome::Refused(*err)), "{request}");
        }
    })
    .await;
}

#[tokio::test]
async fn hyper_applies_the_origin_policy_and_the_applications_check() {
    bounded(async {
        let upgrader = Upgrader::new()
            .check_origin(|req| req.headers().get("origin").is_some_and(|o| o == "https://app.example"))
            .check_request(|req| match req.uri().query() {
                Some("token=ok") => Ok(()),
                _ => Err(Rejection::new(StatusCode::UNAUTHORIZED)
                    .header("www-authenticate", "Bearer realm=\"chat\"")
                    .header("set-cookie", "a=1")
                    .header("set-cookie", "b=2")
                    .body("who are you?\n")),
            });
        let (addr, mut outcomes) = hyper_server(upgrader).await;
        let with_origin = |origin: &str, path: &str| {
            edit_request("Connection: Upgrade", &format!("Connection: Upgrade\r\nOrigin: {origin}")).replacen(
                "/chat?room=1",
                path,
                1,
            )
        };

        // The origin policy runs first.
        let reply = raw_exchange(addr, with_origin("https://other.example", "/chat?token=ok").as_bytes()).await;
        assert!(reply.starts_with("HTTP/1.1 403 Forbidden\r\n"), "{reply}");
        assert_eq!(outcomes.recv().await, Some(Outcome::Refused(HandshakeError::OriginRejected)));

        // Then the application's check, answered as it asked.
        let reply = raw_exchange(addr, with_origin("https://app.example", "/chat?token=no").as_bytes()).await;
        let (head, body) = split_reply(&reply);
        assert!(head.starts_with("HTTP/1.1 401 Unauthorized\r\n"), "{reply}");
        assert!(has_field(head, "www-authenticate", "Bearer realm=\"chat\""), "{reply}");
        assert!(has_field(head, "set-cookie", "a=1"), "{reply}");
        assert!(has_field(head, "set-cookie", "b=2"), "{reply}");
        assert!(has_field(head, "connection", "close"), "{reply}");
        assert!(has_field(head, "content-length", "13"), "{reply}");
        assert_eq!(body, "who are you?\n");
        assert_eq!(outcomes.recv().await, Some(Outcome::Refused(HandshakeError::Rejected(StatusCode::UNAUTHORIZED))));

        // Both pass.
        let connector = Connector::new().origin("https://app.example");
        let url = format!("ws://{addr}/chat?token=ok");
        let (mut ws, _) = connect_with(&connector, addr, &url).await.unwrap();
        assert_eq!(outcomes.recv().await, Some(Outcome::Upgraded { compressing: false }));
        ws.send(Message::text("in")).await.unwrap();
        assert_eq!(ws.next().await.unwrap().unwrap().as_text(), Some("in"));
    })
    .await;
}

#[tokio::test]
async fn hyper_negotiates_subprotocol_deflate_and_extra_headers() {
    bounded(async {
        let upgrader = Upgrader::new()
            .subprotocols(["v2.chat", "v1.chat"])
            .deflate(DeflateConfig::default().min_size(0))
            .header("x-served-by", "silverback")
            .allow_any_origin();
        let (addr, mut outcomes) = hyper_server(upgrader).await;
        let connector = Connector::new()
            .subprotocols(["v1.chat", "v2.chat"])
            .deflate(DeflateConfig::default())
            .origin("https://anywhere.example");
        let url = format!("ws://{addr}/chat");
        let (mut ws, response) = connect_with(&connector, addr, &url).await.unwrap();
        let headers = response.headers();
        assert_eq!(headers["sec-websocket-protocol"], "v2.chat");
        assert!(headers["sec-websocket-extensions"].to_str().unwrap().starts_with("permessage-deflate"), "{headers:?}");
        assert_eq!(headers["x-served-by"], "silverback");
        assert!(ws.is_compressing());
        assert_eq!(outcomes.recv().await, Some(Outcome::Upgraded { compressing: true }));
        let text = "compress me, ".repeat(2_000);
        ws.send(Message::text(text.clone())).await.unwrap();
        assert_eq!(ws.next().await.unwrap().unwrap().as_text(), Some(&text[..]));
        ws.close(None).await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn hyper_answers_a_misconfigured_upgrader_with_500() {
    bounded(async {
        let (addr, mut outcomes) = hyper_server(Upgrader::new().header("connection", "x")).await;
        let reply = raw_exchange(addr, UPGRADE_REQUEST.as_bytes()).await;
        assert!(reply.starts_with("HTTP/1.1 500 Internal Server Error\r\n"), "{reply}");
        assert_eq!(outcomes.recv().await, Some(Outcome::Refused(HandshakeError::InvalidHeader)));
    })
    .await;
}

#[tokio::test]
async fn upgrade_of_a_request_hyper_did_not_read_fails_with_io() {
    bounded(async {
        // No hyper connection behind it: no upgrade handle in the extensions.
        let mut req = http::Request::builder()
            .uri("/chat")
            .header("host", "a.example")
            .header("upgrade", "websocket")
            .header("connection", "upgrade")
            .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
            .header("sec-websocket-version", "13")
            .header("x-kept", "yes")
            .body(())
            .unwrap();
        let (response, upgrade) = Upgrader::new().upgrade_hyper(&mut req).unwrap();
        assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
        assert_eq!(response.headers()["sec-websocket-accept"], WS_ACCEPT);
        // The request is left as it was.
        assert_eq!(req.uri(), "/chat");
        assert_eq!(req.headers()["x-kept"], "yes");
        assert!(matches!(upgrade.await, Err(Error::Io(_))));
    })
    .await;
}

#[test]
fn refusal_is_an_error_and_names_its_status() {
    let mut req = http::Request::builder().method("PUT").body(()).unwrap();
    let refusal = Upgrader::new().upgrade_hyper(&mut req).unwrap_err();
    assert_eq!(refusal.error(), HandshakeError::MethodNotAllowed);
    assert_eq!(refusal.response().status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(refusal.to_string(), "upgrade refused with status 405 Method Not Allowed");
    let source = std::error::Error::source(&refusal).unwrap();
    assert_eq!(source.to_string(), HandshakeError::MethodNotAllowed.to_string());
    assert!(matches!(Error::from(refusal), Error::Handshake(HandshakeError::MethodNotAllowed)));
}

// ------------------------------------------------------------ axum

/// An axum Router on a fresh loopback port: `/ws` upgrades with the
/// router's upgrader and echoes, reporting each outcome; `/plain` answers
/// "not a websocket".
async fn axum_server(upgrader: Upgrader) -> (SocketAddr, mpsc::UnboundedReceiver<Outcome>) {
    use axum::extract::State;
    use axum::routing::get;
    use silverback::axum::WebSocketUpgrade;

    type AppState = (Arc<Upgrader>, mpsc::UnboundedSender<Outcome>);
    async fn ws(State((upgrader, report)): State<AppState>, ws: WebSocketUpgrade) -> axum::response::Response {
        assert_eq!(ws.request().uri().path(), "/ws");
        let failed = report.clone();
        ws.upgrader(upgrader)
            .on_failed_upgrade(move |err| {
                let _ = failed.send(Outcome::Failed(err.to_string()));
            })
            .on_upgrade(move |ws| async move {
                let _ = report.send(Outcome::Upgraded { compressing: ws.is_compressing() });
                echo(ws).await;
            })
    }

    let (report, outcomes) = mpsc::unbounded_channel();
    let app = axum::Router::new()
        .route("/ws", get(ws))
        .route("/plain", get(|| async { "not a websocket" }))
        .with_state((Arc::new(upgrader), report));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, outcomes)
}

#[tokio::test]
async fn axum_extractor_upgrades_end_to_end() {
    bounded(async {
        let upgrader = Upgrader::new().subprotocols(["echo"]).deflate(DeflateConfig::default());
        let (addr, mut outcomes) = axum_server(upgrader).await;
        let connector = Connector::new().subprotocols(["echo"]).deflate(DeflateConfig::default());
        let (mut ws, response) = connect_with(&connector, addr, &format!("ws://{addr}/ws")).await.unwrap();
        assert_eq!(response.headers()["sec-websocket-protocol"], "echo");
        assert_eq!(outcomes.recv().await, Some(Outcome::Upgraded { compressing: true }));
        for text in ["one", "two", &"three ".repeat(1000)] {
            ws.send(Message::text(text)).await.unwrap();
            assert_eq!(ws.next().await.unwrap().unwrap().as_text(), Some(text));
        }
        ws.close(None).await.unwrap();

        // The rest of the router is untouched.
        let reply = raw_exchange(addr, b"GET /plain HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n").await;
        assert!(reply.starts_with("HTTP/1.1 200 OK\r\n"), "{reply}");
        assert!(reply.ends_with("\r\n\r\nnot a websocket"), "{reply}");
    })
    .await;
}

#[tokio::test]
async fn axum_extractor_refuses_with_the_upgraders_policy() {
    bounded(async {
        let upgrader = Upgrader::new().check_request(|req| {
            if req.headers().contains_key("authorization") {
                Ok(())
            } else {
                Err(Rejection::new(StatusCode::UNAUTHORIZED).body("token please\n"))
            }
        });
        let (addr, mut outcomes) = axum_server(upgrader).await;
        let request = UPGRADE_REQUEST.replacen("/chat?room=1", "/ws", 1);

        // A plain GET on the route: refused by the RFC checks, not by axum.
        let reply = raw_exchange(addr, b"GET /ws HTTP/1.1\r\nHost: a\r\n\r\n").await;
        assert!(reply.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{reply}");
        assert!(reply.ends_with(&format!("\r\n\r\n{}\n", HandshakeError::MissingUpgrade)), "{reply}");

        let reply = raw_exchange(addr, request.replacen("Version: 13", "Version: 7", 1).as_bytes()).await;
        let (head, _) = split_reply(&reply);
        assert!(head.starts_with("HTTP/1.1 426 Upgrade Required\r\n"), "{reply}");
        assert!(has_field(head, "sec-websocket-version", "13"), "{reply}");

        let reply = raw_exchange(addr, request.as_bytes()).await;
        let (head, body) = split_reply(&reply);
        assert!(head.starts_with("HTTP/1.1 401 Unauthorized\r\n"), "{reply}");
        assert!(has_field(head, "connection", "close"), "{reply}");
        assert_eq!(body, "token please\n");

        let connector = Connector::new().header("authorization", "Bearer x");
        let (mut ws, _) = connect_with(&connector, addr, &format!("ws://{addr}/ws")).await.unwrap();
        assert_eq!(outcomes.recv().await, Some(Outcome::Upgraded { compressing: false }));
        ws.send(Message::text("authorised")).await.unwrap();
        assert_eq!(ws.next().await.unwrap().unwrap().as_text(), Some("authorised"));
    })
    .await;
}

// ------------------------------------------- check_request on raw accept

/// Plays `request` at `upgrader.accept_with_request` over loopback TCP;
/// answers the bytes the server sent until it closed, and its result.
async fn raw_accept(
    upgrader: Upgrader,
    request: &str,
) -> (String, silverback::Result<(WebSocketStream<TcpStream>, Request)>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        upgrader.accept_with_request(tcp).await
    });
    let reply = raw_exchange(addr, request.as_bytes()).await;
    (reply, server.await.unwrap())
}

#[tokio::test]
async fn check_request_rejection_is_sent_byte_exact_through_accept() {
    bounded(async {
        let upgrader = Upgrader::new().check_request(|req| {
            let has_session = req
                .headers()
                .get_all("cookie")
                .iter()
                .any(|c| c.to_str().is_ok_and(|c| c.split("; ").any(|kv| kv.starts_with("session="))));
            if has_session {
                return Ok(());
            }
            Err(Rejection::new(StatusCode::FORBIDDEN)
                .header("x-reason", "no session")
                .header("content-length", "1") // replaced
                .header("set-cookie", "tried=1")
                .body("{\"error\":\"log in\"}"))
        });
        let (reply, result) = raw_accept(upgrader.clone(), UPGRADE_REQUEST).await;
        assert_eq!(
            reply,
            "HTTP/1.1 403 Forbidden\r\n\
             x-reason: no session\r\n\
             set-cookie: tried=1\r\n\
             Connection: close\r\n\
             Content-Length: 18\r\n\
             \r\n\
             {\"error\":\"log in\"}"
        );
        let err = match result {
            Err(Error::Handshake(err)) => err,
            other => panic!("{other:?}"),
        };
        assert_eq!(err, HandshakeError::Rejected(StatusCode::FORBIDDEN));
        assert_eq!(err.status(), Some(StatusCode::FORBIDDEN));

        // With the cookie, the same upgrader accepts.
        let with_cookie = edit_request("Connection: Upgrade", "Cookie: theme=dark; session=42\r\nConnection: Upgrade");
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            upgrader.accept(tcp).await.map(|_| ())
        });
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        tcp.write_all(with_cookie.as_bytes()).await.unwrap();
        let mut head = [0; 12];
        tcp.read_exact(&mut head).await.unwrap();
        assert_eq!(&head, b"HTTP/1.1 101");
        server.await.unwrap().unwrap();
    })
    .await;
}

#[tokio::test]
async fn check_request_runs_after_the_rfc_checks_and_origin_policy() {
    bounded(async {
        let reject_all = || Upgrader::new().check_request(|_| Err(Rejection::new(StatusCode::IM_A_TEAPOT)));
        let (reply, result) = raw_accept(reject_all(), &edit_request("Version: 13", "Version: 12")).await;
        assert!(reply.starts_with("HTTP/1.1 426 "), "{reply}");
        assert!(matches!(result, Err(Error::Handshake(HandshakeError::UnsupportedVersion))));

        let foreign = edit_request("Connection: Upgrade", "Origin: http://evil.example\r\nConnection: Upgrade");
        let (reply, result) = raw_accept(reject_all(), &foreign).await;
        assert!(reply.starts_with("HTTP/1.1 403 "), "{reply}");
        assert!(matches!(result, Err(Error::Handshake(HandshakeError::OriginRejected))));

        let (reply, result) = raw_accept(reject_all(), UPGRADE_REQUEST).await;
        assert_eq!(reply, "HTTP/1.1 418 I'm a teapot\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
        assert!(matches!(result, Err(Error::Handshake(HandshakeError::Rejected(StatusCode::IM_A_TEAPOT)))));

        // The request reaches the check complete: path, query, fields.
        let seen = Arc::new(std::sync::Mutex::new(None));
        let seen_by_check = seen.clone();
        let upgrader = Upgrader::new().check_request(move |req| {
            *seen_by_check.lock().unwrap() = Some(format!(
                "{} {} {}",
                req.method(),
                req.uri(),
                req.headers()["sec-websocket-key"].to_str().unwrap()
            ));
            Ok(())
        });
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let (ws, request) = upgrader.accept_with_request(tcp).await.unwrap();
            assert_eq!(request.uri().query(), Some("room=1"));
            ws
        });
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        tcp.write_all(&[UPGRADE_REQUEST.as_bytes(), MASKED_HELLO].concat()).await.unwrap();
        let mut ws = server.await.unwrap();
        assert_eq!(ws.next().await.unwrap().unwrap().as_text(), Some("Hello"));
        assert_eq!(seen.lock().unwrap().as_deref(), Some("GET /chat?room=1 dGhlIHNhbXBsZSBub25jZQ=="));
    })
    .await;
}

#[test]
fn public_types_are_send_sync_static() {
    fn send_sync<T: Send + Sync + 'static>() {}
    fn send<T: Send + 'static>() {}
    send_sync::<Rejection>();
    send_sync::<silverback::hyper::Refusal>();
    send::<silverback::hyper::UpgradeFuture>();
    send::<silverback::axum::WebSocketUpgrade>();
}

#[tokio::test]
async fn upgrade_hyper_registers_with_the_shutdown_and_refuses_with_503_once_triggered() {
    let shutdown = Shutdown::new();
    let (addr, mut outcomes) = hyper_server(Upgrader::new().shutdown(&shutdown)).await;
    let (mut ws, _) = bounded(silverback::connect(&format!("ws://{addr}/"))).await.unwrap();
    assert_eq!(bounded(outcomes.recv()).await, Some(Outcome::Upgraded { compressing: false }));
    ws.send(Message::text("before")).await.unwrap();
    assert_eq!(bounded(ws.next()).await.unwrap().unwrap(), Message::text("before"));
    assert_eq!(shutdown.connections(), 1, "the upgraded connection is registered");

    shutdown.trigger();
    let close = bounded(ws.next()).await.unwrap().unwrap();
    assert!(matches!(&close, Message::Close(Some(f)) if f.code == CloseCode::GOING_AWAY), "{close:?}");
    assert!(bounded(ws.next()).await.is_none());
    bounded(shutdown.drained()).await;

    let reply = bounded(raw_exchange(addr, UPGRADE_REQUEST.as_bytes())).await;
    assert!(reply.starts_with("HTTP/1.1 503 Service Unavailable\r\n"), "{reply}");
    assert_eq!(
        bounded(outcomes.recv()).await,
        Some(Outcome::Refused(HandshakeError::Rejected(StatusCode::SERVICE_UNAVAILABLE)))
    );
    assert_eq!(shutdown.connections(), 0);
}
