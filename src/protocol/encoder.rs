//! Frame encoding (RFC 6455 §5.2, §5.3).

use bytes::{BufMut, Bytes, BytesMut};

use crate::protocol::CapacityError;
use crate::protocol::Message;
use crate::protocol::{apply_mask, encode_close_payload, FrameHeader, OpCode, Role};

/// The send side of a connection: decides each frame's header, including a
/// fresh masking key per frame for a client (RFC 6455 §5.3: "the masking key
/// MUST be ... unpredictable", so it comes from the thread-local CSPRNG).
#[derive(Clone, Copy, Debug)]
pub struct FrameEncoder {
    role: Role,
}

impl FrameEncoder {
    /// An encoder for the given role.
    #[must_use]
    pub const fn new(role: Role) -> Self {
        FrameEncoder { role }
    }

    /// The role this encoder masks for.
    #[must_use]
    pub const fn role(&self) -> Role {
        self.role
    }

    /// The header of a frame with `len` payload bytes.
    #[must_use]
    #[inline]
    pub fn header(&self, fin: bool, rsv: u8, opcode: OpCode, len: usize) -> FrameHeader {
        let mask = match self.role {
            Role::Client => Some(rand::random::<[u8; 4]>()),
            Role::Server => None,
        };
        FrameHeader { fin, rsv, opcode, mask, payload_len: len as u64 }
    }

    /// A message's opcode and wire payload. Control payloads must fit in 125
    /// bytes (RFC 6455 §5.5); a close frame's payload is its code and reason.
    #[inline]
    pub fn message_payload(msg: Message) -> Result<(OpCode, Bytes), CapacityError> {
        let opcode = msg.opcode();
        let payload = match msg {
            Message::Text(t) => t.into_bytes(),
            Message::Binary(b) => b,
            Message::Ping(b) | Message::Pong(b) => {
                if b.len() > 125 {
                    return Err(CapacityError::ControlFrameTooLong { len: b.len() });
                }
                b
            }
            Message::Close(frame) => encode_close_payload(frame.as_ref()),
        };
        Ok((opcode, payload))
    }

    /// Appends a whole frame (header and, masked if we are a client, payload).
    pub fn encode(&self, dst: &mut BytesMut, fin: bool, rsv: u8, opcode: OpCode, payload: &[u8]) {
        encode_frame(dst, &self.header(fin, rsv, opcode, payload.len()), payload);
    }
}

/// Appends `header` and `payload` to `dst`, masking the payload with the
/// header's key when it has one.
pub fn encode_frame(dst: &mut BytesMut, header: &FrameHeader, payload: &[u8]) {
    let mut head = [0u8; FrameHeader::MAX_LEN];
    let n = header.encode(&mut head);
    dst.reserve(n + payload.len());
    dst.put_slice(&head[..n]);
    let start = dst.len();
    dst.put_slice(payload);
    if let Some(key) = header.mask {
        apply_mask(&mut dst[start..], key, 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Status;

    #[test]
    fn server_frames_are_unmasked_rfc_5_7() {
        let mut dst = BytesMut::new();
        FrameEncoder::new(Role::Server).encode(&mut dst, true, 0, OpCode::Text, b"Hello");
        assert_eq!(&dst[..], b"\x81\x05Hello");
    }

    #[test]
    fn client_frames_are_masked_with_fresh_keys() {
        let enc = FrameEncoder::new(Role::Client);
        let mut keys = std::collections::HashSet::new();
        for _ in 0..64 {
            let mut dst = BytesMut::new();
            enc.encode(&mut dst, true, 0, OpCode::Binary, b"Hello");
            let Ok(Status::Complete(h, n)) = FrameHeader::parse(&dst) else { panic!() };
            let key = h.mask.expect("client frames are masked");
            keys.insert(key);
            let mut payload = dst[n..].to_vec();
            apply_mask(&mut payload, key, 0);
            assert_eq!(payload, b"Hello");
        }
        assert!(keys.len() > 60, "masking keys repeat: {}", keys.len());
    }

    #[test]
    fn control_payloads_are_bounded() {
        let long = Message::Ping(Bytes::from(vec![0; 126]));
        assert_eq!(FrameEncoder::message_payload(long), Err(CapacityError::ControlFrameTooLong { len: 126 }));
        let (op, payload) = FrameEncoder::message_payload(Message::Close(None)).unwrap();
        assert_eq!((op, payload.len()), (OpCode::Close, 0));
    }
}
