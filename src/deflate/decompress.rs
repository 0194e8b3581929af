//! Decompressing one message's payload as its frames arrive, within a size
//! limit (RFC 7692 §7.2.2).
//!
//! A few hundred compressed bytes can stand for gigabytes (a "zip bomb"), so
//! the limit is enforced on the output as it is produced, not on the input:
//! the inflater is given at most as much room as the message may still use
//! (plus one byte, to notice the overflow), and the output buffer's capacity
//! is grown by hand so that it never passes that bound either.

use bytes::BytesMut;
use flate2::{Decompress, FlushDecompress, Status};

use crate::deflate::compress::SYNC_FLUSH_TAIL;
use crate::protocol::{Inflate, InflateError};

/// The largest slice of output handed to the inflater at once.
const MAX_CHUNK: usize = 64 * 1024;
/// The smallest, unless the size limit is nearer.
const MIN_CHUNK: usize = 1024;

/// The receiving half of permessage-deflate: turns the payloads of a
/// compressed message's frames back into the message.
///
/// Feed each frame's payload to [`Decompressor::decompress`] as it arrives,
/// then call [`Decompressor::finish_message`] after the final frame. After
/// an error the message is lost and the connection should be failed; the
/// decompressor has then forgotten its state.
///
/// The inflate state takes about 46 KiB whatever the window (see the
/// [module docs](crate::deflate)). Without context takeover it is made for
/// each message and dropped after it (cheaper with zlib-rs than resetting
/// one: about 0.2 µs). With context takeover it is kept from message to
/// message while the connection is busy, and dropped when the connection
/// has no more input for now ([`Inflate::idle`], called by the connection):
/// an idle connection then keeps just its window, the last 2^`window_bits`
/// bytes it inflated (4 KiB for a client that agreed to 2^12), which the
/// next message's new state gets as its dictionary. So an idle connection holds
/// at most its window (4 KiB for a client that agreed to 2^12), or nothing
/// without context takeover.
#[derive(Debug)]
pub struct Decompressor {
    window_bits: u8,
    no_context_takeover: bool,
    state: Option<Decompress>,
    /// With context takeover: the last bytes inflated, at most the window,
    /// as a ring once full.
    window: Vec<u8>,
    /// Where the oldest byte of a full `window` is (and the next is written).
    window_head: usize,
    /// A message is being inflated: the state must stay.
    in_message: bool,
    /// Bytes produced for the message in progress.
    message_len: usize,
}

impl Decompressor {
    /// A decompressor for a peer that compresses within a 2^`window_bits`
    /// window and, with `no_context_takeover`, never refers across messages.
    ///
    /// The backend's smallest window is 2^9; a larger window than the peer's
    /// always decodes its data, so 8 (and anything else out of range) is
    /// rounded into 9..=15.
    #[must_use]
    pub fn new(window_bits: u8, no_context_takeover: bool) -> Self {
        Decompressor {
            window_bits: window_bits.clamp(9, 15),
            no_context_takeover,
            state: None,
            window: Vec::new(),
            window_head: 0,
            in_message: false,
            message_len: 0,
        }
    }

    /// The window used, as a base-2 logarithm.
    #[must_use]
    pub fn window_bits(&self) -> u8 {
        self.window_bits
    }

    /// Whether the state is reset after every message.
    #[must_use]
    pub fn no_context_takeover(&self) -> bool {
        self.no_context_takeover
    }

    /// Whether anything is kept: the inflate state or, with context
    /// takeover, the window.
    #[must_use]
    pub fn is_allocated(&self) -> bool {
        self.state.is_some() || self.window.capacity() > 0
    }

    /// Decompresses the next piece of the current message's payload,
    /// appending to `out`.
    ///
    /// `max_len` bounds the whole message once decompressed, counted since
    /// the message began: as soon as it would be passed this fails with
    /// [`InflateError::TooLarge`], having written at most one byte beyond
    /// it. `out`'s capacity is kept within its length plus what the message
    /// may still add (plus one), so the memory a message costs is bounded by
    /// `max_len`, however well its data compresses.
    pub fn decompress(&mut self, input: &[u8], out: &mut BytesMut, max_len: usize) -> Result<(), InflateError> {
        let result = self.inflate(input, out, max_len);
        if result.is_err() {
            self.reset();
        }
        result
    }

    /// Ends the current message: RFC 7692 §7.2.2, "Append 4 octets of 0x00
    /// 0x00 0xff 0xff to the tail end of the payload of the message", and
    /// decompress those. Then the state is dropped; with context takeover
    /// the window is kept for the next message.
    pub fn finish_message(&mut self, out: &mut BytesMut, max_len: usize) -> Result<(), InflateError> {
        let result = self.inflate(&SYNC_FLUSH_TAIL, out, max_len);
        if result.is_err() {
            self.reset();
        } else if self.no_context_takeover {
            self.state = None;
        }
        self.in_message = false;
        self.message_len = 0;
        result
    }

    /// The connection has no more input for now: between messages, the
    /// inflate state is dropped and only the window kept.
    pub fn idle(&mut self) {
        if !self.in_message {
            self.state = None;
        }
    }

    /// Forgets the message in progress and the window, freeing the state.
    pub fn reset(&mut self) {
        self.state = None;
        self.window = Vec::new();
        self.window_head = 0;
        self.in_message = false;
        self.message_len = 0;
    }

    /// Keeps the last 2^`window_bits` bytes of what was inflated, which the
    /// peer may refer back to in later messages: appended until the window
    /// is full, then written over its oldest bytes (no bytes move).
    fn remember(&mut self, produced: &[u8]) {
        let size = 1usize << self.window_bits;
        if self.window.capacity() == 0 {
            // Once, to its final size: growing in steps leaves holes in the
            // heap that a server with thousands of connections pays for.
            self.window.reserve_exact(size);
        }
        let produced = &produced[produced.len().saturating_sub(size)..];
        let fill = produced.len().min(size - self.window.len());
        self.window.extend_from_slice(&produced[..fill]);
        let mut rest = &produced[fill..];
        while !rest.is_empty() {
            let n = rest.len().min(size - self.window_head);
            self.window[self.window_head..self.window_head + n].copy_from_slice(&rest[..n]);
            self.window_head = (self.window_head + n) % size;
            rest = &rest[n..];
        }
    }

    fn inflate(&mut self, input: &[u8], out: &mut BytesMut, max_len: usize) -> Result<(), InflateError> {
        let mut state = match self.state.take() {
            Some(state) => state,
            None => {
                let mut state = Decompress::new_with_window_bits(false, self.window_bits);
                if !self.window.is_empty() {
                    // The peer's window, oldest byte first, as the new
                    // state's dictionary: a raw stream takes one at any point.
                    self.window.rotate_left(self.window_head);
                    self.window_head = 0;
                    state.set_dictionary(&self.window).map_err(|_| InflateError::Corrupt)?;
                }
                state
            }
        };
        self.in_message = true;
        let result = self.inflate_with(&mut state, input, out, max_len);
        self.state = Some(state);
        result
    }

    fn inflate_with(
        &mut self,
        state: &mut Decompress,
        mut input: &[u8],
        out: &mut BytesMut,
        max_len: usize,
    ) -> Result<(), InflateError> {
        let mut chunk = input.len().saturating_mul(4).clamp(MIN_CHUNK, MAX_CHUNK);
        loop {
            // Room for what the message may still produce, plus one byte to
            // tell "exactly at the limit" from "past it".
            let allowance = max_len.saturating_sub(self.message_len).saturating_add(1);
            let room = chunk.min(allowance);
            reserve_within(out, room, out.len().saturating_add(allowance));
            let at = out.len();
            out.resize(at + room, 0);
            let (in_before, out_before) = (state.total_in(), state.total_out());
            let status = state.decompress(input, &mut out[at..], FlushDecompress::Sync);
            let consumed = (state.total_in() - in_before) as usize;
            let produced = (state.total_out() - out_before) as usize;
            out.truncate(at + produced);
            input = &input[consumed..];
            self.message_len = self.message_len.saturating_add(produced);
            if self.message_len > max_len {
                return Err(InflateError::TooLarge);
            }
            if !self.no_context_takeover && produced > 0 {
                self.remember(&out[at..]);
            }
            match status {
                Err(_) => return Err(InflateError::Corrupt),
                Ok(Status::StreamEnd) => {
                    // A block with BFINAL set ended the DEFLATE stream (RFC
                    // 7692 §7.2.3.4). What follows, at least the appended
                    // tail, starts a new stream. The window is lost: a peer
                    // that then refers back gets a corrupt-data error.
                    *state = Decompress::new_with_window_bits(false, self.window_bits);
                    self.window.clear();
                    self.window_head = 0;
                    if input.is_empty() {
                        return Ok(());
                    }
                }
                Ok(Status::Ok | Status::BufError) => {
                    if produced < room {
                        if input.is_empty() {
                            // All input taken and all output it yields written.
                            return Ok(());
                        }
                        if consumed == 0 && produced == 0 {
                            // No progress with both input and room left.
                            return Err(InflateError::Corrupt);
                        }
                    } else {
                        chunk = (chunk * 2).min(MAX_CHUNK);
                    }
                }
            }
        }
    }
}

/// Makes room for `additional` more bytes in `out`, growing it to at most
/// `cap_limit` bytes of capacity when `cap_limit` allows the room.
///
/// `BytesMut::reserve` at least doubles the capacity, which could take a
/// message limited to `max_len` up to twice that; near the limit the buffer
/// is reallocated to the exact bound instead (one copy, as a reallocation
/// would make).
fn reserve_within(out: &mut BytesMut, additional: usize, cap_limit: usize) {
    if out.capacity() - out.len() >= additional {
        return;
    }
    let needed = out.len() + additional;
    let doubled = out.capacity().saturating_mul(2).max(needed);
    let capacity = doubled.min(cap_limit.max(needed));
    let mut grown = BytesMut::with_capacity(capacity);
    grown.extend_from_slice(out);
    *out = grown;
}

/// How the protocol decoder reaches this decompressor (the decoder knows
/// only the trait it defines).
impl Inflate for Decompressor {
    fn decompress(&mut self, input: &[u8], out: &mut BytesMut, max_len: usize) -> Result<(), InflateError> {
        Decompressor::decompress(self, input, out, max_len)
    }

    fn finish_message(&mut self, out: &mut BytesMut, max_len: usize) -> Result<(), InflateError> {
        Decompressor::finish_message(self, out, max_len)
    }

    fn idle(&mut self) {
        Decompressor::idle(self);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inflate_message(d: &mut Decompressor, frames: &[&[u8]], max_len: usize) -> Result<Vec<u8>, InflateError> {
        let mut out = BytesMut::new();
        for frame in frames {
            d.decompress(frame, &mut out, max_len)?;
        }
        d.finish_message(&mut out, max_len)?;
        Ok(out.to_vec())
    }

    /// RFC 7692 §7.2.3.1–§7.2.3.5: every example payload decodes to "Hello".
    #[test]
    fn rfc_7_2_3_examples() {
        let table: &[(&str, &[&[u8]])] = &[
            ("7.2.3.1 one frame", &[&[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]]),
            ("7.2.3.1 two fragments", &[&[0xf2, 0x48, 0xcd], &[0xc9, 0xc9, 0x07, 0x00]]),
            ("7.2.3.3 no compression", &[&[0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00]]),
            ("7.2.3.4 BFINAL set", &[&[0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00]]),
            ("7.2.3.5 two blocks", &[&[0xf2, 0x48, 0x05, 0x00, 0x00, 0x00, 0xff, 0xff, 0xca, 0xc9, 0xc9, 0x07, 0x00]]),
        ];
        for &(name, frames) in table {
            for no_context_takeover in [false, true] {
                let mut d = Decompressor::new(15, no_context_takeover);
                assert_eq!(inflate_message(&mut d, frames, 5).as_deref(), Ok(&b"Hello"[..]), "{name}");
                assert_eq!(d.is_allocated(), !no_context_takeover, "{name}");
                // And again on the same decompressor, split at every byte.
                let whole = frames.concat();
                let bytes: Vec<&[u8]> = whole.chunks(1).collect();
                assert_eq!(inflate_message(&mut d, &bytes, 5).as_deref(), Ok(&b"Hello"[..]), "{name} bytewise");
            }
        }
    }

    /// RFC 7692 §7.2.3.2: the second message refers into the first.
    #[test]
    fn rfc_7_2_3_2_sharing_the_window() {
        let mut d = Decompressor::new(15, false);
        assert_eq!(inflate_message(&mut d, &[&[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]], 5).unwrap(), b"Hello");
        assert_eq!(inflate_message(&mut d, &[&[0xf2, 0x00, 0x11, 0x00, 0x00]], 5).unwrap(), b"Hello");
        // Without context takeover the reference has nothing to point at.
        let mut d = Decompressor::new(15, true);
        assert_eq!(inflate_message(&mut d, &[&[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]], 5).unwrap(), b"Hello");
        assert_eq!(inflate_message(&mut d, &[&[0xf2, 0x00, 0x11, 0x00, 0x00]], 5), Err(InflateError::Corrupt));
        assert!(!d.is_allocated());
    }

    /// RFC 7692 §7.2.3.6: after a fragment ending in a full sync flush, a
    /// final fragment of a lone 0x00 adds nothing; alone, it is an empty
    /// message.
    #[test]
    fn rfc_7_2_3_6_empty_fragment() {
        let mut d = Decompressor::new(15, false);
        let frames: &[&[u8]] = &[&[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00, 0x00, 0xff, 0xff], &[0x00]];
        assert_eq!(inflate_message(&mut d, frames, 5).unwrap(), b"Hello");
        assert_eq!(inflate_message(&mut d, &[&[0x00]], 0).unwrap(), b"");
        // The window is intact: level 1's encoding of a repeated "Hello".
        assert_eq!(inflate_message(&mut d, &[&[0x02, 0x13, 0x00, 0x00]], 5).unwrap(), b"Hello");
    }

    #[test]
    fn corrupt_data_fails_and_forgets() {
        let mut d = Decompressor::new(15, false);
        // BTYPE 11 is reserved.
        assert_eq!(inflate_message(&mut d, &[&[0xff, 0xff]], 100), Err(InflateError::Corrupt));
        assert!(!d.is_allocated());
        // A stored block whose LEN and NLEN disagree.
        assert_eq!(inflate_message(&mut d, &[&[0x00, 0x05, 0x00, 0x00, 0x00]], 100), Err(InflateError::Corrupt));
        // Usable again afterwards.
        assert_eq!(inflate_message(&mut d, &[&[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]], 5).unwrap(), b"Hello");
    }

    #[test]
    fn limit_is_on_the_whole_message() {
        let hello: &[u8] = &[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];
        let mut d = Decompressor::new(15, false);
        assert_eq!(inflate_message(&mut d, &[hello], 4), Err(InflateError::TooLarge));
        assert_eq!(inflate_message(&mut d, &[hello], 5).unwrap(), b"Hello");
        // Two stored blocks of "Hello" in two frames, then the empty
        // stored block's header: 10 bytes.
        let stored: &[u8] = &[0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f];
        let frames = [stored, stored, &[0x00]];
        let mut d = Decompressor::new(15, false);
        assert_eq!(inflate_message(&mut d, &frames, 10).unwrap(), b"HelloHello");
        assert_eq!(inflate_message(&mut d, &frames, 9), Err(InflateError::TooLarge));
        // The count starts again with each message.
        assert_eq!(inflate_message(&mut d, &[stored, &[0x00]], 5).unwrap(), b"Hello");
        assert_eq!(inflate_message(&mut d, &[stored, &[0x00]], 5).unwrap(), b"Hello");
        // No limit at all.
        assert_eq!(inflate_message(&mut d, &frames, usize::MAX).unwrap(), b"HelloHello");
    }

    /// Compressed data that inflates to gigabytes costs memory bounded by
    /// the limit, and time bounded by it too: decompression stops as soon
    /// as the limit is passed.
    #[test]
    fn decompression_bomb_is_bounded() {
        // One MiB of zeros, then the same again: the second piece refers
        // only to zeros and leaves only zeros in the window, so it can be
        // repeated forever, each copy (about 1 KiB) adding another MiB.
        let mut c = flate2::Compress::new(flate2::Compression::best(), false);
        let zeros = vec![0u8; 1 << 20];
        let (mut first, mut repeat) = (Vec::with_capacity(64 << 10), Vec::with_capacity(64 << 10));
        c.compress_vec(&zeros, &mut first, flate2::FlushCompress::Sync).unwrap();
        c.compress_vec(&zeros, &mut repeat, flate2::FlushCompress::Sync).unwrap();
        assert_eq!(c.total_in(), 2 << 20);
        assert!(repeat.len() <= 1100, "{} bytes", repeat.len());
        // Only the end of a message loses the flush's last four bytes.
        let last = &repeat[..repeat.len() - 4];

        // The construction is sound: four pieces are four MiB of zeros.
        let mut d = Decompressor::new(15, false);
        let message = inflate_message(&mut d, &[&first, &repeat, &repeat, last], 4 << 20).unwrap();
        assert!(message.len() == 4 << 20 && message.iter().all(|&b| b == 0));

        // 4096 copies would be 4 GiB; a 1 MiB limit stops it after the first.
        let limit = 1 << 20;
        let started = std::time::Instant::now();
        let mut d = Decompressor::new(15, false);
        let mut out = BytesMut::new();
        d.decompress(&first, &mut out, limit).unwrap();
        let mut result = Ok(());
        let mut fed = 0;
        while result.is_ok() && fed < 4096 {
            result = d.decompress(&repeat, &mut out, limit);
            fed += 1;
        }
        assert_eq!((result, fed), (Err(InflateError::TooLarge), 1));
        assert_eq!(out.len(), limit + 1);
        assert!(out.capacity() <= limit + 1, "capacity {}", out.capacity());
        assert!(started.elapsed() < std::time::Duration::from_secs(10));
        assert!(!d.is_allocated(), "an error forgets the state");

        // In one frame, too, and with output already in the buffer.
        let mut d = Decompressor::new(15, false);
        let mut out = BytesMut::from(&b"earlier"[..]);
        let frame = [&first[..], &repeat, &repeat].concat();
        assert_eq!(d.decompress(&frame, &mut out, 100_000), Err(InflateError::TooLarge));
        assert_eq!(out.len(), 7 + 100_001);
        assert!(out.capacity() <= 7 + 100_001, "capacity {}", out.capacity());
    }

    #[test]
    fn output_capacity_grows_to_the_bound_not_past_it() {
        let mut out = BytesMut::with_capacity(600);
        out.extend_from_slice(&[1; 600]);
        reserve_within(&mut out, 100, 1000);
        assert_eq!((out.len(), out.capacity()), (600, 1000));
        assert_eq!(&out[..], &[1; 600][..]);
        reserve_within(&mut out, 100, 1000);
        assert_eq!(out.capacity(), 1000, "enough room already");
        let mut out = BytesMut::with_capacity(10);
        reserve_within(&mut out, 100, usize::MAX);
        assert_eq!(out.capacity(), 100);
        reserve_within(&mut out, 101, usize::MAX);
        assert_eq!(out.capacity(), 200, "doubles while far from the bound");
    }

    #[test]
    fn windows_are_clamped_into_the_backend_range() {
        assert_eq!(Decompressor::new(8, false).window_bits(), 9);
        assert_eq!(Decompressor::new(0, false).window_bits(), 9);
        assert_eq!(Decompressor::new(12, false).window_bits(), 12);
        assert_eq!(Decompressor::new(16, false).window_bits(), 15);
    }
}
