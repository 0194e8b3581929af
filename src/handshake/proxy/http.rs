//! The `CONNECT` tunnel (RFC 9110 §9.3.6) through an HTTP proxy, over plain
//! TCP (`http://`) or over TLS with the proxy (`https://`). It writes the
//! request and reads the answer with the handshake's bounded head reader.

use http::StatusCode;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

use super::ProxyUrl;
use crate::error::Result;
use crate::handshake::head::{read_head, HeadLimits};
use crate::handshake::response::parse_response;
use crate::handshake::url::WsUrl;
use crate::handshake::{HandshakeError, Response};

/// The `CONNECT` request for a tunnel to `authority` (`host:port`, IPv6 in
/// brackets), RFC 9110 §9.3.6: the authority as the request target and as
/// `Host`.
pub(crate) fn connect_request(authority: &str, authorization: Option<&str>) -> Vec<u8> {
    let mut out = format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n");
    if let Some(credentials) = authorization {
        out.push_str("Proxy-Authorization: ");
        out.push_str(credentials);
        out.push_str("\r\n");
    }
    out.push_str("\r\n");
    out.into_bytes()
}

/// Checks the proxy's answer: any 2xx opens the tunnel (RFC 9110 §9.3.6);
/// anything else is a refusal. Nothing may follow a 2xx head yet: neither
/// the WebSocket server nor a TLS server speaks before the client, and a
/// 2xx answer to `CONNECT` has no body.
pub(crate) fn check_answer(response: &Response, rest: &[u8]) -> Result<(), HandshakeError> {
    let status: StatusCode = response.status();
    if !status.is_success() {
        return Err(HandshakeError::ProxyRefused(status));
    }
    if !rest.is_empty() {
        return Err(HandshakeError::MalformedProxyResponse);
    }
    Ok(())
}

/// Opens a tunnel to `target` through the proxy at the other end of `io`.
///
/// # Cancellation safety
///
/// Not cancel safe: dropped halfway, `io` is in an unknown state.
pub(crate) async fn tunnel<S>(io: &mut S, proxy: &ProxyUrl, target: &WsUrl<'_>, limits: HeadLimits) -> Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let request = connect_request(&target.authority(), proxy.authorization().as_deref());
    io.write_all(&request).await?;
    io.flush().await?;
    let (response, rest) = read_head(io, limits.max_size, |buf| {
        parse_response(buf, limits).map_err(|e| match e {
            HandshakeError::MalformedResponse => HandshakeError::MalformedProxyResponse,
            other => other,
        })
    })
    .await?;
    check_answer(&response, &rest)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_connect_requests() {
        assert_eq!(
            connect_request("example.com:443", None),
            b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n"
        );
        assert_eq!(
            connect_request("[::1]:80", Some("Basic dTpw")),
            b"CONNECT [::1]:80 HTTP/1.1\r\nHost: [::1]:80\r\nProxy-Authorization: Basic dTpw\r\n\r\n"
        );
    }

    #[test]
    fn checks_answers() {
        let answer = |status: u16| {
            let mut response = Response::new(());
            *response.status_mut() = StatusCode::from_u16(status).unwrap();
            response
        };
        assert_eq!(check_answer(&answer(200), b""), Ok(()));
        assert_eq!(check_answer(&answer(204), b""), Ok(()));
        assert_eq!(check_answer(&answer(200), b"x"), Err(HandshakeError::MalformedProxyResponse));
        for status in [101, 301, 403, 407, 502] {
            assert_eq!(
                check_answer(&answer(status), b"body"),
                Err(HandshakeError::ProxyRefused(StatusCode::from_u16(status).unwrap()))
            );
        }
    }
}
