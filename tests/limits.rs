//! Limits under attack: what a hostile peer can make a connection allocate.
//!
//! A counting global allocator tracks, per thread, the bytes currently
//! allocated and their peak. Each scenario runs on a current-thread runtime
//! on its own test thread (the library, the in-memory pipe and the hostile
//! peer all allocate there), so the peak during the attack, minus the bytes
//! live before it, is what the attack cost. Every bound below is a small
//! multiple of a configured limit, far below what the attack asks for.
// The counting allocator needs `unsafe impl GlobalAlloc`; it only forwards to
// `System` and adds bookkeeping.
#![allow(unsafe_code)]

mod common;
#[path = "common/counting_alloc.rs"]
mod counting_alloc;

use std::time::Duration;

use bytes::BytesMut;
use common::{client_frame, op, read_frame};
use counting_alloc::peak_during;
use futures_util::{SinkExt, StreamExt};
use silverback::{CapacityError, Config, Error, Limits, Message, Role, Upgrader, WebSocketStream};
use tokio::io::{duplex, AsyncWriteExt};

const KIB: usize = 1024;
const MIB: usize = 1024 * KIB;

/// A masked header announcing `len` payload bytes, nothing behind it.
fn header_only(opcode: u8, len: u64) -> Vec<u8> {
    let mut out = vec![0x80 | opcode, 0x80 | 127];
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&common::KEY);
    out
}

#[test]
fn a_2_pow_62_announcement_fails_at_once_and_allocates_nothing_like_it() {
    let (err, peak) = peak_during(|| async {
        let (a, mut peer) = duplex(64 * KIB);
        let mut ws = WebSocketStream::from_raw_parts(a, Role::Server, Config::default(), BytesMut::new());
        peer.write_all(&header_only(op::BINARY, 1 << 62)).await.unwrap();
        let err = ws.next().await.unwrap().unwrap_err();
        assert_eq!(read_frame(&mut peer).await.close_code(), Some(1009));
        err
    });
    assert!(matches!(err, Error::Capacity(CapacityError::FrameTooLarge { len, .. }) if len == 1 << 62), "{err:?}");
    assert!(peak < 256 * KIB, "peak {peak}");
}

/// Even with every limit removed, an announcement costs what the peer
/// actually sends (here 1 MiB of a claimed 2^62), not what it claims.
#[test]
fn without_limits_memory_follows_the_bytes_sent_not_the_bytes_announced() {
    let ((), peak) = peak_during(|| async {
        let (a, mut peer) = duplex(64 * KIB);
        let config = Config::default().limits(Limits::unlimited());
        let mut ws = WebSocketStream::from_raw_parts(a, Role::Server, config, BytesMut::new());
        let sender = tokio::spawn(async move {
            peer.write_all(&header_only(op::BINARY, 1 << 62)).await.unwrap();
            for _ in 0..16 {
                peer.write_all(&[0u8; 64 * KIB]).await.unwrap();
            }
            peer
        });
        let next = tokio::time::timeout(Duration::from_millis(300), ws.next()).await;
        assert!(next.is_err(), "no message can be complete");
        drop(sender.await.unwrap());
    });
    assert!(peak < 4 * MIB, "peak {peak} for 1 MiB sent");
}

/// Many connections each announcing a frame just under the limit and then
/// going quiet hold a little each, not the announced size.
#[test]
fn many_connections_announcing_big_frames_stay_cheap() {
    const CONNS: usize = 200;
    let ((), peak) = peak_during(|| async {
        let mut held = Vec::new();
        for _ in 0..CONNS {
            let (a, mut peer) = duplex(4 * KIB);
            let mut ws = WebSocketStream::from_raw_parts(a, Role::Server, Config::default(), BytesMut::new());
            peer.write_all(&header_only(op::BINARY, 15 << 20)).await.unwrap();
            assert!(tokio::time::timeout(Duration::from_millis(1), ws.next()).await.is_err());
            held.push((ws, peer));
        }
    });
    // 200 × 15 MiB would be 3 GiB.
    assert!(peak < CONNS * 160 * KIB, "peak {peak} for {CONNS} connections");
}

/// Endless 1-byte continuation frames: the message grows one byte per
/// frame until it reaches the message limit, then the connection fails
/// with 1009; memory stays near the limit.
#[test]
fn endless_one_byte_continuations_stop_at_the_message_limit() {
    let ((err, frames_sent), peak) = peak_during(|| async {
        let (a, mut peer) = duplex(64 * KIB);
        let config = Config::default().limits(Limits::default().max_message_size(256 * KIB));
        let mut ws = WebSocketStream::from_raw_parts(a, Role::Server, config, BytesMut::new());
        let attacker = tokio::spawn(async move {
            let start = client_frame(false, 0, op::TEXT, b"a");
            let more = client_frame(false, 0, op::CONT, b"a");
            let mut sent = 1;
            peer.write_all(&start).await.unwrap();
            let batch: Vec<u8> = more.iter().copied().cycle().take(more.len() * 1024).collect();
            // Stops when the server closes the pipe; bounded anyway.
            while sent < 4 * 1024 * 1024 && peer.write_all(&batch).await.is_ok() {
                sent += 1024;
            }
            sent
        });
        let err = ws.next().await.unwrap().unwrap_err();
        drop(ws);
        (err, attacker.await.unwrap())
    });
    assert!(matches!(err, Error::Capacity(CapacityError::MessageTooLarge { .. })), "{err:?}");
    assert!(frames_sent < 4 * 1024 * 1024, "the attacker was cut off");
    assert!(peak < 2 * MIB, "peak {peak} with a 256 KiB message limit");
}

/// A peer that never reads: sends wait once a batch is queued and the
/// transport is full (backpressure); the queue never holds more than about
/// `write_buffer_size` plus one message.
#[test]
fn a_peer_that_never_reads_gets_backpressure_not_unbounded_buffering() {
    let ((accepted, err), peak) = peak_during(|| async {
        let (a, _peer_never_reads) = duplex(64 * KIB);
        let config = Config::default().write_buffer_size(128 * KIB);
        let mut ws = WebSocketStream::from_raw_parts(a, Role::Server, config, BytesMut::new());
        let mut accepted = 0usize;
        let result = tokio::time::timeout(Duration::from_millis(300), async {
            loop {
                ws.feed(Message::binary(vec![7u8; 16 * KIB])).await?;
                accepted += 1;
                if accepted == 10_000 {
                    return Ok::<(), Error>(());
                }
            }
        })
        .await;
        (accepted, result.err())
    });
    assert!(err.is_some(), "sending must block, not buffer 160 MiB");
    assert!(accepted < 20, "{accepted} messages of 16 KiB queued");
    assert!(peak < MIB, "peak {peak}");
}

/// Connections that open and never finish the handshake are dropped at the
/// handshake timeout; the server keeps nothing of them afterwards.
#[test]
fn half_open_connections_time_out_and_leave_nothing_behind() {
    const CONNS: usize = 300;
    let ((live_before, live_after), _) = peak_during(|| async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let upgrader = std::sync::Arc::new(Upgrader::new().handshake_timeout(Duration::from_millis(200)));
        let done = std::sync::Arc::new(tokio::sync::Semaphore::new(0));
        let server = {
            let done = done.clone();
            tokio::spawn(async move {
                for _ in 0..CONNS {
                    let (tcp, _) = listener.accept().await.unwrap();
                    let (upgrader, done) = (upgrader.clone(), done.clone());
                    tokio::spawn(async move {
                        let result = upgrader.accept(tcp).await;
                        assert!(matches!(result, Err(Error::Handshake(silverback::HandshakeError::Timeout))));
                        done.add_permits(1);
                    });
                }
            })
        };
        let live_before = counting_alloc::live();
        let mut clients = Vec::new();
        for _ in 0..CONNS {
            let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
            tcp.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").await.unwrap();
            clients.push(tcp);
        }
        server.await.unwrap();
        let all = tokio::time::timeout(Duration::from_secs(5), done.acquire_many(CONNS as u32)).await;
        assert!(all.is_ok(), "every half-open handshake timed out");
        drop(clients);
        tokio::task::yield_now().await;
        (live_before, counting_alloc::live())
    });
    // The clients' sockets and the server's are gone; what is left is the
    // runtime's own bookkeeping (slab pages, timer wheel), not per connection.
    let grew = live_after - live_before;
    assert!(grew < (CONNS * 512) as isize, "{grew} bytes still live after {CONNS} half-open connections");
}
