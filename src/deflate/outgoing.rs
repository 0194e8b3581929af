//! The send side of permessage-deflate on one connection: which messages
//! are compressed, and compressing them (RFC 7692 §6).

use bytes::{Bytes, BytesMut};

use crate::deflate::Compressor;

/// Compresses a connection's outgoing data messages while enabled, except
/// those shorter than the configured minimum (for them, the compressed form
/// is rarely shorter and costs CPU on both ends).
///
/// RFC 7692 §6 lets every message choose: an uncompressed one is sent with
/// RSV1 clear and does not touch the compression context.
#[derive(Debug)]
pub(crate) struct Outgoing {
    compressor: Compressor,
    min_size: usize,
    enabled: bool,
}

impl Outgoing {
    pub(crate) fn new(compressor: Compressor, min_size: usize) -> Self {
        Outgoing { compressor, min_size, enabled: true }
    }

    /// Turns compression of the following messages on or off.
    pub(crate) fn set_enabled(&mut self, enabled: bool) {
        self.enabled = enabled;
    }

    /// Whether the following messages are compressed (those long enough).
    pub(crate) fn is_enabled(&self) -> bool {
        self.enabled
    }

    /// Whether a data message of `len` bytes is sent compressed.
    fn wants(&self, len: usize) -> bool {
        self.enabled && len >= self.min_size
    }

    /// How a data message of `len` bytes that many connections send (a
    /// prepared message) is compressed on this one.
    pub(crate) fn plan_shared(&self, len: usize) -> SharedPlan {
        if !self.wants(len) {
            SharedPlan::Uncompressed
        } else if self.compressor.no_context_takeover() {
            SharedPlan::Fresh(FreshSettings {
                level: self.compressor.level(),
                window_bits: self.compressor.window_bits(),
            })
        } else {
            SharedPlan::OwnCompressor
        }
    }

    /// The compressed payload for a data message, or `None` when it goes
    /// out as it is. Each call's output must be sent, in order: with
    /// context takeover the peer's inflater follows ours.
    pub(crate) fn compress(&mut self, payload: &[u8]) -> Option<Bytes> {
        if !self.wants(payload.len()) {
            return None;
        }
        // A fresh buffer per message: an idle connection keeps none, and a
        // large message's output is not held after it is written.
        let mut out = BytesMut::new();
        self.compressor.compress(payload, &mut out);
        Some(out.freeze())
    }
}

/// How a message shared by many connections goes out on one of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SharedPlan {
    /// As it is, RSV1 clear: compression is off, or the message is shorter
    /// than the minimum.
    Uncompressed,
    /// Compressed from an empty window (our side has no context takeover):
    /// the same bytes as on every connection with the same settings.
    Fresh(FreshSettings),
    /// Through this connection's own compressor, whose window carries over
    /// from message to message (RFC 7692 §7.1.1): the peer's inflater
    /// follows it, so no other connection's bytes would do.
    OwnCompressor,
}

/// What alone decides the compressed form of a message compressed from an
/// empty window: the level and the window size. The deflate output of a
/// fresh state is a function of these and the input.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct FreshSettings {
    level: u8,
    window_bits: u8,
}

impl FreshSettings {
    /// The settings of a no-context-takeover [`Compressor::new`]; `None`
    /// when it would refuse them.
    #[cfg(test)]
    pub(crate) fn new(level: u8, window_bits: u8) -> Option<Self> {
        Compressor::new(level, window_bits, true).map(|_| FreshSettings { level, window_bits })
    }

    /// Compresses one message's `payload` with a fresh no-context-takeover
    /// [`Compressor`] at these settings, appending to `out`: the bytes every
    /// connection with these settings would produce by itself.
    pub(crate) fn compress(self, payload: &[u8], out: &mut BytesMut) {
        // Built only from a valid compressor's own settings.
        let mut compressor =
            Compressor::new(self.level, self.window_bits, true).expect("settings of a valid compressor");
        compressor.compress(payload, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deflate::Decompressor;

    #[test]
    fn compresses_only_long_enough_messages_while_enabled() {
        let mut outgoing = Outgoing::new(Compressor::new(1, 15, false).unwrap(), 8);
        assert_eq!(outgoing.compress(b"short"), None);
        let payload = b"a message long enough to compress, compress, compress";
        let compressed = outgoing.compress(payload).expect("compressed");
        assert!(compressed.len() < payload.len());
        let mut inflater = Decompressor::new(15, false);
        let mut out = BytesMut::new();
        inflater.decompress(&compressed, &mut out, 1 << 20).unwrap();
        inflater.finish_message(&mut out, 1 << 20).unwrap();
        assert_eq!(&out[..], &payload[..]);

        outgoing.set_enabled(false);
        assert!(!outgoing.is_enabled());
        assert_eq!(outgoing.compress(payload), None);
    }

    #[test]
    fn shared_messages_compress_from_a_fresh_state_only_without_context_takeover() {
        let takeover = Outgoing::new(Compressor::new(1, 15, false).unwrap(), 8);
        assert_eq!(takeover.plan_shared(7), SharedPlan::Uncompressed);
        assert_eq!(takeover.plan_shared(8), SharedPlan::OwnCompressor);
        let mut fresh = Outgoing::new(Compressor::new(6, 12, true).unwrap(), 8);
        assert_eq!(fresh.plan_shared(8), SharedPlan::Fresh(FreshSettings::new(6, 12).unwrap()));
        fresh.set_enabled(false);
        assert_eq!(fresh.plan_shared(1000), SharedPlan::Uncompressed);

        // The shared bytes are the ones the connection's compressor makes.
        let payload = b"a message long enough to compress, compress, compress";
        let mut own = Outgoing::new(Compressor::new(6, 12, true).unwrap(), 8);
        let mut shared = BytesMut::new();
        FreshSettings::new(6, 12).unwrap().compress(payload, &mut shared);
        assert_eq!(own.compress(payload).unwrap(), shared);
        assert_eq!(FreshSettings::new(6, 8), None);
    }
}
