//! Soak: 2 000 concurrent loopback connections with mixed traffic for a
//! bounded time, then two checks: no protocol error anywhere, and no growth
//! in live heap memory between the end of the warm-up round and the end.
//!
//! Traffic, in rounds: library clients send text (multi-byte UTF-8), binary
//! and pings and check every echo; one in ten negotiates permessage-deflate
//! (without context takeover, so each message's state is released); raw
//! clients send fragmented messages and pings as exact frames; in every
//! round some clients close and reconnect. Between rounds every connection
//! is idle (a barrier), which is when the heap is sampled.
// The counting allocator needs `unsafe impl GlobalAlloc`, and raising the
// open-files limit needs `setrlimit`.
#![allow(unsafe_code)]
#![cfg(all(unix, feature = "deflate"))]

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicIsize, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{client_frame, op, read_frame, UPGRADE_REQUEST};
use futures_util::{SinkExt, StreamExt, TryStreamExt};
use silverback::{Connector, DeflateConfig, Error, Message, Upgrader};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Barrier;

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every method forwards to `System` with the caller's arguments
// unchanged; the bookkeeping is one atomic add.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        System.alloc(layout)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        System.dealloc(ptr, layout);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size as isize - layout.size() as isize, Ordering::Relaxed);
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const CONNS: usize = 2000;
/// One client in this many is a raw client sending exact frames.
const RAW_EVERY: usize = 5;
/// One library client in this many negotiates permessage-deflate.
const DEFLATE_EVERY: usize = 10;
const ROUNDS: usize = 6;

/// A small deterministic generator, one per client.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> usize {
        (self.next() % n) as usize
    }
}

/// The echo server: data messages back, everything else handled by the
/// library. Counts connections that ended in an error other than the
/// peer's going away.
async fn serve(listener: TcpListener, errors: Arc<AtomicUsize>) {
    let upgrader = Arc::new(
        Upgrader::new()
            .allow_any_origin()
            .deflate(DeflateConfig::default().server_no_context_takeover(true).client_no_context_takeover(true)),
    );
    loop {
        let Ok((tcp, _)) = listener.accept().await else { return };
        let (upgrader, errors) = (upgrader.clone(), errors.clone());
        tokio::spawn(async move {
            let result = async {
                let (read, write) = upgrader.accept(tcp).await?.split();
                read.try_filter(|m| std::future::ready(m.is_text() || m.is_binary())).forward(write).await
            }
            .await;
            if let Err(e) = result {
                if !matches!(e, Error::Closed | Error::Io(_)) {
                    eprintln!("server: {e}");
                    errors.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
    }
}

fn message(rng: &mut Rng) -> Message {
    match rng.below(3) {
        0 => Message::text("κόσμε 🦍 ".repeat(1 + rng.below(200))),
        1 => Message::binary((0..rng.below(20_000)).map(|i| (i % 251) as u8).collect::<Vec<_>>()),
        _ => Message::Ping(bytes::Bytes::from(vec![7u8; rng.below(125)])),
    }
}

/// A library client: a few messages per round, each echo (or pong) checked;
/// sometimes closes and reconnects.
async fn library_client(id: usize, addr: SocketAddr, barrier: Arc<Barrier>) -> Result<(), String> {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (id as u64 + 1));
    let connector = if id % DEFLATE_EVERY == 0 {
        Connector::new().deflate(DeflateConfig::default().client_no_context_takeover(true))
    } else {
        Connector::new()
    };
    let url = format!("ws://{addr}/");
    let mut ws = connector.connect(&url).await.map_err(|e| format!("connect: {e}"))?.0;
    for round in 0..ROUNDS {
        for _ in 0..1 + rng.below(4) {
            let msg = message(&mut rng);
            ws.send(msg.clone()).await.map_err(|e| format!("send: {e}"))?;
            let echo = ws.next().await.ok_or("ended")?.map_err(|e| format!("receive: {e}"))?;
            let expected = match msg {
                Message::Ping(payload) => Message::Pong(payload),
                other => other,
            };
            if echo != expected {
                return Err(format!("round {round}: wrong echo"));
            }
        }
        if rng.below(10) == 0 {
            ws.close(None).await.map_err(|e| format!("close: {e}"))?;
            ws = connector.connect(&url).await.map_err(|e| format!("reconnect: {e}"))?.0;
        }
        barrier.wait().await;
    }
    ws.close(None).await.map_err(|e| format!("final close: {e}"))?;
    barrier.wait().await;
    Ok(())
}

/// A raw client: a fragmented text message in three frames with a ping in
/// the middle, per round; checks the pong and the reassembled echo.
async fn raw_client(id: usize, addr: SocketAddr, barrier: Arc<Barrier>) -> Result<(), String> {
    let mut tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    tcp.write_all(UPGRADE_REQUEST.as_bytes()).await.map_err(|e| e.to_string())?;
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        head.push(tcp.read_u8().await.map_err(|e| e.to_string())?);
    }
    if !head.starts_with(b"HTTP/1.1 101") {
        return Err("upgrade refused".into());
    }
    for round in 0..ROUNDS {
        let text = format!("client {id} round {round}: ünïcödé ").repeat(1 + id % 50);
        let bytes = text.as_bytes();
        let (a, rest) = bytes.split_at(bytes.len() / 3);
        let (b, c) = rest.split_at(rest.len() / 2);
        let mut wire = client_frame(false, 0, op::TEXT, a);
        wire.extend(client_frame(false, 0, op::CONT, b));
        wire.extend(client_frame(true, 0, op::PING, b"mid"));
        wire.extend(client_frame(true, 0, op::CONT, c));
        tcp.write_all(&wire).await.map_err(|e| e.to_string())?;
        let pong = read_frame(&mut tcp).await;
        let echo = read_frame(&mut tcp).await;
        if (pong.opcode, &pong.payload[..]) != (op::PONG, &b"mid"[..]) {
            return Err(format!("round {round}: expected the pong first, got {pong:?}"));
        }
        if (echo.fin, echo.opcode, &echo.payload[..]) != (true, op::TEXT, bytes) {
            return Err(format!("round {round}: wrong echo"));
        }
        barrier.wait().await;
    }
    tcp.write_all(&client_frame(true, 0, op::CLOSE, &1000u16.to_be_bytes())).await.map_err(|e| e.to_string())?;
    let close = read_frame(&mut tcp).await;
    if close.opcode != op::CLOSE {
        return Err("no close echo".into());
    }
    barrier.wait().await;
    Ok(())
}

#[test]
fn two_thousand_connections_mixed_traffic_no_errors_no_growth() {
    common::rlimit::raise_open_files_limit(2 * CONNS as u64 + 256);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let started = Instant::now();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server_errors = Arc::new(AtomicUsize::new(0));
        let server = tokio::spawn(serve(listener, server_errors.clone()));

        // One extra party: this task, which samples the heap between rounds.
        let barrier = Arc::new(Barrier::new(CONNS + 1));
        let clients: Vec<_> = (0..CONNS)
            .map(|id| {
                let barrier = barrier.clone();
                tokio::spawn(async move {
                    let run = if id % RAW_EVERY == 0 {
                        tokio::spawn(raw_client(id, addr, barrier.clone()))
                    } else {
                        tokio::spawn(library_client(id, addr, barrier.clone()))
                    };
                    run.await.unwrap_or_else(|e| Err(format!("panicked: {e}")))
                })
            })
            .collect();

        let mut samples = Vec::new();
        for _ in 0..=ROUNDS {
            let waited = tokio::time::timeout(Duration::from_secs(300), barrier.wait()).await;
            assert!(waited.is_ok(), "a round did not finish within 300 s");
            // Let the server tasks finish what the round left (close echoes).
            tokio::time::sleep(Duration::from_millis(100)).await;
            samples.push(LIVE.load(Ordering::Relaxed));
        }
        let mut failures = Vec::new();
        for (id, client) in clients.into_iter().enumerate() {
            if let Err(e) = client.await.unwrap() {
                failures.push(format!("client {id}: {e}"));
            }
        }
        server.abort();
        assert!(
            failures.is_empty(),
            "{} clients failed, first: {:?}",
            failures.len(),
            &failures[..failures.len().min(5)]
        );
        assert_eq!(server_errors.load(Ordering::Relaxed), 0, "server-side protocol errors");

        // samples[0]: after the warm-up round; samples[ROUNDS - 1]: after
        // the last traffic round, same connections open and idle.
        let (warm, end) = (samples[0], samples[ROUNDS - 1]);
        eprintln!(
            "soak: {CONNS} connections, {ROUNDS} rounds in {:?}; live heap after warm-up {} KiB, at the end {} KiB",
            started.elapsed(),
            warm / 1024,
            end / 1024
        );
        assert!(end <= warm + warm / 10 + (1 << 20), "heap grew from {warm} to {end} bytes");
    });
}
