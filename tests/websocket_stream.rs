//! `WebSocketStream` end to end over in-memory pipes: library-to-library echo
//! round trips, and a scripted raw-byte peer that writes exact frames and
//! checks the exact bytes the library answers with (pongs, close echoes, the
//! close code of every protocol error), plus write batching, a ping flood
//! against a peer that does not read, and cancel safety of `next()`.

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use futures_util::{stream, FutureExt, SinkExt, StreamExt};
use silverback::{CapacityError, CloseCode, CloseFrame, Config, Error, Limits, Message, ProtocolError, Role};
use tokio::io::{AsyncWriteExt, DuplexStream};

use common::{
    client_and_raw_peer, client_frame, client_header_len, client_msg, close_payload, expect_eof, op, read_bytes,
    read_frame, server_and_raw_peer, server_close_bytes, server_frame, try_read_frame, within, ws_pair, CountingIo,
};

type Ws = silverback::WebSocketStream<DuplexStream>;

/// Echoes data messages until the stream ends; returns every control message
/// it saw.
async fn echo(mut ws: Ws) -> Vec<Message> {
    let mut control = Vec::new();
    while let Some(msg) = ws.next().await {
        let msg = msg.expect("echo side read");
        if msg.is_text() || msg.is_binary() {
            ws.send(msg).await.expect("echo side send");
        } else {
            control.push(msg);
        }
    }
    control
}

fn round_trip_messages() -> Vec<Message> {
    let big_binary: Vec<u8> = (0..1 << 20).map(|i: u32| (i * 31 + 7) as u8).collect();
    let big_text: String = (0..1 << 20).map(|i: u32| char::from(b'a' + (i % 26) as u8)).collect();
    vec![
        Message::text("hello"),
        Message::text(""),
        Message::text("κόσμε 𝄞 \u{10FFFF}"),
        Message::binary(vec![0u8, 1, 2, 0xFF]),
        Message::binary(Vec::new()),
        Message::binary(vec![7u8; 125]),
        Message::binary(vec![8u8; 126]),
        Message::binary(vec![9u8; 65_535]),
        Message::binary(vec![10u8; 65_536]),
        Message::binary(big_binary),
        Message::text(big_text),
    ]
}

/// `sender` sends every message and expects each echoed back intact, then
/// closes; the other side echoes from its own task.
async fn round_trip(mut sender: Ws, echoer: Ws) {
    let echo_task = tokio::spawn(echo(echoer));
    for msg in round_trip_messages() {
        within("send", sender.send(msg.clone())).await.expect("send");
        let back = within("echo", sender.next()).await.expect("stream open").expect("echo");
        assert_eq!(back.len(), msg.len());
        assert!(back == msg, "echo differs for a message of {} bytes", msg.len());
    }
    within("close", sender.close(Some(CloseFrame::new(CloseCode::NORMAL, "done")))).await.expect("clean close");
    assert!(sender.next().await.is_none());
    let control = within("echo task", echo_task).await.expect("echo task");
    assert_eq!(control, vec![Message::Close(Some(CloseFrame::new(CloseCode::NORMAL, "done")))]);
}

#[tokio::test]
async fn echo_round_trips_client_to_server() {
    let (client, server) = ws_pair(Config::default(), 64 * 1024);
    round_trip(client, server).await;
}

#[tokio::test]
async fn echo_round_trips_server_to_client() {
    let (client, server) = ws_pair(Config::default(), 64 * 1024);
    round_trip(server, client).await;
}

#[tokio::test]
async fn fragmented_messages_from_a_raw_peer_are_assembled() {
    let (mut ws, mut peer) = server_and_raw_peer(Config::default(), 4096);
    let mut wire = Vec::new();
    wire.extend(client_frame(false, 0, op::TEXT, b"Hel"));
    wire.extend(client_frame(false, 0, op::CONT, b"lo "));
    wire.extend(client_frame(false, 0, op::CONT, b""));
    wire.extend(client_frame(true, 0, op::CONT, b"world"));
    // A multi-byte character split across fragments.
    let snow = "☃".as_bytes();
    wire.extend(client_frame(false, 0, op::TEXT, &snow[..1]));
    wire.extend(client_frame(true, 0, op::CONT, &snow[1..]));
    wire.extend(client_frame(false, 0, op::BINARY, &[1, 2]));
    wire.extend(client_frame(true, 0, op::CONT, &[3]));
    peer.write_all(&wire).await.unwrap();
    for expected in [Message::text("Hello world"), Message::text("☃"), Message::binary(vec![1u8, 2, 3])] {
        let got = within("next", ws.next()).await.expect("open").expect("message");
        assert_eq!(got, expected);
    }
}

#[tokio::test]
async fn bytes_read_past_the_handshake_are_decoded_first() {
    let (a, mut peer) = tokio::io::duplex(4096);
    let mut leftover = bytes::BytesMut::new();
    leftover.extend_from_slice(&client_msg(op::TEXT, b"early"));
    let second = client_msg(op::BINARY, b"split across");
    leftover.extend_from_slice(&second[..5]);
    let mut ws = silverback::WebSocketStream::from_raw_parts(a, Role::Server, Config::default(), leftover);
    assert_eq!(within("early", ws.next()).await.unwrap().unwrap(), Message::text("early"));
    peer.write_all(&second[5..]).await.unwrap();
    assert_eq!(within("rest", ws.next()).await.unwrap().unwrap(), Message::binary(&b"split across"[..]));
}

#[tokio::test]
async fn close_inside_a_fragmented_message_ends_the_stream() {
    let (mut ws, mut peer) = server_and_raw_peer(Config::default(), 4096);
    let mut wire = client_frame(false, 0, op::TEXT, b"never");
    wire.extend(client_msg(op::CLOSE, &close_payload(1000, "")));
    peer.write_all(&wire).await.unwrap();
    assert_eq!(within("close", ws.next()).await.unwrap().unwrap(), Message::Close(Some(CloseFrame::normal())));
    assert_eq!(read_bytes(&mut peer, 4).await, server_close_bytes(1000));
    assert!(within("end", ws.next()).await.is_none());
}

#[tokio::test]
async fn ping_between_fragments_is_yielded_and_answered() {
    let (mut ws, mut peer) = server_and_raw_peer(Config::default(), 4096);
    let mut wire = Vec::new();
    wire.extend(client_frame(false, 0, op::TEXT, b"frag"));
    wire.extend(client_msg(op::PING, b"mid"));
    wire.extend(client_frame(true, 0, op::CONT, b"ment"));
    peer.write_all(&wire).await.unwrap();
    assert_eq!(within("ping", ws.next()).await.unwrap().unwrap(), Message::ping(&b"mid"[..]));
    assert_eq!(read_bytes(&mut peer, 5).await, server_frame(true, 0, op::PONG, b"mid"));
    assert_eq!(within("text", ws.next()).await.unwrap().unwrap(), Message::text("fragment"));
}

#[tokio::test]
async fn auto_pong_carries_the_ping_payload() {
    let (mut ws, mut peer) = server_and_raw_peer(Config::default(), 4096);
    let payloads: [&[u8]; 4] = [b"", b"hello ping", &[0xFF, 0x00, 0x80], &[0x5A; 125]];
    for payload in payloads {
        peer.write_all(&client_msg(op::PING, payload)).await.unwrap();
        assert_eq!(within("ping", ws.next()).await.unwrap().unwrap(), Message::ping(payload.to_vec()));
        let pong = read_bytes(&mut peer, 2 + payload.len()).await;
        assert_eq!(pong, server_frame(true, 0, op::PONG, payload), "exact pong bytes");
    }
}

#[tokio::test]
async fn client_role_answers_pings_with_masked_pongs() {
    let (mut ws, mut peer) = client_and_raw_peer(Config::default(), 4096);
    peer.write_all(&server_frame(true, 0, op::PING, b"abc")).await.unwrap();
    assert_eq!(within("ping", ws.next()).await.unwrap().unwrap(), Message::ping(&b"abc"[..]));
    let pong = read_frame(&mut peer).await;
    assert!(pong.masked, "client frames are masked");
    assert_eq!((pong.fin, pong.rsv, pong.opcode, &pong.payload[..]), (true, 0, op::PONG, &b"abc"[..]));
}

#[tokio::test]
async fn close_initiated_by_us_completes_the_handshake() {
    let (mut ws, mut peer) = server_and_raw_peer(Config::default(), 4096);
    let peer_side = async {
        let ours = read_bytes(&mut peer, 7).await;
        assert_eq!(ours, [0x88, 0x05, 0x03, 0xE8, b'b', b'y', b'e'], "exact close frame");
        // Data still in flight is discarded by close(); then the reply.
        peer.write_all(&client_msg(op::TEXT, b"late")).await.unwrap();
        peer.write_all(&client_msg(op::CLOSE, &close_payload(1000, "ok"))).await.unwrap();
        // Nothing more from the library: no echo of our own close, then FIN.
        expect_eof(&mut peer).await;
    };
    let (result, ()) =
        tokio::join!(within("close", ws.close(Some(CloseFrame::new(CloseCode::NORMAL, "bye")))), peer_side);
    result.expect("clean close");
    assert!(ws.next().await.is_none());
    assert!(ws.next().await.is_none());
    assert!(matches!(ws.send(Message::text("x")).await, Err(Error::Closed)));
    // A second close is a no-op that still succeeds.
    within("close again", ws.close(None)).await.expect("close is idempotent");
}

#[tokio::test]
async fn close_initiated_by_a_client_role_is_masked() {
    let (mut ws, mut peer) = client_and_raw_peer(Config::default(), 4096);
    let peer_side = async {
        let ours = read_frame(&mut peer).await;
        assert!(ours.masked);
        assert_eq!((ours.opcode, ours.close_code()), (op::CLOSE, Some(4000)));
        assert_eq!(&ours.payload[2..], b"app");
        peer.write_all(&server_frame(true, 0, op::CLOSE, &close_payload(4000, ""))).await.unwrap();
        expect_eof(&mut peer).await;
    };
    let (result, ()) =
        tokio::join!(within("close", ws.close(Some(CloseFrame::new(CloseCode::from(4000), "app")))), peer_side);
    result.expect("clean close");
    assert!(ws.next().await.is_none());
}

/// RFC 6455 §5.5.1: after sending a close frame an endpoint sends nothing
/// more. A pong still owed when the application closes must go out before
/// the close frame or not at all.
#[tokio::test]
async fn owed_pong_precedes_our_close_frame_and_nothing_follows_it() {
    // The pong cannot be queued at once: the queue is past write_buffer_size
    // and the pipe is too small to drain it.
    let config = Config::default().write_buffer_size(256);
    let (mut ws, mut peer) = server_and_raw_peer(config, 64);
    within("feed", ws.feed(Message::binary(vec![1u8; 1000]))).await.unwrap();
    peer.write_all(&client_msg(op::PING, b"owed")).await.unwrap();
    assert_eq!(within("ping", ws.next()).await.unwrap().unwrap(), Message::ping(&b"owed"[..]));
    let peer_side = async {
        let mut frames = Vec::new();
        while let Some(frame) = try_read_frame(&mut peer).await {
            let is_close = frame.opcode == op::CLOSE;
            frames.push(frame);
            if is_close {
                break;
            }
        }
        peer.write_all(&client_msg(op::CLOSE, &close_payload(1000, ""))).await.unwrap();
        while let Some(frame) = try_read_frame(&mut peer).await {
            frames.push(frame);
        }
        frames
    };
    let (result, frames) = tokio::join!(within("close", ws.close(None)), peer_side);
    result.expect("clean close");
    let opcodes: Vec<u8> = frames.iter().map(|f| f.opcode).collect();
    let close_at = opcodes.iter().position(|&o| o == op::CLOSE).expect("our close frame");
    assert_eq!(close_at, opcodes.len() - 1, "frames after our close: {opcodes:x?}");
    assert!(opcodes.contains(&op::PONG), "the owed pong goes out before our close: {opcodes:x?}");
}

#[tokio::test]
async fn close_initiated_by_the_peer_is_echoed_then_the_stream_ends() {
    let (mut ws, mut peer) = server_and_raw_peer(Config::default(), 4096);
    peer.write_all(&client_msg(op::CLOSE, &close_payload(1001, "going away"))).await.unwrap();
    let got = within("close", ws.next()).await.unwrap().unwrap();
    assert_eq!(got, Message::Close(Some(CloseFrame::new(CloseCode::GOING_AWAY, "going away"))));
    assert_eq!(read_bytes(&mut peer, 4).await, server_close_bytes(1001), "echo: same code, empty reason");
    assert!(within("end", ws.next()).await.is_none());
    expect_eof(&mut peer).await;
    assert!(matches!(ws.send(Message::text("x")).await, Err(Error::Closed)));
    assert!(matches!(ws.send(Message::ping(Vec::new())).await, Err(Error::Closed)));
    within("close after", ws.close(None)).await.expect("handshake already done");
}

#[tokio::test]
async fn empty_close_from_the_peer_is_echoed_empty() {
    let (mut ws, mut peer) = server_and_raw_peer(Config::default(), 4096);
    peer.write_all(&client_msg(op::CLOSE, b"")).await.unwrap();
    assert_eq!(within("close", ws.next()).await.unwrap().unwrap(), Message::Close(None));
    assert_eq!(read_bytes(&mut peer, 2).await, [0x88, 0x00]);
    assert!(within("end", ws.next()).await.is_none());
    expect_eof(&mut peer).await;
}

#[tokio::test]
async fn close_times_out_when_the_peer_never_answers() {
    let config = Config::default().close_timeout(Duration::from_millis(100));
    let (mut ws, mut peer) = server_and_raw_peer(config, 4096);
    let result = within("close", ws.close(None)).await;
    assert!(matches!(result, Err(Error::Timeout)), "{result:?}");
    // The close frame did go out.
    assert_eq!(read_bytes(&mut peer, 2).await, [0x88, 0x00]);
    assert!(matches!(ws.send(Message::text("x")).await, Err(Error::Closed)));
    drop(peer);
}

/// `close()` is bounded by `close_timeout` even when our own close frame
/// cannot be written because the peer stopped reading and the transport is
/// full.
#[tokio::test]
async fn close_times_out_when_the_peer_stops_reading() {
    let config = Config::default().close_timeout(Duration::from_millis(100));
    let (mut ws, peer) = server_and_raw_peer(config, 64);
    within("feed", ws.feed(Message::binary(vec![0u8; 10_000]))).await.unwrap();
    let result = tokio::time::timeout(Duration::from_secs(5), ws.close(None)).await;
    assert!(matches!(result, Ok(Err(Error::Timeout))), "{result:?}");
    drop(peer);
}

/// The close echo to a peer that closed but no longer reads is abandoned
/// after `close_timeout`; the stream still yields the close and ends.
#[tokio::test]
async fn peer_close_with_a_full_transport_finishes_after_close_timeout() {
    let config = Config::default().close_timeout(Duration::from_millis(100));
    let (mut ws, mut peer) = server_and_raw_peer(config, 64);
    within("feed", ws.feed(Message::binary(vec![0u8; 10_000]))).await.unwrap();
    peer.write_all(&client_msg(op::CLOSE, &close_payload(1000, ""))).await.unwrap();
    let got = tokio::time::timeout(Duration::from_secs(5), ws.next()).await.expect("bounded by close_timeout");
    assert_eq!(got.unwrap().unwrap(), Message::Close(Some(CloseFrame::normal())));
    assert!(within("end", ws.next()).await.is_none());
}

#[tokio::test]
async fn close_is_cancel_safe() {
    let (mut ws, mut peer) = server_and_raw_peer(Config::default(), 4096);
    for _ in 0..3 {
        let early = tokio::time::timeout(Duration::from_millis(5), ws.close(None)).await;
        assert!(early.is_err(), "no reply yet: {early:?}");
    }
    // Exactly one close frame went out.
    assert_eq!(read_bytes(&mut peer, 2).await, [0x88, 0x00]);
    peer.write_all(&client_msg(op::CLOSE, b"")).await.unwrap();
    within("close", ws.close(None)).await.expect("resumed close completes");
    expect_eof(&mut peer).await;
}

#[tokio::test]
async fn oversized_control_frame_is_refused_without_failing_the_connection() {
    let (mut ws, mut peer) = server_and_raw_peer(Config::default(), 4096);
    let err = ws.send(Message::ping(vec![0u8; 126])).await.unwrap_err();
    assert!(matches!(err, Error::Capacity(CapacityError::ControlFrameTooLong { len: 126 })), "{err:?}");
    ws.send(Message::ping(vec![1u8; 125])).await.expect("the connection is still usable");
    let ping = read_frame(&mut peer).await;
    assert_eq!((ping.opcode, ping.payload.len()), (op::PING, 125));
}

// ---------------------------------------------------------------------------
// Protocol violations: the right close code goes out, the error is yielded
// once, the stream then ends, and the error is sticky.

/// Writes `wire` (and keeps the peer open), then checks the failure.
async fn assert_fails_with(config: Config, wire: &[u8], code: u16, is_expected: impl Fn(&Error) -> bool) {
    let (mut ws, mut peer) = server_and_raw_peer(config, 64 * 1024);
    peer.write_all(wire).await.unwrap();
    check_failure(&mut ws, &mut peer, code, &is_expected).await;
}

async fn check_failure(ws: &mut Ws, peer: &mut DuplexStream, code: u16, is_expected: &dyn Fn(&Error) -> bool) {
    let err = within("error", ws.next()).await.expect("an item").expect_err("a protocol error");
    assert!(is_expected(&err), "unexpected error {err:?}");
    let close = read_frame(peer).await;
    assert_eq!(close.opcode, op::CLOSE, "{close:?}");
    assert!(!close.masked);
    assert_eq!(close.payload, code.to_be_bytes(), "close code for {err:?}");
    expect_eof(peer).await;
    assert!(within("end", ws.next()).await.is_none(), "the error is yielded once");
    assert!(ws.next().await.is_none());
    let send = ws.send(Message::text("after")).await.expect_err("sticky");
    assert!(is_expected(&send), "send after failure: {send:?}");
    let feed = ws.feed(Message::binary(vec![1u8])).await.expect_err("sticky");
    assert!(is_expected(&feed), "feed after failure: {feed:?}");
    let close = within("close", ws.close(None)).await.expect_err("sticky");
    assert!(is_expected(&close), "close after failure: {close:?}");
}

fn protocol(expected: ProtocolError) -> impl Fn(&Error) -> bool {
    move |e| matches!(e, Error::Protocol(p) if *p == expected)
}

#[tokio::test]
async fn reserved_opcodes_fail_with_1002() {
    for opcode in [0x3, 0x7, 0xB, 0xF] {
        assert_fails_with(
            Config::default(),
            &client_msg(opcode, b"x"),
            1002,
            protocol(ProtocolError::ReservedOpcode(opcode)),
        )
        .await;
    }
}

#[tokio::test]
async fn unmasked_client_frame_fails_with_1002() {
    let wire = server_frame(true, 0, op::TEXT, b"hi");
    assert_fails_with(Config::default(), &wire, 1002, protocol(ProtocolError::UnmaskedFrame)).await;
}

#[tokio::test]
async fn masked_server_frame_fails_a_client_with_a_masked_1002() {
    let (mut ws, mut peer) = client_and_raw_peer(Config::default(), 4096);
    peer.write_all(&client_msg(op::TEXT, b"hi")).await.unwrap();
    let err = within("error", ws.next()).await.unwrap().unwrap_err();
    assert!(matches!(err, Error::Protocol(ProtocolError::MaskedFrame)), "{err:?}");
    let close = read_frame(&mut peer).await;
    assert!(close.masked);
    assert_eq!((close.opcode, close.close_code(), close.payload.len()), (op::CLOSE, Some(1002), 2));
    expect_eof(&mut peer).await;
    assert!(ws.next().await.is_none());
    assert!(matches!(ws.send(Message::text("x")).await, Err(Error::Protocol(ProtocolError::MaskedFrame))));
}

#[tokio::test]
async fn reserved_bits_fail_with_1002() {
    for rsv in [0b100, 0b010, 0b001, 0b111] {
        let wire = client_frame(true, rsv, op::TEXT, b"hi");
        assert_fails_with(Config::default(), &wire, 1002, protocol(ProtocolError::ReservedBits(rsv))).await;
    }
}

#[tokio::test]
async fn other_framing_violations_fail_with_1002() {
    let mut new_data_inside_fragmented = client_frame(false, 0, op::TEXT, b"a");
    new_data_inside_fragmented.extend(client_msg(op::BINARY, b"b"));
    let mut huge_length = vec![0x82, 0xFF];
    huge_length.extend_from_slice(&(1u64 << 63).to_be_bytes());
    huge_length.extend_from_slice(&common::KEY);
    let cases: Vec<(Vec<u8>, ProtocolError)> = vec![
        (client_msg(op::PING, &[0; 126]), ProtocolError::ControlFrameTooLong),
        (client_frame(false, 0, op::PING, b"p"), ProtocolError::FragmentedControlFrame),
        (client_msg(op::CONT, b"c"), ProtocolError::UnexpectedContinuation),
        (new_data_inside_fragmented, ProtocolError::ExpectedContinuation),
        (huge_length, ProtocolError::InvalidPayloadLength),
        (client_msg(op::CLOSE, &[0x03]), ProtocolError::InvalidClosePayload),
    ];
    for (wire, expected) in cases {
        assert_fails_with(Config::default(), &wire, 1002, protocol(expected)).await;
    }
}

#[tokio::test]
async fn invalid_utf8_text_fails_with_1007() {
    for bad in [&b"\xff"[..], b"ok\xc3\x28", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"abc\xce"] {
        let wire = client_msg(op::TEXT, bad);
        assert_fails_with(Config::default(), &wire, 1007, protocol(ProtocolError::InvalidUtf8)).await;
    }
}

#[tokio::test]
async fn invalid_utf8_in_a_close_reason_fails_with_1007() {
    let mut payload = close_payload(1000, "");
    payload.extend_from_slice(b"\xce\xba\xe1");
    assert_fails_with(Config::default(), &client_msg(op::CLOSE, &payload), 1007, protocol(ProtocolError::InvalidUtf8))
        .await;
}

#[tokio::test]
async fn invalid_utf8_in_a_fragment_fails_with_1007_before_the_message_ends() {
    // The final fragment is never sent.
    let mut wire = client_frame(false, 0, op::TEXT, "κόσμε".as_bytes());
    wire.extend(client_frame(false, 0, op::CONT, b"\xf4\x90\x80\x80"));
    assert_fails_with(Config::default(), &wire, 1007, protocol(ProtocolError::InvalidUtf8)).await;
    // A character split across fragments whose second half is impossible.
    let mut wire = client_frame(false, 0, op::TEXT, b"ab\xf4");
    wire.extend(client_frame(false, 0, op::CONT, b"\x90"));
    assert_fails_with(Config::default(), &wire, 1007, protocol(ProtocolError::InvalidUtf8)).await;
    // Invalid in the final fragment.
    let mut wire = client_frame(false, 0, op::TEXT, b"fine");
    wire.extend(client_frame(true, 0, op::CONT, b"\xc0\xaf"));
    assert_fails_with(Config::default(), &wire, 1007, protocol(ProtocolError::InvalidUtf8)).await;
}

#[tokio::test]
async fn invalid_utf8_is_detected_before_the_frame_completes() {
    let mut payload = vec![b'a'; 100];
    payload[5] = 0xFF;
    let frame = client_msg(op::TEXT, &payload);
    // Header plus the first ten payload bytes; the other 90 never come.
    let prefix = &frame[..client_header_len(100) + 10];
    assert_fails_with(Config::default(), prefix, 1007, protocol(ProtocolError::InvalidUtf8)).await;

    // The same inside a continuation frame.
    let mut wire = client_frame(false, 0, op::TEXT, b"start");
    let cont = client_frame(true, 0, op::CONT, &payload);
    wire.extend_from_slice(&cont[..client_header_len(100) + 10]);
    assert_fails_with(Config::default(), &wire, 1007, protocol(ProtocolError::InvalidUtf8)).await;
}

#[tokio::test]
async fn invalid_close_codes_fail_with_1002() {
    for code in [0u16, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535] {
        let wire = client_msg(op::CLOSE, &close_payload(code, ""));
        assert_fails_with(Config::default(), &wire, 1002, protocol(ProtocolError::InvalidCloseCode(code))).await;
    }
}

#[tokio::test]
async fn frame_over_max_frame_size_fails_with_1009_from_the_header_alone() {
    let config = Config::default().limits(Limits::default().max_frame_size(1024));
    let frame = client_msg(op::BINARY, &[0u8; 2000]);
    let header = &frame[..client_header_len(2000)];
    assert_fails_with(config, header, 1009, |e| {
        matches!(e, Error::Capacity(CapacityError::FrameTooLarge { len: 2000, max: 1024 }))
    })
    .await;
    // Exactly at the limit is fine.
    let (mut ws, mut peer) = server_and_raw_peer(config, 64 * 1024);
    peer.write_all(&client_msg(op::BINARY, &[1u8; 1024])).await.unwrap();
    assert_eq!(within("at limit", ws.next()).await.unwrap().unwrap(), Message::binary(vec![1u8; 1024]));
}

#[tokio::test]
async fn message_over_max_message_size_across_fragments_fails_with_1009() {
    let config = Config::default().limits(Limits::default().max_message_size(1000).max_frame_size(800));
    let mut wire = client_frame(false, 0, op::BINARY, &[1u8; 600]);
    let second = client_frame(true, 0, op::CONT, &[2u8; 600]);
    // Only the header of the fragment that crosses the limit.
    wire.extend_from_slice(&second[..client_header_len(600)]);
    assert_fails_with(config, &wire, 1009, |e| {
        matches!(e, Error::Capacity(CapacityError::MessageTooLarge { len: 1200, max: 1000 }))
    })
    .await;
    // Text too, with a control frame in between.
    let mut wire = client_frame(false, 0, op::TEXT, &[b'a'; 500]);
    wire.extend(client_msg(op::PING, b"p"));
    wire.extend(client_frame(false, 0, op::CONT, &[b'b'; 500]));
    wire.extend(client_frame(true, 0, op::CONT, b"c"));
    let (mut ws, mut peer) = server_and_raw_peer(config, 64 * 1024);
    peer.write_all(&wire).await.unwrap();
    assert_eq!(within("ping", ws.next()).await.unwrap().unwrap(), Message::ping(&b"p"[..]));
    assert_eq!(read_bytes(&mut peer, 3).await, server_frame(true, 0, op::PONG, b"p"));
    check_failure(&mut ws, &mut peer, 1009, &|e| {
        matches!(e, Error::Capacity(CapacityError::MessageTooLarge { len: 1001, max: 1000 }))
    })
    .await;
}

#[tokio::test]
async fn truncated_frame_then_eof_is_unexpected_eof() {
    let (mut ws, mut peer) = server_and_raw_peer(Config::default(), 4096);
    let frame = client_msg(op::BINARY, &[7u8; 10]);
    peer.write_all(&frame[..client_header_len(10) + 3]).await.unwrap();
    peer.shutdown().await.unwrap();
    let err = within("error", ws.next()).await.unwrap().unwrap_err();
    assert!(matches!(err, Error::Protocol(ProtocolError::UnexpectedEof)), "{err:?}");
    // No close frame: there is no one to read it. Our write side is shut.
    expect_eof(&mut peer).await;
    assert!(ws.next().await.is_none());
    assert!(matches!(ws.send(Message::text("x")).await, Err(Error::Protocol(ProtocolError::UnexpectedEof))));
}

#[tokio::test]
async fn eof_in_a_header_or_between_frames_is_unexpected_eof() {
    for wire in [Vec::new(), client_msg(op::TEXT, b"whole"), vec![0x81], client_msg(op::TEXT, b"x")[..4].to_vec()] {
        let (mut ws, mut peer) = server_and_raw_peer(Config::default(), 4096);
        peer.write_all(&wire).await.unwrap();
        peer.shutdown().await.unwrap();
        if wire.len() > 6 {
            assert_eq!(within("msg", ws.next()).await.unwrap().unwrap(), Message::text("whole"));
        }
        let err = within("error", ws.next()).await.unwrap().unwrap_err();
        assert!(matches!(err, Error::Protocol(ProtocolError::UnexpectedEof)), "{err:?} after {wire:x?}");
        assert!(ws.next().await.is_none());
    }
}

// ---------------------------------------------------------------------------
// Batching.

fn counting_server(
    buf: usize,
) -> (silverback::WebSocketStream<CountingIo<DuplexStream>>, std::sync::Arc<std::sync::atomic::AtomicUsize>, Ws) {
    let (a, b) = tokio::io::duplex(buf);
    let (io, writes) = CountingIo::new(a);
    let server =
        silverback::WebSocketStream::from_raw_parts(io, Role::Server, Config::default(), bytes::BytesMut::new());
    let client =
        silverback::WebSocketStream::from_raw_parts(b, Role::Client, Config::default(), bytes::BytesMut::new());
    (server, writes, client)
}

#[tokio::test]
async fn feed_then_flush_batches_into_few_writes() {
    let (mut server, writes, mut client) = counting_server(1 << 20);
    for i in 0..100 {
        within("feed", server.feed(Message::text(format!("message {i}")))).await.unwrap();
    }
    assert_eq!(writes.load(Ordering::SeqCst), 0, "feed alone does not write small messages");
    within("flush", server.flush()).await.unwrap();
    let n = writes.load(Ordering::SeqCst);
    assert!((1..=3).contains(&n), "100 fed messages took {n} writes");
    for i in 0..100 {
        let msg = within("recv", client.next()).await.unwrap().unwrap();
        assert_eq!(msg, Message::text(format!("message {i}")));
    }
}

#[tokio::test]
async fn forward_batches_into_few_writes() {
    let (mut server, writes, mut client) = counting_server(1 << 20);
    let messages: Vec<Message> = (0..1000).map(|i| Message::binary(format!("{i:04}").into_bytes())).collect();
    let expected = messages.clone();
    let reader = async move {
        for msg in &expected {
            assert_eq!(&within("recv", client.next()).await.unwrap().unwrap(), msg);
        }
        // forward() closes the sink: the whole closing handshake with 1000.
        let close = within("close", client.next()).await.unwrap().unwrap();
        assert_eq!(close, Message::Close(Some(CloseFrame::normal())));
        assert!(within("end", client.next()).await.is_none());
    };
    let forward = within("forward", stream::iter(messages.into_iter().map(Ok)).forward(&mut server));
    let (result, ()) = tokio::join!(forward, reader);
    result.expect("forward");
    let n = writes.load(Ordering::SeqCst);
    assert!(n <= 3, "1000 forwarded messages took {n} writes");
}

// ---------------------------------------------------------------------------
// A ping flood against a peer that does not read.

const PINGS: usize = 10_000;
/// The duplex capacity in each direction during the flood.
const FLOOD_PIPE: usize = 1024;

/// What the raw peer saw after flooding.
struct Flood {
    pongs: usize,
    pong_bytes: usize,
}

/// Sends [`PINGS`] pings without reading, then reads everything back. Checks
/// that the library kept reading during the flood, that pongs come in order,
/// that the last ping is answered, that every ping is yielded, and that the
/// connection still works afterwards.
async fn ping_flood(config: Config) -> Flood {
    let (ws, peer) = server_and_raw_peer(config, FLOOD_PIPE);
    let reader = tokio::spawn(async move {
        let mut ws = ws;
        let (mut pings, mut others) = (0usize, Vec::new());
        while let Some(msg) = ws.next().await {
            match msg.expect("reader") {
                Message::Ping(_) => pings += 1,
                other => others.push(other),
            }
        }
        (pings, others)
    });
    let (mut rd, mut wr) = tokio::io::split(peer);
    let flood = async {
        for i in 0..PINGS {
            wr.write_all(&client_msg(op::PING, i.to_string().as_bytes())).await.unwrap();
        }
    };
    tokio::time::timeout(Duration::from_secs(30), flood).await.expect("the library keeps reading during a flood");
    // Now read: pongs come in order, skipping superseded pings, and the last
    // ping is answered.
    let (mut pongs, mut pong_bytes) = (0usize, 0usize);
    let mut last: Option<usize> = None;
    while last != Some(PINGS - 1) {
        let frame = read_frame(&mut rd).await;
        assert_eq!(frame.opcode, op::PONG, "{frame:?}");
        let n: usize = std::str::from_utf8(&frame.payload).unwrap().parse().unwrap();
        assert!(last.is_none_or(|l| n > l), "pongs out of order: {n} after {last:?}");
        last = Some(n);
        pongs += 1;
        pong_bytes += 2 + frame.payload.len();
    }
    // The connection still works.
    wr.write_all(&client_msg(op::TEXT, b"still alive")).await.unwrap();
    wr.write_all(&client_msg(op::CLOSE, &close_payload(1000, ""))).await.unwrap();
    let echo = read_frame(&mut rd).await;
    assert_eq!((echo.opcode, echo.close_code()), (op::CLOSE, Some(1000)));
    assert!(try_read_frame(&mut rd).await.is_none());
    let (pings, others) = within("reader", reader).await.unwrap();
    assert_eq!(pings, PINGS, "every ping is yielded");
    assert_eq!(others, vec![Message::text("still alive"), Message::Close(Some(CloseFrame::normal()))]);
    Flood { pongs, pong_bytes }
}

/// The pong frames that can have been written or queued at once: what the
/// pipe holds, what the write queue may hold, and a frame of slack each.
fn pong_backlog_bound(write_buffer_size: usize) -> usize {
    FLOOD_PIPE + write_buffer_size + 2 * (2 + 125)
}

#[tokio::test]
async fn ping_flood_with_a_small_write_buffer_coalesces_pongs() {
    let flood = ping_flood(Config::default().write_buffer_size(4096)).await;
    assert!(flood.pongs < PINGS / 2, "{} pongs for {PINGS} pings", flood.pongs);
    assert!(flood.pong_bytes <= pong_backlog_bound(4096), "{} bytes of pongs", flood.pong_bytes);
}

#[tokio::test]
async fn ping_flood_pong_backlog_is_bounded_by_write_buffer_size() {
    let flood = ping_flood(Config::default()).await;
    let bound = pong_backlog_bound(Config::DEFAULT_WRITE_BUFFER_SIZE);
    assert!(flood.pong_bytes <= bound, "{} bytes of pongs, bound {bound}", flood.pong_bytes);
}

/// RFC 6455 §5.5.3 lets us answer only the latest of several unanswered
/// pings, and the library documents "latest ping wins if several are
/// pending"; a peer that floods pings and never reads should get far fewer
/// pongs than pings whatever the write buffer size.
#[tokio::test]
async fn ping_flood_with_default_config_coalesces_pongs() {
    let flood = ping_flood(Config::default()).await;
    assert!(flood.pongs < PINGS / 2, "{} pongs for {PINGS} pings", flood.pongs);
}

// ---------------------------------------------------------------------------
// Cancel safety.

#[tokio::test]
async fn next_is_cancel_safe_while_a_message_dribbles_in() {
    let (mut ws, mut peer) = server_and_raw_peer(Config::default(), 64);
    let text: String = "dribble κόσμε ".repeat(8);
    let binary: Vec<u8> = (0..300u16).map(|i| i as u8).collect();
    let expected = vec![Message::text(text.clone()), Message::ping(&b"mid"[..]), Message::binary(binary.clone())];
    let mut wire = client_frame(false, 0, op::TEXT, &text.as_bytes()[..40]);
    wire.extend(client_frame(true, 0, op::CONT, &text.as_bytes()[40..]));
    wire.extend(client_msg(op::PING, b"mid"));
    wire.extend(client_msg(op::BINARY, &binary));
    let dribbler = tokio::spawn(async move {
        for (i, byte) in wire.iter().enumerate() {
            peer.write_all(std::slice::from_ref(byte)).await.unwrap();
            if i % 2 == 0 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            } else {
                tokio::task::yield_now().await;
            }
        }
        peer
    });
    let mut got = Vec::new();
    let mut cancelled = 0usize;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    for round in 0..200_000usize {
        if got.len() == expected.len() || tokio::time::Instant::now() > deadline {
            break;
        }
        let item = if round % 2 == 0 {
            match tokio::time::timeout(Duration::from_micros(100), ws.next()).await {
                Ok(item) => item,
                Err(_) => {
                    cancelled += 1;
                    continue;
                }
            }
        } else {
            // Poll once and drop the future.
            match ws.next().now_or_never() {
                Some(item) => item,
                None => {
                    cancelled += 1;
                    tokio::task::yield_now().await;
                    continue;
                }
            }
        };
        got.push(item.expect("stream open").expect("message"));
    }
    assert!(cancelled > 0, "the test never cancelled a next()");
    assert_eq!(got, expected, "each message exactly once, intact");
    let mut peer = within("dribbler", dribbler).await.unwrap();
    assert_eq!(read_bytes(&mut peer, 5).await, server_frame(true, 0, op::PONG, b"mid"));
    // Nothing else was yielded.
    peer.write_all(&client_msg(op::CLOSE, b"")).await.unwrap();
    assert_eq!(within("close", ws.next()).await.unwrap().unwrap(), Message::Close(None));
    assert!(within("end", ws.next()).await.is_none());
}

/// RFC 6455 §1.4, §7.1.2: after sending its close, an endpoint still
/// receives what the peer sent before the peer's own close. `send_close`
/// returns once our frame is out, and `next()` yields that data, then the
/// peer's close, then the end.
#[tokio::test]
async fn send_close_then_keep_reading_yields_data_sent_before_the_peers_close() {
    let (mut ws, mut peer) = server_and_raw_peer(Config::default(), 4096);
    within("send_close", ws.send_close(Some(CloseFrame::new(CloseCode::NORMAL, "bye"))))
        .await
        .expect("close frame sent");
    assert_eq!(read_bytes(&mut peer, 7).await, [0x88, 0x05, 0x03, 0xE8, b'b', b'y', b'e']);
    assert!(matches!(ws.send(Message::text("x")).await, Err(Error::Closed)), "no data after our close");
    peer.write_all(&client_msg(op::TEXT, b"late 1")).await.unwrap();
    peer.write_all(&client_msg(op::BINARY, b"late 2")).await.unwrap();
    peer.write_all(&client_msg(op::CLOSE, &close_payload(1000, "ok"))).await.unwrap();
    assert_eq!(within("late 1", ws.next()).await.unwrap().unwrap(), Message::text("late 1"));
    assert_eq!(within("late 2", ws.next()).await.unwrap().unwrap(), Message::binary(&b"late 2"[..]));
    assert_eq!(
        within("peer's close", ws.next()).await.unwrap().unwrap(),
        Message::Close(Some(CloseFrame::new(CloseCode::NORMAL, "ok")))
    );
    assert!(within("end", ws.next()).await.is_none());
    // Our close was already out: no echo, then FIN.
    expect_eof(&mut peer).await;
    within("send_close again", ws.send_close(None)).await.expect("idempotent");
    within("close after", ws.close(None)).await.expect("handshake already done");
}
