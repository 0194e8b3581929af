//! permessage-deflate's `Decompressor` and `Compressor` (RFC 7692 §7.2).
//!
//! Two parts, from one structured input:
//!
//! 1. Arbitrary bytes as the frames of compressed messages, fed in
//!    fuzz-chosen pieces to a `Decompressor` with a small `max_len`. Asserts:
//!    no panic; on success the message is at most `max_len` bytes, on
//!    `TooLarge` at most one byte more; the output's capacity never exceeds
//!    `max_len + 1` (a decompression bomb costs no more than the limit); the
//!    state is freed after an error and, without context takeover, after
//!    each message.
//! 2. Round trip: fuzz messages compressed by a `Compressor` (level 0..=9,
//!    window 2^9..2^15, context takeover on or off) inflate back to the same
//!    bytes through a `Decompressor` with a window at least as large, split
//!    at a fuzz-chosen point; a limit of exactly the message's length passes
//!    and, for the first message, one byte less fails with `TooLarge`.
#![no_main]

use arbitrary::Arbitrary;
use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use silverback::deflate::{Compressor, Decompressor, InflateError};

#[derive(Arbitrary, Debug)]
struct Input {
    window_bits: u8,
    no_context_takeover: bool,
    max_len: u16,
    /// Compressed messages, each a list of frame payloads.
    raw: Vec<Vec<Vec<u8>>>,
    level: u8,
    compressor_bits: u8,
    compressor_no_context_takeover: bool,
    /// Messages to compress, each with where to cut its compressed form.
    plain: Vec<(Vec<u8>, u16)>,
}

fuzz_target!(|input: Input| {
    raw(&input);
    round_trip(&input);
});

fn raw(input: &Input) {
    let max_len = usize::from(input.max_len % 4096);
    let mut d = Decompressor::new(input.window_bits, input.no_context_takeover);
    assert!((9..=15).contains(&d.window_bits()), "window {} out of range", d.window_bits());
    for frames in &input.raw {
        let mut out = BytesMut::new();
        let mut result = Ok(());
        for frame in frames {
            result = d.decompress(frame, &mut out, max_len);
            check_bounds(&out, max_len, result);
            if result.is_err() {
                break;
            }
        }
        if result.is_ok() {
            result = d.finish_message(&mut out, max_len);
            check_bounds(&out, max_len, result);
            if input.no_context_takeover {
                assert!(!d.is_allocated(), "state kept without context takeover");
            }
        }
        if result.is_err() {
            assert!(!d.is_allocated(), "state kept after an error");
        }
    }
}

fn check_bounds(out: &BytesMut, max_len: usize, result: Result<(), InflateError>) {
    match result {
        Ok(()) => assert!(out.len() <= max_len, "{} bytes out, limit {max_len}", out.len()),
        Err(InflateError::TooLarge) => {
            assert!(out.len() <= max_len + 1, "{} bytes out on TooLarge, limit {max_len}", out.len())
        }
        Err(_) => {}
    }
    assert!(out.capacity() <= max_len + 1, "capacity {} for limit {max_len}", out.capacity());
}

fn round_trip(input: &Input) {
    let c_bits = 9 + input.compressor_bits % 7;
    let c_nct = input.compressor_no_context_takeover;
    let mut c = Compressor::new(input.level % 10, c_bits, c_nct).expect("valid compressor parameters");
    // A larger window than the compressor's always decodes its output; the
    // decompressor may keep its state even if the compressor does not.
    let d_bits = c_bits.max(9 + input.window_bits % 7);
    let d_nct = c_nct && input.no_context_takeover;
    let mut d = Decompressor::new(d_bits, d_nct);
    for (i, (plain, cut)) in input.plain.iter().enumerate() {
        let mut compressed = BytesMut::new();
        c.compress(plain, &mut compressed);
        if c_nct {
            assert!(!c.is_allocated(), "compressor state kept without context takeover");
        }
        if i == 0 && !plain.is_empty() {
            let mut fresh = Decompressor::new(d_bits, d_nct);
            let mut out = BytesMut::new();
            let short = plain.len() - 1;
            let result =
                fresh.decompress(&compressed, &mut out, short).and_then(|()| fresh.finish_message(&mut out, short));
            assert_eq!(result, Err(InflateError::TooLarge), "{} bytes passed a limit of {short}", plain.len());
        }
        let at = usize::from(*cut).min(compressed.len());
        let mut out = BytesMut::new();
        let max = plain.len();
        d.decompress(&compressed[..at], &mut out, max).expect("first piece inflates");
        d.decompress(&compressed[at..], &mut out, max).expect("second piece inflates");
        d.finish_message(&mut out, max).expect("message ends");
        assert!(
            out[..] == plain[..],
            "round trip changed the message (level {}, window {c_bits}/{d_bits})",
            input.level % 10
        );
    }
}
