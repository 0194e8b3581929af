//! The decoder's fast path: a data message that is one frame and already
//! wholly in the buffer, which is how most small messages arrive (many per
//! read when they are pipelined).
//!
//! It only takes frames it can finish at once, with every rule of the
//! general path holding trivially: FIN set, no RSV bit, a text or binary
//! opcode, masked as our role requires, a 7- or 16-bit length within both
//! limits, and no fragmented message in progress. Anything else (control
//! frames, fragments, compressed or partial frames, violations) is left
//! untouched for the general path, which parses it again and reports any
//! error; the fast path never fails except on invalid UTF-8, which the
//! general path would report the same way.

use bytes::{Buf, BytesMut};

use super::MessageDecoder;
use crate::protocol::{apply_mask, DecodeError, Message, ProtocolError, Utf8Bytes};

/// The first header byte of a final, uncompressed text frame.
const FIN_TEXT: u8 = 0x81;
/// The first header byte of a final, uncompressed binary frame.
const FIN_BINARY: u8 = 0x82;

impl MessageDecoder {
    /// Decodes a whole single-frame data message from the start of `src`,
    /// if that is what `src` starts with and no frame is in progress; `None`
    /// leaves `src` untouched, for [`decode`](MessageDecoder::decode).
    /// Inlined into the read half, so the message is built where it is
    /// returned.
    #[inline]
    pub fn decode_whole(&mut self, src: &mut BytesMut) -> Option<Result<Message, DecodeError>> {
        if self.frame.is_some() {
            return None;
        }
        let (text, len, header_len, key) = {
            let buf = &src[..];
            let [b0, b1, ..] = *buf else { return None };
            if (b0 != FIN_TEXT && b0 != FIN_BINARY) || self.message.is_some() {
                return None;
            }
            let masked = b1 & 0x80 != 0;
            if masked != self.expect_masked {
                return None;
            }
            let (len, len_end) = match b1 & 0x7F {
                127 => return None,
                126 => (usize::from(u16::from_be_bytes([*buf.get(2)?, *buf.get(3)?])), 4),
                n => (usize::from(n), 2),
            };
            let header_len = len_end + if masked { 4 } else { 0 };
            if buf.len() < header_len + len
                || len > self.limits.get_max_frame_size()
                || len > self.limits.get_max_message_size()
            {
                return None;
            }
            let key: Option<[u8; 4]> = if masked { buf[len_end..header_len].try_into().ok() } else { None };
            (b0 == FIN_TEXT, len, header_len, key)
        };
        src.advance(header_len);
        let mut payload = src.split_to(len);
        if let Some(key) = key {
            apply_mask(&mut payload, key, 0);
        }
        if !text {
            return Some(Ok(Message::Binary(payload.freeze())));
        }
        if simdutf8::basic::from_utf8(&payload).is_err() {
            return Some(Err(ProtocolError::InvalidUtf8.into()));
        }
        Some(Ok(Message::Text(Utf8Bytes::from_bytes_unchecked(payload.freeze()))))
    }
}
