//! Extension negotiation inside the opening handshake (RFC 6455 §9.1): today
//! permessage-deflate (RFC 7692), when the `deflate` feature is built and
//! the connection's [`Config`] turns it on. The handshake builders call these
//! few functions and stay free of feature switches.

use bytes::BytesMut;
use http::header::SEC_WEBSOCKET_EXTENSIONS;
use http::HeaderMap;
use tokio::io::{AsyncRead, AsyncWrite};

use super::HandshakeError;
use crate::{Config, Role, WebSocketStream};

/// What the handshake agreed on.
#[cfg(feature = "deflate")]
pub(crate) type Agreed = Option<crate::deflate::DeflateParams>;
/// What the handshake agreed on: nothing, without extensions built in.
#[cfg(not(feature = "deflate"))]
pub(crate) type Agreed = Option<std::convert::Infallible>;

/// The raw values of every `Sec-WebSocket-Extensions` field, in order.
#[cfg(feature = "deflate")]
fn values(headers: &HeaderMap) -> Vec<&[u8]> {
    headers.get_all(SEC_WEBSOCKET_EXTENSIONS).iter().map(http::HeaderValue::as_bytes).collect()
}

/// The client's `Sec-WebSocket-Extensions` offer, if it makes one.
#[cfg(feature = "deflate")]
pub(crate) fn client_offer(config: &Config) -> Option<String> {
    config.get_deflate().map(|deflate| crate::deflate::client_offer(&deflate))
}

/// The client's check of the server's answer to its offer.
#[cfg(feature = "deflate")]
pub(crate) fn client_accept(config: &Config, response: &HeaderMap) -> Result<Agreed, HandshakeError> {
    let Some(deflate) = config.get_deflate() else { return Ok(None) };
    crate::deflate::client_accept(&deflate, &values(response)).map_err(|_| HandshakeError::InvalidExtensionResponse)
}

/// The server's choice among the client's offers: the response header value
/// and what it agrees to.
#[cfg(feature = "deflate")]
pub(crate) fn server_answer(config: &Config, request: &HeaderMap) -> Result<(Option<String>, Agreed), HandshakeError> {
    let Some(deflate) = config.get_deflate() else { return Ok((None, None)) };
    match crate::deflate::server_negotiate(&deflate, &values(request)) {
        Ok(Some((answer, params))) => Ok((Some(answer), Some(params))),
        Ok(None) => Ok((None, None)),
        Err(_) => Err(HandshakeError::InvalidExtensionOffer),
    }
}

/// The client's offer: none without extensions built in.
#[cfg(not(feature = "deflate"))]
pub(crate) fn client_offer(_: &Config) -> Option<String> {
    None
}

/// Nothing was offered, so nothing is agreed (`validate_response` has
/// already refused any extension in the answer).
#[cfg(not(feature = "deflate"))]
#[allow(clippy::unnecessary_wraps)]
pub(crate) fn client_accept(_: &Config, _: &HeaderMap) -> Result<Agreed, HandshakeError> {
    Ok(None)
}

/// Without extensions built in, every offer is declined.
#[cfg(not(feature = "deflate"))]
#[allow(clippy::unnecessary_wraps)]
pub(crate) fn server_answer(_: &Config, _: &HeaderMap) -> Result<(Option<String>, Agreed), HandshakeError> {
    let _ = SEC_WEBSOCKET_EXTENSIONS;
    Ok((None, None))
}

/// The stream for a finished handshake, with what it agreed on.
pub(crate) fn into_stream<S>(io: S, role: Role, config: Config, rest: BytesMut, agreed: Agreed) -> WebSocketStream<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    match agreed {
        #[cfg(feature = "deflate")]
        Some(params) => WebSocketStream::from_raw_parts_with_deflate(io, role, config, rest, params),
        #[cfg(not(feature = "deflate"))]
        Some(never) => match never {},
        None => WebSocketStream::from_raw_parts(io, role, config, rest),
    }
}
