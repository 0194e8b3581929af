//! The fan-out servers, one per library plus a raw TCP fan-out. Each runs
//! in its own child process (the bench binary re-executed with
//! `SB_FANOUT_SERVER=<kind>`) on a single-threaded Tokio runtime pinned to
//! core 0, spawns one task per accepted connection, and prints its port on
//! stdout. It starts publishing when the load generator writes `go N` on
//! its stdin (N connections are open), and exits when stdin closes.
//!
//! Every publish is a text message of `size` bytes whose first 16 bytes are
//! the send time (`CLOCK_MONOTONIC` nanoseconds in hex). Publishing runs as
//! fast as the connections drain: silverback's `Topic::publish` waits when
//! its log is full; the others publish into a `tokio::sync::broadcast`
//! while `Sender::len` (messages some receiver has not seen yet) is below
//! the same capacity, and otherwise wait until a receiver has taken a
//! batch (see [`Channel`]). Lagged receivers skip ahead (it does not
//! happen: the publisher never runs more than the capacity ahead).

use std::io::{self, BufRead as _, IoSlice, Write as _};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::broadcast::{self, error::RecvError, error::TryRecvError};
use tokio::sync::Notify;

use crate::deflate;
use crate::sys::{mono_ns, put_stamp, raise_nofile};
use crate::upgrades::{serve_with_upgrades, BoxError};

/// Every server the bench knows, in table order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Raw TCP: pre-built frame bytes written to every socket, the limit.
    Raw,
    /// silverback: `Topic` + `PreparedMessage` + `subscribe_writer`; on
    /// compressing connections each message is compressed once.
    Silverback,
    /// silverback sending a `Message` per connection (broadcast channel,
    /// `feed` + `flush`): compressed once per connection.
    SilverbackPerConn,
    /// tokio-tungstenite, broadcast channel, `feed` + `flush`.
    Tungstenite,
    /// tokio-websockets, broadcast channel, `feed` + `flush`.
    TokioWebsockets,
    /// fastwebsockets, broadcast channel, `write_frame` per message.
    Fastwebsockets,
    /// yawc with permessage-deflate, broadcast channel, `feed` + `flush`.
    Yawc,
}

impl Kind {
    /// All kinds, in table order.
    pub const ALL: [Kind; 7] = [
        Kind::Raw,
        Kind::Silverback,
        Kind::SilverbackPerConn,
        Kind::Tungstenite,
        Kind::TokioWebsockets,
        Kind::Fastwebsockets,
        Kind::Yawc,
    ];

    /// Name used in `SB_FANOUT_SERVER`, `SB_FANOUT_ONLY` and the tables.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Raw => "raw",
            Kind::Silverback => "silverback",
            Kind::SilverbackPerConn => "silverback(per-conn)",
            Kind::Tungstenite => "tungstenite",
            Kind::TokioWebsockets => "tokio-websockets",
            Kind::Fastwebsockets => "fastwebsockets",
            Kind::Yawc => "yawc",
        }
    }

    /// Parses a name from [`Kind::name`].
    pub fn from_name(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == name)
    }

    /// Whether this is a peer library (not silverback, not the limit).
    pub fn is_peer(self) -> bool {
        matches!(self, Kind::Tungstenite | Kind::TokioWebsockets | Kind::Fastwebsockets | Kind::Yawc)
    }

    /// Measured in the uncompressed rows.
    pub fn plain(self) -> bool {
        matches!(self, Kind::Raw | Kind::Silverback | Kind::Tungstenite | Kind::TokioWebsockets | Kind::Fastwebsockets)
    }

    /// Measured in the compressed row.
    pub fn compressing(self) -> bool {
        matches!(self, Kind::Silverback | Kind::SilverbackPerConn | Kind::Yawc)
    }
}

/// What a server child is told through its environment.
#[derive(Debug, Clone, Copy)]
pub struct Setup {
    /// Payload size in bytes (at least 16).
    pub size: usize,
    /// JSON-like payloads (the compressed row) instead of filler text.
    pub json: bool,
    /// Messages a subscriber may be behind the publisher.
    pub capacity: usize,
}

/// The payloads published, with a fresh timestamp each.
struct Payloads {
    bases: Vec<Vec<u8>>,
    next: usize,
}

impl Payloads {
    fn new(setup: Setup) -> Payloads {
        let bases = if setup.json {
            // Four different JSON-like texts in rotation; the stamp
            // replaces the first 16 bytes (`[{"id":…` becomes hex digits,
            // still UTF-8, the rest still compresses like JSON).
            (0..4).map(|seed| deflate::json_text(setup.size, seed)).collect()
        } else {
            let filler: Vec<u8> = b"fan-out payload ".iter().copied().cycle().take(setup.size).collect();
            vec![filler]
        };
        Payloads { bases, next: 0 }
    }

    /// The next payload, stamped now.
    fn next(&mut self) -> Bytes {
        let base = &self.bases[self.next % self.bases.len()];
        self.next += 1;
        let mut b = BytesMut::from(&base[..]);
        put_stamp(&mut b, mono_ns());
        b.freeze()
    }
}

/// Set by the `go N` line on stdin: how many connections the load
/// generator opened (0 until then).
struct Go {
    conns: AtomicUsize,
    notify: Notify,
}

/// Child-process entry point: serves `kind` until stdin closes.
pub fn run(kind: Kind, setup: Setup, pin: Option<core_affinity::CoreId>) -> ! {
    if let Some(core) = pin {
        core_affinity::set_for_current(core);
    }
    raise_nofile();
    let go = Arc::new(Go { conns: AtomicUsize::new(0), notify: Notify::new() });
    let go2 = go.clone();
    // The parent holds our stdin: `go N` starts publishing, EOF ends us.
    std::thread::spawn(move || {
        for line in io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if let Some(n) = line.strip_prefix("go ").and_then(|n| n.trim().parse().ok()) {
                go2.conns.store(n, Ordering::SeqCst);
                go2.notify.notify_one();
            }
        }
        std::process::exit(0);
    });
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let result: io::Result<()> = rt.block_on(async move {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        println!("{}", listener.local_addr()?.port());
        io::stdout().flush()?;
        match kind {
            Kind::Silverback => silverback_topic(listener, setup, go).await,
            _ => channel_server(kind, listener, setup, go).await,
        }
    });
    eprintln!("{} server failed: {result:?}", kind.name());
    std::process::exit(1)
}

/// Waits for `go N`, then up to 2 s for `count()` to reach N (the last
/// connections may still be subscribing).
async fn wait_for_go(go: &Go, count: impl Fn() -> usize) {
    while go.conns.load(Ordering::SeqCst) == 0 {
        go.notify.notified().await;
    }
    let want = go.conns.load(Ordering::SeqCst);
    for _ in 0..200 {
        if count() >= want {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn upgrader() -> silverback::Upgrader {
    // Compression where the client offers it (the compressed row only),
    // without context takeover so that a prepared message is compressed
    // once for every connection.
    let deflate = silverback::DeflateConfig::default().server_no_context_takeover(true);
    silverback::Upgrader::new().allow_any_origin().deflate(deflate)
}

/// silverback as its broadcast docs show: one `Topic`, each connection
/// subscribed with `subscribe_writer`, its read half drained by the
/// connection task; the publisher publishes one `PreparedMessage` per
/// message and waits when the log is full.
async fn silverback_topic(listener: TcpListener, setup: Setup, go: Arc<Go>) -> io::Result<()> {
    let topic = silverback::broadcast::Topic::with_config(
        silverback::broadcast::TopicConfig::default().capacity(setup.capacity),
    );
    let publisher = topic.clone();
    tokio::spawn(async move {
        wait_for_go(&go, || publisher.subscriber_count()).await;
        let mut payloads = Payloads::new(setup);
        loop {
            let text = silverback::Utf8Bytes::try_from(payloads.next()).expect("ASCII payload");
            let msg = silverback::PreparedMessage::new(&silverback::Message::text(text)).expect("data message");
            if publisher.publish(&msg).await == 0 && go.conns.load(Ordering::SeqCst) > 0 {
                // Everyone left: the round is over.
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    });
    let upgrader = Arc::new(upgrader());
    loop {
        let (tcp, _) = listener.accept().await?;
        tcp.set_nodelay(true)?;
        let (topic, upgrader) = (topic.clone(), upgrader.clone());
        tokio::spawn(async move {
            let Ok(ws) = upgrader.accept(tcp).await else { return };
            let (mut read, write) = ws.split();
            let writer = topic.subscribe_writer(write);
            while let Some(Ok(_)) = read.next().await {}
            writer.abort();
        });
    }
}

/// The servers built on a `tokio::sync::broadcast` channel: the publisher
/// task and one task per connection.
async fn channel_server(kind: Kind, listener: TcpListener, setup: Setup, go: Arc<Go>) -> io::Result<()> {
    let (tx, _) = broadcast::channel::<Bytes>(setup.capacity);
    let channel = Channel { tx, space: Arc::new(Notify::new()) };
    let publisher = channel.clone();
    tokio::spawn(async move {
        wait_for_go(&go, || publisher.tx.receiver_count()).await;
        let mut payloads = Payloads::new(setup);
        loop {
            while publisher.tx.len() < setup.capacity && publisher.tx.receiver_count() > 0 {
                let _ = publisher.tx.send(payloads.next());
            }
            // Full: wait until some receiver took a batch, then look again.
            publisher.space.notified().await;
        }
    });
    let upgrader = Arc::new(upgrader());
    let verbose = std::env::var_os("SB_BENCH_VERBOSE").is_some();
    loop {
        let (tcp, _) = listener.accept().await?;
        tcp.set_nodelay(true)?;
        let tx = channel.clone();
        let upgrader = upgrader.clone();
        tokio::spawn(async move {
            let result = match kind {
                Kind::Raw => raw(tcp, tx).await,
                Kind::SilverbackPerConn => silverback_per_conn(tcp, &upgrader, tx).await,
                Kind::Tungstenite => tungstenite(tcp, tx).await,
                Kind::TokioWebsockets => tokio_websockets(tcp, tx).await,
                Kind::Fastwebsockets => fastwebsockets(tcp, tx).await,
                Kind::Yawc => yawc(tcp, tx).await,
                Kind::Silverback => unreachable!("served by silverback_topic"),
            };
            if let Err(e) = result {
                if verbose {
                    eprintln!("{}: connection ended: {e}", kind.name());
                }
            }
        });
    }
}

/// Most messages a connection task takes from the channel per flush.
const BATCH: usize = 64;

/// The broadcast channel of the peers and the raw fan-out, with the
/// publisher's wake-up: `tokio::sync::broadcast` has no way to wait for
/// room, so each receiver notifies `space` after taking a batch and the
/// publisher, when the slowest receiver is `capacity` behind, waits for
/// that (silverback's `Topic::publish` waits the same way, inside).
#[derive(Clone)]
struct Channel {
    tx: broadcast::Sender<Bytes>,
    space: Arc<Notify>,
}

/// One connection's receiving end.
struct Feed {
    rx: broadcast::Receiver<Bytes>,
    space: Arc<Notify>,
}

impl Channel {
    fn subscribe(self) -> Feed {
        Feed { rx: self.tx.subscribe(), space: self.space }
    }
}

impl Feed {
    /// Waits for the next message, then takes what else is ready (up to
    /// [`BATCH`]); `None` when the channel closed. Lagged receivers skip.
    async fn next_batch(&mut self, batch: &mut Vec<Bytes>) -> Option<()> {
        loop {
            match self.rx.recv().await {
                Ok(b) => {
                    batch.push(b);
                    break;
                }
                Err(RecvError::Lagged(_)) => continue,
                Err(RecvError::Closed) => return None,
            }
        }
        while batch.len() < BATCH {
            match self.rx.try_recv() {
                Ok(b) => batch.push(b),
                Err(TryRecvError::Lagged(_)) => continue,
                Err(_) => break,
            }
        }
        self.space.notify_one();
        Some(())
    }
}

/// The answer to the load generator's fixed key (RFC 6455 §1.3's example).
const RAW_101: &[u8] = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";

/// The limit: reads the request head, answers 101, then writes each batch
/// of frames (a header per message, built here, and the shared payload:
/// small ones copied into one buffer, large ones referenced) with one
/// vectored write.
async fn raw(mut tcp: TcpStream, tx: Channel) -> Result<(), BoxError> {
    let mut head = Vec::with_capacity(512);
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        if tcp.read_buf(&mut head).await? == 0 || head.len() > 8192 {
            return Ok(());
        }
    }
    tcp.write_all(RAW_101).await?;
    let mut feed = tx.subscribe();
    let mut batch = Vec::with_capacity(BATCH);
    let mut frames: Vec<Bytes> = Vec::with_capacity(2 * BATCH);
    let mut small = BytesMut::new();
    while feed.next_batch(&mut batch).await.is_some() {
        // Small frames are copied into one buffer, large payloads written
        // from the shared copy: the cheapest way to the socket for both.
        for payload in batch.drain(..) {
            small.extend_from_slice(&text_header(payload.len()));
            if payload.len() <= SMALL {
                small.extend_from_slice(&payload);
            } else {
                frames.push(small.split().freeze());
                frames.push(payload);
            }
        }
        if !small.is_empty() {
            frames.push(small.split().freeze());
        }
        write_all_vectored(&mut tcp, &frames).await?;
        frames.clear();
    }
    Ok(())
}

/// Payloads up to this size are copied next to their header.
const SMALL: usize = 1024;

/// The header of an unmasked, final text frame of `len` bytes.
fn text_header(len: usize) -> Vec<u8> {
    match len {
        0..=125 => vec![0x81, len as u8],
        126..=65535 => vec![0x81, 126, (len >> 8) as u8, len as u8],
        _ => [&[0x81, 127][..], &(len as u64).to_be_bytes()].concat(),
    }
}

async fn write_all_vectored(tcp: &mut TcpStream, bufs: &[Bytes]) -> io::Result<()> {
    let mut slices: Vec<IoSlice<'_>> = bufs.iter().map(|b| IoSlice::new(b)).collect();
    let mut rest = &mut slices[..];
    while !rest.is_empty() {
        let n = tcp.write_vectored(rest).await?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        IoSlice::advance_slices(&mut rest, n);
    }
    Ok(())
}

/// silverback without a topic: a `Message` per connection, `feed` +
/// `flush`. On a compressing connection each message is compressed here,
/// once per connection.
async fn silverback_per_conn(tcp: TcpStream, upgrader: &silverback::Upgrader, tx: Channel) -> Result<(), BoxError> {
    let (_read, mut write) = upgrader.accept(tcp).await?.split();
    let mut feed = tx.subscribe();
    let mut batch = Vec::with_capacity(BATCH);
    while feed.next_batch(&mut batch).await.is_some() {
        for payload in batch.drain(..) {
            write.feed(silverback::Message::text(silverback::Utf8Bytes::try_from(payload)?)).await?;
        }
        write.flush().await?;
    }
    Ok(())
}

async fn tungstenite(tcp: TcpStream, tx: Channel) -> Result<(), BoxError> {
    use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
    let mut ws = tokio_tungstenite::accept_async(tcp).await?;
    let mut feed = tx.subscribe();
    let mut batch = Vec::with_capacity(BATCH);
    while feed.next_batch(&mut batch).await.is_some() {
        for payload in batch.drain(..) {
            ws.feed(Message::Text(Utf8Bytes::try_from(payload)?)).await?;
        }
        ws.flush().await?;
    }
    Ok(())
}

async fn tokio_websockets(tcp: TcpStream, tx: Channel) -> Result<(), BoxError> {
    let (_, mut ws) = tokio_websockets::ServerBuilder::new().accept(tcp).await?;
    let mut feed = tx.subscribe();
    let mut batch = Vec::with_capacity(BATCH);
    while feed.next_batch(&mut batch).await.is_some() {
        for payload in batch.drain(..) {
            // The payloads are ASCII; `text` takes that on trust.
            ws.feed(tokio_websockets::Message::text(payload)).await?;
        }
        ws.flush().await?;
    }
    Ok(())
}

/// fastwebsockets' `upgrade::upgrade` on hyper, then the socket taken back
/// from hyper (as in the echo bench). It has no buffered sink: each
/// `write_frame` writes its frame to the socket (one `write`, or `writev`
/// above its threshold), and `flush` only flushes the socket, a no-op on
/// TCP; so a batch costs a system call per message.
async fn fastwebsockets(tcp: TcpStream, tx: Channel) -> Result<(), BoxError> {
    let service = hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
        let tx = tx.clone();
        async move {
            let (response, upgrade) = fastwebsockets::upgrade::upgrade(&mut req)?;
            tokio::spawn(async move {
                let _ = fastwebsockets_send(upgrade, tx).await;
            });
            Ok::<_, fastwebsockets::WebSocketError>(response)
        }
    });
    serve_with_upgrades(tcp, service).await
}

async fn fastwebsockets_send(upgrade: fastwebsockets::upgrade::UpgradeFut, tx: Channel) -> Result<(), BoxError> {
    let upgraded = upgrade.await?.into_inner().into_inner();
    let parts = upgraded
        .downcast::<hyper_util::rt::TokioIo<TcpStream>>()
        .map_err(|_| io::Error::other("the upgraded I/O is not the TCP stream"))?;
    let mut ws = fastwebsockets::WebSocket::after_handshake(parts.io.into_inner(), fastwebsockets::Role::Server);
    let mut feed = tx.subscribe();
    let mut batch = Vec::with_capacity(BATCH);
    while feed.next_batch(&mut batch).await.is_some() {
        for payload in batch.drain(..) {
            ws.write_frame(fastwebsockets::Frame::text(fastwebsockets::Payload::Borrowed(&payload))).await?;
        }
        ws.flush().await?;
    }
    Ok(())
}

/// yawc on hyper (as in the echo bench), level 1, 2^15 windows,
/// `server_no_context_takeover`; `feed` + `flush` per batch, each message
/// compressed by the connection's own compressor.
async fn yawc(tcp: TcpStream, tx: Channel) -> Result<(), BoxError> {
    let service = hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
        let tx = tx.clone();
        async move {
            let options = yawc::Options::default()
                .with_low_latency_compression()
                .with_client_max_window_bits(15)
                .with_server_max_window_bits(15)
                .server_no_context_takeover();
            let (response, upgrade) = yawc::WebSocket::upgrade_with_options(&mut req, options)?;
            tokio::spawn(async move {
                let _ = yawc_send(upgrade, tx).await;
            });
            Ok::<_, yawc::WebSocketError>(response)
        }
    });
    serve_with_upgrades(tcp, service).await
}

async fn yawc_send(upgrade: yawc::UpgradeFut, tx: Channel) -> Result<(), BoxError> {
    let mut ws = upgrade.await?;
    let mut feed = tx.subscribe();
    let mut batch = Vec::with_capacity(BATCH);
    while feed.next_batch(&mut batch).await.is_some() {
        for payload in batch.drain(..) {
            ws.feed(yawc::frame::Frame::text(payload)).await?;
        }
        ws.flush().await?;
    }
    Ok(())
}
