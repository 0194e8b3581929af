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

use crate::connection::trace::trace_event;
use crate::error::{Error, Result};
use crate::handshake::extensions;
use crate::handshake::head::{deadline_after, within};
use crate::handshake::policy::Refused;
use crate::handshake::response::{accept_response, error_response};
use crate::handshake::{HandshakeError, Request, Upgrader};
use crate::{Role, WebSocketStream};

/// The stream an upgraded hyper connection becomes.
pub type WebSocket = WebSocketStream<TokioIo<Upgraded>>;

impl Upgrader {
    /// Decides on a request that a hyper 1.x server has read, and answers
    /// the response to return from the service with, together with the
    /// future of the connection; see the [module docs](crate::hyper).
    ///
    /// The request is checked, and answered, exactly as
    /// [`Upgrader::accept`] does on a raw connection. On success the
    /// response is `101 Switching Protocols` with `Sec-WebSocket-Accept`,
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
                &answer.accept,
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
            .map_err(Refusal::from)?;
        let on_upgrade: OnUpgrade = ::hyper::upgrade::on(request);
        let deadline = deadline_after(self.get_handshake_timeout());
        let config = self.conn_config();
        let shutdown = self.get_shutdown().cloned();
        let future = async move {
            let upgraded = within(deadline, on_upgrade).await?.map_err(|err| Error::Io(io::Error::other(err)))?;
            let io = TokioIo::new(upgraded);
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
fn with_parts<B, T>(request: &mut http::Request<B>, f: impl FnOnce(&Request) -> T) -> T {
    let mut plain = Request::new(());
    *plain.method_mut() = std::mem::take(request.method_mut());
    *plain.uri_mut() = std::mem::take(request.uri_mut());
    *plain.version_mut() = request.version();
    *plain.headers_mut() = std::mem::take(request.headers_mut());
    *plain.extensions_mut() = std::mem::take(request.extensions_mut());
    let out = f(&plain);
    let (parts, ()) = plain.into_parts();
    *request.method_mut() = parts.method;
    *request.uri_mut() = parts.uri;
    *request.headers_mut() = parts.headers;
    *request.extensions_mut() = parts.extensions;
    out
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

impl From<Refused> for Refusal {
    fn from(refused: Refused) -> Self {
        let error = refused.error();
        let response = match refused {
            Refused::Error(err) => error_response(err),
            Refused::Rejected(rejection) => rejection.into_response(),
        };
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
