//! [`MessageReader`]: one received data message of any size as an
//! `AsyncRead`, in bounded memory, like gorilla/websocket's `NextReader`
//! (its twin for sending is [`MessageWriter`](crate::MessageWriter)).
//!
//! [`ReadHalf::next_reader`] (or [`WebSocketStream::next_reader`]) waits for
//! the next data message to begin and returns its [`MessageKind`] and a
//! reader over its payload. The payload is handed out as it arrives, a
//! partial frame included: unmasked, inflated when it was compressed, and
//! for text validated as UTF-8 before any byte of it is read (invalid text
//! still fails the connection with 1007 as soon as it is seen). Nothing is
//! gathered, so a message costs about one read buffer (at most 64 KiB) plus,
//! for a compressed one, about 100 KiB of inflated output, however long it is.
//! For the same reason [`Limits::max_message_size`](crate::Limits) does not
//! apply to a streamed message (it bounds what is *buffered*, and here
//! nothing is): the application decides how much it reads.
//! [`Limits::max_frame_size`](crate::Limits) still applies to every frame.
//!
//! Control frames that arrive between the message's frames are handled on
//! the way: pings are answered, pongs are dropped, and a close frame is
//! echoed, after which the reader fails with `UnexpectedEof` (the message
//! was cut short) and `next_reader` returns `None`. A connection failure
//! (bad UTF-8, a protocol violation, a frame above the limit) sends its
//! close code and surfaces as an `io::Error` whose inner error is the
//! typed [`Error`] (`err.get_ref()` and downcast, or `into_inner`).
//!
//! Dropping a reader before the end of its message discards the rest of
//! the message: the next `next_reader` or `StreamExt::next` skips it.
//!

use std::fmt;
use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncBufRead, AsyncRead, AsyncWrite, ReadBuf};

use super::{into_io, ReadHalf};
use crate::error::{Error, ProtocolError, Result};
use crate::protocol::{Event, Message, OpCode};

/// The kind of a data message: what [`ReadHalf::next_reader`] found, or
/// what [`WriteHalf::next_writer`](crate::WriteHalf::next_writer) sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MessageKind {
    /// A text message: its payload is UTF-8 (RFC 6455 §5.6).
    Text,
    /// A binary message.
    Binary,
}

impl MessageKind {
    /// Whether this is [`MessageKind::Text`].
    #[must_use]
    pub const fn is_text(self) -> bool {
        matches!(self, MessageKind::Text)
    }

    /// The opcode of the message's first frame.
    #[must_use]
    pub const fn opcode(self) -> OpCode {
        match self {
            MessageKind::Text => OpCode::Text,
            MessageKind::Binary => OpCode::Binary,
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> ReadHalf<S> {
    /// Waits for the next data message and returns its kind and a reader
    /// over its payload, like gorilla/websocket's `NextReader`; see
    /// [`MessageReader`]. Skips what is left of a message whose reader was
    /// dropped.
    ///
    /// Control frames are handled, not returned: pings are answered, pongs
    /// dropped, and the peer's close frame is echoed, after which this
    /// returns `None` (use `StreamExt::next` to see control frames).
    /// `Some(Err(_))` reports a failed connection, once; `None` follows.
    ///
    /// # Cancellation safety
    ///
    /// Cancel safe: dropped before it completes, no message is lost.
    pub async fn next_reader(&mut self) -> Option<Result<(MessageKind, MessageReader<'_, S>)>> {
        let kind = match poll_fn(|cx| self.poll_next_start(cx)).await? {
            Ok(kind) => kind,
            Err(e) => return Some(Err(e)),
        };
        Some(Ok((kind, MessageReader { half: self, kind, pending: BytesMut::new(), done: false, error: None })))
    }

    fn poll_next_start(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<MessageKind>>> {
        loop {
            match ready!(self.poll_read::<Event>(cx)) {
                Some(Ok(Event::Start { text })) => {
                    let kind = if text { MessageKind::Text } else { MessageKind::Binary };
                    return Poll::Ready(Some(Ok(kind)));
                }
                // The peer's close (echoed): no more messages.
                Some(Ok(Event::Control(Message::Close(_)))) | None => return Poll::Ready(None),
                // Pings (answered), pongs, and the rest of a message whose
                // reader was dropped.
                Some(Ok(_)) => {}
                Some(Err(e)) => return Poll::Ready(Some(Err(e))),
            }
        }
    }
}

/// The payload of one received data message, as an `AsyncRead` (and
/// `AsyncBufRead`), from [`ReadHalf::next_reader`] or
/// [`WebSocketStream::next_reader`](crate::WebSocketStream::next_reader).
///
/// Reads return the payload as it arrives, a partial frame included, and
/// `Ok(0)` (end of file) once the message is complete. The payload is
/// unmasked, inflated if it was compressed (permessage-deflate), and for
/// text validated as UTF-8 before any of it can be read; invalid text still
/// fails the connection with close 1007 as soon as it arrives.
///
/// # Memory and limits
///
/// Nothing is gathered: a message costs about one read buffer (at most
/// 64 KiB), plus for a compressed one about 100 KiB of inflated output,
/// whatever its size. So [`Limits::max_message_size`](crate::Limits::max_message_size),
/// which bounds what is *buffered*, does not apply to a streamed message:
/// the application decides how much it reads.
/// [`Limits::max_frame_size`](crate::Limits::max_frame_size) still applies
/// to every frame (close 1009).
///
/// # Control frames and errors
///
/// While it is read, pings are answered and pongs dropped. A close frame
/// before the message's end is echoed and the read fails with
/// `UnexpectedEof` (the message was cut short). A failed connection sends
/// its close code and the read fails with an `io::Error` wrapping the
/// typed [`Error`](crate::Error): `err.get_ref()` and `downcast_ref`, or
/// `into_inner`. Errors are sticky: every later read fails the same way.
///
/// Dropping the reader before the end discards the rest of the message:
/// the next `next_reader` or `StreamExt::next` skips it.
///
/// ```no_run
/// use tokio::io::AsyncReadExt;
///
/// # async fn run(mut ws: silverback::WebSocketStream<tokio::net::TcpStream>) -> silverback::Result<()> {
/// while let Some(next) = ws.next_reader().await {
///     let (kind, mut reader) = next?;
///     let mut received = 0u64;
///     let mut buf = [0u8; 8192];
///     loop {
///         let n = reader.read(&mut buf).await?;
///         if n == 0 {
///             break;
///         }
///         received += n as u64;
///     }
///     println!("{kind:?} message of {received} bytes");
/// }
/// # Ok(())
/// # }
/// ```
///
/// # Cancellation safety
///
/// `read` is cancel safe: bytes not yet returned stay with the reader.
pub struct MessageReader<'a, S> {
    half: &'a mut ReadHalf<S>,
    kind: MessageKind,
    /// Payload received and not yet read.
    pending: BytesMut,
    /// The message's end was reached.
    done: bool,
    /// The error that ended the connection, replayed by every later read.
    error: Option<Error>,
}

impl<S> MessageReader<'_, S> {
    /// The message's kind.
    #[must_use]
    pub fn kind(&self) -> MessageKind {
        self.kind
    }

    /// Whether the whole message has been read.
    #[must_use]
    pub fn is_done(&self) -> bool {
        self.done && self.pending.is_empty()
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> MessageReader<'_, S> {
    /// Waits until payload is pending, the message has ended or it failed.
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.pending.is_empty() && !self.done {
            if let Some(e) = &self.error {
                return Poll::Ready(Err(into_io(e.replay())));
            }
            match ready!(self.half.poll_read::<Event>(cx)) {
                Some(Ok(Event::Data(data))) => self.pending = data,
                Some(Ok(Event::End)) => self.done = true,
                // The decoder starts no message inside another (§5.4).
                Some(Ok(Event::Start { .. })) => self.error = Some(ProtocolError::ExpectedContinuation.into()),
                // Closed or failed before the end: the message is cut short.
                Some(Ok(Event::Control(Message::Close(_)))) | None => self.error = Some(Error::Closed),
                // Pings (answered) and pongs.
                Some(Ok(Event::Control(_))) => {}
                Some(Err(e)) => self.error = Some(e),
            }
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for MessageReader<'_, S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        ready!(this.poll_fill(cx))?;
        let n = this.pending.len().min(buf.remaining());
        buf.put_slice(&this.pending[..n]);
        this.pending.advance(n);
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncBufRead for MessageReader<'_, S> {
    fn poll_fill_buf(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<&[u8]>> {
        let this = self.get_mut();
        ready!(this.poll_fill(cx))?;
        Poll::Ready(Ok(&this.pending))
    }

    fn consume(self: Pin<&mut Self>, amt: usize) {
        self.get_mut().pending.advance(amt);
    }
}

impl<S> fmt::Debug for MessageReader<'_, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MessageReader")
            .field("kind", &self.kind)
            .field("pending", &self.pending.len())
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}
