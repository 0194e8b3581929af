//! The opening handshake end to end: a scripted raw client against the
//! server side, a scripted raw server against the client side (both over
//! `tokio::io::duplex` or loopback TCP), and real round trips.
//!
//! Every test bounds itself with `bounded`, so none can hang.

mod common;

use std::future::Future;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use silverback::{accept, connect, Connector, Error, HandshakeError, Message, Request, Upgrader, WebSocketStream};
use tokio::io::{duplex, AsyncRead, AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::net::{TcpListener, TcpStream};

use common::{edit_request, UPGRADE_REQUEST, WS_ACCEPT, WS_KEY};

/// Fails the test instead of hanging.
async fn bounded<F: Future>(fut: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(10), fut).await.expect("test timed out")
}

/// The handshake error inside `result`.
fn handshake_error<T: std::fmt::Debug>(result: silverback::Result<T>) -> HandshakeError {
    match result {
        Err(Error::Handshake(e)) => e,
        other => panic!("expected a handshake error, got {other:?}"),
    }
}

/// Reads an HTTP head and, if it announces one, its body.
async fn read_http<S: AsyncRead + Unpin>(io: &mut S) -> String {
    let mut out = Vec::new();
    while !out.ends_with(b"\r\n\r\n") {
        assert!(out.len() < 64 * 1024, "endless head");
        match io.read_u8().await {
            Ok(byte) => out.push(byte),
            Err(e) => panic!("eof inside head {:?}: {e}", String::from_utf8_lossy(&out)),
        }
    }
    let head = String::from_utf8(out).unwrap();
    let length = head
        .lines()
        .find_map(|line| line.strip_prefix("Content-Length: "))
        .map_or(0, |len| len.parse::<usize>().unwrap());
    let mut body = vec![0; length];
    io.read_exact(&mut body).await.unwrap();
    head + std::str::from_utf8(&body).unwrap()
}

type Accepted = silverback::Result<(WebSocketStream<DuplexStream>, Request)>;

/// Plays `request` at `upgrader` over a duplex pipe. Answers the server's
/// reply, its result, and the client end when the handshake succeeded. On a
/// refusal, also checks that the server closes its side after the reply.
async fn exchange(upgrader: Upgrader, request: &[u8]) -> (String, Accepted, Option<DuplexStream>) {
    let (mut client, server) = duplex(64 * 1024);
    let task = tokio::spawn(async move { upgrader.accept_with_request(server).await });
    client.write_all(request).await.unwrap();
    let reply = read_http(&mut client).await;
    if reply.starts_with("HTTP/1.1 101 ") {
        return (reply, task.await.unwrap(), Some(client));
    }
    let mut rest = Vec::new();
    client.read_to_end(&mut rest).await.unwrap();
    assert!(rest.is_empty(), "bytes after the refusal: {rest:?}");
    drop(client);
    (reply, task.await.unwrap(), None)
}

/// Plays `request` and expects a refusal with `status_line`, every one of
/// `fields`, and `err`.
async fn expect_refusal(upgrader: Upgrader, request: &str, status_line: &str, fields: &[&str], err: HandshakeError) {
    let (reply, result, _) = exchange(upgrader, request.as_bytes()).await;
    assert!(reply.starts_with(&format!("{status_line}\r\n")), "{reply}");
    assert!(reply.contains("\r\nConnection: close\r\n"), "{reply}");
    assert!(reply.contains("\r\nContent-Length: "), "{reply}");
    for field in fields {
        assert!(reply.contains(&format!("\r\n{field}\r\n")), "{field} missing from {reply}");
    }
    assert_eq!(handshake_error(result), err);
    assert_eq!(err.status().map(|s| s.as_u16()), status_line[9..12].parse().ok());
}

/// A masked client text frame (RFC 6455 §5.7: "Hello", masked).
const MASKED_HELLO: &[u8] = &[0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58];
/// An unmasked server text frame (RFC 6455 §5.7: "Hello").
const UNMASKED_HELLO: &[u8] = &[0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f];

// ---------------------------------------------------------------- server

#[tokio::test]
async fn server_answers_the_rfc_example_exactly() {
    bounded(async {
        let (reply, result, _client) = exchange(Upgrader::new(), UPGRADE_REQUEST.as_bytes()).await;
        assert_eq!(
            reply,
            format!(
                "HTTP/1.1 101 Switching Protocols\r\n\
                 Upgrade: websocket\r\n\
                 Connection: Upgrade\r\n\
                 Sec-WebSocket-Accept: {WS_ACCEPT}\r\n\r\n"
            )
        );
        let (_ws, request) = result.unwrap();
        assert_eq!(request.method(), http::Method::GET);
        assert_eq!(request.uri().path(), "/chat");
        assert_eq!(request.uri().query(), Some("room=1"));
        assert_eq!(request.headers()["host"], "server.example.com");
        assert_eq!(request.headers()["sec-websocket-key"], WS_KEY);
    })
    .await;
}

#[tokio::test]
async fn server_refuses_bad_requests_with_http_errors() {
    use HandshakeError::*;
    let table: &[(String, &str, &[&str], HandshakeError)] = &[
        (edit_request("Upgrade: websocket\r\n", ""), "HTTP/1.1 400 Bad Request", &[], MissingUpgrade),
        (edit_request("Upgrade: websocket", "Upgrade: h2c"), "HTTP/1.1 400 Bad Request", &[], MissingUpgrade),
        (
            edit_request("Connection: Upgrade", "Connection: close"),
            "HTTP/1.1 400 Bad Request",
            &[],
            MissingConnectionUpgrade,
        ),
        (
            edit_request("Sec-WebSocket-Version: 13", "Sec-WebSocket-Version: 8"),
            "HTTP/1.1 426 Upgrade Required",
            &["Sec-WebSocket-Version: 13"],
            UnsupportedVersion,
        ),
        (
            edit_request("Sec-WebSocket-Version: 13\r\n", ""),
            "HTTP/1.1 426 Upgrade Required",
            &["Sec-WebSocket-Version: 13"],
            UnsupportedVersion,
        ),
        (edit_request("GET ", "POST "), "HTTP/1.1 405 Method Not Allowed", &["Allow: GET"], MethodNotAllowed),
        (edit_request(WS_KEY, "c2hvcnQ="), "HTTP/1.1 400 Bad Request", &[], InvalidKey),
        (edit_request(WS_KEY, "not base64 at all!!!!!!!"), "HTTP/1.1 400 Bad Request", &[], InvalidKey),
        (
            edit_request("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", ""),
            "HTTP/1.1 400 Bad Request",
            &[],
            InvalidKey,
        ),
        (edit_request("HTTP/1.1", "HTTP/1.0"), "HTTP/1.1 505 HTTP Version Not Supported", &[], HttpVersionNotSupported),
        (edit_request("Host: server.example.com\r\n", ""), "HTTP/1.1 400 Bad Request", &[], MissingHost),
        ("hello\r\n\r\n".into(), "HTTP/1.1 400 Bad Request", &[], MalformedRequest),
        (
            edit_request("Upgrade: websocket\r\n", "Upgrade: websocket\r\nContent-Length: 3\r\n"),
            "HTTP/1.1 400 Bad Request",
            &[],
            UnexpectedRequestBody,
        ),
    ];
    bounded(async {
        for (request, status_line, fields, err) in table {
            expect_refusal(Upgrader::new(), request, status_line, fields, *err).await;
        }
    })
    .await;
}

#[tokio::test]
async fn server_default_origin_policy_refuses_other_hosts() {
    bounded(async {
        let cross = edit_request("Upgrade:", "Origin: http://evil.example\r\nUpgrade:");
        expect_refusal(Upgrader::new(), &cross, "HTTP/1.1 403 Forbidden", &[], HandshakeError::OriginRejected).await;

        // Same host, any case: allowed.
        let same = edit_request("Upgrade:", "Origin: https://Server.Example.com\r\nUpgrade:");
        let (reply, result, _client) = exchange(Upgrader::new(), same.as_bytes()).await;
        assert!(reply.starts_with("HTTP/1.1 101 "), "{reply}");
        result.unwrap();

        // The free function applies the default policy too.
        let (mut client, server) = duplex(4096);
        let task = tokio::spawn(accept(server));
        client.write_all(cross.as_bytes()).await.unwrap();
        assert!(read_http(&mut client).await.starts_with("HTTP/1.1 403 Forbidden\r\n"));
        drop(client);
        assert_eq!(handshake_error(task.await.unwrap()), HandshakeError::OriginRejected);
    })
    .await;
}

#[tokio::test]
async fn server_origin_policy_can_be_replaced() {
    bounded(async {
        let cross = edit_request("Upgrade:", "Origin: http://evil.example\r\nUpgrade:");
        let (reply, result, _client) = exchange(Upgrader::new().allow_any_origin(), cross.as_bytes()).await;
        assert!(reply.starts_with("HTTP/1.1 101 "), "{reply}");
        result.unwrap();

        let only_evil = || {
            Upgrader::new()
                .check_origin(|req: &Request| req.headers().get("origin").is_some_and(|o| o == "http://evil.example"))
        };
        let (reply, result, _client) = exchange(only_evil(), cross.as_bytes()).await;
        assert!(reply.starts_with("HTTP/1.1 101 "), "{reply}");
        result.unwrap();
        expect_refusal(only_evil(), UPGRADE_REQUEST, "HTTP/1.1 403 Forbidden", &[], HandshakeError::OriginRejected)
            .await;
    })
    .await;
}

#[tokio::test]
async fn server_refuses_large_heads_with_431() {
    bounded(async {
        let padding = format!("X-Padding: {}\r\nUpgrade:", "a".repeat(9000));
        let large = edit_request("Upgrade:", &padding);
        let status = "HTTP/1.1 431 Request Header Fields Too Large";
        expect_refusal(Upgrader::new(), &large, status, &[], HandshakeError::RequestHeadTooLarge).await;

        let small = Upgrader::new().max_head_size(64);
        expect_refusal(small, UPGRADE_REQUEST, status, &[], HandshakeError::RequestHeadTooLarge).await;

        let many: String = (0..70).map(|i| format!("X-{i}: v\r\n")).collect();
        let many = edit_request("Upgrade:", &format!("{many}Upgrade:"));
        expect_refusal(Upgrader::new(), &many, status, &[], HandshakeError::TooManyRequestHeaders).await;
        let few = Upgrader::new().max_headers(4);
        expect_refusal(few, UPGRADE_REQUEST, status, &[], HandshakeError::TooManyRequestHeaders).await;
        let (reply, result, _client) = exchange(Upgrader::new().max_headers(5), UPGRADE_REQUEST.as_bytes()).await;
        assert!(reply.starts_with("HTTP/1.1 101 "), "{reply}");
        result.unwrap();
    })
    .await;
}

/// A refusal must reach a client that sent more than the server read, and
/// the server must finish once the client goes away. (The server closes
/// with a lingering drain because a close with unread input resets the
/// connection, which on real networks can destroy the response in flight;
/// Linux loopback delivers queued data before the reset, so this test
/// cannot reproduce the loss itself.)
#[tokio::test]
async fn server_refusal_reaches_a_client_that_sent_more_than_was_read() {
    bounded(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            Upgrader::new().accept(tcp).await
        });
        let mut client = TcpStream::connect(addr).await.unwrap();
        let padding = format!("X-Padding: {}\r\nUpgrade:", "a".repeat(60_000));
        client.write_all(edit_request("Upgrade:", &padding).as_bytes()).await.unwrap();
        let reply = read_http(&mut client).await;
        assert!(reply.starts_with("HTTP/1.1 431 "), "{reply}");
        drop(client);
        assert_eq!(handshake_error(server.await.unwrap()), HandshakeError::RequestHeadTooLarge);
    })
    .await;
}

#[tokio::test]
async fn server_reports_eof_mid_head_without_answering() {
    bounded(async {
        for cut in [0, 1, UPGRADE_REQUEST.len() / 2, UPGRADE_REQUEST.len() - 1] {
            let (mut client, server) = duplex(4096);
            let task = tokio::spawn(async move { Upgrader::new().accept(server).await });
            client.write_all(&UPGRADE_REQUEST.as_bytes()[..cut]).await.unwrap();
            client.shutdown().await.unwrap();
            assert_eq!(handshake_error(task.await.unwrap()), HandshakeError::UnexpectedEof, "cut {cut}");
            let mut reply = Vec::new();
            client.read_to_end(&mut reply).await.unwrap();
            assert!(reply.is_empty(), "{reply:?}");
        }
    })
    .await;
}

#[tokio::test]
async fn server_handshake_times_out() {
    bounded(async {
        let (mut client, server) = duplex(4096);
        let upgrader = Upgrader::new().handshake_timeout(Duration::from_millis(100));
        let task = tokio::spawn(async move { upgrader.accept(server).await });
        // A slow client: half a head, then nothing.
        client.write_all(&UPGRADE_REQUEST.as_bytes()[..20]).await.unwrap();
        assert_eq!(handshake_error(task.await.unwrap()), HandshakeError::Timeout);
        let mut reply = Vec::new();
        client.read_to_end(&mut reply).await.unwrap();
        assert!(reply.is_empty(), "nothing is sent on timeout: {reply:?}");
    })
    .await;
}

#[tokio::test]
async fn server_selects_the_first_of_its_subprotocols_the_client_offered() {
    let table: &[(&[&str], Option<&str>, Option<&str>)] = &[
        (&["v2", "v1"], Some("v1, v2"), Some("v2")),
        (&["v3", "v1"], Some("v1, v2"), Some("v1")),
        (&["v3"], Some("v1, v2"), None),
        (&["v1"], None, None),
        (&[], Some("v1"), None),
    ];
    bounded(async {
        for (server, offered, chosen) in table {
            let request = match offered {
                Some(list) => edit_request("Upgrade:", &format!("Sec-WebSocket-Protocol: {list}\r\nUpgrade:")),
                None => UPGRADE_REQUEST.to_owned(),
            };
            let upgrader = Upgrader::new().subprotocols(server.iter().copied());
            let (reply, result, _client) = exchange(upgrader, request.as_bytes()).await;
            result.unwrap();
            match chosen {
                Some(p) => assert!(reply.contains(&format!("\r\nSec-WebSocket-Protocol: {p}\r\n")), "{reply}"),
                None => assert!(!reply.contains("Sec-WebSocket-Protocol"), "{reply}"),
            }
        }
    })
    .await;
}

#[tokio::test]
async fn server_sends_extra_headers() {
    bounded(async {
        let upgrader = Upgrader::new().header("x-served-by", "silverback").header("set-cookie", "a=1");
        let (reply, result, _client) = exchange(upgrader, UPGRADE_REQUEST.as_bytes()).await;
        result.unwrap();
        assert!(reply.contains("\r\nx-served-by: silverback\r\n"), "{reply}");
        assert!(reply.contains("\r\nset-cookie: a=1\r\n"), "{reply}");

        // Invalid or handshake-managed fields fail before anything is read.
        for upgrader in [
            Upgrader::new().header("bad name", "x"),
            Upgrader::new().header("x-ok", "bad\r\nvalue"),
            Upgrader::new().header("sec-websocket-accept", "x"),
            Upgrader::new().subprotocols(["not a token"]),
        ] {
            let (_client, server) = duplex(64);
            assert_eq!(handshake_error(upgrader.accept(server).await), HandshakeError::InvalidHeader);
        }
    })
    .await;
}

#[tokio::test]
async fn server_hands_bytes_after_the_head_to_the_codec() {
    bounded(async {
        let (mut client, server) = duplex(4096);
        let task = tokio::spawn(async move { Upgrader::new().accept(server).await });
        // The request and a complete masked frame in one write.
        client.write_all(&[UPGRADE_REQUEST.as_bytes(), MASKED_HELLO].concat()).await.unwrap();
        let reply = read_http(&mut client).await;
        assert!(reply.starts_with("HTTP/1.1 101 "), "{reply}");
        let mut ws = task.await.unwrap().unwrap();
        let msg = ws.next().await.unwrap().unwrap();
        assert_eq!(msg.as_text(), Some("Hello"));
    })
    .await;
}

#[tokio::test]
async fn server_accepts_a_head_arriving_byte_by_byte() {
    bounded(async {
        let (mut client, server) = duplex(4096);
        let task = tokio::spawn(async move { Upgrader::new().accept(server).await });
        for byte in UPGRADE_REQUEST.as_bytes().iter().chain(MASKED_HELLO) {
            client.write_all(&[*byte]).await.unwrap();
            tokio::task::yield_now().await;
        }
        let reply = read_http(&mut client).await;
        assert!(reply.starts_with("HTTP/1.1 101 "), "{reply}");
        let mut ws = task.await.unwrap().unwrap();
        assert_eq!(ws.next().await.unwrap().unwrap().as_text(), Some("Hello"));
    })
    .await;
}

// ---------------------------------------------------------------- client

/// A scripted server on loopback: reads one request head, answers with what
/// `reply(key)` makes of the client's key, closes its sending side, and
/// waits for the client to close. Answers its address and a handle yielding the request it read.
async fn scripted_server(
    reply: impl FnOnce(&str) -> Vec<u8> + Send + 'static,
) -> (String, tokio::task::JoinHandle<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let (mut tcp, _) = listener.accept().await.unwrap();
        let request = read_http(&mut tcp).await;
        let key =
            request.lines().find_map(|line| line.strip_prefix("Sec-WebSocket-Key: ")).unwrap_or_default().to_owned();
        tcp.write_all(&reply(&key)).await.unwrap();
        tcp.shutdown().await.unwrap();
        let mut rest = Vec::new();
        let _ = tcp.read_to_end(&mut rest).await;
        request
    });
    (format!("ws://{addr}/path?q=1"), task)
}

/// The accept value for `key` (RFC 6455 §4.2.2), computed here rather than
/// by the library under test.
fn accept_for(key: &str) -> String {
    use base64::Engine as _;
    use sha1::Digest as _;
    let mut sha1 = sha1::Sha1::new();
    sha1.update(key.as_bytes());
    sha1.update(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    base64::engine::general_purpose::STANDARD.encode(sha1.finalize())
}

fn switching(key: &str, extra: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {}\r\n{extra}\r\n",
        accept_for(key)
    )
    .into_bytes()
}

#[tokio::test]
async fn client_sends_a_valid_request_and_reads_the_response() {
    bounded(async {
        let (url, server) = scripted_server(|key| switching(key, "X-Server: scripted\r\n")).await;
        let (ws, response) = connect(&url).await.unwrap();
        assert_eq!(response.status(), http::StatusCode::SWITCHING_PROTOCOLS);
        assert_eq!(response.headers()["x-server"], "scripted");
        drop(ws);
        let request = server.await.unwrap();
        let port = url.trim_start_matches("ws://127.0.0.1:").split('/').next().unwrap();
        assert!(request.starts_with(&format!("GET /path?q=1 HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n")), "{request}");
        for field in ["Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Version: 13"] {
            assert!(request.contains(&format!("\r\n{field}\r\n")), "{request}");
        }
        assert!(!request.to_ascii_lowercase().contains("origin"), "no Origin by default: {request}");
        assert!(!request.contains("Sec-WebSocket-Protocol"), "{request}");
    })
    .await;
}

#[tokio::test]
async fn client_refuses_bad_responses() {
    use HandshakeError::*;
    type Reply = fn(&str) -> Vec<u8>;
    let table: &[(Reply, HandshakeError)] = &[
        (
            |_| {
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n".to_vec()
            },
            InvalidAcceptKey,
        ),
        (
            |_| b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nnot found".to_vec(),
            UnexpectedStatus(http::StatusCode::NOT_FOUND),
        ),
        (|key| switching(key, "Sec-WebSocket-Protocol: mqtt\r\n"), UnofferedSubprotocol),
        (|key| switching(key, "Sec-WebSocket-Extensions: permessage-deflate\r\n"), UnofferedExtension),
        (
            |key| String::from_utf8(switching(key, "")).unwrap().replace("Upgrade: websocket\r\n", "").into_bytes(),
            ResponseMissingUpgrade,
        ),
        (
            |key| {
                String::from_utf8(switching(key, ""))
                    .unwrap()
                    .replace("Connection: Upgrade", "Connection: close")
                    .into_bytes()
            },
            ResponseMissingConnectionUpgrade,
        ),
        (|_| b"SSH-2.0-OpenSSH_9.6\r\n\r\n".to_vec(), MalformedResponse),
        (|_| b"HTTP/1.1 101 Switching".to_vec(), UnexpectedEof),
    ];
    bounded(async {
        for (reply, err) in table {
            let (url, server) = scripted_server(*reply).await;
            let connector = Connector::new().subprotocols(["chat"]);
            assert_eq!(handshake_error(connector.connect(&url).await), *err);
            server.abort();
        }
    })
    .await;
}

#[tokio::test]
async fn client_hands_bytes_after_the_response_to_the_codec() {
    bounded(async {
        let (url, _server) = scripted_server(|key| [switching(key, ""), UNMASKED_HELLO.to_vec()].concat()).await;
        let (mut ws, _) = connect(&url).await.unwrap();
        assert_eq!(ws.next().await.unwrap().unwrap().as_text(), Some("Hello"));
    })
    .await;
}

#[tokio::test]
async fn client_accepts_an_offered_subprotocol_and_sends_its_headers() {
    bounded(async {
        let (url, server) = scripted_server(|key| switching(key, "Sec-WebSocket-Protocol: v1\r\n")).await;
        let connector = Connector::new()
            .subprotocols(["v2", "v1"])
            .origin("https://app.example")
            .header("authorization", "Bearer t");
        let (_ws, response) = connector.connect(&url).await.unwrap();
        assert_eq!(response.headers()["sec-websocket-protocol"], "v1");
        drop(_ws);
        let request = server.await.unwrap();
        assert!(request.contains("\r\nSec-WebSocket-Protocol: v2, v1\r\n"), "{request}");
        assert!(request.contains("\r\norigin: https://app.example\r\n"), "{request}");
        assert!(request.contains("\r\nauthorization: Bearer t\r\n"), "{request}");
    })
    .await;
}

#[tokio::test]
async fn client_refuses_bad_urls_and_configuration() {
    use HandshakeError::*;
    bounded(async {
        let mut table: Vec<(&str, HandshakeError)> = vec![
            ("http://127.0.0.1:1/", UnsupportedScheme),
            ("ws://127.0.0.1:1/#fragment", InvalidUrl),
            ("not a url", InvalidUrl),
        ];
        // With TLS built in, wss:// gets as far as connecting (tests/reach.rs).
        if !cfg!(feature = "rustls") {
            table.push(("wss://127.0.0.1:1/", TlsNotEnabled));
        }
        for (url, err) in &table {
            assert_eq!(handshake_error(connect(url).await), *err, "{url}");
        }
        for connector in [
            Connector::new().header("connection", "close"),
            Connector::new().header("sec-websocket-key", "x"),
            Connector::new().origin("bad\nvalue"),
            Connector::new().subprotocols(["a,b"]),
        ] {
            assert_eq!(handshake_error(connector.connect("ws://127.0.0.1:1/").await), InvalidHeader);
        }
    })
    .await;
}

#[tokio::test]
async fn client_handshake_times_out() {
    bounded(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("ws://{}/", listener.local_addr().unwrap());
        // Accepts and never answers.
        let server = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            tokio::time::sleep(Duration::from_secs(5)).await;
            drop(tcp);
        });
        let connector = Connector::new().handshake_timeout(Duration::from_millis(100));
        assert_eq!(handshake_error(connector.connect(&url).await), HandshakeError::Timeout);
        server.abort();
    })
    .await;
}

// ---------------------------------------------------------------- both

#[tokio::test]
async fn round_trip_over_loopback_tcp() {
    bounded(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("ws://{}/echo", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            tcp.set_nodelay(true).unwrap();
            let mut ws = accept(tcp).await.unwrap();
            while let Some(msg) = ws.next().await {
                let msg = msg.unwrap();
                if msg.is_text() || msg.is_binary() {
                    ws.send(msg).await.unwrap();
                }
            }
        });
        let (mut ws, response) = connect(&url).await.unwrap();
        assert_eq!(response.status(), 101);
        for text in ["hello", "", "ünïcödé"] {
            ws.send(Message::text(text)).await.unwrap();
            assert_eq!(ws.next().await.unwrap().unwrap().as_text(), Some(text));
        }
        ws.send(Message::binary(vec![1, 2, 3])).await.unwrap();
        assert_eq!(&ws.next().await.unwrap().unwrap().into_data()[..], &[1, 2, 3]);
        ws.close(None).await.unwrap();
        server.await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn round_trip_over_duplex_with_connect_on_and_subprotocols() {
    bounded(async {
        let (client_io, server_io) = duplex(64 * 1024);
        let upgrader = Upgrader::new().subprotocols(["v2", "v1"]).allow_any_origin();
        let server = tokio::spawn(async move {
            let (mut ws, request) = upgrader.accept_with_request(server_io).await.unwrap();
            assert_eq!(request.uri().path(), "/room/7");
            assert_eq!(request.headers()["origin"], "https://app.example");
            let msg = ws.next().await.unwrap().unwrap();
            ws.send(msg).await.unwrap();
            ws
        });
        // wss:// is fine here: the stream's security is the caller's business.
        let connector = Connector::new().subprotocols(["v1", "v2"]).origin("https://app.example");
        let (mut ws, response) = connector.connect_on(client_io, "wss://example.com/room/7").await.unwrap();
        assert_eq!(response.headers()["sec-websocket-protocol"], "v2");
        ws.send(Message::text("ping")).await.unwrap();
        assert_eq!(ws.next().await.unwrap().unwrap().as_text(), Some("ping"));
        drop(server.await.unwrap());
    })
    .await;
}

#[test]
fn public_types_are_send_sync_static() {
    fn send_sync<T: Send + Sync + 'static>() {}
    send_sync::<HandshakeError>();
    send_sync::<Upgrader>();
    send_sync::<Connector>();
    send_sync::<Error>();
}

/// Applies the setters named by `order` (indices into the three below) to an
/// upgrader, in that order.
#[cfg(feature = "deflate")]
fn upgrader_in_order(order: &[usize]) -> Upgrader {
    use silverback::{Config, DeflateConfig};
    order.iter().fold(Upgrader::new().allow_any_origin(), |u, step| match step {
        0 => u.deflate(DeflateConfig::default()),
        1 => u.config(Config::default().close_timeout(Duration::from_secs(3))),
        _ => u.handshake_timeout(Duration::from_secs(5)),
    })
}

/// The same for a connector.
#[cfg(feature = "deflate")]
fn connector_in_order(order: &[usize]) -> Connector {
    use silverback::{Config, DeflateConfig};
    order.iter().fold(Connector::new(), |c, step| match step {
        0 => c.deflate(DeflateConfig::default()),
        1 => c.config(Config::default().close_timeout(Duration::from_secs(3))),
        _ => c.handshake_timeout(Duration::from_secs(5)),
    })
}

/// Every order of three indices.
#[cfg(feature = "deflate")]
const ORDERS: [[usize; 3]; 6] = [[0, 1, 2], [0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]];

/// Runs a handshake over a duplex pipe and one message each way; answers
/// whether each side compresses, and the response's extensions field.
#[cfg(feature = "deflate")]
async fn negotiate(upgrader: Upgrader, connector: Connector) -> (bool, bool, Option<String>) {
    let (client_io, server_io) = duplex(64 * 1024);
    let server = tokio::spawn(async move {
        let mut ws = upgrader.accept(server_io).await.unwrap();
        let msg = ws.next().await.unwrap().unwrap();
        ws.send(msg).await.unwrap();
        ws.is_compressing()
    });
    let (mut ws, response) = connector.connect_on(client_io, "ws://example.com/").await.unwrap();
    let extensions = response.headers().get("sec-websocket-extensions").map(|v| v.to_str().unwrap().to_owned());
    let text = "compress me ".repeat(20);
    ws.send(Message::text(text.clone())).await.unwrap();
    assert_eq!(ws.next().await.unwrap().unwrap().as_text(), Some(text.as_str()));
    (server.await.unwrap(), ws.is_compressing(), extensions)
}

/// Regression: `.deflate(d).config(c)` used to drop compression, because
/// `config` replaced the whole `Config`, deflate setting included.
#[cfg(feature = "deflate")]
#[tokio::test]
async fn builder_setters_give_the_same_result_in_every_order() {
    bounded(async {
        for order in ORDERS {
            let (server, client, ext) = negotiate(upgrader_in_order(&order), connector_in_order(&[0])).await;
            assert!(server && client, "upgrader order {order:?}: compression not negotiated ({ext:?})");
            let (server, client, ext) =
                negotiate(Upgrader::new().deflate(Default::default()), connector_in_order(&order)).await;
            assert!(server && client, "connector order {order:?}: compression not negotiated ({ext:?})");
        }
    })
    .await;
}

/// `Config::deflate` alone turns compression on; given both ways, the
/// builder's own `deflate` setter wins, whatever the order.
#[cfg(feature = "deflate")]
#[tokio::test]
async fn builder_deflate_wins_over_config_deflate_in_either_order() {
    use silverback::{Config, DeflateConfig};
    bounded(async {
        let in_config = Config::default().deflate(DeflateConfig::default());
        let (server, client, _) =
            negotiate(Upgrader::new().config(in_config), Connector::new().config(in_config)).await;
        assert!(server && client, "Config::deflate alone negotiates compression");

        let builder_says = DeflateConfig::default().server_no_context_takeover(true);
        for upgrader in [
            Upgrader::new().config(in_config).deflate(builder_says),
            Upgrader::new().deflate(builder_says).config(in_config),
        ] {
            let (_, _, ext) = negotiate(upgrader, Connector::new().deflate(DeflateConfig::default())).await;
            let ext = ext.expect("extension agreed");
            assert!(ext.contains("server_no_context_takeover"), "the upgrader's setting wins: {ext}");
        }
    })
    .await;
}

/// A transport that is neither `Send` nor `Sync`.
struct LocalIo {
    io: DuplexStream,
    _not_send: std::rc::Rc<()>,
}

impl LocalIo {
    fn new(io: DuplexStream) -> Self {
        LocalIo { io, _not_send: std::rc::Rc::new(()) }
    }
}

impl AsyncRead for LocalIo {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for LocalIo {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// Nothing in the handshake spawns, so `accept` and `connect_on` take a
/// `!Send` transport on a current-thread runtime.
#[tokio::test(flavor = "current_thread")]
async fn handshakes_run_over_a_transport_that_is_not_send() {
    let local = tokio::task::LocalSet::new();
    local
        .run_until(bounded(async {
            let (client_io, server_io) = duplex(64 * 1024);
            let server = tokio::task::spawn_local(async move {
                let mut ws = accept(LocalIo::new(server_io)).await.unwrap();
                let msg = ws.next().await.unwrap().unwrap();
                ws.send(msg).await.unwrap();
                ws.close(None).await.unwrap();
            });
            let (mut ws, _) = Connector::new().connect_on(LocalIo::new(client_io), "ws://localhost/").await.unwrap();
            ws.send(Message::text("local")).await.unwrap();
            assert_eq!(ws.next().await.unwrap().unwrap().as_text(), Some("local"));
            assert!(ws.next().await.unwrap().unwrap().is_close());
            server.await.unwrap();
        }))
        .await;
}

/// ... and a borrowed, non-`'static` one: the caller keeps its transport.
#[tokio::test(flavor = "current_thread")]
async fn handshakes_run_over_a_borrowed_transport() {
    bounded(async {
        let (mut client_io, mut server_io) = duplex(64 * 1024);
        let upgrader = Upgrader::new();
        let server = async {
            let mut ws = upgrader.accept(&mut server_io).await.unwrap();
            let msg = ws.next().await.unwrap().unwrap();
            ws.send(msg).await.unwrap();
        };
        let client = async {
            let (mut ws, _) = Connector::new().connect_on(&mut client_io, "ws://localhost/").await.unwrap();
            ws.send(Message::text("borrowed")).await.unwrap();
            assert_eq!(ws.next().await.unwrap().unwrap().as_text(), Some("borrowed"));
        };
        tokio::join!(server, client);
    })
    .await;
    // Both ends are still ours here.
}

/// Loosening the bounds kept the handshake futures `Send` for a `Send`
/// transport, so they can still be spawned on a multi-threaded runtime.
#[test]
fn handshake_futures_are_send_for_send_transports() {
    fn send<T: Send>(_: &T) {}
    let upgrader = Upgrader::new();
    let connector = Connector::new();
    let (a, b) = duplex(64);
    let (c, d) = duplex(64);
    send(&accept(a));
    send(&upgrader.accept_with_request(b));
    send(&connector.connect_on(c, "ws://localhost/"));
    send(&connect("ws://localhost/"));
    drop(d);
}
