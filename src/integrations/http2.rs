//! WebSockets over HTTP/2 on the client side (RFC 8441):
//! [`Connector::http2_connect`] opens one HTTP/2 connection, and
//! [`Http2Connection::open`] opens a WebSocket on a new stream of it, as
//! many as the server's stream limit allows, each with its own flow
//! control.
//!
//! ```no_run
//! use futures_util::{SinkExt, StreamExt};
//! use silverback::{Connector, Message};
//!
//! # async fn run() -> Result<(), silverback::Error> {
//! let h2 = Connector::new().http2_connect("wss://example.com").await?;
//! let (mut chat, _) = h2.open("/chat").await?;
//! let (mut feed, _) = h2.open("/feed?since=0").await?; // same TCP connection
//! chat.send(Message::text("hello")).await?;
//! while let Some(msg) = feed.next().await {
//!     println!("{:?}", msg?);
//! }
//! # Ok(())
//! # }
//! ```
//!
//! # The transport
//!
//! The connection is opened as [`Connector::connect`] opens one: the same
//! proxy rules (HTTP, HTTPS and SOCKS5 tunnels), the same TLS settings
//! ([`Connector::tls_config`], `Connector::native_tls`), the same
//! [`Connector::handshake_timeout`] (for the HTTP/2 connection here, then
//! for each [`Http2Connection::open`]). For `wss://` TLS offers `h2` by
//! ALPN (rustls: silverback sets the list; a native-tls connector must be
//! built with `request_alpns(&["h2", "http/1.1"])`); for `ws://` the client
//! speaks HTTP/2 at once ("prior knowledge", h2c).
//!
//! # When the server does not take WebSockets over HTTP/2
//!
//! The server must negotiate `h2` (TLS) or speak HTTP/2 (`ws://`), and
//! announce `SETTINGS_ENABLE_CONNECT_PROTOCOL = 1` (RFC 8441 §3) in its
//! first SETTINGS frame, which [`Connector::http2_connect`] waits for. If it
//! does not, the connect fails with
//! [`HandshakeError::ExtendedConnectNotEnabled`]; with
//! [`Connector::allow_http1_fallback`] it succeeds instead, and every
//! [`Http2Connection::open`] then opens its own HTTP/1.1 connection with
//! [`Connector::connect`] ([`Http2Connection::is_http2`] tells which).
//!
//! # Streams, flow control, errors
//!
//! A WebSocket's frames travel in its stream's DATA frames. A peer that
//! stops reading one stream stops only that stream: once its HTTP/2 window
//! and the [`Config`](crate::Config) write buffer are full, `send` on it
//! waits, while the other streams flow. A reset of the stream or the loss
//! of the connection is an [`Error::Io`](crate::Error::Io) of kind
//! `ConnectionReset` (see [`UpgradedIo`]). Dropping the [`Http2Connection`]
//! does not close the WebSockets opened on it; the connection closes when
//! the last of them and the handle are gone.

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use ::hyper::body::{Body, Frame, Incoming};
use ::hyper::client::conn::http2::SendRequest;
use ::hyper::ext::Protocol;
use bytes::{Bytes, BytesMut};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::watch;

use crate::error::{Error, Result};
use crate::handshake::extensions;
use crate::handshake::head::{deadline_after, within};
use crate::handshake::request::build_h2_request;
use crate::handshake::response::validate_h2_response;
use crate::handshake::url::WsUrl;
use crate::hyper::UpgradedIo;
use crate::{Connector, HandshakeError, MaybeTlsStream, Response, Role, WebSocketStream};

impl Connector {
    /// Opens an HTTP/2 connection to the server of `url` (`ws://` or
    /// `wss://host[:port]`, any path is ignored) for WebSockets over HTTP/2
    /// (RFC 8441); open them with [`Http2Connection::open`]. See the
    /// [module docs](crate::http2).
    ///
    /// # Errors
    ///
    /// As [`Connector::connect`] for the URL, the proxy, TCP and TLS;
    /// [`HandshakeError::ExtendedConnectNotEnabled`] when the server does
    /// not take WebSockets over HTTP/2 (unless
    /// [`Connector::allow_http1_fallback`]);
    /// [`HandshakeError::Timeout`] past the handshake timeout.
    ///
    /// # Cancellation safety
    ///
    /// Not cancel safe: dropping the future drops the connection.
    pub async fn http2_connect(&self, url: &str) -> Result<Http2Connection> {
        let parsed = WsUrl::parse(url)?;
        let deadline = deadline_after(self.get_handshake_timeout());
        let fallback = self.http1_fallback;
        let io = self.open_transport(&parsed, deadline, |tls| tls.offering_h2(fallback)).await?;
        let base = format!("{}://{}", if parsed.secure { "wss" } else { "ws" }, parsed.host_header);
        let send =
            if !parsed.secure || io.negotiated_h2() { within(deadline, Box::pin(start(io))).await?? } else { None };
        if send.is_none() && !fallback {
            return Err(HandshakeError::ExtendedConnectNotEnabled.into());
        }
        Ok(Http2Connection { send, connector: self.clone(), base })
    }

    /// Lets [`Connector::http2_connect`] fall back to HTTP/1.1 when the
    /// server does not take WebSockets over HTTP/2, instead of failing
    /// with [`HandshakeError::ExtendedConnectNotEnabled`]; TLS then offers
    /// `http/1.1` after `h2`. Each [`Http2Connection::open`] then opens its
    /// own HTTP/1.1 connection.
    #[must_use]
    pub fn allow_http1_fallback(mut self) -> Self {
        self.http1_fallback = true;
        self
    }
}

/// Runs the HTTP/2 handshake on `io` and waits for the server's first
/// SETTINGS: the sender when they enable extended CONNECT, `None` when they
/// do not or the server does not speak HTTP/2.
async fn start(io: MaybeTlsStream) -> Result<Option<SendRequest<NoBody>>> {
    let (seen, mut settled) = watch::channel(false);
    let io = SettingsProbe { inner: io, first_frame: FirstFrame::default(), seen: Some(seen) };
    let handshake =
        ::hyper::client::conn::http2::Builder::new(TokioExecutor::new()).handshake::<_, NoBody>(TokioIo::new(io));
    let Ok((send, connection)) = handshake.await else {
        return Ok(None);
    };
    // Drive the connection here until its SETTINGS are in, then spawn it.
    let mut connection = Box::pin(connection);
    let mut settled = std::pin::pin!(settled.wait_for(|seen| *seen));
    let ended = std::future::poll_fn(|cx| {
        if connection.as_mut().poll(cx).is_ready() {
            return Poll::Ready(true);
        }
        // Err: the connection ended before its SETTINGS were read.
        settled.as_mut().poll(cx).map(|seen| seen.is_err())
    })
    .await;
    if ended || !connection.is_extended_connect_protocol_enabled() {
        return Ok(None);
    }
    tokio::spawn(connection);
    Ok(Some(send))
}

/// An HTTP/2 connection for WebSockets (RFC 8441), from
/// [`Connector::http2_connect`]: each [`Http2Connection::open`] opens one on
/// a new stream. Cheap to clone: the clones share the connection.
#[derive(Clone)]
pub struct Http2Connection {
    /// `None` when falling back to HTTP/1.1.
    send: Option<SendRequest<NoBody>>,
    connector: Connector,
    /// `ws[s]://authority`, to which paths are appended.
    base: String,
}

impl fmt::Debug for Http2Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Http2Connection")
            .field("base", &self.base)
            .field("http2", &self.is_http2())
            .field("closed", &self.is_closed())
            .finish_non_exhaustive()
    }
}

impl Http2Connection {
    /// Whether WebSockets open over HTTP/2; `false` after a fallback to
    /// HTTP/1.1 ([`Connector::allow_http1_fallback`]).
    #[must_use]
    pub fn is_http2(&self) -> bool {
        self.send.is_some()
    }

    /// Whether the HTTP/2 connection is gone (closed by either side, or
    /// lost): [`Http2Connection::open`] then fails. Always `false` after a
    /// fallback to HTTP/1.1.
    #[must_use]
    pub fn is_closed(&self) -> bool {
        self.send.as_ref().is_some_and(SendRequest::is_closed)
    }

    /// Opens a WebSocket at `path` (with its query, starting with `/`) on a
    /// new stream: an extended CONNECT with the connector's subprotocols,
    /// compression offer and header fields, answered by a 2xx status;
    /// returns the stream and the server's response.
    ///
    /// # Errors
    ///
    /// [`HandshakeError::InvalidUrl`] for a path that does not start with
    /// `/`; [`HandshakeError::UnexpectedStatus`] for a refusal (the
    /// connection stays usable); the negotiation errors of
    /// [`Connector::connect`]; [`Error::Io`] when the connection is gone;
    /// [`HandshakeError::Timeout`] past the connector's handshake timeout.
    ///
    /// # Cancellation safety
    ///
    /// Not cancel safe: dropping the future resets the stream.
    pub async fn open(&self, path: &str) -> Result<(WebSocketStream<Http2Io>, Response)> {
        if !path.starts_with('/') {
            return Err(HandshakeError::InvalidUrl.into());
        }
        let url = format!("{}{path}", self.base);
        let parsed = WsUrl::parse(&url)?;
        let deadline = deadline_after(self.connector.get_handshake_timeout());
        let Some(send) = &self.send else {
            let io = self.connector.open_transport(&parsed, deadline, |tls| tls).await?;
            return self.connector.connect_on(Http2Io::Http1(io), &url).await;
        };
        within(deadline, Box::pin(self.open_stream(send.clone(), &parsed))).await?
    }

    /// The extended CONNECT of [`Http2Connection::open`].
    async fn open_stream(
        &self,
        mut send: SendRequest<NoBody>,
        url: &WsUrl<'_>,
    ) -> Result<(WebSocketStream<Http2Io>, Response)> {
        let config = self.connector.conn_config();
        let offer = extensions::client_offer(&config);
        let extra = self.connector.extra();
        let request = build_h2_request(url, &extra.subprotocols, offer.as_deref(), &extra.headers)?;
        let (parts, ()) = request.into_parts();
        let mut request = http::Request::from_parts(parts, NoBody);
        request.extensions_mut().insert(Protocol::from_static("websocket"));
        send.ready().await.map_err(hyper_io)?;
        let mut response: http::Response<Incoming> = send.send_request(request).await.map_err(hyper_io)?;
        let on_upgrade = ::hyper::upgrade::on(&mut response);
        let (parts, _body) = response.into_parts();
        let response = Response::from_parts(parts, ());
        validate_h2_response(&response, &extra.subprotocols, offer.is_some())?;
        let agreed = extensions::client_accept(&config, response.headers())?;
        let upgraded = on_upgrade.await.map_err(hyper_io)?;
        let io = Http2Io::Http2(UpgradedIo::new(upgraded));
        let ws = extensions::into_stream(io, Role::Client, config, BytesMut::new(), agreed);
        ws.trace_subprotocol(
            response.headers().get(http::header::SEC_WEBSOCKET_PROTOCOL).and_then(|v| v.to_str().ok()),
        );
        Ok((ws, response))
    }
}

/// A hyper error as an I/O error (`ConnectionReset` when HTTP/2 caused it).
fn hyper_io(err: ::hyper::Error) -> Error {
    Error::Io(crate::hyper::reset_kind(io::Error::other(err)))
}

/// The transport of a WebSocket from [`Http2Connection::open`]: a stream
/// of the HTTP/2 connection, or, after a fallback, an HTTP/1.1 connection
/// of its own.
#[derive(Debug)]
#[non_exhaustive]
pub enum Http2Io {
    /// An extended CONNECT stream (RFC 8441).
    Http2(UpgradedIo),
    /// An HTTP/1.1 connection ([`Connector::allow_http1_fallback`]).
    Http1(MaybeTlsStream),
}

impl Http2Io {
    /// Whether the WebSocket runs over HTTP/2.
    #[must_use]
    pub fn is_http2(&self) -> bool {
        matches!(self, Http2Io::Http2(_))
    }
}

/// Runs `$call` on the transport inside `$self`, pinned.
macro_rules! either {
    ($self:ident, $io:ident => $call:expr) => {
        match $self.get_mut() {
            Http2Io::Http2($io) => {
                let $io = Pin::new($io);
                $call
            }
            Http2Io::Http1($io) => {
                let $io = Pin::new($io);
                $call
            }
        }
    };
}

impl AsyncRead for Http2Io {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        either!(self, io => io.poll_read(cx, buf))
    }
}

impl AsyncWrite for Http2Io {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        either!(self, io => io.poll_write(cx, buf))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        either!(self, io => io.poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Http2Io::Http2(io) => io.is_write_vectored(),
            Http2Io::Http1(io) => io.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        either!(self, io => io.poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        either!(self, io => io.poll_shutdown(cx))
    }
}

/// The empty body of an extended CONNECT request: the WebSocket runs in
/// the stream once the server has answered.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct NoBody;

impl Body for NoBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<std::result::Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(None)
    }

    fn is_end_stream(&self) -> bool {
        true
    }
}

/// Progress through the server's first HTTP/2 frame, its SETTINGS (RFC
/// 9113 §3.4: the server's connection preface).
#[derive(Debug, Default)]
struct FirstFrame {
    /// The frame header, as far as read.
    header: [u8; 9],
    /// Bytes of the frame read so far.
    read: usize,
}

impl FirstFrame {
    /// Counts `bytes`, the next ones read from the server.
    fn handle_read(&mut self, bytes: &[u8]) {
        for (at, &b) in (self.read..9).zip(bytes) {
            self.header[at] = b;
        }
        self.read = self.read.saturating_add(bytes.len());
    }

    /// Whether the header and the payload it announces have been read.
    fn is_complete(&self) -> bool {
        let len = u32::from_be_bytes([0, self.header[0], self.header[1], self.header[2]]) as usize;
        self.read >= 9 + len
    }
}

/// The transport under the HTTP/2 client until the server's first SETTINGS
/// are known: tells `seen` once the client asks to read again after the
/// whole frame was read. h2 has by then handled the frame (it decodes and
/// handles every buffered frame, and acknowledges and applies SETTINGS,
/// before it reads again), so `is_extended_connect_protocol_enabled` is
/// up to date. Dropping `seen` (end of stream, error) tells the waiter too.
struct SettingsProbe {
    inner: MaybeTlsStream,
    first_frame: FirstFrame,
    seen: Option<watch::Sender<bool>>,
}

impl AsyncRead for SettingsProbe {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.seen.is_none() {
            return Pin::new(&mut this.inner).poll_read(cx, buf);
        }
        if this.first_frame.is_complete() {
            if let Some(seen) = this.seen.take() {
                let _ = seen.send(true);
            }
            return Pin::new(&mut this.inner).poll_read(cx, buf);
        }
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        match &polled {
            Poll::Ready(Ok(())) if buf.filled().len() > before => this.first_frame.handle_read(&buf.filled()[before..]),
            Poll::Ready(_) => this.seen = None,
            Poll::Pending => {}
        }
        polled
    }
}

impl AsyncWrite for SettingsProbe {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_frame_is_counted_across_reads() {
        // SETTINGS with one setting (6 bytes), then more frames.
        let frame = [0, 0, 6, 4, 0, 0, 0, 0, 0, 0, 8, 0, 0, 0, 1];
        for split in 0..frame.len() {
            let mut first = FirstFrame::default();
            first.handle_read(&frame[..split]);
            assert!(!first.is_complete(), "{split}");
            first.handle_read(&frame[split..]);
            assert!(first.is_complete(), "{split}");
        }
        let mut first = FirstFrame::default();
        first.handle_read(&[0, 0, 0, 4, 1, 0, 0, 0]);
        assert!(!first.is_complete());
        first.handle_read(&[0, 0xff, 0xff]);
        assert!(first.is_complete());
    }
}
