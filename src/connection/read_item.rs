//! [`ReadItem`]: what the read loop (`read.rs`) decodes for its caller:
//! whole [`Message`]s for `next`, the [`Event`]s of a streamed message for
//! [`MessageReader`](crate::MessageReader).

use bytes::BytesMut;

use super::stats::Counters;
use crate::protocol::{DecodeError, Event, Message, MessageDecoder};

/// What the read loop decodes for its caller: whole [`Message`]s, or the
/// [`Event`]s of a streamed one.
pub(crate) trait ReadItem: Sized {
    /// The decoder's fast path, when this kind of item has one: a whole
    /// data item at the start of `buf`, or `None` (and `buf` untouched).
    #[inline(always)]
    fn decode_data(_decoder: &mut MessageDecoder, _buf: &mut BytesMut) -> Option<Result<Self, DecodeError>> {
        None
    }
    /// The next item in `buf`, or `None` when more bytes are needed.
    fn decode(decoder: &mut MessageDecoder, buf: &mut BytesMut) -> Result<Option<Self>, DecodeError>;
    /// The control message this item is, if it is one.
    fn control(&self) -> Option<&Message>;
    /// This item as a control message (for a close, kept while finishing).
    fn into_control(self) -> Option<Message>;
    /// A control message as this kind of item.
    fn from_control(msg: Message) -> Self;
    /// Adds this item to the received data counters, if it is data.
    fn count(&self, counters: &Counters);
}

impl ReadItem for Message {
    /// A whole single-frame data message, inlined into the read loop.
    #[inline(always)]
    fn decode_data(decoder: &mut MessageDecoder, buf: &mut BytesMut) -> Option<Result<Self, DecodeError>> {
        decoder.decode_whole(buf)
    }

    /// The general path, after the fast path declined.
    fn decode(decoder: &mut MessageDecoder, buf: &mut BytesMut) -> Result<Option<Self>, DecodeError> {
        decoder.decode_frames(buf)
    }

    #[inline]
    fn control(&self) -> Option<&Message> {
        match self {
            Message::Text(_) | Message::Binary(_) => None,
            control => Some(control),
        }
    }

    fn into_control(self) -> Option<Message> {
        Some(self)
    }

    fn from_control(msg: Message) -> Self {
        msg
    }

    #[inline(always)]
    fn count(&self, counters: &Counters) {
        match self {
            Message::Text(text) => counters.received(true, text.len()),
            Message::Binary(payload) => counters.received(true, payload.len()),
            _ => {}
        }
    }
}

impl ReadItem for Event {
    fn decode(decoder: &mut MessageDecoder, buf: &mut BytesMut) -> Result<Option<Self>, DecodeError> {
        decoder.decode_chunk(buf)
    }

    fn control(&self) -> Option<&Message> {
        match self {
            Event::Control(msg) => Some(msg),
            _ => None,
        }
    }

    fn into_control(self) -> Option<Message> {
        match self {
            Event::Control(msg) => Some(msg),
            _ => None,
        }
    }

    fn from_control(msg: Message) -> Self {
        Event::Control(msg)
    }

    fn count(&self, counters: &Counters) {
        match self {
            Event::Data(piece) => counters.received(false, piece.len()),
            Event::End => counters.received(true, 0),
            Event::Start { .. } | Event::Control(_) => {}
        }
    }
}
