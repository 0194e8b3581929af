//! [`ReadHalf`]: the receiving half of a connection, and the engine's one
//! read loop, [`ReadHalf::poll_read`], which serves `StreamExt::next`,
//! `next_reader` (through [`MessageReader`](crate::MessageReader)) and
//! `next_json` alike.
//!
//! ```text
//!            ┌──────────── item ─────────────────┐
//!            ▼                                   │
//!   ┌──▶ Open: write urgent frames, decode ──────┤── need bytes ──▶ read (Pending: sleep,
//!   │        │                                   │                  keepalive timer armed)
//!   │        │ ping: queue pong (latest wins)    │ close frame: queue echo ──┐
//!   └────────┘                                   │ error: queue 1002/1007/1009┤
//!                                                                            ▼
//!                       Done ◀── yield close / error ◀── Finishing: write urgent frames, shut down
//!                  (yields None)                          (bounded by close_timeout)
//! ```
//!
//! A triggered [`Shutdown`](crate::Shutdown) is noticed where the loop
//! needs bytes: Open queues close 1001, then waits for the peer's close
//! within the close timeout (else fails with `Error::Timeout`).
//!
//! What is decoded depends on the caller ([`ReadItem`]): whole messages, or
//! the start, pieces and end of a streamed one. Control frames are handled
//! the same way for both, on the way.

use std::fmt;
use std::mem;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_core::{FusedStream, Stream};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;
use tokio_util::io::poll_read_buf;

use super::deadline::Deadline;
use super::read_item::ReadItem;
use super::read_size::{ReadSize, MIN_READ_ROOM};
use super::shared::{Half, Shared};
use super::shutdown::{Phase, Registration};
use super::trace::{enter, trace_event, TraceValue};
use super::{spare, Stats, WebSocketStream, WriteHalf};
use crate::error::{Error, Result};
use crate::protocol::{
    CloseCode, CloseFrame, Event, Keepalive, KeepaliveAction, Message, MessageDecoder, ProtocolError,
};
use crate::Config;

enum ReadState {
    Open,
    /// Writing the close echo or error close frame, then yielding the close
    /// message or the error.
    Finishing(Option<Result<Message>>),
    Done,
}

/// The receiving half of a [`WebSocketStream`]: a
/// `Stream<Item = Result<Message, Error>>`.
///
/// While it is polled it also answers pings and echoes the peer's close frame
/// by itself, whether or not any task is using the [`WriteHalf`], and
/// writes the pings and close frames that keepalive and
/// [`Control`](crate::Control) handles queue.
///
/// # Cancellation safety
///
/// `StreamExt::next` is cancel safe: bytes already read stay buffered and no
/// message is lost if the future is dropped before it completes.
pub struct ReadHalf<S> {
    shared: Arc<Shared<S>>,
    decoder: MessageDecoder,
    buf: BytesMut,
    read_size: ReadSize,
    close_timeout: Duration,
    /// Bounds `Finishing` by the close timeout.
    finish_deadline: Deadline,
    state: ReadState,
    /// Keepalive pings and the read deadline, when configured.
    keepalive: Option<Box<KeepaliveTimer>>,
    /// Membership in a [`Shutdown`](crate::Shutdown), which this half acts
    /// on (see `shutdown.rs`); dropped, and so unregistered, at `Done`.
    shutdown: Option<Registration>,
}

/// The keepalive state machine and its timer.
#[derive(Debug)]
struct KeepaliveTimer {
    state: Keepalive,
    deadline: Deadline,
    /// Keepalive pings sent: the next one's payload is this count, 8 bytes
    /// big-endian, so that its pong can be told from others.
    pings: u64,
    /// The payload and send time of the latest keepalive ping not yet
    /// answered, to measure the round trip.
    in_flight: Option<([u8; 8], Instant)>,
}

/// The keepalive timer for `config`, if it asks for pings or a deadline.
fn keepalive_timer(config: &Config) -> Option<Box<KeepaliveTimer>> {
    let (ping, deadline) = (config.get_ping_interval(), config.get_read_timeout());
    if ping.is_none() && deadline.is_none() {
        return None;
    }
    let now = Instant::now();
    Some(Box::new(KeepaliveTimer {
        state: Keepalive::new(ping, deadline, now.into_std()),
        deadline: Deadline::default(),
        pings: 0,
        in_flight: None,
    }))
}

/// Returned by [`ReadHalf::reunite`] when the halves came from different
/// connections; gives both back.
pub struct ReuniteError<S>(pub ReadHalf<S>, pub WriteHalf<S>);

impl<S> ReadHalf<S> {
    pub(crate) fn new(shared: Arc<Shared<S>>, decoder: MessageDecoder, buf: BytesMut, config: &Config) -> Self {
        ReadHalf {
            shared,
            decoder,
            buf,
            read_size: ReadSize::new(config.get_read_buffer_size()),
            close_timeout: config.get_close_timeout(),
            finish_deadline: Deadline::default(),
            state: ReadState::Open,
            keepalive: keepalive_timer(config),
            shutdown: None,
        }
    }

    /// Joins (or leaves, with `None`) a [`Shutdown`](crate::Shutdown),
    /// leaving the previous one. A connection whose reading is over does
    /// not join: it is gone already.
    pub(crate) fn set_registration(&mut self, registration: Option<Registration>) {
        if matches!(self.state, ReadState::Done) {
            return;
        }
        self.shutdown = registration;
    }

    /// Reading is over: the stream yields `None` from now on, and the
    /// connection leaves its shutdown.
    fn set_done(&mut self) {
        self.state = ReadState::Done;
        self.shutdown = None;
    }

    /// Puts the halves back together. Fails when they belong to different
    /// connections.
    // The error hands both halves back by value, as tokio's `ReuniteError` does.
    #[allow(clippy::result_large_err)]
    pub fn reunite(self, write: WriteHalf<S>) -> Result<WebSocketStream<S>, ReuniteError<S>> {
        if self.is_pair_of(&write) {
            Ok(WebSocketStream::from_halves(self, write))
        } else {
            Err(ReuniteError(self, write))
        }
    }

    /// Records a field of the connection's span (see `trace.rs`); nothing
    /// without the `tracing` feature.
    #[inline]
    pub(crate) fn trace_record(&self, _field: &str, _value: impl TraceValue) {
        #[cfg(feature = "tracing")]
        self.shared.span.record(_field, _value);
    }

    /// Accepts compressed messages (permessage-deflate was negotiated).
    #[cfg(feature = "deflate")]
    pub(crate) fn set_inflater(&mut self, inflater: Box<dyn crate::protocol::Inflate>) {
        self.decoder.set_inflater(inflater);
    }

    pub(crate) fn close_timeout(&self) -> Duration {
        self.close_timeout
    }

    /// A handle that pings or closes this connection from any task.
    #[must_use]
    pub fn control(&self) -> crate::Control<S> {
        crate::Control::new(self.shared.clone())
    }

    /// The connection's traffic counters and round-trip time, both
    /// directions (see [`Stats`]). Takes no lock.
    #[must_use]
    pub fn stats(&self) -> Stats {
        self.shared.counters.get()
    }

    /// Whether both halves belong to the same connection.
    pub fn is_pair_of(&self, write: &WriteHalf<S>) -> bool {
        Arc::ptr_eq(&self.shared, write.shared())
    }

    /// Runs `f` on the transport, e.g. to read its peer address or socket
    /// options. The connection's state is locked meanwhile: keep `f` short,
    /// and do not read or write through it (that would corrupt the frame
    /// stream).
    pub fn with_io<R>(&self, f: impl FnOnce(&mut S) -> R) -> R {
        f(&mut self.shared.lock().io)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> ReadHalf<S> {
    /// The read loop (see the module docs): the next item, handling control
    /// frames on the way. Pings are answered (and yielded), a close frame is
    /// echoed and yielded once the echo is out, an error sends its close
    /// code and is yielded; then `None`.
    #[inline]
    pub(crate) fn poll_read<T: ReadItem>(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<T>>> {
        enter!(self.shared);
        loop {
            match self.state {
                ReadState::Open => {}
                ReadState::Finishing(_) => {
                    ready!(self.poll_finish(cx));
                    self.shutdown = None;
                    return Poll::Ready(match mem::replace(&mut self.state, ReadState::Done) {
                        ReadState::Finishing(item) => item.map(|item| item.map(T::from_control)),
                        _ => None,
                    });
                }
                ReadState::Done => return Poll::Ready(None),
            }
            if let Err(e) = self.write_urgent(cx) {
                self.fail(e);
                continue;
            }
            match T::decode_data(&mut self.decoder, &mut self.buf) {
                Some(Ok(item)) => {
                    item.count(&self.shared.counters);
                    return Poll::Ready(Some(Ok(item)));
                }
                Some(Err(e)) => {
                    self.fail(e.into());
                    continue;
                }
                None => {}
            }
            match T::decode(&mut self.decoder, &mut self.buf) {
                Ok(Some(item)) => {
                    item.count(&self.shared.counters);
                    let closing = match item.control() {
                        Some(Message::Ping(payload)) => {
                            self.shared.lock().handle_ping(payload.clone());
                            self.shared.set_urgent_queued(true);
                            if let Err(e) = self.write_urgent(cx) {
                                self.fail(e);
                                continue;
                            }
                            false
                        }
                        Some(Message::Close(frame)) => {
                            self.shared.lock().handle_close(frame.as_ref());
                            true
                        }
                        Some(Message::Pong(payload)) => {
                            self.handle_pong(payload);
                            false
                        }
                        _ => false,
                    };
                    if !closing {
                        return Poll::Ready(Some(Ok(item)));
                    }
                    self.state = ReadState::Finishing(item.into_control().map(Ok));
                }
                Ok(None) => match ready!(self.poll_read_or_keepalive(cx)) {
                    Ok(true) => {}
                    Ok(false) if self.shared.lock().is_close_done() => self.set_done(),
                    Ok(false) => self.fail(ProtocolError::UnexpectedEof.into()),
                    Err(e) => self.fail(e),
                },
                Err(e) => self.fail(e.into()),
            }
        }
    }

    /// Writes queued urgent frames without waiting for the transport.
    /// Inlined: on the hot path none is queued, and that check is one load.
    #[inline]
    fn write_urgent(&mut self, cx: &Context<'_>) -> Result<()> {
        if !self.shared.is_urgent_queued() {
            return Ok(());
        }
        self.write_urgent_now(cx)
    }

    #[cold]
    fn write_urgent_now(&mut self, cx: &Context<'_>) -> Result<()> {
        let mut conn = self.shared.lock();
        if conn.has_pending_urgent() {
            let mut wcx = self.shared.write_context(Half::Reader, cx);
            if let Poll::Ready(Err(e)) = conn.poll_urgent(&mut wcx) {
                return Err(Error::Io(e));
            }
        }
        self.shared.set_urgent_queued(conn.has_pending_urgent());
        Ok(())
    }

    /// A pong arrived: if it answers our latest keepalive ping, record the
    /// round trip.
    fn handle_pong(&mut self, payload: &Bytes) {
        let Some(keepalive) = self.keepalive.as_deref_mut() else { return };
        if let Some((sent, at)) = keepalive.in_flight {
            if payload[..] == sent {
                keepalive.in_flight = None;
                self.shared.counters.set_rtt(at.elapsed());
            }
        }
    }

    /// Fails the connection: queue the close code, then finish.
    fn fail(&mut self, err: Error) {
        self.shared.lock().handle_failure(&err);
        self.state = ReadState::Finishing(Some(Err(err)));
    }

    /// Writes the last urgent frames and shuts the transport's write side
    /// down, giving up after the close timeout (at once when a shutdown's
    /// close timeout already passed).
    fn poll_finish(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if self.shutdown.as_ref().is_some_and(|r| r.phase() == Phase::Expired) {
            return Poll::Ready(());
        }
        let done = {
            let mut conn = self.shared.lock();
            let mut wcx = self.shared.write_context(Half::Reader, cx);
            match conn.poll_urgent(&mut wcx) {
                Poll::Ready(Ok(())) => conn.poll_shutdown(&mut wcx).map(drop),
                Poll::Ready(Err(_)) => Poll::Ready(()),
                Poll::Pending => Poll::Pending,
            }
        };
        if done.is_ready() {
            self.finish_deadline.clear();
            return Poll::Ready(());
        }
        self.finish_deadline.poll_after(cx, self.close_timeout)
    }

    /// Reads more bytes, or acts on the keepalive timer while none come:
    /// queues a ping (then reports progress so that it is written), or
    /// fails the connection at the read deadline. `Ok(false)` means end of
    /// stream.
    fn poll_read_or_keepalive(&mut self, cx: &mut Context<'_>) -> Poll<Result<bool>> {
        if self.shutdown.as_ref().is_some_and(Registration::is_requested) {
            return self.queue_going_away();
        }
        let read = self.poll_read_more(cx).map_err(Error::Io);
        if read.is_pending() {
            // About to sleep: a control handle that queues a frame, or a
            // shutdown triggered, must be able to wake this task to write it.
            self.shared.register_reader(cx);
            if let Some(registration) = &self.shutdown {
                registration.register_waker(cx.waker());
            }
            if self.shared.take_queued_by_control() || self.shutdown.as_ref().is_some_and(Registration::is_requested) {
                return Poll::Ready(Ok(true));
            }
        }
        if let (Some(registration), Poll::Pending | Poll::Ready(Ok(true))) = (&mut self.shutdown, &read) {
            // Going away: the peer has the close timeout to answer our close.
            if registration.phase() == Phase::GoingAway
                && self.finish_deadline.poll_after(cx, self.close_timeout).is_ready()
            {
                registration.expire();
                return Poll::Ready(Err(Error::Timeout));
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
            let Some(at) = keepalive.state.deadline() else { return Poll::Pending };
            ready!(keepalive.deadline.poll_until(cx, Instant::from_std(at)));
            match keepalive.state.on_timer(Instant::now().into_std()) {
                KeepaliveAction::Wait => {}
                KeepaliveAction::Ping => {
                    keepalive.pings += 1;
                    let payload = keepalive.pings.to_be_bytes();
                    // A closing or failed connection sends no more pings;
                    // its own deadline still applies.
                    if self.shared.lock().push_ping(&Bytes::copy_from_slice(&payload)).is_ok() {
                        keepalive.in_flight = Some((payload, Instant::now()));
                        self.shared.set_urgent_queued(true);
                    }
                    return Poll::Ready(Ok(true));
                }
                KeepaliveAction::Expire => {
                    trace_event!(tracing::Level::INFO, "keepalive timeout: nothing received within the read timeout");
                    return Poll::Ready(Err(Error::Timeout));
                }
            }
        }
    }

    /// Acts on a triggered [`Shutdown`](crate::Shutdown): queues our close
    /// frame (1001 Going Away, unless a close was sent already) for the
    /// read loop to write, and reports progress so that it does.
    #[cold]
    fn queue_going_away(&mut self) -> Poll<Result<bool>> {
        if let Some(registration) = &mut self.shutdown {
            registration.start_going_away();
        }
        let frame = CloseFrame::new(CloseCode::GOING_AWAY, "");
        // A failed connection sends nothing more; it is ending anyway.
        if self.shared.lock().push_close_urgent(Some(&frame)).is_ok() {
            self.shared.set_urgent_queued(true);
        }
        Poll::Ready(Ok(true))
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
            let mut conn = self.shared.lock();
            poll_read_buf(Pin::new(&mut conn.io), cx, &mut self.buf)
        };
        // Only reads into an empty buffer size the next one: the reads that
        // finish a frame get exactly the room the decoder reserved, which says
        // nothing about how big the next burst will be.
        if let (Poll::Ready(Ok(n)), true) = (&read, fresh) {
            self.read_size.record(*n, room);
        }
        match read {
            Poll::Pending => {
                // A compressed connection's inflate state goes too, between
                // messages; its window stays.
                self.decoder.idle();
                if self.buf.is_empty() && self.decoder.is_between_frames() {
                    // Idle connections keep no read buffer: it goes to the
                    // next connection on this thread that reads.
                    spare::READ.park(mem::take(&mut self.buf));
                }
                Poll::Pending
            }
            Poll::Ready(result) => Poll::Ready(result.map(|n| n > 0)),
        }
    }

    /// Whether the rest of a message whose [`MessageReader`](crate::MessageReader)
    /// was dropped is still to be skipped.
    pub(crate) fn is_streaming(&self) -> bool {
        self.decoder.is_streaming()
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Stream for ReadHalf<S> {
    type Item = Result<Message>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        // The rest of a message whose reader was dropped is discarded, as
        // are the pings (answered) and pongs between its frames; the
        // peer's close ends it.
        while this.is_streaming() {
            match ready!(this.poll_read::<Event>(cx)) {
                Some(Ok(Event::Control(msg @ Message::Close(_)))) => return Poll::Ready(Some(Ok(msg))),
                Some(Ok(_)) => {}
                Some(Err(e)) => return Poll::Ready(Some(Err(e))),
                None => return Poll::Ready(None),
            }
        }
        this.poll_read(cx)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> FusedStream for ReadHalf<S> {
    fn is_terminated(&self) -> bool {
        matches!(self.state, ReadState::Done)
    }
}

impl<S> fmt::Debug for ReadHalf<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReadHalf").field("buffered", &self.buf.len()).finish_non_exhaustive()
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
