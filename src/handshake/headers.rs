//! Header field helpers: comma-separated token lists (RFC 7230 §7) and
//! single-valued fields.

use http::header::AsHeaderName;
use http::HeaderMap;

/// The elements of a comma-separated list over every instance of a header
/// field (RFC 7230 §3.2.2, §7), trimmed of optional whitespace, empty
/// elements skipped.
pub(crate) fn list_elements<'a, K: AsHeaderName>(
    headers: &'a HeaderMap,
    name: K,
) -> impl Iterator<Item = &'a [u8]> + 'a {
    headers
        .get_all(name)
        .into_iter()
        .flat_map(|value| value.as_bytes().split(|&b| b == b','))
        .map(trim)
        .filter(|element| !element.is_empty())
}

/// Whether a list-valued header field contains `token`, compared ASCII
/// case-insensitively (as RFC 6455 §4.1/§4.2.1 ask for `Upgrade` and
/// `Connection`).
pub(crate) fn contains_token<K: AsHeaderName>(headers: &HeaderMap, name: K, token: &str) -> bool {
    list_elements(headers, name).any(|element| element.eq_ignore_ascii_case(token.as_bytes()))
}

/// The value of a header field that must occur exactly once, trimmed;
/// `None` when it is absent or repeated.
pub(crate) fn single_value<K: AsHeaderName>(headers: &HeaderMap, name: K) -> Option<&[u8]> {
    let mut values = headers.get_all(name).into_iter();
    match (values.next(), values.next()) {
        (Some(value), None) => Some(trim(value.as_bytes())),
        _ => None,
    }
}

/// Whether `s` is an HTTP token (RFC 7230 §3.2.6), the syntax of a
/// subprotocol name (RFC 6455 §4.1).
pub(crate) fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// `bytes` without leading and trailing spaces and tabs (RFC 7230 OWS).
pub(crate) fn trim(bytes: &[u8]) -> &[u8] {
    let is_ows = |b: &u8| *b == b' ' || *b == b'\t';
    let start = bytes.iter().position(|b| !is_ows(b)).unwrap_or(bytes.len());
    let end = bytes.iter().rposition(|b| !is_ows(b)).map_or(start, |i| i + 1);
    &bytes[start..end]
}

#[cfg(test)]
mod tests {
    use http::header::{CONNECTION, UPGRADE};
    use http::HeaderValue;

    use super::*;

    fn map(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(*name, HeaderValue::from_static(value));
        }
        headers
    }

    #[test]
    fn tokens_in_lists() {
        let table: &[(&[(&str, &str)], bool)] = &[
            (&[("connection", "Upgrade")], true),
            (&[("connection", "upgrade")], true),
            (&[("connection", "UPGRADE")], true),
            (&[("connection", "keep-alive, Upgrade")], true),
            (&[("connection", "keep-alive,upgrade ,close")], true),
            (&[("connection", "keep-alive"), ("connection", "Upgrade")], true),
            (&[("connection", "\tupgrade\t")], true),
            (&[("connection", "keep-alive")], false),
            (&[("connection", "upgraded")], false),
            (&[("connection", "up grade")], false),
            (&[("connection", "")], false),
            (&[], false),
        ];
        for (pairs, expected) in table {
            assert_eq!(contains_token(&map(pairs), CONNECTION, "upgrade"), *expected, "{pairs:?}");
        }
        assert!(contains_token(&map(&[("upgrade", "h2c, WebSocket")]), UPGRADE, "websocket"));
    }

    #[test]
    fn single_values() {
        assert_eq!(single_value(&map(&[("a", " x ")]), "a"), Some(&b"x"[..]));
        assert_eq!(single_value(&map(&[("a", "x"), ("a", "y")]), "a"), None);
        assert_eq!(single_value(&map(&[]), "a"), None);
    }

    #[test]
    fn tokens() {
        for good in ["chat", "v1.json", "graphql-ws", "a_b~c"] {
            assert!(is_token(good), "{good}");
        }
        for bad in ["", "a b", "a,b", "a/b", "é", "a\"b"] {
            assert!(!is_token(bad), "{bad}");
        }
    }

    #[test]
    fn trims_ows() {
        let table: &[(&[u8], &[u8])] = &[(b"", b""), (b"  ", b""), (b" a ", b"a"), (b"\ta b\t", b"a b")];
        for (input, output) in table {
            assert_eq!(trim(input), *output);
        }
    }
}
