//! [`Stats`]: per-connection counters, cheap enough to keep always.
//!
//! Each counter has one writer: the read half counts what arrives, the
//! write half what the application queues, the read half's keepalive the
//! round-trip time. They sit in the shared state as relaxed atomics so that
//! either half (or a [`Control`](crate::Control)) can read all of them; a
//! single writer updates them with a plain load and store (no locked
//! read-modify-write), once per message. The two groups sit on separate
//! cache lines, so the halves' tasks do not contend for one.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Traffic counters and the last measured round-trip time of one
/// connection, from [`WebSocketStream::stats`](crate::WebSocketStream::stats),
/// [`ReadHalf::stats`](crate::ReadHalf::stats),
/// [`WriteHalf::stats`](crate::WriteHalf::stats) or
/// [`Control::stats`](crate::Control::stats).
///
/// Only data messages (text and binary) are counted; control frames
/// (ping, pong, close) are not. Byte counts are payload bytes, without
/// frame headers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Data messages received whole (a streamed one counts when it ends).
    pub messages_in: u64,
    /// Payload bytes received, as decoded (after inflating compressed
    /// messages).
    pub bytes_in: u64,
    /// Data messages the application queued.
    pub messages_out: u64,
    /// Payload bytes the application queued, before compression.
    pub bytes_out: u64,
    /// Payload bytes of the compressed data messages, as sent on the wire
    /// (a message sent uncompressed adds nothing here).
    pub compressed_bytes_out: u64,
    /// The time between sending the latest answered keepalive ping
    /// ([`Config::ping_interval`](crate::Config::ping_interval)) and
    /// receiving its pong; `None` until one round trip was measured.
    pub rtt: Option<Duration>,
}

/// Adds `n` to a counter that only the calling half writes: a plain load
/// and store, not an atomic read-modify-write.
#[inline(always)]
fn bump(cell: &AtomicU64, n: u64) {
    cell.store(cell.load(Relaxed).wrapping_add(n), Relaxed);
}

/// The read half's counters.
#[derive(Debug, Default)]
#[repr(align(64))]
struct InCells {
    messages: AtomicU64,
    bytes: AtomicU64,
    /// The last round trip in nanoseconds, plus one (0: none yet).
    rtt: AtomicU64,
}

/// The write half's counters.
#[derive(Debug, Default)]
#[repr(align(64))]
struct OutCells {
    messages: AtomicU64,
    bytes: AtomicU64,
    compressed: AtomicU64,
}

/// The counters of one connection, in its shared state.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    input: InCells,
    output: OutCells,
}

impl Counters {
    /// The read half received `len` more payload bytes, and the end of a
    /// message when `message`.
    #[inline(always)]
    pub(crate) fn received(&self, message: bool, len: usize) {
        if message {
            bump(&self.input.messages, 1);
        }
        bump(&self.input.bytes, len as u64);
    }

    /// The write half queued `len` more payload bytes (`compressed` of
    /// them on the wire, when compressed), and the end of a message when
    /// `message`.
    #[inline(always)]
    pub(crate) fn sent(&self, message: bool, len: usize, compressed: Option<usize>) {
        if message {
            bump(&self.output.messages, 1);
        }
        bump(&self.output.bytes, len as u64);
        if let Some(compressed) = compressed {
            bump(&self.output.compressed, compressed as u64);
        }
    }

    /// The read half measured a keepalive round trip.
    pub(crate) fn set_rtt(&self, rtt: Duration) {
        let nanos = u64::try_from(rtt.as_nanos()).unwrap_or(u64::MAX - 1);
        self.input.rtt.store(nanos + 1, Relaxed);
    }

    pub(crate) fn get(&self) -> Stats {
        let rtt = self.input.rtt.load(Relaxed);
        Stats {
            messages_in: self.input.messages.load(Relaxed),
            bytes_in: self.input.bytes.load(Relaxed),
            messages_out: self.output.messages.load(Relaxed),
            bytes_out: self.output.bytes.load(Relaxed),
            compressed_bytes_out: self.output.compressed.load(Relaxed),
            rtt: rtt.checked_sub(1).map(Duration::from_nanos),
        }
    }
}
