//! Round trips through the whole core: negotiate, compress, split into
//! frames, decompress.

use bytes::BytesMut;
use proptest::prelude::*;
use proptest::sample::Index;

use super::*;
use crate::protocol::Role;

/// A payload built from pieces: random bytes, text-like bytes, and copies
/// of earlier content (which give the compressor matches at every distance,
/// beyond small windows too).
fn payload() -> impl Strategy<Value = Vec<u8>> {
    let piece = (0u8..3, prop::collection::vec(any::<u8>(), 0..1500), any::<Index>(), any::<Index>());
    prop::collection::vec(piece, 0..8).prop_map(|pieces| {
        let mut out = Vec::new();
        for (kind, bytes, from, len) in pieces {
            match kind {
                0 => out.extend_from_slice(&bytes),
                1 => out.extend(bytes.iter().map(|b| b"etaoin shrdlu{}\":,"[usize::from(b % 18)])),
                _ if !out.is_empty() => {
                    let start = from.index(out.len());
                    let end = start + len.index(out.len() - start) + 1;
                    out.extend_from_within(start..end);
                }
                _ => {}
            }
        }
        out
    })
}

/// Compresses each message, cuts its payload at the given points, and
/// decompresses the pieces; returns the messages as received.
fn round_trip(
    compressor: &mut Compressor,
    decompressor: &mut Decompressor,
    messages: &[Vec<u8>],
    cuts: &[Index],
) -> Result<Vec<Vec<u8>>, InflateError> {
    let mut received = Vec::new();
    for message in messages {
        let mut wire = BytesMut::new();
        compressor.compress(message, &mut wire);
        let mut points: Vec<usize> = cuts.iter().map(|cut| cut.index(wire.len() + 1)).collect();
        points.sort_unstable();
        let mut out = BytesMut::new();
        let mut start = 0;
        for end in points.into_iter().chain([wire.len()]) {
            decompressor.decompress(&wire[start..end], &mut out, message.len())?;
            start = end;
        }
        decompressor.finish_message(&mut out, message.len())?;
        received.push(out.to_vec());
    }
    Ok(received)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    /// decompress(compress(m)) == m for message sequences, with and without
    /// context takeover, every window the backend compresses with (the
    /// decompressor gets exactly that window, so a compressor that reached
    /// further back would fail), every level, and payloads cut into frames
    /// anywhere. The limit is each message's exact length.
    #[test]
    fn compress_then_decompress(
        messages in prop::collection::vec(payload(), 1..5),
        window_bits in 9u8..=15,
        level in 0u8..=9,
        no_context_takeover: bool,
        cuts in prop::collection::vec(any::<Index>(), 0..4),
    ) {
        let mut compressor = Compressor::new(level, window_bits, no_context_takeover).unwrap();
        let mut decompressor = Decompressor::new(window_bits, no_context_takeover);
        prop_assert_eq!(&round_trip(&mut compressor, &mut decompressor, &messages, &cuts)?, &messages);
        prop_assert_eq!(compressor.is_allocated(), !no_context_takeover && messages.iter().any(|m| !m.is_empty()));
        prop_assert!(!(no_context_takeover && decompressor.is_allocated()));
    }

    /// Long conversations with context takeover at level 1 (silverback's own
    /// encoder) and at level 6 (zlib-rs): windows slide many times, and the
    /// decompressor hands the window it kept to a fresh state as its
    /// dictionary at every message; everything decodes.
    #[test]
    fn long_conversations_round_trip(
        messages in prop::collection::vec(payload(), 10..40),
        window_bits in 9u8..=15,
        level in prop::sample::select(vec![1u8, 6]),
        cuts in prop::collection::vec(any::<Index>(), 0..4),
    ) {
        let mut compressor = Compressor::new(level, window_bits, false).unwrap();
        let mut decompressor = Decompressor::new(window_bits, false);
        prop_assert_eq!(&round_trip(&mut compressor, &mut decompressor, &messages, &cuts)?, &messages);
    }

    /// The same, with the connection going idle at random points between and
    /// within messages: the inflate state is then dropped between messages
    /// and rebuilt from the kept window, and kept within one.
    #[test]
    fn idle_connections_rebuild_their_state(
        messages in prop::collection::vec(payload(), 5..30),
        window_bits in 9u8..=15,
        idles in prop::collection::vec(any::<(bool, bool)>(), 30),
    ) {
        let mut compressor = Compressor::new(1, window_bits, false).unwrap();
        let mut decompressor = Decompressor::new(window_bits, false);
        for (message, (between, within)) in messages.iter().zip(idles) {
            let mut wire = BytesMut::new();
            compressor.compress(message, &mut wire);
            let mut out = BytesMut::new();
            let half = wire.len() / 2;
            decompressor.decompress(&wire[..half], &mut out, usize::MAX)?;
            if within {
                decompressor.idle();
            }
            decompressor.decompress(&wire[half..], &mut out, usize::MAX)?;
            decompressor.finish_message(&mut out, usize::MAX)?;
            prop_assert_eq!(&out[..], &message[..]);
            if between {
                decompressor.idle();
            }
        }
    }

    /// The same through negotiation: each side's compressor feeds the
    /// other's decompressor, whatever both were configured with.
    #[test]
    fn negotiated_halves_fit(
        messages in prop::collection::vec(payload(), 1..4),
        client_bits in 8u8..=15,
        server_bits in 8u8..=15,
        client_nct: bool,
        server_nct: bool,
        cuts in prop::collection::vec(any::<Index>(), 0..3),
    ) {
        let client = DeflateConfig::new()
            .client_max_window_bits(client_bits)
            .server_max_window_bits(server_bits)
            .client_no_context_takeover(client_nct);
        let server = DeflateConfig::new().server_no_context_takeover(server_nct);
        let offer = client_offer(&client);
        let (answer, agreed) = server_negotiate(&server, &[offer.as_bytes()]).unwrap().unwrap();
        prop_assert_eq!(client_accept(&client, &[answer.as_bytes()]), Ok(Some(agreed)));
        for (from, to) in [(Role::Client, Role::Server), (Role::Server, Role::Client)] {
            let mut decompressor = agreed.decompressor(to);
            match agreed.compressor(from, 1) {
                Some(mut compressor) => {
                    prop_assert!(compressor.window_bits() <= decompressor.window_bits());
                    prop_assert_eq!(&round_trip(&mut compressor, &mut decompressor, &messages, &cuts)?, &messages);
                }
                None => prop_assert_eq!(agreed.compressor_window_bits(from), 8),
            }
        }
    }
}

/// RFC 7692 §7.2.3.2 end to end: a repeated "Hello" shrinks to a
/// back-reference, which decodes only with the earlier messages' window.
#[test]
fn context_takeover_shrinks_repeated_messages() {
    let mut compressor = Compressor::new(6, 15, false).unwrap();
    let mut decompressor = Decompressor::new(15, false);
    let messages = vec![b"Hello".to_vec(); 3];
    assert_eq!(round_trip(&mut compressor, &mut decompressor, &messages, &[]).unwrap(), messages);
    let mut wire = BytesMut::new();
    compressor.compress(b"Hello", &mut wire);
    assert!(wire.len() <= 5, "{wire:x?}");
    let mut out = BytesMut::new();
    let mut fresh = Decompressor::new(15, false);
    let result = fresh.decompress(&wire, &mut out, 5).and_then(|()| fresh.finish_message(&mut out, 5));
    assert_eq!(result, Err(InflateError::Corrupt));
    let mut out = BytesMut::new();
    decompressor.decompress(&wire, &mut out, 5).unwrap();
    decompressor.finish_message(&mut out, 5).unwrap();
    assert_eq!(&out[..], b"Hello");
}
