//! Upgrading a request that a [hyper] 1.x server (or a framework on hyper,
//! such as axum) has already read: [`Upgrader::upgrade_hyper`].
//!
//! hyper owns the HTTP layer: it reads the request head and writes the
//! response. The [`Upgrader`] decides exactly as it does on a raw
//! connection (the checks of RFC 6455 §4.2.1, the origin policy,
//! [`Upgrader::check_request`], the subprotocol, permessage-deflate) and
//! hands back the response for the application to return from its
//! service, together with an [`UpgradeFuture`] that resolves to the
//! [`WebSocketStream`] once hyper has sent the 101 and given up the
//! connection.
//!
//! ```no_run
//! use std::convert::Infallible;
//!
//! use futures_util::{SinkExt, StreamExt};
//! use hyper::body::Incoming;
//! use hyper::service::service_fn;
//! use hyper_util::rt::TokioIo;
//! use silverback::Upgrader;
//!
//! async fn serve(req: hyper::Request<Incoming>) -> Result<hyper::Response<String>, Infallible> {
//!     let mut req = req;
//!     Ok(match Upgrader::new().upgrade_hyper(&mut req) {
//!         Ok((response, upgrade)) => {
//!             tokio::spawn(async move {
//!                 let mut ws = upgrade.await?;
//!                 while let Some(msg) = ws.next().await {
//!                     ws.send(msg?).await?;
//!                 }
//!                 Ok::<_, silverback::Error>(())
//!             });
//!             response
//!         }
//!         Err(refusal) => refusal.into_response(),
//!     })
//! }
//!
//! # async fn run() -> std::io::Result<()> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! let (tcp, _) = listener.accept().await?;
//! hyper::server::conn::http1::Builder::new()
//!     .serve_connection(TokioIo::new(tcp), service_fn(serve))
//!     .with_upgrades() // without it, hyper cannot hand the connection over
//!     .await
//!     .ok();
//! # Ok(())
//! # }
//! ```
//!
//! # HTTP/2 (RFC 8441)
//!
//! The same call accepts a WebSocket over HTTP/2: an extended `CONNECT`
//! with `:protocol = websocket` on a stream of hyper's HTTP/2 server, which
//! must announce extended CONNECT in its SETTINGS
//! (`http2::Builder::enable_connect_protocol()`, or
//! `auto::Builder::http2().enable_connect_protocol()` in hyper-util). The
//! same origin policy (against `:authority`), subprotocols,
//! permessage-deflate and [`Upgrader::check_request`] apply; an accepted
//! request is answered `200 OK` without `Sec-WebSocket-Accept` (RFC 8441
//! §5), a refused one with the same status and body as over HTTP/1.1 on
//! its own stream, which then ends (`Connection: close` and `Upgrade` are
//! left out: HTTP/2 has no such fields). Other streams of the connection
//! carry on. Check the version with `request.version()` (also in
//! [`Upgrader::check_request`]) when it matters.
//!
//! The WebSocket then runs in the stream's DATA frames, under HTTP/2 flow
//! control: a peer that stops reading makes `send` wait once the stream's
//! window and the [`Config`](crate::Config) write buffer are full, as a
//! full TCP socket would, while the connection's other streams flow, as
//! long as the connection's window has room beyond the stalled streams'
//! (hyper's server defaults both windows to 1 MiB, so one stalled stream
//! can take the whole connection window: raise
//! `initial_connection_window_size` above `initial_stream_window_size`
//! times the streams that may stall). A
//! stream reset (`RST_STREAM`) or a lost connection is an
//! [`Error::Io`] of kind [`io::ErrorKind::ConnectionReset`], except a
//! reset with `CANCEL` or `NO_ERROR`, which hyper reports as the end of the
//! stream ([`ProtocolError::UnexpectedEof`](crate::ProtocolError), close
//! code 1006).
//!
//! Shutting down: hyper's graceful shutdown of an HTTP/2 connection
//! (`graceful_shutdown()`, which sends `GOAWAY`) refuses new streams but
//! lets the streams already open run, WebSockets included (RFC 9113 §6.8):
//! neither side's application sees anything, and the connection ends after
//! the last of them has closed. To end them with `1001 Going Away`, trigger
//! the [`Shutdown`](crate::Shutdown) given to [`Upgrader::shutdown`] as well:
//! each WebSocket then closes with 1001, its stream ends, and the
//! connection with the last one (`tests/http2.rs` checks both). A client's
//! [`Http2Connection::open`](crate::http2::Http2Connection::open) after the
//! GOAWAY fails with [`Error::Io`], and leaves its open WebSockets alone.
//!
//! One TLS port for both versions, with hyper-util's `auto` builder and
//! ALPN (rustls shown; `examples/wss_server.rs` is a complete server):
//!
//! ```no_run
//! # use std::sync::Arc;
//! # use hyper_util::rt::{TokioExecutor, TokioIo};
//! # async fn run(mut tls_config: rustls::ServerConfig,
//! #     service: impl hyper::service::Service<hyper::Request<hyper::body::Incoming>,
//! #         Response = hyper::Response<String>, Error = std::convert::Infallible,
//! #         Future: Send + 'static> + Clone + Send + 'static) -> std::io::Result<()> {
//! tls_config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
//! let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls_config));
//! let listener = tokio::net::TcpListener::bind("0.0.0.0:443").await?;
//! loop {
//!     let (tcp, _) = listener.accept().await?;
//!     let (acceptor, service) = (acceptor.clone(), service.clone());
//!     tokio::spawn(async move {
//!         let tls = acceptor.accept(tcp).await?;
//!         let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
//!         builder.http2().enable_connect_protocol();
//!         // HTTP/2 when ALPN chose h2 (the auto builder reads the preface),
//!         // HTTP/1.1 with upgrades otherwise.
//!         builder
//!             .serve_connection_with_upgrades(TokioIo::new(tls), hyper::service::service_fn(move |r| service.call(r)))
//!             .await
//!             .map_err(std::io::Error::other)
//!     });
//! }
//! # }
//! ```
//!
//! # Bytes read past the request head
//!
//! hyper reads in chunks, so a client's first frames, sent right behind its
//! request (possibly in the same packet), may already sit in hyper's
//! buffer. hyper keeps them in the [`Upgraded`] connection, whose reads
//! return them before reading the socket again: the stream sees every
//! byte, in order, and its own read buffer starts empty. (hyper's
//! `Upgraded::downcast` would return them as `Parts { io, read_buf }`, but
//! only for a transport type named at compile time; through [`Upgraded`] a
//! read costs one dynamic call.)
//!
//! # What does not apply
//!
//! [`Upgrader::max_head_size`] and [`Upgrader::max_headers`] do not: hyper
//! has read the head under its own limits (`max_buf_size`, `max_headers` on
//! its connection builder). [`Upgrader::handshake_timeout`] bounds the
//! [`UpgradeFuture`], from the call to [`Upgrader::upgrade_hyper`].
//!
//! [hyper]: https://docs.rs/hyper/1

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::{error, fmt, io};

use ::hyper::upgrade::{OnUpgrade, Upgraded};
use bytes::BytesMut;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::connection::trace::trace_event;
use crate::error::{Error, Result};
use crate::handshake::extensions;
use crate::handshake::head::{deadline_after, within};
use crate::handshake::policy::Refused;
use crate::handshake::request::ConnectProtocol;
use crate::handshake::response::{accept_response, refusal_response};
use crate::handshake::{HandshakeError, Request, Upgrader};
use crate::{Role, WebSocketStream};

/// The stream an upgraded hyper connection (HTTP/1.1) or stream (HTTP/2)
/// becomes.
pub type WebSocket = WebSocketStream<UpgradedIo>;

impl Upgrader {
    /// Decides on a request that a hyper 1.x server has read, and answers
    /// the response to return from the service with, together with the
    /// future of the connection; see the [module docs](crate::hyper).
    ///
    /// The request is checked, and answered, exactly as
    /// [`Upgrader::accept`] does on a raw connection; an HTTP/2 extended
    /// CONNECT (RFC 8441) by the rules of the [module docs](crate::hyper#http2-rfc-8441).
    /// On success the response is `101 Switching Protocols` (`200 OK` over
    /// HTTP/2) with `Sec-WebSocket-Accept`,
    /// the selected subprotocol and extensions, and the extra
    /// [`header`](Upgrader::header)s; the upgrade handle is taken out of
    /// the request's extensions, the rest of the request is left as it was.
    /// Spawn the [`UpgradeFuture`]: it resolves once hyper has sent the
    /// response, which it only does after the service returns it.
    ///
    /// # Errors
    ///
    /// A refused request gives a [`Refusal`] holding the error and the
    /// response to send instead, with the same status, header fields and
    /// body as on a raw connection (a misconfigured upgrader, see
    /// [`HandshakeError::InvalidHeader`], is answered with 500).
    ///
    /// The connection must be served with upgrades enabled (hyper's
    /// `http1::Builder::serve_connection(..).with_upgrades()`, or
    /// hyper-util's `serve_connection_with_upgrades`); otherwise, or for a
    /// request that did not come from a hyper HTTP/1.1 server, the future
    /// fails with an [`Error::Io`] from hyper.
    pub fn upgrade_hyper<B>(
        &self,
        request: &mut http::Request<B>,
    ) -> std::result::Result<(http::Response<String>, UpgradeFuture), Refusal> {
        let decided = with_parts(request, |plain| {
            self.check_settings()?;
            let answer = self.decide(plain)?;
            let response = accept_response(
                answer.accept.as_deref(),
                answer.subprotocol,
                answer.extensions.as_deref(),
                self.extra_headers(),
            )?;
            // Owned, for the connection's span once the upgrade is done.
            let subprotocol = answer.subprotocol.map(str::to_owned);
            Ok::<_, Refused>((response, answer.agreed, subprotocol))
        });
        let (response, agreed, subprotocol) = decided
            .inspect_err(|_refused| trace_event!(tracing::Level::INFO, status = _refused.error().status().map(|s| s.as_u16()), reason = %_refused.error(), "handshake refused"))
            .map_err(|refused| Refusal::new(refused, request.version()))?;
        let on_upgrade: OnUpgrade = ::hyper::upgrade::on(request);
        let deadline = deadline_after(self.get_handshake_timeout());
        let config = self.conn_config();
        let shutdown = self.get_shutdown().cloned();
        let future = async move {
            let upgraded = within(deadline, on_upgrade).await?.map_err(|err| Error::Io(io::Error::other(err)))?;
            let io = UpgradedIo { inner: TokioIo::new(upgraded) };
            let mut ws = extensions::into_stream(io, Role::Server, config, BytesMut::new(), agreed);
            ws.trace_subprotocol(subprotocol.as_deref());
            if let Some(shutdown) = shutdown {
                shutdown.register(&mut ws);
            }
            Ok(ws)
        };
        Ok((response, UpgradeFuture { inner: Box::pin(future) }))
    }
}

/// Lends `request`'s head to `f` as a [`Request`] (the type the
/// application's checks take), moving its parts rather than copying them.
/// hyper's `:protocol` (an HTTP/2 extended CONNECT) is lent as the
/// handshake's own [`ConnectProtocol`].
fn with_parts<B, T>(request: &mut http::Request<B>, f: impl FnOnce(&Request) -> T) -> T {
    let mut plain = Request::new(());
    *plain.method_mut() = std::mem::take(request.method_mut());
    *plain.uri_mut() = std::mem::take(request.uri_mut());
    *plain.version_mut() = request.version();
    *plain.headers_mut() = std::mem::take(request.headers_mut());
    *plain.extensions_mut() = std::mem::take(request.extensions_mut());
    if let Some(protocol) = plain.extensions().get::<::hyper::ext::Protocol>() {
        let protocol = ConnectProtocol(String::from_utf8_lossy(protocol.as_ref()).into_owned());
        plain.extensions_mut().insert(protocol);
    }
    let out = f(&plain);
    let (mut parts, ()) = plain.into_parts();
    parts.extensions.remove::<ConnectProtocol>();
    *request.method_mut() = parts.method;
    *request.uri_mut() = parts.uri;
    *request.headers_mut() = parts.headers;
    *request.extensions_mut() = parts.extensions;
    out
}

/// The I/O of an upgraded hyper connection (HTTP/1.1) or extended CONNECT
/// stream (HTTP/2), under a [`WebSocket`].
///
/// Reads and writes go to hyper's [`Upgraded`]; an error that an HTTP/2
/// stream reset or a lost HTTP/2 connection caused becomes
/// [`io::ErrorKind::ConnectionReset`], with hyper's error inside, but for
/// one case: flushing or ending the write side (`poll_flush`,
/// `poll_shutdown`) of a stream that the peer has reset with `NO_ERROR`
/// succeeds. That reset is how an HTTP/2 peer that is done says it wants
/// no more (RFC 9113 §8.1), so there is nothing left to deliver; hyper's
/// server sends it after the last frame of its side once a graceful
/// shutdown (GOAWAY) is under way, right after the WebSocket's closing
/// handshake. Writing new data to such a stream still fails.
#[derive(Debug)]
pub struct UpgradedIo {
    inner: TokioIo<Upgraded>,
}

impl UpgradedIo {
    /// Wraps an upgraded connection or stream.
    #[must_use]
    pub fn new(upgraded: Upgraded) -> Self {
        UpgradedIo { inner: TokioIo::new(upgraded) }
    }

    /// The upgraded connection or stream inside.
    #[must_use]
    pub fn get_ref(&self) -> &Upgraded {
        self.inner.inner()
    }

    /// The upgraded connection or stream inside, mutably.
    pub fn get_mut(&mut self) -> &mut Upgraded {
        self.inner.inner_mut()
    }

    /// The upgraded connection or stream inside.
    #[must_use]
    pub fn into_inner(self) -> Upgraded {
        self.inner.into_inner()
    }
}

/// The HTTP/2 error (a stream reset or a connection-level error) in `err`'s
/// chain, if there is one.
fn h2_cause(err: &io::Error) -> Option<&h2::Error> {
    let mut cause: Option<&(dyn error::Error + 'static)> = err.get_ref().map(|e| e as _);
    while let Some(e) = cause {
        if let Some(h2) = e.downcast_ref::<h2::Error>() {
            return Some(h2);
        }
        cause = e.source();
    }
    None
}

/// `err` with kind `ConnectionReset` when an HTTP/2 error (a stream reset
/// or a connection-level error) is in its chain.
pub(crate) fn reset_kind(err: io::Error) -> io::Error {
    if h2_cause(&err).is_some() {
        return io::Error::new(io::ErrorKind::ConnectionReset, err);
    }
    err
}

/// A flush or shutdown that failed because the peer reset the stream with
/// `NO_ERROR` as done (RFC 9113 §8.1: it wants no more, without error);
/// other errors through [`reset_kind`].
fn peer_done_is_ok(poll: Poll<io::Result<()>>) -> Poll<io::Result<()>> {
    match poll {
        Poll::Ready(Err(err)) if h2_cause(&err).and_then(h2::Error::reason) == Some(h2::Reason::NO_ERROR) => {
            Poll::Ready(Ok(()))
        }
        other => other.map_err(reset_kind),
    }
}

impl AsyncRead for UpgradedIo {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf).map_err(reset_kind)
    }
}

impl AsyncWrite for UpgradedIo {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf).map_err(reset_kind)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs).map_err(reset_kind)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        peer_done_is_ok(Pin::new(&mut self.inner).poll_flush(cx))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        peer_done_is_ok(Pin::new(&mut self.inner).poll_shutdown(cx))
    }
}

/// The connection of an accepted request, once hyper has sent the 101
/// response and handed the connection over: resolves to the stream, or to
/// [`Error::Io`] when hyper could not upgrade the connection (the client
/// left, upgrades not enabled), or [`HandshakeError::Timeout`] past the
/// upgrader's handshake timeout.
///
/// # Cancellation safety
///
/// Dropping it drops the connection (closing it if hyper already handed it
/// over).
#[must_use = "the connection is only upgraded when the future is polled (spawn it)"]
pub struct UpgradeFuture {
    inner: Pin<Box<dyn Future<Output = Result<WebSocket>> + Send>>,
}

impl fmt::Debug for UpgradeFuture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UpgradeFuture").finish_non_exhaustive()
    }
}

impl Future for UpgradeFuture {
    type Output = Result<WebSocket>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.inner.as_mut().poll(cx)
    }
}

/// A request [`Upgrader::upgrade_hyper`] refused: why, and the response to
/// send (status, header fields and body, `Connection: close` among them).
#[derive(Debug)]
pub struct Refusal {
    error: HandshakeError,
    // Boxed: the `Result` of `upgrade_hyper` stays small.
    response: Box<http::Response<String>>,
}

impl Refusal {
    /// Why the request was refused; [`HandshakeError::Rejected`] for a
    /// refusal of [`Upgrader::check_request`].
    #[must_use]
    pub fn error(&self) -> HandshakeError {
        self.error
    }

    /// The response to send.
    #[must_use]
    pub fn response(&self) -> &http::Response<String> {
        &self.response
    }

    /// The response to send, to return from the service.
    #[must_use]
    pub fn into_response(self) -> http::Response<String> {
        *self.response
    }
}

impl Refusal {
    /// The refusal of a request of this HTTP version: over HTTP/2, without
    /// the connection-specific fields (`Connection`, `Upgrade`) that
    /// version forbids, and with `Allow: CONNECT` for 405.
    fn new(refused: Refused, version: http::Version) -> Self {
        let error = refused.error();
        let response = refusal_response(refused, version);
        Refusal { error, response: Box::new(response) }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "upgrade refused with status {}", self.response.status())
    }
}

impl error::Error for Refusal {
    fn source(&self) -> Option<&(dyn error::Error + 'static)> {
        Some(&self.error)
    }
}

impl From<Refusal> for Error {
    fn from(refusal: Refusal) -> Self {
        Error::Handshake(refusal.error)
    }
}
