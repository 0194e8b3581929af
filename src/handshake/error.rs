//! [`HandshakeError`]: every way the opening HTTP handshake can fail.

use std::{error, fmt};

use http::StatusCode;

/// Why the opening handshake (RFC 6455 §4) failed.
///
/// The first group of variants is produced by the server side
/// ([`Upgrader`](crate::Upgrader), [`accept`](crate::accept)) when a request
/// is refused; [`HandshakeError::status`] tells which HTTP status was sent
/// back. The second group is produced by the client side
/// ([`Connector`](crate::Connector), [`connect`](crate::connect)) when a
/// server's answer (or the URL) is not acceptable. The last group can happen
/// on either side.
///
/// ```
/// use silverback::HandshakeError;
///
/// let err = HandshakeError::UnsupportedVersion;
/// assert_eq!(err.status(), Some(http::StatusCode::UPGRADE_REQUIRED));
/// assert_eq!(err.to_string(), "sec-websocket-version is not 13");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum HandshakeError {
    // ----- server side: a request we refused -----
    /// The request head is not valid HTTP/1.x. Answered with 400.
    MalformedRequest,
    /// The request head is longer than the configured maximum. Answered
    /// with 431.
    RequestHeadTooLarge,
    /// The request has more header fields than the configured maximum.
    /// Answered with 431.
    TooManyRequestHeaders,
    /// The request announces a body (`Content-Length` other than 0, or
    /// `Transfer-Encoding`); an upgrade request has none. Answered with 400.
    UnexpectedRequestBody,
    /// The request method is not `GET` (RFC 6455 §4.2.1 item 1). Answered
    /// with 405 and `Allow: GET`.
    MethodNotAllowed,
    /// The request is older than HTTP/1.1 (RFC 6455 §4.2.1 item 1).
    /// Answered with 505.
    HttpVersionNotSupported,
    /// The request has no `Host` header field, an empty one or several (RFC
    /// 6455 §4.2.1 item 2). Answered with 400.
    MissingHost,
    /// The request's `Upgrade` header field does not name `websocket` (RFC
    /// 6455 §4.2.1 item 3). Answered with 400.
    MissingUpgrade,
    /// The request's `Connection` header field does not contain the
    /// `upgrade` token (RFC 6455 §4.2.1 item 4). Answered with 400.
    MissingConnectionUpgrade,
    /// The request's `Sec-WebSocket-Version` is missing or is not 13 (RFC
    /// 6455 §4.2.1 item 6). Answered with 426 and `Sec-WebSocket-Version: 13`.
    UnsupportedVersion,
    /// The request's `Sec-WebSocket-Key` is missing, repeated, or not the
    /// base64 encoding of 16 bytes (RFC 6455 §4.2.1 item 5). Answered with
    /// 400.
    InvalidKey,
    /// The origin policy refused the request's `Origin` (RFC 6455 §10.2).
    /// Answered with 403.
    OriginRejected,
    /// The request's `Sec-WebSocket-Extensions` does not follow RFC 6455
    /// §9.1, while compression was enabled. Answered with 400.
    InvalidExtensionOffer,
    /// An HTTP/2 (or HTTP/3) `CONNECT` request without the `:protocol` pseudo-header
    /// field: a plain tunnel request, not the extended CONNECT of RFC 8441
    /// §4. Answered with 400.
    MissingConnectProtocol,
    /// An HTTP/2 (or HTTP/3) extended CONNECT whose `:protocol` is not `websocket` (RFC
    /// 8441 §4). Answered with 400.
    UnsupportedConnectProtocol,
    /// An HTTP/2 (or HTTP/3) extended CONNECT that carries a field of the HTTP/1.1
    /// upgrade, `Sec-WebSocket-Key`, `Upgrade` or `Connection`, which RFC
    /// 8441 §5 forbids. Answered with 400. (hyper's HTTP/2 server resets a
    /// stream whose request has `Upgrade` or `Connection`, connection-specific
    /// fields that HTTP/2 forbids everywhere, before the request is seen.)
    ForbiddenHttp2Field,
    /// The application refused the request with this status, from
    /// [`Upgrader::check_request`](crate::Upgrader::check_request).
    Rejected(StatusCode),

    // ----- client side: a URL or response we refused -----
    /// The URL is not a valid `ws://` or `wss://` URL (RFC 6455 §3), or has
    /// a fragment.
    InvalidUrl,
    /// The URL's scheme is neither `ws` nor `wss`.
    UnsupportedScheme,
    /// The URL is `wss://` (or the proxy `https://`), but this build cannot
    /// make TLS connections: it has neither the `rustls` nor the
    /// `native-tls` feature. Use
    /// [`Connector::connect_on`](crate::Connector::connect_on) with a TLS
    /// stream of your own.
    TlsNotEnabled,
    /// The URL is `wss://` (or the proxy `https://`) and no TLS roots are
    /// available: this build has the `rustls` feature but neither
    /// `rustls-webpki-roots` nor `rustls-native-roots` nor `native-tls`, and
    /// no [`Connector::tls_config`](crate::Connector) was given.
    NoTlsRoots,
    /// A proxy URL (given to [`Connector::proxy`](crate::Connector::proxy)
    /// or found in a proxy environment variable) is not
    /// `scheme://[user[:password]@]host[:port][/]`, or its user and password
    /// are not UTF-8 once percent-decoded, or, for SOCKS, not 1 to 255
    /// bytes each (RFC 1929).
    InvalidProxyUrl,
    /// A proxy URL names a scheme other than `http`, `https`, `socks5` and
    /// `socks5h` (`socks4://`, `ftp://`...).
    UnsupportedProxyScheme,
    /// A proxy URL is `socks5://` or `socks5h://`, but this build lacks the
    /// `socks` feature.
    SocksNotEnabled,
    /// The SOCKS5 proxy refused our user and password (RFC 1929 §2, a
    /// status other than 0), or accepts none of the methods we offered
    /// (RFC 1928 §3: no authentication, or user and password when the URL
    /// has them).
    SocksAuthFailed,
    /// The SOCKS5 proxy answered the connect request with this reply code
    /// (RFC 1928 §6): 1 general failure, 2 not allowed by the ruleset, 3
    /// network unreachable, 4 host unreachable, 5 connection refused, 6 TTL
    /// expired, 7 command not supported, 8 address type not supported.
    SocksRefused(u8),
    /// The proxy's answer is not SOCKS5: a wrong version, reserved byte or
    /// method, an unknown address type, or an unassigned reply code.
    MalformedSocksReply,
    /// The proxy answered the `CONNECT` request with this status, not 2xx
    /// (407 asks for credentials or refuses the given ones).
    ProxyRefused(StatusCode),
    /// The proxy's answer to `CONNECT` is not valid HTTP/1.x, or bytes
    /// followed its 2xx head before anything was sent through the tunnel.
    MalformedProxyResponse,
    /// The response head is not valid HTTP/1.x.
    MalformedResponse,
    /// The server does not take WebSockets over HTTP/2 or HTTP/3: TLS did
    /// not negotiate `h2` by ALPN, the server did not speak HTTP/2 (`ws://`
    /// with prior knowledge), or its SETTINGS do not enable extended CONNECT
    /// (RFC 8441 §3; RFC 9220 §3 for HTTP/3's
    /// `SETTINGS_ENABLE_CONNECT_PROTOCOL`). See
    /// `Connector::allow_http1_fallback` to fall back to HTTP/1.1 instead
    /// over HTTP/2.
    ExtendedConnectNotEnabled,
    /// The response head is longer than the configured maximum.
    ResponseHeadTooLarge,
    /// The response has more header fields than the configured maximum.
    TooManyResponseHeaders,
    /// The server answered with a status other than 101 Switching Protocols
    /// (RFC 6455 §4.1).
    UnexpectedStatus(StatusCode),
    /// The response's `Upgrade` header field does not name `websocket` (RFC
    /// 6455 §4.1).
    ResponseMissingUpgrade,
    /// The response's `Connection` header field does not contain the
    /// `upgrade` token (RFC 6455 §4.1).
    ResponseMissingConnectionUpgrade,
    /// The response's `Sec-WebSocket-Accept` is missing or does not match
    /// the key we sent (RFC 6455 §4.1).
    InvalidAcceptKey,
    /// The server selected a subprotocol we did not offer, or several (RFC
    /// 6455 §4.1).
    UnofferedSubprotocol,
    /// The server selected an extension we did not offer (RFC 6455 §4.1).
    UnofferedExtension,
    /// The server's permessage-deflate answer does not fit our offer (RFC
    /// 7692 §5–§7: unknown or repeated parameters, invalid values, or a
    /// configuration we did not offer).
    InvalidExtensionResponse,

    // ----- either side -----
    /// A header, origin or subprotocol given to the builder is not valid
    /// HTTP, or names a header field the handshake itself manages.
    InvalidHeader,
    /// The handshake did not finish within the configured time.
    Timeout,
    /// The peer closed the connection before its HTTP head was complete, or
    /// a proxy closed it in the middle of its negotiation.
    UnexpectedEof,
}

impl HandshakeError {
    /// The HTTP status the server answered this refusal with, for errors of
    /// the server side; `None` for the others (nothing was sent).
    #[must_use]
    pub fn status(&self) -> Option<StatusCode> {
        use HandshakeError::*;
        Some(match self {
            MalformedRequest
            | UnexpectedRequestBody
            | MissingHost
            | MissingUpgrade
            | MissingConnectionUpgrade
            | InvalidKey
            | InvalidExtensionOffer
            | MissingConnectProtocol
            | UnsupportedConnectProtocol
            | ForbiddenHttp2Field => StatusCode::BAD_REQUEST,
            RequestHeadTooLarge | TooManyRequestHeaders => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            HttpVersionNotSupported => StatusCode::HTTP_VERSION_NOT_SUPPORTED,
            UnsupportedVersion => StatusCode::UPGRADE_REQUIRED,
            OriginRejected => StatusCode::FORBIDDEN,
            Rejected(status) => *status,
            InvalidUrl
            | UnsupportedScheme
            | TlsNotEnabled
            | NoTlsRoots
            | InvalidProxyUrl
            | UnsupportedProxyScheme
            | SocksNotEnabled
            | SocksAuthFailed
            | SocksRefused(_)
            | MalformedSocksReply
            | ProxyRefused(_)
            | MalformedProxyResponse
            | MalformedResponse
            | ExtendedConnectNotEnabled
            | ResponseHeadTooLarge
            | TooManyResponseHeaders
            | UnexpectedStatus(_)
            | ResponseMissingUpgrade
            | ResponseMissingConnectionUpgrade
            | InvalidAcceptKey
            | UnofferedSubprotocol
            | UnofferedExtension
            | InvalidExtensionResponse
            | InvalidHeader
            | Timeout
            | UnexpectedEof => return None,
        })
    }
}

impl fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use HandshakeError::*;
        let text = match self {
            MalformedRequest => "malformed http request",
            RequestHeadTooLarge => "request head too large",
            TooManyRequestHeaders => "too many request header fields",
            UnexpectedRequestBody => "upgrade request has a body",
            MethodNotAllowed => "request method is not GET",
            HttpVersionNotSupported => "http version below 1.1",
            MissingHost => "missing or repeated host header",
            MissingUpgrade => "upgrade header lacks the websocket token",
            MissingConnectionUpgrade => "connection header lacks the upgrade token",
            UnsupportedVersion => "sec-websocket-version is not 13",
            InvalidKey => "sec-websocket-key is not 16 bytes in base64",
            OriginRejected => "origin not allowed",
            MissingConnectProtocol => "connect request without the :protocol pseudo-header",
            UnsupportedConnectProtocol => "extended connect :protocol is not websocket",
            ForbiddenHttp2Field => "http/2 websocket request has an http/1.1 upgrade field",
            ExtendedConnectNotEnabled => "server does not enable extended connect for websockets",
            InvalidUrl => "invalid websocket url",
            UnsupportedScheme => "url scheme is not ws or wss",
            TlsNotEnabled => "tls not enabled",
            NoTlsRoots => "no tls root certificates configured",
            InvalidProxyUrl => "invalid proxy url",
            UnsupportedProxyScheme => "proxy url scheme is not http, https, socks5 or socks5h",
            SocksNotEnabled => "socks proxies not enabled",
            SocksAuthFailed => "socks proxy refused the credentials",
            SocksRefused(code) => return write!(f, "socks proxy refused the connection with reply code {code}"),
            MalformedSocksReply => "malformed socks5 reply",
            ProxyRefused(status) => return write!(f, "proxy refused the tunnel with status {status}"),
            MalformedProxyResponse => "malformed proxy response to connect",
            MalformedResponse => "malformed http response",
            ResponseHeadTooLarge => "response head too large",
            TooManyResponseHeaders => "too many response header fields",
            UnexpectedStatus(status) => return write!(f, "unexpected response status {status}"),
            ResponseMissingUpgrade => "response upgrade header lacks the websocket token",
            ResponseMissingConnectionUpgrade => "response connection header lacks the upgrade token",
            InvalidAcceptKey => "sec-websocket-accept does not match the key",
            UnofferedSubprotocol => "server selected a subprotocol that was not offered",
            UnofferedExtension => "server selected an extension that was not offered",
            InvalidExtensionResponse => "server's permessage-deflate answer does not fit the offer",
            InvalidExtensionOffer => "malformed sec-websocket-extensions header",
            Rejected(status) => return write!(f, "request rejected by the application with status {status}"),
            InvalidHeader => "invalid header given to the builder",
            Timeout => "handshake timed out",
            UnexpectedEof => "connection closed before the http head was complete",
        };
        f.write_str(text)
    }
}

impl error::Error for HandshakeError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_small_send_sync_static() {
        fn assert_send_sync<T: Send + Sync + 'static>() {}
        assert_send_sync::<HandshakeError>();
        assert!(std::mem::size_of::<HandshakeError>() <= 4);
    }

    #[test]
    fn statuses_and_messages() {
        use HandshakeError::*;
        let table: &[(HandshakeError, Option<u16>)] = &[
            (MalformedRequest, Some(400)),
            (RequestHeadTooLarge, Some(431)),
            (TooManyRequestHeaders, Some(431)),
            (MethodNotAllowed, Some(405)),
            (HttpVersionNotSupported, Some(505)),
            (MissingHost, Some(400)),
            (UnsupportedVersion, Some(426)),
            (InvalidKey, Some(400)),
            (OriginRejected, Some(403)),
            (InvalidExtensionOffer, Some(400)),
            (MissingConnectProtocol, Some(400)),
            (UnsupportedConnectProtocol, Some(400)),
            (ForbiddenHttp2Field, Some(400)),
            (ExtendedConnectNotEnabled, None),
            (Rejected(StatusCode::UNAUTHORIZED), Some(401)),
            (InvalidExtensionResponse, None),
            (UnexpectedStatus(StatusCode::NOT_FOUND), None),
            (InvalidAcceptKey, None),
            (Timeout, None),
            (UnexpectedEof, None),
            (NoTlsRoots, None),
            (InvalidProxyUrl, None),
            (UnsupportedProxyScheme, None),
            (ProxyRefused(StatusCode::PROXY_AUTHENTICATION_REQUIRED), None),
            (MalformedProxyResponse, None),
            (SocksNotEnabled, None),
            (SocksAuthFailed, None),
            (SocksRefused(5), None),
            (MalformedSocksReply, None),
        ];
        for (err, status) in table {
            assert_eq!(err.status().map(|s| s.as_u16()), *status, "{err:?}");
            let text = err.to_string();
            assert!(!text.ends_with('.'), "{text}");
            assert!(text.starts_with(|c: char| c.is_ascii_lowercase()), "{text}");
        }
        assert_eq!(UnexpectedStatus(StatusCode::NOT_FOUND).to_string(), "unexpected response status 404 Not Found");
        assert_eq!(SocksRefused(2).to_string(), "socks proxy refused the connection with reply code 2");
        assert_eq!(
            ProxyRefused(StatusCode::FORBIDDEN).to_string(),
            "proxy refused the tunnel with status 403 Forbidden"
        );
    }
}
