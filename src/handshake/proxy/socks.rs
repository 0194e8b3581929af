//! The SOCKS5 tunnel (RFC 1928) with username/password authentication
//! (RFC 1929), spoken by tokio-socks (feature `socks`).
//!
//! `socks5://` resolves the destination here and sends the proxy the first
//! address the name resolves to; `socks5h://` sends the name and lets the proxy resolve it (what
//! Tor needs). tokio-socks reads every answer into a fixed buffer of 513
//! bytes, so a proxy cannot make the negotiation allocate.
//!
//! Its errors become [`HandshakeError`]s here: a reply code is
//! [`HandshakeError::SocksRefused`], a refused or impossible
//! authentication [`HandshakeError::SocksAuthFailed`], anything that is not
//! SOCKS5 [`HandshakeError::MalformedSocksReply`], a proxy that hangs up
//! [`HandshakeError::UnexpectedEof`].

use tokio::net::TcpStream;

use super::ProxyUrl;
use crate::error::Result;
use crate::handshake::url::WsUrl;

/// Opens a SOCKS5 tunnel to `target` through the proxy at the other end of
/// `tcp`, authenticating with the URL's user and password if it has them.
///
/// # Cancellation safety
///
/// Not cancel safe: dropped halfway, `tcp` is lost.
#[cfg(feature = "socks")]
pub(crate) async fn tunnel(tcp: TcpStream, proxy: &ProxyUrl, target: &WsUrl<'_>) -> Result<TcpStream> {
    use tokio_socks::tcp::Socks5Stream;
    use tokio_socks::TargetAddr;

    use super::ProxyKind;

    let address = match target.host.parse::<std::net::IpAddr>() {
        Ok(ip) => TargetAddr::Ip((ip, target.port).into()),
        Err(_) if proxy.kind == ProxyKind::Socks5h => TargetAddr::Domain(target.host.into(), target.port),
        Err(_) => {
            let mut found = tokio::net::lookup_host((target.host, target.port)).await?;
            let first = found.next().ok_or_else(|| std::io::Error::other("no address for the destination"))?;
            TargetAddr::Ip(first)
        }
    };
    let stream = match &proxy.credentials {
        None => Socks5Stream::connect_with_socket(tcp, address).await,
        Some((user, password)) => Socks5Stream::connect_with_password_and_socket(tcp, address, user, password).await,
    };
    stream.map(Socks5Stream::into_inner).map_err(convert)
}

/// Unreachable: without the `socks` feature, SOCKS URLs do not parse.
#[cfg(not(feature = "socks"))]
#[allow(clippy::unused_async)]
pub(crate) async fn tunnel(_: TcpStream, _: &ProxyUrl, _: &WsUrl<'_>) -> Result<TcpStream> {
    Err(crate::HandshakeError::SocksNotEnabled.into())
}

/// A tokio-socks error as this crate reports it.
#[cfg(feature = "socks")]
fn convert(err: tokio_socks::Error) -> crate::Error {
    use tokio_socks::Error as E;

    use crate::HandshakeError as H;

    let handshake = match err {
        E::Io(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => H::UnexpectedEof,
        E::Io(e) => return e.into(),
        // RFC 1928 §6, the reply codes.
        E::GeneralSocksServerFailure => H::SocksRefused(1),
        E::ConnectionNotAllowedByRuleset => H::SocksRefused(2),
        E::NetworkUnreachable => H::SocksRefused(3),
        E::HostUnreachable => H::SocksRefused(4),
        E::ConnectionRefused => H::SocksRefused(5),
        E::TtlExpired => H::SocksRefused(6),
        E::CommandNotSupported => H::SocksRefused(7),
        E::AddressTypeNotSupported => H::SocksRefused(8),
        // RFC 1929 §2 status other than 0, no acceptable method (0xFF), or
        // a password asked for when the URL has none.
        E::PasswordAuthFailure(_) | E::NoAcceptableAuthMethods | E::AuthorizationRequired => H::SocksAuthFailed,
        // A name too long for SOCKS (over 255 bytes).
        E::InvalidTargetAddress(_) => H::InvalidUrl,
        E::InvalidAuthValues(_) => H::InvalidProxyUrl,
        // Not SOCKS5: a wrong version, reserved byte, method, address type,
        // or an unassigned reply code.
        _ => H::MalformedSocksReply,
    };
    handshake.into()
}
