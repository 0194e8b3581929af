//! The client side: [`Connector`] and [`connect`].

use std::time::Duration;

use http::header::{
    CONNECTION, CONTENT_LENGTH, ORIGIN, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_EXTENSIONS, SEC_WEBSOCKET_KEY,
    SEC_WEBSOCKET_PROTOCOL, SEC_WEBSOCKET_VERSION, TRANSFER_ENCODING, UPGRADE,
};
use http::{HeaderName, HeaderValue};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

use super::accept_key::{accept_key, generate_key};
use super::dial::dial;
use super::extensions;
use super::head::{deadline_after, read_head, within, HeadLimits};
use super::proxy::{self, ProxyEnv, ProxyKind, ProxySetting, ProxyUrl};
use super::request::build_request;
use super::response::{parse_response, validate_response};
use super::settings::HeaderSettings;
use super::tls::{self, MaybeTlsStream, TlsConfig, TlsSettings};
use super::url::WsUrl;
use super::{HandshakeError, Response};
use crate::connection::trace::trace_event;
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

/// Opens a WebSocket connection to `url` (`ws://` or
/// `wss://host[:port][/path][?query]`) with the default [`Connector`];
/// returns the stream and the server's 101 response (its header fields,
/// e.g. the selected subprotocol).
///
/// The connection goes through the proxy the environment names, if any
/// (`HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`, `NO_PROXY`; see
/// [`Connector::new`]). Every address the host resolves to is tried, IPv6
/// and IPv4 raced (RFC 8305). `wss://` needs a TLS feature: `rustls` with a
/// root feature (`rustls-webpki-roots` or `rustls-native-roots`), or
/// `native-tls`; without one it fails with
/// [`HandshakeError::TlsNotEnabled`], and [`Connector::connect_on`] works
/// over a TLS stream of your own.
///
/// The stream is a [`MaybeTlsStream`] whether or not TLS is built in, so
/// code naming the type compiles the same with every feature set.
///
/// # Cancellation safety
///
/// Not cancel safe: dropping the future drops the connection. Name
/// resolution, TCP connect, proxy tunnel, TLS and WebSocket handshakes
/// together are bounded by [`Connector::DEFAULT_HANDSHAKE_TIMEOUT`].
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
pub async fn connect(url: &str) -> Result<(WebSocketStream<MaybeTlsStream>, Response)> {
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
    /// [`Connector::deflate`], kept apart from `config` so that the order of
    /// the two setters does not matter; combined in [`Connector::conn_config`].
    #[cfg(feature = "deflate")]
    deflate: Option<crate::DeflateConfig>,
    extra: HeaderSettings,
    handshake_timeout: Duration,
    max_head_size: usize,
    max_headers: usize,
    proxy: ProxySetting,
    /// The TLS configurations given for `wss://`; none means the default.
    tls: TlsSettings,
    /// The TLS configurations given for an `https://` proxy; none means
    /// those of `wss://`.
    proxy_tls: TlsSettings,
    /// `Connector::allow_http1_fallback`: an HTTP/2 connect to a server
    /// without RFC 8441 falls back to HTTP/1.1 rather than failing.
    #[cfg(feature = "hyper")]
    pub(crate) http1_fallback: bool,
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
    /// timeout, an 8 KiB response head with at most 64 header fields, the
    /// default TLS roots for `wss://`, and the proxy the environment names.
    ///
    /// # Proxies from the environment
    ///
    /// Read at each connect, as curl reads them: for `wss://`,
    /// `https_proxy` then `HTTPS_PROXY`, then `all_proxy`, `ALL_PROXY`; for
    /// `ws://`, `http_proxy` then `HTTP_PROXY`, then `all_proxy`,
    /// `ALL_PROXY`. The first non-empty one wins (lower case before upper
    /// case). Its value is a proxy URL as [`Connector::proxy`] takes it.
    ///
    /// `no_proxy` (or else `NO_PROXY`) lists the destinations reached
    /// directly: `*` for all, or a comma-separated list of host names
    /// (each also covering its subdomains; a leading `.` is allowed), IP
    /// addresses and CIDR blocks (`10.0.0.0/8`), each with an optional
    /// `:port` that limits it to that port.
    ///
    /// Two rules are Go's rather than curl's: loopback destinations
    /// (`localhost`, `*.localhost`, `127.0.0.0/8`, `::1`) never go through
    /// an environment proxy, and `HTTP_PROXY` is ignored when
    /// `REQUEST_METHOD` is set (in a CGI script it can come from a request
    /// header: "httpoxy").
    ///
    /// [`Connector::proxy`] replaces the environment with one proxy,
    /// [`Connector::no_proxy`] turns proxies off, [`Connector::proxy_env`]
    /// reads the variables from elsewhere.
    #[must_use]
    pub fn new() -> Self {
        Connector {
            config: Config::default(),
            #[cfg(feature = "deflate")]
            deflate: None,
            extra: HeaderSettings::default(),
            handshake_timeout: Self::DEFAULT_HANDSHAKE_TIMEOUT,
            max_head_size: Self::DEFAULT_MAX_HEAD_SIZE,
            max_headers: Self::DEFAULT_MAX_HEADERS,
            proxy: ProxySetting::Env(ProxyEnv::process()),
            tls: TlsSettings::default(),
            proxy_tls: TlsSettings::default(),
            #[cfg(feature = "hyper")]
            http1_fallback: false,
        }
    }

    /// The configuration of the connections this connector makes.
    ///
    /// Setters may come in any order: a compression setting given with
    /// [`Connector::deflate`] wins over the one in `config`
    /// ([`Config::deflate`]), whether it was set before or after.
    #[must_use]
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// Offers permessage-deflate (RFC 7692) with these settings and uses it
    /// when the server accepts. Off by default.
    ///
    /// This setting wins over [`Config::deflate`] in the configuration given
    /// to [`Connector::config`], before or after this call.
    #[cfg(feature = "deflate")]
    #[must_use]
    pub fn deflate(mut self, deflate: crate::DeflateConfig) -> Self {
        self.deflate = Some(deflate);
        self
    }

    /// The configuration of the connections this connector makes: the one
    /// given to [`Connector::config`] with [`Connector::deflate`]'s setting,
    /// when given, in place of its own.
    pub(crate) fn conn_config(&self) -> Config {
        #[cfg(feature = "deflate")]
        if let Some(deflate) = self.deflate {
            return self.config.deflate(deflate);
        }
        self.config
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

    /// Bounds name resolution, TCP connect, proxy tunnel, TLS and WebSocket
    /// handshakes
    /// together ([`Connector::connect`]) or the WebSocket handshake alone
    /// ([`Connector::connect_on`]). Without a bound, a server or proxy that
    /// accepts and never answers holds the caller forever. `Duration::MAX`
    /// removes the limit.
    #[must_use]
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// The largest response head accepted (the server's, and a proxy's
    /// answer to `CONNECT`), in bytes up to and including the blank line.
    /// Bounds the memory a server or proxy can make the handshake buffer.
    #[must_use]
    pub fn max_head_size(mut self, bytes: usize) -> Self {
        self.max_head_size = bytes;
        self
    }

    /// The most header fields accepted in a response (the server's, and a
    /// proxy's answer to `CONNECT`).
    #[must_use]
    pub fn max_headers(mut self, count: usize) -> Self {
        self.max_headers = count;
        self
    }

    /// Connects through this proxy, whatever the environment says. The URL
    /// is `scheme://[user[:password]@]host[:port][/]`; user and password
    /// are percent-decoded.
    ///
    /// | scheme | proxy | default port |
    /// |---|---|---|
    /// | `http` (or none) | HTTP `CONNECT` over TCP | 1080 |
    /// | `https` | HTTP `CONNECT` over TLS with the proxy | 443 |
    /// | `socks5` | SOCKS5, the destination resolved here (feature `socks`) | 1080 |
    /// | `socks5h` | SOCKS5, the destination resolved by the proxy (feature `socks`) | 1080 |
    ///
    /// HTTP proxies get `CONNECT host:port` (RFC 9110 §9.3.6) with
    /// `Proxy-Authorization: Basic` when the URL has credentials; SOCKS5
    /// proxies get user and password by RFC 1929. For `wss://` the TLS
    /// session with the server runs inside the tunnel: the proxy sees the
    /// destination's name, never the traffic. An `https://` proxy's
    /// certificate is checked with `Connector::proxy_tls_config` or
    /// `Connector::proxy_native_tls` when given, else with the settings
    /// used for the server.
    ///
    /// A refusal is typed: [`HandshakeError::ProxyRefused`] with the HTTP
    /// status (407 for missing or wrong credentials),
    /// [`HandshakeError::SocksAuthFailed`], [`HandshakeError::SocksRefused`]
    /// with the SOCKS reply code. A URL that does not parse makes every
    /// connect fail with [`HandshakeError::InvalidProxyUrl`],
    /// [`HandshakeError::UnsupportedProxyScheme`] or
    /// [`HandshakeError::SocksNotEnabled`].
    ///
    /// ```
    /// use silverback::Connector;
    ///
    /// let corporate = Connector::new().proxy("https://user:secret@proxy.corp.example:8443");
    /// let tor = Connector::new().proxy("socks5h://127.0.0.1:9050");
    /// # drop((corporate, tor));
    /// ```
    #[must_use]
    pub fn proxy(mut self, url: &str) -> Self {
        self.proxy = ProxySetting::Fixed(ProxyUrl::parse(url));
        self
    }

    /// Connects directly: no proxy, whatever the environment says.
    #[must_use]
    pub fn no_proxy(mut self) -> Self {
        self.proxy = ProxySetting::Direct;
        self
    }

    /// Takes the proxy from environment variables as `lookup` answers them
    /// (called with names such as `"HTTPS_PROXY"`, at each connect) instead
    /// of the process environment, with the rules of [`Connector::new`].
    /// For settings kept elsewhere, and for tests that must not touch the
    /// process environment.
    ///
    /// ```
    /// use silverback::Connector;
    ///
    /// let connector = Connector::new().proxy_env(|name| match name {
    ///     "HTTPS_PROXY" => Some("http://proxy.internal:3128".to_owned()),
    ///     "NO_PROXY" => Some(".corp.example".to_owned()),
    ///     _ => None,
    /// });
    /// assert_eq!(
    ///     connector.proxy_for("wss://example.com/").unwrap().as_deref(),
    ///     Some("http://proxy.internal:3128")
    /// );
    /// assert_eq!(connector.proxy_for("wss://git.corp.example/").unwrap(), None);
    /// assert_eq!(connector.proxy_for("ws://example.com/").unwrap(), None);
    /// ```
    #[must_use]
    pub fn proxy_env<F>(mut self, lookup: F) -> Self
    where
        F: Fn(&str) -> Option<String> + Send + Sync + 'static,
    {
        self.proxy = ProxySetting::Env(ProxyEnv::from_fn(lookup));
        self
    }

    /// The proxy URL a connect to `url` would go through (as given to
    /// [`Connector::proxy`] or found in the environment, credentials
    /// included), or `None` for a direct connection. Fails as the connect
    /// would for an invalid `url` or proxy URL.
    pub fn proxy_for(&self, url: &str) -> Result<Option<String>, HandshakeError> {
        let url = WsUrl::parse(url)?;
        Ok(self.proxy.select(&url)?.map(|proxy| proxy.raw))
    }

    /// Uses rustls with this configuration for `wss://` instead of the
    /// default (the roots the `rustls-webpki-roots` and
    /// `rustls-native-roots` features select): your own roots, client
    /// certificates, a custom verifier. Its ALPN list is replaced by
    /// `http/1.1` alone, the protocol of the upgrade (in a copy made here,
    /// once). A connector given `Connector::native_tls` too uses
    /// native-tls; see the crate docs, "Choosing a TLS backend".
    ///
    /// Build it with an explicit crypto provider, as silverback does, so
    /// that it never depends on a process-wide default:
    ///
    /// ```
    /// use std::sync::Arc;
    /// use silverback::rustls;
    ///
    /// let provider = Arc::new(rustls::crypto::ring::default_provider());
    /// let config = rustls::ClientConfig::builder_with_provider(provider)
    ///     .with_safe_default_protocol_versions()
    ///     .unwrap()
    ///     .with_root_certificates(rustls::RootCertStore::empty()) // add yours
    ///     .with_no_client_auth();
    /// let connector = silverback::Connector::new().tls_config(Arc::new(config));
    /// # drop(connector);
    /// ```
    #[cfg(feature = "rustls")]
    #[must_use]
    pub fn tls_config(mut self, config: std::sync::Arc<rustls::ClientConfig>) -> Self {
        self.tls.rustls = Some(tls::force_alpn(config));
        self
    }

    /// Uses native-tls (the platform's TLS library) with this connector for
    /// `wss://`: the platform's trust store plus whatever you added (a root
    /// certificate, a client identity). It wins over rustls, whatever else
    /// is set; see the crate docs, "Choosing a TLS backend". Build it
    /// without ALPN (or with `http/1.1` alone): a server that hears none
    /// speaks HTTP/1.1.
    ///
    /// ```no_run
    /// use silverback::native_tls;
    ///
    /// # fn run(pem: &[u8]) -> Result<(), native_tls::Error> {
    /// let root = native_tls::Certificate::from_pem(pem)?;
    /// let tls = native_tls::TlsConnector::builder().add_root_certificate(root).build()?;
    /// let connector = silverback::Connector::new().native_tls(tls);
    /// # drop(connector);
    /// # Ok(())
    /// # }
    /// ```
    #[cfg(feature = "native-tls")]
    #[must_use]
    pub fn native_tls(mut self, connector: tokio_native_tls::native_tls::TlsConnector) -> Self {
        self.tls.native = Some(connector.into());
        self
    }

    /// Uses rustls with this configuration for the TLS session with an
    /// `https://` proxy (its ALPN list replaced by `http/1.1`), instead of
    /// the settings for `wss://` servers. `Connector::proxy_native_tls`
    /// wins over it.
    #[cfg(feature = "rustls")]
    #[must_use]
    pub fn proxy_tls_config(mut self, config: std::sync::Arc<rustls::ClientConfig>) -> Self {
        self.proxy_tls.rustls = Some(tls::force_alpn(config));
        self
    }

    /// Uses native-tls with this connector for the TLS session with an
    /// `https://` proxy, instead of the settings for `wss://` servers.
    #[cfg(feature = "native-tls")]
    #[must_use]
    pub fn proxy_native_tls(mut self, connector: tokio_native_tls::native_tls::TlsConnector) -> Self {
        self.proxy_tls.native = Some(connector.into());
        self
    }

    /// Connects over TCP (TCP_NODELAY set) to the URL's host and port, or
    /// to the proxy (see [`Connector::new`] and [`Connector::proxy`]) and
    /// through its tunnel; runs TLS for `wss://`; performs the WebSocket
    /// handshake. See [`connect`].
    ///
    /// A host name that resolves to several addresses gets them all, IPv6
    /// and IPv4 interleaved, each next one started when the one before
    /// fails or after 250 ms without an answer (RFC 8305 "Happy Eyeballs");
    /// the first connection made wins.
    ///
    /// A TLS failure (an untrusted or wrongly named certificate, the
    /// server's or an `https://` proxy's) is an
    /// [`Error::Io`](crate::Error::Io) whose inner error is the backend's
    /// (`rustls::Error` or `native_tls::Error`).
    pub async fn connect(&self, url: &str) -> Result<(WebSocketStream<MaybeTlsStream>, Response)> {
        self.connect_noting_retry_after(url, &mut None).await
    }

    /// [`Connector::connect`], also setting `retry_after` when the server
    /// refuses with 429 or 503 and a `Retry-After` in seconds (for
    /// [`Reconnect`](crate::Reconnect)).
    pub(crate) async fn connect_noting_retry_after(
        &self,
        url: &str,
        retry_after: &mut Option<Duration>,
    ) -> Result<(WebSocketStream<MaybeTlsStream>, Response)> {
        let url = WsUrl::parse(url)?;
        let deadline = deadline_after(self.handshake_timeout);
        let io = self.open_transport(&url, deadline, |tls| tls).await?;
        let (ws, response) = within(deadline, Box::pin(self.handshake(io, &url, retry_after))).await??;
        ws.trace_peer();
        Ok((ws, response))
    }

    /// Performs the handshake over a stream the caller opened (a TLS stream,
    /// a proxy tunnel, a Unix socket...). `url` gives the `Host` header
    /// field and the request path; `wss://` is accepted here, since the
    /// stream's security is the caller's business.
    ///
    /// Bytes the server sent right after its response head are kept and
    /// handed to the stream.
    ///
    /// Nothing is spawned, so `io` need not be `Send` or `'static`.
    ///
    /// # Cancellation safety
    ///
    /// Not cancel safe: dropping the future drops `io`.
    pub async fn connect_on<S>(&self, io: S, url: &str) -> Result<(WebSocketStream<S>, Response)>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let url = WsUrl::parse(url)?;
        self.check()?;
        within(deadline_after(self.handshake_timeout), Box::pin(self.handshake(io, &url, &mut None))).await?
    }

    /// Opens the transport to `url` as [`Connector::connect`] does (the
    /// proxy, TLS with the server's configuration as `tls` adjusts it)
    /// within `deadline`, after checking the builder's settings.
    pub(crate) async fn open_transport(
        &self,
        url: &WsUrl<'_>,
        deadline: Option<tokio::time::Instant>,
        tls: impl FnOnce(TlsConfig) -> TlsConfig,
    ) -> Result<MaybeTlsStream> {
        let tls = if url.secure { Some(tls(self.tls.choose()?)) } else { None };
        self.check()?;
        let proxy = self.proxy.select(url)?;
        let proxy_tls = match &proxy {
            Some(proxy) if proxy.kind == ProxyKind::Https => Some(self.proxy_tls.choose_for_proxy(&self.tls)?),
            _ => None,
        };
        // Boxed: the handshakes' state lives on the heap only while they
        // run, not inside the caller's task for the connection's whole life.
        within(deadline, Box::pin(self.open(url, proxy.as_ref(), tls, proxy_tls))).await?
    }

    /// The rustls configuration for QUIC: the server's (given or default),
    /// offering exactly `h3` by ALPN (RFC 9114 §3.1).
    #[cfg(feature = "http3")]
    pub(crate) fn quic_tls(&self) -> Result<std::sync::Arc<rustls::ClientConfig>> {
        match self.tls.choose()? {
            super::tls::TlsConfig::Rustls(config) => {
                let mut config = (*config).clone();
                config.alpn_protocols = vec![b"h3".to_vec()];
                Ok(std::sync::Arc::new(config))
            }
            #[cfg(feature = "native-tls")]
            super::tls::TlsConfig::Native(_) => Err(std::io::Error::new(
                std::io::ErrorKind::Unsupported,
                "http/3 needs rustls: a native-tls connector was given",
            )
            .into()),
        }
    }

    /// The limit on a response head (its header section over HTTP/2 and 3).
    #[cfg(feature = "http3")]
    pub(crate) fn get_max_head_size(&self) -> usize {
        self.max_head_size
    }

    /// The extra header fields and the subprotocols offered.
    #[cfg(any(feature = "hyper", feature = "http3"))]
    pub(crate) fn extra(&self) -> &HeaderSettings {
        &self.extra
    }

    /// The bound on a whole connect.
    #[cfg(any(feature = "hyper", feature = "http3"))]
    pub(crate) fn get_handshake_timeout(&self) -> Duration {
        self.handshake_timeout
    }

    /// Fails if the builder was given something invalid.
    pub(crate) fn check(&self) -> Result<(), HandshakeError> {
        self.extra.check()
    }

    /// The limits on a response head.
    fn head_limits(&self) -> HeadLimits {
        HeadLimits { max_size: self.max_head_size, max_headers: self.max_headers }
    }

    /// Opens the transport under the WebSocket handshake: TCP to the server,
    /// or a tunnel through `proxy` (with `proxy_tls` for an `https://` one),
    /// then TLS when `tls` is given.
    async fn open(
        &self,
        url: &WsUrl<'_>,
        proxy: Option<&ProxyUrl>,
        tls: Option<TlsConfig>,
        proxy_tls: Option<TlsConfig>,
    ) -> Result<MaybeTlsStream> {
        let io = match proxy {
            None => MaybeTlsStream::Plain(dial(url.host, url.port).await?),
            Some(proxy) => proxy::open(proxy, url, proxy_tls.as_ref(), self.head_limits()).await?,
        };
        match tls {
            None => Ok(io),
            Some(config) => tls::wrap(io, url.host, &config).await,
        }
    }

    /// Sends the request, reads and checks the response.
    /// Sets `retry_after` from a 429 or 503 refusal's `Retry-After`.
    async fn handshake<S>(
        &self,
        mut io: S,
        url: &WsUrl<'_>,
        retry_after: &mut Option<Duration>,
    ) -> Result<(WebSocketStream<S>, Response)>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let config = self.conn_config();
        let key = generate_key();
        let offer = extensions::client_offer(&config);
        let request = build_request(url, &key, &self.extra.subprotocols, offer.as_deref(), &self.extra.headers);
        io.write_all(&request).await?;
        io.flush().await?;

        let limits = self.head_limits();
        let (response, rest) = read_head(&mut io, self.max_head_size, |buf| parse_response(buf, limits)).await?;
        validate_response(&response, &accept_key(key.as_bytes()), &self.extra.subprotocols, offer.is_some())
            .inspect_err(|_| *retry_after = super::reconnect::retry_after(&response))
            .inspect_err(|_err| trace_event!(tracing::Level::INFO, status = response.status().as_u16(), reason = %_err, "handshake refused by the server"))?;
        let agreed = extensions::client_accept(&config, response.headers())?;
        let ws = extensions::into_stream(io, Role::Client, config, rest, agreed);
        ws.trace_subprotocol(
            response.headers().get(http::header::SEC_WEBSOCKET_PROTOCOL).and_then(|v| v.to_str().ok()),
        );
        Ok((ws, response))
    }
}
