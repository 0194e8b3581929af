//! `ReadHalf` / `WriteHalf` used from separate tasks: replies sent by the
//! reader while the writer idles or is blocked, concurrent floods, closing
//! through the write half, dropping halves, and `reunite`.

mod common;

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use silverback::{CloseCode, CloseFrame, Config, Error, Message, ProtocolError, ReadHalf, ReuniteError, WriteHalf};
use tokio::io::{AsyncWriteExt, DuplexStream};

use common::{
    client_msg, close_payload, expect_eof, op, read_bytes, read_frame, server_and_raw_peer, server_close_bytes,
    server_frame, try_read_frame, within, ws_pair,
};

fn assert_send_static<T: Send + 'static>() {}

#[test]
fn halves_are_send_and_static() {
    assert_send_static::<ReadHalf<DuplexStream>>();
    assert_send_static::<WriteHalf<DuplexStream>>();
    assert_send_static::<ReadHalf<tokio::net::TcpStream>>();
    assert_send_static::<WriteHalf<tokio::net::TcpStream>>();
    assert_send_static::<ReuniteError<tokio::net::TcpStream>>();
}

/// Reads until the end; returns every message.
async fn read_all(mut read: ReadHalf<DuplexStream>) -> Vec<Message> {
    let mut out = Vec::new();
    while let Some(msg) = read.next().await {
        out.push(msg.expect("reader"));
    }
    out
}

#[tokio::test]
async fn reader_task_answers_pings_while_the_writer_half_idles() {
    let (ws, mut peer) = server_and_raw_peer(Config::default(), 4096);
    let (read, write) = ws.split();
    let reader = tokio::spawn(read_all(read));
    for i in 0..50u8 {
        let payload = [i; 3];
        peer.write_all(&client_msg(op::PING, &payload)).await.unwrap();
        assert_eq!(read_bytes(&mut peer, 5).await, server_frame(true, 0, op::PONG, &payload), "pong {i}");
    }
    peer.write_all(&client_msg(op::CLOSE, &close_payload(1000, "bye"))).await.unwrap();
    assert_eq!(read_bytes(&mut peer, 4).await, server_close_bytes(1000));
    expect_eof(&mut peer).await;
    let seen = within("reader", reader).await.unwrap();
    assert_eq!(seen.len(), 51);
    assert!(seen[..50].iter().all(Message::is_ping));
    assert_eq!(seen[50], Message::Close(Some(CloseFrame::new(CloseCode::NORMAL, "bye"))));
    drop(write);
}

/// The reader's pong waits behind a large message the writer task is
/// blocked on; when the peer starts reading, both tasks must be woken
/// (a single transport write waker would wake only one of them).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pong_queued_behind_a_blocked_writer_goes_out_and_both_tasks_wake() {
    let (ws, mut peer) = server_and_raw_peer(Config::default(), 256);
    let (read, mut write) = ws.split();
    let reader = tokio::spawn(read_all(read));
    let big = vec![0xAB; 64 * 1024];
    let writer = tokio::spawn({
        let big = big.clone();
        async move {
            write.send(Message::binary(big)).await.expect("writer send");
            write
        }
    });
    // Let the writer fill the pipe and block, then ping.
    tokio::time::sleep(Duration::from_millis(20)).await;
    peer.write_all(&client_msg(op::PING, b"hb")).await.unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let data = read_frame(&mut peer).await;
    assert_eq!((data.opcode, data.payload.len()), (op::BINARY, big.len()));
    assert!(data.payload == big);
    assert_eq!(read_bytes(&mut peer, 4).await, server_frame(true, 0, op::PONG, b"hb"));
    let mut write = within("writer", writer).await.unwrap();
    write.send(Message::text("after")).await.expect("writer still works");
    assert_eq!(read_bytes(&mut peer, 7).await, server_frame(true, 0, op::TEXT, b"after"));
    peer.write_all(&client_msg(op::CLOSE, b"")).await.unwrap();
    assert_eq!(read_bytes(&mut peer, 2).await, [0x88, 0x00]);
    let seen = within("reader", reader).await.unwrap();
    assert_eq!(seen, vec![Message::ping(&b"hb"[..]), Message::Close(None)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn writer_flood_and_concurrent_reader_see_every_echo_in_order() {
    const N: usize = 5000;
    let (client, server) = ws_pair(Config::default(), 4096);
    let echo = tokio::spawn(async move {
        let mut server = server;
        let mut n = 0usize;
        while let Some(msg) = server.next().await {
            let msg = msg.expect("echo read");
            if msg.is_text() || msg.is_binary() {
                server.send(msg).await.expect("echo send");
                n += 1;
            }
        }
        n
    });
    let (mut read, mut write) = client.split();
    let reader = tokio::spawn(async move {
        for i in 0..N {
            let msg = read.next().await.expect("open").expect("echo");
            let expected = if i % 2 == 0 {
                Message::text(format!("message {i}"))
            } else {
                Message::binary(vec![i as u8; i % 300])
            };
            assert_eq!(msg, expected, "echo {i}");
        }
        let rest: Vec<_> = read.map(|m| m.expect("after echoes")).collect().await;
        rest
    });
    let flood = async {
        for i in 0..N {
            let msg = if i % 2 == 0 {
                Message::text(format!("message {i}"))
            } else {
                Message::binary(vec![i as u8; i % 300])
            };
            write.send(msg).await.expect("writer send");
        }
        write.send_close(None).await.expect("writer close");
    };
    tokio::time::timeout(Duration::from_secs(60), flood).await.expect("writer flood hung");
    let rest = tokio::time::timeout(Duration::from_secs(60), reader).await.expect("reader hung").unwrap();
    assert_eq!(rest, vec![Message::Close(None)]);
    assert_eq!(within("echo", echo).await.unwrap(), N);
    assert!(matches!(write.send(Message::text("late")).await, Err(Error::Closed)));
}

#[tokio::test]
async fn dropping_both_halves_in_either_order_ends_the_transport() {
    for read_first in [true, false] {
        let (ws, mut peer) = server_and_raw_peer(Config::default(), 4096);
        let (read, write) = ws.split();
        if read_first {
            drop(read);
            drop(write);
        } else {
            drop(write);
            drop(read);
        }
        expect_eof(&mut peer).await;
        assert!(peer.write_all(b"x").await.is_err(), "the library end is gone");
    }
}

#[tokio::test]
async fn dropping_halves_while_tasks_use_them_does_not_hang() {
    for read_first in [true, false] {
        let (ws, mut peer) = server_and_raw_peer(Config::default(), 4096);
        let (mut read, mut write) = ws.split();
        let reader = tokio::spawn(async move {
            // Parked in next() until aborted.
            let _ = read.next().await;
        });
        write.send(Message::text("one")).await.unwrap();
        if read_first {
            reader.abort();
            let _ = reader.await;
            drop(write);
        } else {
            drop(write);
            reader.abort();
            let _ = reader.await;
        }
        assert_eq!(read_frame(&mut peer).await.payload, b"one");
        expect_eof(&mut peer).await;
    }
}

#[tokio::test]
async fn reader_keeps_working_after_the_write_half_is_dropped() {
    let (ws, mut peer) = server_and_raw_peer(Config::default(), 4096);
    let (read, write) = ws.split();
    drop(write);
    let reader = tokio::spawn(read_all(read));
    peer.write_all(&client_msg(op::TEXT, b"hi")).await.unwrap();
    peer.write_all(&client_msg(op::PING, b"p")).await.unwrap();
    assert_eq!(read_bytes(&mut peer, 3).await, server_frame(true, 0, op::PONG, b"p"));
    peer.write_all(&client_msg(op::CLOSE, &close_payload(1001, ""))).await.unwrap();
    assert_eq!(read_bytes(&mut peer, 4).await, server_close_bytes(1001));
    expect_eof(&mut peer).await;
    let seen = within("reader", reader).await.unwrap();
    assert_eq!(
        seen,
        vec![
            Message::text("hi"),
            Message::ping(&b"p"[..]),
            Message::Close(Some(CloseFrame::new(CloseCode::GOING_AWAY, "")))
        ]
    );
}

#[tokio::test]
async fn writer_keeps_working_after_the_read_half_is_dropped() {
    let (ws, mut peer) = server_and_raw_peer(Config::default(), 4096);
    let (read, mut write) = ws.split();
    drop(read);
    write.send(Message::text("still here")).await.unwrap();
    assert_eq!(read_frame(&mut peer).await.payload, b"still here");
    write.send_close(Some(CloseFrame::normal())).await.unwrap();
    assert_eq!(read_bytes(&mut peer, 4).await, server_close_bytes(1000));
    assert!(matches!(write.send(Message::text("x")).await, Err(Error::Closed)));
}

#[tokio::test]
async fn reunite_matching_halves_gives_back_a_working_stream() {
    let (client, server) = ws_pair(Config::default(), 4096);
    let (read, write) = client.split();
    assert!(read.is_pair_of(&write));
    let mut client = read.reunite(write).expect("matching halves");
    let mut server = server;
    client.send(Message::text("ping?")).await.unwrap();
    assert_eq!(within("server", server.next()).await.unwrap().unwrap(), Message::text("ping?"));
    server.send(Message::text("pong!")).await.unwrap();
    assert_eq!(within("client", client.next()).await.unwrap().unwrap(), Message::text("pong!"));
    let server_task = tokio::spawn(async move { server.next().await.map(|m| m.unwrap()) });
    within("close", client.close(None)).await.expect("clean close after reunite");
    assert_eq!(within("server", server_task).await.unwrap(), Some(Message::Close(None)));
}

#[tokio::test]
async fn reunite_mismatched_halves_fails_and_returns_both() {
    let (a, _a_peer) = server_and_raw_peer(Config::default(), 4096);
    let (b, mut b_peer) = server_and_raw_peer(Config::default(), 4096);
    let (a_read, a_write) = a.split();
    let (b_read, b_write) = b.split();
    assert!(!a_read.is_pair_of(&b_write));
    let err = a_read.reunite(b_write).expect_err("halves of different connections");
    assert_eq!(err.to_string(), "tried to reunite halves of different connections");
    let ReuniteError(a_read, b_write) = err;
    // The returned halves are intact and pair up with their own partners.
    let _a = a_read.reunite(a_write).expect("a pairs with a");
    let mut b = b_read.reunite(b_write).expect("b pairs with b");
    b.send(Message::text("b")).await.unwrap();
    assert_eq!(read_frame(&mut b_peer).await.payload, b"b");
}

#[tokio::test]
async fn write_half_close_ends_the_reader_task_on_the_peer_reply() {
    let (ws, mut peer) = server_and_raw_peer(Config::default(), 4096);
    let (read, mut write) = ws.split();
    let reader = tokio::spawn(read_all(read));
    write.send(Message::text("last words")).await.unwrap();
    within("close", write.send_close(Some(CloseFrame::new(CloseCode::GOING_AWAY, "bye")))).await.expect("close sent");
    assert_eq!(read_frame(&mut peer).await.payload, b"last words");
    let ours = read_bytes(&mut peer, 7).await;
    assert_eq!(ours, [0x88, 0x05, 0x03, 0xE9, b'b', b'y', b'e']);
    assert!(matches!(write.send(Message::text("x")).await, Err(Error::Closed)));
    // The reader still delivers data sent before the peer's reply.
    peer.write_all(&client_msg(op::TEXT, b"in flight")).await.unwrap();
    peer.write_all(&client_msg(op::CLOSE, &close_payload(1001, ""))).await.unwrap();
    let seen = within("reader", reader).await.unwrap();
    assert_eq!(
        seen,
        vec![Message::text("in flight"), Message::Close(Some(CloseFrame::new(CloseCode::GOING_AWAY, "")))]
    );
    // No echo of the reply: the handshake is done and the write side shut.
    assert!(try_read_frame(&mut peer).await.is_none());
    // A second close resumes nothing and succeeds.
    within("close again", write.send_close(None)).await.expect("idempotent");
}

#[tokio::test]
async fn error_seen_by_the_reader_is_sticky_for_the_writer() {
    let (ws, mut peer) = server_and_raw_peer(Config::default(), 4096);
    let (mut read, mut write) = ws.split();
    peer.write_all(&client_msg(0x3, b"")).await.unwrap();
    let err = within("error", read.next()).await.unwrap().unwrap_err();
    assert!(matches!(err, Error::Protocol(ProtocolError::ReservedOpcode(3))), "{err:?}");
    assert!(read.next().await.is_none());
    let close = read_frame(&mut peer).await;
    assert_eq!(close.close_code(), Some(1002));
    let send = write.send(Message::text("x")).await.unwrap_err();
    assert!(matches!(send, Error::Protocol(ProtocolError::ReservedOpcode(3))), "{send:?}");
    let close = write.send_close(None).await.unwrap_err();
    assert!(matches!(close, Error::Protocol(ProtocolError::ReservedOpcode(3))), "{close:?}");
}

/// Pongs from the reader task slip in between whole data frames from the
/// writer task (small frames copied, large ones queued by reference and
/// written vectored), never inside one, and in ping order.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pongs_interleave_with_a_writer_flood_only_between_frames() {
    const DATA: usize = 1000;
    const PINGS: usize = 300;
    let (ws, peer) = server_and_raw_peer(Config::default().write_buffer_size(16 * 1024), 2048);
    let (read, mut write) = ws.split();
    let reader = tokio::spawn(read_all(read));
    let payload = |i: usize| vec![(i % 251) as u8; if i % 10 == 0 { 5000 + i } else { i % 200 }];
    let writer = tokio::spawn(async move {
        for i in 0..DATA {
            write.send(Message::binary(payload(i))).await.expect("writer send");
        }
        write
    });
    let (mut rd, mut wr) = tokio::io::split(peer);
    let pinger = tokio::spawn(async move {
        for i in 0..PINGS {
            wr.write_all(&client_msg(op::PING, i.to_string().as_bytes())).await.unwrap();
            if i % 16 == 0 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
        wr
    });
    let (mut data, mut last_pong) = (0usize, None::<usize>);
    for _ in 0..DATA + PINGS {
        if data == DATA && last_pong == Some(PINGS - 1) {
            break;
        }
        let frame = read_frame(&mut rd).await;
        assert!(frame.fin && frame.rsv == 0 && !frame.masked, "{frame:?}");
        match frame.opcode {
            op::BINARY => {
                assert!(frame.payload == payload(data), "data frame {data} corrupted");
                data += 1;
            }
            op::PONG => {
                let n: usize = std::str::from_utf8(&frame.payload).unwrap().parse().unwrap();
                assert!(last_pong.is_none_or(|l| n > l), "pong {n} after {last_pong:?}");
                last_pong = Some(n);
            }
            other => panic!("unexpected opcode {other:#x}"),
        }
    }
    assert_eq!((data, last_pong), (DATA, Some(PINGS - 1)));
    let _write = within("writer", writer).await.unwrap();
    let mut wr = within("pinger", pinger).await.unwrap();
    wr.write_all(&client_msg(op::CLOSE, b"")).await.unwrap();
    assert_eq!(read_frame(&mut rd).await.opcode, op::CLOSE);
    assert!(try_read_frame(&mut rd).await.is_none());
    let seen = within("reader", reader).await.unwrap();
    assert_eq!(seen.len(), PINGS + 1);
}

/// `WriteHalf::close` is the deprecated former name of `send_close`.
#[tokio::test]
#[allow(deprecated)]
async fn write_half_close_is_still_send_close() {
    let (ws, mut peer) = server_and_raw_peer(Config::default(), 4096);
    let (read, mut write) = ws.split();
    within("close", write.close(Some(CloseFrame::new(CloseCode::GOING_AWAY, "old name")))).await.expect("sent");
    let frame = read_frame(&mut peer).await;
    assert_eq!((frame.opcode, frame.close_code()), (op::CLOSE, Some(1001)));
    drop(read);
}

/// A `send_close` cancelled while its flush waits on a peer that does not
/// read still gets the close out: the read half writes it, so the closing
/// handshake finishes though nobody flushes the write half again.
#[tokio::test]
async fn a_cancelled_send_close_is_written_by_the_read_half() {
    let (ws, mut peer) = common::server_and_raw_peer(Config::default(), 256);
    let (mut read, mut write) = ws.split();
    write.feed(Message::binary(vec![1u8; 4096])).await.unwrap();
    let cancelled = tokio::time::timeout(Duration::from_millis(50), write.send_close(None)).await;
    assert!(cancelled.is_err(), "the flush should wait: the peer reads nothing yet");
    let reader = tokio::spawn(async move {
        let mut seen = Vec::new();
        while let Some(msg) = read.next().await {
            seen.push(msg.unwrap());
        }
        seen
    });
    assert_eq!(common::read_frame(&mut peer).await.opcode, common::op::BINARY);
    assert_eq!(common::read_frame(&mut peer).await.opcode, common::op::CLOSE);
    peer.write_all(&common::client_msg(common::op::CLOSE, &[])).await.unwrap();
    let seen = within("reader ends", reader).await.unwrap();
    assert_eq!(seen, [Message::Close(None)]);
    drop(write);
}
