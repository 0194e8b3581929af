//! Frame header parse and encode (RFC 6455 §5.2).
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-------+-+-------------+-------------------------------+
//! |F|R|R|R| opcode|M| Payload len |    Extended payload length    |
//! |I|S|S|S|  (4)  |A|     (7)     |             (16/64)           |
//! |N|V|V|V|       |S|             |   (if payload len==126/127)   |
//! | |1|2|3|       |K|             |                               |
//! +-+-+-+-+-------+-+-------------+ - - - - - - - - - - - - - - - +
//! |     Extended payload length continued, if payload len == 127  |
//! + - - - - - - - - - - - - - - - +-------------------------------+
//! |                               |Masking-key, if MASK set to 1  |
//! +-------------------------------+-------------------------------+
//! ```

use crate::protocol::OpCode;
use crate::protocol::ProtocolError;

/// The RSV1 bit in [`FrameHeader::rsv`]: permessage-deflate's "compressed"
/// flag (RFC 7692 §6).
pub const RSV1: u8 = 0b100;

/// The result of parsing from a buffer that may not hold enough bytes yet, in
/// the shape of httparse's `Status`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status<T> {
    /// Parsed; the value and how many bytes it consumed.
    Complete(T, usize),
    /// At least this many bytes (in total, from the start) are needed.
    Partial(usize),
}

/// A parsed frame header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameHeader {
    /// FIN: this is the final fragment of a message.
    pub fin: bool,
    /// RSV1..RSV3 as the low three bits (RSV1 = `0b100`).
    pub rsv: u8,
    /// The opcode.
    pub opcode: OpCode,
    /// The masking key, when the MASK bit is set.
    pub mask: Option<[u8; 4]>,
    /// The payload length.
    pub payload_len: u64,
}

impl FrameHeader {
    /// The longest possible header: 2 + 8 (64-bit length) + 4 (mask).
    pub const MAX_LEN: usize = 14;

    /// Parses a header from the start of `buf`.
    ///
    /// Rejects reserved opcodes and a 64-bit length with its most significant
    /// bit set (RFC 6455 §5.2). Role-dependent rules live in
    /// [`FrameHeader::validate`].
    #[inline]
    pub fn parse(buf: &[u8]) -> Result<Status<FrameHeader>, ProtocolError> {
        let [b0, b1, ..] = *buf else {
            return Ok(Status::Partial(2));
        };
        let opcode = OpCode::from_u8(b0 & 0x0F)?;
        let masked = b1 & 0x80 != 0;
        let (len_bytes, short_len) = match b1 & 0x7F {
            126 => (2, 0),
            127 => (8, 0),
            n => (0, u64::from(n)),
        };
        let header_len = 2 + len_bytes + if masked { 4 } else { 0 };
        if buf.len() < header_len {
            return Ok(Status::Partial(header_len));
        }
        let payload_len = match len_bytes {
            2 => u64::from(u16::from_be_bytes([buf[2], buf[3]])),
            8 => {
                let mut raw = [0u8; 8];
                raw.copy_from_slice(&buf[2..10]);
                let len = u64::from_be_bytes(raw);
                if len >> 63 != 0 {
                    return Err(ProtocolError::InvalidPayloadLength);
                }
                len
            }
            _ => short_len,
        };
        let mask = masked.then(|| {
            let at = 2 + len_bytes;
            [buf[at], buf[at + 1], buf[at + 2], buf[at + 3]]
        });
        let header = FrameHeader { fin: b0 & 0x80 != 0, rsv: (b0 >> 4) & 0x07, opcode, mask, payload_len };
        Ok(Status::Complete(header, header_len))
    }

    /// Checks the rules that depend on who we are and what was negotiated.
    ///
    /// - `expect_masked`: a server requires masked frames, a client requires
    ///   unmasked ones (RFC 6455 §5.1).
    /// - `allowed_rsv`: RSV bits an extension gave meaning to; any other set
    ///   bit fails (RFC 6455 §5.2).
    /// - Control frames carry at most 125 bytes and are never fragmented
    ///   (RFC 6455 §5.5).
    #[inline]
    pub fn validate(&self, expect_masked: bool, allowed_rsv: u8) -> Result<(), ProtocolError> {
        if self.rsv & !allowed_rsv != 0 {
            return Err(ProtocolError::ReservedBits(self.rsv));
        }
        match (expect_masked, self.mask.is_some()) {
            (true, false) => return Err(ProtocolError::UnmaskedFrame),
            (false, true) => return Err(ProtocolError::MaskedFrame),
            _ => {}
        }
        if self.opcode.is_control() {
            if self.payload_len > 125 {
                return Err(ProtocolError::ControlFrameTooLong);
            }
            if !self.fin {
                return Err(ProtocolError::FragmentedControlFrame);
            }
        }
        Ok(())
    }

    /// The number of bytes [`FrameHeader::encode`] writes.
    #[must_use]
    pub const fn encoded_len(&self) -> usize {
        let len_bytes = match self.payload_len {
            0..=125 => 0,
            126..=0xFFFF => 2,
            _ => 8,
        };
        2 + len_bytes + if self.mask.is_some() { 4 } else { 0 }
    }

    /// The first byte on the wire: FIN, the RSV bits and the opcode.
    #[inline]
    #[must_use]
    pub fn first_byte(&self) -> u8 {
        u8::from(self.fin) << 7 | (self.rsv & 0x07) << 4 | self.opcode.as_u8()
    }

    /// Writes the header into `out` using the shortest length form (RFC 6455
    /// §5.2: "the minimal number of bytes MUST be used") and returns the
    /// number of bytes written.
    #[inline]
    pub fn encode(&self, out: &mut [u8; Self::MAX_LEN]) -> usize {
        out[0] = self.first_byte();
        let mask_bit = if self.mask.is_some() { 0x80 } else { 0 };
        let mut at = match self.payload_len {
            len @ 0..=125 => {
                out[1] = mask_bit | len as u8;
                2
            }
            len @ 126..=0xFFFF => {
                out[1] = mask_bit | 126;
                out[2..4].copy_from_slice(&(len as u16).to_be_bytes());
                4
            }
            len => {
                out[1] = mask_bit | 127;
                out[2..10].copy_from_slice(&len.to_be_bytes());
                10
            }
        };
        if let Some(key) = self.mask {
            out[at..at + 4].copy_from_slice(&key);
            at += 4;
        }
        at
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_complete(buf: &[u8]) -> (FrameHeader, usize) {
        match FrameHeader::parse(buf).unwrap() {
            Status::Complete(h, n) => (h, n),
            Status::Partial(n) => panic!("partial, need {n}"),
        }
    }

    /// The examples of RFC 6455 §5.7.
    #[test]
    fn rfc_5_7_examples() {
        type Row = (&'static [u8], bool, OpCode, Option<[u8; 4]>, u64, usize);
        let table: &[Row] = &[
            // A single-frame unmasked text message "Hello".
            (b"\x81\x05", true, OpCode::Text, None, 5, 2),
            // A single-frame masked text message "Hello".
            (b"\x81\x85\x37\xfa\x21\x3d", true, OpCode::Text, Some([0x37, 0xfa, 0x21, 0x3d]), 5, 6),
            // A fragmented unmasked text message: "Hel" then "lo".
            (b"\x01\x03", false, OpCode::Text, None, 3, 2),
            (b"\x80\x02", true, OpCode::Continuation, None, 2, 2),
            // Unmasked ping and masked pong with "Hello".
            (b"\x89\x05", true, OpCode::Ping, None, 5, 2),
            (b"\x8a\x85\x37\xfa\x21\x3d", true, OpCode::Pong, Some([0x37, 0xfa, 0x21, 0x3d]), 5, 6),
            // 256 bytes binary message in a single unmasked frame.
            (b"\x82\x7E\x01\x00", true, OpCode::Binary, None, 256, 4),
            // 64KiB binary message in a single unmasked frame.
            (b"\x82\x7F\x00\x00\x00\x00\x00\x01\x00\x00", true, OpCode::Binary, None, 65536, 10),
        ];
        for &(bytes, fin, opcode, mask, len, header_len) in table {
            let (h, n) = parse_complete(bytes);
            assert_eq!((h.fin, h.opcode, h.mask, h.payload_len, n), (fin, opcode, mask, len, header_len));
            let mut out = [0u8; FrameHeader::MAX_LEN];
            assert_eq!(h.encode(&mut out), header_len);
            assert_eq!(&out[..header_len], bytes);
            assert_eq!(h.encoded_len(), header_len);
        }
    }

    #[test]
    fn partial_headers_ask_for_the_right_length() {
        assert_eq!(FrameHeader::parse(b"").unwrap(), Status::Partial(2));
        assert_eq!(FrameHeader::parse(b"\x81").unwrap(), Status::Partial(2));
        assert_eq!(FrameHeader::parse(b"\x81\x85\x00").unwrap(), Status::Partial(6));
        assert_eq!(FrameHeader::parse(b"\x82\x7E\x01").unwrap(), Status::Partial(4));
        assert_eq!(FrameHeader::parse(b"\x82\xFF\x00").unwrap(), Status::Partial(14));
    }

    #[test]
    fn rejects_reserved_opcodes_and_top_bit_length() {
        assert_eq!(FrameHeader::parse(b"\x83\x00"), Err(ProtocolError::ReservedOpcode(3)));
        assert_eq!(FrameHeader::parse(b"\x8B\x00"), Err(ProtocolError::ReservedOpcode(0xB)));
        let top = b"\x82\x7F\x80\x00\x00\x00\x00\x00\x00\x00";
        assert_eq!(FrameHeader::parse(top), Err(ProtocolError::InvalidPayloadLength));
    }

    #[test]
    fn validate_applies_role_rsv_and_control_rules() {
        let h = |b0: u8, b1: u8| parse_complete(&[b0, b1, 0, 0, 0, 0]).0;
        assert_eq!(h(0x81, 0x80).validate(true, 0), Ok(()));
        assert_eq!(h(0x81, 0x00).validate(true, 0), Err(ProtocolError::UnmaskedFrame));
        assert_eq!(h(0x81, 0x80).validate(false, 0), Err(ProtocolError::MaskedFrame));
        assert_eq!(h(0xC1, 0x00).validate(false, 0), Err(ProtocolError::ReservedBits(4)));
        assert_eq!(h(0xC1, 0x00).validate(false, 0b100), Ok(()));
        assert_eq!(h(0x91, 0x00).validate(false, 0b100), Err(ProtocolError::ReservedBits(1)));
        assert_eq!(h(0x09, 0x00).validate(false, 0), Err(ProtocolError::FragmentedControlFrame));
        let long_ping = parse_complete(b"\x89\x7E\x00\x7E").0;
        assert_eq!(long_ping.validate(false, 0), Err(ProtocolError::ControlFrameTooLong));
        assert_eq!(h(0x89, 0x7D).validate(false, 0), Ok(()));
    }

    #[test]
    fn encode_uses_minimal_length_forms() {
        for (len, header_len) in [(0u64, 2), (125, 2), (126, 4), (0xFFFF, 4), (0x1_0000, 10), (u64::MAX >> 1, 10)] {
            let h = FrameHeader { fin: true, rsv: 0, opcode: OpCode::Binary, mask: None, payload_len: len };
            let mut out = [0u8; FrameHeader::MAX_LEN];
            assert_eq!(h.encode(&mut out), header_len);
            assert_eq!(parse_complete(&out[..header_len]).0, h);
        }
    }
}
