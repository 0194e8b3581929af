use bytes::{Bytes, BytesMut};

use super::Event;
use super::MessageDecoder;
use crate::protocol::{
    apply_mask, CapacityError, CloseCode, CloseFrame, DecodeError as Error, Limits, Message, ProtocolError, Role,
};

fn decode_all(role: Role, limits: Limits, wire: &[u8]) -> Result<Vec<Message>, Error> {
    let mut dec = MessageDecoder::new(role, limits);
    let mut buf = BytesMut::from(wire);
    let mut out = Vec::new();
    while let Some(msg) = dec.decode(&mut buf)? {
        out.push(msg);
    }
    assert!(buf.is_empty(), "left over: {buf:?}");
    Ok(out)
}

/// Feeds one byte at a time, as a slow network would.
fn decode_dribbled(role: Role, wire: &[u8]) -> Result<Vec<Message>, Error> {
    let mut dec = MessageDecoder::new(role, Limits::default());
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for &b in wire {
        buf.extend_from_slice(&[b]);
        while let Some(msg) = dec.decode(&mut buf)? {
            out.push(msg);
        }
    }
    Ok(out)
}

fn masked(first: u8, payload: &[u8]) -> Vec<u8> {
    let key = [0x37, 0xfa, 0x21, 0x3d];
    let mut out = vec![first];
    match payload.len() {
        n @ 0..=125 => out.push(0x80 | n as u8),
        n @ 126..=0xFFFF => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&key);
    let mut body = payload.to_vec();
    apply_mask(&mut body, key, 0);
    out.extend_from_slice(&body);
    out
}

fn text(s: &str) -> Message {
    Message::text(s)
}

/// RFC 6455 §5.7 examples, as a client receives them (unmasked) and as a
/// server receives them (masked), whole and dribbled.
#[test]
fn rfc_5_7_examples() {
    let big = vec![0xAB; 65536];
    let table: Vec<(Role, Vec<u8>, Vec<Message>)> = vec![
        (Role::Client, b"\x81\x05Hello".to_vec(), vec![text("Hello")]),
        (Role::Server, b"\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58".to_vec(), vec![text("Hello")]),
        (Role::Client, b"\x01\x03Hel\x80\x02lo".to_vec(), vec![text("Hello")]),
        (Role::Client, b"\x89\x05Hello".to_vec(), vec![Message::ping(&b"Hello"[..])]),
        (Role::Server, b"\x8a\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58".to_vec(), vec![Message::pong(&b"Hello"[..])]),
        (Role::Client, [&b"\x82\x7E\x01\x00"[..], &[7; 256]].concat(), vec![Message::binary(vec![7; 256])]),
        (
            Role::Client,
            [&b"\x82\x7F\x00\x00\x00\x00\x00\x01\x00\x00"[..], &big].concat(),
            vec![Message::binary(big.clone())],
        ),
    ];
    for (role, wire, expected) in table {
        assert_eq!(decode_all(role, Limits::default(), &wire).unwrap(), expected);
        assert_eq!(decode_dribbled(role, &wire).unwrap(), expected);
    }
}

#[test]
fn control_frames_may_arrive_between_fragments() {
    let wire = [masked(0x01, b"Hel"), masked(0x89, b"p"), masked(0x00, b"l"), masked(0x80, b"o")].concat();
    let msgs = decode_all(Role::Server, Limits::default(), &wire).unwrap();
    assert_eq!(msgs, vec![Message::ping(&b"p"[..]), text("Hello")]);
}

#[test]
fn close_frames_are_parsed() {
    let wire = masked(0x88, b"\x03\xe8bye");
    let msgs = decode_all(Role::Server, Limits::default(), &wire).unwrap();
    assert_eq!(msgs, vec![Message::Close(Some(CloseFrame::new(CloseCode::NORMAL, "bye")))]);
    let empty = decode_all(Role::Server, Limits::default(), &masked(0x88, b"")).unwrap();
    assert_eq!(empty, vec![Message::Close(None)]);
}

#[test]
fn protocol_violations_are_typed() {
    let table: Vec<(Vec<u8>, ProtocolError)> = vec![
        (masked(0x80, b"x"), ProtocolError::UnexpectedContinuation),
        ([masked(0x01, b"a"), masked(0x81, b"b")].concat(), ProtocolError::ExpectedContinuation),
        ([masked(0x02, b"a"), masked(0x82, b"b")].concat(), ProtocolError::ExpectedContinuation),
        (masked(0x83, b""), ProtocolError::ReservedOpcode(3)),
        (masked(0xC1, b"x"), ProtocolError::ReservedBits(4)),
        (masked(0xA1, b"x"), ProtocolError::ReservedBits(2)),
        (b"\x81\x01x".to_vec(), ProtocolError::UnmaskedFrame),
        (masked(0x09, b""), ProtocolError::FragmentedControlFrame),
        (masked(0x89, &[0; 126]), ProtocolError::ControlFrameTooLong),
        (masked(0x88, b"\x03"), ProtocolError::InvalidClosePayload),
        (masked(0x88, b"\x03\xed"), ProtocolError::InvalidCloseCode(1005)),
        (masked(0x88, b"\x03\xe8\xff"), ProtocolError::InvalidUtf8),
        (masked(0x81, b"\xce\xba\xe1"), ProtocolError::InvalidUtf8),
        ([masked(0x01, b"\xce"), masked(0x80, b"\xff")].concat(), ProtocolError::InvalidUtf8),
    ];
    for (wire, expected) in table {
        match decode_all(Role::Server, Limits::default(), &wire) {
            Err(Error::Protocol(e)) => assert_eq!(e, expected, "{wire:x?}"),
            other => panic!("{wire:x?}: expected {expected:?}, got {other:?}"),
        }
    }
    match decode_all(Role::Client, Limits::default(), &masked(0x81, b"x")) {
        Err(Error::Protocol(ProtocolError::MaskedFrame)) => {}
        other => panic!("{other:?}"),
    }
}

/// Invalid UTF-8 fails as soon as the bad bytes arrive, before the frame is
/// complete (Autobahn 6.4.3/6.4.4 want this "fail fast").
#[test]
fn invalid_utf8_fails_inside_a_partial_frame() {
    let mut payload = "κόσμε".as_bytes().to_vec();
    payload.extend_from_slice(b"\xf4\x90\x80\x80");
    payload.extend_from_slice(&[b'a'; 100]);
    let wire = masked(0x81, &payload);
    let mut dec = MessageDecoder::new(Role::Server, Limits::default());
    let mut buf = BytesMut::from(&wire[..6 + 10 + 2]);
    match dec.decode(&mut buf) {
        Err(Error::Protocol(ProtocolError::InvalidUtf8)) => {}
        other => panic!("{other:?}"),
    }
}

#[test]
fn limits_apply_before_buffering() {
    let limits = Limits::default().max_frame_size(100).max_message_size(150);
    let mut dec = MessageDecoder::new(Role::Client, limits);
    // A 2^62-byte announcement fails on the header alone.
    let mut buf = BytesMut::from(&b"\x82\x7F\x40\x00\x00\x00\x00\x00\x00\x00"[..]);
    match dec.decode(&mut buf) {
        Err(Error::Capacity(CapacityError::FrameTooLarge { len, max: 100 })) => assert_eq!(len, 1 << 62),
        other => panic!("{other:?}"),
    }
    assert!(buf.capacity() < 1024, "reserved {}", buf.capacity());

    let wire = [&b"\x02\x64"[..], &[0; 100], b"\x80\x64", &[0; 100]].concat();
    match decode_all(Role::Client, limits, &wire) {
        Err(Error::Capacity(CapacityError::MessageTooLarge { len: 200, max: 150 })) => {}
        other => panic!("{other:?}"),
    }
}

#[test]
fn single_frame_messages_are_not_copied() {
    let wire = b"\x82\x05hello\x82\x05world";
    let mut buf = BytesMut::from(&wire[..]);
    let start = buf.as_ptr() as usize;
    let mut dec = MessageDecoder::new(Role::Client, Limits::default());
    let Some(Message::Binary(first)) = dec.decode(&mut buf).unwrap() else { panic!() };
    assert_eq!(first, Bytes::from_static(b"hello"));
    assert_eq!(first.as_ptr() as usize, start + 2);
}

#[test]
fn empty_and_zero_length_fragments() {
    let wire = [masked(0x01, b""), masked(0x00, b""), masked(0x80, b"")].concat();
    assert_eq!(decode_all(Role::Server, Limits::default(), &wire).unwrap(), vec![text("")]);
}

/// A header alone must not make us allocate what it announces, even with
/// the limits removed (a 2^62-byte reservation would abort the process).
#[test]
fn huge_announcement_reserves_little_even_without_limits() {
    let mut dec = MessageDecoder::new(Role::Client, Limits::unlimited());
    let mut buf = BytesMut::from(&b"\x82\x7F\x40\x00\x00\x00\x00\x00\x00\x00abc"[..]);
    assert!(dec.decode(&mut buf).unwrap().is_none());
    assert!(buf.capacity() <= 2 * super::EXACT_RESERVE_MAX, "reserved {}", buf.capacity());
}

/// Payloads larger than the exact-reservation bound still decode intact
/// when they arrive in pieces, with the buffer growing as data arrives.
#[test]
fn large_frames_arriving_in_pieces_decode_intact() {
    let payload: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    let mut wire = b"\x82\x7F".to_vec();
    wire.extend_from_slice(&(payload.len() as u64).to_be_bytes());
    wire.extend_from_slice(&payload);
    let mut dec = MessageDecoder::new(Role::Client, Limits::default());
    let mut buf = BytesMut::new();
    let mut got = None;
    for piece in wire.chunks(65536) {
        buf.extend_from_slice(piece);
        if let Some(msg) = dec.decode(&mut buf).unwrap() {
            got = Some(msg);
            break;
        }
        assert!(
            buf.capacity() <= 4 * buf.len() + 2 * super::EXACT_RESERVE_MAX,
            "cap {} len {}",
            buf.capacity(),
            buf.len()
        );
    }
    assert_eq!(got, Some(Message::binary(payload)));
}

/// Within the limits too, a header alone costs little: a 16 MiB frame
/// announced with nothing behind it reserves at most the exact-reservation
/// bound, and the buffer then grows with what actually arrives.
#[test]
fn allowed_large_announcement_reserves_in_proportion_to_data() {
    let mut dec = MessageDecoder::new(Role::Client, Limits::default());
    let mut wire = b"\x82\x7F".to_vec();
    wire.extend_from_slice(&(16u64 << 20).to_be_bytes());
    let mut buf = BytesMut::from(&wire[..]);
    assert!(dec.decode(&mut buf).unwrap().is_none());
    assert!(buf.capacity() <= 2 * super::EXACT_RESERVE_MAX, "reserved {}", buf.capacity());
    buf.extend_from_slice(&[0u8; 100_000]);
    assert!(dec.decode(&mut buf).unwrap().is_none());
    assert!(buf.capacity() <= 2 * buf.len() + 2 * super::EXACT_RESERVE_MAX, "cap {} len {}", buf.capacity(), buf.len());
}

/// A streamed message as the tests compare it: consecutive data merged.
#[derive(Debug, PartialEq)]
enum Ev {
    Start { text: bool },
    Data(Vec<u8>),
    End,
    Control(Message),
}

/// Feeds `wire` `piece` bytes at a time to `decode_chunk`, collecting the
/// events; every data event is checked to be non-empty.
fn stream(dec: &mut MessageDecoder, wire: &[u8], piece: usize) -> Result<Vec<Ev>, Error> {
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for chunk in wire.chunks(piece.max(1)) {
        buf.extend_from_slice(chunk);
        while let Some(event) = dec.decode_chunk(&mut buf)? {
            push_event(&mut out, event);
        }
    }
    assert!(buf.is_empty(), "left over: {buf:?}");
    Ok(out)
}

fn push_event(out: &mut Vec<Ev>, event: Event) {
    match event {
        Event::Start { text } => out.push(Ev::Start { text }),
        Event::Data(data) => {
            assert!(!data.is_empty(), "empty data event");
            match out.last_mut() {
                Some(Ev::Data(prev)) => prev.extend_from_slice(&data),
                _ => out.push(Ev::Data(data.to_vec())),
            }
        }
        Event::End => out.push(Ev::End),
        Event::Control(msg) => out.push(Ev::Control(msg)),
    }
}

fn streamed(text: bool, payload: &[u8]) -> Vec<Ev> {
    let mut out = vec![Ev::Start { text }];
    if !payload.is_empty() {
        out.push(Ev::Data(payload.to_vec()));
    }
    out.push(Ev::End);
    out
}

/// The RFC 6455 §5.7 data examples streamed, whole and byte by byte.
#[test]
fn streaming_rfc_5_7_examples() {
    let big = vec![0xAB; 65536];
    let table: Vec<(Role, Vec<u8>, Vec<Ev>)> = vec![
        (Role::Client, b"\x81\x05Hello".to_vec(), streamed(true, b"Hello")),
        (Role::Server, b"\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58".to_vec(), streamed(true, b"Hello")),
        (Role::Client, b"\x01\x03Hel\x80\x02lo".to_vec(), streamed(true, b"Hello")),
        (Role::Client, b"\x89\x05Hello".to_vec(), vec![Ev::Control(Message::ping(&b"Hello"[..]))]),
        (Role::Client, [&b"\x82\x7E\x01\x00"[..], &[7; 256]].concat(), streamed(false, &[7; 256])),
        (Role::Client, [&b"\x82\x7F\x00\x00\x00\x00\x00\x01\x00\x00"[..], &big].concat(), streamed(false, &big)),
        (Role::Server, [masked(0x01, b""), masked(0x00, b""), masked(0x80, b"")].concat(), streamed(true, b"")),
    ];
    for (role, wire, expected) in table {
        for piece in [usize::MAX, 1, 7] {
            let mut dec = MessageDecoder::new(role, Limits::default());
            assert_eq!(stream(&mut dec, &wire, piece).unwrap(), expected, "{wire:x?} in pieces of {piece}");
        }
    }
}

/// Payload is handed out as it arrives, inside a frame, and nothing is
/// kept back: the buffer is empty after each piece.
#[test]
fn streaming_hands_out_partial_frames_at_once() {
    let payload: Vec<u8> = (0..1000u32).map(|i| (i % 251) as u8).collect();
    let wire = masked(0x82, &payload);
    let mut dec = MessageDecoder::new(Role::Server, Limits::default());
    let mut buf = BytesMut::from(&wire[..8 + 100]);
    assert_eq!(dec.decode_chunk(&mut buf).unwrap(), Some(Event::Start { text: false }));
    let mut got = Vec::new();
    let mut fed = 8 + 100;
    loop {
        match dec.decode_chunk(&mut buf).unwrap() {
            Some(Event::Data(data)) => {
                assert!(buf.is_empty());
                got.extend_from_slice(&data);
                assert_eq!(got.len(), fed - 8, "everything received so far is handed out");
            }
            Some(Event::End) => break,
            None => {
                let next = (fed + 100).min(wire.len());
                buf.extend_from_slice(&wire[fed..next]);
                fed = next;
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(got, payload);
    assert_eq!(dec.decode_chunk(&mut buf).unwrap(), None);
}

#[test]
fn streaming_applies_the_frame_limit_not_the_message_limit() {
    let limits = Limits::default().max_frame_size(100).max_message_size(150);
    let wire = [masked(0x02, &[1; 100]), masked(0x00, &[2; 100]), masked(0x80, &[3; 100])].concat();
    let mut dec = MessageDecoder::new(Role::Server, limits);
    let expected = streamed(false, &[[1; 100], [2; 100], [3; 100]].concat());
    assert_eq!(stream(&mut dec, &wire, 37).unwrap(), expected);
    let mut dec = MessageDecoder::new(Role::Server, limits);
    match stream(&mut dec, &masked(0x82, &[0; 101]), usize::MAX) {
        Err(Error::Capacity(CapacityError::FrameTooLarge { len: 101, max: 100 })) => {}
        other => panic!("{other:?}"),
    }
}

#[test]
fn streaming_control_frames_arrive_between_fragments() {
    let wire =
        [masked(0x01, b"Hel"), masked(0x89, b"p"), masked(0x00, b"l"), masked(0x88, b"\x03\xe8"), masked(0x80, b"o")]
            .concat();
    let mut dec = MessageDecoder::new(Role::Server, Limits::default());
    let close = Message::Close(Some(CloseFrame::new(CloseCode::NORMAL, "")));
    let expected = vec![
        Ev::Start { text: true },
        Ev::Data(b"Hel".to_vec()),
        Ev::Control(Message::ping(&b"p"[..])),
        Ev::Data(b"l".to_vec()),
        Ev::Control(close),
        Ev::Data(b"o".to_vec()),
        Ev::End,
    ];
    for piece in [usize::MAX, 1] {
        let mut dec2 = MessageDecoder::new(Role::Server, Limits::default());
        assert_eq!(stream(&mut dec2, &wire, piece).unwrap(), expected);
    }
    // Fragment rules hold as when gathering.
    let bad = [masked(0x01, b"a"), masked(0x81, b"b")].concat();
    assert!(matches!(stream(&mut dec, &bad, 1), Err(Error::Protocol(ProtocolError::ExpectedContinuation))));
}

/// Invalid UTF-8 fails as soon as it arrives, before the bad bytes (or any
/// byte of the piece holding them) are handed out.
#[test]
fn streaming_invalid_utf8_fails_fast() {
    let mut payload = "κόσμε".as_bytes().to_vec();
    payload.extend_from_slice(b"\xf4\x90\x80\x80");
    payload.extend_from_slice(&[b'a'; 100]);
    let wire = masked(0x81, &payload);
    let mut dec = MessageDecoder::new(Role::Server, Limits::default());
    let mut buf = BytesMut::from(&wire[..6 + 4]);
    assert!(matches!(dec.decode_chunk(&mut buf).unwrap(), Some(Event::Start { text: true, .. })));
    assert_eq!(dec.decode_chunk(&mut buf).unwrap(), Some(Event::Data(BytesMut::from("κό".as_bytes()))));
    buf.extend_from_slice(&wire[10..6 + 12]);
    match dec.decode_chunk(&mut buf) {
        Err(Error::Protocol(ProtocolError::InvalidUtf8)) => {}
        other => panic!("{other:?}"),
    }
    // A message may not end inside a character, split across fragments.
    let wire = [masked(0x01, b"\xce"), masked(0x80, b"")].concat();
    let mut dec = MessageDecoder::new(Role::Server, Limits::default());
    assert!(matches!(stream(&mut dec, &wire, 1), Err(Error::Protocol(ProtocolError::InvalidUtf8))));
    // Split across fragments but whole, it is fine.
    let wire = [masked(0x01, b"\xce"), masked(0x80, b"\xba")].concat();
    let mut dec = MessageDecoder::new(Role::Server, Limits::default());
    let events = stream(&mut dec, &wire, usize::MAX).unwrap();
    assert_eq!(events, streamed(true, "κ".as_bytes()));
}

/// A message that `decode` began to gather (a ping came out between its
/// fragments, or its first frame was half read) continues as a stream.
#[test]
fn streaming_continues_a_message_that_decode_began() {
    let wire = [masked(0x01, b"Hel"), masked(0x89, b"p"), masked(0x80, b"lo")].concat();
    let mut dec = MessageDecoder::new(Role::Server, Limits::default());
    let mut buf = BytesMut::from(&wire[..]);
    assert_eq!(dec.decode(&mut buf).unwrap(), Some(Message::ping(&b"p"[..])));
    let mut events = Vec::new();
    while let Some(event) = dec.decode_chunk(&mut buf).unwrap() {
        push_event(&mut events, event);
    }
    assert_eq!(events, streamed(true, b"Hello"));

    let wire = masked(0x82, &[5; 300]);
    let mut dec = MessageDecoder::new(Role::Server, Limits::default());
    let mut buf = BytesMut::from(&wire[..150]);
    assert_eq!(dec.decode(&mut buf).unwrap(), None);
    let mut events = Vec::new();
    while let Some(event) = dec.decode_chunk(&mut buf).unwrap() {
        push_event(&mut events, event);
    }
    buf.extend_from_slice(&wire[150..]);
    while let Some(event) = dec.decode_chunk(&mut buf).unwrap() {
        push_event(&mut events, event);
    }
    assert_eq!(events, streamed(false, &[5; 300]));
    // And whole messages decode as before afterwards.
    let mut buf = BytesMut::from(&masked(0x81, b"next")[..]);
    assert_eq!(dec.decode(&mut buf).unwrap(), Some(text("next")));
}
