//! The server side: [`Upgrader`] and [`accept`].

use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use http::header::{
    CONNECTION, CONTENT_LENGTH, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_EXTENSIONS, SEC_WEBSOCKET_PROTOCOL,
    SEC_WEBSOCKET_VERSION, TRANSFER_ENCODING, UPGRADE,
};
use http::{HeaderName, HeaderValue};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;

use super::extensions;
use super::head::{deadline_after, read_head, within, HeadLimits};
use super::policy::{Answer, OriginPolicy, Refused, RequestCheck};
use super::rejection::Rejection;
use super::request::{origin_matches_host, parse_request, select_subprotocol, validate_request};
use super::response::build_accept_response;
use super::settings::HeaderSettings;
use super::{HandshakeError, Request};
use crate::connection::trace::trace_event;
use crate::error::{Error, Result};
use crate::{Config, Role, Shutdown, WebSocketStream};

/// After refusing a handshake, how long we keep reading (and discarding)
/// what the client still sends before closing, at most.
const LINGER_TIME: Duration = Duration::from_secs(1);
/// After refusing a handshake, how many bytes we discard at most.
const LINGER_BYTES: u64 = 64 * 1024;

/// Header fields the handshake writes itself; [`Upgrader::header`] refuses
/// them.
const MANAGED: [HeaderName; 8] = [
    UPGRADE,
    CONNECTION,
    SEC_WEBSOCKET_ACCEPT,
    SEC_WEBSOCKET_PROTOCOL,
    SEC_WEBSOCKET_EXTENSIONS,
    SEC_WEBSOCKET_VERSION,
    CONTENT_LENGTH,
    TRANSFER_ENCODING,
];

/// Accepts a WebSocket connection on `io` with the default [`Upgrader`]:
/// reads the client's upgrade request, answers it, and returns the stream.
///
/// The default origin policy applies: a request whose `Origin` names a
/// different host than its `Host` is refused with 403 (see
/// [`Upgrader::check_origin`]). A refused request is answered with an HTTP
/// error status and returned as [`Error::Handshake`].
///
/// The handshake runs inside the returned future and spawns nothing, so
/// `io` need not be `Send` or `'static` (a `!Send` transport on a
/// `LocalSet`, or a `&mut` borrow of one, will do).
///
/// # Cancellation safety
///
/// Not cancel safe: dropping the future drops `io` with the handshake half
/// done. The whole handshake is bounded by
/// [`Upgrader::DEFAULT_HANDSHAKE_TIMEOUT`].
///
/// ```no_run
/// use futures_util::{SinkExt, StreamExt};
/// use tokio::net::TcpListener;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let listener = TcpListener::bind("127.0.0.1:9001").await?;
/// loop {
///     let (tcp, _) = listener.accept().await?;
///     tcp.set_nodelay(true)?;
///     tokio::spawn(async move {
///         let mut ws = silverback::accept(tcp).await?;
///         while let Some(msg) = ws.next().await {
///             let msg = msg?;
///             if msg.is_text() || msg.is_binary() {
///                 ws.send(msg).await?;
///             }
///         }
///         Ok::<_, silverback::Error>(())
///     });
/// }
/// # }
/// ```
pub async fn accept<S>(io: S) -> Result<WebSocketStream<S>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    Upgrader::new().accept(io).await
}

/// A configured server handshake, like gorilla/websocket's `Upgrader`.
///
/// Setters take and return the builder by value; [`Upgrader::accept`] takes
/// `&self`, so one `Upgrader` (cheap to clone, or shared in an `Arc`) serves
/// every connection.
///
/// Defaults are strict: same-host origin policy, no subprotocol, a 10 s
/// handshake timeout, an 8 KiB request head with at most 64 header fields.
///
/// ```no_run
/// use std::time::Duration;
/// use silverback::Upgrader;
/// use tokio::net::TcpListener;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let upgrader = Upgrader::new()
///     .subprotocols(["v2.chat", "v1.chat"])
///     .check_origin(|req| {
///         req.headers().get("origin").map_or(true, |o| o == "https://example.com")
///     })
///     .header("x-served-by", "silverback")
///     .handshake_timeout(Duration::from_secs(5));
///
/// let listener = TcpListener::bind("127.0.0.1:9001").await?;
/// let (tcp, _) = listener.accept().await?;
/// let (ws, request) = upgrader.accept_with_request(tcp).await?;
/// println!("{} connected", request.uri().path());
/// # drop(ws);
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct Upgrader {
    config: Config,
    /// [`Upgrader::deflate`], kept apart from `config` so that the order of
    /// the two setters does not matter; combined in [`Upgrader::conn_config`].
    #[cfg(feature = "deflate")]
    deflate: Option<crate::DeflateConfig>,
    origin: OriginPolicy,
    check: Option<RequestCheck>,
    extra: HeaderSettings,
    handshake_timeout: Duration,
    max_head_size: usize,
    max_headers: usize,
    shutdown: Option<Shutdown>,
}

impl Default for Upgrader {
    fn default() -> Self {
        Upgrader::new()
    }
}

impl Upgrader {
    /// Default for [`Upgrader::handshake_timeout`]: 10 seconds.
    pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
    /// Default for [`Upgrader::max_head_size`]: 8 KiB.
    pub const DEFAULT_MAX_HEAD_SIZE: usize = 8 * 1024;
    /// Default for [`Upgrader::max_headers`]: 64.
    pub const DEFAULT_MAX_HEADERS: usize = 64;

    /// An upgrader with the defaults.
    #[must_use]
    pub fn new() -> Self {
        Upgrader {
            config: Config::default(),
            #[cfg(feature = "deflate")]
            deflate: None,
            origin: OriginPolicy::SameHost,
            check: None,
            extra: HeaderSettings::default(),
            handshake_timeout: Self::DEFAULT_HANDSHAKE_TIMEOUT,
            max_head_size: Self::DEFAULT_MAX_HEAD_SIZE,
            max_headers: Self::DEFAULT_MAX_HEADERS,
            shutdown: None,
        }
    }

    /// The configuration of the connections this upgrader makes.
    ///
    /// Setters may come in any order: a compression setting given with
    /// [`Upgrader::deflate`] wins over the one in `config`
    /// ([`Config::deflate`]), whether it was set before or after.
    #[must_use]
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// Accepts permessage-deflate (RFC 7692) when a client offers it, with
    /// these settings. Off by default: compression costs CPU and about
    /// 300 KiB per connection with context takeover (see
    /// [`DeflateConfig`](crate::DeflateConfig)).
    ///
    /// This setting wins over [`Config::deflate`] in the configuration given
    /// to [`Upgrader::config`], before or after this call.
    #[cfg(feature = "deflate")]
    #[must_use]
    pub fn deflate(mut self, deflate: crate::DeflateConfig) -> Self {
        self.deflate = Some(deflate);
        self
    }

    /// Replaces the origin policy: `check` sees the whole request and
    /// answers whether to accept it; a refusal is answered with 403 and
    /// [`HandshakeError::OriginRejected`].
    ///
    /// Browsers let any page open a WebSocket to any host and send the
    /// page's origin along; the server must decide (RFC 6455 §10.2). The
    /// default policy refuses a request whose `Origin` is present and names
    /// another `host[:port]` than `Host` (compared ASCII
    /// case-insensitively), and accepts requests without `Origin`
    /// (non-browser clients).
    #[must_use]
    pub fn check_origin(mut self, check: impl Fn(&Request) -> bool + Send + Sync + 'static) -> Self {
        self.origin = OriginPolicy::Check(Arc::new(check));
        self
    }

    /// Accepts requests from any origin.
    ///
    /// Any web page a user visits can then open a connection to this server
    /// with the user's cookies: use only for servers without ambient
    /// credentials, or that authenticate each connection in-band.
    #[must_use]
    pub fn allow_any_origin(mut self) -> Self {
        self.origin = OriginPolicy::Any;
        self
    }

    /// Lets the application inspect each request (path, query, header
    /// fields, cookies) and refuse it with a response of its own, for
    /// instance 401 for a missing token or 404 for an unknown path.
    ///
    /// `check` runs after the checks of RFC 6455 §4.2.1 and the origin
    /// policy have passed, before the subprotocol and extensions are chosen
    /// and the 101 response is sent; one check per upgrader (a second call
    /// replaces the first). A [`Rejection`] is sent as given, with
    /// `Connection: close` and `Content-Length`, and the handshake fails
    /// with [`HandshakeError::Rejected`] carrying its status. This applies
    /// to [`Upgrader::accept`], [`Upgrader::accept_with_request`] and the
    /// hyper and axum integrations alike.
    ///
    /// ```
    /// use http::StatusCode;
    /// use silverback::{Rejection, Upgrader};
    ///
    /// let upgrader = Upgrader::new().check_request(|req| {
    ///     if req.uri().path() != "/chat" {
    ///         return Err(Rejection::new(StatusCode::NOT_FOUND));
    ///     }
    ///     let cookies = req.headers().get_all("cookie");
    ///     if !cookies.iter().any(|c| c.as_bytes().starts_with(b"session=")) {
    ///         return Err(Rejection::new(StatusCode::UNAUTHORIZED)
    ///             .header("www-authenticate", "Cookie")
    ///             .body("log in first\n"));
    ///     }
    ///     Ok(())
    /// });
    /// # drop(upgrader);
    /// ```
    #[must_use]
    pub fn check_request(mut self, check: impl Fn(&Request) -> Result<(), Rejection> + Send + Sync + 'static) -> Self {
        self.check = Some(RequestCheck(Arc::new(check)));
        self
    }

    /// The subprotocols this server speaks, in order of preference. The
    /// first of them that the client offered is selected and named in the
    /// response; if the client offered none of them, the handshake succeeds
    /// without a subprotocol (check the request from
    /// [`Upgrader::accept_with_request`] if one is required).
    ///
    /// A name that is not an HTTP token makes the handshake fail with
    /// [`HandshakeError::InvalidHeader`].
    #[must_use]
    pub fn subprotocols<I>(mut self, protocols: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        self.extra.set_subprotocols(protocols);
        self
    }

    /// Adds a header field to the 101 response (repeat for several).
    ///
    /// An invalid name or value, or a field the handshake writes itself
    /// (`Upgrade`, `Connection`, `Sec-WebSocket-*`, `Content-Length`,
    /// `Transfer-Encoding`), makes every handshake fail with
    /// [`HandshakeError::InvalidHeader`] before anything is read.
    #[must_use]
    pub fn header<K, V>(mut self, name: K, value: V) -> Self
    where
        HeaderName: TryFrom<K>,
        HeaderValue: TryFrom<V>,
    {
        self.extra.append(name, value, &MANAGED);
        self
    }

    /// Bounds the whole handshake: reading the request and writing the
    /// response. Without a bound, a client that connects and sends nothing
    /// holds a task and a socket forever. `Duration::MAX` removes the limit.
    #[must_use]
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// The largest request head accepted, in bytes up to and including the
    /// blank line; larger ones are refused with 431. Bounds the memory a
    /// client can make the handshake buffer.
    #[must_use]
    pub fn max_head_size(mut self, bytes: usize) -> Self {
        self.max_head_size = bytes;
        self
    }

    /// The most header fields accepted in a request; more are refused with
    /// 431. Bounds the parsing work and memory per request.
    #[must_use]
    pub fn max_headers(mut self, count: usize) -> Self {
        self.max_headers = count;
        self
    }

    /// Registers every connection this upgrader makes with `shutdown`
    /// (see [`Shutdown`]): [`Shutdown::trigger`] then closes them all with
    /// `1001 Going Away`, and [`Shutdown::drained`] waits until they are
    /// gone. This applies to [`Upgrader::accept`],
    /// [`Upgrader::accept_with_request`] and the hyper and axum
    /// integrations alike.
    ///
    /// Once the shutdown is triggered, new requests are refused with
    /// `503 Service Unavailable` (body `shutting down`) and the handshake
    /// fails with [`HandshakeError::Rejected`]; a handshake that passed
    /// that check just before the trigger still completes, and its
    /// connection is closed with 1001 at once.
    #[must_use]
    pub fn shutdown(mut self, shutdown: &Shutdown) -> Self {
        self.shutdown = Some(shutdown.clone());
        self
    }

    /// Registers `ws` with the upgrader's [`Shutdown`], if it has one.
    pub(crate) fn register<S>(&self, ws: &mut WebSocketStream<S>) {
        if let Some(shutdown) = &self.shutdown {
            shutdown.register(ws);
        }
    }

    /// The upgrader's [`Shutdown`], if it has one.
    #[cfg(any(feature = "hyper", feature = "http3"))]
    pub(crate) fn get_shutdown(&self) -> Option<&Shutdown> {
        self.shutdown.as_ref()
    }

    /// Performs the server handshake on `io` and returns the stream.
    ///
    /// See [`accept`] for the behaviour and cancellation safety.
    pub async fn accept<S>(&self, io: S) -> Result<WebSocketStream<S>>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        Ok(self.accept_with_request(io).await?.0)
    }

    /// Performs the server handshake on `io` and returns the stream together
    /// with the client's request, so the application can route on its path,
    /// query and header fields.
    ///
    /// Bytes the client sent right after its request head (the first frames,
    /// possibly in the same packet) are kept and handed to the stream.
    ///
    /// A refused request is answered with an HTTP status (400, 403, 405 with
    /// `Allow: GET`, 426 with `Sec-WebSocket-Version: 13`, 431; 505 for
    /// requests older than HTTP/1.1; 503 once the upgrader's
    /// [`shutdown`](Upgrader::shutdown) was triggered; the application's own
    /// from [`Upgrader::check_request`]) with `Connection: close`, and
    /// returned as the matching [`HandshakeError`]. On timeout nothing is
    /// sent.
    pub async fn accept_with_request<S>(&self, io: S) -> Result<(WebSocketStream<S>, Request)>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        // The handshake's state (about 1 KiB) lives on the heap only while it
        // runs, instead of inside the caller's task for the connection's life.
        Box::pin(self.handshake(io)).await
    }

    async fn handshake<S>(&self, mut io: S) -> Result<(WebSocketStream<S>, Request)>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        self.extra.check()?;
        let deadline = deadline_after(self.handshake_timeout);
        let refused = match within(deadline, self.read_request(&mut io)).await? {
            Ok((request, rest)) => match self.decide(&request) {
                Ok(answer) => {
                    // `parse_request` reads HTTP/1.x only, so an accept
                    // value is always there (`None` is HTTP/2's).
                    let response = build_accept_response(
                        answer.accept.as_deref().unwrap_or_default(),
                        answer.subprotocol,
                        answer.extensions.as_deref(),
                        &self.extra.headers,
                    );
                    within(deadline, async {
                        io.write_all(&response).await?;
                        io.flush().await
                    })
                    .await??;
                    let mut ws = extensions::into_stream(io, Role::Server, self.conn_config(), rest, answer.agreed);
                    ws.trace_subprotocol(answer.subprotocol);
                    self.register(&mut ws);
                    return Ok((ws, request));
                }
                Err(refused) => refused,
            },
            Err(Error::Handshake(err)) => Refused::Error(err),
            Err(err) => return Err(err),
        };
        trace_event!(tracing::Level::INFO, status = refused.error().status().map(|s| s.as_u16()), reason = %refused.error(), "handshake refused");
        if let Some(response) = refused.to_bytes() {
            let linger = Instant::now() + LINGER_TIME;
            let linger = deadline.map_or(linger, |deadline| deadline.min(linger));
            // Best effort: the client may already be gone.
            let _ = within(Some(linger), refuse(&mut io, &response)).await;
        }
        Err(refused.error().into())
    }

    /// Reads the request head; answers the request and the bytes read past
    /// its head.
    async fn read_request<S>(&self, io: &mut S) -> Result<(Request, BytesMut)>
    where
        S: AsyncRead + Unpin,
    {
        let limits = HeadLimits { max_size: self.max_head_size, max_headers: self.max_headers };
        read_head(io, self.max_head_size, |buf| parse_request(buf, limits)).await
    }

    /// The server's decision on a request, pure: the checks of RFC 6455
    /// §4.2.1, the origin policy and the application's
    /// [`check_request`](Upgrader::check_request), then the subprotocol and
    /// extensions to answer with; a triggered [`shutdown`](Upgrader::shutdown)
    /// refuses everything with 503. Every way of serving (raw I/O, hyper)
    /// decides here.
    pub(crate) fn decide(&self, request: &Request) -> Result<Answer<'_>, Refused> {
        if self.shutdown.as_ref().is_some_and(Shutdown::is_triggered) {
            let rejection = Rejection::new(http::StatusCode::SERVICE_UNAVAILABLE).body("shutting down\n");
            return Err(Refused::Rejected(rejection));
        }
        let accept = validate_request(request)?;
        let origin_ok = match &self.origin {
            OriginPolicy::SameHost => origin_matches_host(request),
            OriginPolicy::Any => true,
            OriginPolicy::Check(check) => check(request),
        };
        if !origin_ok {
            return Err(HandshakeError::OriginRejected.into());
        }
        if let Some(RequestCheck(check)) = &self.check {
            check(request).map_err(Refused::Rejected)?;
        }
        let subprotocol = select_subprotocol(request, &self.extra.subprotocols);
        let (extensions, agreed) = extensions::server_answer(&self.conn_config(), request.headers())?;
        Ok(Answer { accept, subprotocol, extensions, agreed })
    }

    /// Fails if a header or subprotocol given to the builder was invalid.
    #[cfg(any(feature = "hyper", feature = "http3"))]
    pub(crate) fn check_settings(&self) -> Result<(), HandshakeError> {
        self.extra.check()
    }

    /// The extra header fields of the 101 response.
    #[cfg(any(feature = "hyper", feature = "http3"))]
    pub(crate) fn extra_headers(&self) -> &http::HeaderMap {
        &self.extra.headers
    }

    /// The configuration of the connections this upgrader makes: the one
    /// given to [`Upgrader::config`] with [`Upgrader::deflate`]'s setting,
    /// when given, in place of its own.
    pub(crate) fn conn_config(&self) -> Config {
        #[cfg(feature = "deflate")]
        if let Some(deflate) = self.deflate {
            return self.config.deflate(deflate);
        }
        self.config
    }

    /// The bound on a request's header section over HTTP/3.
    #[cfg(feature = "http3")]
    pub(crate) fn get_max_head_size(&self) -> usize {
        self.max_head_size
    }

    /// The bound on the whole handshake.
    #[cfg(any(feature = "hyper", feature = "http3"))]
    pub(crate) fn get_handshake_timeout(&self) -> Duration {
        self.handshake_timeout
    }
}

/// Sends an error response and closes our side, then discards what the
/// client still sends until it closes too: closing a socket with unread
/// input makes the kernel answer with a reset, which can destroy the
/// response before the client reads it (a "lingering close").
async fn refuse<S>(io: &mut S, response: &[u8]) -> std::io::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    io.write_all(response).await?;
    io.shutdown().await?;
    tokio::io::copy(&mut (&mut *io).take(LINGER_BYTES), &mut tokio::io::sink()).await?;
    Ok(())
}
