//! Arbitrary bytes into the message decoder, for both roles, with and without
//! a permessage-deflate decompressor, under small limits so that the limit
//! paths (1009) are reached.
//!
//! Input: `[config, split, bytes...]`. `config` picks the limits and the
//! decompressor's window and context takeover; the bytes are decoded three
//! ways: all at once, in two pieces cut at `split`, and one byte at a time.
//!
//! Asserts: no panic; every message is well formed (text is UTF-8, data
//! within `max_message_size`, control payloads within 125 bytes, close codes
//! allowed on the wire); the buffer's capacity stays proportional to the
//! input and the frame limit, whatever length a header announces; and the
//! three ways of feeding yield the same messages and the same outcome (the
//! decoder does not depend on how the bytes were cut).
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use silverback::deflate::Decompressor;
use silverback::protocol::MessageDecoder;
use silverback::{Limits, Message, Role};
use silverback_fuzz::{check_message, pick};

/// (max_frame_size, max_message_size) pairs, smallest first.
const LIMITS: [(usize, usize); 4] = [(125, 256), (64, 64), (1 << 10, 1 << 12), (1 << 16, 1 << 17)];

/// What a run produced: the messages, and whether it ended in an error.
type Outcome = (Vec<Message>, bool);

fuzz_target!(|data: &[u8]| {
    let [config, split, data @ ..] = data else { return };
    let (max_frame, max_message) = pick(&LIMITS, config & 3);
    let limits = Limits::default().max_frame_size(max_frame).max_message_size(max_message);
    let window_bits = 9 + (config >> 2 & 7) % 7;
    let no_context_takeover = config & 0x20 != 0;
    for role in [Role::Client, Role::Server] {
        for deflate in [false, true] {
            let new_decoder = || {
                let mut decoder = MessageDecoder::new(role, limits);
                if deflate {
                    decoder.set_inflater(Box::new(Decompressor::new(window_bits, no_context_takeover)));
                }
                decoder
            };
            let cut = usize::from(*split).min(data.len());
            let whole = run(new_decoder(), limits, data, [&data[..]].into_iter());
            let halves = run(new_decoder(), limits, data, [&data[..cut], &data[cut..]].into_iter());
            assert_eq!(whole, halves, "two pieces cut at {cut} decode differently from the whole");
            if data.len() <= 4096 {
                let bytewise = run(new_decoder(), limits, data, data.chunks(1));
                assert_eq!(whole, bytewise, "byte-at-a-time decodes differently from the whole");
            }
        }
    }
});

/// Feeds `pieces` to `decoder`, decoding after each, until an error.
fn run<'a>(
    mut decoder: MessageDecoder,
    limits: Limits,
    data: &[u8],
    pieces: impl Iterator<Item = &'a [u8]>,
) -> Outcome {
    let mut messages = Vec::new();
    let mut buf = BytesMut::new();
    let bound = 4 * (data.len() + limits.get_max_frame_size()) + 4096;
    for piece in pieces {
        buf.extend_from_slice(piece);
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(msg)) => {
                    check_message(&msg, limits);
                    messages.push(msg);
                }
                Ok(None) => break,
                Err(_) => return (messages, true),
            }
        }
        assert!(
            buf.capacity() <= bound,
            "buffer capacity {} above {bound} for {} input bytes",
            buf.capacity(),
            data.len()
        );
    }
    (messages, false)
}
