//! The echo servers under test, one per library plus a raw TCP echo. Each
//! runs in its own child process (the bench binary re-executed with
//! `SB_ECHO_SERVER=<kind>`) on a single-threaded Tokio runtime pinned to
//! core 0, spawns one task per accepted connection, and prints its port on
//! stdout. It exits when its stdin closes, so it never outlives the bench.

use std::cell::RefCell;
use std::future::ready;
use std::io::{self, Write as _};
use std::sync::Arc;

use base64::Engine as _;
use futures_util::{SinkExt, StreamExt, TryStreamExt};
use sha1::{Digest, Sha1};
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
    /// fastwebsockets, `FragmentCollector` + `write_frame` as in its
    /// echo example; the HTTP upgrade is the bench's own minimal one.
    Fastwebsockets,
    /// silverback, exactly as `examples/echo_server.rs`.
    Silverback,
}

impl Kind {
    /// All kinds, in column order.
    pub const ALL: [Kind; 6] = [
        Kind::Raw,
        Kind::TungsteniteSend,
        Kind::TungsteniteForward,
        Kind::TokioWebsockets,
        Kind::Fastwebsockets,
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
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let result: io::Result<()> = rt.block_on(async move {
        let listener = TcpListener::bind(addr).await?;
        println!("{}", listener.local_addr()?.port());
        io::stdout().flush()?;
        // As examples/echo_server.rs: one upgrader shared by all connections.
        let upgrader = Arc::new(silverback::Upgrader::new().allow_any_origin());
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
                Kind::Fastwebsockets => spawn_conn(kind, verbose, fastwebsockets(tcp)),
                Kind::Silverback => spawn_conn(kind, verbose, silverback(upgrader.clone(), tcp)),
            }
        }
    });
    eprintln!("{} server failed: {result:?}", kind.name());
    std::process::exit(1)
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

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

async fn fastwebsockets(tcp: TcpStream) -> Result<(), BoxError> {
    let tcp = minimal_upgrade(tcp).await?;
    let ws = fastwebsockets::WebSocket::after_handshake(tcp, fastwebsockets::Role::Server);
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
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        return Ok(Step::Left(buf[sent..n].to_vec()))
                    }
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

/// Just enough of the server handshake (RFC 6455 §4.2) for the bench's own
/// request: fastwebsockets does its upgrade only through hyper (feature
/// `upgrade`), which would add a whole HTTP stack to the dev-dependencies.
async fn minimal_upgrade(mut tcp: TcpStream) -> io::Result<TcpStream> {
    let mut buf = Vec::with_capacity(1024);
    let end = loop {
        if tcp.read_buf(&mut buf).await? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break end;
        }
        if buf.len() > 16 * 1024 {
            return Err(io::Error::other("request head too large"));
        }
    };
    if buf.len() != end + 4 {
        return Err(io::Error::other(
            "client sent data before the upgrade response",
        ));
    }
    let head = std::str::from_utf8(&buf[..end]).map_err(io::Error::other)?;
    let key = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("sec-websocket-key"))
        .map(|(_, value)| value.trim())
        .ok_or_else(|| io::Error::other("no Sec-WebSocket-Key"))?;
    let mut sha = Sha1::new();
    sha.update(key.as_bytes());
    sha.update(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    let accept = base64::engine::general_purpose::STANDARD.encode(sha.finalize());
    let response = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {accept}\r\n\r\n"
    );
    tcp.write_all(response.as_bytes()).await?;
    Ok(tcp)
}
