//! The bad-input suite: hostile peers over real loopback sockets.
//!
//! A loopback server runs an accept loop (an [`Upgrader`] with small limits
//! and a 500 ms handshake timeout, then an echo loop per connection) and
//! reports every connection's typed outcome over a channel. Raw TCP peers
//! write exact bytes at it: one table of malformed handshakes (checked for
//! the exact status line, the fields RFC 6455 requires in it, and the
//! [`HandshakeError`]), one table of malformed frames after a valid upgrade
//! (checked for the exact bytes sent back, the close code among them, and
//! the typed [`Error`]). After every row a fresh, well-behaved client still
//! gets its echo, so a row that kills or wedges the server fails the test;
//! some rows also run concurrently beside a healthy connection held open
//! the whole time. The client side gets the same treatment from a raw
//! server that answers the upgrade correctly and then misbehaves.
//!
//! Every wait is bounded (`within`), everything is loopback, and the file
//! runs in about a second.

mod common;

use std::cell::Cell;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use base64::Engine as _;
use futures_util::{SinkExt, StreamExt};
use silverback::{CapacityError, Config, Connector, Error, HandshakeError, Limits, ProtocolError, Upgrader};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::{JoinError, JoinHandle, JoinSet};

use common::{
    client_frame, client_header_len, client_msg, close_payload, edit_request, op, read_frame, request_with_fields,
    server_close_bytes, server_frame, try_read_frame, within, KEY, UPGRADE_REQUEST, WS_ACCEPT, WS_KEY,
};

/// The server's handshake timeout: the bound on a slowloris client.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_millis(500);
/// The server's `max_frame_size`.
const MAX_FRAME: usize = 64 * 1024;
/// The server's `max_message_size`.
const MAX_MESSAGE: usize = 256 * 1024;

/// RSV bits as the 3-bit value `ProtocolError::ReservedBits` carries.
const RSV1: u8 = 0b100;
const RSV2: u8 = 0b010;
const RSV3: u8 = 0b001;

// ---------------------------------------------------------------------------
// The server under test.

fn limits() -> Limits {
    Limits::default().max_frame_size(MAX_FRAME).max_message_size(MAX_MESSAGE)
}

/// The upgrader every connection goes through. permessage-deflate is
/// accepted when offered (the compressed rows offer it; the others do not,
/// so for them RSV1 stays reserved).
fn upgrader() -> Upgrader {
    let upgrader = Upgrader::new()
        .config(Config::default().limits(limits()))
        .allow_any_origin()
        .handshake_timeout(HANDSHAKE_TIMEOUT);
    #[cfg(feature = "deflate")]
    let upgrader = upgrader.deflate(silverback::DeflateConfig::default());
    upgrader
}

/// Handshake, then echo data messages until the stream ends; the first
/// error ends the connection and is its outcome.
async fn serve(upgrader: Upgrader, tcp: TcpStream) -> silverback::Result<()> {
    tcp.set_nodelay(true)?;
    let mut ws = upgrader.accept(tcp).await?;
    while let Some(msg) = ws.next().await {
        let msg = msg?;
        if msg.is_text() || msg.is_binary() {
            ws.send(msg).await?;
        }
    }
    Ok(())
}

/// What became of one connection: its result, or the panic of its task.
type Outcome = Result<silverback::Result<()>, JoinError>;

/// A loopback server and the outcomes of its connections, keyed by the
/// client's address (the raw peer's `local_addr`).
struct Server {
    addr: SocketAddr,
    accept_loop: JoinHandle<()>,
    outcomes: mpsc::UnboundedReceiver<(SocketAddr, Outcome)>,
    seen: HashMap<SocketAddr, Outcome>,
}

impl Server {
    async fn start() -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        let (tx, outcomes) = mpsc::unbounded_channel();
        let upgrader = upgrader();
        let accept_loop = tokio::spawn(async move {
            loop {
                let (tcp, peer) = listener.accept().await.expect("accept");
                let connection = tokio::spawn(serve(upgrader.clone(), tcp));
                let tx = tx.clone();
                tokio::spawn(async move {
                    let _ = tx.send((peer, connection.await));
                });
            }
        });
        Server { addr, accept_loop, outcomes, seen: HashMap::new() }
    }

    /// The outcome of the connection from `peer`, once it has ended.
    async fn outcome(&mut self, peer: SocketAddr) -> silverback::Result<()> {
        loop {
            if let Some(outcome) = self.seen.remove(&peer) {
                return outcome.unwrap_or_else(|e| panic!("the connection task for {peer} panicked: {e}"));
            }
            let (addr, outcome) =
                within("a connection's outcome", self.outcomes.recv()).await.expect("the accept loop is gone");
            self.seen.insert(addr, outcome);
        }
    }

    /// The typed error the connection from `peer` ended with.
    async fn error(&mut self, peer: SocketAddr, what: &str) -> Error {
        match self.outcome(peer).await {
            Ok(()) => panic!("{what}: the server reported success"),
            Err(e) => e,
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.accept_loop.abort();
    }
}

// ---------------------------------------------------------------------------
// Raw peers.

/// Reads an HTTP head, byte by byte so nothing after it is consumed.
async fn read_http_head<R: AsyncRead + Unpin>(r: &mut R) -> String {
    within("an http head", async {
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            assert!(head.len() < 64 * 1024, "endless head");
            match r.read_u8().await {
                Ok(byte) => head.push(byte),
                Err(e) => panic!("eof inside head {:?}: {e}", String::from_utf8_lossy(&head)),
            }
        }
        String::from_utf8(head).expect("an ascii head")
    })
    .await
}

/// Everything the other side sends until it closes. A reset counts as the
/// close (Linux delivers data queued before a reset first).
async fn read_until_closed<R: AsyncRead + Unpin>(r: &mut R) -> Vec<u8> {
    within("the peer to close the connection", async {
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match r.read(&mut buf).await {
                Ok(0) => return out,
                Ok(n) => out.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return out,
                Err(e) => panic!("read: {e}"),
            }
        }
    })
    .await
}

async fn connect_raw(addr: SocketAddr) -> (TcpStream, SocketAddr) {
    let tcp = within("connect", TcpStream::connect(addr)).await.expect("connect");
    tcp.set_nodelay(true).expect("nodelay");
    let local = tcp.local_addr().expect("local addr");
    (tcp, local)
}

/// Connects and upgrades with a raw request (offering permessage-deflate
/// if `deflate`), checks the 101 response, and answers the stream and the
/// address the server sees.
async fn upgrade(addr: SocketAddr, deflate: bool) -> (TcpStream, SocketAddr) {
    let (mut tcp, local) = connect_raw(addr).await;
    let request = if deflate {
        UPGRADE_REQUEST.replace("\r\n\r\n", "\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n")
    } else {
        UPGRADE_REQUEST.to_owned()
    };
    tcp.write_all(request.as_bytes()).await.expect("write request");
    let head = read_http_head(&mut tcp).await;
    assert!(head.starts_with("HTTP/1.1 101 Switching Protocols\r\n"), "{head}");
    assert!(head.contains(&format!("\r\nSec-WebSocket-Accept: {WS_ACCEPT}\r\n")), "{head}");
    assert_eq!(
        head.contains("\r\nSec-WebSocket-Extensions: permessage-deflate"),
        deflate && cfg!(feature = "deflate"),
        "{head}"
    );
    (tcp, local)
}

/// One echo on an upgraded raw connection.
async fn echo_once(tcp: &mut TcpStream, text: &str) {
    tcp.write_all(&client_msg(op::TEXT, text.as_bytes())).await.expect("write text");
    let echo = read_frame(tcp).await;
    assert_eq!((echo.fin, echo.rsv, echo.opcode, echo.masked), (true, 0, op::TEXT, false), "{echo:?}");
    assert_eq!(echo.payload, text.as_bytes());
}

/// Ends an upgraded raw connection with close 1000 and checks the echo,
/// the EOF after it, and a clean outcome.
async fn close_cleanly(server: &mut Server, mut tcp: TcpStream, peer: SocketAddr) {
    tcp.write_all(&client_msg(op::CLOSE, &close_payload(1000, "bye"))).await.expect("write close");
    assert_eq!(read_until_closed(&mut tcp).await, server_close_bytes(1000));
    server.outcome(peer).await.expect("a clean close is a clean outcome");
}

/// A fresh well-behaved client still gets its echo: the server survived
/// whatever came before.
async fn assert_serves(server: &mut Server, after: &str) {
    assert!(!server.accept_loop.is_finished(), "the accept loop died after {after}");
    let (mut tcp, peer) = upgrade(server.addr, false).await;
    echo_once(&mut tcp, &format!("still serving after {after}")).await;
    close_cleanly(server, tcp, peer).await;
}

// ---------------------------------------------------------------------------
// Malformed handshakes.

/// `n` extra header fields.
fn extra_fields(n: usize) -> String {
    (0..n).map(|i| format!("X-Field-{i}: v\r\n")).collect()
}

/// `UPGRADE_REQUEST` padded with an `X-Pad` field to exactly `len` bytes of head.
fn head_of_len(len: usize) -> String {
    let fixed = request_with_fields("X-Pad: \r\n").len();
    let head = request_with_fields(&format!("X-Pad: {}\r\n", "a".repeat(len - fixed)));
    assert_eq!(head.len(), len);
    head
}

fn key_of(bytes: usize) -> String {
    base64::engine::general_purpose::STANDARD.encode(vec![7u8; bytes])
}

#[derive(Clone, Debug)]
struct HandshakeRow {
    name: &'static str,
    request: Vec<u8>,
    status_line: &'static str,
    fields: &'static [&'static str],
    err: HandshakeError,
}

fn handshake_rows() -> Vec<HandshakeRow> {
    use HandshakeError::*;
    const BAD: &str = "HTTP/1.1 400 Bad Request";
    const TOO_LARGE: &str = "HTTP/1.1 431 Request Header Fields Too Large";
    const UPGRADE_REQUIRED: &str = "HTTP/1.1 426 Upgrade Required";
    const VERSION_13: &[&str] = &["Sec-WebSocket-Version: 13"];
    let key_line = format!("Sec-WebSocket-Key: {WS_KEY}\r\n");
    let row = |name, request: String, status_line, fields, err| HandshakeRow {
        name,
        request: request.into_bytes(),
        status_line,
        fields,
        err,
    };
    let mut tls_client_hello = vec![0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03];
    tls_client_hello.extend_from_slice(&[0xAA; 64]);
    vec![
        // Missing and duplicate header fields.
        row("missing Host", edit_request("Host: server.example.com\r\n", ""), BAD, &[], MissingHost),
        row("empty Host", edit_request("Host: server.example.com", "Host:"), BAD, &[], MissingHost),
        row("duplicate Host", request_with_fields("Host: evil.example\r\n"), BAD, &[], MissingHost),
        row("missing Upgrade", edit_request("Upgrade: websocket\r\n", ""), BAD, &[], MissingUpgrade),
        row("Upgrade: h2c", edit_request("Upgrade: websocket", "Upgrade: h2c"), BAD, &[], MissingUpgrade),
        row("missing Connection", edit_request("Connection: Upgrade\r\n", ""), BAD, &[], MissingConnectionUpgrade),
        row(
            "Connection: keep-alive",
            edit_request("Connection: Upgrade", "Connection: keep-alive"),
            BAD,
            &[],
            MissingConnectionUpgrade,
        ),
        row("missing key", edit_request(&key_line, ""), BAD, &[], InvalidKey),
        row("duplicate key, same value", request_with_fields(&key_line), BAD, &[], InvalidKey),
        row(
            "duplicate key, other value",
            request_with_fields(&format!("Sec-WebSocket-Key: {}\r\n", key_of(16))),
            BAD,
            &[],
            InvalidKey,
        ),
        row("key repeated in one field", edit_request(WS_KEY, &format!("{WS_KEY}, {WS_KEY}")), BAD, &[], InvalidKey),
        row("key of 15 bytes", edit_request(WS_KEY, &key_of(15)), BAD, &[], InvalidKey),
        row("key of 17 bytes", edit_request(WS_KEY, &key_of(17)), BAD, &[], InvalidKey),
        row("key of 24 non-base64 characters", edit_request(WS_KEY, "!!!!!!!!!!!!!!!!!!!!!!=="), BAD, &[], InvalidKey),
        // Wrong version.
        row("version 8", edit_request("Version: 13", "Version: 8"), UPGRADE_REQUIRED, VERSION_13, UnsupportedVersion),
        row("version 14", edit_request("Version: 13", "Version: 14"), UPGRADE_REQUIRED, VERSION_13, UnsupportedVersion),
        row(
            "missing version",
            edit_request("Sec-WebSocket-Version: 13\r\n", ""),
            UPGRADE_REQUIRED,
            VERSION_13,
            UnsupportedVersion,
        ),
        row(
            "version list 13, 8",
            edit_request("Version: 13", "Version: 13, 8"),
            UPGRADE_REQUIRED,
            VERSION_13,
            UnsupportedVersion,
        ),
        // Method and HTTP version.
        row(
            "POST",
            edit_request("GET ", "POST "),
            "HTTP/1.1 405 Method Not Allowed",
            &["Allow: GET"],
            MethodNotAllowed,
        ),
        row(
            "HEAD",
            edit_request("GET ", "HEAD "),
            "HTTP/1.1 405 Method Not Allowed",
            &["Allow: GET"],
            MethodNotAllowed,
        ),
        row(
            "HTTP/1.0",
            edit_request("HTTP/1.1", "HTTP/1.0"),
            "HTTP/1.1 505 HTTP Version Not Supported",
            &[],
            HttpVersionNotSupported,
        ),
        // A body would be taken for frames.
        row("Content-Length: 5", request_with_fields("Content-Length: 5\r\n"), BAD, &[], UnexpectedRequestBody),
        row(
            "Transfer-Encoding: chunked",
            request_with_fields("Transfer-Encoding: chunked\r\n"),
            BAD,
            &[],
            UnexpectedRequestBody,
        ),
        // Size limits: 64 fields, 8 KiB of head.
        row("65 header fields", request_with_fields(&extra_fields(60)), TOO_LARGE, &[], TooManyRequestHeaders),
        row(
            "header flood of 5000 fields",
            request_with_fields(&extra_fields(5000)),
            TOO_LARGE,
            &[],
            TooManyRequestHeaders,
        ),
        row("head of 8193 bytes", head_of_len(8193), TOO_LARGE, &[], RequestHeadTooLarge),
        row("head of 60000 bytes", head_of_len(60_000), TOO_LARGE, &[], RequestHeadTooLarge),
        row(
            "endless request line",
            format!("GET /{} HTTP/1.1\r\n", "a".repeat(20_000)),
            TOO_LARGE,
            &[],
            RequestHeadTooLarge,
        ),
        // Not HTTP, or not valid HTTP.
        row("plain text", "hello\r\n\r\n".into(), BAD, &[], MalformedRequest),
        row(
            "space before a field's colon",
            edit_request("Host: server.example.com", "Host : server.example.com"),
            BAD,
            &[],
            MalformedRequest,
        ),
        row("space in a field name", request_with_fields("Bad Name: x\r\n"), BAD, &[], MalformedRequest),
        row("NUL in a field value", request_with_fields("X-Nul: a\0b\r\n"), BAD, &[], MalformedRequest),
        HandshakeRow {
            name: "TLS ClientHello",
            request: tls_client_hello,
            status_line: BAD,
            fields: &[],
            err: MalformedRequest,
        },
    ]
}

/// Plays one malformed handshake; answers the response and the address
/// whose outcome to check.
async fn play_handshake_row(addr: SocketAddr, row: &HandshakeRow) -> (String, SocketAddr) {
    let (mut tcp, peer) = connect_raw(addr).await;
    tcp.write_all(&row.request).await.expect("write request");
    let reply = read_until_closed(&mut tcp).await;
    (String::from_utf8(reply).expect("an ascii response"), peer)
}

fn check_refusal(row: &HandshakeRow, reply: &str) {
    let name = row.name;
    assert!(reply.starts_with(&format!("{}\r\n", row.status_line)), "{name}: {reply:?}");
    for field in row.fields.iter().chain(&["Connection: close"]) {
        assert!(reply.contains(&format!("\r\n{field}\r\n")), "{name}: {field} missing from {reply:?}");
    }
    let (head, body) = reply.split_once("\r\n\r\n").unwrap_or_else(|| panic!("{name}: no end of head: {reply:?}"));
    let length = head
        .lines()
        .find_map(|line| line.strip_prefix("Content-Length: "))
        .unwrap_or_else(|| panic!("{name}: no Content-Length: {reply:?}"));
    assert_eq!(length.parse::<usize>().ok(), Some(body.len()), "{name}: {reply:?}");
    assert_eq!(row.err.status().map(|s| s.as_u16()), row.status_line[9..12].parse().ok(), "{name}: the error's status");
}

async fn check_handshake_outcome(server: &mut Server, peer: SocketAddr, row: &HandshakeRow) {
    match server.error(peer, row.name).await {
        Error::Handshake(e) => assert_eq!(e, row.err, "{}", row.name),
        other => panic!("{}: expected a handshake error, got {other:?}", row.name),
    }
}

#[tokio::test]
async fn malformed_handshakes_get_the_exact_status_and_the_server_keeps_serving() {
    let mut server = Server::start().await;
    assert_serves(&mut server, "start").await;
    for row in handshake_rows() {
        let (reply, peer) = play_handshake_row(server.addr, &row).await;
        check_refusal(&row, &reply);
        check_handshake_outcome(&mut server, peer, &row).await;
        assert_serves(&mut server, row.name).await;
    }
}

/// The boundaries of the handshake limits, from the accepting side.
#[tokio::test]
async fn handshakes_at_the_limits_are_accepted() {
    let mut server = Server::start().await;
    let at_limits = [
        ("64 header fields", request_with_fields(&extra_fields(59))),
        ("head of 8192 bytes", head_of_len(8192)),
        ("keep-alive, Upgrade", edit_request("Connection: Upgrade", "Connection: keep-alive, Upgrade")),
    ];
    for (name, request) in at_limits {
        let (mut tcp, peer) = connect_raw(server.addr).await;
        tcp.write_all(request.as_bytes()).await.expect("write request");
        let head = read_http_head(&mut tcp).await;
        assert!(head.starts_with("HTTP/1.1 101 "), "{name}: {head}");
        echo_once(&mut tcp, name).await;
        close_cleanly(&mut server, tcp, peer).await;
    }
}

/// A client that dribbles a valid request one byte every 100 ms (the head
/// would take 15 s) and one that sends nothing are both cut off at the
/// 500 ms handshake deadline, with nothing sent, while a healthy client is
/// served in between.
#[tokio::test]
async fn slowloris_is_cut_off_at_the_handshake_timeout_while_others_are_served() {
    let mut server = Server::start().await;
    let addr = server.addr;
    let start = Instant::now();
    let (dribbler, dribbler_peer) = connect_raw(addr).await;
    let (mut silent, silent_peer) = connect_raw(addr).await;
    let (mut dribbler_rx, mut dribbler_tx) = dribbler.into_split();
    let sent = Cell::new(0usize);
    let dribble = async {
        for byte in UPGRADE_REQUEST.bytes() {
            if dribbler_tx.write_all(&[byte]).await.is_err() {
                break;
            }
            sent.set(sent.get() + 1);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        std::future::pending::<()>().await;
    };
    let cut_off = async {
        tokio::select! {
            got = read_until_closed(&mut dribbler_rx) => got,
            () = dribble => unreachable!(),
        }
    };
    let healthy = async {
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert_serves(&mut server, "a slowloris started").await;
        start.elapsed()
    };
    let (dribbler_got, silent_got, served_at) = tokio::join!(cut_off, read_until_closed(&mut silent), healthy);
    let elapsed = start.elapsed();
    assert!(dribbler_got.is_empty(), "nothing is sent on timeout: {dribbler_got:?}");
    assert!(silent_got.is_empty(), "nothing is sent on timeout: {silent_got:?}");
    assert!(elapsed >= HANDSHAKE_TIMEOUT, "cut off early, after {elapsed:?}");
    assert!(elapsed < Duration::from_secs(2), "cut off late, after {elapsed:?}");
    assert!(served_at < HANDSHAKE_TIMEOUT, "the healthy client waited for the slowloris: {served_at:?}");
    // The deadline bounds the whole head, not each read: bytes kept coming.
    assert!(sent.get() >= 3, "only {} bytes dribbled", sent.get());
    for peer in [dribbler_peer, silent_peer] {
        let err = server.error(peer, "slowloris").await;
        assert!(matches!(err, Error::Handshake(HandshakeError::Timeout)), "{err:?}");
    }
    assert_serves(&mut server, "two slowloris clients").await;
}

// ---------------------------------------------------------------------------
// Malformed frames, client to server.

/// The typed error a row expects.
#[derive(Clone, Copy, Debug)]
enum Expect {
    Protocol(ProtocolError),
    Capacity(CapacityError),
}

impl Expect {
    fn matches(self, err: &Error) -> bool {
        match (self, err) {
            (Expect::Protocol(want), Error::Protocol(got)) => want == *got,
            (Expect::Capacity(want), Error::Capacity(got)) => want == *got,
            _ => false,
        }
    }
}

impl From<ProtocolError> for Expect {
    fn from(e: ProtocolError) -> Self {
        Expect::Protocol(e)
    }
}

impl From<CapacityError> for Expect {
    fn from(e: CapacityError) -> Self {
        Expect::Capacity(e)
    }
}

/// Bytes a peer sends after the upgrade, and what must come of them.
#[derive(Clone, Debug)]
struct FrameRow {
    name: String,
    /// Offer permessage-deflate in the upgrade.
    deflate: bool,
    wire: Vec<u8>,
    /// Shut our write side down after `wire`.
    eof: bool,
    /// What the other side sends before its close frame (echoes).
    echo: Vec<u8>,
    /// The close code sent; `None`: no close frame at all.
    code: Option<u16>,
    expect: Expect,
}

fn row(name: impl Into<String>, wire: Vec<u8>, code: u16, expect: impl Into<Expect>) -> FrameRow {
    FrameRow {
        name: name.into(),
        deflate: false,
        wire,
        eof: false,
        echo: Vec::new(),
        code: Some(code),
        expect: expect.into(),
    }
}

impl FrameRow {
    /// The peer then closes its sending side; no close frame is expected.
    fn then_eof(mut self) -> Self {
        self.eof = true;
        self.code = None;
        self
    }

    fn echoing(mut self, echo: Vec<u8>) -> Self {
        self.echo = echo;
        self
    }

    #[cfg(feature = "deflate")]
    fn compressed(mut self) -> Self {
        self.deflate = true;
        self
    }
}

fn concat(frames: &[Vec<u8>]) -> Vec<u8> {
    frames.concat()
}

/// Only the header of a masked frame announcing `len` payload bytes, in the
/// shortest length form.
fn masked_header(fin: bool, opcode: u8, len: usize) -> Vec<u8> {
    let mut header = vec![u8::from(fin) << 7 | opcode];
    match len {
        0..=125 => header.push(0x80 | len as u8),
        126..=0xFFFF => {
            header.push(0x80 | 126);
            header.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            header.push(0x80 | 127);
            header.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
    header.extend_from_slice(&KEY);
    assert_eq!(header.len(), client_header_len(len));
    header
}

/// A masked binary header with a raw 64-bit length field.
fn raw_64bit_length(len: u64) -> Vec<u8> {
    let mut wire = vec![0x82, 0x80 | 127];
    wire.extend_from_slice(&len.to_be_bytes());
    wire.extend_from_slice(&KEY);
    wire
}

fn frame_rows() -> Vec<FrameRow> {
    use ProtocolError::*;
    let mut rows = Vec::new();
    for opcode in (0x3..=0x7).chain(0xB..=0xF) {
        rows.push(row(format!("reserved opcode {opcode:#x}"), client_msg(opcode, b"x"), 1002, ReservedOpcode(opcode)));
    }
    for (rsv, name) in [(RSV1, "RSV1"), (RSV2, "RSV2"), (RSV3, "RSV3")] {
        rows.push(row(format!("{name} on text"), client_frame(true, rsv, op::TEXT, b"hi"), 1002, ReservedBits(rsv)));
        rows.push(row(format!("{name} on ping"), client_frame(true, rsv, op::PING, b""), 1002, ReservedBits(rsv)));
    }
    rows.push(row("all RSV bits", client_frame(true, 0b111, op::BINARY, b"hi"), 1002, ReservedBits(0b111)));
    rows.push(row("unmasked text", server_frame(true, 0, op::TEXT, b"hi"), 1002, UnmaskedFrame));
    rows.push(row("unmasked close", server_frame(true, 0, op::CLOSE, &close_payload(1000, "")), 1002, UnmaskedFrame));
    for (opcode, name) in [(op::PING, "ping"), (op::PONG, "pong"), (op::CLOSE, "close")] {
        let mut payload = close_payload(1000, "");
        payload.resize(126, b'a');
        rows.push(row(format!("{name} of 126 bytes"), client_msg(opcode, &payload), 1002, ControlFrameTooLong));
        let wire = client_frame(false, 0, opcode, &close_payload(1000, ""));
        rows.push(row(format!("fragmented {name}"), wire, 1002, FragmentedControlFrame));
    }
    rows.push(row("continuation without start", client_msg(op::CONT, b"c"), 1002, UnexpectedContinuation));
    rows.push(row(
        "non-final continuation without start",
        client_frame(false, 0, op::CONT, b"c"),
        1002,
        UnexpectedContinuation,
    ));
    rows.push(
        row(
            "continuation after a finished message",
            concat(&[client_msg(op::TEXT, b"done"), client_msg(op::CONT, b"late")]),
            1002,
            UnexpectedContinuation,
        )
        .echoing(server_frame(true, 0, op::TEXT, b"done")),
    );
    rows.push(row(
        "text inside a fragmented text",
        concat(&[client_frame(false, 0, op::TEXT, b"a"), client_msg(op::TEXT, b"b")]),
        1002,
        ExpectedContinuation,
    ));
    rows.push(
        row(
            "binary inside a fragmented text, after a ping",
            concat(&[client_frame(false, 0, op::TEXT, b"a"), client_msg(op::PING, b"p"), client_msg(op::BINARY, b"b")]),
            1002,
            ExpectedContinuation,
        )
        .echoing(server_frame(true, 0, op::PONG, b"p")),
    );
    rows.push(row("64-bit length 2^63", raw_64bit_length(1 << 63), 1002, InvalidPayloadLength));
    rows.push(row("64-bit length 2^64-1", raw_64bit_length(u64::MAX), 1002, InvalidPayloadLength));
    let too_large = |len: u64| CapacityError::FrameTooLarge { len, max: MAX_FRAME };
    rows.push(row("64-bit length 2^40", raw_64bit_length(1 << 40), 1009, too_large(1 << 40)));
    // Only the header: the limit must act before the payload arrives.
    rows.push(row(
        "frame of max_frame_size + 1, header only",
        masked_header(true, op::BINARY, MAX_FRAME + 1),
        1009,
        too_large(MAX_FRAME as u64 + 1),
    ));
    rows.push(row(
        "continuation of max_frame_size + 1, header only",
        concat(&[client_frame(false, 0, op::TEXT, b"a"), masked_header(true, op::CONT, MAX_FRAME + 1)]),
        1009,
        too_large(MAX_FRAME as u64 + 1),
    ));
    // A message of exactly the limit in four fragments, then the header of
    // one more byte.
    let mut fragments: Vec<Vec<u8>> = (0..MAX_MESSAGE / MAX_FRAME)
        .map(|i| client_frame(false, 0, if i == 0 { op::BINARY } else { op::CONT }, &vec![i as u8; MAX_FRAME]))
        .collect();
    fragments.push(masked_header(true, op::CONT, 1));
    rows.push(row(
        "message of max_message_size + 1 in fragments",
        concat(&fragments),
        1009,
        CapacityError::MessageTooLarge { len: MAX_MESSAGE as u64 + 1, max: MAX_MESSAGE },
    ));
    for code in [0u16, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535] {
        let wire = client_msg(op::CLOSE, &close_payload(code, "reason"));
        rows.push(row(format!("close code {code}"), wire, 1002, InvalidCloseCode(code)));
    }
    rows.push(row("close payload of 1 byte", client_msg(op::CLOSE, &[0x03]), 1002, InvalidClosePayload));
    for (name, bad) in [
        ("0xff", &b"\xff"[..]),
        ("overlong '/'", b"\xc0\xaf"),
        ("surrogate", b"ok\xed\xa0\x80"),
        ("above U+10FFFF", b"\xf4\x90\x80\x80"),
        ("truncated at the end", b"abc\xce"),
    ] {
        rows.push(row(format!("invalid UTF-8 text: {name}"), client_msg(op::TEXT, bad), 1007, InvalidUtf8));
    }
    rows.push(row(
        "invalid UTF-8 split across fragments",
        concat(&[client_frame(false, 0, op::TEXT, b"ab\xf4"), client_frame(true, 0, op::CONT, b"\x90\x80\x80")]),
        1007,
        InvalidUtf8,
    ));
    rows.push(row(
        "invalid UTF-8 in a later fragment, message unfinished",
        concat(&[client_frame(false, 0, op::TEXT, "κόσμε".as_bytes()), client_frame(false, 0, op::CONT, b"\xff")]),
        1007,
        InvalidUtf8,
    ));
    rows.push(row(
        "UTF-8 truncated at the end of a fragmented message",
        concat(&[client_frame(false, 0, op::TEXT, b"ab\xce"), client_frame(true, 0, op::CONT, b"")]),
        1007,
        InvalidUtf8,
    ));
    let mut reason = close_payload(1000, "");
    reason.extend_from_slice(b"\xce\xba\xe1");
    rows.push(row("invalid UTF-8 in a close reason", client_msg(op::CLOSE, &reason), 1007, InvalidUtf8));
    let binary = client_msg(op::BINARY, &[7u8; 10]);
    rows.push(
        row("truncated payload then EOF", binary[..client_header_len(10) + 3].to_vec(), 0, UnexpectedEof).then_eof(),
    );
    rows.push(row("one header byte then EOF", vec![0x82], 0, UnexpectedEof).then_eof());
    rows.push(row("truncated 64-bit length then EOF", vec![0x82, 0xFF, 0, 0, 0], 0, UnexpectedEof).then_eof());
    rows.push(
        row("EOF after a message, without a close", client_msg(op::TEXT, b"last"), 0, UnexpectedEof)
            .then_eof()
            .echoing(server_frame(true, 0, op::TEXT, b"last")),
    );
    #[cfg(feature = "deflate")]
    rows.extend(compressed_rows());
    rows
}

/// Rows on a connection that agreed on permessage-deflate (RFC 7692).
#[cfg(feature = "deflate")]
fn compressed_rows() -> Vec<FrameRow> {
    use silverback::deflate::Compressor;
    use ProtocolError::*;
    /// "Hello" compressed (RFC 7692 §7.2.3.1).
    const HELLO: [u8; 7] = [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];
    let compress = |payload: &[u8]| {
        let mut compressor = Compressor::new(9, 15, false).expect("a compressor");
        let mut out = bytes::BytesMut::new();
        compressor.compress(payload, &mut out);
        out.to_vec()
    };
    let bomb = compress(&vec![0u8; 8 << 20]);
    assert!(bomb.len() < MAX_FRAME, "the bomb is {} bytes", bomb.len());
    vec![
        row(
            "deflate: RSV1 on a continuation",
            concat(&[
                client_frame(false, RSV1, op::TEXT, &HELLO[..3]),
                client_frame(true, RSV1, op::CONT, &HELLO[3..]),
            ]),
            1002,
            CompressedControlOrContinuation,
        ),
        row("deflate: RSV1 on a ping", client_frame(true, RSV1, op::PING, b""), 1002, CompressedControlOrContinuation),
        row(
            "deflate: RSV1 on a close",
            client_frame(true, RSV1, op::CLOSE, &close_payload(1000, "")),
            1002,
            CompressedControlOrContinuation,
        ),
        row("deflate: RSV2", client_frame(true, RSV2, op::TEXT, &HELLO), 1002, ReservedBits(RSV2)),
        row("deflate: RSV3", client_frame(true, RSV3, op::TEXT, &HELLO), 1002, ReservedBits(RSV3)),
        row("deflate: corrupt data", client_frame(true, RSV1, op::BINARY, &[0xff; 16]), 1007, InvalidCompressedData),
        row(
            "deflate: invalid UTF-8 once inflated",
            client_frame(true, RSV1, op::TEXT, &compress(b"valid start \xff\xfe then garbage")),
            1007,
            InvalidUtf8,
        ),
        row(
            "deflate: 8 MiB bomb",
            client_frame(true, RSV1, op::BINARY, &bomb),
            1009,
            CapacityError::InflatedMessageTooLarge { max: MAX_MESSAGE },
        ),
    ]
    .into_iter()
    .map(FrameRow::compressed)
    .collect()
}

/// Plays one row: upgrades, writes the bytes, and checks every byte the
/// server sends until it closes. Answers the address whose outcome to check.
async fn play_frame_row(addr: SocketAddr, row: &FrameRow) -> SocketAddr {
    let (mut tcp, peer) = upgrade(addr, row.deflate).await;
    tcp.write_all(&row.wire).await.unwrap_or_else(|e| panic!("{}: write: {e}", row.name));
    if row.eof {
        tcp.shutdown().await.expect("shutdown");
    }
    let got = read_until_closed(&mut tcp).await;
    let mut want = row.echo.clone();
    if let Some(code) = row.code {
        want.extend(server_close_bytes(code));
    }
    assert_eq!(got, want, "{}: the bytes the server sent", row.name);
    peer
}

async fn check_frame_outcome(server: &mut Server, peer: SocketAddr, row: &FrameRow) {
    let err = server.error(peer, &row.name).await;
    assert!(row.expect.matches(&err), "{}: expected {:?}, got {err:?}", row.name, row.expect);
    assert_eq!(err.close_code().map(u16::from), row.code, "{}: Error::close_code", row.name);
}

#[tokio::test]
async fn malformed_frames_get_the_exact_close_code_and_the_server_keeps_serving() {
    let mut server = Server::start().await;
    for row in frame_rows() {
        let peer = play_frame_row(server.addr, &row).await;
        check_frame_outcome(&mut server, peer, &row).await;
        assert_serves(&mut server, &row.name).await;
    }
}

/// Bad frames in the same write as the upgrade request reach the codec
/// (bytes read past the head) and are refused like any others.
#[tokio::test]
async fn malformed_frames_sent_with_the_request_are_refused_too() {
    let mut server = Server::start().await;
    let mut rows = frame_rows();
    rows.retain(|row| !row.deflate && row.wire.len() < 4096);
    for row in rows {
        let (mut tcp, peer) = connect_raw(server.addr).await;
        tcp.write_all(&[UPGRADE_REQUEST.as_bytes(), &row.wire].concat()).await.expect("write request and frames");
        if row.eof {
            tcp.shutdown().await.expect("shutdown");
        }
        let head = read_http_head(&mut tcp).await;
        assert!(head.starts_with("HTTP/1.1 101 "), "{}: {head}", row.name);
        let mut want = row.echo.clone();
        want.extend(row.code.map(server_close_bytes).unwrap_or_default());
        assert_eq!(read_until_closed(&mut tcp).await, want, "{}: the bytes the server sent", row.name);
        check_frame_outcome(&mut server, peer, &row).await;
    }
    assert_serves(&mut server, "pipelined bad frames").await;
}

/// The boundaries of the frame limits, and legal inputs near the bad ones.
#[tokio::test]
async fn frames_at_the_limits_are_accepted() {
    let mut server = Server::start().await;
    let (mut tcp, peer) = upgrade(server.addr, false).await;
    // A frame of exactly max_frame_size.
    tcp.write_all(&client_msg(op::BINARY, &vec![1u8; MAX_FRAME])).await.unwrap();
    let echo = read_frame(&mut tcp).await;
    assert_eq!((echo.opcode, echo.payload.len()), (op::BINARY, MAX_FRAME));
    // A message of exactly max_message_size in fragments, a ping between.
    let fragments = MAX_MESSAGE / MAX_FRAME;
    for i in 0..fragments {
        let (fin, opcode) = (i + 1 == fragments, if i == 0 { op::TEXT } else { op::CONT });
        tcp.write_all(&client_frame(fin, 0, opcode, &vec![b'a'; MAX_FRAME])).await.unwrap();
        if i == 1 {
            tcp.write_all(&client_msg(op::PING, b"between")).await.unwrap();
        }
    }
    let pong = read_frame(&mut tcp).await;
    assert_eq!((pong.opcode, pong.payload.as_slice()), (op::PONG, &b"between"[..]));
    let echo = read_frame(&mut tcp).await;
    assert_eq!((echo.opcode, echo.payload.len()), (op::TEXT, MAX_MESSAGE));
    assert!(echo.payload.iter().all(|&b| b == b'a'));
    // A control frame of 125 bytes; a character split across fragments.
    tcp.write_all(&client_msg(op::PING, &[9u8; 125])).await.unwrap();
    assert_eq!(read_frame(&mut tcp).await.payload, [9u8; 125]);
    tcp.write_all(&client_frame(false, 0, op::TEXT, b"\xce")).await.unwrap();
    tcp.write_all(&client_frame(true, 0, op::CONT, b"\xba")).await.unwrap();
    assert_eq!(read_frame(&mut tcp).await.payload, "κ".as_bytes());
    // The highest registered and private close codes are allowed.
    close_cleanly(&mut server, tcp, peer).await;
    for code in [1014u16, 3000, 4999] {
        let (mut tcp, peer) = upgrade(server.addr, false).await;
        tcp.write_all(&client_msg(op::CLOSE, &close_payload(code, ""))).await.unwrap();
        assert_eq!(read_until_closed(&mut tcp).await, server_close_bytes(code), "close code {code}");
        server.outcome(peer).await.unwrap_or_else(|e| panic!("close code {code}: {e:?}"));
    }
}

/// Bad rows of every kind at once, a slow handshake among them, while one
/// healthy connection stays open and keeps echoing throughout.
#[tokio::test]
async fn concurrent_bad_peers_leave_an_open_connection_serving() {
    let mut server = Server::start().await;
    let addr = server.addr;
    let (mut healthy, healthy_peer) = upgrade(addr, false).await;
    echo_once(&mut healthy, "before").await;

    let mut rows = frame_rows();
    rows.retain(|row| row.wire.len() < 4096);
    let handshakes = handshake_rows();
    let mut tasks = JoinSet::new();
    for (i, row) in rows.iter().cloned().enumerate() {
        tasks.spawn(async move { (i, false, play_frame_row(addr, &row).await) });
    }
    for (i, row) in handshakes.iter().cloned().enumerate() {
        tasks.spawn(async move {
            let (reply, peer) = play_handshake_row(addr, &row).await;
            check_refusal(&row, &reply);
            (i, true, peer)
        });
    }
    let (mut slow, slow_peer) = connect_raw(addr).await;
    slow.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();

    let chatter = async {
        for i in 0..20 {
            echo_once(&mut healthy, &format!("during {i}")).await;
            tokio::task::yield_now().await;
        }
    };
    let (played, ()) = tokio::join!(within("every row", tasks.join_all()), chatter);
    assert_eq!(played.len(), rows.len() + handshakes.len());
    for (i, is_handshake, peer) in played {
        if is_handshake {
            check_handshake_outcome(&mut server, peer, &handshakes[i]).await;
        } else {
            check_frame_outcome(&mut server, peer, &rows[i]).await;
        }
    }
    assert!(read_until_closed(&mut slow).await.is_empty());
    let err = server.error(slow_peer, "slow handshake").await;
    assert!(matches!(err, Error::Handshake(HandshakeError::Timeout)), "{err:?}");

    echo_once(&mut healthy, "after").await;
    close_cleanly(&mut server, healthy, healthy_peer).await;
    assert_serves(&mut server, "the concurrent rows").await;
}

// ---------------------------------------------------------------------------
// Malformed frames, server to client.

/// A raw server that answers the upgrade correctly, sends `wire` (then EOF
/// if `eof`), and collects the frames the client sends until it closes.
async fn misbehaving_server(wire: Vec<u8>, eof: bool) -> (String, JoinHandle<Vec<common::RawFrame>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
    let url = format!("ws://{}/", listener.local_addr().expect("local addr"));
    let task = tokio::spawn(async move {
        let (mut tcp, _) = within("accept", listener.accept()).await.expect("accept");
        let request = read_http_head(&mut tcp).await;
        let key = request.lines().find_map(|line| line.strip_prefix("Sec-WebSocket-Key: ")).expect("a key");
        let response = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {}\r\n\r\n",
            accept_for(key)
        );
        // One write: the frames share a packet with the 101 response.
        tcp.write_all(&[response.as_bytes(), &wire].concat()).await.expect("write response and frames");
        if eof {
            tcp.shutdown().await.expect("shutdown");
        }
        let mut frames = Vec::new();
        while let Some(frame) = try_read_frame(&mut tcp).await {
            frames.push(frame);
        }
        frames
    });
    (url, task)
}

/// The accept value for `key` (RFC 6455 §4.2.2), computed here rather than
/// by the library under test.
fn accept_for(key: &str) -> String {
    use sha1::Digest as _;
    let mut sha1 = sha1::Sha1::new();
    sha1.update(key.as_bytes());
    sha1.update(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    base64::engine::general_purpose::STANDARD.encode(sha1.finalize())
}

fn client_side_rows() -> Vec<FrameRow> {
    use ProtocolError::*;
    let mut huge = vec![0x82, 127];
    huge.extend_from_slice(&(1u64 << 63).to_be_bytes());
    let default_max = Limits::DEFAULT_MAX_FRAME_SIZE;
    let mut over_default = vec![0x82, 127];
    over_default.extend_from_slice(&(default_max as u64 + 1).to_be_bytes());
    let mut bad_reason = close_payload(1000, "");
    bad_reason.push(0xff);
    let truncated = server_frame(true, 0, op::BINARY, &[7u8; 10])[..5].to_vec();
    vec![
        row("masked server frame", client_msg(op::TEXT, b"hi"), 1002, MaskedFrame),
        row("RSV1 from the server", server_frame(true, RSV1, op::TEXT, b"hi"), 1002, ReservedBits(RSV1)),
        row("RSV2 from the server", server_frame(true, RSV2, op::TEXT, b"hi"), 1002, ReservedBits(RSV2)),
        row("RSV3 from the server", server_frame(true, RSV3, op::TEXT, b"hi"), 1002, ReservedBits(RSV3)),
        row("reserved opcode 0x3 from the server", server_frame(true, 0, 0x3, b""), 1002, ReservedOpcode(0x3)),
        row("reserved opcode 0xB from the server", server_frame(true, 0, 0xB, b""), 1002, ReservedOpcode(0xB)),
        row("ping of 126 bytes from the server", server_frame(true, 0, op::PING, &[0; 126]), 1002, ControlFrameTooLong),
        row("fragmented ping from the server", server_frame(false, 0, op::PING, b"p"), 1002, FragmentedControlFrame),
        row(
            "continuation without start from the server",
            server_frame(true, 0, op::CONT, b"c"),
            1002,
            UnexpectedContinuation,
        ),
        row(
            "text inside a fragmented text from the server",
            concat(&[server_frame(false, 0, op::TEXT, b"a"), server_frame(true, 0, op::TEXT, b"b")]),
            1002,
            ExpectedContinuation,
        ),
        row("64-bit length 2^63 from the server", huge, 1002, InvalidPayloadLength),
        row(
            "frame over the default limit from the server, header only",
            over_default,
            1009,
            CapacityError::FrameTooLarge { len: default_max as u64 + 1, max: default_max },
        ),
        row(
            "close code 1005 from the server",
            server_frame(true, 0, op::CLOSE, &close_payload(1005, "")),
            1002,
            InvalidCloseCode(1005),
        ),
        row(
            "close payload of 1 byte from the server",
            server_frame(true, 0, op::CLOSE, &[3]),
            1002,
            InvalidClosePayload,
        ),
        row("invalid UTF-8 text from the server", server_frame(true, 0, op::TEXT, b"a\xc0\xaf"), 1007, InvalidUtf8),
        row(
            "invalid UTF-8 close reason from the server",
            server_frame(true, 0, op::CLOSE, &bad_reason),
            1007,
            InvalidUtf8,
        ),
        row("truncated frame then EOF from the server", truncated, 0, UnexpectedEof).then_eof(),
    ]
}

/// `silverback::connect` against a server that misbehaves after a correct
/// upgrade: the client surfaces the typed error, sends the matching masked
/// close frame (none after an EOF), and closes.
#[tokio::test]
async fn client_surfaces_server_violations_with_the_exact_close_code() {
    for row in client_side_rows() {
        let name = &row.name;
        let (url, raw) = misbehaving_server(row.wire.clone(), row.eof).await;
        let (mut ws, _response) = within("connect", silverback::connect(&url)).await.expect("the upgrade succeeds");
        let err = within("the error", ws.next()).await.expect("an item").expect_err("an error");
        assert!(row.expect.matches(&err), "{name}: expected {:?}, got {err:?}", row.expect);
        assert_eq!(err.close_code().map(u16::from), row.code, "{name}: Error::close_code");
        assert!(within("the end", ws.next()).await.is_none(), "{name}: the error is yielded once");
        let frames = within("the raw server", raw).await.expect("the raw server");
        match row.code {
            Some(code) => {
                assert_eq!(frames.len(), 1, "{name}: {frames:?}");
                let close = &frames[0];
                assert_eq!((close.fin, close.rsv, close.opcode, close.masked), (true, 0, op::CLOSE, true), "{name}");
                assert_eq!(close.payload, code.to_be_bytes(), "{name}");
            }
            None => assert!(frames.is_empty(), "{name}: {frames:?}"),
        }
    }
}

/// The client's own limits apply to what a server announces.
#[tokio::test]
async fn client_applies_its_configured_limits() {
    let (url, raw) = misbehaving_server(server_frame(true, 0, op::BINARY, &[0; 200]), false).await;
    let connector = Connector::new().config(Config::default().limits(Limits::default().max_frame_size(100)));
    let (mut ws, _) = within("connect", connector.connect(&url)).await.expect("the upgrade succeeds");
    let err = within("the error", ws.next()).await.expect("an item").expect_err("an error");
    assert!(matches!(err, Error::Capacity(CapacityError::FrameTooLarge { len: 200, max: 100 })), "{err:?}");
    let frames = within("the raw server", raw).await.expect("the raw server");
    assert_eq!(frames.len(), 1, "{frames:?}");
    assert_eq!(frames[0].payload, 1009u16.to_be_bytes());
}
