//! `ws://` and `wss://` URLs (RFC 6455 §3), parsed without a URL crate.
//!
//! ```text
//! ws-URI  = "ws:"  "//" host [ ":" port ] path [ "?" query ]
//! wss-URI = "wss:" "//" host [ ":" port ] path [ "?" query ]
//! ```
//!
//! Strict on purpose: no user info, no fragment (§3: "Fragment identifiers
//! are meaningless in the context of WebSocket URIs and MUST NOT be used"),
//! only printable ASCII in the path and query (percent-encode the rest).

use std::net::Ipv6Addr;

use super::HandshakeError;

/// A parsed WebSocket URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct WsUrl<'a> {
    /// `wss://` rather than `ws://`.
    pub(crate) secure: bool,
    /// The host to connect to; an IPv6 literal without its brackets.
    pub(crate) host: &'a str,
    /// The port, explicit or the scheme's default (80 or 443).
    pub(crate) port: u16,
    /// The `Host` header value: the host as written (IPv6 in brackets) with
    /// `:port` only when the port is not the scheme's default (RFC 6455 §4.1
    /// item 4).
    pub(crate) host_header: String,
    /// The request target: path and query, `/` when the path is empty.
    pub(crate) target: String,
}

impl<'a> WsUrl<'a> {
    /// Parses `url`.
    pub(crate) fn parse(url: &'a str) -> Result<WsUrl<'a>, HandshakeError> {
        let (scheme, rest) = url.split_once("://").ok_or(HandshakeError::InvalidUrl)?;
        let secure = if scheme.eq_ignore_ascii_case("ws") {
            false
        } else if scheme.eq_ignore_ascii_case("wss") {
            true
        } else if !scheme.is_empty() && scheme.bytes().all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b)) {
            return Err(HandshakeError::UnsupportedScheme);
        } else {
            return Err(HandshakeError::InvalidUrl);
        };
        let default_port = if secure { 443 } else { 80 };

        if rest.contains('#') {
            return Err(HandshakeError::InvalidUrl);
        }
        let split = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(split);

        let (host, host_literal, port) = split_authority(authority)?;
        let port = match port {
            None | Some("") => default_port,
            Some(digits) if digits.bytes().all(|b| b.is_ascii_digit()) => match digits.parse::<u16>() {
                Ok(0) | Err(_) => return Err(HandshakeError::InvalidUrl),
                Ok(port) => port,
            },
            Some(_) => return Err(HandshakeError::InvalidUrl),
        };

        if !path.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
            return Err(HandshakeError::InvalidUrl);
        }
        let target = if path.starts_with('/') { path.to_owned() } else { format!("/{path}") };

        let host_header = if port == default_port { host_literal.to_owned() } else { format!("{host_literal}:{port}") };
        Ok(WsUrl { secure, host, port, host_header, target })
    }
}

impl WsUrl<'_> {
    /// `host:port` with the port always present and an IPv6 literal in
    /// brackets: the target of a proxy's `CONNECT` (RFC 9110 §9.3.6).
    pub(crate) fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// Splits `host[:port]` or `[v6][:port]` into the host to connect to, the
/// host as written, and the port text if a colon was present. Refuses user
/// info (`@`); the proxy URL parser strips it first.
pub(crate) fn split_authority(authority: &str) -> Result<(&str, &str, Option<&str>), HandshakeError> {
    if authority.contains('@') {
        return Err(HandshakeError::InvalidUrl);
    }
    if let Some(bracketed) = authority.strip_prefix('[') {
        let (v6, after) = bracketed.split_once(']').ok_or(HandshakeError::InvalidUrl)?;
        if v6.parse::<Ipv6Addr>().is_err() {
            return Err(HandshakeError::InvalidUrl);
        }
        let literal = &authority[..v6.len() + 2];
        let port = match after {
            "" => None,
            _ => Some(after.strip_prefix(':').ok_or(HandshakeError::InvalidUrl)?),
        };
        return Ok((v6, literal, port));
    }
    let (host, port) = match authority.split_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (authority, None),
    };
    let valid_host = !host.is_empty() && host.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
    if !valid_host {
        return Err(HandshakeError::InvalidUrl);
    }
    Ok((host, host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_valid_urls() {
        // (url, secure, host, port, Host header, target)
        let table: &[(&str, bool, &str, u16, &str, &str)] = &[
            ("ws://example.com", false, "example.com", 80, "example.com", "/"),
            ("ws://example.com/", false, "example.com", 80, "example.com", "/"),
            ("ws://example.com:80/chat", false, "example.com", 80, "example.com", "/chat"),
            ("ws://example.com:9001/a/b?x=1&y", false, "example.com", 9001, "example.com:9001", "/a/b?x=1&y"),
            ("ws://example.com?x=1", false, "example.com", 80, "example.com", "/?x=1"),
            ("WS://Example.COM:8080", false, "Example.COM", 8080, "Example.COM:8080", "/"),
            ("wss://example.com/", true, "example.com", 443, "example.com", "/"),
            ("wss://example.com:443/", true, "example.com", 443, "example.com", "/"),
            ("wss://example.com:80/", true, "example.com", 80, "example.com:80", "/"),
            (
                "ws://127.0.0.1:9001/runCase?case=1&agent=x",
                false,
                "127.0.0.1",
                9001,
                "127.0.0.1:9001",
                "/runCase?case=1&agent=x",
            ),
            ("ws://[::1]:9001/", false, "::1", 9001, "[::1]:9001", "/"),
            ("ws://[::1]/", false, "::1", 80, "[::1]", "/"),
            ("ws://[2001:db8::1]:80", false, "2001:db8::1", 80, "[2001:db8::1]", "/"),
            ("ws://host:/p", false, "host", 80, "host", "/p"),
            ("ws://localhost/%7Euser", false, "localhost", 80, "localhost", "/%7Euser"),
        ];
        for &(url, secure, host, port, host_header, target) in table {
            let parsed = WsUrl::parse(url).unwrap_or_else(|e| panic!("{url}: {e}"));
            assert_eq!(
                parsed,
                WsUrl { secure, host, port, host_header: host_header.into(), target: target.into() },
                "{url}"
            );
        }
    }

    #[test]
    fn authority_always_has_the_port() {
        let table = [
            ("ws://example.com/", "example.com:80"),
            ("wss://example.com/", "example.com:443"),
            ("wss://Example.com:8443/x", "Example.com:8443"),
            ("ws://[::1]/", "[::1]:80"),
            ("wss://[2001:db8::1]:9/", "[2001:db8::1]:9"),
            ("ws://127.0.0.1:9001/", "127.0.0.1:9001"),
        ];
        for (url, authority) in table {
            assert_eq!(WsUrl::parse(url).unwrap().authority(), authority, "{url}");
        }
    }

    #[test]
    fn rejects_invalid_urls() {
        use HandshakeError::*;
        let table: &[(&str, HandshakeError)] = &[
            ("", InvalidUrl),
            ("example.com", InvalidUrl),
            ("://example.com", InvalidUrl),
            ("http://example.com", UnsupportedScheme),
            ("https://example.com", UnsupportedScheme),
            ("ws://", InvalidUrl),
            ("ws:///path", InvalidUrl),
            ("ws://example.com/#frag", InvalidUrl),
            ("ws://example.com#frag", InvalidUrl),
            ("ws://user:pw@example.com/", InvalidUrl),
            ("ws://example.com:0/", InvalidUrl),
            ("ws://example.com:65536/", InvalidUrl),
            ("ws://example.com:12a/", InvalidUrl),
            ("ws://example.com:-1/", InvalidUrl),
            ("ws://a:1:2/", InvalidUrl),
            ("ws://::1/", InvalidUrl),
            ("ws://[::1/", InvalidUrl),
            ("ws://[::1]x/", InvalidUrl),
            ("ws://[not-v6]/", InvalidUrl),
            ("ws://exa mple.com/", InvalidUrl),
            ("ws://example.com/a b", InvalidUrl),
            ("ws://example.com/é", InvalidUrl),
            ("ws://example.com/\r\nX: y", InvalidUrl),
        ];
        for (url, err) in table {
            assert_eq!(WsUrl::parse(url), Err(*err), "{url}");
        }
    }
}
