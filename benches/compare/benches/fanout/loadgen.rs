//! The neutral load generator of the fan-out bench: raw Tokio TCP, the
//! client handshake done by hand (`wire.rs`), and a reader per connection
//! that parses frame headers, counts messages and reads each message's
//! send time from the first 16 bytes of its payload. On compressed
//! connections it inflates one message in [`INFLATE_EVERY`] per connection
//! (the first included, which also checks that compression is real) to get
//! at the timestamp; the others are only counted.

use std::cell::RefCell;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use futures_util::{stream, StreamExt};
use silverback::deflate::Decompressor;
use tokio::net::TcpStream;
use tokio::task::JoinSet;

use crate::sys::{get_stamp, mono_ns};
use crate::{deflate, host, wire};

/// A compressed connection inflates every this many messages.
pub const INFLATE_EVERY: u64 = 16;

/// The upgrade request of the compressed row: the extension offer asks for
/// no context takeover both ways, so a server may compress each message
/// once for all connections.
const DEFLATE_REQUEST: &[u8] = b"GET / HTTP/1.1\r\n\
Host: 127.0.0.1\r\n\
Upgrade: websocket\r\n\
Connection: Upgrade\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
Sec-WebSocket-Version: 13\r\n\
Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; client_no_context_takeover\r\n\
\r\n";

/// Log-linear latency histogram: 16 buckets per power of two of µs.
#[derive(Debug)]
pub struct Histogram {
    buckets: Vec<AtomicU64>,
}

const PER_OCTAVE: f64 = 16.0;
const BUCKETS: usize = 40 * 16;

impl Histogram {
    fn new() -> Histogram {
        Histogram { buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect() }
    }

    fn record(&self, ns: u64) {
        let us = (ns as f64 / 1e3).max(1.0);
        let i = ((us.log2() * PER_OCTAVE) as usize).min(BUCKETS - 1);
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
    }

    /// The bucket counts, to merge rounds.
    pub fn counts(&self) -> Vec<u64> {
        self.buckets.iter().map(|b| b.load(Ordering::Relaxed)).collect()
    }
}

/// The `q` quantile (0–1) of histogram counts, in µs (bucket midpoint).
pub fn quantile(counts: &[u64], q: f64) -> Option<f64> {
    let total: u64 = counts.iter().sum();
    if total == 0 {
        return None;
    }
    let rank = (q * total as f64).ceil().max(1.0) as u64;
    let mut seen = 0;
    for (i, &c) in counts.iter().enumerate() {
        seen += c;
        if seen >= rank {
            return Some(2f64.powf((i as f64 + 0.5) / PER_OCTAVE));
        }
    }
    None
}

/// What one round of one cell measured.
#[derive(Debug, Clone, Default)]
pub struct Round {
    /// Connections upgraded.
    pub opened: usize,
    /// Connections that failed to connect or upgrade.
    pub failed: usize,
    /// Messages delivered per second, summed over connections.
    pub rate: f64,
    /// Server CPU time (utime + stime) per delivered message, µs.
    pub server_us_per_msg: Option<f64>,
    /// Server process CPU, percent of one core.
    pub server_cpu: Option<f64>,
    /// Load-generator core busy, percent.
    pub loadgen_cpu: Option<f64>,
    /// Latency histogram counts of the window.
    pub latency: Vec<u64>,
    /// Connections whose stream ended (EOF, error, close frame) before the
    /// end of the window.
    pub ended_early: usize,
    /// Connections that received nothing during the window.
    pub stalled: usize,
    /// Messages received with RSV1 (compressed) in the window.
    pub compressed: u64,
    /// The extension the server agreed to, if any.
    pub extension: Option<String>,
    /// First errors seen.
    pub errors: Vec<String>,
}

/// What the readers share.
struct Shared {
    counts: Vec<AtomicU64>,
    compressed: AtomicU64,
    ended: AtomicUsize,
    measuring: AtomicBool,
    latency: Histogram,
    errors: Mutex<Vec<String>>,
}

impl Shared {
    fn error(&self, what: impl std::fmt::Display) {
        let mut e = self.errors.lock().expect("errors lock");
        if e.len() < 3 {
            e.push(what.to_string());
        }
    }
}

/// How one round runs.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// Connections to open.
    pub conns: usize,
    /// Offer permessage-deflate.
    pub compressed: bool,
    /// Run after every connection received its first message.
    pub warmup: Duration,
    /// The measured window.
    pub measure: Duration,
    /// The load generator's core, when pinned (its busy time is read from
    /// `/proc/stat`).
    pub loadgen_core: Option<usize>,
}

/// The servers one round runs against.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    /// Connections go round-robin over these addresses.
    pub addrs: &'a [SocketAddr],
    /// The upgrade request; `None` for the default (`GET /`, with the
    /// deflate offer in the compressed row).
    pub request: Option<&'a [u8]>,
    /// The server processes, for their CPU time (summed).
    pub pids: &'a [u32],
}

/// Opens `plan.conns` connections to the `target` servers, tells them
/// (`go`) to start, waits for every connection's first message, warms up,
/// then measures one window.
pub async fn round(target: Target<'_>, go: impl FnOnce(usize), plan: Plan) -> Round {
    let Plan { conns, compressed, warmup, measure, loadgen_core } = plan;
    let mut out = Round::default();
    let request = target.request.unwrap_or(if compressed { DEFLATE_REQUEST } else { wire::UPGRADE_REQUEST });
    let addrs = target.addrs;
    let opened: Vec<io::Result<(TcpStream, Vec<u8>, String)>> =
        stream::iter(0..conns).map(|i| open(addrs[i % addrs.len()], request)).buffer_unordered(64).collect().await;
    let mut streams = Vec::with_capacity(conns);
    let mut errors = Vec::new();
    for r in opened {
        match r {
            Ok(s) => streams.push(s),
            Err(e) => {
                out.failed += 1;
                if errors.len() < 3 {
                    errors.push(format!("open: {e}"));
                }
            }
        }
    }
    out.opened = streams.len();
    if compressed {
        out.extension = streams.first().and_then(|(_, _, head)| deflate::agreed(head).ok().flatten().map(|a| a.header));
        if out.extension.is_none() && !streams.is_empty() {
            errors.push("server declined permessage-deflate".to_owned());
            out.errors = errors;
            return out;
        }
    }
    let shared = Arc::new(Shared {
        counts: (0..streams.len()).map(|_| AtomicU64::new(0)).collect(),
        compressed: AtomicU64::new(0),
        ended: AtomicUsize::new(0),
        measuring: AtomicBool::new(false),
        latency: Histogram::new(),
        errors: Mutex::new(errors),
    });
    let mut tasks = JoinSet::new();
    for (id, (tcp, leftover, _)) in streams.into_iter().enumerate() {
        let shared = shared.clone();
        tasks.spawn(async move {
            if let Err(e) = read_conn(tcp, leftover, id, &shared).await {
                shared.error(format!("read: {e}"));
            }
            shared.ended.fetch_add(1, Ordering::SeqCst);
        });
    }
    go(out.opened);
    // Every connection's first message, within 30 s.
    let start = Instant::now();
    while shared.counts.iter().any(|c| c.load(Ordering::Relaxed) == 0) && start.elapsed() < Duration::from_secs(30) {
        if shared.ended.load(Ordering::SeqCst) == shared.counts.len() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(warmup).await;

    let snapshot = |s: &Shared| s.counts.iter().map(|c| c.load(Ordering::Relaxed)).collect::<Vec<u64>>();
    let server_ticks =
        || -> Option<u64> { target.pids.iter().map(|pid| host::process_ticks(&format!("/proc/{pid}/stat"))).sum() };
    let loadgen_ticks = || match loadgen_core {
        Some(core) => host::core_busy(&std::fs::read_to_string("/proc/stat").unwrap_or_default(), core),
        None => host::process_ticks("/proc/self/stat"),
    };
    let (t0, c0, s0, l0) = (Instant::now(), snapshot(&shared), server_ticks(), loadgen_ticks());
    let compressed0 = shared.compressed.load(Ordering::Relaxed);
    shared.measuring.store(true, Ordering::SeqCst);
    tokio::time::sleep(measure).await;
    shared.measuring.store(false, Ordering::SeqCst);
    let (t1, c1, s1, l1) = (Instant::now(), snapshot(&shared), server_ticks(), loadgen_ticks());
    out.ended_early = shared.ended.load(Ordering::SeqCst);
    tasks.abort_all();

    let secs = (t1 - t0).as_secs_f64();
    let delivered: u64 = c1.iter().zip(&c0).map(|(b, a)| b - a).sum();
    out.stalled = c1.iter().zip(&c0).filter(|(b, a)| b == a).count();
    out.rate = delivered as f64 / secs;
    // USER_HZ is 100 on every mainstream Linux configuration.
    let ticks = |a: Option<u64>, b: Option<u64>| Some((b? - a?) as f64 / 100.0);
    out.server_cpu = ticks(s0, s1).map(|busy| busy / secs * 100.0);
    out.loadgen_cpu = ticks(l0, l1).map(|busy| busy / secs * 100.0);
    out.server_us_per_msg = ticks(s0, s1).filter(|_| delivered > 0).map(|busy| busy / delivered as f64 * 1e6);
    out.latency = shared.latency.counts();
    out.compressed = shared.compressed.load(Ordering::Relaxed) - compressed0;
    out.errors = shared.errors.lock().expect("errors lock").clone();
    out
}

/// Connects and upgrades; returns the stream, bytes read past the head,
/// and the response head.
async fn open(addr: SocketAddr, request: &[u8]) -> io::Result<(TcpStream, Vec<u8>, String)> {
    let mut tcp = TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    let mut buf = Vec::with_capacity(1024);
    let head = tokio::time::timeout(Duration::from_secs(20), wire::upgrade_with(&mut tcp, &mut buf, request, false))
        .await
        .map_err(|_| io::Error::other("upgrade timed out"))??;
    Ok((tcp, buf, head))
}

thread_local! {
    /// One read buffer for every connection (the runtime has one thread).
    static SCRATCH: RefCell<Box<[u8]>> = RefCell::new(vec![0; 256 * 1024].into_boxed_slice());
    /// One decompressor for every connection: with
    /// `server_no_context_takeover` each message inflates on its own.
    static INFLATE: RefCell<Decompressor> = RefCell::new(Decompressor::new(15, true));
}

/// What reading a chunk came to.
enum Read {
    More,
    Ended,
}

async fn read_conn(tcp: TcpStream, leftover: Vec<u8>, id: usize, shared: &Shared) -> io::Result<()> {
    let mut parser = Parser::default();
    if parser.feed(&leftover, mono_ns(), id, shared)? {
        return Ok(());
    }
    loop {
        tcp.readable().await?;
        let step = SCRATCH.with_borrow_mut(|buf| -> io::Result<Read> {
            // A few reads per wake-up, then let the other connections run.
            for _ in 0..4 {
                match tcp.try_read(buf) {
                    Ok(0) => return Ok(Read::Ended),
                    Ok(n) => {
                        if parser.feed(&buf[..n], mono_ns(), id, shared)? {
                            return Ok(Read::Ended);
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Read::More),
                    Err(e) => return Err(e),
                }
            }
            Ok(Read::More)
        })?;
        if let Read::Ended = step {
            return Ok(());
        }
    }
}

/// Streaming frame parser of one connection: headers, and of each data
/// message the first 16 payload bytes (or, for a sampled compressed
/// message, its whole payload).
#[derive(Debug, Default)]
struct Parser {
    head: [u8; 14],
    head_len: usize,
    payload_left: u64,
    in_payload: bool,
    /// First header byte of the message's first frame (RSV1 lives there).
    first: u8,
    /// Start of the message payload, for the timestamp.
    prefix: [u8; 16],
    prefix_len: usize,
    /// Whole payload of a sampled compressed message.
    sample: Option<Vec<u8>>,
    messages: u64,
}

impl Parser {
    /// Consumes `buf`; `Ok(true)` on a close frame.
    fn feed(&mut self, mut buf: &[u8], now: u64, id: usize, shared: &Shared) -> io::Result<bool> {
        while !buf.is_empty() {
            if self.in_payload {
                let take = self.payload_left.min(buf.len() as u64) as usize;
                let data = &buf[..take];
                if self.head[0] & 0x08 == 0 {
                    // Data or continuation frame: keep what we need.
                    let n = (16 - self.prefix_len).min(take);
                    self.prefix[self.prefix_len..self.prefix_len + n].copy_from_slice(&data[..n]);
                    self.prefix_len += n;
                    if let Some(sample) = &mut self.sample {
                        sample.extend_from_slice(data);
                    }
                }
                self.payload_left -= take as u64;
                buf = &buf[take..];
                if self.payload_left == 0 && self.end_frame(now, id, shared)? {
                    return Ok(true);
                }
                continue;
            }
            let need = self.head_needed();
            let take = (need - self.head_len).min(buf.len());
            self.head[self.head_len..self.head_len + take].copy_from_slice(&buf[..take]);
            self.head_len += take;
            buf = &buf[take..];
            if self.head_len >= 2 && self.head_len == self.head_needed() {
                self.payload_left = self.payload_len();
                let opcode = self.head[0] & 0x0f;
                if opcode == wire::OP_TEXT || opcode == wire::OP_BINARY {
                    self.first = self.head[0];
                    self.prefix_len = 0;
                    let sampled = self.messages.is_multiple_of(INFLATE_EVERY);
                    self.sample = (self.first & 0x40 != 0 && sampled).then(Vec::new);
                }
                if self.payload_left == 0 {
                    if self.end_frame(now, id, shared)? {
                        return Ok(true);
                    }
                } else {
                    self.in_payload = true;
                }
            }
        }
        Ok(false)
    }

    fn head_needed(&self) -> usize {
        wire::head_needed(&self.head[..self.head_len])
    }

    fn payload_len(&self) -> u64 {
        wire::payload_len(&self.head)
    }

    fn end_frame(&mut self, now: u64, id: usize, shared: &Shared) -> io::Result<bool> {
        let (fin, opcode) = (self.head[0] & 0x80 != 0, self.head[0] & 0x0f);
        self.head_len = 0;
        self.in_payload = false;
        if opcode == wire::OP_CLOSE {
            return Ok(true);
        }
        if opcode >= 0x8 || !fin {
            return Ok(false);
        }
        self.messages += 1;
        shared.counts[id].fetch_add(1, Ordering::Relaxed);
        let compressed = self.first & 0x40 != 0;
        if compressed {
            shared.compressed.fetch_add(1, Ordering::Relaxed);
        }
        let stamp = match (compressed, self.sample.take()) {
            (false, _) => get_stamp(&self.prefix[..self.prefix_len]),
            (true, None) => return Ok(false),
            (true, Some(payload)) => {
                let mut text = BytesMut::new();
                INFLATE
                    .with_borrow_mut(|inflate| {
                        inflate
                            .decompress(&payload, &mut text, 1 << 20)
                            .and_then(|()| inflate.finish_message(&mut text, 1 << 20))
                    })
                    .map_err(|e| io::Error::other(format!("message does not inflate: {e}")))?;
                get_stamp(&text)
            }
        };
        let stamp = stamp.ok_or_else(|| io::Error::other("message without a timestamp"))?;
        if shared.measuring.load(Ordering::Relaxed) {
            shared.latency.record(now.saturating_sub(stamp));
        }
        Ok(false)
    }
}

/// Checks the parser and the histogram; run at start-up.
pub fn self_check() {
    let shared = Shared {
        counts: vec![AtomicU64::new(0)],
        compressed: AtomicU64::new(0),
        ended: AtomicUsize::new(0),
        measuring: AtomicBool::new(true),
        latency: Histogram::new(),
        errors: Mutex::new(Vec::new()),
    };
    let mut payload = vec![b'x'; 300];
    crate::sys::put_stamp(&mut payload, 1_000);
    let mut bytes = Vec::new();
    for _ in 0..3 {
        bytes.extend_from_slice(&[0x81, 126, 1, 44]);
        bytes.extend_from_slice(&payload);
    }
    bytes.extend_from_slice(&[0x88, 0]);
    for step in [1, 5, 1000] {
        let mut p = Parser::default();
        let closed = bytes.chunks(step).any(|c| p.feed(c, 3_001_000, 0, &shared).expect("parses"));
        assert!(closed);
    }
    assert_eq!(shared.counts[0].load(Ordering::Relaxed), 9);
    let p50 = quantile(&shared.latency.counts(), 0.5).expect("samples");
    assert!((2900.0..3100.0).contains(&p50), "p50 {p50}");
    assert_eq!(crate::sys::get_stamp(b"00000000000003e8"), Some(1000));
}
