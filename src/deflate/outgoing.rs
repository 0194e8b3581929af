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

    /// The compressed payload for a data message, or `None` when it goes
    /// out as it is. Each call's output must be sent, in order: with
    /// context takeover the peer's inflater follows ours.
    pub(crate) fn compress(&mut self, payload: &[u8]) -> Option<Bytes> {
        if !self.enabled || payload.len() < self.min_size {
            return None;
        }
        // A fresh buffer per message: an idle connection keeps none, and a
        // large message's output is not held after it is written.
        let mut out = BytesMut::new();
        self.compressor.compress(payload, &mut out);
        Some(out.freeze())
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
}
