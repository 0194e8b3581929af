//! [`MessageWriter`]: one data message sent in pieces as an `AsyncWrite`,
//! like gorilla/websocket's `NextWriter`.
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
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::BytesMut;
use tokio::io::AsyncWrite;

use super::{into_io, MessageKind, WriteHalf};
use crate::error::Error;
use crate::protocol::{incomplete_tail_start, OpCode, Utf8Validator};

/// A [`MessageWriter`] sends a frame once this many bytes are written.
const FRAGMENT_SIZE: usize = 16 * 1024;

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
            data.len() - incomplete_tail_start(data)
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
