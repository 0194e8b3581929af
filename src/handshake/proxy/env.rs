//! Which proxy a connection goes through: the one given to
//! [`Connector::proxy`](crate::Connector::proxy), or the one the environment
//! names, read the way curl reads it.
//!
//! Choosing is pure: [`ProxyEnv`] reads variables through a function, so the
//! rules are tested with tables, never by mutating the process environment
//! under tests that run in parallel.
//!
//! The environment, for a connection to `host:port`:
//!
//! ```text
//! wss://  https_proxy, HTTPS_PROXY, then all_proxy, ALL_PROXY
//! ws://   http_proxy, HTTP_PROXY (not under CGI), then all_proxy, ALL_PROXY
//! bypass  no_proxy, NO_PROXY: "*", or a comma list of host names (each one
//!         also covers its subdomains; a leading "." or "*." is ignored),
//!         IP addresses and CIDR blocks, each with an optional ":port";
//!         and always loopback (localhost, *.localhost, 127.0.0.0/8, ::1)
//! ```
//!
//! Whichever variable wins may name any proxy kind the URL parser takes
//! (`http://`, `https://`, `socks5://`, `socks5h://`).
//!
//! The first non-empty variable wins, so a lower-case name beats its
//! upper-case twin, as in curl. Two choices differ from curl and follow Go's
//! `net/http`: `HTTP_PROXY` is ignored when `REQUEST_METHOD` is set (a CGI
//! script, where a request's `Proxy:` header arrives as `HTTP_PROXY`:
//! "httpoxy", CVE-2016-5385), and loopback destinations never go through an
//! environment proxy (a proxy elsewhere cannot reach this machine's
//! loopback).

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use super::ProxyUrl;
use crate::handshake::url::WsUrl;
use crate::handshake::HandshakeError;

/// A function answering an environment variable's value by its name.
type Lookup = dyn Fn(&str) -> Option<String> + Send + Sync;

/// Reads environment variables through a function: the process
/// environment by default, a closure in tests and for applications that
/// keep their settings elsewhere.
#[derive(Clone)]
pub(crate) struct ProxyEnv {
    lookup: Arc<Lookup>,
}

impl fmt::Debug for ProxyEnv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ProxyEnv(..)")
    }
}

impl ProxyEnv {
    /// The process environment, read at each connect.
    pub(crate) fn process() -> ProxyEnv {
        ProxyEnv::from_fn(|name| std::env::var(name).ok())
    }

    /// Variables as `lookup` answers them.
    pub(crate) fn from_fn<F>(lookup: F) -> ProxyEnv
    where
        F: Fn(&str) -> Option<String> + Send + Sync + 'static,
    {
        ProxyEnv { lookup: Arc::new(lookup) }
    }

    /// The first of `names` set to something other than blanks.
    fn first(&self, names: &[&str]) -> Option<String> {
        names.iter().find_map(|name| (self.lookup)(name).filter(|value| !value.trim().is_empty()))
    }

    /// The proxy URL the environment names for a connection to
    /// `host:port` (`secure` for `wss://`), or `None` to connect directly.
    /// See the module documentation for the rules.
    pub(crate) fn proxy_for(&self, secure: bool, host: &str, port: u16) -> Option<String> {
        if is_loopback(host) {
            return None;
        }
        let specific = if secure {
            self.first(&["https_proxy", "HTTPS_PROXY"])
        } else if self.first(&["REQUEST_METHOD"]).is_some() {
            self.first(&["http_proxy"])
        } else {
            self.first(&["http_proxy", "HTTP_PROXY"])
        };
        let proxy = specific.or_else(|| self.first(&["all_proxy", "ALL_PROXY"]))?;
        let no_proxy = self.first(&["no_proxy", "NO_PROXY"]).unwrap_or_default();
        if bypasses(&no_proxy, host, port) {
            return None;
        }
        Some(proxy.trim().to_owned())
    }
}

/// How a [`Connector`](crate::Connector) picks a proxy.
#[derive(Clone, Debug)]
pub(crate) enum ProxySetting {
    /// From the environment (the default).
    Env(ProxyEnv),
    /// Always this one (or this error, for a URL that did not parse).
    Fixed(Result<ProxyUrl, HandshakeError>),
    /// Never.
    Direct,
}

impl ProxySetting {
    /// The proxy for a connection to `url`, or `None` to connect directly.
    pub(crate) fn select(&self, url: &WsUrl<'_>) -> Result<Option<ProxyUrl>, HandshakeError> {
        match self {
            ProxySetting::Direct => Ok(None),
            ProxySetting::Fixed(proxy) => proxy.clone().map(Some),
            ProxySetting::Env(env) => {
                env.proxy_for(url.secure, url.host, url.port).map(|value| ProxyUrl::parse(&value)).transpose()
            }
        }
    }
}

/// Whether `host` is this machine's loopback: `localhost` and its
/// subdomains (RFC 6761 §6.3), 127.0.0.0/8, `::1`.
fn is_loopback(host: &str) -> bool {
    let host = host.strip_suffix('.').unwrap_or(host);
    host.eq_ignore_ascii_case("localhost")
        || ends_with_ignore_case(host, ".localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Whether a `NO_PROXY` list exempts `host:port` from the proxy.
pub(crate) fn bypasses(no_proxy: &str, host: &str, port: u16) -> bool {
    let host = host.strip_suffix('.').unwrap_or(host);
    let host_ip = host.parse::<IpAddr>().ok();
    no_proxy
        .split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .any(|entry| matches_entry(entry, host, host_ip, port))
}

/// Whether one `NO_PROXY` entry covers `host:port`.
fn matches_entry(entry: &str, host: &str, host_ip: Option<IpAddr>, port: u16) -> bool {
    if entry == "*" {
        return true;
    }
    let (pattern, entry_port) = split_entry(entry);
    if entry_port.is_some_and(|p| p != port) {
        return false;
    }
    if let Some((net, bits)) = pattern.split_once('/') {
        return match (host_ip, net.parse::<IpAddr>(), bits.parse::<u8>()) {
            (Some(ip), Ok(net), Ok(bits)) => in_network(ip, net, bits),
            _ => false,
        };
    }
    if let Ok(ip) = pattern.parse::<IpAddr>() {
        return host_ip == Some(ip);
    }
    if host_ip.is_some() {
        return false;
    }
    let domain = pattern.strip_prefix("*.").or_else(|| pattern.strip_prefix('.')).unwrap_or(pattern);
    let domain = domain.strip_suffix('.').unwrap_or(domain);
    !domain.is_empty()
        && (host.eq_ignore_ascii_case(domain)
            || (host.len() > domain.len()
                && host.as_bytes()[host.len() - domain.len() - 1] == b'.'
                && ends_with_ignore_case(host, domain)))
}

/// Splits a `NO_PROXY` entry into its pattern and port: `name:port`,
/// `[v6]:port`; a bare IPv6 address or a CIDR block has no port.
fn split_entry(entry: &str) -> (&str, Option<u16>) {
    let port = |p: &str| p.parse::<u16>().ok();
    if let Some(rest) = entry.strip_prefix('[') {
        return match rest.split_once(']') {
            Some((ip, "")) => (ip, None),
            // An unparsable port matches no port at all.
            Some((ip, after)) => (ip, Some(after.strip_prefix(':').and_then(port).unwrap_or(0))),
            None => (entry, None),
        };
    }
    if entry.contains('/') || entry.parse::<IpAddr>().is_ok() {
        return (entry, None);
    }
    match entry.rsplit_once(':') {
        Some((name, p)) => (name, Some(port(p).unwrap_or(0))),
        None => (entry, None),
    }
}

/// Whether `ip` lies in `net/bits`.
fn in_network(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(ip), IpAddr::V4(net)) if bits <= 32 => {
            let mask = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
            u32::from(ip) & mask == u32::from(net) & mask
        }
        (IpAddr::V6(ip), IpAddr::V6(net)) if bits <= 128 => {
            let mask = u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0);
            u128::from(ip) & mask == u128::from(net) & mask
        }
        _ => false,
    }
}

/// ASCII case-insensitive `ends_with`.
fn ends_with_ignore_case(s: &str, suffix: &str) -> bool {
    s.len() >= suffix.len() && s.as_bytes()[s.len() - suffix.len()..].eq_ignore_ascii_case(suffix.as_bytes())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    type Vars<'a> = &'a [(&'a str, &'a str)];

    /// An environment made of `vars`.
    fn env(vars: &[(&str, &str)]) -> ProxyEnv {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        ProxyEnv::from_fn(move |name| map.get(name).cloned())
    }

    #[test]
    fn environment_selection_follows_curl() {
        // (variables, secure, host, expected proxy)
        let table: &[(Vars<'_>, bool, &str, Option<&str>)] = &[
            (&[], false, "example.com", None),
            (&[], true, "example.com", None),
            // wss: HTTPS_PROXY, then ALL_PROXY; never HTTP_PROXY.
            (&[("HTTPS_PROXY", "s:1")], true, "example.com", Some("s:1")),
            (&[("https_proxy", "s:1")], true, "example.com", Some("s:1")),
            (&[("HTTP_PROXY", "h:1")], true, "example.com", None),
            (&[("ALL_PROXY", "a:1")], true, "example.com", Some("a:1")),
            (&[("all_proxy", "a:1")], true, "example.com", Some("a:1")),
            (&[("HTTPS_PROXY", "s:1"), ("ALL_PROXY", "a:1")], true, "example.com", Some("s:1")),
            // ws: HTTP_PROXY, then ALL_PROXY; never HTTPS_PROXY.
            (&[("HTTP_PROXY", "h:1")], false, "example.com", Some("h:1")),
            (&[("http_proxy", "h:1")], false, "example.com", Some("h:1")),
            (&[("HTTPS_PROXY", "s:1")], false, "example.com", None),
            (&[("ALL_PROXY", "a:1")], false, "example.com", Some("a:1")),
            (&[("HTTP_PROXY", "h:1"), ("all_proxy", "a:1")], false, "example.com", Some("h:1")),
            // Lower case wins over upper case.
            (&[("HTTPS_PROXY", "S:1"), ("https_proxy", "s:1")], true, "example.com", Some("s:1")),
            (&[("HTTP_PROXY", "H:1"), ("http_proxy", "h:1")], false, "example.com", Some("h:1")),
            (&[("ALL_PROXY", "A:1"), ("all_proxy", "a:1")], false, "example.com", Some("a:1")),
            // Empty or blank counts as unset.
            (&[("https_proxy", ""), ("HTTPS_PROXY", "S:1")], true, "example.com", Some("S:1")),
            (&[("https_proxy", " "), ("ALL_PROXY", "a:1")], true, "example.com", Some("a:1")),
            (&[("https_proxy", " s:1 ")], true, "example.com", Some("s:1")),
            // CGI: HTTP_PROXY may be a request header (httpoxy).
            (&[("HTTP_PROXY", "h:1"), ("REQUEST_METHOD", "GET")], false, "example.com", None),
            (&[("http_proxy", "h:1"), ("REQUEST_METHOD", "GET")], false, "example.com", Some("h:1")),
            (&[("HTTPS_PROXY", "s:1"), ("REQUEST_METHOD", "GET")], true, "example.com", Some("s:1")),
            // NO_PROXY, lower case first.
            (&[("ALL_PROXY", "a:1"), ("NO_PROXY", "example.com")], false, "example.com", None),
            (&[("ALL_PROXY", "a:1"), ("no_proxy", "example.com")], false, "example.com", None),
            (
                &[("ALL_PROXY", "a:1"), ("no_proxy", "other.com"), ("NO_PROXY", "example.com")],
                false,
                "example.com",
                Some("a:1"),
            ),
            (&[("ALL_PROXY", "a:1"), ("NO_PROXY", "*")], true, "example.com", None),
            // Loopback never goes through an environment proxy.
            (&[("ALL_PROXY", "a:1")], false, "localhost", None),
            (&[("ALL_PROXY", "a:1")], false, "LocalHost.", None),
            (&[("ALL_PROXY", "a:1")], false, "app.localhost", None),
            (&[("ALL_PROXY", "a:1")], true, "127.0.0.1", None),
            (&[("ALL_PROXY", "a:1")], true, "127.8.9.10", None),
            (&[("ALL_PROXY", "a:1")], true, "::1", None),
            (&[("ALL_PROXY", "a:1")], true, "10.0.0.1", Some("a:1")),
            (&[("ALL_PROXY", "a:1")], true, "notlocalhost", Some("a:1")),
        ];
        for &(vars, secure, host, expected) in table {
            let port = if secure { 443 } else { 80 };
            assert_eq!(env(vars).proxy_for(secure, host, port).as_deref(), expected, "{vars:?} secure={secure} {host}");
        }
    }

    #[test]
    fn no_proxy_matching() {
        // (NO_PROXY, host, port, bypassed)
        let table: &[(&str, &str, u16, bool)] = &[
            ("", "example.com", 80, false),
            ("*", "example.com", 80, true),
            ("*", "10.1.2.3", 443, true),
            // A name covers itself and its subdomains, in any case.
            ("example.com", "example.com", 80, true),
            ("example.com", "www.example.com", 80, true),
            ("example.com", "a.b.EXAMPLE.com", 80, true),
            ("Example.COM", "example.com", 80, true),
            ("example.com", "notexample.com", 80, false),
            ("example.com", "example.com.evil", 80, false),
            ("ample.com", "example.com", 80, false),
            // A leading dot or "*." is the same domain.
            (".example.com", "example.com", 80, true),
            (".example.com", "www.example.com", 80, true),
            (".example.com", "notexample.com", 80, false),
            ("*.example.com", "www.example.com", 80, true),
            // Trailing dots are ignored.
            ("example.com.", "www.example.com", 80, true),
            ("example.com", "www.example.com.", 80, true),
            // Lists: commas, spaces, empty entries.
            ("a.com, b.com ,,c.com", "x.b.com", 80, true),
            ("a.com,c.com", "b.com", 80, false),
            // A port limits the entry to that port; none matches any port.
            ("example.com:8080", "example.com", 8080, true),
            ("example.com:8080", "example.com", 80, false),
            ("example.com:x", "example.com", 80, false),
            ("example.com", "example.com", 8443, true),
            // IP literals, compared as addresses, never as names.
            ("10.0.0.1", "10.0.0.1", 80, true),
            ("10.0.0.1", "10.0.0.2", 80, false),
            ("10.0.0.1:443", "10.0.0.1", 443, true),
            ("10.0.0.1:443", "10.0.0.1", 80, false),
            ("0.1", "10.0.0.1", 80, false),
            ("::2", "::2", 80, true),
            ("2001:db8::1", "2001:DB8:0::1", 80, true),
            ("[2001:db8::1]", "2001:db8::1", 80, true),
            ("[2001:db8::1]:443", "2001:db8::1", 443, true),
            ("[2001:db8::1]:443", "2001:db8::1", 80, false),
            ("example.com", "10.0.0.1", 80, false),
            // CIDR blocks (curl 7.86).
            ("10.0.0.0/8", "10.200.3.4", 80, true),
            ("10.0.0.0/8", "11.0.0.1", 80, false),
            ("192.168.0.0/16", "192.168.77.1", 80, true),
            ("192.168.1.7/32", "192.168.1.7", 80, true),
            ("0.0.0.0/0", "203.0.113.9", 80, true),
            ("2001:db8::/32", "2001:db8:ffff::1", 80, true),
            ("2001:db8::/32", "2001:db9::1", 80, false),
            ("10.0.0.0/33", "10.0.0.1", 80, false),
            ("10.0.0.0/8", "2001:db8::1", 80, false),
            ("10.0.0.0/8", "ten.example", 80, false),
            // Junk matches nothing.
            (".", "example.com", 80, false),
            ("[::1", "example.com", 80, false),
        ];
        for &(no_proxy, host, port, bypassed) in table {
            assert_eq!(bypasses(no_proxy, host, port), bypassed, "{no_proxy:?} {host}:{port}");
        }
    }

    #[test]
    fn settings_select() {
        let url = WsUrl::parse("wss://example.com/chat").unwrap();
        assert_eq!(ProxySetting::Direct.select(&url), Ok(None));
        let fixed = ProxySetting::Fixed(ProxyUrl::parse("http://p:1"));
        assert_eq!(fixed.select(&url).unwrap().unwrap().host, "p");
        let broken = ProxySetting::Fixed(ProxyUrl::parse("ftp://p:1"));
        assert_eq!(broken.select(&url), Err(HandshakeError::UnsupportedProxyScheme));
        let from_env = ProxySetting::Env(env(&[("HTTPS_PROXY", "http://u:p@q:2/")]));
        let proxy = from_env.select(&url).unwrap().unwrap();
        assert_eq!((proxy.host.as_str(), proxy.port), ("q", 2));
        assert_eq!(proxy.authorization().as_deref(), Some("Basic dTpw"));
        let bad_env = ProxySetting::Env(env(&[("ALL_PROXY", "gopher://q:1080")]));
        assert_eq!(bad_env.select(&url), Err(HandshakeError::UnsupportedProxyScheme));
        // A bypassed host never looks at the proxy URL.
        let bypassed = ProxySetting::Env(env(&[("ALL_PROXY", "gopher://q"), ("NO_PROXY", "example.com")]));
        assert_eq!(bypassed.select(&url), Ok(None));
    }
}
