//! Frame opcodes (RFC 6455 §5.2, §11.8).

use crate::protocol::ProtocolError;

/// A frame's opcode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OpCode {
    /// `0x0`: continues a fragmented message.
    Continuation,
    /// `0x1`: first frame of a text message.
    Text,
    /// `0x2`: first frame of a binary message.
    Binary,
    /// `0x8`: close.
    Close,
    /// `0x9`: ping.
    Ping,
    /// `0xA`: pong.
    Pong,
}

impl OpCode {
    /// Parses the low four bits of a frame's first byte. `0x3`–`0x7` and
    /// `0xB`–`0xF` are reserved (RFC 6455 §5.2) and rejected.
    pub const fn from_u8(op: u8) -> Result<OpCode, ProtocolError> {
        Ok(match op {
            0x0 => OpCode::Continuation,
            0x1 => OpCode::Text,
            0x2 => OpCode::Binary,
            0x8 => OpCode::Close,
            0x9 => OpCode::Ping,
            0xA => OpCode::Pong,
            other => return Err(ProtocolError::ReservedOpcode(other)),
        })
    }

    /// The four-bit wire value.
    #[must_use]
    pub const fn as_u8(self) -> u8 {
        match self {
            OpCode::Continuation => 0x0,
            OpCode::Text => 0x1,
            OpCode::Binary => 0x2,
            OpCode::Close => 0x8,
            OpCode::Ping => 0x9,
            OpCode::Pong => 0xA,
        }
    }

    /// Control frames have the high bit of the opcode set (RFC 6455 §5.5).
    #[must_use]
    pub const fn is_control(self) -> bool {
        self.as_u8() & 0x8 != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_nibble_maps_per_rfc_5_2() {
        for op in 0u8..16 {
            match OpCode::from_u8(op) {
                Ok(code) => {
                    assert_eq!(code.as_u8(), op);
                    assert_eq!(code.is_control(), op >= 8);
                }
                Err(e) => {
                    assert!(matches!(op, 3..=7 | 0xB..=0xF), "{op}");
                    assert_eq!(e, ProtocolError::ReservedOpcode(op));
                }
            }
        }
    }
}
