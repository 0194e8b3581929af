//! The one public [`Error`] type and its categories.

use std::{error, fmt, io};

use crate::handshake::HandshakeError;
pub use crate::protocol::{CapacityError, DecodeError, ProtocolError};
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
            Error::Protocol(e) => e.close_code(),
            Error::Capacity(e) => e.close_code(),
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

impl From<DecodeError> for Error {
    fn from(e: DecodeError) -> Self {
        match e {
            DecodeError::Protocol(e) => Error::Protocol(e),
            DecodeError::Capacity(e) => Error::Capacity(e),
        }
    }
}

impl From<HandshakeError> for Error {
    fn from(e: HandshakeError) -> Self {
        Error::Handshake(e)
    }
}

impl Error {
    /// The close code that describes how this error ended the connection,
    /// from our side's point of view: the code we sent for a protocol or
    /// capacity error (1002, 1007, 1009) or a timeout (1001), and
    /// [`CloseCode::ABNORMAL`] (1006, never sent on the wire) when the
    /// connection broke without a closing handshake: end of stream without
    /// a close frame, reset, broken pipe. `None` for errors that do not end
    /// a connection this way ([`Error::Closed`], handshake errors).
    #[must_use]
    pub fn ended_with(&self) -> Option<CloseCode> {
        match self {
            Error::Protocol(ProtocolError::UnexpectedEof) => Some(CloseCode::ABNORMAL),
            Error::Io(e) if is_broken_connection(e) => Some(CloseCode::ABNORMAL),
            other => other.close_code(),
        }
    }

    /// Whether this error ended the connection with a code *not* in
    /// `expected` (gorilla's `IsUnexpectedCloseError` for errors): a
    /// dropped connection counts as 1006.
    ///
    /// ```
    /// use silverback::{CloseCode, Error, ProtocolError};
    ///
    /// let dropped = Error::Protocol(ProtocolError::UnexpectedEof);
    /// assert!(dropped.is_unexpected_close(&[CloseCode::NORMAL, CloseCode::GOING_AWAY]));
    /// assert!(!dropped.is_unexpected_close(&[CloseCode::ABNORMAL]));
    /// assert!(!Error::Closed.is_unexpected_close(&[]));
    /// ```
    #[must_use]
    pub fn is_unexpected_close(&self, expected: &[CloseCode]) -> bool {
        self.ended_with().is_some_and(|code| !expected.contains(&code))
    }
}

/// I/O errors that mean the peer or the network dropped the connection.
fn is_broken_connection(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::UnexpectedEof
            | io::ErrorKind::NotConnected
    )
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

    #[test]
    fn how_errors_ended_the_connection() {
        let table: &[(Error, Option<u16>)] = &[
            (ProtocolError::UnexpectedEof.into(), Some(1006)),
            (io::Error::from(io::ErrorKind::ConnectionReset).into(), Some(1006)),
            (io::Error::from(io::ErrorKind::PermissionDenied).into(), None),
            (ProtocolError::InvalidUtf8.into(), Some(1007)),
            (CapacityError::MessageTooLarge { len: 2, max: 1 }.into(), Some(1009)),
            (Error::Timeout, Some(1001)),
            (Error::Closed, None),
        ];
        for (err, code) in table {
            assert_eq!(err.ended_with().map(u16::from), *code, "{err:?}");
        }
    }
}
