//! End-to-end tests of the chat example (`examples/chat.rs`), run as its own
//! process: the test builds it (`cargo build --example chat`, same profile,
//! target directory and features as this test), starts it on
//! `127.0.0.1:0` and reads the port from its `listening on http://ADDR`
//! line. Each test starts its own server and kills it when done.
//!
//! - `two_browser_pages_chat`: two headless Chromium pages (Debian's
//!   `chromium`, driven by `playwright-core` from npm through
//!   `tests/chat_browser/drive.mjs`) load `/`, each sends a message through
//!   the page's form, and each must show the other's message. It runs only
//!   under `SILVERBACK_CONFORMANCE=1`, which `scripts/conformance.sh` sets
//!   after installing the browser and `playwright-core` (into
//!   `<target>/chat-e2e`) with `tests/chat_browser/setup.sh`; without it the
//!   test prints one line and passes, so `cargo test` stays hermetic. With
//!   it, the test finds them through `setup.sh --check` (once per test
//!   binary), which installs nothing: anything missing fails the test.
//! - `clients_chat_and_a_slow_one_is_dropped`: silverback clients on `/ws`,
//!   one with the page's `Origin`, one without, exchange messages; a
//!   foreign `Origin` is refused with 403; `/` serves the page and other
//!   paths 404. A third client that never reads is dropped by the hub once
//!   its socket stopped draining for the lag time, while the other two keep
//!   receiving everything.
//! - `a_burst_reaches_every_reading_client`: 300 clients, one of which sends
//!   1 000 small messages as fast as it can; every client receives all of
//!   them, in order (the hub of old dropped nearly all of them with 1008
//!   once their 256-message queues filled).
//!
//! Every child process and every wait is bounded in time, so a hang fails a
//! test instead of stalling it.

#![cfg(unix)]

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use silverback::{CloseCode, Connector, Error, HandshakeError, Message};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::mpsc as tmpsc;
use tokio::time::timeout;

use common::process::{browser_tools_for, ExampleServer};

/// Bound on one run of `drive.mjs` (each of its waits is 20 s at most).
const DRIVE_TIMEOUT: Duration = Duration::from_secs(180);
/// Bound on one step: the server starting, a handshake, a message arriving.
const STEP: Duration = Duration::from_secs(20);
/// Bound on the whole socket scenario.
const SCENARIO: Duration = Duration::from_secs(120);

// ---------------------------------------------------------------------------
// the chat server
// ---------------------------------------------------------------------------

/// Builds the chat example once per test binary; its path.
fn chat_binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        let started = Instant::now();
        let path = common::build_example("chat");
        eprintln!("built the chat example in {:.1?}", started.elapsed());
        path
    })
}

/// Builds (once) and starts the chat example on a free port.
fn start_chat() -> ExampleServer {
    ExampleServer::start(chat_binary(), ["127.0.0.1:0"], "http", STEP)
}

/// The chat WebSocket of `server`.
fn ws_url(server: &ExampleServer) -> String {
    format!("ws://{}/ws", server.addr)
}

// ---------------------------------------------------------------------------
// browser test
// ---------------------------------------------------------------------------

#[test]
fn two_browser_pages_chat() {
    let Some(tools) = browser_tools_for("two_browser_pages_chat: Chromium and Node playwright-core") else { return };
    let server = start_chat();
    let url = format!("http://{}/", server.addr);
    let nonce = std::process::id();
    let msg_a = format!("hello from page A ({nonce})");
    let msg_b = format!("hi from page B, <b>not bold</b> ({nonce})");

    let (out, report) = tools.drive("chat_browser/drive.mjs", [&url, &msg_a, &msg_b], DRIVE_TIMEOUT);
    let log = |page: &str| -> Vec<String> {
        report[page]
            .as_array()
            .unwrap_or_else(|| panic!("no log for page {page} in {report}"))
            .iter()
            .filter_map(|m| m.as_str().map(str::to_owned))
            .collect()
    };
    let (log_a, log_b) = (log("a"), log("b"));
    assert!(log_a.contains(&msg_b), "page A did not receive page B's message: {log_a:?} ({report})");
    assert!(log_b.contains(&msg_a), "page B did not receive page A's message: {log_b:?} ({report})");
    assert!(log_a.contains(&msg_a) && log_b.contains(&msg_b), "a page missed its own message: {report}");
    assert!(out.status.success(), "drive.mjs failed ({}): {report}\n{}", out.status, out.stderr);
}

// ---------------------------------------------------------------------------
// socket test
// ---------------------------------------------------------------------------

/// The largest chat message (`MAX_MESSAGE_SIZE` in the example).
const MAX_MESSAGE: usize = 4096;
/// Flood messages the fast client sends at most before the slow one must
/// have been dropped (about 40 MB).
const MAX_FLOOD: usize = 10_000;
/// Flood messages sent after the drop, which the others must still get.
const AFTER_DROP: usize = 50;

/// A flood message: its number, padded to near the size limit.
fn flood(i: usize) -> String {
    let mut text = format!("m{i:06} ");
    text.extend(std::iter::repeat_n('x', MAX_MESSAGE - 100));
    text
}

/// The number of a flood message.
fn flood_index(text: &str) -> Option<usize> {
    text.strip_prefix('m')?.get(..6)?.parse().ok()
}

/// Reads a connection on a task, forwarding every text message.
fn reader<S>(mut read: silverback::ReadHalf<S>) -> tmpsc::UnboundedReceiver<String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (tx, rx) = tmpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(Ok(msg)) = read.next().await {
            if let Some(text) = msg.as_text() {
                if tx.send(text.to_owned()).is_err() {
                    break;
                }
            }
        }
    });
    rx
}

/// Waits until every one of `want` has arrived on `rx`, in any order,
/// skipping other messages.
async fn expect(rx: &mut tmpsc::UnboundedReceiver<String>, want: &[&str], who: &str) {
    let mut missing: Vec<&str> = want.to_vec();
    let done = timeout(STEP, async {
        while !missing.is_empty() {
            let Some(text) = rx.recv().await else { return false };
            missing.retain(|w| *w != text);
        }
        true
    })
    .await;
    let short: Vec<&str> = missing.iter().map(|w| &w[..w.len().min(40)]).collect();
    assert_eq!(done, Ok(true), "{who} did not receive {short:?}");
}

/// Sends a GET and returns the whole response.
async fn http_get(addr: SocketAddr, path: &str) -> String {
    let mut tcp = TcpStream::connect(addr).await.expect("connect");
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    tcp.write_all(request.as_bytes()).await.expect("write request");
    let mut response = Vec::new();
    timeout(STEP, tcp.read_to_end(&mut response)).await.expect("response in time").expect("read response");
    String::from_utf8_lossy(&response).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_chat_and_a_slow_one_is_dropped() {
    let server = tokio::task::spawn_blocking(start_chat).await.expect("server start");
    timeout(SCENARIO, scenario(&server)).await.expect("the scenario took too long");
}

async fn scenario(server: &ExampleServer) {
    let addr = server.addr;
    let url = ws_url(server);

    // Plain HTTP routing.
    let page = http_get(addr, "/").await;
    assert!(page.starts_with("HTTP/1.1 200 OK\r\n"), "GET /: {page}");
    assert!(page.contains("text/html") && page.contains("new WebSocket(") && page.contains("/ws"), "GET /: {page}");
    let missing = http_get(addr, "/missing").await;
    assert!(missing.starts_with("HTTP/1.1 404"), "GET /missing: {missing}");

    // A page of another site may not connect.
    let foreign = Connector::new().origin("http://evil.example").connect(&url).await;
    match foreign {
        Err(Error::Handshake(HandshakeError::UnexpectedStatus(status))) => assert_eq!(status.as_u16(), 403),
        other => panic!("a foreign origin must be refused with 403, got {:?}", other.map(|_| ())),
    }

    // A: the page's own origin; B: no origin (not a browser); C: never reads,
    // with a small receive buffer so that it fills up soon.
    let connect = |connector: Connector| {
        let url = url.clone();
        async move { timeout(STEP, connector.connect(&url)).await.expect("handshake in time").expect("handshake").0 }
    };
    let (read_a, mut write_a) = connect(Connector::new().origin(format!("http://{addr}"))).await.split();
    let (read_b, mut write_b) = connect(Connector::new()).await.split();
    let socket = TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("SO_RCVBUF");
    let tcp = socket.connect(addr).await.expect("connect C");
    let (mut slow, _) = timeout(STEP, Connector::new().connect_on(tcp, &url)).await.expect("C in time").expect("C");
    let (mut rx_a, mut rx_b) = (reader(read_a), reader(read_b));

    // Each says hello in turn. A client hearing its own hello is in the
    // room (it subscribes before its messages are read), so each hello is
    // sent only once the clients before it are in: the server's connection
    // tasks may get there in any order.
    write_a.send(Message::text("A is here")).await.expect("A send");
    expect(&mut rx_a, &["A is here"], "A").await;
    write_b.send(Message::text("B is here")).await.expect("B send");
    expect(&mut rx_b, &["B is here"], "B").await;
    slow.send(Message::text("C is here")).await.expect("C send");
    expect(&mut rx_a, &["B is here", "C is here"], "A").await;
    expect(&mut rx_b, &["C is here"], "B").await;

    // Binary messages are refused with 1003, messages over the limit with 1009.
    for (msg, code) in [
        (Message::binary(&b"\x00\x01"[..]), CloseCode::UNSUPPORTED_DATA),
        (Message::text("y".repeat(MAX_MESSAGE + 1)), CloseCode::MESSAGE_TOO_BIG),
    ] {
        let mut ws = connect(Connector::new()).await;
        ws.send(msg).await.expect("send");
        let closed = timeout(STEP, async {
            loop {
                match ws.next().await {
                    Some(Ok(Message::Close(frame))) => return frame.map(|f| f.code),
                    Some(Ok(_)) => {}
                    other => panic!("expected a close frame, got {other:?}"),
                }
            }
        })
        .await
        .expect("close in time");
        assert_eq!(closed, Some(code));
    }

    // A floods the room in lockstep (each message waits for its own echo, so
    // A and B never fall behind) until the hub drops the slow client C.
    let started = Instant::now();
    let mut dropped_at = None;
    let mut sent = 0;
    while sent < dropped_at.map_or(MAX_FLOOD, |at| at + AFTER_DROP) {
        write_a.send(Message::text(flood(sent))).await.expect("A send");
        expect(&mut rx_a, &[&flood(sent)], "A").await;
        sent += 1;
        if dropped_at.is_none() && server.printed().iter().any(|l| l.contains("dropped: too slow")) {
            dropped_at = Some(sent);
        }
    }
    let dropped_at = dropped_at.unwrap_or_else(|| panic!("the slow client was not dropped after {sent} messages"));
    eprintln!("slow client dropped after {dropped_at} messages ({:.1?}); {sent} sent", started.elapsed());

    // B got every message, in order, after the drop too.
    let mut next = 0;
    while next < sent {
        let text = timeout(STEP, rx_b.recv()).await.expect("B keeps receiving").expect("B's connection open");
        if let Some(i) = flood_index(&text) {
            assert_eq!(i, next, "B received messages out of order");
            next += 1;
        }
    }

    // C, reading at last, finds the messages up to its drop (in order), then
    // the end of the connection: the hub's close 1008 or, if the server's
    // write timeout struck first, a broken connection.
    let mut received = 0;
    let ending = timeout(STEP, async {
        loop {
            match slow.next().await {
                Some(Ok(Message::Text(text))) => {
                    if let Some(i) = flood_index(&text) {
                        assert_eq!(i, received, "C received messages out of order");
                        received += 1;
                    }
                }
                Some(Ok(Message::Close(frame))) => return format!("close {frame:?}"),
                Some(Ok(_)) => {}
                Some(Err(e)) => return format!("error {e}"),
                None => return "end of stream".to_owned(),
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("C's connection did not end ({received} messages read)"));
    eprintln!("C read {received} of {sent} messages, then: {ending}");
    assert!(received < sent, "C was not dropped: it read all {sent} messages");
    if ending.starts_with("close") {
        assert!(ending.contains(&format!("{:?}", CloseCode::POLICY_VIOLATION)), "C's close: {ending}");
    }

    // A and B are still in the room.
    write_b.send(Message::text("B still here")).await.expect("B send");
    expect(&mut rx_a, &["B still here"], "A").await;
    write_a.send_close(None).await.expect("A close");
    write_b.send_close(None).await.expect("B close");
}

// ---------------------------------------------------------------------------
// burst test
// ---------------------------------------------------------------------------

/// Clients in the burst test.
const BURST_CLIENTS: usize = 300;
/// Messages the one sender sends in a burst.
const BURST: usize = 1_000;

/// A 64-byte burst message carrying its number.
fn burst_message(i: usize) -> String {
    format!("b{i:06} {}", "z".repeat(56))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_reaches_every_reading_client() {
    let server = tokio::task::spawn_blocking(start_chat).await.expect("server start");
    timeout(SCENARIO, burst_scenario(&server)).await.expect("the burst scenario took too long");
}

async fn burst_scenario(server: &ExampleServer) {
    let url = ws_url(server);
    let mut readers = Vec::new();
    let mut writes = Vec::new();
    for n in 0..BURST_CLIENTS {
        let (ws, _) =
            timeout(STEP, Connector::new().connect(&url)).await.expect("handshake in time").expect("handshake");
        let (mut read, write) = ws.split();
        writes.push(write);
        readers.push(tokio::spawn(async move {
            let mut next = 0;
            while next < BURST {
                match read.next().await {
                    Some(Ok(Message::Text(text))) => {
                        let i: usize = text.as_str()[1..7].parse().expect("a burst message");
                        assert_eq!(i, next, "client {n} received messages out of order");
                        next += 1;
                    }
                    Some(Ok(_)) => {}
                    Some(Err(e)) => return Err(format!("client {n}: {e} after {next} messages")),
                    None => return Err(format!("client {n}: connection ended after {next} messages")),
                }
            }
            Ok(())
        }));
    }
    // Every client has joined once the server counted them all.
    let joined = format!("({BURST_CLIENTS} connected)");
    timeout(STEP, async {
        while !server.printed().iter().any(|l| l.contains(&joined)) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("every client joined");

    let sender = &mut writes[0];
    let started = Instant::now();
    for i in 0..BURST {
        sender.feed(Message::text(burst_message(i))).await.expect("feed");
    }
    sender.flush().await.expect("flush");
    let mut failures = Vec::new();
    for reader in readers {
        if let Err(e) = reader.await.expect("reader task") {
            failures.push(e);
        }
    }
    let elapsed = started.elapsed();
    assert!(failures.is_empty(), "{} of {BURST_CLIENTS} clients missed messages: {failures:?}", failures.len());
    eprintln!(
        "{BURST_CLIENTS} clients x {BURST} messages delivered in {elapsed:.2?} ({:.0} messages/s)",
        (BURST_CLIENTS * BURST) as f64 / elapsed.as_secs_f64()
    );
    let dropped: Vec<String> = server.printed().into_iter().filter(|l| l.contains("dropped")).collect();
    assert!(dropped.is_empty(), "the server dropped clients: {dropped:?}");
}
