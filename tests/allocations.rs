//! Allocations per echoed message in steady state, on the server's thread.
//!
//! The server is `examples/echo_server.rs`'s loop (`split` + `forward`) on a
//! current-thread runtime over a real loopback socket; the client is a
//! blocking socket on another thread, so the counting allocator (per
//! thread) sees only the server's work. Each bound is the count measured
//! when it was written: a change that adds an allocation to the hot path
//! fails here and has to say why.
// The counting allocator needs `unsafe impl GlobalAlloc`; it only forwards to
// `System` and adds bookkeeping.
#![allow(unsafe_code)]

mod common;
#[path = "common/counting_alloc.rs"]
mod counting_alloc;

use std::io::{Read, Write};
use std::net::TcpStream as StdTcpStream;

use common::{client_msg, op, UPGRADE_REQUEST};
use futures_util::{future, StreamExt, TryStreamExt};
use silverback::Upgrader;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

const WARMUP: usize = 200;
const MEASURED: usize = 2000;

/// Echoes `MEASURED` messages of `payload` one at a time (after a warm-up)
/// and answers the server thread's allocations per message; with
/// `pipelined`, the client writes 16 messages before reading their echoes.
fn allocations_per_message(opcode: u8, payload: Vec<u8>, pipelined: usize) -> f64 {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async move {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (start_tx, start_rx) = oneshot::channel::<()>();
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let client = std::thread::spawn(move || {
            let mut tcp = StdTcpStream::connect(addr).unwrap();
            tcp.set_read_timeout(Some(common::STEP)).unwrap();
            tcp.set_nodelay(true).unwrap();
            tcp.write_all(UPGRADE_REQUEST.as_bytes()).unwrap();
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") {
                tcp.read_exact(&mut byte).unwrap();
                head.push(byte[0]);
            }
            assert!(head.starts_with(b"HTTP/1.1 101"), "{}", String::from_utf8_lossy(&head));
            let frame = client_msg(opcode, &payload);
            let batch: Vec<u8> = frame.iter().copied().cycle().take(frame.len() * pipelined).collect();
            let echo_len = frame.len() - 4; // the same frame, unmasked
            let mut echo = vec![0u8; echo_len * pipelined];
            let mut round = |tcp: &mut StdTcpStream| {
                tcp.write_all(&batch).unwrap();
                tcp.read_exact(&mut echo).unwrap();
                assert_eq!(&echo[echo_len - payload.len()..echo_len], &payload[..]);
            };
            for _ in 0..WARMUP / pipelined {
                round(&mut tcp);
            }
            start_tx.send(()).unwrap();
            for _ in 0..MEASURED / pipelined {
                round(&mut tcp);
            }
            stop_tx.send(()).unwrap();
        });
        let server = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            tcp.set_nodelay(true).unwrap();
            let (read, write) = Upgrader::new().accept(tcp).await.unwrap().split();
            let _ = read.try_filter(|msg| future::ready(msg.is_text() || msg.is_binary())).forward(write).await;
        });
        start_rx.await.unwrap();
        let before = counting_alloc::calls();
        stop_rx.await.unwrap();
        let after = counting_alloc::calls();
        client.join().unwrap();
        server.abort();
        (after - before) as f64 / MEASURED as f64
    })
}

/// Fails when `measured` allocations exceed `bound`.
fn check(what: &str, measured: f64, bound: f64) {
    eprintln!("{what}: {measured:.2} allocations (bound {bound})");
    assert!(measured <= bound, "{what}: {measured:.2} allocations, bound {bound}");
}

/// None: the read buffer and the write staging buffer a connection lets go
/// between messages come back from this thread's spares.
#[test]
fn a_small_binary_echo_allocates_nothing() {
    check("20 B binary, one in flight, per message", allocations_per_message(op::BINARY, vec![0x5a; 20], 1), 0.01);
}

#[test]
fn pipelined_small_echoes_allocate_nothing() {
    check("20 B binary, 16 in flight, per message", allocations_per_message(op::BINARY, vec![0x5a; 20], 16), 0.01);
}

#[test]
fn a_16_kib_text_echo_allocates_little() {
    let text = "aé€😀".repeat(16 * 1024 / 10).into_bytes();
    check("16 KiB text, one in flight, per message", allocations_per_message(op::TEXT, text, 1), 2.5);
}

/// Accepts `count` connections one after another, each doing the upgrade,
/// one close exchange and the teardown, as `examples/echo_server.rs` serves
/// them; answers the server thread's allocations per connection.
fn allocations_per_connection(count: usize) -> f64 {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async move {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let client = std::thread::spawn(move || {
            for _ in 0..count {
                let mut tcp = StdTcpStream::connect(addr).unwrap();
                tcp.set_read_timeout(Some(common::STEP)).unwrap();
                let mut wire = UPGRADE_REQUEST.as_bytes().to_vec();
                wire.extend_from_slice(&client_msg(op::CLOSE, &1000u16.to_be_bytes()));
                tcp.write_all(&wire).unwrap();
                let mut answer = Vec::new();
                tcp.read_to_end(&mut answer).unwrap();
                assert!(answer.starts_with(b"HTTP/1.1 101"));
                assert!(answer.ends_with(&[0x88, 0x02, 0x03, 0xe8]), "{answer:?}");
            }
        });
        let upgrader = std::sync::Arc::new(Upgrader::new());
        let mut calls = Vec::new();
        for _ in 0..count {
            let (tcp, _) = listener.accept().await.unwrap();
            let before = counting_alloc::calls();
            let upgrader = upgrader.clone();
            tokio::spawn(async move {
                tcp.set_nodelay(true).unwrap();
                let (read, write) = upgrader.accept(tcp).await.unwrap().split();
                read.try_filter(|msg| future::ready(msg.is_text() || msg.is_binary())).forward(write).await.unwrap();
            })
            .await
            .unwrap();
            calls.push(counting_alloc::calls() - before);
        }
        client.join().unwrap();
        // The first connection warms up the runtime's and the allocator's
        // paths; the rest are the steady state.
        calls[1..].iter().sum::<u64>() as f64 / (count - 1) as f64
    })
}

#[test]
fn a_handshake_allocates_little() {
    check("upgrade + close, per connection", allocations_per_connection(20), 20.0);
}

/// Publishing to a topic with 10 000 subscribers, each waiting for the next
/// message (so each publish wakes all of them), allocates nothing per
/// subscriber: the message is queued once, the wakers are moved through a
/// vector the topic keeps. Bound: no allocation per message after the
/// first (which sizes that vector).
#[test]
fn publishing_to_ten_thousand_waiting_subscribers_allocates_nothing_per_subscriber() {
    use std::future::Future;
    use std::pin::pin;
    use std::task::{Context, Poll, Waker};

    use silverback::broadcast::{Topic, TopicConfig};
    use silverback::{Message, PreparedMessage};

    const SUBSCRIBERS: usize = 10_000;
    const ROUNDS: u64 = 20;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let topic = Topic::with_config(TopicConfig::default().capacity(64));
        let mut subs: Vec<_> = (0..SUBSCRIBERS).map(|_| topic.subscribe()).collect();
        let msg = PreparedMessage::new(&Message::text("x".repeat(64))).unwrap();
        let mut cx = Context::from_waker(Waker::noop());
        let mut calls = Vec::new();
        for _ in 0..ROUNDS {
            // Each subscriber takes what there is, then waits.
            for sub in &mut subs {
                while let Poll::Ready(got) = pin!(sub.recv()).poll(&mut cx) {
                    assert_eq!(got.as_ref(), Ok(&msg));
                }
            }
            let before = counting_alloc::calls();
            assert_eq!(topic.publish(&msg).await, SUBSCRIBERS);
            calls.push(counting_alloc::calls() - before);
        }
        let steady: u64 = calls[1..].iter().sum();
        eprintln!("allocations per publish to {SUBSCRIBERS} waiting subscribers: {calls:?}");
        assert_eq!(steady, 0, "publishing allocated: {calls:?}");
    });
}
