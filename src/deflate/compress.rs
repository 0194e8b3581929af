//! Compressing one message's payload (RFC 7692 §7.2.1).

use bytes::{BufMut, BytesMut};
use flate2::{Compress, Compression, FlushCompress};

use crate::deflate::quick;

/// The empty stored block a sync flush ends with, which RFC 7692 §7.2.1 has
/// the sender remove and the receiver put back.
pub(crate) const SYNC_FLUSH_TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

thread_local! {
    /// A DEFLATE state parked by a no-context-takeover compressor after its
    /// message, reset, with its (level, window bits): the next such message
    /// on this thread reuses it instead of allocating and initialising
    /// 250–370 KiB again. One per thread, so idle connections still hold
    /// none, and a thread serving many of them holds one.
    static SPARE: std::cell::RefCell<Option<(u8, u8, Compress)>> = const { std::cell::RefCell::new(None) };
}

/// A fresh state for `level` and `window_bits`: this thread's spare when it
/// has those settings, else a new one.
fn fresh_state(level: u8, window_bits: u8) -> Compress {
    let spare = SPARE.with(|spare| spare.borrow_mut().take());
    match spare {
        Some((l, w, state)) if (l, w) == (level, window_bits) => state,
        _ => Compress::new_with_window_bits(Compression::new(u32::from(level)), false, window_bits),
    }
}

/// Resets `state` and parks it as this thread's spare.
fn park_state(level: u8, window_bits: u8, mut state: Compress) {
    state.reset();
    SPARE.with(|spare| *spare.borrow_mut() = Some((level, window_bits, state)));
}

#[cfg(test)]
thread_local! {
    /// How many times [`Compressor::compress`] ran on this thread, so that
    /// tests can tell how often a message was compressed.
    pub(crate) static COMPRESSIONS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

thread_local! {
    /// The hash table of this thread's level-1 messages without context
    /// takeover (any connection's): 8 KiB, never cleared (see
    /// [`quick`](super::quick)).
    static QUICK_HEAD: std::cell::RefCell<Option<Box<quick::Head>>> = const { std::cell::RefCell::new(None) };
    /// Where a level-1 message longer than its window's slack is put
    /// together with the window.
    static QUICK_SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// A scratch buffer larger than this is given back after its message.
const MAX_KEPT_SCRATCH: usize = 256 * 1024;

/// The sending half of permessage-deflate: turns message payloads into
/// compressed payloads for frames with RSV1 set (RFC 7692 §6).
///
/// With context takeover, each message may refer back to earlier ones, so
/// every payload this compressor produces **must** be sent, in order. Never
/// compress a message and then send it uncompressed instead (say, because it
/// grew): the peer's window would miss it and later messages would decode to
/// garbage. Decide on [`DeflateConfig::get_min_size`] *before* compressing.
///
/// Two encoders, by level (see the [module docs](crate::deflate) for their
/// memory and speed):
///
/// - Level 1, the default: silverback's own, which refers back at most
///   16 KiB (2^14, or the agreed window if smaller) and keeps about 26 KiB
///   per connection with context takeover, none without.
/// - Levels 0 and 2 to 9: zlib-rs, whose state takes about 250–370 KiB.
///   With context takeover a connection keeps it from its first non-empty
///   message on. Without, it is reset after each message and kept as its
///   thread's one spare, which the next message without context takeover on
///   that thread (any connection's) reuses, so an idle connection holds none.
///
/// [`DeflateConfig::get_min_size`]: crate::deflate::DeflateConfig::get_min_size
#[derive(Debug)]
pub struct Compressor {
    level: u8,
    window_bits: u8,
    no_context_takeover: bool,
    state: State,
}

/// What a compressor keeps between messages.
#[derive(Debug)]
enum State {
    /// Nothing yet, or nothing ever (no context takeover).
    None,
    /// Level 1 with context takeover.
    Quick(Box<quick::Window>),
    /// zlib-rs, with context takeover.
    Zlib(Compress),
}

impl Compressor {
    /// The smallest window the backend can compress with: zlib-rs, like zlib,
    /// cannot produce a raw DEFLATE stream limited to a 2^8 window.
    pub const MIN_WINDOW_BITS: u8 = 9;
    /// The largest window: 2^15 bytes.
    pub const MAX_WINDOW_BITS: u8 = 15;

    /// A compressor at `level` (0..=9) that refers back at most
    /// 2^`window_bits` bytes and, with `no_context_takeover`, never across
    /// messages (RFC 7692 §7.1.1).
    ///
    /// `None` when `window_bits` is outside 9..=15 or `level` above 9. In
    /// particular an agreed window of 8 cannot be honoured by compressing:
    /// such a connection sends its messages uncompressed, which RFC 7692 §6
    /// always allows.
    #[must_use]
    pub fn new(level: u8, window_bits: u8, no_context_takeover: bool) -> Option<Self> {
        if !(Self::MIN_WINDOW_BITS..=Self::MAX_WINDOW_BITS).contains(&window_bits) || level > 9 {
            return None;
        }
        Some(Compressor { level, window_bits, no_context_takeover, state: State::None })
    }

    /// The compression level, 0 (store only) to 9.
    #[must_use]
    pub fn level(&self) -> u8 {
        self.level
    }

    /// The window this compressor stays within, as a base-2 logarithm.
    #[must_use]
    pub fn window_bits(&self) -> u8 {
        self.window_bits
    }

    /// Whether the state is reset after every message.
    #[must_use]
    pub fn no_context_takeover(&self) -> bool {
        self.no_context_takeover
    }

    /// Whether a state is currently kept between messages.
    #[must_use]
    pub fn is_allocated(&self) -> bool {
        !matches!(self.state, State::None)
    }

    /// Appends the compressed form of one whole message's `payload` to `out`.
    ///
    /// RFC 7692 §7.2.1: "Compress all the octets of the payload of the
    /// message using DEFLATE. If the resulting data does not end with an
    /// empty DEFLATE block with no compression (the "BTYPE" bits are set to
    /// 00), append an empty DEFLATE block with no compression to the tail
    /// end. Remove 4 octets (that are 0x00 0x00 0xff 0xff) from the tail
    /// end." Both encoders end each message with that empty block, so only
    /// the removal is needed (silverback's own encoder never writes those 4
    /// octets at all).
    ///
    /// An empty payload becomes the single byte `0x00` (RFC 7692 §7.2.3.6),
    /// which leaves the state untouched.
    ///
    /// `out` grows by at most a little more than the compressed size: it is
    /// reserved in steps, not to the worst case at once.
    ///
    /// # Panics
    ///
    /// Only if the backend reports a stream error, which cannot happen with
    /// the parameters [`Compressor::new`] accepts.
    pub fn compress(&mut self, payload: &[u8], out: &mut BytesMut) {
        #[cfg(test)]
        COMPRESSIONS.with(|n| n.set(n.get() + 1));
        if payload.is_empty() {
            // One byte: BFINAL 0, BTYPE 00 and padding. The receiver's
            // appended 00 00 ff ff completes the empty stored block.
            out.put_u8(0x00);
            return;
        }
        if self.level == 1 {
            self.compress_quick(payload, out);
        } else {
            self.compress_zlib(payload, out);
        }
    }

    fn compress_quick(&mut self, payload: &[u8], out: &mut BytesMut) {
        if self.no_context_takeover {
            QUICK_HEAD.with(|head| {
                let mut head = head.borrow_mut();
                let head = head.get_or_insert_with(quick::new_head);
                quick::compress_fresh(payload, self.window_bits, head, out);
            });
            return;
        }
        if !matches!(self.state, State::Quick(_)) {
            self.state = State::Quick(Box::new(quick::Window::new(self.window_bits)));
        }
        let State::Quick(window) = &mut self.state else { unreachable!("set just above") };
        QUICK_SCRATCH.with(|scratch| {
            let mut scratch = scratch.borrow_mut();
            window.compress(payload, out, &mut scratch);
            if scratch.capacity() > MAX_KEPT_SCRATCH {
                *scratch = Vec::new();
            }
        });
    }

    fn compress_zlib(&mut self, payload: &[u8], out: &mut BytesMut) {
        let (level, window_bits) = (self.level, self.window_bits);
        let mut state = match std::mem::replace(&mut self.state, State::None) {
            State::Zlib(state) => state,
            _ if self.no_context_takeover => fresh_state(level, window_bits),
            _ => Compress::new_with_window_bits(Compression::new(u32::from(level)), false, window_bits),
        };
        let start = out.len();
        let mut input = payload;
        // Text usually shrinks to well under half: try that first, then ask
        // for the rest's worst case (stored blocks cost 5 bytes per 64 KiB).
        let mut room = input.len() / 2 + 64;
        loop {
            let at = out.len();
            out.resize(at + room, 0);
            let (in_before, out_before) = (state.total_in(), state.total_out());
            state
                .compress(input, &mut out[at..], FlushCompress::Sync)
                .expect("deflate with valid parameters cannot fail");
            let consumed = (state.total_in() - in_before) as usize;
            let produced = (state.total_out() - out_before) as usize;
            out.truncate(at + produced);
            input = &input[consumed..];
            // The flush is complete once all input is taken and the output
            // was not cut short by the room we gave.
            if input.is_empty() && produced < room {
                break;
            }
            room = input.len() + input.len() / 8 + 64;
        }
        debug_assert!(out[start..].ends_with(&SYNC_FLUSH_TAIL), "sync flush ends with an empty stored block");
        if out[start..].ends_with(&SYNC_FLUSH_TAIL) {
            out.truncate(out.len() - SYNC_FLUSH_TAIL.len());
        }
        if self.no_context_takeover {
            // RFC 7692 §7.1.1: start the next message from an empty window.
            // The reset state goes to the thread's spare, not kept here, so
            // that an idle connection holds none.
            park_state(level, window_bits, state);
        } else {
            self.state = State::Zlib(state);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compress_all(compressor: &mut Compressor, payloads: &[&[u8]]) -> Vec<Vec<u8>> {
        payloads
            .iter()
            .map(|payload| {
                let mut out = BytesMut::new();
                compressor.compress(payload, &mut out);
                out.to_vec()
            })
            .collect()
    }

    #[test]
    fn rejects_what_the_backend_cannot_honour() {
        assert!(Compressor::new(1, 8, false).is_none());
        assert!(Compressor::new(1, 16, false).is_none());
        assert!(Compressor::new(10, 15, false).is_none());
        for bits in 9..=15 {
            assert_eq!(Compressor::new(9, bits, true).unwrap().window_bits(), bits);
        }
    }

    /// RFC 7692 §7.2.3.1: "Hello" as one compressed message.
    #[test]
    fn rfc_7_2_3_1_hello() {
        for level in 1..=9 {
            let mut c = Compressor::new(level, 15, false).unwrap();
            assert_eq!(
                compress_all(&mut c, &[b"Hello"]),
                [vec![0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]],
                "level {level}"
            );
        }
    }

    /// RFC 7692 §7.2.3.2: with context takeover the second "Hello" is a
    /// back-reference; without, both messages compress alike. Levels 2 to 9
    /// give the RFC's bytes; level 1's fast path encodes the same match in
    /// four bytes.
    #[test]
    fn rfc_7_2_3_2_sharing_the_window() {
        let hello: &[u8] = &[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];
        for level in 2..=9 {
            let mut c = Compressor::new(level, 15, false).unwrap();
            let second = vec![0xf2, 0x00, 0x11, 0x00, 0x00];
            assert_eq!(compress_all(&mut c, &[b"Hello", b"Hello"]), [hello.to_vec(), second], "level {level}");
            assert!(c.is_allocated());
        }
        let mut c = Compressor::new(1, 15, false).unwrap();
        assert_eq!(compress_all(&mut c, &[b"Hello", b"Hello"]), [hello.to_vec(), vec![0x02, 0x13, 0x00, 0x00]]);
        let mut c = Compressor::new(1, 15, true).unwrap();
        assert_eq!(compress_all(&mut c, &[b"Hello", b"Hello"]), [hello.to_vec(), hello.to_vec()]);
        assert!(!c.is_allocated(), "no context takeover frees the state");
    }

    /// RFC 7692 §7.2.3.6: an empty message is a single 0x00, and it neither
    /// allocates nor disturbs the window.
    #[test]
    fn rfc_7_2_3_6_empty_message() {
        let mut c = Compressor::new(1, 15, false).unwrap();
        assert_eq!(compress_all(&mut c, &[b""]), [vec![0x00]]);
        assert!(!c.is_allocated());
        let out = compress_all(&mut c, &[b"Hello", b"", b"Hello"]);
        assert_eq!(out[1], [0x00]);
        assert_eq!(out[2], [0x02, 0x13, 0x00, 0x00]);
    }

    /// Level 0 stores: RFC 7692 §7.2.3.3's block with no compression.
    #[test]
    fn rfc_7_2_3_3_level_zero_stores() {
        let mut c = Compressor::new(0, 15, false).unwrap();
        assert_eq!(
            compress_all(&mut c, &[b"Hello"]),
            [vec![0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00]]
        );
    }

    #[test]
    fn appends_after_existing_bytes() {
        let mut c = Compressor::new(1, 15, false).unwrap();
        let mut out = BytesMut::from(&b"head"[..]);
        c.compress(b"Hello", &mut out);
        assert_eq!(&out[..], b"head\xf2\x48\xcd\xc9\xc9\x07\x00");
    }

    /// Incompressible input needs more than the first guess of room; the
    /// loop must take it all and the capacity stay near the output size.
    #[test]
    fn incompressible_input_is_taken_whole() {
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let noise: Vec<u8> = (0..300_000)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed as u8
            })
            .collect();
        let mut c = Compressor::new(6, 15, false).unwrap();
        let mut out = BytesMut::new();
        c.compress(&noise, &mut out);
        assert!(out.len() > noise.len() && out.len() < noise.len() + noise.len() / 100);
        assert!(out.capacity() < 2 * noise.len(), "capacity {}", out.capacity());
    }

    /// A message without context takeover compresses to the same bytes
    /// from the thread's reused spare state as from a new one, whatever
    /// other settings used the spare in between; and no connection keeps a
    /// state between messages.
    #[test]
    fn the_spare_state_compresses_like_a_new_one() {
        let text: Vec<u8> = (0..3000u32).flat_map(|i| format!("{{\"n\":{i},\"v\":\"abc\"}}").into_bytes()).collect();
        let new_state = |level, bits| {
            let mut state = Compress::new_with_window_bits(Compression::new(level), false, bits);
            let mut out = vec![0; text.len() + 1024];
            state.compress(&text, &mut out, FlushCompress::Sync).unwrap();
            out.truncate(state.total_out() as usize - SYNC_FLUSH_TAIL.len());
            out
        };
        let (fast, small) = (new_state(2, 15), new_state(6, 12));
        let mut a = Compressor::new(2, 15, true).unwrap();
        let mut b = Compressor::new(6, 12, true).unwrap();
        for _ in 0..3 {
            assert_eq!(compress_all(&mut a, &[&text]), std::slice::from_ref(&fast));
            assert!(!a.is_allocated(), "no state kept between messages");
            assert_eq!(compress_all(&mut b, &[&text, &text]), [small.clone(), small.clone()]);
            assert!(!b.is_allocated());
        }
    }
}
