//! Property tests of the sans-I/O protocol core: frame header encode/parse
//! round trips, `Codec` round trips of arbitrary messages (whole and split
//! at arbitrary points, both roles, hand-fragmented), masking against its
//! bytewise twin, incremental UTF-8 validation against `std`, and a decoder
//! that never panics and does not depend on how its input is split.

use bytes::BytesMut;
use proptest::prelude::*;
use proptest::sample::Index;
use silverback::protocol::{apply_mask, FrameHeader, MessageDecoder, Status, Utf8Validator};
use silverback::{CloseCode, CloseFrame, Codec, Frame, Limits, Message, OpCode, ProtocolError, Role};
use tokio_util::codec::{Decoder, Encoder};

// ---------------------------------------------------------------------------
// Strategies.

fn opcode() -> impl Strategy<Value = OpCode> {
    prop::sample::select(vec![
        OpCode::Continuation,
        OpCode::Text,
        OpCode::Binary,
        OpCode::Close,
        OpCode::Ping,
        OpCode::Pong,
    ])
}

/// Lengths across the 7-, 16- and 64-bit encodings and their boundaries.
fn payload_len() -> impl Strategy<Value = u64> {
    prop_oneof![
        0u64..=125,
        126u64..=0xFFFF,
        0x1_0000u64..=(u64::MAX >> 1),
        prop::sample::select(vec![0, 1, 124, 125, 126, 127, 0xFFFE, 0xFFFF, 0x1_0000, 0x1_0001, u64::MAX >> 1]),
    ]
}

fn header() -> impl Strategy<Value = FrameHeader> {
    (any::<bool>(), 0u8..8, opcode(), any::<Option<[u8; 4]>>(), payload_len())
        .prop_map(|(fin, rsv, opcode, mask, payload_len)| FrameHeader { fin, rsv, opcode, mask, payload_len })
}

fn close_code() -> impl Strategy<Value = CloseCode> {
    prop_oneof![1000u16..=1003, 1007u16..=1014, 3000u16..=4999].prop_map(CloseCode::from)
}

/// Close reasons that fit in a control frame (at most 30 chars of at most 4
/// bytes each).
fn close_frame() -> impl Strategy<Value = Option<CloseFrame>> {
    prop::option::of((close_code(), "\\PC{0,30}").prop_map(|(code, reason)| CloseFrame::new(code, reason)))
}

fn message() -> impl Strategy<Value = Message> {
    prop_oneof![
        any::<String>().prop_map(Message::text),
        prop::collection::vec(any::<u8>(), 0..4096).prop_map(Message::binary),
        prop::collection::vec(any::<u8>(), 0..=125).prop_map(Message::ping),
        prop::collection::vec(any::<u8>(), 0..=125).prop_map(Message::pong),
        close_frame().prop_map(Message::close),
    ]
}

/// Sorted cut positions in `0..=len`.
fn cuts(indices: &[Index], len: usize) -> Vec<usize> {
    let mut at: Vec<usize> = indices.iter().map(|i| i.index(len + 1)).collect();
    at.sort_unstable();
    at
}

/// `data` cut at `at` (sorted), as consecutive pieces covering all of it.
fn pieces<'a>(data: &'a [u8], at: &[usize]) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    let mut start = 0;
    for &end in at.iter().chain(std::iter::once(&data.len())) {
        out.push(&data[start..end]);
        start = end;
    }
    out
}

fn peer(role: Role) -> Role {
    match role {
        Role::Client => Role::Server,
        Role::Server => Role::Client,
    }
}

/// Decodes `wire` fed in `pieces`, calling `decode` until it needs more after
/// each piece. Returns the messages and the first error, if any.
fn decode_pieces(codec: &mut Codec, pieces: &[&[u8]]) -> (Vec<Message>, Option<String>) {
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for piece in pieces {
        buf.extend_from_slice(piece);
        // Each successful decode consumes at least a header; bounded anyway.
        for _ in 0..=buf.len() + 1 {
            match codec.decode(&mut buf) {
                Ok(Some(msg)) => out.push(msg),
                Ok(None) => break,
                Err(e) => return (out, Some(format!("{e:?}"))),
            }
        }
    }
    (out, None)
}

// ---------------------------------------------------------------------------
// Frame header.

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn header_encode_then_parse_round_trips(h in header(), trailing in prop::collection::vec(any::<u8>(), 0..8)) {
        let mut out = [0u8; FrameHeader::MAX_LEN];
        let n = h.encode(&mut out);
        prop_assert_eq!(n, h.encoded_len());
        // RFC 6455 §5.2: the minimal length encoding.
        let len_bytes = match h.payload_len { 0..=125 => 0, 126..=0xFFFF => 2, _ => 8 };
        prop_assert_eq!(n, 2 + len_bytes + if h.mask.is_some() { 4 } else { 0 });
        prop_assert_eq!(FrameHeader::parse(&out[..n]), Ok(Status::Complete(h, n)));
        let mut with_payload = out[..n].to_vec();
        with_payload.extend_from_slice(&trailing);
        prop_assert_eq!(FrameHeader::parse(&with_payload), Ok(Status::Complete(h, n)));
        for prefix in 0..n {
            match FrameHeader::parse(&out[..prefix]) {
                Ok(Status::Partial(need)) => prop_assert!(need > prefix && need <= n, "prefix {} need {}", prefix, need),
                other => prop_assert!(false, "prefix {} of {} parsed as {:?}", prefix, n, other),
            }
        }
    }

    #[test]
    fn header_with_the_top_length_bit_set_is_rejected(low in any::<u64>(), b0 in prop::sample::select(vec![0x81u8, 0x02, 0x88])) {
        let mut raw = vec![b0, 127];
        raw.extend_from_slice(&(low | 1 << 63).to_be_bytes());
        prop_assert_eq!(FrameHeader::parse(&raw), Err(ProtocolError::InvalidPayloadLength));
    }
}

// ---------------------------------------------------------------------------
// Codec round trips.

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn codec_round_trips_messages_split_anywhere(
        messages in prop::collection::vec(message(), 1..8),
        split in prop::collection::vec(any::<Index>(), 0..8),
        client_sends in any::<bool>(),
    ) {
        let sender = if client_sends { Role::Client } else { Role::Server };
        let mut enc = Codec::new(sender);
        let mut wire = BytesMut::new();
        for msg in &messages {
            enc.encode(msg.clone(), &mut wire).unwrap();
        }
        // Whole.
        let mut dec = Codec::new(peer(sender));
        let (got, err) = decode_pieces(&mut dec, &[&wire[..]]);
        prop_assert_eq!(err, None);
        prop_assert_eq!(&got, &messages);
        // Split at arbitrary points.
        let at = cuts(&split, wire.len());
        let mut dec = Codec::new(peer(sender));
        let (got, err) = decode_pieces(&mut dec, &pieces(&wire, &at));
        prop_assert_eq!(err, None);
        prop_assert_eq!(&got, &messages);
        // Byte by byte for small inputs.
        if wire.len() <= 512 {
            let bytes: Vec<&[u8]> = wire.chunks(1).collect();
            let mut dec = Codec::new(peer(sender));
            let (got, err) = decode_pieces(&mut dec, &bytes);
            prop_assert_eq!(err, None);
            prop_assert_eq!(&got, &messages);
        }
    }

    #[test]
    fn hand_fragmented_messages_are_reassembled(
        text in any::<String>(),
        binary in prop::collection::vec(any::<u8>(), 0..2048),
        is_text in any::<bool>(),
        frag_at in prop::collection::vec(any::<Index>(), 0..6),
        pings_after in prop::collection::vec(any::<bool>(), 6),
        split in prop::collection::vec(any::<Index>(), 0..6),
        client_sends in any::<bool>(),
    ) {
        let sender = if client_sends { Role::Client } else { Role::Server };
        let payload: Vec<u8> = if is_text { text.clone().into_bytes() } else { binary.clone() };
        // Fragment at arbitrary bytes, including inside UTF-8 characters.
        let at = cuts(&frag_at, payload.len());
        let frags = pieces(&payload, &at);
        let mut enc = Codec::new(sender);
        let mut wire = BytesMut::new();
        let mut expected = Vec::new();
        for (i, frag) in frags.iter().enumerate() {
            let opcode = match (i, is_text) { (0, true) => OpCode::Text, (0, false) => OpCode::Binary, _ => OpCode::Continuation };
            let last = i + 1 == frags.len();
            enc.encode(Frame::new(opcode, frag.to_vec()).with_fin(last), &mut wire).unwrap();
            if !last && pings_after[i] {
                let ping = Message::ping(format!("ping {i}").into_bytes());
                enc.encode(ping.clone(), &mut wire).unwrap();
                expected.push(ping);
            }
        }
        expected.push(if is_text { Message::text(text) } else { Message::binary(binary) });
        let split_at = cuts(&split, wire.len());
        let mut dec = Codec::new(peer(sender));
        let (got, err) = decode_pieces(&mut dec, &pieces(&wire, &split_at));
        prop_assert_eq!(err, None);
        prop_assert_eq!(got, expected);
    }
}

// ---------------------------------------------------------------------------
// Masking.

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn apply_mask_equals_the_bytewise_twin(
        data in prop::collection::vec(any::<u8>(), 0..1024),
        key in any::<[u8; 4]>(),
        offset in 0usize..(1 << 32),
        cut in any::<Index>(),
    ) {
        let mut fast = data.clone();
        let mut slow = data.clone();
        apply_mask(&mut fast, key, offset);
        mask_bytewise(&mut slow, key, offset);
        prop_assert_eq!(&fast, &slow);
        // Masking in two pieces with the running offset equals masking at once.
        let mut pieces = data.clone();
        let at = cut.index(data.len() + 1);
        let (a, b) = pieces.split_at_mut(at);
        apply_mask(a, key, offset);
        apply_mask(b, key, offset + at);
        prop_assert_eq!(&pieces, &slow);
        // Masking twice is the identity.
        apply_mask(&mut fast, key, offset);
        prop_assert_eq!(fast, data);
    }
}

// ---------------------------------------------------------------------------
// Incremental UTF-8 validation.

/// Byte strings that are often valid UTF-8, often nearly so.
fn maybe_utf8() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..64),
        any::<String>().prop_map(String::into_bytes),
        // Valid text with one byte replaced, or cut short.
        (any::<String>(), any::<Index>(), any::<u8>(), any::<bool>()).prop_map(|(s, at, byte, truncate)| {
            let mut bytes = s.into_bytes();
            if !bytes.is_empty() {
                let i = at.index(bytes.len());
                if truncate {
                    bytes.truncate(i);
                } else {
                    bytes[i] = byte;
                }
            }
            bytes
        }),
        // The classic edge cases, concatenated.
        prop::collection::vec(
            prop::sample::select(vec![
                &b"\xed\xa0\x80"[..],
                b"\xed\x9f\xbf",
                b"\xf4\x8f\xbf\xbf",
                b"\xf4\x90\x80\x80",
                b"\xc0\xaf",
                b"\xe0\x80\xaf",
                b"\xe0\xa0\x80",
                b"\xf0\x90\x80\x80",
                b"\xf0\x8f\xbf\xbf",
                b"\xc2\x80",
                b"\xdf\xbf",
                b"\x80",
                b"\xbf",
                b"\xfe",
                b"\xff",
                b"a",
                b"\xce\xba",
                b"\xf8\x88\x80\x80\x80",
            ]),
            0..6,
        )
        .prop_map(|parts| parts.concat()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    /// Fed in arbitrary pieces, the validator agrees with `std` on the whole,
    /// and fails at exactly the first piece after which the input can no
    /// longer become valid (RFC 6455 §8.1 fail-fast).
    #[test]
    fn utf8_validator_agrees_with_std(data in maybe_utf8(), split in prop::collection::vec(any::<Index>(), 0..6)) {
        let at = cuts(&split, data.len());
        let mut v = Utf8Validator::new();
        let mut end = 0;
        let mut failed = false;
        for piece in pieces(&data, &at) {
            end += piece.len();
            let fed = v.feed(piece);
            let hopeless = matches!(std::str::from_utf8(&data[..end]), Err(e) if e.error_len().is_some());
            prop_assert_eq!(fed.is_err(), hopeless, "after {} of {:x?}", end, data);
            if fed.is_err() {
                failed = true;
                break;
            }
        }
        let whole_ok = std::str::from_utf8(&data).is_ok();
        if failed {
            prop_assert!(!whole_ok);
        } else {
            prop_assert_eq!(v.finish().is_ok(), whole_ok, "{:x?}", data);
        }
    }
}

/// The check of the crate's one `unsafe` block (compressed text needs the
/// `deflate` feature).
#[cfg(feature = "deflate")]
mod safe_twin {
    use super::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// The safe twin of `Utf8Bytes::as_str` (the crate's one `unsafe`
        /// block, `from_utf8_unchecked`): whatever text message the decoder
        /// yields from arbitrary bytes split into arbitrary fragments, plain or
        /// compressed, std's checked conversion accepts the same bytes, and the
        /// decoder yields a text message exactly when they are valid UTF-8.
        #[test]
        fn decoded_text_is_exactly_what_std_accepts(
            data in maybe_utf8(),
            split in prop::collection::vec(any::<Index>(), 0..4),
            compressed in any::<bool>(),
        ) {
            let at = cuts(&split, data.len());
            let mut decoder = MessageDecoder::new(Role::Client, Limits::default());
            let payloads: Vec<Vec<u8>> = if compressed {
                decoder.set_inflater(Box::new(silverback::deflate::Decompressor::new(15, false)));
                let mut out = BytesMut::new();
                silverback::deflate::Compressor::new(1, 15, false).unwrap().compress(&data, &mut out);
                let cut = out.len() / 2;
                vec![out[..cut].to_vec(), out[cut..].to_vec()]
            } else {
                pieces(&data, &at).into_iter().map(<[u8]>::to_vec).collect()
            };
            let mut wire = BytesMut::new();
            for (i, payload) in payloads.iter().enumerate() {
                let header = FrameHeader {
                    fin: i + 1 == payloads.len(),
                    rsv: if compressed && i == 0 { silverback::protocol::RSV1 } else { 0 },
                    opcode: if i == 0 { OpCode::Text } else { OpCode::Continuation },
                    mask: None,
                    payload_len: payload.len() as u64,
                };
                silverback::protocol::encode_frame(&mut wire, &header, payload);
            }
            let valid = std::str::from_utf8(&data).is_ok();
            match decoder.decode(&mut wire) {
                Ok(Some(Message::Text(text))) => {
                    prop_assert!(valid);
                    prop_assert_eq!(text.as_str(), std::str::from_utf8(&data).unwrap());
                }
                Err(silverback::protocol::DecodeError::Protocol(ProtocolError::InvalidUtf8)) => prop_assert!(!valid),
                other => prop_assert!(false, "{:?}", other),
            }
        }
    }
}

// ---------------------------------------------------------------------------
// The decoder on hostile input.

/// A frame with arbitrary bits (reserved opcodes and RSV bits included), a
/// truthful length and an arbitrary mask, payload masked when masked.
fn raw_frame() -> impl Strategy<Value = Vec<u8>> {
    (
        any::<bool>(),
        0u8..8,
        prop::sample::select(vec![0u8, 0, 1, 1, 2, 2, 8, 9, 10, 3, 11]),
        prop::option::of(any::<[u8; 4]>()),
        prop_oneof![
            prop::collection::vec(any::<u8>(), 0..40),
            any::<String>().prop_map(String::into_bytes),
            (close_code(), "\\PC{0,10}").prop_map(|(c, r)| {
                let mut p = u16::from(c).to_be_bytes().to_vec();
                p.extend_from_slice(r.as_bytes());
                p
            }),
            prop::collection::vec(any::<u8>(), 120..300),
        ],
    )
        .prop_map(|(fin, rsv, op, mask, payload)| {
            let mut out = vec![u8::from(fin) << 7 | rsv << 4 | op];
            let m = if mask.is_some() { 0x80 } else { 0 };
            match payload.len() {
                n @ 0..=125 => out.push(m | n as u8),
                n => {
                    out.push(m | 126);
                    out.extend_from_slice(&(n as u16).to_be_bytes());
                }
            }
            match mask {
                Some(key) => {
                    out.extend_from_slice(&key);
                    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
                }
                None => out.extend_from_slice(&payload),
            }
            out
        })
}

fn hostile_input() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..512),
        (prop::collection::vec(raw_frame(), 0..8), prop::collection::vec(any::<u8>(), 0..16))
            .prop_map(|(frames, garbage)| [frames.concat(), garbage].concat()),
    ]
}

fn limits() -> impl Strategy<Value = Limits> {
    prop_oneof![
        Just(Limits::default()),
        (1usize..400, 1usize..800)
            .prop_map(|(frame, message)| Limits::default().max_frame_size(frame).max_message_size(message)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Never panics, for either role, and the outcome (messages, then the
    /// first error) does not depend on how the bytes are split.
    #[test]
    fn decoder_never_panics_and_ignores_split_points(
        data in hostile_input(),
        split in prop::collection::vec(any::<Index>(), 0..8),
        server in any::<bool>(),
        limits in limits(),
    ) {
        let role = if server { Role::Server } else { Role::Client };
        let whole = decode_pieces(&mut Codec::with_limits(role, limits), &[&data[..]]);
        let at = cuts(&split, data.len());
        let split_up = decode_pieces(&mut Codec::with_limits(role, limits), &pieces(&data, &at));
        prop_assert_eq!(&whole, &split_up);
        let bytewise: Vec<&[u8]> = data.chunks(1).collect();
        let one_by_one = decode_pieces(&mut Codec::with_limits(role, limits), &bytewise);
        prop_assert_eq!(&whole, &one_by_one);
        // The pure decoder directly, and decode_eof, do not panic either.
        let mut dec = MessageDecoder::new(role, limits);
        let mut buf = BytesMut::from(&data[..]);
        for _ in 0..=data.len() {
            match dec.decode(&mut buf) {
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => break,
            }
        }
        let mut codec = Codec::with_limits(role, limits);
        let mut buf = BytesMut::from(&data[..]);
        for _ in 0..=data.len() {
            match codec.decode_eof(&mut buf) {
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => break,
            }
        }
    }
}

/// The byte-at-a-time reference for `apply_mask` (RFC 6455 §5.3):
/// octet i is XORed with octet i mod 4 of the key.
fn mask_bytewise(buf: &mut [u8], key: [u8; 4], offset: usize) {
    for (i, b) in buf.iter_mut().enumerate() {
        *b ^= key[(offset + i) % 4];
    }
}
