//! [`WriteHalf`]: the sending half of a connection. It only queues
//! (`start_send`) and writes (`poll_flush`); see `conn.rs` for the queue
//! and `shared.rs` for how both halves share it.

use std::fmt;
use std::future::poll_fn;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use futures_sink::Sink;
use tokio::io::AsyncWrite;

use super::deadline::Deadline;
use super::shared::{Half, Shared};
use super::trace::{enter, trace_event};
use super::Stats;
use crate::error::{Error, Result};
use crate::protocol::{CloseFrame, FrameHeader, Message, OpCode};
use crate::{Config, PreparedMessage};

/// The sending half of a [`WebSocketStream`](crate::WebSocketStream): a
/// `Sink<Message, Error = Error>`.
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
    /// `Config::write_timeout`, and the deadline of the flush in progress.
    write_timeout: Option<Duration>,
    write_deadline: Deadline,
    /// permessage-deflate's send side, when negotiated.
    #[cfg(feature = "deflate")]
    deflate: Option<Box<crate::deflate::Outgoing>>,
}

impl<S> WriteHalf<S> {
    pub(crate) fn new(shared: Arc<Shared<S>>, config: &Config) -> Self {
        WriteHalf {
            shared,
            unflushed: 0,
            batch: config.get_write_buffer_size(),
            write_timeout: config.get_write_timeout(),
            write_deadline: Deadline::default(),
            #[cfg(feature = "deflate")]
            deflate: None,
        }
    }

    pub(crate) fn shared(&self) -> &Arc<Shared<S>> {
        &self.shared
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

    /// Runs `f` on the transport; see [`ReadHalf::with_io`](crate::ReadHalf::with_io).
    pub fn with_io<R>(&self, f: impl FnOnce(&mut S) -> R) -> R {
        f(&mut self.shared.lock().io)
    }

    /// Queues one uncompressed fragment of a streamed message.
    pub(crate) fn push_fragment(&mut self, fin: bool, opcode: OpCode, payload: &[u8]) -> Result<()> {
        self.shared.lock().push_fragment(fin, opcode, payload)?;
        self.shared.counters.sent(fin, payload.len(), None);
        self.unflushed += payload.len() + FrameHeader::MAX_LEN;
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
    fn compress(&mut self, msg: &Message) -> Option<(OpCode, bytes::Bytes)> {
        let deflate = self.deflate.as_mut()?;
        let (opcode, payload) = match msg {
            Message::Text(text) => (OpCode::Text, text.as_bytes()),
            Message::Binary(payload) => (OpCode::Binary, payload),
            _ => return None,
        };
        Some((opcode, deflate.compress(payload)?))
    }
}

impl<S: AsyncWrite + Unpin> WriteHalf<S> {
    /// Queues our close frame as an urgent frame: if the flush that should
    /// write it is cancelled and never resumed, the read half still writes
    /// it, so the closing handshake cannot stall on our side.
    pub(crate) fn queue_close(&mut self, frame: Option<&CloseFrame>) -> Result<()> {
        enter!(self.shared);
        self.shared.lock().push_close_urgent(frame)?;
        self.shared.wake_reader_to_write();
        Ok(())
    }

    /// Sends our close frame (`None` sends one without a code) unless one
    /// was already sent, and flushes it with everything queued before it;
    /// returns once it is written. It does not wait for the peer's close:
    /// the [`ReadHalf`](crate::ReadHalf) keeps yielding the data messages
    /// the peer sent before its own close (RFC 6455 §1.4, §7.1.2), then that
    /// close ([`Message::Close`]), then `None`. Data sent after this fails
    /// with [`Error::Closed`].
    ///
    /// To wait for the whole closing handshake on an unsplit stream, use
    /// [`WebSocketStream::close`](crate::WebSocketStream::close); the crate
    /// docs compare every way to close (section "Closing").
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
        poll_fn(|cx| self.poll_reserve(cx)).await?;
        let compressed = self.push_prepared(msg)?;
        if !msg.opcode().is_control() {
            self.shared.counters.sent(true, msg.len(), compressed);
        }
        self.unflushed += compressed.unwrap_or(msg.len()) + FrameHeader::MAX_LEN;
        Ok(())
    }

    /// Queues a prepared message; returns the payload bytes queued when
    /// they are compressed (`None`: the message's own payload). On a
    /// connection that compresses, a data message is compressed once for
    /// every connection with our settings when our side has no context
    /// takeover, by our own compressor when it has, or not at all (see
    /// [`PreparedMessage`], "Compression"). Compression happens before the
    /// lock is taken, so that the read half never waits for it.
    fn push_prepared(&mut self, msg: &PreparedMessage) -> Result<Option<usize>> {
        #[cfg(feature = "deflate")]
        if let Some(deflate) = self.deflate.as_mut().filter(|_| !msg.opcode().is_control()) {
            use crate::deflate::SharedPlan;
            match deflate.plan_shared(msg.len()) {
                SharedPlan::Fresh(settings) => {
                    let compressed = msg.compressed(settings);
                    let payload = compressed.payload();
                    self.shared.lock().push_compressed(msg.opcode(), payload, Some(compressed.server_frame()))?;
                    return Ok(Some(payload.len()));
                }
                SharedPlan::OwnCompressor => {
                    if let Some(payload) = deflate.compress(msg.payload()) {
                        self.shared.lock().push_compressed(msg.opcode(), &payload, None)?;
                        return Ok(Some(payload.len()));
                    }
                }
                SharedPlan::Uncompressed => {}
            }
        }
        self.shared.lock().push_prepared(msg)?;
        Ok(None)
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

    /// Waits, flushing, while a batch is queued: the backpressure point of
    /// `Sink::poll_ready` and of [`MessageWriter`](crate::MessageWriter).
    pub(crate) fn poll_reserve(&mut self, cx: &mut Context<'_>) -> Poll<Result<()>> {
        if self.unflushed < self.batch {
            return Poll::Ready(Ok(()));
        }
        self.poll_write_all(cx)
    }

    /// Writes everything queued and flushes the transport, within the
    /// write timeout.
    pub(crate) fn poll_write_all(&mut self, cx: &mut Context<'_>) -> Poll<Result<()>> {
        enter!(self.shared);
        let mut conn = self.shared.lock();
        let mut wcx = self.shared.write_context(Half::Writer, cx);
        let result = match conn.poll_flush(&mut wcx) {
            Poll::Ready(result) => result,
            Poll::Pending => {
                let Some(timeout) = self.write_timeout else { return Poll::Pending };
                ready!(self.write_deadline.poll_after(cx, timeout));
                // The peer stopped reading: fail the connection (RFC 6455
                // §7.1.7), so that every later send reports it too.
                trace_event!(tracing::Level::INFO, ?timeout, "write timeout: the peer stopped reading");
                conn.handle_failure(&Error::Timeout);
                return Poll::Ready(Err(Error::Timeout));
            }
        };
        self.write_deadline.clear();
        Poll::Ready(match (conn.fatal(), result) {
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
            this.shared.lock().push_compressed(opcode, &compressed, None)?;
            this.shared.counters.sent(true, msg.len(), Some(compressed.len()));
            this.unflushed += compressed.len() + FrameHeader::MAX_LEN;
            return Ok(());
        }
        let len = msg.len();
        // Queued from a borrow: the message is dropped after the lock is
        // released, and not moved through the layers.
        this.shared.lock().push_message(&msg)?;
        if msg.is_text() || msg.is_binary() {
            this.shared.counters.sent(true, len, None);
        }
        this.unflushed += len + FrameHeader::MAX_LEN;
        Ok(())
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        self.get_mut().poll_write_all(cx)
    }

    /// Sends a `1000 Normal Closure` frame unless a close frame was already
    /// sent, and writes everything queued, like [`WriteHalf::send_close`]:
    /// it does not wait for the peer's close, which the
    /// [`ReadHalf`](crate::ReadHalf) reads. Cancel safe.
    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        let this = self.get_mut();
        this.queue_close(Some(&CloseFrame::normal()))?;
        this.poll_write_all(cx)
    }
}

impl<S> fmt::Debug for WriteHalf<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WriteHalf").field("unflushed", &self.unflushed).finish_non_exhaustive()
    }
}
