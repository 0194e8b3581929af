//! The client side: [`Connector::http3_connect`] opens a QUIC connection
//! and [`Http3Connection::open`] a WebSocket on a new request stream.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use http::{HeaderName, HeaderValue, StatusCode, Version};

use super::conn::{self, lost, ConnGuard, PeerGoaway};
use super::frame::{self, put_frame_header};
use super::io::{write_error, FrameReader, H3Io};
use super::{qpack, H3WebSocket};
use crate::error::Result;
use crate::handshake::extensions;
use crate::handshake::head::{deadline_after, within};
use crate::handshake::request::build_h2_request;
use crate::handshake::response::validate_h2_response;
use crate::handshake::url::WsUrl;
use crate::{Connector, HandshakeError, Response, Role};

impl Connector {
    /// Opens an HTTP/3 connection (QUIC, ALPN `h3`) to the server of `url`
    /// (`wss://host[:port]`, any path is ignored) for WebSockets over
    /// HTTP/3 (RFC 9220); open them with [`Http3Connection::open`]. TLS
    /// uses the connector's rustls configuration or default roots
    /// ([`Connector::tls_config`]); proxies are not used (QUIC runs over
    /// UDP). See the [module docs](crate::http3).
    ///
    /// # Errors
    ///
    /// [`HandshakeError::UnsupportedScheme`] for `ws://` (HTTP/3 is always
    /// secure); [`Error::Io`](crate::Error::Io) when no address answers or TLS fails;
    /// [`HandshakeError::ExtendedConnectNotEnabled`] when the server's
    /// SETTINGS do not enable extended CONNECT
    /// (`SETTINGS_ENABLE_CONNECT_PROTOCOL`, RFC 9220 §3);
    /// [`HandshakeError::Timeout`] past the handshake timeout.
    ///
    /// # Cancellation safety
    ///
    /// Not cancel safe: dropping the future drops the connection.
    pub async fn http3_connect(&self, url: &str) -> Result<Http3Connection> {
        let parsed = WsUrl::parse(url)?;
        if !parsed.secure {
            return Err(HandshakeError::UnsupportedScheme.into());
        }
        self.check()?;
        let deadline = deadline_after(self.get_handshake_timeout());
        let tls = quinn::crypto::rustls::QuicClientConfig::try_from(self.quic_tls()?).map_err(std::io::Error::other)?;
        let client = quinn::ClientConfig::new(Arc::new(tls));
        let (endpoint, quic) = within(deadline, Box::pin(dial(client, parsed.host, parsed.port))).await??;
        let guard = Arc::new(ConnGuard { quic: quic.clone() });
        let settings = [(frame::SETTINGS_MAX_FIELD_SECTION_SIZE, self.get_max_head_size() as u64)];
        let mut started = conn::start(&quic, &settings, Role::Client).await?;
        match within(deadline, Box::pin(conn::peer_settings(&mut started.settings))).await? {
            Some(settings) if settings.extended_connect => {}
            Some(_) => return Err(HandshakeError::ExtendedConnectNotEnabled.into()),
            None => {
                let reason = quic.close_reason().map_or_else(|| "closed".to_owned(), |r| r.to_string());
                let err = std::io::Error::new(
                    std::io::ErrorKind::ConnectionReset,
                    format!("http/3 connection lost before its SETTINGS: {reason}"),
                );
                return Err(err.into());
            }
        }
        Ok(Http3Connection {
            guard,
            goaway: started.goaway,
            _endpoint: endpoint,
            connector: self.clone(),
            authority: parsed.host_header,
        })
    }
}

/// How long an attempt at one address runs alone before the next starts.
const NEXT_ATTEMPT: Duration = Duration::from_millis(250);

/// Connects to the addresses of `host`, each from a UDP socket of its
/// family, the next one started [`NEXT_ATTEMPT`] after the one before
/// (QUIC over UDP may hear nothing from an address nobody serves, so an
/// attempt cannot be trusted to fail fast): the first QUIC connection made
/// wins, the others are dropped.
async fn dial(client: quinn::ClientConfig, host: &str, port: u16) -> Result<(quinn::Endpoint, quinn::Connection)> {
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port)).await?.collect();
    if addrs.is_empty() {
        return Err(std::io::Error::new(std::io::ErrorKind::NotFound, "no address for the host").into());
    }
    let attempts = addrs.into_iter().enumerate().map(|(i, addr)| {
        let client = client.clone();
        Box::pin(async move {
            tokio::time::sleep(NEXT_ATTEMPT * i as u32).await;
            let bind: SocketAddr = if addr.is_ipv6() {
                (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
            } else {
                (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
            };
            let endpoint = quinn::Endpoint::client(bind)?;
            let connecting = endpoint.connect_with(client, addr, host).map_err(std::io::Error::other)?;
            let quic = connecting.await.map_err(|e| std::io::Error::new(std::io::ErrorKind::ConnectionRefused, e))?;
            Ok::<_, std::io::Error>((endpoint, quic))
        })
    });
    let (won, _losers) = futures_util::future::select_ok(attempts).await?;
    Ok(won)
}

/// An HTTP/3 connection for WebSockets (RFC 9220), from
/// [`Connector::http3_connect`]: each [`Http3Connection::open`] opens one on
/// a new request stream. Cheap to clone: the clones share the connection,
/// which closes once they and the WebSockets opened on it are all gone.
#[derive(Clone)]
pub struct Http3Connection {
    guard: Arc<ConnGuard>,
    /// The server's GOAWAY, once sent: no new requests.
    goaway: Arc<PeerGoaway>,
    _endpoint: quinn::Endpoint,
    connector: Connector,
    /// `host[:port]`, the `:authority` of the requests.
    authority: String,
}

impl fmt::Debug for Http3Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Http3Connection")
            .field("authority", &self.authority)
            .field("closed", &self.is_closed())
            .finish_non_exhaustive()
    }
}

impl Http3Connection {
    /// Opens a WebSocket at `path` (with its query, starting with `/`) on a
    /// new request stream: an extended CONNECT (`:protocol` `websocket`)
    /// with the connector's subprotocols, compression offer and header
    /// fields, answered by a 2xx status; returns the stream and the
    /// server's response.
    ///
    /// # Errors
    ///
    /// [`HandshakeError::InvalidUrl`] for a path that does not start with
    /// `/`; [`HandshakeError::UnexpectedStatus`] for a refusal (the
    /// connection stays usable); the negotiation errors of
    /// [`Connector::connect`]; [`Error::Io`](crate::Error::Io) when the connection is gone,
    /// of kind `ConnectionRefused` once the server sent GOAWAY (see
    /// [`Http3Connection::is_closed`]);
    /// [`HandshakeError::Timeout`] past the connector's handshake timeout.
    ///
    /// # Cancellation safety
    ///
    /// Not cancel safe: dropping the future abandons the stream.
    pub async fn open(&self, path: &str) -> Result<(H3WebSocket, Response)> {
        if !path.starts_with('/') {
            return Err(HandshakeError::InvalidUrl.into());
        }
        let url = format!("wss://{}{path}", self.authority);
        let parsed = WsUrl::parse(&url)?;
        let config = self.connector.conn_config();
        let offer = extensions::client_offer(&config);
        let extra = self.connector.extra();
        let request = build_h2_request(&parsed, &extra.subprotocols, offer.as_deref(), &extra.headers)?;
        let (response, mut io) = self.send_request(request, Some("websocket")).await?;
        let agreed = validate_h2_response(&response, &extra.subprotocols, offer.is_some())
            .and_then(|()| extensions::client_accept(&config, response.headers()));
        let agreed = match agreed {
            Ok(agreed) => agreed,
            Err(err) => {
                io.reset(frame::H3_REQUEST_CANCELLED);
                return Err(err.into());
            }
        };
        let ws = extensions::into_stream(io, Role::Client, config, BytesMut::new(), agreed);
        ws.trace_subprotocol(
            response.headers().get(http::header::SEC_WEBSOCKET_PROTOCOL).and_then(|v| v.to_str().ok()),
        );
        Ok((ws, response))
    }

    /// Sends `request`'s head on a new request stream as it is, with
    /// `protocol` as its `:protocol` pseudo-header field when given (an
    /// extended CONNECT), and returns the response head and the stream,
    /// whatever the status: the building block of
    /// [`Http3Connection::open`], for other protocols and for testing
    /// servers. `:scheme`, `:authority` and `:path` come from the URI
    /// when it has them.
    ///
    /// # Errors
    ///
    /// [`Error::Io`](crate::Error::Io) when the connection or the stream fails, or the
    /// response is not valid HTTP/3 ([`HandshakeError::MalformedResponse`]);
    /// [`HandshakeError::Timeout`] past the connector's handshake timeout.
    pub async fn send_request(&self, request: http::Request<()>, protocol: Option<&str>) -> Result<(Response, H3Io)> {
        let deadline = deadline_after(self.connector.get_handshake_timeout());
        within(deadline, Box::pin(self.exchange(request, protocol))).await?
    }

    /// [`Http3Connection::send_request`] without its deadline.
    async fn exchange(&self, request: http::Request<()>, protocol: Option<&str>) -> Result<(Response, H3Io)> {
        if self.goaway.received() {
            // RFC 9114 §5.2: no new requests after the server's GOAWAY.
            let err = std::io::Error::new(
                std::io::ErrorKind::ConnectionRefused,
                "the server sent GOAWAY: it takes no new requests on this http/3 connection",
            );
            return Err(err.into());
        }
        let (mut send, recv) = self.guard.quic.open_bi().await.map_err(lost)?;
        let uri = request.uri();
        let mut pseudo: Vec<(&[u8], &[u8])> = vec![(b":method", request.method().as_str().as_bytes())];
        if let Some(protocol) = protocol {
            pseudo.push((b":protocol", protocol.as_bytes()));
        }
        if let Some(scheme) = uri.scheme_str() {
            pseudo.push((b":scheme", scheme.as_bytes()));
        }
        if let Some(authority) = uri.authority() {
            pseudo.push((b":authority", authority.as_str().as_bytes()));
        }
        if let Some(path) = uri.path_and_query() {
            pseudo.push((b":path", path.as_str().as_bytes()));
        }
        let fields = pseudo
            .into_iter()
            .chain(request.headers().iter().map(|(name, value)| (name.as_str().as_bytes(), value.as_bytes())));
        let block = qpack::encode(fields);
        let mut out = Vec::with_capacity(block.len() + 8);
        put_frame_header(&mut out, frame::HEADERS, block.len() as u64);
        out.extend_from_slice(&block);
        send.write_all(&out).await.map_err(write_error)?;
        let mut reader = FrameReader::new(recv);
        let max = self.connector.get_max_head_size();
        let block = reader.read_headers(max).await?.ok_or(HandshakeError::ResponseHeadTooLarge)?;
        let response = to_response(&block, max)?;
        Ok((response, H3Io::new(reader, send, self.guard.clone())))
    }

    /// Whether the connection takes no new WebSockets: the QUIC connection
    /// is closed (by either side, or lost), or the server sent GOAWAY (RFC
    /// 9114 §5.2; the WebSockets already open on it carry on until either
    /// side closes them). [`Http3Connection::open`] then fails: open the
    /// next ones on a new connection.
    #[must_use]
    pub fn is_closed(&self) -> bool {
        self.goaway.received() || self.guard.quic.close_reason().is_some()
    }

    /// The server's address.
    #[must_use]
    pub fn remote_address(&self) -> SocketAddr {
        self.guard.quic.remote_address()
    }

    /// The QUIC connection.
    #[must_use]
    pub fn connection(&self) -> &quinn::Connection {
        &self.guard.quic
    }
}

/// The response of a decoded field section: `:status` first and alone
/// among the pseudo-header fields (RFC 9114 §4.3.2).
fn to_response(block: &[u8], max_size: usize) -> Result<Response, HandshakeError> {
    let fields = qpack::decode(block, max_size).map_err(|err| match err {
        qpack::QpackError::TooLarge => HandshakeError::ResponseHeadTooLarge,
        _ => HandshakeError::MalformedResponse,
    })?;
    let mut fields = fields.into_iter();
    let status = match fields.next() {
        Some((name, value)) if name == b":status" => {
            StatusCode::from_bytes(&value).map_err(|_| HandshakeError::MalformedResponse)?
        }
        _ => return Err(HandshakeError::MalformedResponse),
    };
    let mut response = Response::new(());
    *response.status_mut() = status;
    *response.version_mut() = Version::HTTP_3;
    for (name, value) in fields {
        if name.first() == Some(&b':') || name.iter().any(u8::is_ascii_uppercase) {
            return Err(HandshakeError::MalformedResponse);
        }
        let name = HeaderName::from_bytes(&name).map_err(|_| HandshakeError::MalformedResponse)?;
        let value = HeaderValue::from_bytes(&value).map_err(|_| HandshakeError::MalformedResponse)?;
        response.headers_mut().append(name, value);
    }
    Ok(response)
}
