//! The owned halves of a connection: [`ReadHalf`] and [`WriteHalf`].
//!
//! Reading side, as a state diagram (`poll_next`):
//!
//! ```text
//!            ┌──────────── message ──────────────┐
//!            ▼                                   │
//!   ┌──▶ Open: push out pending replies, decode ─┤── need bytes ──▶ read (Pending: sleep)
//!   │        │                                   │
//!   │        │ ping: queue pong (latest wins)    │ close frame: queue echo ──┐
//!   └────────┘                                   │ error: queue 1002/1007/1009┤
//!                                                                            ▼
//!                       Done ◀── yield close / error ◀── Finishing: write replies, shut down
//!                  (yields None)                          (bounded by close_timeout)
//! ```
//!
//! Streaming a message (`next_reader`, see `io.rs`) runs the same diagram
//! through `poll_event`: the decoder hands out the message's start, its
//! payload in pieces and its end instead of whole messages, and control
//! frames are handled on the way as above (pings answered, not yielded). A
//! message whose reader was dropped is skipped to its end by the next
//! `poll_next` or `next_reader`.
//!
//! The writing side only queues (`start_send`) and writes (`poll_flush`).
//! Either half may write the queue; see `shared.rs` for how they share it.

use std::fmt;
use std::future::{poll_fn, Future};
use std::mem;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_core::{FusedStream, Stream};
use futures_sink::Sink;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::{Instant, Sleep};
use tokio_util::io::poll_read_buf;

use crate::codec::Event;
use crate::error::{Error, ProtocolError, Result};
use crate::protocol::{CloseFrame, Keepalive, KeepaliveAction};
use crate::shared::{Half, Shared};
use crate::spare;
use crate::stream::WebSocketStream;
use crate::{Codec, Message, PreparedMessage};

/// Reads shorter than this left in the buffer trigger a fresh reservation.
const MIN_READ_ROOM: usize = 256;

/// How much room to ask for per read: starts at the configured size,
/// doubles while reads fill the room (up to [`ReadSize::MAX`]) and halves
/// again when they come back mostly empty, so that a connection receiving
/// large messages reads each in one call while a quiet one asks for little.
#[derive(Clone, Copy, Debug)]
struct ReadSize {
    current: usize,
    min: usize,
}

impl ReadSize {
    const MAX: usize = 64 * 1024;

    fn new(min: usize) -> Self {
        ReadSize { current: min, min }
    }

    fn get(&self) -> usize {
        self.current
    }

    fn record(&mut self, read: usize, room: usize) {
        if read >= room {
            self.current = (self.current * 2).min(Self::MAX.max(self.min));
        } else if read < self.current / 8 {
            self.current = (self.current / 2).max(self.min);
        }
    }
}

enum ReadState {
    Open,
    /// Writing the close echo or error close frame, then yielding the item.
    Finishing(Option<Result<Message>>),
    Done,
}

/// The receiving half of a [`WebSocketStream`]: a
/// `Stream<Item = Result<Message, Error>>`.
///
/// While it is polled it also answers pings and echoes the peer's close frame
/// by itself, whether or not any task is using the [`WriteHalf`].
///
/// # Cancellation safety
///
/// `StreamExt::next` is cancel safe: bytes already read stay buffered and no
/// message is lost if the future is dropped before it completes.
pub struct ReadHalf<S> {
    shared: Arc<Shared<S>>,
    codec: Codec,
    buf: BytesMut,
    read_size: ReadSize,
    close_timeout: Duration,
    timer: Option<Pin<Box<Sleep>>>,
    state: ReadState,
    /// Keepalive pings and the read deadline, when configured.
    keepalive: Option<Box<KeepaliveTimer>>,
    /// A message is being streamed (its start was handed out, its end not
    /// yet): `poll_next` skips the rest of it first.
    streaming: bool,
}

/// The keepalive state machine and its timer.
#[derive(Debug)]
struct KeepaliveTimer {
    state: Keepalive,
    sleep: Pin<Box<Sleep>>,
}

/// The keepalive timer for `config`, if it asks for pings or a deadline.
fn keepalive_timer(config: &crate::Config) -> Option<Box<KeepaliveTimer>> {
    let (ping, deadline) = (config.get_ping_interval(), config.get_read_timeout());
    if ping.is_none() && deadline.is_none() {
        return None;
    }
    let now = Instant::now();
    Some(Box::new(KeepaliveTimer {
        state: Keepalive::new(ping, deadline, now.into_std()),
        sleep: Box::pin(tokio::time::sleep_until(now)),
    }))
}

/// The sending half of a [`WebSocketStream`]: a `Sink<Message, Error = Error>`.
///
/// `start_send` only queues a frame; `poll_flush` writes everything queued,
/// batching many messages into few system calls (use `SinkExt::feed` then
/// `flush`, or `StreamExt::forward`). `poll_ready` flushes by itself once the
/// queue holds [`Config::write_buffer_size`](crate::Config::write_buffer_size)
/// bytes, which bounds memory when the peer reads slowly.
///
/// # Cancellation safety
///
/// `SinkExt::send` is not cancel safe: if it is dropped before the message
/// was queued, the message is lost; once queued, it is written by the next
/// flush. `SinkExt::flush`, `SinkExt::close` and [`WriteHalf::send_close`]
/// are cancel safe: calling them again resumes where they stopped.
pub struct WriteHalf<S> {
    shared: Arc<Shared<S>>,
    /// Bytes this half queued since its last complete flush: an upper bound
    /// on its share of the queue, so `poll_ready` needs no lock until it
    /// reaches `batch`.
    unflushed: usize,
    batch: usize,
    /// `Config::write_timeout`, and the timer of the flush in progress.
    write_timeout: Option<Duration>,
    write_timer: Option<Pin<Box<Sleep>>>,
    /// permessage-deflate's send side, when negotiated.
    #[cfg(feature = "deflate")]
    deflate: Option<Box<crate::deflate::Outgoing>>,
}

/// What a frame header adds to a payload, at most.
const HEADER_ALLOWANCE: usize = 14;

/// Returned by [`ReadHalf::reunite`] when the halves came from different
/// connections; gives both back.
pub struct ReuniteError<S>(pub ReadHalf<S>, pub WriteHalf<S>);

impl<S> ReadHalf<S> {
    pub(crate) fn new(shared: Arc<Shared<S>>, codec: Codec, buf: BytesMut, config: &crate::Config) -> Self {
        ReadHalf {
            shared,
            codec,
            buf,
            read_size: ReadSize::new(config.get_read_buffer_size()),
            close_timeout: config.get_close_timeout(),
            timer: None,
            state: ReadState::Open,
            keepalive: keepalive_timer(config),
            streaming: false,
        }
    }

    /// Puts the halves back together. Fails when they belong to different
    /// connections.
    // The error hands both halves back by value, as tokio's `ReuniteError` does.
    #[allow(clippy::result_large_err)]
    pub fn reunite(self, write: WriteHalf<S>) -> Result<WebSocketStream<S>, ReuniteError<S>> {
        if Arc::ptr_eq(&self.shared, &write.shared) {
            Ok(WebSocketStream::from_halves(self, write))
        } else {
            Err(ReuniteError(self, write))
        }
    }

    /// Accepts compressed messages (permessage-deflate was negotiated).
    #[cfg(feature = "deflate")]
    pub(crate) fn set_decompressor(&mut self, decompressor: crate::deflate::Decompressor) {
        self.codec.set_decompressor(decompressor);
    }

    pub(crate) fn close_timeout(&self) -> Duration {
        self.close_timeout
    }

    /// A handle that pings or closes this connection from any task.
    #[must_use]
    pub fn control(&self) -> crate::Control<S> {
        crate::Control::new(self.shared.clone())
    }

    /// Whether both halves belong to the same connection.
    pub fn is_pair_of(&self, write: &WriteHalf<S>) -> bool {
        Arc::ptr_eq(&self.shared, &write.shared)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> ReadHalf<S> {
    /// Writes pending pongs / close echoes without waiting for the transport.
    /// Inlined: on the hot path nothing is owed, and that check is one load.
    #[inline]
    fn push_replies(&mut self, cx: &Context<'_>) -> Result<()> {
        if !self.shared.replies_owed() {
            return Ok(());
        }
        self.write_replies(cx)
    }

    #[cold]
    fn write_replies(&mut self, cx: &Context<'_>) -> Result<()> {
        let mut core = self.shared.lock();
        if core.has_pending_reply() {
            let mut wcx = self.shared.write_context(Half::Reader, cx);
            if let Poll::Ready(Err(e)) = core.poll_replies(&mut wcx) {
                return Err(Error::Io(e));
            }
        }
        self.shared.set_replies_owed(core.has_pending_reply());
        Ok(())
    }

    /// Fails the connection: queue the close code, then finish.
    fn fail(&mut self, err: Error) {
        self.shared.lock().handle_failure(&err);
        self.state = ReadState::Finishing(Some(Err(err)));
    }

    /// Writes the last replies and shuts the transport's write side down,
    /// giving up after the close timeout.
    fn poll_finish(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let done = {
            let mut core = self.shared.lock();
            let mut wcx = self.shared.write_context(Half::Reader, cx);
            match core.poll_replies(&mut wcx) {
                Poll::Ready(Ok(())) => core.poll_shutdown(&mut wcx).map(drop),
                Poll::Ready(Err(_)) => Poll::Ready(()),
                Poll::Pending => Poll::Pending,
            }
        };
        if done.is_ready() {
            self.timer = None;
            return Poll::Ready(());
        }
        let timeout = self.close_timeout;
        let timer = self.timer.get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        timer.as_mut().poll(cx)
    }

    /// Reads more bytes, or acts on the keepalive timer while none come:
    /// queues a ping (then reports progress so that it is written), or
    /// fails the connection at the read deadline. `Ok(false)` means end of
    /// stream.
    fn poll_read_or_keepalive(&mut self, cx: &mut Context<'_>) -> Poll<Result<bool>> {
        let read = self.poll_read_more(cx).map_err(Error::Io);
        if read.is_pending() {
            // About to sleep: a control handle that queues a frame must be
            // able to wake this task to write it.
            self.shared.register_reader(cx);
            if self.shared.take_handed() {
                return Poll::Ready(Ok(true));
            }
        }
        let Some(keepalive) = self.keepalive.as_deref_mut() else { return read };
        if let Poll::Ready(Ok(true)) = read {
            keepalive.state.on_activity(Instant::now().into_std());
            return read;
        }
        if read.is_ready() {
            return read;
        }
        loop {
            let Some(deadline) = keepalive.state.deadline() else { return Poll::Pending };
            let deadline = Instant::from_std(deadline);
            if keepalive.sleep.deadline() != deadline {
                keepalive.sleep.as_mut().reset(deadline);
            }
            ready!(keepalive.sleep.as_mut().poll(cx));
            match keepalive.state.on_timer(Instant::now().into_std()) {
                KeepaliveAction::Wait => {}
                KeepaliveAction::Ping => {
                    // A closing or failed connection sends no more pings;
                    // its own deadline still applies.
                    if self.shared.lock().push_ping(&Bytes::new()).is_ok() {
                        self.shared.set_replies_owed(true);
                    }
                    return Poll::Ready(Ok(true));
                }
                KeepaliveAction::Expire => return Poll::Ready(Err(Error::Timeout)),
            }
        }
    }

    /// Reads more bytes. `Ok(false)` means end of stream.
    fn poll_read_more(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<bool>> {
        if self.buf.capacity() == 0 {
            self.buf = spare::READ.take(self.read_size.get());
        }
        if self.buf.capacity() - self.buf.len() < MIN_READ_ROOM {
            self.buf.reserve(self.read_size.get());
        }
        let room = self.buf.capacity() - self.buf.len();
        let fresh = self.buf.is_empty();
        let read = {
            let mut core = self.shared.lock();
            poll_read_buf(Pin::new(&mut core.io), cx, &mut self.buf)
        };
        // Only reads into an empty buffer size the next one: the reads that
        // finish a frame get exactly the room the decoder reserved, which says
        // nothing about how big the next burst will be.
        if let (Poll::Ready(Ok(n)), true) = (&read, fresh) {
            self.read_size.record(*n, room);
        }
        match read {
            Poll::Pending => {
                if self.buf.is_empty() && self.codec.is_between_frames() {
                    // Idle connections keep no read buffer: it goes to the
                    // next connection on this thread that reads.
                    spare::READ.park(mem::take(&mut self.buf));
                }
                Poll::Pending
            }
            Poll::Ready(result) => Poll::Ready(result.map(|n| n > 0)),
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> ReadHalf<S> {
    /// Streaming: the next start, piece or end of a data message, handling
    /// control frames on the way (pings answered, pongs dropped, a close
    /// echoed). `None` once the read side is no longer open (closing,
    /// failed or done): [`ReadHalf::poll_ended`] then finishes and tells why.
    pub(crate) fn poll_event(&mut self, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        loop {
            if !matches!(self.state, ReadState::Open) {
                return Poll::Ready(None);
            }
            if let Err(e) = self.push_replies(cx) {
                self.fail(e);
                continue;
            }
            match self.codec.decode_chunk(&mut self.buf) {
                Ok(Some(Event::Control(msg))) => match msg {
                    Message::Ping(payload) => {
                        self.shared.lock().handle_ping(payload);
                        self.shared.set_replies_owed(true);
                    }
                    Message::Close(frame) => {
                        self.shared.lock().handle_close(frame.as_ref());
                        self.state = ReadState::Finishing(Some(Ok(Message::Close(frame))));
                    }
                    _ => {}
                },
                Ok(Some(event)) => {
                    match event {
                        Event::Start { .. } => self.streaming = true,
                        Event::End => self.streaming = false,
                        _ => {}
                    }
                    return Poll::Ready(Some(event));
                }
                Ok(None) => match ready!(self.poll_read_or_keepalive(cx)) {
                    Ok(true) => {}
                    Ok(false) if self.shared.lock().is_close_done() => self.state = ReadState::Done,
                    Ok(false) => self.fail(ProtocolError::UnexpectedEof.into()),
                    Err(e) => self.fail(e),
                },
                Err(e) => self.fail(e),
            }
        }
    }

    /// Streaming, after [`ReadHalf::poll_event`] gave `None`: writes the
    /// last replies (close echo or error close frame), shuts the transport's
    /// write side down, and returns the error that ended the connection, if
    /// one did (`None` for a close).
    pub(crate) fn poll_ended(&mut self, cx: &mut Context<'_>) -> Poll<Option<Error>> {
        if let ReadState::Finishing(_) = self.state {
            ready!(self.poll_finish(cx));
            if let ReadState::Finishing(Some(Err(e))) = mem::replace(&mut self.state, ReadState::Done) {
                return Poll::Ready(Some(e));
            }
        }
        Poll::Ready(None)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Stream for ReadHalf<S> {
    type Item = Result<Message>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        // The rest of a message whose reader was dropped is discarded.
        while this.streaming && ready!(this.poll_event(cx)).is_some() {}
        loop {
            match this.state {
                ReadState::Done => return Poll::Ready(None),
                ReadState::Finishing(_) => {
                    ready!(this.poll_finish(cx));
                    let ReadState::Finishing(item) = mem::replace(&mut this.state, ReadState::Done) else {
                        unreachable!("state checked above")
                    };
                    return Poll::Ready(item);
                }
                ReadState::Open => {}
            }
            if let Err(e) = this.push_replies(cx) {
                this.fail(e);
                continue;
            }
            match this.codec.decode_whole(&mut this.buf) {
                Some(Ok(msg)) => return Poll::Ready(Some(Ok(msg))),
                Some(Err(e)) => {
                    this.fail(e);
                    continue;
                }
                None => {}
            }
            match this.codec.decode_frames(&mut this.buf) {
                Ok(Some(msg)) => match &msg {
                    Message::Ping(payload) => {
                        this.shared.lock().handle_ping(payload.clone());
                        this.shared.set_replies_owed(true);
                        if let Err(e) = this.push_replies(cx) {
                            this.fail(e);
                            continue;
                        }
                        return Poll::Ready(Some(Ok(msg)));
                    }
                    Message::Close(frame) => {
                        this.shared.lock().handle_close(frame.as_ref());
                        this.state = ReadState::Finishing(Some(Ok(msg)));
                    }
                    _ => return Poll::Ready(Some(Ok(msg))),
                },
                Ok(None) => match ready!(this.poll_read_or_keepalive(cx)) {
                    Ok(true) => {}
                    Ok(false) if this.shared.lock().is_close_done() => this.state = ReadState::Done,
                    Ok(false) => this.fail(ProtocolError::UnexpectedEof.into()),
                    Err(e) => this.fail(e),
                },
                Err(e) => this.fail(e),
            }
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> FusedStream for ReadHalf<S> {
    fn is_terminated(&self) -> bool {
        matches!(self.state, ReadState::Done)
    }
}

impl<S> WriteHalf<S> {
    pub(crate) fn new(shared: Arc<Shared<S>>, config: &crate::Config) -> Self {
        WriteHalf {
            shared,
            unflushed: 0,
            batch: config.get_write_buffer_size(),
            write_timeout: config.get_write_timeout(),
            write_timer: None,
            #[cfg(feature = "deflate")]
            deflate: None,
        }
    }

    /// A handle that pings or closes this connection from any task.
    #[must_use]
    pub fn control(&self) -> crate::Control<S> {
        crate::Control::new(self.shared.clone())
    }

    /// Queues one uncompressed fragment of a streamed message.
    pub(crate) fn push_fragment(&mut self, fin: bool, opcode: crate::protocol::OpCode, payload: &[u8]) -> Result<()> {
        self.shared.lock().push_fragment(fin, opcode, payload)?;
        self.unflushed += payload.len() + HEADER_ALLOWANCE;
        Ok(())
    }

    /// Compresses data messages from now on (permessage-deflate was
    /// negotiated).
    #[cfg(feature = "deflate")]
    pub(crate) fn set_outgoing(&mut self, outgoing: crate::deflate::Outgoing) {
        self.deflate = Some(Box::new(outgoing));
    }

    /// Turns compression of the following data messages on or off, like
    /// gorilla/websocket's `EnableWriteCompression`: send an already
    /// compressed payload (an image, a zip) with compression off. A no-op
    /// when permessage-deflate was not negotiated; on by default when it
    /// was. Messages shorter than
    /// [`DeflateConfig::min_size`](crate::DeflateConfig::min_size) are never
    /// compressed.
    #[cfg(feature = "deflate")]
    pub fn set_compression(&mut self, enabled: bool) {
        if let Some(deflate) = self.deflate.as_mut() {
            deflate.set_enabled(enabled);
        }
    }

    /// Whether the following data messages are compressed (those long
    /// enough): permessage-deflate was negotiated and compression is on.
    #[must_use]
    pub fn is_compressing(&self) -> bool {
        #[cfg(feature = "deflate")]
        if let Some(deflate) = self.deflate.as_ref() {
            return deflate.is_enabled();
        }
        false
    }

    /// The opcode and compressed payload of `msg`, when it is a data message
    /// that compression applies to.
    #[cfg(feature = "deflate")]
    fn compress(&mut self, msg: &Message) -> Option<(crate::protocol::OpCode, bytes::Bytes)> {
        let deflate = self.deflate.as_mut()?;
        let (opcode, payload) = match msg {
            Message::Text(text) => (crate::protocol::OpCode::Text, text.as_bytes()),
            Message::Binary(payload) => (crate::protocol::OpCode::Binary, payload),
            _ => return None,
        };
        Some((opcode, deflate.compress(payload)?))
    }
}

impl<S: AsyncWrite + Unpin> WriteHalf<S> {
    /// Sends our close frame (`None` sends one without a code) unless one
    /// was already sent, and flushes it with everything queued before it;
    /// returns once it is written. It does not wait for the peer's close:
    /// the [`ReadHalf`] keeps yielding the data messages the peer sent
    /// before its own close (RFC 6455 §1.4, §7.1.2), then that close
    /// ([`Message::Close`]), then `None`. Data sent after this fails with
    /// [`Error::Closed`].
    ///
    /// To wait for the whole closing handshake on an unsplit stream, use
    /// [`WebSocketStream::close`]; the crate docs compare every way to close
    /// (section "Closing").
    ///
    /// # Cancellation safety
    ///
    /// Cancel safe: the frame is queued at the first poll and stays queued;
    /// calling again queues no second one and resumes the flush (so does
    /// any other flush of this half).
    pub async fn send_close(&mut self, frame: Option<CloseFrame>) -> Result<()> {
        self.queue_close(frame.as_ref())?;
        poll_fn(|cx| self.poll_write_all(cx)).await
    }

    /// The former name of [`WriteHalf::send_close`], which it calls.
    #[deprecated(
        note = "renamed to send_close: it sends our close frame and does not wait for the peer's (read on with the ReadHalf)"
    )]
    pub async fn close(&mut self, frame: Option<CloseFrame>) -> Result<()> {
        self.send_close(frame).await
    }

    /// Queues a message encoded ahead of time (see [`PreparedMessage`])
    /// without flushing, like `SinkExt::feed`: waits first if the queue is
    /// past [`Config::write_buffer_size`](crate::Config::write_buffer_size).
    ///
    /// Cancel safe: if the future is dropped before it completes, the
    /// message was not queued.
    pub async fn feed_prepared(&mut self, msg: &PreparedMessage) -> Result<()> {
        poll_fn(|cx| Sink::<Message>::poll_ready(Pin::new(&mut *self), cx)).await?;
        self.shared.lock().push_prepared(msg)?;
        self.unflushed += msg.len() + HEADER_ALLOWANCE;
        Ok(())
    }

    /// Queues a message encoded ahead of time and flushes, like
    /// `SinkExt::send`.
    ///
    /// Cancellation: dropped before the message was queued, nothing is
    /// sent; dropped after, the message goes out with the next flush.
    pub async fn send_prepared(&mut self, msg: &PreparedMessage) -> Result<()> {
        self.feed_prepared(msg).await?;
        poll_fn(|cx| self.poll_write_all(cx)).await
    }

    pub(crate) fn queue_close(&mut self, frame: Option<&CloseFrame>) -> Result<()> {
        self.shared.lock().push_close(frame)
    }

    /// Waits, flushing, while a batch is queued: the backpressure point of
    /// `Sink::poll_ready` and of [`MessageWriter`](crate::MessageWriter).
    pub(crate) fn poll_reserve(&mut self, cx: &mut Context<'_>) -> Poll<Result<()>> {
        if self.unflushed < self.batch {
            return Poll::Ready(Ok(()));
        }
        self.poll_write_all(cx)
    }

    pub(crate) fn poll_write_all(&mut self, cx: &mut Context<'_>) -> Poll<Result<()>> {
        let mut core = self.shared.lock();
        let mut wcx = self.shared.write_context(Half::Writer, cx);
        let result = match core.poll_flush(&mut wcx) {
            Poll::Ready(result) => result,
            Poll::Pending => {
                let Some(timeout) = self.write_timeout else { return Poll::Pending };
                let timer = self.write_timer.get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
                ready!(timer.as_mut().poll(cx));
                // The peer stopped reading: fail the connection (RFC 6455
                // §7.1.7), so that every later send reports it too.
                self.write_timer = None;
                core.handle_failure(&Error::Timeout);
                return Poll::Ready(Err(Error::Timeout));
            }
        };
        self.write_timer = None;
        Poll::Ready(match (core.fatal(), result) {
            (Some(e), _) => Err(e),
            (None, r) => {
                self.unflushed = 0;
                r.map_err(Error::Io)
            }
        })
    }
}

impl<S: AsyncWrite + Unpin> Sink<Message> for WriteHalf<S> {
    type Error = Error;

    /// Ready at once while less than a batch is queued; otherwise flushes.
    /// A closed or failed connection is reported by `start_send`.
    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        self.get_mut().poll_reserve(cx)
    }

    fn start_send(self: Pin<&mut Self>, msg: Message) -> Result<()> {
        let this = self.get_mut();
        #[cfg(feature = "deflate")]
        if let Some((opcode, compressed)) = this.compress(&msg) {
            this.shared.lock().push_compressed(opcode, &compressed)?;
            this.unflushed += compressed.len() + HEADER_ALLOWANCE;
            return Ok(());
        }
        let len = msg.len() + HEADER_ALLOWANCE;
        // Queued from a borrow: the message is dropped after the lock is
        // released, and not moved through the layers.
        this.shared.lock().push_message(&msg)?;
        this.unflushed += len;
        Ok(())
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        self.get_mut().poll_write_all(cx)
    }

    /// Sends a `1000 Normal Closure` frame unless a close frame was already
    /// sent, and writes everything queued, like [`WriteHalf::send_close`]:
    /// it does not wait for the peer's close, which the [`ReadHalf`] reads.
    /// Cancel safe.
    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        let this = self.get_mut();
        this.queue_close(Some(&CloseFrame::normal()))?;
        this.poll_write_all(cx)
    }
}

impl<S> fmt::Debug for ReadHalf<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReadHalf").field("role", &self.codec.role()).field("buffered", &self.buf.len()).finish()
    }
}

impl<S> fmt::Debug for WriteHalf<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WriteHalf").finish_non_exhaustive()
    }
}

impl<S> fmt::Debug for ReuniteError<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ReuniteError(..)")
    }
}

impl<S> fmt::Display for ReuniteError<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("tried to reunite halves of different connections")
    }
}

impl<S> std::error::Error for ReuniteError<S> {}

#[cfg(test)]
mod tests {
    use super::ReadSize;

    #[test]
    fn read_size_grows_while_reads_fill_and_shrinks_when_quiet() {
        let mut size = ReadSize::new(4096);
        size.record(4096, 4096);
        assert_eq!(size.get(), 8192);
        for _ in 0..10 {
            size.record(size.get(), size.get());
        }
        assert_eq!(size.get(), ReadSize::MAX);
        size.record(20_000, 65_536);
        assert_eq!(size.get(), ReadSize::MAX, "a read that is a fair share keeps the size");
        for _ in 0..10 {
            size.record(26, size.get());
        }
        assert_eq!(size.get(), 4096, "never below the configured size");
    }
}
