//! [`PreparedMessage`]: encode once, send to many connections.

use bytes::{Bytes, BytesMut};

use crate::error::CapacityError;
use crate::protocol::{FrameEncoder, OpCode, Role};
use crate::Message;

/// A message encoded once, to be sent to many connections (broadcast).
///
/// A server's frames are not masked, so the encoded frame is the same for
/// every connection: sending a prepared message queues that one shared
/// buffer (no re-encoding, no copy of a large payload). A client must mask
/// every frame with a fresh key, so on a client connection the payload is
/// encoded again — still without cloning the message.
///
/// Cloning is cheap (reference counts). Send it with
/// [`WebSocketStream::send_prepared`](crate::WebSocketStream::send_prepared)
/// or [`WriteHalf::feed_prepared`](crate::WriteHalf::feed_prepared) (then
/// flush) and their siblings.
///
/// ```
/// use silverback::{Message, PreparedMessage};
///
/// let news = PreparedMessage::new(&Message::text("extra, extra")).unwrap();
/// assert_eq!(news.len(), 12);
/// let copy = news.clone(); // shares the encoded frame
/// # let _ = copy;
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PreparedMessage {
    opcode: OpCode,
    payload: Bytes,
    server_frame: Bytes,
}

impl PreparedMessage {
    /// Encodes `msg`. Fails for a ping or pong over 125 bytes.
    pub fn new(msg: &Message) -> Result<Self, CapacityError> {
        let (opcode, payload) = FrameEncoder::message_payload(msg.clone())?;
        let mut frame = BytesMut::new();
        FrameEncoder::new(Role::Server).encode(&mut frame, true, 0, opcode, &payload);
        Ok(PreparedMessage { opcode, payload, server_frame: frame.freeze() })
    }

    /// The payload length in bytes.
    #[must_use]
    pub fn len(&self) -> usize {
        self.payload.len()
    }

    /// Whether the payload is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.payload.is_empty()
    }

    pub(crate) fn opcode(&self) -> OpCode {
        self.opcode
    }

    pub(crate) fn payload(&self) -> &Bytes {
        &self.payload
    }

    pub(crate) fn server_frame(&self) -> &Bytes {
        &self.server_frame
    }
}

impl TryFrom<Message> for PreparedMessage {
    type Error = CapacityError;

    fn try_from(msg: Message) -> Result<Self, CapacityError> {
        PreparedMessage::new(&msg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_frame_is_the_plain_encoding() {
        let p = PreparedMessage::new(&Message::text("Hello")).unwrap();
        assert_eq!(&p.server_frame()[..], b"\x81\x05Hello");
        assert!(PreparedMessage::new(&Message::ping(vec![0; 126])).is_err());
    }
}
