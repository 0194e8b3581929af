//! The echo servers under test, one per library plus a raw TCP echo. Each
//! runs in its own child process (the bench binary re-executed with
//! `SB_ECHO_SERVER=<kind>`) on a single-threaded Tokio runtime pinned to
//! core 0, spawns one task per accepted connection, and prints its port on
//! stdout. It exits when its stdin closes, so it never outlives the bench.
//!
//! Servers that accept permessage-deflate compress at level 1 with 32 KiB
//! windows (silverback's defaults), so that the compressed row compares
//! implementations doing the same work rather than different settings.

use std::cell::RefCell;
use std::future::ready;
use std::io::{self, Write as _};
use std::sync::Arc;

use crate::upgrades::{serve_with_upgrades, BoxError};
use futures_util::{SinkExt, StreamExt, TryStreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Every server the bench knows, in table column order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Plain TCP echo: no WebSocket work at all, the upper limit.
    Raw,
    /// tokio-tungstenite, echoing with `send` per message.
    TungsteniteSend,
    /// tokio-tungstenite, echoing with `StreamExt::forward` after `split`.
    TungsteniteForward,
    /// tokio-websockets, `forward` after `split` (its sink batches writes up
    /// to `flush_threshold`).
    TokioWebsockets,
    /// fastwebsockets, upgraded by its own `upgrade::upgrade` (on hyper),
    /// then `FragmentCollector` + `write_frame` on the TCP stream as in its
    /// echo example.
    Fastwebsockets,
    /// yawc (fastwebsockets-inspired, with permessage-deflate), upgraded
    /// through hyper as its docs do, `next` + `send` per frame; measured in
    /// the compressed row only.
    Yawc,
    /// sockudo-ws, `CompressedWebSocketStream` after a handshake made of its
    /// own public pieces (as its axum integration does), `next` + `send` as
    /// in its echo example; compressed row only.
    SockudoWs,
    /// wtx, `WebSocketAcceptor` with `Flate2`, `read_frame` + `write_frame`
    /// on `split_mut` parts; compressed row only.
    Wtx,
    /// silverback, exactly as `examples/echo_server.rs`.
    Silverback,
}

impl Kind {
    /// All kinds, in column order.
    pub const ALL: [Kind; 9] = [
        Kind::Raw,
        Kind::TungsteniteSend,
        Kind::TungsteniteForward,
        Kind::TokioWebsockets,
        Kind::Fastwebsockets,
        Kind::Yawc,
        Kind::SockudoWs,
        Kind::Wtx,
        Kind::Silverback,
    ];

    /// Name used in `SB_ECHO_SERVER`, `SB_BENCH_ONLY` and the table.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Raw => "raw",
            Kind::TungsteniteSend => "tungstenite(send)",
            Kind::TungsteniteForward => "tungstenite(forward)",
            Kind::TokioWebsockets => "tokio-websockets",
            Kind::Fastwebsockets => "fastwebsockets",
            Kind::Yawc => "yawc",
            Kind::SockudoWs => "sockudo-ws",
            Kind::Wtx => "wtx",
            Kind::Silverback => "silverback",
        }
    }

    /// Parses a name from [`Kind::name`].
    pub fn from_name(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == name)
    }

    /// Whether `SB_BENCH_ONLY`'s entry `filter` selects this kind (a prefix
    /// is enough: `tungstenite` selects both variants).
    pub fn matches(self, filter: &str) -> bool {
        let filter = filter.trim();
        !filter.is_empty() && self.name().starts_with(filter)
    }

    /// Whether this is a WebSocket library rather than the raw limit.
    pub fn is_peer(self) -> bool {
        !matches!(self, Kind::Raw | Kind::Silverback)
    }

    /// Whether the server accepts permessage-deflate (the compressed row).
    pub fn supports_deflate(self) -> bool {
        matches!(self, Kind::Yawc | Kind::SockudoWs | Kind::Wtx | Kind::Silverback)
    }

    /// Whether the server is measured in the compressed row only: the
    /// peers added for it, not in the uncompressed rows so that those stay
    /// comparable with earlier runs.
    pub fn deflate_only(self) -> bool {
        matches!(self, Kind::Yawc | Kind::SockudoWs | Kind::Wtx)
    }
}

/// Child-process entry point: serves `kind` on `addr` until stdin closes.
pub fn run(kind: Kind, addr: &str, pin: Option<core_affinity::CoreId>) -> ! {
    if let Some(core) = pin {
        core_affinity::set_for_current(core);
    }
    // The parent holds our stdin; EOF means it is gone.
    std::thread::spawn(|| {
        let _ = io::copy(&mut io::stdin(), &mut io::sink());
        std::process::exit(0);
    });
    let verbose = std::env::var_os("SB_BENCH_VERBOSE").is_some();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let result: io::Result<()> = rt.block_on(async move {
        let listener = TcpListener::bind(addr).await?;
        println!("{}", listener.local_addr()?.port());
        io::stdout().flush()?;
        // As examples/echo_server.rs: one upgrader shared by all connections,
        // accepting compression when a client offers it (only row 8 does).
        let upgrader =
            Arc::new(silverback::Upgrader::new().allow_any_origin().deflate(silverback::DeflateConfig::default()));
        loop {
            let (tcp, _) = listener.accept().await?;
            if let Err(e) = tcp.set_nodelay(true) {
                eprintln!("{}: set_nodelay: {e}", kind.name());
                continue;
            }
            // One spawn per kind, so that each server's task is the size of
            // its own connection future (a shared `match` would size every
            // task to the largest arm, the RSS rows included).
            match kind {
                Kind::Raw => spawn_conn(kind, verbose, async move { Ok(raw(tcp).await?) }),
                Kind::TungsteniteSend => spawn_conn(kind, verbose, tungstenite_send(tcp)),
                Kind::TungsteniteForward => spawn_conn(kind, verbose, tungstenite_forward(tcp)),
                Kind::TokioWebsockets => spawn_conn(kind, verbose, tokio_websockets(tcp)),
                Kind::Fastwebsockets => spawn_conn(kind, verbose, fastwebsockets(tcp, verbose)),
                Kind::Yawc => spawn_conn(kind, verbose, yawc(tcp, verbose)),
                Kind::SockudoWs => spawn_conn(kind, verbose, sockudo_ws(tcp)),
                Kind::Wtx => spawn_conn(kind, verbose, wtx(tcp)),
                Kind::Silverback => spawn_conn(kind, verbose, silverback(upgrader.clone(), tcp)),
            }
        }
    });
    eprintln!("{} server failed: {result:?}", kind.name());
    std::process::exit(1)
}

/// Runs one connection's future as its own task, reporting its error when
/// `verbose`.
fn spawn_conn<F>(kind: Kind, verbose: bool, conn: F)
where
    F: std::future::Future<Output = Result<(), BoxError>> + Send + 'static,
{
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            if verbose {
                eprintln!("{}: connection ended with error: {e}", kind.name());
            }
        }
    });
}

async fn tungstenite_send(tcp: TcpStream) -> Result<(), BoxError> {
    let mut ws = tokio_tungstenite::accept_async(tcp).await?;
    while let Some(msg) = ws.next().await {
        let msg = msg?;
        if msg.is_text() || msg.is_binary() {
            ws.send(msg).await?;
        }
    }
    Ok(())
}

async fn tungstenite_forward(tcp: TcpStream) -> Result<(), BoxError> {
    let (write, read) = tokio_tungstenite::accept_async(tcp).await?.split();
    read.try_filter(|m| ready(m.is_text() || m.is_binary())).forward(write).await?;
    Ok(())
}

async fn tokio_websockets(tcp: TcpStream) -> Result<(), BoxError> {
    let (_, ws) = tokio_websockets::ServerBuilder::new().accept(tcp).await?;
    let (write, read) = ws.split();
    read.try_filter(|m| ready(m.is_text() || m.is_binary())).forward(write).await?;
    Ok(())
}

/// fastwebsockets' own server handshake, `upgrade::upgrade`, which runs on
/// hyper (its only one; its docs serve it this way). Once upgraded, the
/// TCP stream is taken back from hyper (`Upgraded::downcast`), so the echo
/// runs on the socket itself, as `FragmentCollector` + `write_frame` in its
/// echo example: the data rows measure its frame code, not hyper's I/O
/// wrapper, and the handshake row measures its real handshake.
async fn fastwebsockets(tcp: TcpStream, verbose: bool) -> Result<(), BoxError> {
    let service = hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| async move {
        let (response, upgrade) = fastwebsockets::upgrade::upgrade(&mut req)?;
        spawn_conn(Kind::Fastwebsockets, verbose, fastwebsockets_echo(upgrade));
        Ok::<_, fastwebsockets::WebSocketError>(response)
    });
    serve_with_upgrades(tcp, service).await
}

async fn fastwebsockets_echo(upgrade: fastwebsockets::upgrade::UpgradeFut) -> Result<(), BoxError> {
    let upgraded = upgrade.await?.into_inner().into_inner();
    let parts = upgraded
        .downcast::<hyper_util::rt::TokioIo<TcpStream>>()
        .map_err(|_| io::Error::other("the upgraded I/O is not the TCP stream"))?;
    if !parts.read_buf.is_empty() {
        return Err(io::Error::other("client sent frames before the upgrade response").into());
    }
    let ws = fastwebsockets::WebSocket::after_handshake(parts.io.into_inner(), fastwebsockets::Role::Server);
    let mut ws = fastwebsockets::FragmentCollector::new(ws);
    loop {
        let frame = ws.read_frame().await?;
        match frame.opcode {
            fastwebsockets::OpCode::Close => return Ok(()),
            fastwebsockets::OpCode::Text | fastwebsockets::OpCode::Binary => {
                ws.write_frame(frame).await?;
            }
            _ => {}
        }
    }
}

/// yawc's server side runs behind hyper: the request handler answers with
/// `WebSocket::upgrade_with_options` and spawns the echo on the upgrade
/// future, as in yawc's docs. Level 1 (`with_low_latency_compression`) and
/// 2^15 windows: left unset, yawc answers a bare `client_max_window_bits`
/// offer with the smallest window, 2^9. UTF-8 validation on, as RFC 6455
/// requires and every other server here does.
async fn yawc(tcp: TcpStream, verbose: bool) -> Result<(), BoxError> {
    let service = hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| async move {
        let options = yawc::Options::default()
            .with_low_latency_compression()
            .with_client_max_window_bits(15)
            .with_server_max_window_bits(15)
            .with_utf8();
        let (response, upgrade) = yawc::WebSocket::upgrade_with_options(&mut req, options)?;
        spawn_conn(Kind::Yawc, verbose, yawc_echo(upgrade));
        Ok::<_, yawc::WebSocketError>(response)
    });
    serve_with_upgrades(tcp, service).await
}

async fn yawc_echo(upgrade: yawc::UpgradeFut) -> Result<(), BoxError> {
    let mut ws = upgrade.await?;
    while let Some(frame) = ws.next().await {
        if matches!(frame.opcode(), yawc::frame::OpCode::Text | yawc::frame::OpCode::Binary) {
            ws.send(frame).await?;
        }
    }
    Ok(())
}

/// sockudo-ws's `WebSocketServer::accept` does not negotiate compression
/// (only its axum integration does), so this builds the same handshake from
/// its public pieces: `parse_request`, `negotiate_server_deflate`,
/// `build_response`, then `CompressedWebSocketStream`. Level 1.
async fn sockudo_ws(mut tcp: TcpStream) -> Result<(), BoxError> {
    use sockudo_ws::handshake::{build_response, generate_accept_key, parse_request};
    let policy = sockudo_ws::DeflateConfig { compression_level: 1, ..sockudo_ws::DeflateConfig::default() };
    let mut buf = bytes::BytesMut::with_capacity(4096);
    let (deflate, leftover) = loop {
        if tcp.read_buf(&mut buf).await? == 0 {
            return Err(io::Error::from(io::ErrorKind::UnexpectedEof).into());
        }
        if let Some((req, consumed)) = parse_request(&buf)? {
            let negotiated =
                req.extensions.and_then(|offers| sockudo_ws::deflate::negotiate_server_deflate(offers, &policy));
            let header = negotiated.as_ref().map(|n| n.to_response_header());
            let response = build_response(&generate_accept_key(req.key), None, header.as_deref());
            tcp.write_all(&response).await?;
            break (negotiated.map(|n| n.config), buf.split_off(consumed).freeze());
        }
        if buf.len() > 16 * 1024 {
            return Err("request head too large".into());
        }
    };
    let leftover = (!leftover.is_empty()).then_some(leftover);
    let config = sockudo_ws::Config::default();
    match deflate {
        Some(deflate) => {
            let ws = sockudo_ws::CompressedWebSocketStream::server_with_leftover(tcp, config, deflate, leftover);
            sockudo_echo(ws).await
        }
        None => {
            let ws =
                sockudo_ws::WebSocketStream::from_raw_with_leftover(tcp, sockudo_ws::Role::Server, config, leftover);
            sockudo_echo(ws).await
        }
    }
}

/// As sockudo-ws's `simple_echo` example.
async fn sockudo_echo<W>(mut ws: W) -> Result<(), BoxError>
where
    W: futures_util::Stream<Item = sockudo_ws::Result<sockudo_ws::Message>>
        + futures_util::Sink<sockudo_ws::Message, Error = sockudo_ws::Error>
        + Unpin,
{
    use sockudo_ws::Message;
    while let Some(msg) = ws.next().await {
        match msg? {
            msg @ (Message::Text(_) | Message::Binary(_)) => ws.send(msg).await?,
            Message::Close(_) => break,
            _ => {}
        }
    }
    Ok(())
}

/// wtx with its flate2 compression (level 1, 2^15 windows both ways; its
/// default is level 5 with 2^12 windows), echoing on `split_mut` parts so
/// that a received frame can be written back without a copy.
async fn wtx(tcp: TcpStream) -> Result<(), BoxError> {
    use wtx::web_socket::compression::{Flate2, WindowBits};
    use wtx::web_socket::{CompressionLevel, DeflateConfig, OpCode, WebSocketAcceptor, WebSocketPayloadOrigin};
    let config = DeflateConfig {
        client_max_window_bits: WindowBits::Fifteen,
        compression_level: CompressionLevel::One,
        server_max_window_bits: WindowBits::Fifteen,
    };
    let mut ws = WebSocketAcceptor::default().compression(Flate2::from(config)).accept(tcp).await?;
    let mut buffer = wtx::collection::Vector::new();
    let (mut common, mut reader, mut writer) = ws.split_mut();
    loop {
        let mut frame = reader.read_frame(&mut buffer, &mut common, WebSocketPayloadOrigin::Adaptive).await?;
        match frame.op_code() {
            OpCode::Text | OpCode::Binary => writer.write_frame(&mut common, &mut frame).await?,
            OpCode::Close => return Ok(()),
            _ => {}
        }
    }
}

/// As examples/echo_server.rs.
async fn silverback(upgrader: Arc<silverback::Upgrader>, tcp: TcpStream) -> Result<(), BoxError> {
    let (read, write) = upgrader.accept(tcp).await?.split();
    read.try_filter(|m| ready(m.is_text() || m.is_binary())).forward(write).await?;
    Ok(())
}

thread_local! {
    /// The raw echo's read buffer, shared by all its connections (the
    /// runtime has one thread).
    static SCRATCH: RefCell<Box<[u8]>> = RefCell::new(vec![0; 64 * 1024].into_boxed_slice());
}

/// What one synchronous read-and-echo step of the raw server did.
enum Step {
    /// Echoed everything read, or nothing was ready.
    Done,
    /// The peer closed.
    Eof,
    /// The socket took only part of the echo; these bytes are left.
    Left(Vec<u8>),
}

/// Echoes bytes as they come: the cost of the TCP path alone. It reads into
/// a shared buffer and writes back before yielding, so an idle connection
/// holds only its task and socket (the RSS floor) and a busy one allocates
/// nothing, unless the socket cannot take the whole echo at once.
async fn raw(mut tcp: TcpStream) -> io::Result<()> {
    loop {
        tcp.readable().await?;
        let step = SCRATCH.with_borrow_mut(|buf| {
            let n = match tcp.try_read(buf) {
                Ok(0) => return Ok(Step::Eof),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Step::Done),
                Err(e) => return Err(e),
            };
            let mut sent = 0;
            while sent < n {
                match tcp.try_write(&buf[sent..n]) {
                    Ok(k) => sent += k,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Step::Left(buf[sent..n].to_vec())),
                    Err(e) => return Err(e),
                }
            }
            Ok(Step::Done)
        })?;
        match step {
            Step::Done => {}
            Step::Eof => return Ok(()),
            Step::Left(rest) => tcp.write_all(&rest).await?,
        }
    }
}
