//! Keepalive pings, the read and write deadlines, and the cloneable
//! control handle, over in-memory pipes with tokio's paused clock (so the
//! minutes these features count take no time), against a raw peer.

mod common;

use std::time::Duration;

use common::{client_frame, op, server_and_raw_peer, try_read_frame_within, RawFrame};
use futures_util::{SinkExt, StreamExt};
use silverback::{CloseCode, CloseFrame, Config, Error, Message};
use tokio::io::AsyncWriteExt;

const SECOND: Duration = Duration::from_secs(1);

/// Reads the library's next frame, waiting up to a (paused-clock) minute:
/// longer than every interval these tests configure.
async fn read_frame<R: tokio::io::AsyncRead + Unpin>(peer: &mut R) -> RawFrame {
    try_read_frame_within(peer, 60 * SECOND).await.expect("unexpected EOF")
}

fn keepalive_config() -> Config {
    Config::default().ping_interval(10 * SECOND).read_timeout(15 * SECOND)
}

/// A silent peer gets a ping after the interval; answering it keeps the
/// connection open past the deadline; going silent after that fails the
/// connection with `Timeout` and close 1001.
#[tokio::test(start_paused = true)]
async fn pings_on_silence_and_fails_a_peer_that_stays_silent() {
    let (mut ws, mut peer) = server_and_raw_peer(keepalive_config(), 1 << 16);
    let reader = tokio::spawn(async move {
        let mut got = Vec::new();
        while let Some(item) = ws.next().await {
            let failed = item.is_err();
            got.push(item);
            if failed {
                break;
            }
        }
        got
    });
    let start = tokio::time::Instant::now();
    let ping = read_frame(&mut peer).await;
    assert_eq!((ping.opcode, ping.masked), (op::PING, false));
    assert_eq!(start.elapsed().as_secs(), 10, "first ping after the interval");

    // The pong resets both clocks: the next ping comes 10 s after it.
    tokio::time::sleep(3 * SECOND).await;
    peer.write_all(&client_frame(true, 0, op::PONG, &ping.payload)).await.unwrap();
    let second = read_frame(&mut peer).await;
    assert_eq!(second.opcode, op::PING);
    assert_eq!(start.elapsed().as_secs(), 23);

    // No answer: at 15 s after the pong the connection fails with 1001.
    let close = read_frame(&mut peer).await;
    assert_eq!(close.close_code(), Some(1001));
    assert_eq!(start.elapsed().as_secs(), 28);
    let got = reader.await.unwrap();
    assert!(matches!(got.first(), Some(Ok(Message::Pong(_)))), "{got:?}");
    assert!(matches!(got.last(), Some(Err(Error::Timeout))), "{got:?}");
}

/// Data keeps a connection alive as well as pongs do: no ping is sent
/// while messages keep arriving.
#[tokio::test(start_paused = true)]
async fn traffic_postpones_the_ping() {
    let (mut ws, mut peer) = server_and_raw_peer(keepalive_config(), 1 << 16);
    let reader = tokio::spawn(async move {
        let mut count = 0;
        while let Some(Ok(msg)) = ws.next().await {
            if msg.is_text() {
                count += 1;
            }
            if count == 5 {
                break;
            }
        }
        (ws, count)
    });
    for _ in 0..5 {
        tokio::time::sleep(8 * SECOND).await;
        peer.write_all(&client_frame(true, 0, op::TEXT, b"still here")).await.unwrap();
    }
    let (_ws, count) = reader.await.unwrap();
    assert_eq!(count, 5);
    // 40 s passed, and nothing was sent to the peer.
    let nothing = tokio::time::timeout(Duration::from_millis(1), try_read_frame_within(&mut peer, SECOND)).await;
    assert!(nothing.is_err(), "no ping while traffic flows");
}

/// A read deadline alone (no pings) fails an idle connection.
#[tokio::test(start_paused = true)]
async fn read_timeout_alone_is_an_idle_timeout() {
    let (mut ws, mut peer) = server_and_raw_peer(Config::default().read_timeout(30 * SECOND), 1 << 16);
    let start = tokio::time::Instant::now();
    let err = ws.next().await.unwrap().unwrap_err();
    assert!(matches!(err, Error::Timeout), "{err:?}");
    assert_eq!(start.elapsed().as_secs(), 30);
    assert_eq!(read_frame(&mut peer).await.close_code(), Some(1001));
    assert!(ws.next().await.is_none());
    assert!(matches!(ws.send(Message::text("late")).await, Err(Error::Timeout)));
}

/// Cancelling `next()` when an application-level timeout fires (here every
/// second) neither loses bytes nor disturbs the keepalive clock.
#[tokio::test(start_paused = true)]
async fn cancelled_reads_keep_the_stream_and_the_clock_intact() {
    let (mut ws, mut peer) = server_and_raw_peer(keepalive_config(), 1 << 16);
    let frame = client_frame(true, 0, op::TEXT, "κόσμε across cancelled reads".as_bytes());
    let writer = tokio::spawn(async move {
        for chunk in frame.chunks(3) {
            tokio::time::sleep(Duration::from_millis(700)).await;
            peer.write_all(chunk).await.unwrap();
        }
        peer
    });
    let mut timeouts = 0;
    let msg = loop {
        match tokio::time::timeout(SECOND, ws.next()).await {
            Ok(item) => break item.unwrap().unwrap(),
            Err(_) => timeouts += 1,
        }
    };
    assert!(timeouts > 3, "the read was cancelled {timeouts} times");
    assert_eq!(msg, Message::text("κόσμε across cancelled reads"));
    let mut peer = writer.await.unwrap();
    // Silence now: the ping comes 10 s after the last byte arrived.
    let last_byte = tokio::time::Instant::now();
    let reader = tokio::spawn(async move { ws.next().await.map(|r| r.map(drop)) });
    assert_eq!(read_frame(&mut peer).await.opcode, op::PING);
    assert_eq!(last_byte.elapsed().as_secs(), 10);
    reader.abort();
}

/// A peer that never reads: with a write deadline, the blocked flush fails
/// with `Timeout`, and so does every later send.
#[tokio::test(start_paused = true)]
async fn write_timeout_fails_a_flush_the_peer_never_drains() {
    let config = Config::default().write_timeout(5 * SECOND);
    let (mut ws, _peer_never_reads) = server_and_raw_peer(config, 1024);
    let start = tokio::time::Instant::now();
    let err = ws.send(Message::binary(vec![0u8; 64 * 1024])).await.unwrap_err();
    assert!(matches!(err, Error::Timeout), "{err:?}");
    assert_eq!(start.elapsed().as_secs(), 5);
    assert!(matches!(ws.send(Message::text("again")).await, Err(Error::Timeout)));
}

/// A control handle pings and closes from another task while the
/// connection's own task only reads.
#[tokio::test]
async fn control_handle_pings_and_closes_from_another_task() {
    let (ws, mut peer) = server_and_raw_peer(Config::default(), 1 << 16);
    let control = ws.control();
    let (read, _write) = ws.split();
    let reader = tokio::spawn(async move { read.collect::<Vec<_>>().await });

    let other = control.clone();
    tokio::spawn(async move { other.ping("are you there?").unwrap() }).await.unwrap();
    let ping = read_frame(&mut peer).await;
    assert_eq!((ping.opcode, &ping.payload[..]), (op::PING, &b"are you there?"[..]));
    assert!(matches!(control.ping(vec![0u8; 126]), Err(Error::Capacity(_))), "control payloads are bounded");

    control.close(Some(CloseFrame::new(CloseCode::GOING_AWAY, "shutting down"))).unwrap();
    let close = read_frame(&mut peer).await;
    assert_eq!(close.close_code(), Some(1001));
    assert_eq!(&close.payload[2..], b"shutting down");
    assert!(matches!(control.ping("late"), Err(Error::Closed)));

    // The peer answers; the reader sees the close and ends.
    peer.write_all(&client_frame(true, 0, op::CLOSE, &1001u16.to_be_bytes())).await.unwrap();
    let got = common::within("reader end", reader).await.unwrap();
    assert!(matches!(got.last(), Some(Ok(Message::Close(Some(f)))) if f.code == CloseCode::GOING_AWAY), "{got:?}");
}
