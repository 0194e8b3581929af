//! Is-this-close-expected checks, like gorilla/websocket's `IsCloseError`
//! and `IsUnexpectedCloseError`, for the two ways a connection ends: the
//! peer's close frame (a [`Message::Close`]) or an [`Error`].

use std::io;

use crate::error::ProtocolError;
use crate::protocol::CloseCode;
use crate::{Error, Message};

impl Message {
    /// The close code of a close message: the frame's code, or
    /// [`CloseCode::NO_STATUS`] (1005) for a close frame without one (RFC
    /// 6455 §7.1.5). `None` for other messages.
    ///
    /// ```
    /// use silverback::{CloseCode, CloseFrame, Message};
    ///
    /// assert_eq!(Message::Close(None).close_code(), Some(CloseCode::NO_STATUS));
    /// assert_eq!(Message::Close(Some(CloseFrame::normal())).close_code(), Some(CloseCode::NORMAL));
    /// assert_eq!(Message::text("hi").close_code(), None);
    /// ```
    #[must_use]
    pub fn close_code(&self) -> Option<CloseCode> {
        match self {
            Message::Close(Some(frame)) => Some(frame.code),
            Message::Close(None) => Some(CloseCode::NO_STATUS),
            _ => None,
        }
    }

    /// Whether this is a close message with one of `codes` (gorilla's
    /// `IsCloseError`).
    #[must_use]
    pub fn is_close_with(&self, codes: &[CloseCode]) -> bool {
        self.close_code().is_some_and(|code| codes.contains(&code))
    }

    /// Whether this is a close message with a code *not* in `expected`
    /// (gorilla's `IsUnexpectedCloseError`): what a server logs when a
    /// client leaves other than by `1000` or `1001`.
    ///
    /// ```
    /// use silverback::{CloseCode, CloseFrame, Message};
    ///
    /// let expected = [CloseCode::NORMAL, CloseCode::GOING_AWAY];
    /// let bye = Message::Close(Some(CloseFrame::new(CloseCode::GOING_AWAY, "")));
    /// let crash = Message::Close(Some(CloseFrame::new(CloseCode::INTERNAL_ERROR, "")));
    /// assert!(!bye.is_unexpected_close(&expected));
    /// assert!(crash.is_unexpected_close(&expected));
    /// ```
    #[must_use]
    pub fn is_unexpected_close(&self, expected: &[CloseCode]) -> bool {
        self.close_code().is_some_and(|code| !expected.contains(&code))
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
    use crate::{CapacityError, CloseFrame};

    #[test]
    fn messages() {
        let normal = Message::Close(Some(CloseFrame::normal()));
        assert!(normal.is_close_with(&[CloseCode::NORMAL]));
        assert!(!normal.is_close_with(&[CloseCode::GOING_AWAY]));
        assert!(!Message::text("x").is_close_with(&[CloseCode::NORMAL]));
        assert!(!Message::text("x").is_unexpected_close(&[]));
        assert!(Message::Close(None).is_unexpected_close(&[CloseCode::NORMAL]));
        assert!(!Message::Close(None).is_unexpected_close(&[CloseCode::NO_STATUS]));
    }

    #[test]
    fn errors() {
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
