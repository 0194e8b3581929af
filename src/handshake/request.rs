//! The upgrade request: parsed and validated by the server (RFC 6455
//! §4.2.1), built by the client (RFC 6455 §4.1). Pure: no I/O.

use http::header::{
    CONNECTION, CONTENT_LENGTH, HOST, ORIGIN, SEC_WEBSOCKET_KEY, SEC_WEBSOCKET_PROTOCOL, SEC_WEBSOCKET_VERSION,
    TRANSFER_ENCODING, UPGRADE,
};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Uri, Version};

use super::head::{classify, with_headers, HeadErrors, HeadLimits, Parsed};
use super::headers::{contains_token, list_elements, single_value};
use super::url::WsUrl;
use super::{accept_key, HandshakeError, Request};

/// Parses a request head from the start of `buf`.
///
/// Answers [`Parsed::Partial`] while the head is incomplete and below
/// `limits.max_size`; fails with `RequestHeadTooLarge` past it,
/// `TooManyRequestHeaders` past `limits.max_headers`, and
/// `MalformedRequest` for anything that is not HTTP/1.x.
pub(crate) fn parse_request(buf: &[u8], limits: HeadLimits) -> Result<Parsed<Request>, HandshakeError> {
    const ERRORS: HeadErrors = HeadErrors {
        too_large: HandshakeError::RequestHeadTooLarge,
        too_many_headers: HandshakeError::TooManyRequestHeaders,
        malformed: HandshakeError::MalformedRequest,
    };
    with_headers(buf, limits.max_headers, |buf, headers| {
        let room = headers.len();
        let mut req = httparse::Request::new(headers);
        let status = req.parse(buf);
        classify(status, buf.len(), room, limits, ERRORS, || to_request(&req))
    })
}

/// Converts a complete httparse request into an [`http::Request`].
fn to_request(req: &httparse::Request<'_, '_>) -> Result<Request, HandshakeError> {
    let (Some(method), Some(path), Some(version)) = (req.method, req.path, req.version) else {
        return Err(HandshakeError::MalformedRequest);
    };
    let mut request = Request::new(());
    *request.method_mut() = Method::from_bytes(method.as_bytes()).map_err(|_| HandshakeError::MalformedRequest)?;
    *request.uri_mut() = path.parse::<Uri>().map_err(|_| HandshakeError::MalformedRequest)?;
    *request.version_mut() = if version == 0 { Version::HTTP_10 } else { Version::HTTP_11 };
    *request.headers_mut() = to_header_map(req.headers).ok_or(HandshakeError::MalformedRequest)?;
    Ok(request)
}

/// Converts httparse headers into a [`HeaderMap`], keeping repeated fields;
/// `None` if a name or value is not valid for the `http` crate.
pub(crate) fn to_header_map(headers: &[httparse::Header<'_>]) -> Option<HeaderMap> {
    let mut map = HeaderMap::with_capacity(headers.len());
    for header in headers {
        let name = HeaderName::from_bytes(header.name.as_bytes()).ok()?;
        let value = HeaderValue::from_bytes(header.value).ok()?;
        map.append(name, value);
    }
    Some(map)
}

/// The `:protocol` pseudo-header field of an HTTP/2 extended CONNECT (RFC
/// 8441 §4), as the server integration (hyper) found it, carried in the
/// request's extensions: the handshake layer knows nothing of hyper's own
/// type for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ConnectProtocol(pub(crate) String);

/// Checks an opening request and answers the `Sec-WebSocket-Accept` value
/// for it: an HTTP/1.1 upgrade against RFC 6455 §4.2.1, or, for HTTP/2, an
/// extended CONNECT against RFC 8441 §4 and §5, which has no accept value
/// (`None`). The origin policy is the caller's.
pub(crate) fn validate_request(request: &Request) -> Result<Option<String>, HandshakeError> {
    if matches!(request.version(), Version::HTTP_2 | Version::HTTP_3) {
        return validate_extended_connect(request).map(|()| None);
    }
    let headers = request.headers();
    // §4.2.1 item 1: "An HTTP/1.1 or higher GET request".
    if request.method() != Method::GET {
        return Err(HandshakeError::MethodNotAllowed);
    }
    if request.version() < Version::HTTP_11 {
        return Err(HandshakeError::HttpVersionNotSupported);
    }
    check_no_body(headers)?;
    // §4.2.1 item 2: "A |Host| header field containing the server's authority".
    if matches!(single_value(headers, HOST), None | Some([])) {
        return Err(HandshakeError::MissingHost);
    }
    // §4.2.1 item 3: "An |Upgrade| header field containing the value
    // "websocket", treated as an ASCII case-insensitive value".
    if !contains_token(headers, UPGRADE, "websocket") {
        return Err(HandshakeError::MissingUpgrade);
    }
    // §4.2.1 item 4: "A |Connection| header field that includes the token
    // "Upgrade", treated as an ASCII case-insensitive value".
    if !contains_token(headers, CONNECTION, "upgrade") {
        return Err(HandshakeError::MissingConnectionUpgrade);
    }
    check_version(headers)?;
    // §4.2.1 item 5: "A |Sec-WebSocket-Key| header field with a
    // base64-encoded value that, when decoded, is 16 bytes in length".
    match single_value(headers, SEC_WEBSOCKET_KEY) {
        Some(key) if accept_key::is_valid_key(key) => Ok(Some(accept_key::accept_key(key))),
        _ => Err(HandshakeError::InvalidKey),
    }
}

/// The checks of an HTTP/2 request (RFC 8441).
fn validate_extended_connect(request: &Request) -> Result<(), HandshakeError> {
    let headers = request.headers();
    // §4: "[...] a new pseudo-header field ":protocol" MAY be included on
    // request HEADERS indicating the desired protocol to be spoken on the
    // tunnel created by CONNECT"; §5: ":method" is CONNECT and ":protocol"
    // is "websocket".
    if request.method() != Method::CONNECT {
        return Err(HandshakeError::MethodNotAllowed);
    }
    match request.extensions().get::<ConnectProtocol>() {
        None => return Err(HandshakeError::MissingConnectProtocol),
        Some(ConnectProtocol(protocol)) if protocol != "websocket" => {
            return Err(HandshakeError::UnsupportedConnectProtocol)
        }
        Some(_) => {}
    }
    // §5: "The HTTP/1.1 [...] Upgrade and Connection header fields [and]
    // Sec-WebSocket-Key [...] are not used [...]; the request MUST NOT
    // include them" (Sec-WebSocket-Accept is replaced by the 200 status).
    if [UPGRADE, CONNECTION, SEC_WEBSOCKET_KEY].iter().any(|name| headers.contains_key(name)) {
        return Err(HandshakeError::ForbiddenHttp2Field);
    }
    check_no_body(headers)?;
    // §4: ":scheme" and ":path" as for any request; ":authority" plays the
    // role of HTTP/1.1's Host.
    if authority(request).is_none_or(<[u8]>::is_empty) {
        return Err(HandshakeError::MissingHost);
    }
    check_version(headers)
}

/// Not in RFC 6455, but a body would be taken for WebSocket frames.
fn check_no_body(headers: &HeaderMap) -> Result<(), HandshakeError> {
    let no_length = match single_value(headers, CONTENT_LENGTH) {
        Some(len) => len == b"0",
        None => !headers.contains_key(CONTENT_LENGTH),
    };
    if !no_length || headers.contains_key(TRANSFER_ENCODING) {
        return Err(HandshakeError::UnexpectedRequestBody);
    }
    Ok(())
}

/// RFC 6455 §4.2.1 item 6: "A |Sec-WebSocket-Version| header field, with a
/// value of 13"; §4.4: otherwise answer 426 with the versions we support.
/// RFC 8441 §5 keeps it for HTTP/2.
fn check_version(headers: &HeaderMap) -> Result<(), HandshakeError> {
    if single_value(headers, SEC_WEBSOCKET_VERSION) != Some(b"13") {
        return Err(HandshakeError::UnsupportedVersion);
    }
    Ok(())
}

/// The authority the request was sent to: `Host` for HTTP/1.x; for HTTP/2
/// the `:authority` pseudo-header field (which hyper puts in the URI), or a
/// `Host` field when there is none (RFC 9113 §8.3.1).
fn authority(request: &Request) -> Option<&[u8]> {
    let from_uri = || request.uri().authority().map(|a| a.as_str().as_bytes());
    match request.version() {
        Version::HTTP_2 | Version::HTTP_3 => from_uri().or_else(|| single_value(request.headers(), HOST)),
        _ => single_value(request.headers(), HOST),
    }
}

/// The default origin policy (RFC 6455 §10.2, as gorilla/websocket does it):
/// a request without `Origin` passes; one with `Origin` passes only when the
/// origin's `host[:port]` equals the request's authority (`Host`, or
/// `:authority` over HTTP/2), ASCII case-insensitively.
pub(crate) fn origin_matches_host(request: &Request) -> bool {
    let headers = request.headers();
    if !headers.contains_key(ORIGIN) {
        return true;
    }
    let (Some(origin), Some(host)) = (single_value(headers, ORIGIN), authority(request)) else {
        return false;
    };
    let Some(start) = origin.windows(3).position(|w| w == b"://") else {
        return false; // e.g. "null"
    };
    let authority = &origin[start + 3..];
    let end = authority.iter().position(|&b| b == b'/').unwrap_or(authority.len());
    authority[..end].eq_ignore_ascii_case(host)
}

/// The subprotocol to answer with: the first of the server's protocols, in
/// the server's order of preference, that the client offered (RFC 6455
/// §4.2.2 item 5.4; gorilla/websocket's rule). `None` when nothing matches,
/// which is not an error: the response then names no subprotocol.
pub(crate) fn select_subprotocol<'s>(request: &Request, server: &'s [String]) -> Option<&'s str> {
    let offered = || list_elements(request.headers(), SEC_WEBSOCKET_PROTOCOL);
    server.iter().find(|ours| offered().any(|theirs| theirs == ours.as_bytes())).map(String::as_str)
}

/// Builds the client's upgrade request (RFC 6455 §4.1). `extra` may carry a
/// `Host` field, which then replaces the one derived from the URL; the
/// builder has already refused fields the handshake manages itself.
pub(crate) fn build_request(
    url: &WsUrl<'_>,
    key: &str,
    subprotocols: &[String],
    extensions: Option<&str>,
    extra: &HeaderMap,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(b"GET ");
    out.extend_from_slice(url.target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    if !extra.contains_key(HOST) {
        push_header(&mut out, "Host", url.host_header.as_bytes());
    }
    out.extend_from_slice(b"Upgrade: websocket\r\nConnection: Upgrade\r\n");
    push_header(&mut out, "Sec-WebSocket-Key", key.as_bytes());
    out.extend_from_slice(b"Sec-WebSocket-Version: 13\r\n");
    if !subprotocols.is_empty() {
        push_header(&mut out, "Sec-WebSocket-Protocol", subprotocols.join(", ").as_bytes());
    }
    if let Some(extensions) = extensions {
        push_header(&mut out, "Sec-WebSocket-Extensions", extensions.as_bytes());
    }
    push_headers(&mut out, extra);
    out.extend_from_slice(b"\r\n");
    out
}

/// Builds the client's HTTP/2 extended CONNECT (RFC 8441 §5): `CONNECT`
/// with the URL's scheme (`https` for `wss://`, `http` for `ws://`),
/// authority and path, `Sec-WebSocket-Version: 13`, the offers and the
/// extra fields, of which a `Host` becomes the `:authority`. The
/// `:protocol` is the caller's to add, as its HTTP/2 library spells it.
#[cfg(any(feature = "hyper", feature = "http3"))]
pub(crate) fn build_h2_request(
    url: &WsUrl<'_>,
    subprotocols: &[String],
    extensions: Option<&str>,
    extra: &HeaderMap,
) -> Result<Request, HandshakeError> {
    let scheme = if url.secure { "https" } else { "http" };
    let authority = match extra.get(HOST).map(HeaderValue::to_str) {
        Some(Ok(host)) => host,
        Some(Err(_)) => return Err(HandshakeError::InvalidHeader),
        None => url.host_header.as_str(),
    };
    let uri = format!("{scheme}://{authority}{}", url.target);
    let mut request = Request::new(());
    *request.method_mut() = Method::CONNECT;
    *request.version_mut() = Version::HTTP_2;
    *request.uri_mut() = uri.parse().map_err(|_| HandshakeError::InvalidUrl)?;
    let headers = request.headers_mut();
    headers.insert(SEC_WEBSOCKET_VERSION, HeaderValue::from_static("13"));
    if !subprotocols.is_empty() {
        let offer = HeaderValue::from_str(&subprotocols.join(", ")).map_err(|_| HandshakeError::InvalidHeader)?;
        headers.insert(SEC_WEBSOCKET_PROTOCOL, offer);
    }
    if let Some(extensions) = extensions {
        let offer = HeaderValue::from_str(extensions).map_err(|_| HandshakeError::InvalidHeader)?;
        headers.insert(http::header::SEC_WEBSOCKET_EXTENSIONS, offer);
    }
    for (name, value) in extra.iter().filter(|(name, _)| *name != HOST) {
        headers.append(name, value.clone());
    }
    Ok(request)
}

/// Appends `name: value\r\n`.
pub(crate) fn push_header(out: &mut Vec<u8>, name: &str, value: &[u8]) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// Appends every field of `headers`, repeated ones included.
pub(crate) fn push_headers(out: &mut Vec<u8>, headers: &HeaderMap) {
    for (name, value) in headers {
        push_header(out, name.as_str(), value.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: HeadLimits = HeadLimits { max_size: 8192, max_headers: 64 };

    /// The client handshake of RFC 6455 §1.2 (without the optional fields).
    const RFC_REQUEST: &str = "GET /chat HTTP/1.1\r\n\
        Host: server.example.com\r\n\
        Upgrade: websocket\r\n\
        Connection: Upgrade\r\n\
        Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
        Origin: http://example.com\r\n\
        Sec-WebSocket-Protocol: chat, superchat\r\n\
        Sec-WebSocket-Version: 13\r\n\r\n";

    fn parse(head: &str) -> Request {
        match parse_request(head.as_bytes(), LIMITS) {
            Ok(Parsed::Complete(request, len)) => {
                assert_eq!(len, head.len());
                request
            }
            other => panic!("{head:?}: {other:?}"),
        }
    }

    /// `RFC_REQUEST` with one line replaced (or removed when `to` is empty).
    fn edit(from: &str, to: &str) -> String {
        assert!(RFC_REQUEST.contains(from), "{from}");
        RFC_REQUEST.replacen(from, to, 1)
    }

    #[test]
    fn parses_the_rfc_example() {
        let request = parse(RFC_REQUEST);
        assert_eq!(request.method(), Method::GET);
        assert_eq!(request.uri().path(), "/chat");
        assert_eq!(request.version(), Version::HTTP_11);
        assert_eq!(request.headers()[HOST], "server.example.com");
        assert_eq!(validate_request(&request).unwrap().as_deref(), Some("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="));
        assert_eq!(select_subprotocol(&request, &["superchat".into(), "chat".into()]), Some("superchat"));
    }

    #[test]
    fn partial_complete_and_limits() {
        for cut in [0, 1, 10, RFC_REQUEST.len() - 1] {
            assert_eq!(parse_request(&RFC_REQUEST.as_bytes()[..cut], LIMITS).map(|p| p.consumed()), Ok(None));
        }
        let with_frame = [RFC_REQUEST.as_bytes(), b"\x81\x85"].concat();
        match parse_request(&with_frame, LIMITS) {
            Ok(Parsed::Complete(_, len)) => assert_eq!(len, RFC_REQUEST.len()),
            other => panic!("{other:?}"),
        }
        let small = HeadLimits { max_size: 64, max_headers: 64 };
        assert_eq!(
            parse_request(&RFC_REQUEST.as_bytes()[..64], small).map(|p| p.consumed()),
            Err(HandshakeError::RequestHeadTooLarge)
        );
        assert_eq!(
            parse_request(RFC_REQUEST.as_bytes(), small).map(|p| p.consumed()),
            Err(HandshakeError::RequestHeadTooLarge)
        );
        assert_eq!(parse_request(&RFC_REQUEST.as_bytes()[..63], small).map(|p| p.consumed()), Ok(None));
        let few = HeadLimits { max_size: 8192, max_headers: 3 };
        assert_eq!(
            parse_request(RFC_REQUEST.as_bytes(), few).map(|p| p.consumed()),
            Err(HandshakeError::TooManyRequestHeaders)
        );
        let huge = HeadLimits { max_size: 8192, max_headers: usize::MAX };
        assert!(matches!(parse_request(RFC_REQUEST.as_bytes(), huge), Ok(Parsed::Complete(..))));
    }

    #[test]
    fn malformed_heads() {
        let table: &[&[u8]] = &[
            b"GET\r\n\r\n",
            b"GET / HTTP/2.0\r\n\r\n",
            b"GET / FTP/1.1\r\n\r\n",
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", // a TLS ClientHello
            b"GET / HTTP/1.1\r\nbad header\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\x01b\r\n\r\n",
            b"GET /\x7f HTTP/1.1\r\n\r\n",
        ];
        for head in table {
            assert_eq!(
                parse_request(head, LIMITS).map(|p| p.consumed()),
                Err(HandshakeError::MalformedRequest),
                "{:?}",
                String::from_utf8_lossy(head)
            );
        }
    }

    #[test]
    fn validation_follows_rfc6455_4_2_1() {
        use HandshakeError::*;
        let table: &[(&str, &str, HandshakeError)] = &[
            ("GET /chat", "POST /chat", MethodNotAllowed),
            ("GET /chat", "HEAD /chat", MethodNotAllowed),
            ("HTTP/1.1\r\n", "HTTP/1.0\r\n", HttpVersionNotSupported),
            ("Host: server.example.com\r\n", "", MissingHost),
            ("Host: server.example.com\r\n", "Host:\r\n", MissingHost),
            ("Host: server.example.com\r\n", "Host: a\r\nHost: b\r\n", MissingHost),
            ("Upgrade: websocket\r\n", "", MissingUpgrade),
            ("Upgrade: websocket\r\n", "Upgrade: h2c\r\n", MissingUpgrade),
            ("Connection: Upgrade\r\n", "", MissingConnectionUpgrade),
            ("Connection: Upgrade\r\n", "Connection: keep-alive\r\n", MissingConnectionUpgrade),
            ("Sec-WebSocket-Version: 13\r\n", "", UnsupportedVersion),
            ("Sec-WebSocket-Version: 13\r\n", "Sec-WebSocket-Version: 8\r\n", UnsupportedVersion),
            ("Sec-WebSocket-Version: 13\r\n", "Sec-WebSocket-Version: 13, 8\r\n", UnsupportedVersion),
            ("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", "", InvalidKey),
            ("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", "Sec-WebSocket-Key: c2hvcnQ=\r\n", InvalidKey),
            (
                "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n",
                "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n",
                InvalidKey,
            ),
            ("Upgrade: websocket\r\n", "Upgrade: websocket\r\nContent-Length: 5\r\n", UnexpectedRequestBody),
            ("Upgrade: websocket\r\n", "Upgrade: websocket\r\nTransfer-Encoding: chunked\r\n", UnexpectedRequestBody),
        ];
        for (from, to, err) in table {
            let head = edit(from, to);
            assert_eq!(validate_request(&parse(&head)), Err(*err), "{head}");
        }
    }

    #[test]
    fn validation_accepts_variants() {
        let table: &[(&str, &str)] = &[
            ("Upgrade: websocket", "Upgrade: WebSocket"),
            ("Upgrade: websocket", "Upgrade: h2c, websocket"),
            ("Connection: Upgrade", "Connection: keep-alive, Upgrade"),
            ("Connection: Upgrade", "Connection: upgrade"),
            ("Sec-WebSocket-Version: 13", "Sec-WebSocket-Version:  13 "),
            ("Upgrade: websocket\r\n", "Upgrade: websocket\r\nContent-Length: 0\r\n"),
            ("HTTP/1.1\r\n", "HTTP/1.1\n"),
        ];
        for (from, to) in table {
            let head = edit(from, to);
            assert!(validate_request(&parse(&head)).is_ok(), "{head}");
        }
    }

    #[test]
    fn default_origin_policy() {
        let table: &[(Option<&str>, &str, bool)] = &[
            (None, "example.com", true),
            (Some("http://example.com"), "example.com", true),
            (Some("https://EXAMPLE.com"), "example.com", true),
            (Some("http://example.com:8080"), "example.com:8080", true),
            (Some("http://example.com/"), "example.com", true),
            (Some("http://example.com"), "example.com:80", false),
            (Some("http://example.com:8080"), "example.com", false),
            (Some("http://evil.com"), "example.com", false),
            (Some("http://example.com.evil.com"), "example.com", false),
            (Some("null"), "example.com", false),
            (Some(""), "example.com", false),
        ];
        for (origin, host, allowed) in table {
            let mut request = Request::new(());
            let headers = request.headers_mut();
            headers.insert(HOST, HeaderValue::from_str(host).unwrap());
            if let Some(origin) = origin {
                headers.insert(ORIGIN, HeaderValue::from_str(origin).unwrap());
            }
            assert_eq!(origin_matches_host(&request), *allowed, "{origin:?} vs {host}");
        }
    }

    #[test]
    fn subprotocol_selection_prefers_the_server_order() {
        let request = parse(&edit("chat, superchat", "a, b,c"));
        let table: &[(&[&str], Option<&str>)] = &[
            (&[], None),
            (&["x"], None),
            (&["c"], Some("c")),
            (&["x", "b", "a"], Some("b")),
            (&["A"], None), // subprotocol names are case-sensitive
        ];
        for (server, chosen) in table {
            let server: Vec<String> = server.iter().map(|s| s.to_string()).collect();
            assert_eq!(select_subprotocol(&request, &server), *chosen, "{server:?}");
        }
        let none = parse(&edit("Sec-WebSocket-Protocol: chat, superchat\r\n", ""));
        assert_eq!(select_subprotocol(&none, &["chat".into()]), None);
    }

    #[test]
    fn builds_client_requests() {
        let url = WsUrl::parse("ws://example.com:9001/chat?room=1").unwrap();
        let bytes = build_request(&url, "dGhlIHNhbXBsZSBub25jZQ==", &[], None, &HeaderMap::new());
        assert_eq!(
            String::from_utf8(bytes).unwrap(),
            "GET /chat?room=1 HTTP/1.1\r\n\
             Host: example.com:9001\r\n\
             Upgrade: websocket\r\n\
             Connection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
             Sec-WebSocket-Version: 13\r\n\r\n"
        );

        let url = WsUrl::parse("ws://[::1]/").unwrap();
        let mut extra = HeaderMap::new();
        extra.insert(ORIGIN, HeaderValue::from_static("http://example.com"));
        extra.append("x-token", HeaderValue::from_static("a"));
        extra.append("x-token", HeaderValue::from_static("b"));
        let bytes = build_request(&url, "k", &["chat".into(), "superchat".into()], None, &extra);
        let text = String::from_utf8(bytes).unwrap();
        assert!(text.starts_with("GET / HTTP/1.1\r\nHost: [::1]\r\n"), "{text}");
        assert!(text.contains("\r\nSec-WebSocket-Protocol: chat, superchat\r\n"), "{text}");
        assert!(text.contains("\r\norigin: http://example.com\r\n"), "{text}");
        assert!(text.contains("\r\nx-token: a\r\nx-token: b\r\n"), "{text}");

        extra.insert(HOST, HeaderValue::from_static("virtual.example"));
        let text = String::from_utf8(build_request(&url, "k", &[], None, &extra)).unwrap();
        assert!(!text.contains("Host: [::1]"), "{text}");
        assert!(text.contains("\r\nhost: virtual.example\r\n"), "{text}");
    }

    #[test]
    fn built_requests_pass_validation() {
        let url = WsUrl::parse("ws://example.com/").unwrap();
        let key = accept_key::generate_key();
        let bytes = build_request(&url, &key, &["chat".into()], None, &HeaderMap::new());
        let request = match parse_request(&bytes, LIMITS) {
            Ok(Parsed::Complete(request, _)) => request,
            other => panic!("{other:?}"),
        };
        assert_eq!(validate_request(&request).unwrap(), Some(accept_key::accept_key(key.as_bytes())));
        assert!(origin_matches_host(&request));
    }

    /// An HTTP/2 extended CONNECT as hyper hands it over (RFC 8441 §5's
    /// example): `:authority` in the URI, `:protocol` in the extensions.
    fn h2_request() -> Request {
        let mut request = Request::new(());
        *request.method_mut() = Method::CONNECT;
        *request.version_mut() = Version::HTTP_2;
        *request.uri_mut() = "https://server.example.com/chat".parse().unwrap();
        request.headers_mut().insert(SEC_WEBSOCKET_VERSION, HeaderValue::from_static("13"));
        request.headers_mut().insert(ORIGIN, HeaderValue::from_static("http://server.example.com"));
        request.extensions_mut().insert(ConnectProtocol("websocket".into()));
        request
    }

    #[test]
    fn http2_validation_follows_rfc8441() {
        use HandshakeError::*;
        assert_eq!(validate_request(&h2_request()), Ok(None));
        assert!(origin_matches_host(&h2_request()));
        type Edit = fn(&mut Request);
        let table: &[(Edit, HandshakeError)] = &[
            (|r| *r.method_mut() = Method::GET, MethodNotAllowed),
            (|r| drop(r.extensions_mut().remove::<ConnectProtocol>()), MissingConnectProtocol),
            (|r| drop(r.extensions_mut().insert(ConnectProtocol("webtransport".into()))), UnsupportedConnectProtocol),
            (|r| drop(r.extensions_mut().insert(ConnectProtocol("WebSocket".into()))), UnsupportedConnectProtocol),
            (
                |r| {
                    drop(
                        r.headers_mut().insert(SEC_WEBSOCKET_KEY, HeaderValue::from_static("dGhlIHNhbXBsZSBub25jZQ==")),
                    )
                },
                ForbiddenHttp2Field,
            ),
            (|r| drop(r.headers_mut().insert(UPGRADE, HeaderValue::from_static("websocket"))), ForbiddenHttp2Field),
            (|r| drop(r.headers_mut().insert(CONNECTION, HeaderValue::from_static("upgrade"))), ForbiddenHttp2Field),
            (|r| *r.uri_mut() = "/chat".parse().unwrap(), MissingHost),
            (|r| drop(r.headers_mut().remove(SEC_WEBSOCKET_VERSION)), UnsupportedVersion),
            (
                |r| drop(r.headers_mut().insert(SEC_WEBSOCKET_VERSION, HeaderValue::from_static("8"))),
                UnsupportedVersion,
            ),
            (|r| drop(r.headers_mut().insert(CONTENT_LENGTH, HeaderValue::from_static("5"))), UnexpectedRequestBody),
        ];
        for (i, (edit, err)) in table.iter().enumerate() {
            let mut request = h2_request();
            edit(&mut request);
            assert_eq!(validate_request(&request), Err(*err), "case {i}");
        }
        // Without :authority, a Host field names the authority.
        let mut request = h2_request();
        *request.uri_mut() = "/chat".parse().unwrap();
        request.headers_mut().insert(HOST, HeaderValue::from_static("server.example.com"));
        assert_eq!(validate_request(&request), Ok(None));
        assert!(origin_matches_host(&request));
        // The origin is checked against :authority, not against a Host field.
        let mut request = h2_request();
        request.headers_mut().insert(HOST, HeaderValue::from_static("evil.example"));
        request.headers_mut().insert(ORIGIN, HeaderValue::from_static("https://evil.example"));
        assert!(!origin_matches_host(&request));
    }
}
