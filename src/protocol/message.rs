//! [`Message`]: what the stream yields and the sink takes.

use bytes::Bytes;

use crate::protocol::Utf8Bytes;
use crate::protocol::{CloseCode, CloseFrame, OpCode};

/// A WebSocket message.
///
/// Data messages are [`Text`](Message::Text) (always valid UTF-8) and
/// [`Binary`](Message::Binary). Control messages (`Ping`, `Pong`, `Close`)
/// are surfaced too; replies to them (pong, close echo) are sent
/// automatically. Payloads are [`Bytes`], so cloning a message never copies.
///
/// ```
/// use silverback::Message;
///
/// let msg = Message::text("hello");
/// assert!(msg.is_text());
/// assert_eq!(msg.as_text(), Some("hello"));
/// assert_eq!(msg.into_data(), bytes::Bytes::from_static(b"hello"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// A text message.
    Text(Utf8Bytes),
    /// A binary message.
    Binary(Bytes),
    /// A ping; at most 125 bytes. A received ping is answered automatically.
    Ping(Bytes),
    /// A pong; at most 125 bytes.
    Pong(Bytes),
    /// A close frame, with its code and reason if it carried one.
    Close(Option<CloseFrame>),
}

impl Message {
    /// A text message.
    pub fn text(text: impl Into<Utf8Bytes>) -> Self {
        Message::Text(text.into())
    }

    /// A binary message.
    pub fn binary(data: impl Into<Bytes>) -> Self {
        Message::Binary(data.into())
    }

    /// A ping with the given payload (at most 125 bytes).
    pub fn ping(data: impl Into<Bytes>) -> Self {
        Message::Ping(data.into())
    }

    /// A pong with the given payload (at most 125 bytes).
    pub fn pong(data: impl Into<Bytes>) -> Self {
        Message::Pong(data.into())
    }

    /// A close message.
    #[must_use]
    pub fn close(frame: Option<CloseFrame>) -> Self {
        Message::Close(frame)
    }

    /// Whether this is a text message.
    #[must_use]
    pub fn is_text(&self) -> bool {
        matches!(self, Message::Text(_))
    }

    /// Whether this is a binary message.
    #[must_use]
    pub fn is_binary(&self) -> bool {
        matches!(self, Message::Binary(_))
    }

    /// Whether this is a ping.
    #[must_use]
    pub fn is_ping(&self) -> bool {
        matches!(self, Message::Ping(_))
    }

    /// Whether this is a pong.
    #[must_use]
    pub fn is_pong(&self) -> bool {
        matches!(self, Message::Pong(_))
    }

    /// Whether this is a close message.
    #[must_use]
    pub fn is_close(&self) -> bool {
        matches!(self, Message::Close(_))
    }

    /// The text, for a text message.
    #[must_use]
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Message::Text(text) => Some(text.as_str()),
            _ => None,
        }
    }

    /// The payload length in bytes (for a close message, the reason's length).
    #[must_use]
    #[inline]
    pub fn len(&self) -> usize {
        match self {
            Message::Text(t) => t.len(),
            Message::Binary(b) | Message::Ping(b) | Message::Pong(b) => b.len(),
            Message::Close(f) => f.as_ref().map_or(0, |f| f.reason.len()),
        }
    }

    /// Whether the payload is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The payload as bytes (for a close message, the reason).
    #[must_use]
    pub fn into_data(self) -> Bytes {
        match self {
            Message::Text(t) => t.into_bytes(),
            Message::Binary(b) | Message::Ping(b) | Message::Pong(b) => b,
            Message::Close(f) => f.map(|f| f.reason.into_bytes()).unwrap_or_default(),
        }
    }

    /// The opcode this message is sent with.
    pub(crate) fn opcode(&self) -> OpCode {
        match self {
            Message::Text(_) => OpCode::Text,
            Message::Binary(_) => OpCode::Binary,
            Message::Ping(_) => OpCode::Ping,
            Message::Pong(_) => OpCode::Pong,
            Message::Close(_) => OpCode::Close,
        }
    }
}

impl From<String> for Message {
    fn from(text: String) -> Self {
        Message::text(text)
    }
}

impl From<&str> for Message {
    fn from(text: &str) -> Self {
        Message::text(text)
    }
}

impl From<Utf8Bytes> for Message {
    fn from(text: Utf8Bytes) -> Self {
        Message::Text(text)
    }
}

impl From<Vec<u8>> for Message {
    fn from(data: Vec<u8>) -> Self {
        Message::binary(data)
    }
}

impl From<Bytes> for Message {
    fn from(data: Bytes) -> Self {
        Message::Binary(data)
    }
}

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

#[cfg(test)]
mod close_tests {
    use super::*;

    #[test]
    fn close_codes_of_messages() {
        let normal = Message::Close(Some(CloseFrame::normal()));
        assert!(normal.is_close_with(&[CloseCode::NORMAL]));
        assert!(!normal.is_close_with(&[CloseCode::GOING_AWAY]));
        assert!(!Message::text("x").is_close_with(&[CloseCode::NORMAL]));
        assert!(!Message::text("x").is_unexpected_close(&[]));
        assert!(Message::Close(None).is_unexpected_close(&[CloseCode::NORMAL]));
        assert!(!Message::Close(None).is_unexpected_close(&[CloseCode::NO_STATUS]));
    }
}
