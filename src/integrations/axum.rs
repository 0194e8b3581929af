//! An [axum] 0.8 extractor: [`WebSocketUpgrade`].
//!
//! ```no_run
//! use std::sync::Arc;
//!
//! use axum::extract::State;
//! use axum::response::Response;
//! use axum::routing::any;
//! use axum::Router;
//! use futures_util::{SinkExt, StreamExt};
//! use silverback::axum::WebSocketUpgrade;
//! use silverback::Upgrader;
//!
//! async fn echo(State(upgrader): State<Arc<Upgrader>>, ws: WebSocketUpgrade) -> Response {
//!     ws.upgrader(upgrader).on_upgrade(|mut ws| async move {
//!         while let Some(Ok(msg)) = ws.next().await {
//!             if (msg.is_text() || msg.is_binary()) && ws.send(msg).await.is_err() {
//!                 break;
//!             }
//!         }
//!     })
//! }
//!
//! # async fn run() -> std::io::Result<()> {
//! let upgrader = Arc::new(Upgrader::new().subprotocols(["echo"]));
//! // any(): HTTP/1.1 upgrades are GET, HTTP/2 ones CONNECT.
//! let app = Router::new().route("/ws", any(echo)).with_state(upgrader);
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! axum::serve(listener, app).await
//! # }
//! ```
//!
//! The extractor takes HTTP/1.1 upgrades and HTTP/2 extended CONNECT
//! requests (RFC 8441) alike. An HTTP/2 WebSocket arrives as a `CONNECT`,
//! not a `GET`: route it with `any(handler)` (or `on(MethodFilter::GET |
//! MethodFilter::CONNECT, handler)`) rather than `get(handler)`, and serve
//! with HTTP/2 on (axum's `http2` feature; `axum::serve` announces extended
//! CONNECT). See [`crate::hyper`] for the HTTP/2 rules.
//!
//! Unlike axum's own `WebSocketUpgrade`, extraction never fails: the
//! [`Upgrader`] decides in [`WebSocketUpgrade::on_upgrade`], with the same
//! rules, policy and refusal responses as on a raw connection (see
//! [`Upgrader::upgrade_hyper`], which it calls).
//!
//! [axum]: https://docs.rs/axum/0.8

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::sync::Arc;

use axum_core::body::Body;
use axum_core::extract::FromRequestParts;
use axum_core::response::Response;
use http::request::Parts;

use crate::hyper::WebSocket;
use crate::{Error, Request, Upgrader};

/// Extracts a WebSocket upgrade request; answer it with
/// [`WebSocketUpgrade::on_upgrade`]. See the [module docs](self).
///
/// Extraction takes hyper's upgrade handle out of the request's extensions
/// and copies the request head (method, URI, version, header fields,
/// extensions) for the upgrader's checks.
pub struct WebSocketUpgrade {
    request: Request,
    upgrader: Option<Arc<Upgrader>>,
    on_failed_upgrade: Option<Box<dyn FnOnce(Error) + Send>>,
}

impl fmt::Debug for WebSocketUpgrade {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebSocketUpgrade")
            .field("request", &self.request)
            .field("upgrader", &self.upgrader)
            .finish_non_exhaustive()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for WebSocketUpgrade {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let mut request = Request::new(());
        *request.method_mut() = parts.method.clone();
        *request.uri_mut() = parts.uri.clone();
        *request.version_mut() = parts.version;
        *request.headers_mut() = parts.headers.clone();
        *request.extensions_mut() = parts.extensions.clone();
        // The upgrade handle moves here: only one party can upgrade.
        parts.extensions.remove::<::hyper::upgrade::OnUpgrade>();
        Ok(WebSocketUpgrade { request, upgrader: None, on_failed_upgrade: None })
    }
}

impl WebSocketUpgrade {
    /// The upgrader that decides and configures the connection (an
    /// `Upgrader`, or an `Arc<Upgrader>` shared through the router's
    /// state); [`Upgrader::new`] if none is given.
    #[must_use]
    pub fn upgrader(mut self, upgrader: impl Into<Arc<Upgrader>>) -> Self {
        self.upgrader = Some(upgrader.into());
        self
    }

    /// Called with the error when the request was accepted but the
    /// connection could not be upgraded (the client left before the 101
    /// was sent, or the handshake timed out). Ignored by default.
    #[must_use]
    pub fn on_failed_upgrade(mut self, callback: impl FnOnce(Error) + Send + 'static) -> Self {
        self.on_failed_upgrade = Some(Box::new(callback));
        self
    }

    /// The request head as extracted.
    #[must_use]
    pub fn request(&self) -> &Request {
        &self.request
    }

    /// Decides on the request and answers the response to return from the
    /// handler: `101 Switching Protocols` after which `callback` runs on a
    /// new task with the stream, or the refusal (400, 403, 405, 426, 505,
    /// or [`Upgrader::check_request`]'s own) with `Connection: close`.
    pub fn on_upgrade<F, Fut>(self, callback: F) -> Response
    where
        F: FnOnce(WebSocket) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let WebSocketUpgrade { mut request, upgrader, on_failed_upgrade } = self;
        let decided = match &upgrader {
            Some(upgrader) => upgrader.upgrade_hyper(&mut request),
            None => Upgrader::new().upgrade_hyper(&mut request),
        };
        match decided {
            Ok((response, upgrade)) => {
                tokio::spawn(async move {
                    match upgrade.await {
                        Ok(ws) => callback(ws).await,
                        Err(err) => {
                            if let Some(on_failed_upgrade) = on_failed_upgrade {
                                on_failed_upgrade(err);
                            }
                        }
                    }
                });
                response.map(Body::from)
            }
            Err(refusal) => refusal.into_response().map(Body::from),
        }
    }
}
