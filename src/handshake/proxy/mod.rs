//! Proxies for the client: the proxy URL (`http://`, `https://`,
//! `socks5://`, `socks5h://`) and opening a tunnel through one.
//!
//! - `env.rs` picks the proxy of a connection (explicit, from the
//!   environment, or none): pure, tested with tables;
//! - `http.rs` opens an HTTP `CONNECT` tunnel (RFC 9110 §9.3.6), over TCP
//!   for `http://` or over TLS with the proxy for `https://`;
//! - `socks.rs` opens a SOCKS5 tunnel (RFC 1928, RFC 1929) with tokio-socks
//!   (feature `socks`).
//!
//! [`open`] is the only entry point that does I/O: TCP to the proxy (every
//! address it resolves to, see `dial.rs`), TLS with it for `https://`, then
//! the tunnel. The caller bounds it with the handshake timeout; every answer
//! is read into a buffer of bounded size.

mod env;
mod http;
mod socks;

use std::fmt;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

pub(crate) use self::env::{ProxyEnv, ProxySetting};
use super::dial::dial;
use super::head::HeadLimits;
use super::tls::{self, MaybeTlsStream, TlsConfig};
use super::url::{split_authority, WsUrl};
use super::HandshakeError;
use crate::error::Result;

/// The port of an `http://` or SOCKS proxy URL that names none: 1080, as
/// curl assumes.
pub(crate) const DEFAULT_PROXY_PORT: u16 = 1080;
/// The port of an `https://` proxy URL that names none: 443, as curl
/// assumes.
pub(crate) const DEFAULT_HTTPS_PROXY_PORT: u16 = 443;

/// The kind of proxy a URL names, by its scheme.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ProxyKind {
    /// `http://` (or no scheme): `CONNECT` over plain TCP.
    Http,
    /// `https://`: `CONNECT` over TLS with the proxy.
    Https,
    /// `socks5://`: SOCKS5, the client resolves the destination's name.
    Socks5,
    /// `socks5h://`: SOCKS5, the proxy resolves the destination's name.
    Socks5h,
}

/// A proxy: its kind, where to connect, and the credentials to present.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct ProxyUrl {
    /// The URL as given (credentials included), for
    /// [`Connector::proxy_for`](crate::Connector::proxy_for).
    pub(crate) raw: String,
    /// Which protocol the proxy speaks.
    pub(crate) kind: ProxyKind,
    /// The host to connect to; an IPv6 literal without its brackets.
    pub(crate) host: String,
    /// The port, explicit or the scheme's default ([`DEFAULT_PROXY_PORT`],
    /// [`DEFAULT_HTTPS_PROXY_PORT`]).
    pub(crate) port: u16,
    /// User and password from the URL's user info, percent-decoded.
    pub(crate) credentials: Option<(String, String)>,
}

impl fmt::Debug for ProxyUrl {
    /// Leaves the credentials out, so that logging a `Connector` does not
    /// print a password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProxyUrl")
            .field("kind", &self.kind)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("credentials", &self.credentials.is_some())
            .finish()
    }
}

impl ProxyUrl {
    /// Parses `[scheme://][user[:password]@]host[:port][/]` with scheme
    /// `http` (the default, as in curl), `https`, `socks5` or `socks5h`.
    /// User and password are percent-decoded and must be UTF-8; for SOCKS
    /// (RFC 1929 §2) each is 1 to 255 bytes long.
    pub(crate) fn parse(url: &str) -> Result<ProxyUrl, HandshakeError> {
        use HandshakeError::{InvalidProxyUrl, UnsupportedProxyScheme};
        let (kind, rest) = match url.split_once("://") {
            None => (ProxyKind::Http, url),
            Some((scheme, rest)) => match scheme.to_ascii_lowercase().as_str() {
                "http" => (ProxyKind::Http, rest),
                "https" => (ProxyKind::Https, rest),
                "socks5" => (ProxyKind::Socks5, rest),
                "socks5h" => (ProxyKind::Socks5h, rest),
                _ if is_scheme(scheme) => return Err(UnsupportedProxyScheme),
                _ => return Err(InvalidProxyUrl),
            },
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if !rest.bytes().all(|b| (0x21..=0x7e).contains(&b)) || rest.contains(['/', '?', '#']) {
            return Err(InvalidProxyUrl);
        }
        let (userinfo, authority) = match rest.rsplit_once('@') {
            Some((userinfo, authority)) => (Some(userinfo), authority),
            None => (None, rest),
        };
        let (host, _, port) = split_authority(authority).map_err(|_| InvalidProxyUrl)?;
        let port = match port {
            None | Some("") if kind == ProxyKind::Https => DEFAULT_HTTPS_PROXY_PORT,
            None | Some("") => DEFAULT_PROXY_PORT,
            Some(digits) if digits.bytes().all(|b| b.is_ascii_digit()) => match digits.parse() {
                Ok(0) | Err(_) => return Err(InvalidProxyUrl),
                Ok(port) => port,
            },
            Some(_) => return Err(InvalidProxyUrl),
        };
        let credentials = userinfo.map(credentials).transpose()?;
        if matches!(kind, ProxyKind::Socks5 | ProxyKind::Socks5h) {
            if !cfg!(feature = "socks") {
                return Err(HandshakeError::SocksNotEnabled);
            }
            let fits = |s: &str| (1..=255).contains(&s.len());
            if credentials.as_ref().is_some_and(|(user, password)| !fits(user) || !fits(password)) {
                return Err(InvalidProxyUrl);
            }
        }
        Ok(ProxyUrl { raw: url.to_owned(), kind, host: host.to_owned(), port, credentials })
    }

    /// The `Proxy-Authorization` value for an HTTP proxy, `Basic
    /// base64(user ":" password)` (RFC 7617 §2), when the URL has user info.
    pub(crate) fn authorization(&self) -> Option<String> {
        self.credentials
            .as_ref()
            .map(|(user, password)| format!("Basic {}", STANDARD.encode(format!("{user}:{password}"))))
    }
}

/// Opens a tunnel to `target` through `proxy`: TCP to the proxy, TLS with
/// it when it is `https://` (with `tls`, which the caller chose for the
/// proxy), then `CONNECT` or SOCKS5. Answers the stream that leads to the
/// target: TCP, or the TLS session with an `https://` proxy.
///
/// # Cancellation safety
///
/// Not cancel safe: dropped halfway, the tunnel is lost.
pub(crate) async fn open(
    proxy: &ProxyUrl,
    target: &WsUrl<'_>,
    tls: Option<&TlsConfig>,
    limits: HeadLimits,
) -> Result<MaybeTlsStream> {
    let tcp = dial(&proxy.host, proxy.port).await?;
    match proxy.kind {
        ProxyKind::Http => {
            let mut io = MaybeTlsStream::Plain(tcp);
            http::tunnel(&mut io, proxy, target, limits).await?;
            Ok(io)
        }
        ProxyKind::Https => {
            let config = tls.ok_or(HandshakeError::TlsNotEnabled)?;
            let mut io = tls::wrap(MaybeTlsStream::Plain(tcp), &proxy.host, config).await?;
            http::tunnel(&mut io, proxy, target, limits).await?;
            Ok(io)
        }
        ProxyKind::Socks5 | ProxyKind::Socks5h => Ok(MaybeTlsStream::Plain(socks::tunnel(tcp, proxy, target).await?)),
    }
}

/// Whether `s` is a URL scheme (RFC 3986 §3.1).
fn is_scheme(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_alphabetic())
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
}

/// User and password from URL user info, percent-decoded; a missing
/// password is empty. Both must decode to UTF-8.
fn credentials(userinfo: &str) -> Result<(String, String), HandshakeError> {
    let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
    let text = |s: &str| String::from_utf8(percent_decode(s)?).map_err(|_| HandshakeError::InvalidProxyUrl);
    Ok((text(user)?, text(password)?))
}

/// Decodes `%XX` escapes (RFC 3986 §2.1); a `%` not followed by two hex
/// digits is an error.
fn percent_decode(s: &str) -> Result<Vec<u8>, HandshakeError> {
    fn hex(b: u8) -> Option<u8> {
        char::from(b).to_digit(16).map(|d| d as u8)
    }
    let mut out = Vec::with_capacity(s.len());
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        if b == b'%' {
            let high = bytes.next().and_then(hex);
            let low = bytes.next().and_then(hex);
            match (high, low) {
                (Some(high), Some(low)) => out.push(high << 4 | low),
                _ => return Err(HandshakeError::InvalidProxyUrl),
            }
        } else {
            out.push(b);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proxy_urls() {
        use ProxyKind::*;
        // (url, kind, host, port, Proxy-Authorization)
        let table: &[(&str, ProxyKind, &str, u16, Option<&str>)] = &[
            ("http://proxy.example:3128", Http, "proxy.example", 3128, None),
            ("http://proxy.example:3128/", Http, "proxy.example", 3128, None),
            ("HTTP://Proxy.Example", Http, "Proxy.Example", 1080, None),
            ("proxy.example:8080", Http, "proxy.example", 8080, None),
            ("10.0.0.1", Http, "10.0.0.1", 1080, None),
            ("http://[::1]:3128", Http, "::1", 3128, None),
            ("http://[2001:db8::2]", Http, "2001:db8::2", 1080, None),
            // RFC 7617 §2: base64("Aladdin:open sesame")
            (
                "http://Aladdin:open%20sesame@proxy:3128",
                Http,
                "proxy",
                3128,
                Some("Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="),
            ),
            ("http://user@proxy:1", Http, "proxy", 1, Some("Basic dXNlcjo=")),
            // "p@ss:w" with its @ escaped, and a colon inside the password.
            ("http://u:p%40ss:w@proxy:1", Http, "proxy", 1, Some("Basic dTpwQHNzOnc=")),
            // The last @ ends the user info.
            ("http://u:p@ss@proxy:1", Http, "proxy", 1, Some("Basic dTpwQHNz")),
            ("http://%75:%2F@proxy:1", Http, "proxy", 1, Some("Basic dTov")),
            // https:// defaults to 443, as in curl.
            ("https://proxy.example", Https, "proxy.example", 443, None),
            ("HTTPS://u:p@[::1]:8443/", Https, "::1", 8443, Some("Basic dTpw")),
        ];
        for &(url, kind, host, port, authorization) in table {
            let proxy = ProxyUrl::parse(url).unwrap_or_else(|e| panic!("{url}: {e}"));
            assert_eq!(proxy.raw, url);
            assert_eq!(proxy.kind, kind, "{url}");
            assert_eq!(proxy.host, host, "{url}");
            assert_eq!(proxy.port, port, "{url}");
            assert_eq!(proxy.authorization().as_deref(), authorization, "{url}");
        }
    }

    #[cfg(feature = "socks")]
    #[test]
    fn parses_socks_urls() {
        let proxy = ProxyUrl::parse("socks5://127.0.0.1").unwrap();
        assert_eq!((proxy.kind, proxy.port, proxy.credentials), (ProxyKind::Socks5, 1080, None));
        let proxy = ProxyUrl::parse("SOCKS5H://us%65r:p%3Ass@tor:9050/").unwrap();
        assert_eq!((proxy.kind, proxy.host.as_str(), proxy.port), (ProxyKind::Socks5h, "tor", 9050));
        assert_eq!(proxy.credentials, Some(("user".to_owned(), "p:ss".to_owned())));
        // RFC 1929 §2: user and password are 1 to 255 bytes each.
        let long = "x".repeat(256);
        for url in
            ["socks5://u@p", "socks5://:pw@p", &format!("socks5://{long}:pw@p"), &format!("socks5h://u:{long}@p")]
        {
            assert_eq!(ProxyUrl::parse(url), Err(HandshakeError::InvalidProxyUrl), "{url}");
        }
        assert!(ProxyUrl::parse(&format!("socks5://u:{}@p", "x".repeat(255))).is_ok());
    }

    #[cfg(not(feature = "socks"))]
    #[test]
    fn socks_urls_need_the_feature() {
        for url in ["socks5://proxy:1080", "socks5h://proxy"] {
            assert_eq!(ProxyUrl::parse(url), Err(HandshakeError::SocksNotEnabled), "{url}");
        }
    }

    #[test]
    fn rejects_bad_proxy_urls() {
        use HandshakeError::*;
        let table: &[(&str, HandshakeError)] = &[
            ("ws://proxy:80", UnsupportedProxyScheme),
            ("socks4://proxy:1080", UnsupportedProxyScheme),
            ("", InvalidProxyUrl),
            ("http://", InvalidProxyUrl),
            ("http://:3128", InvalidProxyUrl),
            ("http://proxy:0", InvalidProxyUrl),
            ("http://proxy:65536", InvalidProxyUrl),
            ("http://proxy:x", InvalidProxyUrl),
            ("http://proxy:3128/path", InvalidProxyUrl),
            ("http://proxy:3128?q", InvalidProxyUrl),
            ("http://proxy:3128#f", InvalidProxyUrl),
            ("http://pro xy:3128", InvalidProxyUrl),
            ("http://u:%zz@proxy", InvalidProxyUrl),
            ("http://u:%4@proxy", InvalidProxyUrl),
            ("http://u:%ff@proxy", InvalidProxyUrl),
            ("http://[::1:3128", InvalidProxyUrl),
            ("https://", InvalidProxyUrl),
            ("1http://proxy", InvalidProxyUrl),
            ("http://proxy\r\nX: y", InvalidProxyUrl),
        ];
        for (url, err) in table {
            assert_eq!(ProxyUrl::parse(url), Err(*err), "{url:?}");
        }
    }

    #[test]
    fn debug_hides_credentials() {
        let proxy = ProxyUrl::parse("http://user:secret@proxy:3128").unwrap();
        let text = format!("{proxy:?}");
        assert!(!text.contains("secret") && !text.contains("Basic"), "{text}");
        assert!(text.contains("credentials: true"), "{text}");
    }
}
