//! The neutral load generator: raw Tokio TCP with pre-built masked frames
//! (see `wire.rs`), the same for every server. Each scenario warms up, then
//! counts echoed messages (or finished handshakes) over a fixed window;
//! every loop ends when the scenario's tasks are aborted at the deadline.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{stream, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::deflate;
use crate::host::{core_busy, process_ticks};
use crate::servers::Kind;
use crate::wire::{self, FrameCounter, OP_BINARY};

/// How long each scenario warms up and then measures.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// Run before counting starts.
    pub warmup: Duration,
    /// The counted window.
    pub measure: Duration,
}

/// A server process to aim at.
#[derive(Debug, Clone, Copy)]
pub struct Target {
    /// Which server it is (the raw echo needs a different handshake check).
    pub kind: Kind,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its process id, for `/proc` readings.
    pub pid: u32,
    /// The (server, load generator) cores, when pinned.
    pub cores: Option<(usize, usize)>,
}

/// One measured figure plus what it cost and what went wrong.
#[derive(Debug, Clone, Default)]
pub struct Sample {
    /// Messages (or handshakes) per second, or KB per connection for RSS.
    pub value: f64,
    /// Server core busy over the window, in percent of one core.
    pub server_cpu: Option<f64>,
    /// Load generator core busy over the window, in percent of one core.
    pub client_cpu: Option<f64>,
    /// Connections that made no progress during the window.
    pub stalled: usize,
    /// Errors seen (first few), with a total count.
    pub errors: Vec<String>,
    /// Total number of errors.
    pub error_count: u64,
    /// (max − min) / median of the rounds behind `value`, if several.
    pub spread: Option<f64>,
    /// Busy time of the server's core per echoed message or handshake, in
    /// µs: the server's cost even where the load generator is the limit.
    pub server_us_per_op: Option<f64>,
    /// The server declined what the row needs (permessage-deflate): not a
    /// failure, the cell is shown as not applicable.
    pub declined: bool,
    /// A remark for the report (what was negotiated, echo sizes).
    pub detail: Option<String>,
}

fn median(mut values: Vec<f64>) -> Option<f64> {
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    match values.len() {
        0 => None,
        n if n % 2 == 1 => Some(values[mid]),
        _ => Some((values[mid - 1] + values[mid]) / 2.0),
    }
}

impl Sample {
    /// Combines rounds of one cell: the median value and cost, mean CPU,
    /// worst stall count and all errors.
    pub fn combine(mut rounds: Vec<Sample>) -> Sample {
        if rounds.len() == 1 {
            return rounds.pop().expect("one round");
        }
        let n = rounds.len() as f64;
        let values: Vec<f64> = rounds.iter().map(|s| s.value).collect();
        let (min, max) = values.iter().fold((f64::MAX, f64::MIN), |(lo, hi), &v| (lo.min(v), hi.max(v)));
        let median_value = median(values).unwrap_or(0.0);
        let mean = |f: fn(&Sample) -> Option<f64>| -> Option<f64> {
            rounds.iter().map(f).sum::<Option<f64>>().map(|total| total / n)
        };
        Sample {
            value: median_value,
            server_cpu: mean(|s| s.server_cpu),
            client_cpu: mean(|s| s.client_cpu),
            stalled: rounds.iter().map(|s| s.stalled).max().unwrap_or(0),
            errors: rounds.iter().flat_map(|s| s.errors.iter().cloned()).take(3).collect(),
            error_count: rounds.iter().map(|s| s.error_count).sum(),
            spread: (median_value > 0.0).then(|| (max - min) / median_value),
            server_us_per_op: median(rounds.iter().filter_map(|s| s.server_us_per_op).collect()),
            declined: rounds.iter().any(|s| s.declined),
            detail: rounds.iter().find_map(|s| s.detail.clone()),
        }
    }
}

#[derive(Debug, Default)]
struct Errors {
    first: Mutex<Vec<String>>,
    count: AtomicU64,
}

impl Errors {
    fn push(&self, what: impl std::fmt::Display) {
        self.count.fetch_add(1, Ordering::Relaxed);
        let mut first = self.first.lock().expect("errors lock");
        if first.len() < 3 {
            first.push(what.to_string());
        }
    }

    fn fill(&self, sample: &mut Sample) {
        sample.errors = self.first.lock().expect("errors lock").clone();
        sample.error_count = self.count.load(Ordering::Relaxed);
    }
}

/// Connects, upgrades, and (if `check` is given) verifies one echo of it.
async fn open(target: Target, check: Option<(u8, &[u8])>) -> io::Result<(TcpStream, Vec<u8>)> {
    let mut tcp = TcpStream::connect(target.addr).await?;
    tcp.set_nodelay(true)?;
    let mut buf = Vec::with_capacity(4096);
    wire::upgrade(&mut tcp, &mut buf, target.kind == Kind::Raw).await?;
    if let Some((opcode, payload)) = check {
        tcp.write_all(&wire::client_frame(opcode, payload)).await?;
        let (got_op, got) = wire::read_frame(&mut tcp, &mut buf).await?;
        if got_op != opcode || got != payload {
            return Err(io::Error::other(format!(
                "bad echo: opcode {got_op} len {} (sent opcode {opcode} len {})",
                got.len(),
                payload.len()
            )));
        }
    }
    Ok((tcp, buf))
}

/// Opens `n` connections, 32 at a time, within `limit`.
async fn open_many(
    target: Target,
    n: usize,
    check: Option<(u8, &[u8])>,
    limit: Duration,
) -> io::Result<Vec<(TcpStream, Vec<u8>)>> {
    open_many_with(n, limit, || open(target, check)).await
}

/// Runs `n` connection openers from `opener`, 32 at a time, within `limit`.
async fn open_many_with<T, F, Fut>(n: usize, limit: Duration, opener: F) -> io::Result<Vec<T>>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = io::Result<T>>,
{
    let opened =
        tokio::time::timeout(limit, stream::iter(0..n).map(|_| opener()).buffer_unordered(32).collect::<Vec<_>>())
            .await
            .map_err(|_| io::Error::other(format!("opening {n} connections took over {limit:?}")))?;
    opened.into_iter().collect()
}

/// Pre-built client frames, sent in rotation: `cycle` different frames
/// laid out back to back and repeated, so that any run of up to `depth`
/// frames starting at any frame of the cycle is one contiguous slice (one
/// write). With one frame this is the frame repeated `depth` times.
#[derive(Debug)]
pub struct Frames {
    bytes: Vec<u8>,
    /// Where each frame of `bytes` starts, plus the end.
    starts: Vec<usize>,
    cycle: usize,
}

impl Frames {
    /// Lays out `cycle` (non-empty) for runs of up to `depth` frames.
    pub fn new(cycle: &[Vec<u8>], depth: usize) -> Frames {
        let repeats = (cycle.len() - 1 + depth).div_ceil(cycle.len());
        let mut bytes = Vec::new();
        let mut starts = vec![0];
        for frame in std::iter::repeat_n(cycle, repeats).flatten() {
            bytes.extend_from_slice(frame);
            starts.push(bytes.len());
        }
        Frames { bytes, starts, cycle: cycle.len() }
    }

    /// `n` (at most `depth`) frames starting at frame `first` of the cycle.
    fn run(&self, first: usize, n: usize) -> &[u8] {
        &self.bytes[self.starts[first]..self.starts[first + n]]
    }
}

/// `conns` connections each keep `depth` copies of one message in flight;
/// returns echoed messages per second.
pub async fn throughput(
    target: Target,
    conns: usize,
    opcode: u8,
    payload: &[u8],
    depth: usize,
    timing: Timing,
) -> Sample {
    let mut sample = Sample::default();
    let opened = match open_many(target, conns, Some((opcode, payload)), Duration::from_secs(20)).await {
        Ok(opened) => opened,
        Err(e) => {
            sample.errors.push(format!("setup: {e}"));
            sample.error_count = 1;
            return sample;
        }
    };
    let frames = Frames::new(&[wire::client_frame(opcode, payload)], depth);
    run_echoes(target, opened, frames, depth, timing, sample).await
}

/// The compressed row: `conns` connections that agreed to
/// permessage-deflate each keep `depth` compressed messages in flight,
/// cycling through `messages`; returns echoed messages per second. A server
/// that declines the extension gives a sample marked `declined`.
pub async fn deflate_throughput(
    target: Target,
    conns: usize,
    messages: &deflate::Messages,
    depth: usize,
    timing: Timing,
) -> Sample {
    let mut sample = Sample::default();
    let setup = async {
        let opened = open_many_with(conns, Duration::from_secs(20), || deflate::open(target.addr, messages)).await?;
        let agreed = &opened[0].agreed;
        if let Some(other) = opened.iter().find(|o| o.agreed != *agreed) {
            return Err(io::Error::other(format!(
                "connections agreed differently: {:?} vs {:?}",
                agreed.header, other.agreed.header
            )));
        }
        let frames =
            messages.frames(agreed.client_window).ok_or_else(|| io::Error::other("no frames for the agreed window"))?;
        let (first, second) = opened[0].echo_sizes;
        let detail =
            format!("agreed `{}`; echoes of the first two messages: {first} and {second} B compressed", agreed.header);
        Ok((opened, Frames::new(&frames, depth), detail))
    };
    let (opened, frames, detail) = match setup.await {
        Ok(ready) => ready,
        Err(e) if e.kind() == io::ErrorKind::Unsupported => {
            sample.declined = true;
            sample.detail = Some(e.to_string());
            return sample;
        }
        Err(e) => {
            sample.errors.push(format!("setup: {e}"));
            sample.error_count = 1;
            return sample;
        }
    };
    sample.detail = Some(detail);
    let opened = opened.into_iter().map(|o| (o.tcp, o.leftover)).collect();
    run_echoes(target, opened, frames, depth, timing, sample).await
}

/// Drives every opened connection with `frames` for the warm-up and the
/// measured window, and fills `sample` with the rate.
async fn run_echoes(
    target: Target,
    opened: Vec<(TcpStream, Vec<u8>)>,
    frames: Frames,
    depth: usize,
    timing: Timing,
    mut sample: Sample,
) -> Sample {
    let conns = opened.len();
    let frames = Arc::new(frames);
    let counts: Arc<[AtomicU64]> = (0..conns).map(|_| AtomicU64::new(0)).collect();
    let errors = Arc::new(Errors::default());
    let mut tasks = JoinSet::new();
    for (i, (tcp, leftover)) in opened.into_iter().enumerate() {
        let (frames, counts, errors) = (frames.clone(), counts.clone(), errors.clone());
        tasks.spawn(async move {
            if let Err(e) = drive(tcp, leftover, &frames, depth, &counts[i]).await {
                errors.push(e);
            }
        });
    }
    let snapshot = |counts: &[AtomicU64]| -> Vec<u64> { counts.iter().map(|c| c.load(Ordering::Relaxed)).collect() };
    tokio::time::sleep(timing.warmup).await;
    let (t0, c0, cpu0) = (Instant::now(), snapshot(&counts), Cpu::read(target));
    tokio::time::sleep(timing.measure).await;
    let (t1, c1, cpu1) = (Instant::now(), snapshot(&counts), Cpu::read(target));
    tasks.shutdown().await;
    let elapsed = (t1 - t0).as_secs_f64();
    let done: u64 = c0.iter().zip(&c1).map(|(a, b)| b - a).sum();
    sample.stalled = c0.iter().zip(&c1).filter(|(a, b)| a == b).count();
    sample.value = done as f64 / elapsed;
    (sample.server_cpu, sample.client_cpu) = Cpu::usage(cpu0, cpu1, elapsed);
    sample.server_us_per_op = per_op(sample.server_cpu, sample.value);
    errors.fill(&mut sample);
    sample
}

/// Server-core µs per operation from its busy percent and the rate.
fn per_op(server_cpu: Option<f64>, rate: f64) -> Option<f64> {
    server_cpu.filter(|_| rate > 0.0).map(|busy| busy / 100.0 / rate * 1e6)
}

/// One connection's loop: the writer sends a frame per credit, the reader
/// returns a credit per echoed message. Runs until aborted or an error.
async fn drive(tcp: TcpStream, leftover: Vec<u8>, frames: &Frames, depth: usize, count: &AtomicU64) -> io::Result<()> {
    let (rd, wr) = tcp.into_split();
    let credit = Semaphore::new(depth);
    tokio::try_join!(write_loop(wr, &credit, frames, depth), read_loop(rd, leftover, &credit, count))?;
    Ok(())
}

async fn write_loop(
    mut wr: OwnedWriteHalf,
    credit: &Semaphore,
    frames: &Frames,
    depth: usize,
) -> io::Result<Infallible> {
    let mut next = 0;
    loop {
        credit.acquire().await.expect("never closed").forget();
        let mut n = 1;
        while n < depth {
            match credit.try_acquire() {
                Ok(permit) => permit.forget(),
                Err(_) => break,
            }
            n += 1;
        }
        wr.write_all(frames.run(next, n)).await?;
        next = (next + n) % frames.cycle;
    }
}

async fn read_loop(
    mut rd: OwnedReadHalf,
    mut pending: Vec<u8>,
    credit: &Semaphore,
    count: &AtomicU64,
) -> io::Result<Infallible> {
    let mut counter = FrameCounter::default();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let progress = if pending.is_empty() {
            let n = rd.read(&mut buf).await?;
            if n == 0 {
                return Err(io::Error::other("server closed the connection"));
            }
            counter.feed(&buf[..n])
        } else {
            counter.feed(&std::mem::take(&mut pending))
        };
        if progress.closed {
            return Err(io::Error::other("server sent a close frame"));
        }
        if progress.messages > 0 {
            count.fetch_add(progress.messages, Ordering::Relaxed);
            credit.add_permits(progress.messages as usize);
        }
    }
}

/// `connectors` tasks loop over connect + upgrade + close handshake; returns
/// completed cycles per second.
pub async fn handshakes(target: Target, connectors: usize, timing: Timing) -> Sample {
    let count = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(Errors::default());
    let mut tasks = JoinSet::new();
    for _ in 0..connectors {
        let (count, errors) = (count.clone(), errors.clone());
        tasks.spawn(async move {
            loop {
                match handshake_once(target).await {
                    Ok(()) => {
                        count.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => {
                        errors.push(e);
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            }
        });
    }
    tokio::time::sleep(timing.warmup).await;
    let (t0, c0, cpu0) = (Instant::now(), count.load(Ordering::Relaxed), Cpu::read(target));
    tokio::time::sleep(timing.measure).await;
    let (t1, c1, cpu1) = (Instant::now(), count.load(Ordering::Relaxed), Cpu::read(target));
    tasks.shutdown().await;
    let elapsed = (t1 - t0).as_secs_f64();
    let mut sample = Sample { value: (c1 - c0) as f64 / elapsed, ..Sample::default() };
    if c1 == c0 {
        sample.stalled = 1;
    }
    (sample.server_cpu, sample.client_cpu) = Cpu::usage(cpu0, cpu1, elapsed);
    sample.server_us_per_op = per_op(sample.server_cpu, sample.value);
    errors.fill(&mut sample);
    sample
}

async fn handshake_once(target: Target) -> io::Result<()> {
    let (mut tcp, mut buf) = open(target, None).await?;
    tcp.write_all(&wire::close_frame()).await?;
    let mut counter = FrameCounter::default();
    if counter.feed(&buf).closed {
        return Ok(());
    }
    loop {
        buf.resize(4096, 0);
        let n = tcp.read(&mut buf).await?;
        if n == 0 {
            return Err(io::Error::other("EOF before the close frame"));
        }
        if counter.feed(&buf[..n]).closed {
            return Ok(());
        }
    }
}

/// Server RSS growth per connection: `.0` just upgraded and idle, `.1` after
/// one 20-byte echo on each. KB per connection.
pub async fn idle_rss(target: Target, conns: usize) -> (Sample, Sample) {
    let (mut idle, mut used) = (Sample::default(), Sample::default());
    if let Err(e) = idle_rss_inner(target, conns, &mut idle, &mut used).await {
        idle.errors.push(e.to_string());
        idle.error_count += 1;
    }
    (idle, used)
}

async fn idle_rss_inner(target: Target, conns: usize, idle: &mut Sample, used: &mut Sample) -> io::Result<()> {
    let settle = Duration::from_millis(400);
    let payload = [0x5a; 20];
    // Warm the server's code paths and allocator once, then take the base.
    drop(open(target, Some((OP_BINARY, &payload))).await?);
    tokio::time::sleep(settle).await;
    let base = rss_kb(target.pid)?;
    let mut opened = open_many(target, conns, None, Duration::from_secs(60)).await?;
    tokio::time::sleep(settle).await;
    idle.value = (rss_kb(target.pid)? - base) / conns as f64;
    let frame = wire::client_frame(OP_BINARY, &payload);
    let echoed = stream::iter(opened.iter_mut())
        .map(|(tcp, buf)| async {
            tcp.write_all(&frame).await?;
            wire::read_frame(tcp, buf).await
        })
        .buffer_unordered(64)
        .collect::<Vec<_>>();
    for result in tokio::time::timeout(Duration::from_secs(60), echoed)
        .await
        .map_err(|_| io::Error::other("echo on idle connections timed out"))?
    {
        let (op, got) = result?;
        if op != OP_BINARY || got != payload {
            return Err(io::Error::other("bad echo on an idle connection"));
        }
    }
    tokio::time::sleep(settle).await;
    used.value = (rss_kb(target.pid)? - base) / conns as f64;
    drop(opened);
    tokio::time::sleep(settle).await;
    Ok(())
}

/// `VmRSS` of a process, in KB.
fn rss_kb(pid: u32) -> io::Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| io::Error::other("no VmRSS in /proc status"))
}

/// Busy time (everything but idle and iowait, so softirq work on loopback
/// counts too) of the server's and the load generator's cores, in USER_HZ
/// ticks from `/proc/stat`; without pinning, the two processes' own ticks.
#[derive(Debug, Clone, Copy)]
struct Cpu {
    server: Option<u64>,
    client: Option<u64>,
}

impl Cpu {
    fn read(target: Target) -> Cpu {
        match target.cores {
            Some((server, client)) => {
                let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
                Cpu { server: core_busy(&stat, server), client: core_busy(&stat, client) }
            }
            None => Cpu {
                server: process_ticks(&format!("/proc/{}/stat", target.pid)),
                client: process_ticks("/proc/self/stat"),
            },
        }
    }

    /// Percent of one core used by (server, client) between two readings.
    fn usage(a: Cpu, b: Cpu, secs: f64) -> (Option<f64>, Option<f64>) {
        // USER_HZ is 100 on every mainstream Linux configuration.
        let pct = |x: Option<u64>, y: Option<u64>| Some((y? - x?) as f64 / 100.0 / secs * 100.0);
        (pct(a.server, b.server), pct(a.client, b.client))
    }
}
