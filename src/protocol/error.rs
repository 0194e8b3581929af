//! The protocol core's errors: what the peer did wrong ([`ProtocolError`]),
//! which limit it broke ([`CapacityError`]), and [`DecodeError`], the one
//! the decoder returns. The crate-wide `Error` wraps them; the close code
//! each one is answered with is decided here, and only here.

use std::{error, fmt};

use crate::protocol::CloseCode;

/// A violation of RFC 6455 by the peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProtocolError {
    /// A frame used a reserved opcode (RFC 6455 §5.2).
    ReservedOpcode(u8),
    /// A reserved bit was set with no extension negotiated to give it meaning
    /// (RFC 6455 §5.2).
    ReservedBits(u8),
    /// A client sent an unmasked frame (RFC 6455 §5.1).
    UnmaskedFrame,
    /// A server sent a masked frame (RFC 6455 §5.1).
    MaskedFrame,
    /// A control frame carried more than 125 bytes (RFC 6455 §5.5).
    ControlFrameTooLong,
    /// A control frame was fragmented (RFC 6455 §5.5).
    FragmentedControlFrame,
    /// A continuation frame arrived with no message in progress (RFC 6455 §5.4).
    UnexpectedContinuation,
    /// A new data frame arrived while a fragmented message was in progress
    /// (RFC 6455 §5.4).
    ExpectedContinuation,
    /// A 64-bit payload length had its most significant bit set (RFC 6455 §5.2).
    InvalidPayloadLength,
    /// A close frame carried a one-byte payload (RFC 6455 §5.5.1).
    InvalidClosePayload,
    /// A close frame carried a code not allowed on the wire (RFC 6455 §7.4).
    InvalidCloseCode(u16),
    /// A text message or close reason was not valid UTF-8 (RFC 6455 §8.1).
    InvalidUtf8,
    /// The transport ended in the middle of a frame or without a close frame.
    UnexpectedEof,
    /// RSV1 (the permessage-deflate bit) was set on a control frame or a
    /// continuation frame (RFC 7692 §6.1).
    CompressedControlOrContinuation,
    /// A compressed message was not valid DEFLATE data (RFC 7692 §7.2.2).
    InvalidCompressedData,
}

/// A configured limit was exceeded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CapacityError {
    /// A frame announced a payload above `Limits::max_frame_size`.
    FrameTooLarge {
        /// The announced payload length.
        len: u64,
        /// The configured maximum.
        max: usize,
    },
    /// A message grew above `Limits::max_message_size`.
    MessageTooLarge {
        /// The message length so far.
        len: u64,
        /// The configured maximum.
        max: usize,
    },
    /// A control frame we were asked to send is longer than 125 bytes.
    ControlFrameTooLong {
        /// The payload length asked for.
        len: usize,
    },
    /// A compressed message decompressed to more than
    /// `Limits::max_message_size`; decompression stopped there.
    InflatedMessageTooLarge {
        /// The configured maximum.
        max: usize,
    },
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProtocolError::ReservedOpcode(op) => write!(f, "reserved opcode {op:#x}"),
            ProtocolError::ReservedBits(bits) => {
                write!(f, "reserved bits {bits:#05b} set without an extension")
            }
            ProtocolError::UnmaskedFrame => f.write_str("client frame is not masked"),
            ProtocolError::MaskedFrame => f.write_str("server frame is masked"),
            ProtocolError::ControlFrameTooLong => f.write_str("control frame longer than 125 bytes"),
            ProtocolError::FragmentedControlFrame => f.write_str("fragmented control frame"),
            ProtocolError::UnexpectedContinuation => f.write_str("continuation frame without a message in progress"),
            ProtocolError::ExpectedContinuation => f.write_str("new data frame inside a fragmented message"),
            ProtocolError::InvalidPayloadLength => f.write_str("64-bit payload length has its top bit set"),
            ProtocolError::InvalidClosePayload => f.write_str("close payload of one byte"),
            ProtocolError::InvalidCloseCode(code) => write!(f, "close code {code} not allowed"),
            ProtocolError::InvalidUtf8 => f.write_str("invalid utf-8 in text"),
            ProtocolError::UnexpectedEof => f.write_str("connection ended without a close frame"),
            ProtocolError::CompressedControlOrContinuation => {
                f.write_str("compression bit set on a control or continuation frame")
            }
            ProtocolError::InvalidCompressedData => f.write_str("compressed message is not valid deflate data"),
        }
    }
}

impl error::Error for ProtocolError {}

impl fmt::Display for CapacityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CapacityError::FrameTooLarge { len, max } => {
                write!(f, "frame of {len} bytes exceeds the limit of {max}")
            }
            CapacityError::MessageTooLarge { len, max } => {
                write!(f, "message of {len} bytes exceeds the limit of {max}")
            }
            CapacityError::ControlFrameTooLong { len } => {
                write!(f, "control frame payload of {len} bytes exceeds 125")
            }
            CapacityError::InflatedMessageTooLarge { max } => {
                write!(f, "message exceeds the limit of {max} bytes once decompressed")
            }
        }
    }
}

impl error::Error for CapacityError {}

impl ProtocolError {
    /// The close code a connection failed by this violation is closed with
    /// (RFC 6455 §7.4.1): 1007 for invalid UTF-8 or undecodable compressed
    /// data, 1002 for every other violation, none for a connection that
    /// simply ended (nothing can be sent on it).
    #[must_use]
    pub const fn close_code(&self) -> Option<CloseCode> {
        match self {
            ProtocolError::InvalidUtf8 | ProtocolError::InvalidCompressedData => Some(CloseCode::INVALID_PAYLOAD),
            ProtocolError::UnexpectedEof => None,
            _ => Some(CloseCode::PROTOCOL_ERROR),
        }
    }
}

impl CapacityError {
    /// The close code a connection failed by this limit is closed with:
    /// 1009 for what the peer sent; none for a control frame we were asked
    /// to send (the connection is unaffected).
    #[must_use]
    pub const fn close_code(&self) -> Option<CloseCode> {
        match self {
            CapacityError::ControlFrameTooLong { .. } => None,
            _ => Some(CloseCode::MESSAGE_TOO_BIG),
        }
    }
}

/// Why the decoder failed: a violation by the peer or a limit exceeded. The
/// connection must then be failed with [`DecodeError::close_code`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// The peer violated RFC 6455 or RFC 7692.
    Protocol(ProtocolError),
    /// The peer exceeded a configured limit.
    Capacity(CapacityError),
}

impl DecodeError {
    /// The close code to fail the connection with.
    #[must_use]
    pub const fn close_code(&self) -> Option<CloseCode> {
        match self {
            DecodeError::Protocol(e) => e.close_code(),
            DecodeError::Capacity(e) => e.close_code(),
        }
    }
}

impl From<ProtocolError> for DecodeError {
    fn from(e: ProtocolError) -> Self {
        DecodeError::Protocol(e)
    }
}

impl From<CapacityError> for DecodeError {
    fn from(e: CapacityError) -> Self {
        DecodeError::Capacity(e)
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Protocol(e) => e.fmt(f),
            DecodeError::Capacity(e) => e.fmt(f),
        }
    }
}

impl error::Error for DecodeError {}
