//! The upgrade response: built by the server (RFC 6455 §4.2.2), parsed and
//! validated by the client (RFC 6455 §4.1). Pure: no I/O.

use http::header::{CONNECTION, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_EXTENSIONS, SEC_WEBSOCKET_PROTOCOL, UPGRADE};
#[cfg(any(feature = "hyper", feature = "http3"))]
use http::header::{CONTENT_LENGTH, CONTENT_TYPE};
#[cfg(any(feature = "hyper", feature = "http3"))]
use http::HeaderValue;
use http::{HeaderMap, StatusCode, Version};

use super::head::{classify, with_headers, HeadErrors, HeadLimits, Parsed};
use super::headers::{contains_token, list_elements, single_value};
use super::request::{push_header, push_headers, to_header_map};
use super::{HandshakeError, Response};

/// Builds the 101 response that completes a server handshake (RFC 6455
/// §4.2.2 item 5), with the chosen subprotocol and the application's extra
/// header fields.
pub(crate) fn build_accept_response(
    accept: &str,
    subprotocol: Option<&str>,
    extensions: Option<&str>,
    extra: &HeaderMap,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(160);
    out.extend_from_slice(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n");
    push_header(&mut out, "Sec-WebSocket-Accept", accept.as_bytes());
    if let Some(protocol) = subprotocol {
        push_header(&mut out, "Sec-WebSocket-Protocol", protocol.as_bytes());
    }
    if let Some(extensions) = extensions {
        push_header(&mut out, "Sec-WebSocket-Extensions", extensions.as_bytes());
    }
    push_headers(&mut out, extra);
    out.extend_from_slice(b"\r\n");
    out
}

/// Builds the 101 response of [`build_accept_response`] as an
/// [`http::Response`], for servers that own the HTTP layer (hyper); with no
/// `accept` value (an HTTP/2 extended CONNECT), the `200 OK` of RFC 8441
/// §5 instead, without `Upgrade`, `Connection` and `Sec-WebSocket-Accept`.
#[cfg(any(feature = "hyper", feature = "http3"))]
pub(crate) fn accept_response(
    accept: Option<&str>,
    subprotocol: Option<&str>,
    extensions: Option<&str>,
    extra: &HeaderMap,
) -> Result<http::Response<String>, HandshakeError> {
    let value = |v: &str| HeaderValue::from_str(v).map_err(|_| HandshakeError::InvalidHeader);
    let mut response = http::Response::new(String::new());
    let headers = response.headers_mut();
    if let Some(accept) = accept {
        headers.append(UPGRADE, HeaderValue::from_static("websocket"));
        headers.append(CONNECTION, HeaderValue::from_static("Upgrade"));
        headers.append(SEC_WEBSOCKET_ACCEPT, value(accept)?);
    }
    if let Some(protocol) = subprotocol {
        headers.append(SEC_WEBSOCKET_PROTOCOL, value(protocol)?);
    }
    if let Some(extensions) = extensions {
        headers.append(SEC_WEBSOCKET_EXTENSIONS, value(extensions)?);
    }
    for (name, value) in extra {
        headers.append(name, value.clone());
    }
    *response.status_mut() = if accept.is_some() { StatusCode::SWITCHING_PROTOCOLS } else { StatusCode::OK };
    Ok(response)
}

/// The header fields a refusal with `status` carries besides
/// `Connection`, `Content-Type` and `Content-Length`: `Allow: GET` for 405
/// and `Sec-WebSocket-Version: 13` for 426 (RFC 6455 §4.2.2 item 4, §4.4).
fn refusal_fields(status: StatusCode) -> &'static [(&'static str, &'static str)] {
    match status {
        StatusCode::METHOD_NOT_ALLOWED => &[("Allow", "GET")],
        StatusCode::UPGRADE_REQUIRED => &[("Upgrade", "websocket"), ("Sec-WebSocket-Version", "13")],
        _ => &[],
    }
}

/// Ends a response with a body: `Content-Length`, the blank line, the body.
pub(crate) fn push_body(out: &mut Vec<u8>, body: &str) {
    push_header(out, "Content-Length", body.len().to_string().as_bytes());
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body.as_bytes());
}

/// Appends `HTTP/1.1 <code> <reason>\r\n`.
pub(crate) fn push_status_line(out: &mut Vec<u8>, status: StatusCode) {
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(status.canonical_reason().unwrap_or("Error").as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// Builds the HTTP response that refuses a handshake, for errors that have a
/// [`HandshakeError::status`]: a short plain-text body naming the error,
/// `Content-Length`, `Connection: close`, plus `Allow: GET` for 405 and
/// `Sec-WebSocket-Version: 13` for 426 (RFC 6455 §4.2.2 item 4, §4.4).
pub(crate) fn build_error_response(err: HandshakeError) -> Option<Vec<u8>> {
    let status = err.status()?;
    let body = format!("{err}\n");
    let mut out = Vec::with_capacity(160 + body.len());
    push_status_line(&mut out, status);
    for (name, value) in refusal_fields(status) {
        push_header(&mut out, name, value.as_bytes());
    }
    out.extend_from_slice(b"Connection: close\r\nContent-Type: text/plain; charset=utf-8\r\n");
    push_body(&mut out, &body);
    Some(out)
}

/// The refusal of [`build_error_response`] as an [`http::Response`], for
/// servers that own the HTTP layer (hyper). Errors without a status (a
/// misconfigured [`Upgrader`](super::Upgrader)) are answered with 500.
#[cfg(any(feature = "hyper", feature = "http3"))]
pub(crate) fn error_response(err: HandshakeError) -> http::Response<String> {
    let status = err.status().unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = format!("{err}\n");
    let mut response = http::Response::new(String::new());
    *response.status_mut() = status;
    let headers = response.headers_mut();
    for (name, value) in refusal_fields(status) {
        headers.append(*name, HeaderValue::from_static(value));
    }
    headers.append(CONNECTION, HeaderValue::from_static("close"));
    headers.append(CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    headers.append(CONTENT_LENGTH, HeaderValue::from(body.len()));
    *response.body_mut() = body;
    response
}

/// The response to a refused request over `version`: over HTTP/2 and
/// HTTP/3, without the connection-specific fields (`Connection`,
/// `Upgrade`) those versions forbid, and with `Allow: CONNECT` for 405.
#[cfg(any(feature = "hyper", feature = "http3"))]
pub(crate) fn refusal_response(refused: super::policy::Refused, version: Version) -> http::Response<String> {
    use super::policy::Refused;
    let mut response = match refused {
        Refused::Error(err) => error_response(err),
        Refused::Rejected(rejection) => rejection.into_response(),
    };
    if matches!(version, Version::HTTP_2 | Version::HTTP_3) {
        let headers = response.headers_mut();
        headers.remove(CONNECTION);
        headers.remove(UPGRADE);
        if headers.contains_key(http::header::ALLOW) {
            headers.insert(http::header::ALLOW, HeaderValue::from_static("CONNECT"));
        }
    }
    response
}

/// Parses a response head from the start of `buf`, like
/// [`parse_request`](super::request::parse_request) does for requests.
pub(crate) fn parse_response(buf: &[u8], limits: HeadLimits) -> Result<Parsed<Response>, HandshakeError> {
    const ERRORS: HeadErrors = HeadErrors {
        too_large: HandshakeError::ResponseHeadTooLarge,
        too_many_headers: HandshakeError::TooManyResponseHeaders,
        malformed: HandshakeError::MalformedResponse,
    };
    with_headers(buf, limits.max_headers, |buf, headers| {
        let room = headers.len();
        let mut res = httparse::Response::new(headers);
        let status = res.parse(buf);
        classify(status, buf.len(), room, limits, ERRORS, || to_response(&res))
    })
}

/// Converts a complete httparse response into an [`http::Response`].
fn to_response(res: &httparse::Response<'_, '_>) -> Result<Response, HandshakeError> {
    let (Some(code), Some(version)) = (res.code, res.version) else {
        return Err(HandshakeError::MalformedResponse);
    };
    let mut response = Response::new(());
    *response.status_mut() = StatusCode::from_u16(code).map_err(|_| HandshakeError::MalformedResponse)?;
    *response.version_mut() = if version == 0 { Version::HTTP_10 } else { Version::HTTP_11 };
    *response.headers_mut() = to_header_map(res.headers).ok_or(HandshakeError::MalformedResponse)?;
    Ok(response)
}

/// Checks a server's answer against RFC 6455 §4.1 (the client's steps 1 to
/// 6 after sending its handshake). `accept` is the value expected in
/// `Sec-WebSocket-Accept`, `offered` the subprotocols we asked for. When we
/// offered no extension (`extensions_offered` false), any the server
/// selects is an error; otherwise the caller checks the answer against the
/// offer.
pub(crate) fn validate_response(
    response: &Response,
    accept: &str,
    offered: &[String],
    extensions_offered: bool,
) -> Result<(), HandshakeError> {
    let headers = response.headers();
    // §4.1 step 1: "If the status code received from the server is not 101,
    // the client handles the response per HTTP procedures."
    if response.status() != StatusCode::SWITCHING_PROTOCOLS {
        return Err(HandshakeError::UnexpectedStatus(response.status()));
    }
    // Step 2: the |Upgrade| value must be an ASCII case-insensitive match
    // for "websocket".
    if !single_value(headers, UPGRADE).is_some_and(|v| v.eq_ignore_ascii_case(b"websocket")) {
        return Err(HandshakeError::ResponseMissingUpgrade);
    }
    // Step 3: |Connection| must contain the token "Upgrade".
    if !contains_token(headers, CONNECTION, "upgrade") {
        return Err(HandshakeError::ResponseMissingConnectionUpgrade);
    }
    // Step 4: |Sec-WebSocket-Accept| must be base64(SHA-1(key ++ GUID)).
    if single_value(headers, SEC_WEBSOCKET_ACCEPT) != Some(accept.as_bytes()) {
        return Err(HandshakeError::InvalidAcceptKey);
    }
    validate_negotiation(headers, offered, extensions_offered)
}

/// Checks the server's answer to an HTTP/2 extended CONNECT (RFC 8441 §5:
/// a 2xx status, then the subprotocol and extensions as over HTTP/1.1).
#[cfg(any(feature = "hyper", feature = "http3"))]
pub(crate) fn validate_h2_response(
    response: &Response,
    offered: &[String],
    extensions_offered: bool,
) -> Result<(), HandshakeError> {
    if !response.status().is_success() {
        return Err(HandshakeError::UnexpectedStatus(response.status()));
    }
    validate_negotiation(response.headers(), offered, extensions_offered)
}

/// RFC 6455 §4.1 steps 5 and 6, common to HTTP/1.1 and HTTP/2: the
/// extensions and the subprotocol the server selected.
fn validate_negotiation(
    headers: &HeaderMap,
    offered: &[String],
    extensions_offered: bool,
) -> Result<(), HandshakeError> {
    // Step 5: no extension that was not offered.
    if !extensions_offered && list_elements(headers, SEC_WEBSOCKET_EXTENSIONS).next().is_some() {
        return Err(HandshakeError::UnofferedExtension);
    }
    // Step 6: at most one subprotocol, and one that was offered.
    let mut chosen = list_elements(headers, SEC_WEBSOCKET_PROTOCOL);
    match (chosen.next(), chosen.next()) {
        (None, _) => Ok(()),
        (Some(protocol), None) if offered.iter().any(|ours| ours.as_bytes() == protocol) => Ok(()),
        _ => Err(HandshakeError::UnofferedSubprotocol),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: HeadLimits = HeadLimits { max_size: 8192, max_headers: 64 };

    /// The server handshake of RFC 6455 §1.3.
    const RFC_RESPONSE: &str = "HTTP/1.1 101 Switching Protocols\r\n\
        Upgrade: websocket\r\n\
        Connection: Upgrade\r\n\
        Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\
        Sec-WebSocket-Protocol: chat\r\n\r\n";
    const ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

    fn parse(head: &str) -> Response {
        match parse_response(head.as_bytes(), LIMITS) {
            Ok(Parsed::Complete(response, len)) => {
                assert_eq!(len, head.len());
                response
            }
            other => panic!("{head:?}: {other:?}"),
        }
    }

    fn offered() -> Vec<String> {
        vec!["chat".into(), "superchat".into()]
    }

    #[test]
    fn builds_the_rfc_example() {
        let bytes = build_accept_response(ACCEPT, Some("chat"), None, &HeaderMap::new());
        assert_eq!(String::from_utf8(bytes.clone()).unwrap(), RFC_RESPONSE);
        assert_eq!(validate_response(&parse(RFC_RESPONSE), ACCEPT, &offered(), false), Ok(()));

        let mut extra = HeaderMap::new();
        extra.insert("x-server", "silverback".parse().unwrap());
        let bytes = build_accept_response(ACCEPT, None, None, &extra);
        let text = String::from_utf8(bytes).unwrap();
        assert!(text.ends_with("=\r\nx-server: silverback\r\n\r\n"), "{text}");
        assert!(!text.contains("Sec-WebSocket-Protocol"), "{text}");
    }

    #[test]
    fn builds_error_responses() {
        use HandshakeError::*;
        let table: &[(HandshakeError, &str, &[&str])] = &[
            (MalformedRequest, "HTTP/1.1 400 Bad Request\r\n", &[]),
            (MissingUpgrade, "HTTP/1.1 400 Bad Request\r\n", &[]),
            (OriginRejected, "HTTP/1.1 403 Forbidden\r\n", &[]),
            (MethodNotAllowed, "HTTP/1.1 405 Method Not Allowed\r\n", &["Allow: GET\r\n"]),
            (
                UnsupportedVersion,
                "HTTP/1.1 426 Upgrade Required\r\n",
                &["Sec-WebSocket-Version: 13\r\n", "Upgrade: websocket\r\n"],
            ),
            (RequestHeadTooLarge, "HTTP/1.1 431 Request Header Fields Too Large\r\n", &[]),
            (HttpVersionNotSupported, "HTTP/1.1 505 HTTP Version Not Supported\r\n", &[]),
        ];
        for (err, status_line, fields) in table {
            let bytes = build_error_response(*err).unwrap();
            let text = String::from_utf8(bytes).unwrap();
            let body = format!("{err}\n");
            assert!(text.starts_with(status_line), "{text}");
            assert!(text.contains("\r\nConnection: close\r\n"), "{text}");
            let length = format!("\r\nContent-Length: {}\r\n\r\n", body.len());
            assert!(text.ends_with(&format!("{length}{body}")), "{text}");
            for field in *fields {
                assert!(text.contains(field), "{text}");
            }
        }
        assert_eq!(build_error_response(Timeout), None);
        assert_eq!(build_error_response(InvalidAcceptKey), None);
    }

    /// The http::Response refusals (hyper) carry the raw ones' status,
    /// fields and body.
    #[cfg(feature = "hyper")]
    #[test]
    fn http_error_responses_match_the_raw_ones() {
        use HandshakeError::*;
        for err in [
            MalformedRequest,
            OriginRejected,
            MethodNotAllowed,
            UnsupportedVersion,
            RequestHeadTooLarge,
            HttpVersionNotSupported,
        ] {
            let raw = String::from_utf8(build_error_response(err).unwrap()).unwrap();
            let response = error_response(err);
            assert_eq!(Some(response.status()), err.status());
            let (head, body) = raw.split_once("\r\n\r\n").unwrap();
            assert_eq!(response.body(), body);
            let fields: Vec<String> =
                response.headers().iter().map(|(name, value)| format!("{name}: {}", value.to_str().unwrap())).collect();
            let raw_fields: Vec<String> = head.lines().skip(1).map(str::to_ascii_lowercase).collect();
            let fields: Vec<String> = fields.iter().map(|f| f.to_ascii_lowercase()).collect();
            assert_eq!(fields, raw_fields, "{err:?}");
        }
        assert_eq!(error_response(InvalidHeader).status(), StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[cfg(feature = "hyper")]
    #[test]
    fn http_accept_response_matches_the_raw_one() {
        let mut extra = HeaderMap::new();
        extra.insert("x-server", "silverback".parse().unwrap());
        let response = accept_response(Some(ACCEPT), Some("chat"), Some("permessage-deflate"), &extra).unwrap();
        assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
        let raw = build_accept_response(ACCEPT, Some("chat"), Some("permessage-deflate"), &extra);
        let raw = String::from_utf8(raw).unwrap();
        let raw_fields: Vec<&str> = raw.lines().skip(1).filter(|l| !l.is_empty()).collect();
        let fields: Vec<String> =
            response.headers().iter().map(|(name, value)| format!("{name}: {}", value.to_str().unwrap())).collect();
        let lower = |v: Vec<String>| v.into_iter().map(|f| f.to_ascii_lowercase()).collect::<Vec<_>>();
        assert_eq!(lower(fields), lower(raw_fields.into_iter().map(String::from).collect()));
        assert!(response.body().is_empty());
        assert_eq!(
            accept_response(Some(ACCEPT), Some("bad\nname"), None, &extra).map(|_| ()),
            Err(HandshakeError::InvalidHeader)
        );
    }

    /// RFC 8441 §5: 200, no Upgrade, Connection or Sec-WebSocket-Accept.
    #[cfg(feature = "hyper")]
    #[test]
    fn http2_accept_response_and_its_validation() {
        let mut extra = HeaderMap::new();
        extra.insert("x-server", "silverback".parse().unwrap());
        let response = accept_response(None, Some("chat"), None, &extra).unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let names: Vec<&str> = response.headers().keys().map(|n| n.as_str()).collect();
        assert_eq!(names, ["sec-websocket-protocol", "x-server"]);
        let (parts, _) = response.into_parts();
        let response = Response::from_parts(parts, ());
        assert_eq!(validate_h2_response(&response, &offered(), false), Ok(()));
        assert_eq!(validate_h2_response(&response, &[], false), Err(HandshakeError::UnofferedSubprotocol));
        let mut refused = Response::new(());
        *refused.status_mut() = StatusCode::BAD_REQUEST;
        assert_eq!(
            validate_h2_response(&refused, &[], false),
            Err(HandshakeError::UnexpectedStatus(StatusCode::BAD_REQUEST))
        );
    }

    #[test]
    fn partial_complete_and_limits() {
        for cut in [0, 5, RFC_RESPONSE.len() - 1] {
            assert_eq!(parse_response(&RFC_RESPONSE.as_bytes()[..cut], LIMITS).map(|p| p.consumed()), Ok(None));
        }
        let small = HeadLimits { max_size: 32, max_headers: 64 };
        assert_eq!(
            parse_response(RFC_RESPONSE.as_bytes(), small).map(|p| p.consumed()),
            Err(HandshakeError::ResponseHeadTooLarge)
        );
        let few = HeadLimits { max_size: 8192, max_headers: 2 };
        assert_eq!(
            parse_response(RFC_RESPONSE.as_bytes(), few).map(|p| p.consumed()),
            Err(HandshakeError::TooManyResponseHeaders)
        );
        for bad in ["HTTP/1.1 abc OK\r\n\r\n", "HTTP/2 101\r\n\r\n", "SSH-2.0-OpenSSH\r\n\r\n"] {
            assert_eq!(
                parse_response(bad.as_bytes(), LIMITS).map(|p| p.consumed()),
                Err(HandshakeError::MalformedResponse),
                "{bad}"
            );
        }
    }

    #[test]
    fn validation_follows_rfc6455_4_1() {
        use HandshakeError::*;
        let table: &[(&str, &str, HandshakeError)] = &[
            ("101 Switching Protocols", "404 Not Found", UnexpectedStatus(StatusCode::NOT_FOUND)),
            ("101 Switching Protocols", "200 OK", UnexpectedStatus(StatusCode::OK)),
            ("Upgrade: websocket\r\n", "", ResponseMissingUpgrade),
            ("Upgrade: websocket\r\n", "Upgrade: h2c\r\n", ResponseMissingUpgrade),
            ("Connection: Upgrade\r\n", "", ResponseMissingConnectionUpgrade),
            ("Connection: Upgrade\r\n", "Connection: close\r\n", ResponseMissingConnectionUpgrade),
            ("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", "s3pPLMBiTxaQ9kYGzzhZRbK+xOp=", InvalidAcceptKey),
            ("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n", "", InvalidAcceptKey),
            ("Protocol: chat\r\n", "Protocol: mqtt\r\n", UnofferedSubprotocol),
            ("Protocol: chat\r\n", "Protocol: chat, superchat\r\n", UnofferedSubprotocol),
            ("Protocol: chat\r\n", "Protocol: Chat\r\n", UnofferedSubprotocol),
            (
                "Protocol: chat\r\n",
                "Protocol: chat\r\nSec-WebSocket-Extensions: permessage-deflate\r\n",
                UnofferedExtension,
            ),
        ];
        for (from, to, err) in table {
            let head = RFC_RESPONSE.replacen(from, to, 1);
            assert_eq!(validate_response(&parse(&head), ACCEPT, &offered(), false), Err(*err), "{head}");
        }
        // No subprotocol offered: any answer naming one fails.
        assert_eq!(validate_response(&parse(RFC_RESPONSE), ACCEPT, &[], false), Err(UnofferedSubprotocol));
    }

    #[test]
    fn validation_accepts_variants() {
        let table: &[(&str, &str)] = &[
            ("Upgrade: websocket", "Upgrade: WebSocket"),
            ("Connection: Upgrade", "Connection: keep-alive, upgrade"),
            ("Sec-WebSocket-Protocol: chat\r\n", ""),
            ("Sec-WebSocket-Protocol: chat\r\n", "Sec-WebSocket-Protocol: superchat\r\n"),
            ("Sec-WebSocket-Protocol: chat\r\n", "Sec-WebSocket-Extensions:\r\n"),
        ];
        for (from, to) in table {
            let head = RFC_RESPONSE.replacen(from, to, 1);
            assert_eq!(validate_response(&parse(&head), ACCEPT, &offered(), false), Ok(()), "{head}");
        }
    }
}
