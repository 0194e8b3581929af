//! [`Frame`]: one WebSocket frame with an unmasked payload.

use bytes::Bytes;

use crate::protocol::OpCode;

/// One frame, as sent on the wire but with its payload unmasked.
///
/// Most users deal in [`Message`](crate::Message)s; frames are for callers
/// who drive a [`Codec`](crate::Codec) themselves and want to fragment
/// messages by hand.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// FIN: the final fragment of its message.
    pub fin: bool,
    /// RSV1..RSV3 as the low three bits; zero unless an extension says otherwise.
    pub rsv: u8,
    /// The opcode.
    pub opcode: OpCode,
    /// The payload (unmasked).
    pub payload: Bytes,
}

impl Frame {
    /// A final frame with no reserved bits.
    #[must_use]
    pub fn new(opcode: OpCode, payload: impl Into<Bytes>) -> Self {
        Frame { fin: true, rsv: 0, opcode, payload: payload.into() }
    }

    /// The same frame with FIN set as given.
    #[must_use]
    pub fn with_fin(mut self, fin: bool) -> Self {
        self.fin = fin;
        self
    }
}
