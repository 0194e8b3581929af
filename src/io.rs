//! Per-message streaming, like gorilla/websocket's `NextReader` and
//! `NextWriter`: a [`MessageReader`] (`AsyncRead`) and a [`MessageWriter`]
//! (`AsyncWrite`) carry one data message of any size in bounded memory.
//!
//! # Receiving
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
//! # Sending
//!
//! [`WriteHalf::next_writer`] (or [`WebSocketStream::next_writer`]) starts a
//! message. Written bytes are gathered into fragments of up to 16 KiB; each
//! goes out as a non-final frame (the first with the message's opcode, the
//! rest as continuations), `poll_flush` sends what is gathered and flushes,
//! and `poll_shutdown` sends the final frame (FIN) and flushes. Queueing
//! waits, flushing, while [`Config::write_buffer_size`](crate::Config) bytes
//! are queued, as the `Sink` does. Streamed messages are never compressed,
//! even with permessage-deflate negotiated (RSV1 clear: RFC 7692 §6 lets
//! each message choose); send a `Message` through the `Sink` to compress.
//!
//! Text is validated as it is written (a character may be split between
//! writes): invalid UTF-8 fails the write with `InvalidData`, and so does
//! `poll_shutdown` when the text ends inside a character. Fragments end on
//! character boundaries.
//!
//! A writer dropped before `poll_shutdown` still ends its message correctly:
//! the drop queues the final frame with what was written (less an
//! unfinished character), so a half-sent message can never interleave with
//! the next one. The frame is written by the next flush or send.

use std::fmt;
use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncBufRead, AsyncRead, AsyncWrite, ReadBuf};

use crate::codec::Event;
use crate::error::{Error, ProtocolError, Result};
use crate::protocol::{OpCode, Utf8Validator};
use crate::split::{ReadHalf, WriteHalf};

/// A [`MessageWriter`] sends a frame once this many bytes are written.
const FRAGMENT_SIZE: usize = 16 * 1024;

/// The kind of a data message: what [`ReadHalf::next_reader`] found, or
/// what [`WriteHalf::next_writer`] sends.
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
            match ready!(self.poll_event(cx)) {
                Some(Event::Start { text, .. }) => {
                    let kind = if text { MessageKind::Text } else { MessageKind::Binary };
                    return Poll::Ready(Some(Ok(kind)));
                }
                // The rest of a message whose reader was dropped.
                Some(_) => {}
                None => return self.poll_ended(cx).map(|e| e.map(Err)),
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
            match ready!(self.half.poll_event(cx)) {
                Some(Event::Data(data)) => self.pending = data,
                Some(Event::End) => self.done = true,
                // The decoder starts no message inside another (§5.4).
                Some(_) => self.error = Some(ProtocolError::ExpectedContinuation.into()),
                // Closed or failed before the end: the message is cut short.
                None => self.error = Some(ready!(self.half.poll_ended(cx)).unwrap_or(Error::Closed)),
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

impl<S> WriteHalf<S> {
    /// Starts sending a data message of `kind` in pieces, like
    /// gorilla/websocket's `NextWriter`; see [`MessageWriter`]. Nothing is
    /// sent until the first fragment is full, a flush or the shutdown.
    pub fn next_writer(&mut self, kind: MessageKind) -> MessageWriter<'_, S> {
        MessageWriter {
            half: self,
            kind,
            opcode: kind.opcode(),
            buf: BytesMut::new(),
            utf8: kind.is_text().then(Utf8Validator::new),
            finished: false,
            error: None,
        }
    }
}

/// One data message sent in pieces, as an `AsyncWrite`, from
/// [`WriteHalf::next_writer`] or
/// [`WebSocketStream::next_writer`](crate::WebSocketStream::next_writer).
///
/// Writes are gathered into fragments of up to 16 KiB, each sent as a
/// non-final frame (the first with the message's opcode, the rest as
/// continuations); `flush` sends what is gathered and flushes; `shutdown`
/// sends the final frame (FIN) and flushes: call it
/// (`AsyncWriteExt::shutdown`) to end the message. It does not shut the
/// connection down. Like the `Sink`, writing waits, flushing, while
/// [`Config::write_buffer_size`](crate::Config::write_buffer_size) bytes
/// are queued.
///
/// Streamed messages are never compressed, even with permessage-deflate
/// negotiated (RSV1 clear: RFC 7692 §6 lets each message choose); send a
/// whole [`Message`](crate::Message) through the `Sink` to compress it.
///
/// Text is validated as it is written, a character may be split between
/// writes: invalid UTF-8 fails the write with `InvalidData` (the bytes of
/// that write are not sent), and so does `shutdown` when the text ends
/// inside a character. Fragments end on character boundaries.
///
/// # Dropping
///
/// Dropped before `shutdown`, the writer still ends its message correctly:
/// the drop queues the final frame with what was written (less an
/// unfinished character), so a half-sent message never interleaves with the
/// next. The frame goes out with the next flush or send (or when the read
/// half next writes a reply). A writer that had sent and gathered nothing
/// sends nothing.
///
/// ```no_run
/// use silverback::MessageKind;
/// use tokio::io::AsyncWriteExt;
///
/// # async fn run(mut ws: silverback::WebSocketStream<tokio::net::TcpStream>) -> std::io::Result<()> {
/// let mut writer = ws.next_writer(MessageKind::Text);
/// for line in ["one, ", "two, ", "three"] {
///     writer.write_all(line.as_bytes()).await?;
/// }
/// writer.shutdown().await?;
/// # Ok(())
/// # }
/// ```
///
/// # Cancellation safety
///
/// `write` is cancel safe: a write that did not complete took no bytes.
/// `flush` and `shutdown` are cancel safe: calling them again resumes.
pub struct MessageWriter<'a, S> {
    half: &'a mut WriteHalf<S>,
    kind: MessageKind,
    /// The next frame's opcode: the message's, then continuation.
    opcode: OpCode,
    /// Written bytes not yet framed: up to a fragment, for text perhaps
    /// starting with a character the previous fragment left unfinished.
    buf: BytesMut,
    /// The text validator, for a text message.
    utf8: Option<Utf8Validator>,
    /// The final frame is queued.
    finished: bool,
    /// Why the writer failed; replayed by every later call.
    error: Option<Failure>,
}

/// Why a [`MessageWriter`] failed.
#[derive(Debug)]
enum Failure {
    /// The connection failed or closed.
    Connection(Error),
    /// The text written is not UTF-8.
    InvalidUtf8,
}

impl Failure {
    fn to_io(&self) -> io::Error {
        match self {
            // Nothing more may be sent: a broken pipe, to a writer.
            Failure::Connection(Error::Closed) => io::Error::new(io::ErrorKind::BrokenPipe, Error::Closed),
            Failure::Connection(e) => into_io(e.replay()),
            Failure::InvalidUtf8 => io::Error::new(io::ErrorKind::InvalidData, "text written is not valid utf-8"),
        }
    }
}

impl<S> MessageWriter<'_, S> {
    /// The message's kind.
    #[must_use]
    pub fn kind(&self) -> MessageKind {
        self.kind
    }

    fn check(&self) -> io::Result<()> {
        match &self.error {
            Some(failure) => Err(failure.to_io()),
            None => Ok(()),
        }
    }

    fn fail(&mut self, failure: Failure) -> io::Error {
        let err = failure.to_io();
        self.error = Some(failure);
        err
    }

    /// Validates the next written bytes of a text message.
    fn validate(&mut self, data: &[u8]) -> io::Result<()> {
        let valid = self.utf8.as_mut().is_none_or(|utf8| utf8.feed(data).is_ok());
        if valid {
            Ok(())
        } else {
            Err(self.fail(Failure::InvalidUtf8))
        }
    }

    /// How many bytes at the end of `data` are an unfinished character to
    /// hold back, so that fragments end on character boundaries.
    fn unfinished(&self, data: &[u8]) -> usize {
        if self.utf8.is_some() {
            unfinished_char_len(data)
        } else {
            0
        }
    }

    /// Queues a frame with `payload`.
    fn push(&mut self, fin: bool, payload: &[u8]) -> io::Result<()> {
        if let Err(e) = self.half.push_fragment(fin, self.opcode, payload) {
            return Err(self.fail(Failure::Connection(e)));
        }
        self.opcode = OpCode::Continuation;
        Ok(())
    }

    /// Queues what is gathered as a frame, holding back an unfinished
    /// character unless `fin`. A non-final frame is never empty.
    fn emit(&mut self, fin: bool) -> io::Result<()> {
        let keep = if fin { 0 } else { self.unfinished(&self.buf) };
        let end = self.buf.len() - keep;
        if end == 0 && !fin {
            return Ok(());
        }
        let buf = std::mem::take(&mut self.buf);
        let pushed = self.push(fin, &buf[..end]);
        self.buf = buf;
        pushed?;
        let mut carry = [0u8; 3];
        carry[..keep].copy_from_slice(&self.buf[end..]);
        self.buf.clear();
        self.buf.extend_from_slice(&carry[..keep]);
        Ok(())
    }
}

impl<S: AsyncWrite + Unpin> MessageWriter<'_, S> {
    /// Waits, flushing, while the connection's queue is full.
    fn poll_reserve(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match ready!(self.half.poll_reserve(cx)) {
            Ok(()) => Poll::Ready(Ok(())),
            Err(e) => Poll::Ready(Err(self.fail(Failure::Connection(e)))),
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for MessageWriter<'_, S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.check()?;
        if this.finished {
            return Poll::Ready(Err(io::Error::new(io::ErrorKind::BrokenPipe, "message already finished")));
        }
        if data.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let full = this.buf.len() >= FRAGMENT_SIZE;
        let direct = this.buf.is_empty() && data.len() >= FRAGMENT_SIZE;
        if full || direct {
            ready!(this.poll_reserve(cx))?;
        }
        if full {
            this.emit(false)?;
        }
        if this.buf.is_empty() && data.len() >= FRAGMENT_SIZE {
            // A whole fragment: framed straight from the caller's bytes,
            // ending on a character boundary.
            let chunk = &data[..FRAGMENT_SIZE - this.unfinished(&data[..FRAGMENT_SIZE])];
            this.validate(chunk)?;
            this.push(false, chunk)?;
            return Poll::Ready(Ok(chunk.len()));
        }
        let n = data.len().min(FRAGMENT_SIZE - this.buf.len());
        this.validate(&data[..n])?;
        this.buf.extend_from_slice(&data[..n]);
        Poll::Ready(Ok(n))
    }

    /// Sends what is gathered (less an unfinished character) as a
    /// fragment, then writes everything queued.
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.check()?;
        if !this.finished && this.buf.len() > this.unfinished(&this.buf) {
            ready!(this.poll_reserve(cx))?;
            this.emit(false)?;
        }
        match ready!(this.half.poll_write_all(cx)) {
            Ok(()) => Poll::Ready(Ok(())),
            Err(e) => Poll::Ready(Err(this.fail(Failure::Connection(e)))),
        }
    }

    /// Sends the final frame (once) and writes everything queued. Fails
    /// with `InvalidData` when text ends inside a character.
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.check()?;
        if !this.finished {
            ready!(this.poll_reserve(cx))?;
            if let Some(mut utf8) = this.utf8 {
                if utf8.finish().is_err() {
                    return Poll::Ready(Err(this.fail(Failure::InvalidUtf8)));
                }
            }
            this.emit(true)?;
            this.finished = true;
        }
        match ready!(this.half.poll_write_all(cx)) {
            Ok(()) => Poll::Ready(Ok(())),
            Err(e) => Poll::Ready(Err(this.fail(Failure::Connection(e)))),
        }
    }
}

/// Ends a message left unfinished: queues its final frame with what was
/// written, less an unfinished character (nothing when nothing was).
impl<S> Drop for MessageWriter<'_, S> {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        let keep = self.unfinished(&self.buf);
        self.buf.truncate(self.buf.len() - keep);
        let started = self.opcode == OpCode::Continuation;
        if started || !self.buf.is_empty() {
            // A closed or failed connection sends nothing more anyway.
            let _ = self.emit(true);
        }
    }
}

impl<S> fmt::Debug for MessageWriter<'_, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MessageWriter")
            .field("kind", &self.kind)
            .field("buffered", &self.buf.len())
            .field("finished", &self.finished)
            .finish_non_exhaustive()
    }
}

/// The length of the character that the end of already validated `data`
/// cuts short (0 to 3 bytes).
fn unfinished_char_len(data: &[u8]) -> usize {
    let len = data.len();
    for back in 1..=len.min(3) {
        let byte = data[len - back];
        if byte & 0xC0 != 0x80 {
            let width = match byte {
                0xC0..=0xDF => 2,
                0xE0..=0xEF => 3,
                0xF0..=0xF7 => 4,
                _ => 1,
            };
            return if width > back { back } else { 0 };
        }
    }
    0
}

/// An [`Error`] as the `io::Error` that `AsyncRead`/`AsyncWrite` return:
/// transport errors as they were, others wrapped (get them back with
/// `get_ref` and a downcast) under the closest kind.
fn into_io(err: Error) -> io::Error {
    let kind = match &err {
        Error::Io(e) => e.kind(),
        Error::Protocol(ProtocolError::UnexpectedEof) | Error::Closed => io::ErrorKind::UnexpectedEof,
        Error::Protocol(_) | Error::Capacity(_) => io::ErrorKind::InvalidData,
        Error::Timeout => io::ErrorKind::TimedOut,
        _ => io::ErrorKind::Other,
    };
    match err {
        Error::Io(e) => e,
        other => io::Error::new(kind, other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unfinished_characters_are_found_at_the_end() {
        let table: &[(&[u8], usize)] = &[
            (b"", 0),
            (b"abc", 0),
            ("κ".as_bytes(), 0),
            (&"κ".as_bytes()[..1], 1),
            (&"€".as_bytes()[..2], 2),
            (&"𝄞".as_bytes()[..3], 3),
            ("a𝄞".as_bytes(), 0),
            (&"a𝄞".as_bytes()[..2], 1),
        ];
        for &(data, expected) in table {
            assert_eq!(unfinished_char_len(data), expected, "{data:x?}");
        }
    }

    #[test]
    fn errors_become_io_errors_of_the_closest_kind() {
        let e = into_io(ProtocolError::InvalidUtf8.into());
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        let inner = e.get_ref().and_then(|e| e.downcast_ref::<Error>());
        assert!(matches!(inner, Some(Error::Protocol(ProtocolError::InvalidUtf8))));
        assert_eq!(into_io(Error::Closed).kind(), io::ErrorKind::UnexpectedEof);
        let io = into_io(Error::Io(io::Error::new(io::ErrorKind::BrokenPipe, "gone")));
        assert_eq!(io.kind(), io::ErrorKind::BrokenPipe);
    }
}
