//! The client side: [`Connector`] and [`connect`].

use std::time::Duration;

use http::header::{
    CONNECTION, CONTENT_LENGTH, ORIGIN, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_EXTENSIONS,
    SEC_WEBSOCKET_KEY, SEC_WEBSOCKET_PROTOCOL, SEC_WEBSOCKET_VERSION, TRANSFER_ENCODING, UPGRADE,
};
use http::{HeaderName, HeaderValue};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use super::accept_key::{accept_key, generate_key};
use super::head::{deadline_after, read_head, within, HeadLimits};
use super::settings::HeaderSettings;
use super::extensions;
use super::request::build_request;
use super::response::{parse_response, validate_response};
use super::url::WsUrl;
use super::{HandshakeError, Response};
use crate::error::Result;
use crate::{Config, Role, WebSocketStream};

/// Header fields the handshake writes itself; [`Connector::header`] refuses
/// them (`Host` is allowed and replaces the one derived from the URL).
const MANAGED: [HeaderName; 9] = [
    UPGRADE,
    CONNECTION,
    SEC_WEBSOCKET_KEY,
    SEC_WEBSOCKET_VERSION,
    SEC_WEBSOCKET_ACCEPT,
    SEC_WEBSOCKET_PROTOCOL,
    SEC_WEBSOCKET_EXTENSIONS,
    CONTENT_LENGTH,
    TRANSFER_ENCODING,
];

/// Opens a WebSocket connection to `url` (`ws://host[:port][/path][?query]`)
/// with the default [`Connector`]; returns the stream and the server's 101
/// response (its header fields, e.g. the selected subprotocol).
///
/// `wss://` URLs fail with [`HandshakeError::TlsNotEnabled`] in this build;
/// [`Connector::connect_on`] works over a TLS stream of your own.
///
/// # Cancellation safety
///
/// Not cancel safe: dropping the future drops the connection. TCP connect
/// and handshake together are bounded by
/// [`Connector::DEFAULT_HANDSHAKE_TIMEOUT`].
///
/// ```no_run
/// use futures_util::{SinkExt, StreamExt};
/// use silverback::Message;
///
/// # async fn run() -> Result<(), silverback::Error> {
/// let (mut ws, _response) = silverback::connect("ws://127.0.0.1:9001/echo").await?;
/// ws.send(Message::text("hello")).await?;
/// if let Some(msg) = ws.next().await {
///     println!("{:?}", msg?.as_text());
/// }
/// # Ok(())
/// # }
/// ```
pub async fn connect(url: &str) -> Result<(WebSocketStream<TcpStream>, Response)> {
    Connector::new().connect(url).await
}

/// A configured client handshake, like gorilla/websocket's `Dialer`.
///
/// Setters take and return the builder by value; the terminal methods take
/// `&self`, so one `Connector` serves many connections.
///
/// ```no_run
/// use std::time::Duration;
/// use silverback::Connector;
///
/// # async fn run() -> Result<(), silverback::Error> {
/// let connector = Connector::new()
///     .subprotocols(["v2.chat", "v1.chat"])
///     .origin("https://example.com")
///     .header("authorization", "Bearer abc")
///     .handshake_timeout(Duration::from_secs(5));
/// let (ws, response) = connector.connect("ws://127.0.0.1:9001/chat").await?;
/// println!("subprotocol: {:?}", response.headers().get("sec-websocket-protocol"));
/// # drop(ws);
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct Connector {
    config: Config,
    extra: HeaderSettings,
    handshake_timeout: Duration,
    max_head_size: usize,
    max_headers: usize,
}

impl Default for Connector {
    fn default() -> Self {
        Connector::new()
    }
}

impl Connector {
    /// Default for [`Connector::handshake_timeout`]: 10 seconds.
    pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
    /// Default for [`Connector::max_head_size`]: 8 KiB.
    pub const DEFAULT_MAX_HEAD_SIZE: usize = 8 * 1024;
    /// Default for [`Connector::max_headers`]: 64.
    pub const DEFAULT_MAX_HEADERS: usize = 64;

    /// A connector with the defaults: no subprotocol, no `Origin`, a 10 s
    /// timeout, an 8 KiB response head with at most 64 header fields.
    #[must_use]
    pub fn new() -> Self {
        Connector {
            config: Config::default(),
            extra: HeaderSettings::default(),
            handshake_timeout: Self::DEFAULT_HANDSHAKE_TIMEOUT,
            max_head_size: Self::DEFAULT_MAX_HEAD_SIZE,
            max_headers: Self::DEFAULT_MAX_HEADERS,
        }
    }

    /// The configuration of the connections this connector makes.
    #[must_use]
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// Offers permessage-deflate (RFC 7692) with these settings and uses it
    /// when the server accepts; shorthand for setting [`Config::deflate`] on
    /// this connector's configuration (so call it after
    /// [`Connector::config`]). Off by default.
    #[cfg(feature = "deflate")]
    #[must_use]
    pub fn deflate(mut self, deflate: crate::DeflateConfig) -> Self {
        self.config = self.config.deflate(deflate);
        self
    }

    /// Adds a header field to the upgrade request (repeat for several).
    /// `Host` replaces the one derived from the URL.
    ///
    /// An invalid name or value, or a field the handshake writes itself
    /// (`Upgrade`, `Connection`, `Sec-WebSocket-*`, `Content-Length`,
    /// `Transfer-Encoding`), makes every connect fail with
    /// [`HandshakeError::InvalidHeader`] before anything is sent.
    #[must_use]
    pub fn header<K, V>(mut self, name: K, value: V) -> Self
    where
        HeaderName: TryFrom<K>,
        HeaderValue: TryFrom<V>,
    {
        self.extra.append(name, value, &MANAGED);
        self
    }

    /// Offers these subprotocols, in order of preference, in
    /// `Sec-WebSocket-Protocol`. The server may pick one (see the response's
    /// header fields) or none; picking one not offered fails the handshake
    /// with [`HandshakeError::UnofferedSubprotocol`].
    ///
    /// A name that is not an HTTP token makes every connect fail with
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

    /// Sends this `Origin` (none is sent by default). Browsers always send
    /// one; servers may refuse origins they do not know.
    #[must_use]
    pub fn origin<V>(mut self, origin: V) -> Self
    where
        HeaderValue: TryFrom<V>,
    {
        self.extra.set(ORIGIN, origin);
        self
    }

    /// Bounds TCP connect plus handshake ([`Connector::connect`]) or the
    /// handshake alone ([`Connector::connect_on`]). Without a bound, a
    /// server that accepts and never answers holds the caller forever.
    /// `Duration::MAX` removes the limit.
    #[must_use]
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// The largest response head accepted, in bytes up to and including the
    /// blank line. Bounds the memory a server can make the handshake buffer.
    #[must_use]
    pub fn max_head_size(mut self, bytes: usize) -> Self {
        self.max_head_size = bytes;
        self
    }

    /// The most header fields accepted in a response.
    #[must_use]
    pub fn max_headers(mut self, count: usize) -> Self {
        self.max_headers = count;
        self
    }

    /// Connects over TCP to the URL's host and port (TCP_NODELAY set) and
    /// performs the handshake. See [`connect`].
    pub async fn connect(&self, url: &str) -> Result<(WebSocketStream<TcpStream>, Response)> {
        let url = WsUrl::parse(url)?;
        if url.secure {
            return Err(HandshakeError::TlsNotEnabled.into());
        }
        self.check()?;
        let deadline = deadline_after(self.handshake_timeout);
        let tcp = within(deadline, TcpStream::connect((url.host, url.port))).await??;
        tcp.set_nodelay(true)?;
        // Boxed: the handshake's state lives on the heap only while it runs,
        // not inside the caller's task for the connection's whole life.
        within(deadline, Box::pin(self.handshake(tcp, &url))).await?
    }

    /// Performs the handshake over a stream the caller opened (a TLS stream,
    /// a proxy tunnel, a Unix socket...). `url` gives the `Host` header
    /// field and the request path; `wss://` is accepted here, since the
    /// stream's security is the caller's business.
    ///
    /// Bytes the server sent right after its response head are kept and
    /// handed to the stream.
    ///
    /// # Cancellation safety
    ///
    /// Not cancel safe: dropping the future drops `io`.
    pub async fn connect_on<S>(&self, io: S, url: &str) -> Result<(WebSocketStream<S>, Response)>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let url = WsUrl::parse(url)?;
        self.check()?;
        within(deadline_after(self.handshake_timeout), Box::pin(self.handshake(io, &url))).await?
    }

    /// Fails if the builder was given something invalid.
    fn check(&self) -> Result<(), HandshakeError> {
        self.extra.check()
    }

    /// Sends the request, reads and checks the response.
    async fn handshake<S>(
        &self,
        mut io: S,
        url: &WsUrl<'_>,
    ) -> Result<(WebSocketStream<S>, Response)>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let key = generate_key();
        let offer = extensions::client_offer(&self.config);
        let request = build_request(url, &key, &self.extra.subprotocols, offer.as_deref(), &self.extra.headers);
        io.write_all(&request).await?;
        io.flush().await?;

        let limits = HeadLimits {
            max_size: self.max_head_size,
            max_headers: self.max_headers,
        };
        let (response, rest) = read_head(&mut io, self.max_head_size, |buf| {
            parse_response(buf, limits)
        })
        .await?;
        validate_response(&response, &accept_key(key.as_bytes()), &self.extra.subprotocols, offer.is_some())?;
        let agreed = extensions::client_accept(&self.config, response.headers())?;
        let ws = extensions::into_stream(io, Role::Client, self.config, rest, agreed);
        Ok((ws, response))
    }
}
