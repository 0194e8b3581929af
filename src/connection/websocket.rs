//! [`WebSocketStream`]: a connection as a `Stream` of messages and a `Sink`
//! for them.

use std::fmt;
use std::future::poll_fn;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use bytes::BytesMut;
use futures_core::{FusedStream, Stream};
use futures_sink::Sink;
use tokio::io::{AsyncRead, AsyncWrite};

use super::conn::Conn;
use super::deadline::Deadline;
use super::shared::Shared;
use super::{MessageKind, MessageReader, MessageWriter, ReadHalf, WriteHalf};
use crate::error::{Error, Result};
use crate::protocol::{CloseFrame, FrameEncoder, Message, MessageDecoder, Role};
use crate::{Config, PreparedMessage};

/// A WebSocket connection over any `AsyncRead + AsyncWrite` transport.
///
/// It is a `Stream<Item = Result<Message, Error>>` and a
/// `Sink<Message, Error = Error>`: use `StreamExt::next` to receive and
/// `SinkExt::send` (or `feed` + `flush` to batch) to send. Received pings are
/// answered and a received close frame is echoed automatically; both are
/// also yielded, and after a close the stream ends. A protocol violation by
/// the peer sends the matching close code (1002, 1007 or 1009), is yielded
/// once as an [`Error`], and then the stream ends; later sends return the
/// same error.
///
/// [`split`](WebSocketStream::split) gives owned halves for a reader task and
/// a writer task.
///
/// ```no_run
/// use futures_util::{SinkExt, StreamExt};
///
/// # async fn run(listener: tokio::net::TcpListener) -> Result<(), silverback::Error> {
/// let (tcp, _) = listener.accept().await?;
/// let mut ws = silverback::accept(tcp).await?;
/// while let Some(msg) = ws.next().await {
///     let msg = msg?;
///     if msg.is_text() || msg.is_binary() {
///         ws.send(msg).await?;
///     }
/// }
/// # Ok(())
/// # }
/// ```
///
/// # Cancellation safety
///
/// `next()` is cancel safe. `send()` is not: a message whose future is
/// dropped before it was queued is lost. [`close`](WebSocketStream::close),
/// [`send_close`](WebSocketStream::send_close), `flush()` and
/// `SinkExt::close` are cancel safe.
pub struct WebSocketStream<S> {
    read: ReadHalf<S>,
    write: WriteHalf<S>,
    /// Bounds [`close`](WebSocketStream::close) by the close timeout.
    close_deadline: Deadline,
}

impl<S: AsyncRead + AsyncWrite + Unpin> WebSocketStream<S> {
    /// Wraps a transport on which the opening handshake is already done.
    ///
    /// `read_buf` holds bytes the handshake read past the end of the HTTP
    /// head; they are the start of the WebSocket byte stream.
    pub fn from_raw_parts(io: S, role: Role, config: Config, read_buf: BytesMut) -> Self {
        let decoder = MessageDecoder::new(role, config.get_limits());
        let conn = Conn::new(io, FrameEncoder::new(role), config.get_write_buffer_size());
        let shared = Arc::new(Shared::new(conn, role));
        let read = ReadHalf::new(shared.clone(), decoder, read_buf, &config);
        WebSocketStream::from_halves(read, WriteHalf::new(shared, &config))
    }

    /// Like [`from_raw_parts`](WebSocketStream::from_raw_parts), for a
    /// connection whose handshake agreed on permessage-deflate with `params`
    /// (see [`deflate::server_negotiate`](crate::deflate::server_negotiate)
    /// and [`deflate::client_accept`](crate::deflate::client_accept)):
    /// compressed messages are accepted, and data messages are sent
    /// compressed with `config`'s [`DeflateConfig`](crate::DeflateConfig)
    /// level and minimum size (its defaults when it has none).
    ///
    /// [`accept`](crate::accept), [`Upgrader`](crate::Upgrader) and
    /// [`Connector`](crate::Connector) call this for you.
    #[cfg(feature = "deflate")]
    pub fn from_raw_parts_with_deflate(
        io: S,
        role: Role,
        config: Config,
        read_buf: BytesMut,
        params: crate::deflate::DeflateParams,
    ) -> Self {
        let mut ws = WebSocketStream::from_raw_parts(io, role, config, read_buf);
        ws.read.trace_record("compression", true);
        let settings = config.get_deflate().unwrap_or_default();
        ws.read.set_inflater(Box::new(params.decompressor(role)));
        // A window the backend cannot compress within (8) leaves our side
        // uncompressed, which RFC 7692 §6 allows for any message.
        if let Some(compressor) = params.compressor(role, settings.get_level()) {
            ws.write.set_outgoing(crate::deflate::Outgoing::new(compressor, settings.get_min_size()));
        }
        ws
    }

    /// Turns compression of the following data messages on or off; see
    /// [`WriteHalf::set_compression`].
    #[cfg(feature = "deflate")]
    pub fn set_compression(&mut self, enabled: bool) {
        self.write.set_compression(enabled);
    }

    /// A handle that pings or closes this connection from any task; see
    /// [`Control`](crate::Control).
    #[must_use]
    pub fn control(&self) -> crate::Control<S> {
        self.write.control()
    }

    /// Whether the following data messages are compressed (those long
    /// enough): permessage-deflate was negotiated and compression is on.
    #[must_use]
    pub fn is_compressing(&self) -> bool {
        self.write.is_compressing()
    }

    /// The connection's traffic counters and round-trip time (see
    /// [`Stats`](crate::Stats)). Takes no lock.
    ///
    /// ```
    /// # fn run(ws: &silverback::WebSocketStream<tokio::io::DuplexStream>) {
    /// let stats = ws.stats();
    /// println!("{} messages in, {} out, rtt {:?}", stats.messages_in, stats.messages_out, stats.rtt);
    /// # }
    /// ```
    #[must_use]
    pub fn stats(&self) -> crate::Stats {
        self.read.stats()
    }

    /// Performs the closing handshake: sends `frame` (or an empty close
    /// frame for `None`) unless a close was already sent, then reads until
    /// the peer's close arrives, **discarding** the data messages that come
    /// before it, and shuts the transport's write side down. Gives up with
    /// [`Error::Timeout`] after [`Config::close_timeout`].
    ///
    /// To read what the peer still sends before its close, use
    /// [`send_close`](WebSocketStream::send_close) and keep calling
    /// `next()`. The crate docs compare every way to close (section
    /// "Closing").
    ///
    /// # Cancellation safety
    ///
    /// Cancel safe: the frame stays queued, and calling it again resumes
    /// the handshake under the same `close_timeout` (its timer keeps
    /// running from the first call that had to wait).
    pub async fn close(&mut self, frame: Option<CloseFrame>) -> Result<()> {
        self.write.queue_close(frame.as_ref())?;
        poll_fn(|cx| self.poll_close_handshake(cx)).await
    }

    /// Sends our close frame (`None` sends one without a code) unless one
    /// was already sent, flushes it, and returns without waiting for the
    /// peer's: the closing handshake then finishes as the application keeps
    /// reading. `next()` yields the data messages the peer sent before its
    /// close (RFC 6455 §1.4, §7.1.2), then the peer's [`Message::Close`],
    /// then `None`; sending data fails with [`Error::Closed`].
    ///
    /// Nothing bounds the wait for the peer's close here: wrap the reads in
    /// a timeout if the peer may never answer.
    ///
    /// ```
    /// use futures_util::StreamExt;
    /// use silverback::{CloseFrame, Message, WebSocketStream};
    ///
    /// # async fn run<S>(mut ws: WebSocketStream<S>) -> silverback::Result<()>
    /// # where S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin {
    /// ws.send_close(Some(CloseFrame::normal())).await?;
    /// while let Some(msg) = ws.next().await {
    ///     match msg? {
    ///         Message::Text(text) => println!("late reply: {text}"),
    ///         Message::Close(frame) => println!("peer closed: {frame:?}"),
    ///         _ => {}
    ///     }
    /// }
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Cancellation safety
    ///
    /// Cancel safe: the frame is queued at the first poll and stays queued;
    /// calling again queues no second one and resumes the flush (so does
    /// any other flush).
    pub async fn send_close(&mut self, frame: Option<CloseFrame>) -> Result<()> {
        self.write.send_close(frame).await
    }

    /// Waits for the next data message and returns its kind and a reader
    /// over its payload, streamed in bounded memory; see
    /// [`ReadHalf::next_reader`] and [`MessageReader`].
    ///
    /// To echo a message as it streams, [`split`](WebSocketStream::split)
    /// first: the reader and a [`MessageWriter`] each borrow one half.
    pub async fn next_reader(&mut self) -> Option<Result<(MessageKind, MessageReader<'_, S>)>> {
        self.read.next_reader().await
    }

    /// Starts sending a data message in pieces; see
    /// [`WriteHalf::next_writer`] and [`MessageWriter`].
    pub fn next_writer(&mut self, kind: MessageKind) -> MessageWriter<'_, S> {
        self.write.next_writer(kind)
    }

    /// Queues a message encoded ahead of time without flushing; see
    /// [`WriteHalf::feed_prepared`].
    pub async fn feed_prepared(&mut self, msg: &PreparedMessage) -> Result<()> {
        self.write.feed_prepared(msg).await
    }

    /// Queues a message encoded ahead of time and flushes; see
    /// [`WriteHalf::send_prepared`].
    pub async fn send_prepared(&mut self, msg: &PreparedMessage) -> Result<()> {
        self.write.send_prepared(msg).await
    }

    /// Drives [`close`](WebSocketStream::close): flush our close frame, then
    /// read until the peer's close, all under one `close_timeout`.
    fn poll_close_handshake(&mut self, cx: &mut Context<'_>) -> Poll<Result<()>> {
        if let Poll::Ready(result) = self.poll_close_steps(cx) {
            self.close_deadline.clear();
            return Poll::Ready(result);
        }
        ready!(self.close_deadline.poll_after(cx, self.read.close_timeout()));
        Poll::Ready(Err(Error::Timeout))
    }

    fn poll_close_steps(&mut self, cx: &mut Context<'_>) -> Poll<Result<()>> {
        ready!(self.write.poll_write_all(cx))?;
        loop {
            match ready!(Pin::new(&mut self.read).poll_next(cx)) {
                None => return Poll::Ready(Ok(())),
                Some(Err(e)) => return Poll::Ready(Err(e)),
                Some(Ok(_)) => {}
            }
        }
    }
}

impl<S> WebSocketStream<S> {
    pub(crate) fn from_halves(read: ReadHalf<S>, write: WriteHalf<S>) -> Self {
        WebSocketStream { read, write, close_deadline: Deadline::default() }
    }

    /// The receiving half, for [`Shutdown::register`](crate::Shutdown::register).
    pub(crate) fn read_half_mut(&mut self) -> &mut ReadHalf<S> {
        &mut self.read
    }

    /// Runs `f` on the transport, e.g. to read its peer address or set
    /// socket options; see [`ReadHalf::with_io`].
    ///
    /// ```no_run
    /// # fn run(ws: &silverback::WebSocketStream<tokio::net::TcpStream>) -> std::io::Result<()> {
    /// let peer = ws.with_io(|tcp| tcp.peer_addr())?;
    /// ws.with_io(|tcp| tcp.set_nodelay(true))?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn with_io<R>(&self, f: impl FnOnce(&mut S) -> R) -> R {
        self.read.with_io(f)
    }

    /// Records the subprotocol the handshake agreed on in the connection's
    /// span (`tracing` feature; nothing without it).
    #[inline]
    pub(crate) fn trace_subprotocol(&self, protocol: Option<&str>) {
        self.read.trace_record("subprotocol", protocol);
    }

    /// Records a field of the connection's span; see `trace.rs`.
    #[cfg(feature = "tracing")]
    pub(crate) fn trace_record(&self, field: &str, value: impl tracing::Value) {
        self.read.trace_record(field, value);
    }

    /// Splits the connection into a receiving and a sending half, each
    /// `Send + 'static` when `S: Send`, to use from two tasks at once.
    /// [`ReadHalf::reunite`] puts them back together.
    pub fn split(self) -> (ReadHalf<S>, WriteHalf<S>) {
        (self.read, self.write)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Stream for WebSocketStream<S> {
    type Item = Result<Message>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Pin::new(&mut self.read).poll_next(cx)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> FusedStream for WebSocketStream<S> {
    fn is_terminated(&self) -> bool {
        self.read.is_terminated()
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Sink<Message> for WebSocketStream<S> {
    type Error = Error;

    fn poll_ready(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        Pin::new(&mut self.write).poll_ready(cx)
    }

    fn start_send(mut self: Pin<&mut Self>, msg: Message) -> Result<()> {
        Pin::new(&mut self.write).start_send(msg)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        Pin::new(&mut self.write).poll_flush(cx)
    }

    /// The whole closing handshake, as [`WebSocketStream::close`] with a
    /// `1000 Normal Closure` frame: data messages the peer sends before its
    /// close are discarded. Cancel safe.
    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        self.write.queue_close(Some(&CloseFrame::normal()))?;
        self.get_mut().poll_close_handshake(cx)
    }
}

impl<S> fmt::Debug for WebSocketStream<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebSocketStream").field("read", &self.read).field("write", &self.write).finish()
    }
}
