//! The one public [`Error`] type and its categories.

use std::{error, fmt, io};

use crate::handshake::HandshakeError;
use crate::CloseCode;

/// Shorthand for `Result<T, silverback::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong on a WebSocket connection.
///
/// Errors come in categories; the detail of each lives in its own
/// `#[non_exhaustive]` enum so that matching on the category stays stable.
/// After a fatal error (anything but [`Error::Closed`] on a clean close), every
/// later call on the same connection returns an error of the same kind: errors
/// are sticky.
///
/// ```
/// fn assert_send_sync<T: Send + Sync + 'static>() {}
/// assert_send_sync::<silverback::Error>();
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The underlying transport failed.
    Io(io::Error),
    /// The peer violated RFC 6455; we sent close 1002 or 1007.
    Protocol(ProtocolError),
    /// A configured limit was exceeded; we sent close 1009 where it was the
    /// peer's doing.
    Capacity(CapacityError),
    /// The opening HTTP handshake failed.
    Handshake(HandshakeError),
    /// The connection is closed: the closing handshake finished, or a close
    /// frame was already sent and no more data may follow it.
    Closed,
    /// A deadline passed: the closing handshake did not finish within
    /// `Config::close_timeout`, nothing arrived within
    /// `Config::read_timeout`, or a flush did not finish within
    /// `Config::write_timeout`. The last two fail the connection (close
    /// 1001 is sent if it still can be).
    Timeout,
    /// A value could not be turned into JSON, or a message's payload was
    /// not the JSON expected (`json` feature). The connection is unaffected.
    #[cfg(feature = "json")]
    Json(serde_json::Error),
}

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

impl Error {
    /// The close code this error is answered with on the wire, if any.
    ///
    /// This is the one place that maps errors to close codes: 1007 for invalid
    /// UTF-8 or undecodable compressed data, 1002 for every other protocol
    /// violation, 1009 for a message or frame above the limits (decompressed
    /// size included).
    #[must_use]
    pub fn close_code(&self) -> Option<CloseCode> {
        match self {
            Error::Protocol(ProtocolError::InvalidUtf8 | ProtocolError::InvalidCompressedData) => {
                Some(CloseCode::INVALID_PAYLOAD)
            }
            Error::Protocol(ProtocolError::UnexpectedEof) => None,
            Error::Protocol(_) => Some(CloseCode::PROTOCOL_ERROR),
            Error::Capacity(CapacityError::FrameTooLarge { .. })
            | Error::Capacity(CapacityError::MessageTooLarge { .. })
            | Error::Capacity(CapacityError::InflatedMessageTooLarge { .. }) => {
                Some(CloseCode::MESSAGE_TOO_BIG)
            }
            // A peer that went silent (or stopped reading): we are going away.
            Error::Timeout => Some(CloseCode::GOING_AWAY),
            _ => None,
        }
    }

    /// Whether this error only reports that the connection is closed.
    #[must_use]
    pub fn is_closed(&self) -> bool {
        matches!(self, Error::Closed)
    }

    /// A copy of this error for returning again from later calls (sticky
    /// errors). I/O errors keep their kind and message.
    pub(crate) fn replay(&self) -> Error {
        match self {
            Error::Io(e) => Error::Io(io::Error::new(e.kind(), e.to_string())),
            Error::Protocol(e) => Error::Protocol(*e),
            Error::Capacity(e) => Error::Capacity(*e),
            Error::Handshake(_) => Error::Closed,
            Error::Closed => Error::Closed,
            Error::Timeout => Error::Timeout,
            #[cfg(feature = "json")]
            Error::Json(e) => Error::Json(<serde_json::Error as serde::de::Error>::custom(e)),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io(_) => f.write_str("i/o error"),
            Error::Protocol(_) => f.write_str("websocket protocol violation"),
            Error::Capacity(_) => f.write_str("websocket limit exceeded"),
            Error::Handshake(_) => f.write_str("websocket handshake failed"),
            Error::Closed => f.write_str("connection closed"),
            Error::Timeout => f.write_str("timed out"),
            #[cfg(feature = "json")]
            Error::Json(_) => f.write_str("json message error"),
        }
    }
}

impl error::Error for Error {
    fn source(&self) -> Option<&(dyn error::Error + 'static)> {
        match self {
            Error::Io(e) => Some(e),
            Error::Protocol(e) => Some(e),
            Error::Capacity(e) => Some(e),
            Error::Handshake(e) => Some(e),
            Error::Closed | Error::Timeout => None,
            #[cfg(feature = "json")]
            Error::Json(e) => Some(e),
        }
    }
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
            ProtocolError::UnexpectedContinuation => {
                f.write_str("continuation frame without a message in progress")
            }
            ProtocolError::ExpectedContinuation => {
                f.write_str("new data frame inside a fragmented message")
            }
            ProtocolError::InvalidPayloadLength => {
                f.write_str("64-bit payload length has its top bit set")
            }
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

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        Error::Io(e)
    }
}

impl From<ProtocolError> for Error {
    fn from(e: ProtocolError) -> Self {
        Error::Protocol(e)
    }
}

impl From<CapacityError> for Error {
    fn from(e: CapacityError) -> Self {
        Error::Capacity(e)
    }
}

impl From<HandshakeError> for Error {
    fn from(e: HandshakeError) -> Self {
        Error::Handshake(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_errors_to_close_codes() {
        let table: &[(Error, Option<u16>)] = &[
            (ProtocolError::InvalidUtf8.into(), Some(1007)),
            (ProtocolError::ReservedOpcode(3).into(), Some(1002)),
            (ProtocolError::UnmaskedFrame.into(), Some(1002)),
            (ProtocolError::UnexpectedEof.into(), None),
            (CapacityError::MessageTooLarge { len: 9, max: 8 }.into(), Some(1009)),
            (CapacityError::FrameTooLarge { len: 9, max: 8 }.into(), Some(1009)),
            (ProtocolError::CompressedControlOrContinuation.into(), Some(1002)),
            (ProtocolError::InvalidCompressedData.into(), Some(1007)),
            (CapacityError::InflatedMessageTooLarge { max: 8 }.into(), Some(1009)),
            (Error::Timeout, Some(1001)),
            (Error::Closed, None),
        ];
        for (err, code) in table {
            assert_eq!(err.close_code().map(u16::from), *code, "{err:?}");
        }
    }

    #[test]
    fn display_is_lowercase_and_chains() {
        let err = Error::from(ProtocolError::InvalidCloseCode(1005));
        assert_eq!(err.to_string(), "websocket protocol violation");
        let source = error::Error::source(&err).unwrap();
        assert_eq!(source.to_string(), "close code 1005 not allowed");
        let io = Error::from(io::Error::new(io::ErrorKind::BrokenPipe, "gone"));
        assert_eq!(io.replay().to_string(), "i/o error");
        assert!(matches!(io.replay(), Error::Io(e) if e.kind() == io::ErrorKind::BrokenPipe));
    }

    #[test]
    fn error_is_small() {
        assert!(std::mem::size_of::<Error>() <= 32, "{}", std::mem::size_of::<Error>());
    }
}
