//! permessage-deflate (RFC 7692) end to end: negotiation in the handshake
//! both ways, exact frames against a raw peer (RSV1 placement, the RFC's
//! examples, context takeover), the per-message opt-out, and the limits that
//! make a decompression bomb cost bounded memory and end in close 1009.
#![cfg(feature = "deflate")]

mod common;

use bytes::BytesMut;
use common::{client_frame, op, read_frame, within};
use futures_util::{SinkExt, StreamExt};
use silverback::deflate::{Compressor, Decompressor, DeflateParams};
use silverback::{
    CapacityError, Config, Connector, DeflateConfig, Error, HandshakeError, Limits, Message, ProtocolError, Role,
    Upgrader, WebSocketStream,
};
use tokio::io::{duplex, AsyncReadExt, AsyncWriteExt, DuplexStream};

const RSV1: u8 = 0b100;

/// "Hello" compressed as in RFC 7692 §7.2.3.1.
const HELLO: [u8; 7] = [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];

fn deflate_config(limits: Limits) -> Config {
    Config::default().limits(limits).deflate(DeflateConfig::default().min_size(0))
}

/// A stream that agreed on `params`, and the raw peer's end.
fn negotiated(role: Role, params: DeflateParams, limits: Limits) -> (WebSocketStream<DuplexStream>, DuplexStream) {
    let (a, b) = duplex(1 << 20);
    let ws = WebSocketStream::from_raw_parts_with_deflate(a, role, deflate_config(limits), BytesMut::new(), params);
    (ws, b)
}

fn inflate(decompressor: &mut Decompressor, payload: &[u8]) -> Vec<u8> {
    let mut out = BytesMut::new();
    decompressor.decompress(payload, &mut out, 1 << 30).unwrap();
    decompressor.finish_message(&mut out, 1 << 30).unwrap();
    out.to_vec()
}

fn compress(compressor: &mut Compressor, payload: &[u8]) -> Vec<u8> {
    let mut out = BytesMut::new();
    compressor.compress(payload, &mut out);
    out.to_vec()
}

#[tokio::test]
async fn server_inflates_the_rfc_example_whole_and_fragmented() {
    let (mut ws, mut peer) = negotiated(Role::Server, DeflateParams::default(), Limits::default());
    // §7.2.3.1: one frame.
    peer.write_all(&client_frame(true, RSV1, op::TEXT, &HELLO)).await.unwrap();
    // §7.2.3.1, second example: the same data in two fragments, RSV1 on
    // the first only.
    peer.write_all(&client_frame(false, RSV1, op::TEXT, &HELLO[..3])).await.unwrap();
    peer.write_all(&client_frame(true, 0, op::CONT, &HELLO[3..])).await.unwrap();
    for _ in 0..2 {
        let msg = within("message", ws.next()).await.unwrap().unwrap();
        assert_eq!(msg, Message::text("Hello"));
    }
}

#[tokio::test]
async fn context_takeover_lets_a_message_refer_to_the_previous_one() {
    let (mut ws, mut peer) = negotiated(Role::Server, DeflateParams::default(), Limits::default());
    // §7.2.3.2: the second "Hello" refers back to the first.
    peer.write_all(&client_frame(true, RSV1, op::TEXT, &HELLO)).await.unwrap();
    peer.write_all(&client_frame(true, RSV1, op::TEXT, &[0xf2, 0x00, 0x11, 0x00, 0x00])).await.unwrap();
    for _ in 0..2 {
        assert_eq!(within("message", ws.next()).await.unwrap().unwrap(), Message::text("Hello"));
    }
}

#[tokio::test]
async fn uncompressed_messages_still_pass_when_deflate_is_agreed() {
    let (mut ws, mut peer) = negotiated(Role::Server, DeflateParams::default(), Limits::default());
    peer.write_all(&client_frame(true, 0, op::BINARY, b"plain")).await.unwrap();
    peer.write_all(&client_frame(true, RSV1, op::TEXT, &HELLO)).await.unwrap();
    assert_eq!(within("plain", ws.next()).await.unwrap().unwrap(), Message::binary(&b"plain"[..]));
    assert_eq!(within("compressed", ws.next()).await.unwrap().unwrap(), Message::text("Hello"));
}

async fn expect_failure(frames: &[Vec<u8>], limits: Limits, code: u16) -> Error {
    let (mut ws, mut peer) = negotiated(Role::Server, DeflateParams::default(), limits);
    for frame in frames {
        peer.write_all(frame).await.unwrap();
    }
    let err = within("error", ws.next()).await.unwrap().unwrap_err();
    let close = read_frame(&mut peer).await;
    assert_eq!(close.opcode, op::CLOSE);
    assert_eq!(close.close_code(), Some(code), "{err:?}");
    assert!(within("end", ws.next()).await.is_none());
    err
}

#[tokio::test]
async fn rsv1_on_a_continuation_or_control_frame_fails_with_1002() {
    let cases = [
        vec![client_frame(false, RSV1, op::TEXT, &HELLO[..3]), client_frame(true, RSV1, op::CONT, &HELLO[3..])],
        vec![client_frame(false, 0, op::TEXT, b"He"), client_frame(true, RSV1, op::CONT, b"llo")],
        vec![client_frame(true, RSV1, op::PING, b"")],
        vec![client_frame(true, RSV1, op::CLOSE, &1000u16.to_be_bytes())],
    ];
    for frames in cases {
        let err = expect_failure(&frames, Limits::default(), 1002).await;
        assert!(matches!(err, Error::Protocol(ProtocolError::CompressedControlOrContinuation)), "{err:?}");
    }
}

#[tokio::test]
async fn rsv2_and_rsv3_stay_reserved() {
    let err = expect_failure(&[client_frame(true, 0b010, op::TEXT, &HELLO)], Limits::default(), 1002).await;
    assert!(matches!(err, Error::Protocol(ProtocolError::ReservedBits(_))), "{err:?}");
}

#[tokio::test]
async fn corrupt_deflate_data_fails_with_1007() {
    let err = expect_failure(&[client_frame(true, RSV1, op::BINARY, &[0xff; 16])], Limits::default(), 1007).await;
    assert!(matches!(err, Error::Protocol(ProtocolError::InvalidCompressedData)), "{err:?}");
}

#[tokio::test]
async fn compressed_invalid_utf8_fails_with_1007() {
    let mut compressor = Compressor::new(6, 15, false).unwrap();
    let payload = compress(&mut compressor, b"valid start \xff\xfe then garbage");
    let err = expect_failure(&[client_frame(true, RSV1, op::TEXT, &payload)], Limits::default(), 1007).await;
    assert!(matches!(err, Error::Protocol(ProtocolError::InvalidUtf8)), "{err:?}");
}

/// 64 MiB of zeros compress to about 64 KiB; with a 1 MiB message limit the
/// server stops inflating at the limit, sends 1009 and never holds the
/// whole message.
#[tokio::test]
async fn a_decompression_bomb_ends_in_1009_at_the_limit() {
    let mut compressor = Compressor::new(9, 15, false).unwrap();
    let bomb = compress(&mut compressor, &vec![0u8; 64 << 20]);
    assert!(bomb.len() < 128 * 1024, "bomb is {} bytes", bomb.len());
    let limits = Limits::default().max_message_size(1 << 20);
    let err = expect_failure(&[client_frame(true, RSV1, op::BINARY, &bomb)], limits, 1009).await;
    assert!(matches!(err, Error::Capacity(CapacityError::InflatedMessageTooLarge { max: 1_048_576 })), "{err:?}");
}

/// The same bomb split over many fragments: the limit counts the whole
/// message's inflated size, not each frame's.
#[tokio::test]
async fn a_fragmented_bomb_is_limited_on_the_whole_message() {
    let mut compressor = Compressor::new(9, 15, false).unwrap();
    let bomb = compress(&mut compressor, &vec![b'a'; 8 << 20]);
    let mut frames = Vec::new();
    let chunks: Vec<&[u8]> = bomb.chunks(bomb.len() / 8 + 1).collect();
    for (i, chunk) in chunks.iter().enumerate() {
        let (rsv, opcode) = if i == 0 { (RSV1, op::BINARY) } else { (0, op::CONT) };
        frames.push(client_frame(i + 1 == chunks.len(), rsv, opcode, chunk));
    }
    let limits = Limits::default().max_message_size(1 << 20);
    let err = expect_failure(&frames, limits, 1009).await;
    assert!(matches!(err, Error::Capacity(CapacityError::InflatedMessageTooLarge { .. })), "{err:?}");
}

#[tokio::test]
async fn server_sends_compressed_frames_with_rsv1_on_the_first_only() {
    let (mut ws, mut peer) = negotiated(Role::Server, DeflateParams::default(), Limits::default());
    let text = "a compressible message, a compressible message, a compressible message";
    ws.send(Message::text(text)).await.unwrap();
    ws.send(Message::text(text)).await.unwrap();
    ws.send(Message::Ping("p".into())).await.unwrap();
    let mut inflater = Decompressor::new(15, false);
    let first = read_frame(&mut peer).await;
    let second = read_frame(&mut peer).await;
    for frame in [&first, &second] {
        assert_eq!((frame.fin, frame.rsv, frame.opcode, frame.masked), (true, RSV1, op::TEXT, false));
        assert_eq!(inflate(&mut inflater, &frame.payload), text.as_bytes());
    }
    assert!(second.payload.len() < first.payload.len(), "context takeover makes the repeat shorter");
    let ping = read_frame(&mut peer).await;
    assert_eq!((ping.rsv, ping.opcode, &ping.payload[..]), (0, op::PING, &b"p"[..]));
}

#[tokio::test]
async fn client_masks_compressed_frames_and_honours_no_context_takeover() {
    let params = DeflateParams { client_no_context_takeover: true, ..DeflateParams::default() };
    let (mut ws, mut peer) = negotiated(Role::Client, params, Limits::default());
    let text = "the same text twice, the same text twice";
    ws.send(Message::text(text)).await.unwrap();
    ws.send(Message::text(text)).await.unwrap();
    let first = read_frame(&mut peer).await;
    let second = read_frame(&mut peer).await;
    assert!(first.masked && second.masked);
    assert_eq!(first.payload, second.payload, "no context takeover: each message stands alone");
    let mut inflater = Decompressor::new(15, true);
    assert_eq!(inflate(&mut inflater, &second.payload), text.as_bytes());
}

#[tokio::test]
async fn compression_can_be_turned_off_per_message_and_short_messages_skip_it() {
    let (a, mut peer) = duplex(1 << 20);
    let config = Config::default().deflate(DeflateConfig::default().min_size(16));
    let mut ws = WebSocketStream::from_raw_parts_with_deflate(
        a,
        Role::Server,
        config,
        BytesMut::new(),
        DeflateParams::default(),
    );
    assert!(ws.is_compressing());
    ws.send(Message::binary(vec![7u8; 15])).await.unwrap();
    ws.set_compression(false);
    assert!(!ws.is_compressing());
    ws.send(Message::binary(vec![7u8; 100])).await.unwrap();
    ws.set_compression(true);
    ws.send(Message::binary(vec![7u8; 100])).await.unwrap();
    let mut seen = Vec::new();
    for _ in 0..3 {
        seen.push(read_frame(&mut peer).await.rsv);
    }
    assert_eq!(seen, [0, 0, RSV1]);
}

#[tokio::test]
async fn a_window_of_8_is_accepted_and_we_send_uncompressed() {
    let params = DeflateParams { server_max_window_bits: 8, ..DeflateParams::default() };
    let (mut ws, mut peer) = negotiated(Role::Server, params, Limits::default());
    assert!(!ws.is_compressing());
    ws.send(Message::text("x".repeat(100))).await.unwrap();
    assert_eq!(read_frame(&mut peer).await.rsv, 0);
    // Receiving still works.
    peer.write_all(&client_frame(true, RSV1, op::TEXT, &HELLO)).await.unwrap();
    assert_eq!(within("message", ws.next()).await.unwrap().unwrap(), Message::text("Hello"));
}

// ----- negotiation inside the handshake -----

/// Sends a request with `extensions` to an upgrader and returns the
/// response head and the server-side result.
async fn offer(upgrader: Upgrader, extensions: &str) -> (String, Result<WebSocketStream<DuplexStream>, Error>) {
    let (a, mut b) = duplex(1 << 16);
    let server = tokio::spawn(async move { upgrader.accept(a).await });
    let request = common::request_with_fields(&format!("Sec-WebSocket-Extensions: {extensions}\r\n"));
    b.write_all(request.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8];
        if within("response", b.read(&mut byte)).await.unwrap() == 0 {
            break;
        }
        head.push(byte[0]);
    }
    let result = within("accept", server).await.unwrap();
    (String::from_utf8(head).unwrap(), result)
}

#[tokio::test]
async fn server_answers_the_first_acceptable_offer() {
    let upgrader = Upgrader::new().deflate(DeflateConfig::default());
    let (head, ws) = offer(
        upgrader,
        "x-unknown, permessage-deflate; bogus_param, permessage-deflate; client_max_window_bits; server_max_window_bits=10",
    )
    .await;
    let answer = head
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("sec-websocket-extensions:"))
        .unwrap_or_else(|| panic!("no extension answered: {head}"));
    assert!(answer.contains("permessage-deflate"), "{answer}");
    assert!(answer.contains("server_max_window_bits=10"), "{answer}");
    assert!(ws.unwrap().is_compressing());
}

#[tokio::test]
async fn server_without_deflate_enabled_answers_no_extension() {
    let (head, ws) = offer(Upgrader::new(), "permessage-deflate; client_max_window_bits").await;
    assert!(!head.to_ascii_lowercase().contains("sec-websocket-extensions"), "{head}");
    assert!(!ws.unwrap().is_compressing());
}

#[tokio::test]
async fn server_refuses_a_malformed_extensions_header_with_400() {
    let upgrader = Upgrader::new().deflate(DeflateConfig::default());
    let (head, ws) = offer(upgrader, "permessage-deflate; =broken").await;
    assert!(head.starts_with("HTTP/1.1 400"), "{head}");
    assert!(matches!(ws, Err(Error::Handshake(HandshakeError::InvalidExtensionOffer))), "{ws:?}");
}

/// A scripted server answering with `extensions`; returns the client's
/// result and the request it sent.
async fn answer_with(extensions: &str) -> (Result<WebSocketStream<DuplexStream>, Error>, String) {
    let (a, mut b) = duplex(1 << 16);
    let connector = Connector::new().deflate(DeflateConfig::default().client_no_context_takeover(true));
    let client = tokio::spawn(async move { connector.connect_on(a, "ws://h/").await.map(|(ws, _)| ws) });
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8];
        assert_eq!(within("request", b.read(&mut byte)).await.unwrap(), 1);
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap();
    let key = head.lines().find_map(|l| l.strip_prefix("Sec-WebSocket-Key: ")).expect("key").to_owned();
    let accept = {
        use base64::Engine as _;
        use sha1::{Digest, Sha1};
        let digest =
            Sha1::new().chain_update(key.as_bytes()).chain_update(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").finalize();
        base64::engine::general_purpose::STANDARD.encode(digest)
    };
    let response = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {accept}\r\nSec-WebSocket-Extensions: {extensions}\r\n\r\n"
    );
    b.write_all(response.as_bytes()).await.unwrap();
    let result = within("connect", client).await.unwrap();
    // Keep the server end open until the client is done with it.
    drop(b);
    (result, head)
}

#[tokio::test]
async fn client_offers_and_accepts_a_matching_answer() {
    let (ws, request) = answer_with("permessage-deflate; client_no_context_takeover; client_max_window_bits=12").await;
    assert!(
        request.contains(
            "Sec-WebSocket-Extensions: permessage-deflate; client_no_context_takeover; client_max_window_bits"
        ),
        "{request}"
    );
    assert!(ws.unwrap().is_compressing());
}

#[tokio::test]
async fn client_fails_on_an_answer_that_does_not_fit_the_offer() {
    for answer in [
        "permessage-deflate; unknown_param",
        "permessage-deflate; server_max_window_bits=16",
        "permessage-deflate, permessage-deflate",
        "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
        "x-something-else",
    ] {
        let (ws, _) = answer_with(answer).await;
        assert!(
            matches!(ws, Err(Error::Handshake(HandshakeError::InvalidExtensionResponse))),
            "{answer}: {:?}",
            ws.map(|_| ())
        );
    }
}

/// Two library endpoints negotiate through the real handshake and exchange
/// messages of many sizes both ways, context takeover on.
#[tokio::test]
async fn library_to_library_round_trips_over_a_real_handshake() {
    let (a, b) = duplex(1 << 20);
    let server = tokio::spawn(async move {
        let ws = Upgrader::new().deflate(DeflateConfig::default()).accept(a).await.unwrap();
        let (read, write) = ws.split();
        read.filter_map(|m| async move { m.ok().filter(|m| m.is_text() || m.is_binary()).map(Ok) }).forward(write).await
    });
    let connector = Connector::new().deflate(DeflateConfig::default());
    let (mut ws, response) = connector.connect_on(b, "ws://h/").await.unwrap();
    assert!(response.headers().get("sec-websocket-extensions").is_some());
    let mut sizes = vec![0usize, 1, 31, 32, 125, 126, 1000, 65_536, 200_000];
    sizes.extend(sizes.clone());
    for (i, size) in sizes.into_iter().enumerate() {
        let msg = if i % 2 == 0 {
            Message::text("κόσμε ".repeat(size / 11 + 1))
        } else {
            Message::binary((0..size).map(|j| (j % 251) as u8).collect::<Vec<_>>())
        };
        ws.send(msg.clone()).await.unwrap();
        assert_eq!(within("echo", ws.next()).await.unwrap().unwrap(), msg, "message {i}");
    }
    ws.close(None).await.unwrap();
    within("server", server).await.unwrap().unwrap();
}
