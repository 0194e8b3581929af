//! Parsing `Sec-WebSocket-Extensions` header values (RFC 6455 §9.1).
//!
//! ```text
//! Sec-WebSocket-Extensions = extension-list
//! extension-list = 1#extension
//! extension = extension-token *( ";" extension-param )
//! extension-param = token [ "=" (token | quoted-string) ]
//! ```
//!
//! The `#` list rule allows optional whitespace around the commas, and the
//! implied linear whitespace of RFC 2616 allows it around `;` and `=` too.
//! Empty list elements (`a, , b`) are skipped, as RFC 7230 §7 requires of a
//! recipient. A header field may be repeated; its values form one list, in
//! order (RFC 7230 §3.2.2). Names are returned as written: matching them is
//! the caller's business.

use std::borrow::Cow;
use std::{error, fmt};

/// One element of the list: an extension and its parameters, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Extension<'a> {
    /// The extension token, e.g. `permessage-deflate`.
    pub name: &'a str,
    /// Each parameter's name and, when it has one, its value. A quoted value
    /// is returned unquoted.
    pub params: Vec<(&'a str, Option<Cow<'a, str>>)>,
}

/// Why a header value does not follow the grammar.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExtensionSyntaxError {
    /// An extension name, parameter name or value was missing, or began
    /// with a byte that cannot start a token.
    ExpectedToken,
    /// A byte other than `;` or `,` followed an element.
    UnexpectedByte(u8),
    /// A quoted-string had no closing quote.
    UnterminatedQuotedString,
    /// A quoted value was not a token once unquoted: "When using the
    /// quoted-string syntax variant, the value after quoted-string unescaping
    /// MUST conform to the 'token' ABNF" (RFC 6455 §9.1, RFC 7692 §7.1).
    QuotedValueNotToken,
}

impl fmt::Display for ExtensionSyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExtensionSyntaxError::ExpectedToken => f.write_str("expected a token"),
            ExtensionSyntaxError::UnexpectedByte(b) => write!(f, "unexpected byte {b:#04x}"),
            ExtensionSyntaxError::UnterminatedQuotedString => f.write_str("unterminated quoted-string"),
            ExtensionSyntaxError::QuotedValueNotToken => f.write_str("quoted value is not a token"),
        }
    }
}

impl error::Error for ExtensionSyntaxError {}

/// Parses every value of the header field, in order, into one list.
pub fn parse_extensions<'a>(values: &[&'a [u8]]) -> Result<Vec<Extension<'a>>, ExtensionSyntaxError> {
    let mut list = Vec::new();
    for value in values {
        let mut cursor = Cursor { buf: value, at: 0 };
        while let Some(extension) = cursor.next_element()? {
            list.push(extension);
        }
    }
    Ok(list)
}

/// A position in one header value.
struct Cursor<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    /// The next non-empty list element, or `None` at the end of the value.
    fn next_element(&mut self) -> Result<Option<Extension<'a>>, ExtensionSyntaxError> {
        loop {
            self.skip_whitespace();
            match self.peek() {
                None => return Ok(None),
                Some(b',') => self.at += 1,
                Some(_) => break,
            }
        }
        let name = self.token()?;
        let mut params = Vec::new();
        loop {
            self.skip_whitespace();
            match self.peek() {
                None => break,
                Some(b',') => {
                    self.at += 1;
                    break;
                }
                Some(b';') => {
                    self.at += 1;
                    params.push(self.param()?);
                }
                Some(byte) => return Err(ExtensionSyntaxError::UnexpectedByte(byte)),
            }
        }
        Ok(Some(Extension { name, params }))
    }

    /// `token [ "=" (token | quoted-string) ]`, after the `;`.
    fn param(&mut self) -> Result<(&'a str, Option<Cow<'a, str>>), ExtensionSyntaxError> {
        self.skip_whitespace();
        let name = self.token()?;
        self.skip_whitespace();
        if self.peek() != Some(b'=') {
            return Ok((name, None));
        }
        self.at += 1;
        self.skip_whitespace();
        let value = if self.peek() == Some(b'"') { self.quoted_token()? } else { Cow::Borrowed(self.token()?) };
        Ok((name, Some(value)))
    }

    /// A non-empty run of token characters.
    fn token(&mut self) -> Result<&'a str, ExtensionSyntaxError> {
        let start = self.at;
        while self.peek().is_some_and(is_tchar) {
            self.at += 1;
        }
        let token = &self.buf[start..self.at];
        if token.is_empty() {
            return Err(ExtensionSyntaxError::ExpectedToken);
        }
        // Token characters are ASCII, so this cannot fail.
        std::str::from_utf8(token).map_err(|_| ExtensionSyntaxError::ExpectedToken)
    }

    /// A quoted-string whose unescaped content is a token. Borrowed when it
    /// contains no quoted-pair.
    fn quoted_token(&mut self) -> Result<Cow<'a, str>, ExtensionSyntaxError> {
        self.at += 1; // the opening quote
        let start = self.at;
        let mut unescaped: Option<String> = None;
        loop {
            let Some(byte) = self.peek() else {
                return Err(ExtensionSyntaxError::UnterminatedQuotedString);
            };
            self.at += 1;
            match byte {
                b'"' => break,
                b'\\' => {
                    // quoted-pair = "\" CHAR: the escaped byte stands for itself.
                    let Some(escaped) = self.peek() else {
                        return Err(ExtensionSyntaxError::UnterminatedQuotedString);
                    };
                    self.at += 1;
                    if !is_tchar(escaped) {
                        return Err(ExtensionSyntaxError::QuotedValueNotToken);
                    }
                    let owned = unescaped.get_or_insert_with(|| {
                        // Everything before the first backslash is token characters.
                        self.buf[start..self.at - 2].iter().map(|&b| char::from(b)).collect()
                    });
                    owned.push(char::from(escaped));
                }
                byte if is_tchar(byte) => {
                    if let Some(owned) = &mut unescaped {
                        owned.push(char::from(byte));
                    }
                }
                _ => return Err(ExtensionSyntaxError::QuotedValueNotToken),
            }
        }
        match unescaped {
            Some(owned) if !owned.is_empty() => Ok(Cow::Owned(owned)),
            Some(_) => Err(ExtensionSyntaxError::QuotedValueNotToken),
            None => {
                let content = &self.buf[start..self.at - 1];
                if content.is_empty() {
                    return Err(ExtensionSyntaxError::QuotedValueNotToken);
                }
                std::str::from_utf8(content).map(Cow::Borrowed).map_err(|_| ExtensionSyntaxError::QuotedValueNotToken)
            }
        }
    }

    fn peek(&self) -> Option<u8> {
        self.buf.get(self.at).copied()
    }

    /// Optional whitespace: spaces and horizontal tabs.
    fn skip_whitespace(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.at += 1;
        }
    }
}

/// `tchar` of RFC 7230 §3.2.6: any visible ASCII character except the
/// separators `"(),/:;<=>?@[\]{}`.
const fn is_tchar(byte: u8) -> bool {
    matches!(byte,
        b'!' | b'#' | b'$' | b'%' | b'&' | b'\'' | b'*' | b'+' | b'-' | b'.'
        | b'^' | b'_' | b'`' | b'|' | b'~' | b'0'..=b'9' | b'a'..=b'z' | b'A'..=b'Z')
}

#[cfg(test)]
mod tests {
    use super::*;

    type Params = &'static [(&'static str, Option<&'static str>)];
    /// Extensions with owned names and values, for comparing.
    type Owned = Vec<(String, Vec<(String, Option<String>)>)>;
    type Row = (&'static [&'static [u8]], &'static [(&'static str, Params)]);

    fn parsed(values: &[&[u8]]) -> Owned {
        parse_extensions(values)
            .unwrap()
            .into_iter()
            .map(|e| {
                let params = e.params.into_iter().map(|(n, v)| (n.to_owned(), v.map(Cow::into_owned))).collect();
                (e.name.to_owned(), params)
            })
            .collect()
    }

    fn expected(list: &[(&str, Params)]) -> Owned {
        list.iter()
            .map(|(name, params)| {
                let params = params.iter().map(|(n, v)| ((*n).to_owned(), v.map(str::to_owned))).collect();
                ((*name).to_owned(), params)
            })
            .collect()
    }

    #[test]
    fn valid_values() {
        let table: &[Row] = &[
            (&[b""], &[]),
            (&[b" , ,"], &[]),
            (&[b"permessage-deflate"], &[("permessage-deflate", &[])]),
            // The offer Chrome sends.
            (
                &[b"permessage-deflate; client_max_window_bits"],
                &[("permessage-deflate", &[("client_max_window_bits", None)])],
            ),
            // RFC 7692 §5.2's example of two offers, the first preferred.
            (
                &[b"permessage-deflate; client_max_window_bits; server_max_window_bits=10, permessage-deflate; client_max_window_bits"],
                &[
                    ("permessage-deflate", &[("client_max_window_bits", None), ("server_max_window_bits", Some("10"))]),
                    ("permessage-deflate", &[("client_max_window_bits", None)]),
                ],
            ),
            // Whitespace around every separator, tabs included.
            (
                &[b" \tfoo ;\tbar = 1 ; baz ,\tqux ; a=\"b\" "],
                &[("foo", &[("bar", Some("1")), ("baz", None)]), ("qux", &[("a", Some("b"))])],
            ),
            // Several header lines form one list, in order.
            (&[b"a; x=1", b"b", b", c ,"], &[("a", &[("x", Some("1"))]), ("b", &[]), ("c", &[])]),
            // RFC 7692 §7.1: a quoted value, escapes removed.
            (
                &[b"permessage-deflate; server_max_window_bits=\"10\"; x=\"a\\b\\-c\""],
                &[("permessage-deflate", &[("server_max_window_bits", Some("10")), ("x", Some("ab-c"))])],
            ),
        ];
        for &(values, list) in table {
            assert_eq!(parsed(values), expected(list), "{values:?}");
        }
    }

    #[test]
    fn unescaped_quoted_values_borrow() {
        let list = parse_extensions(&[b"x; a=\"plain\"; b=\"es\\caped\"; c=tok"]).unwrap();
        let values: Vec<_> = list[0].params.iter().map(|(_, v)| v.clone().unwrap()).collect();
        assert!(matches!(values[0], Cow::Borrowed("plain")));
        assert!(matches!(&values[1], Cow::Owned(s) if s == "escaped"));
        assert!(matches!(values[2], Cow::Borrowed("tok")));
    }

    #[test]
    fn malformed_values() {
        use ExtensionSyntaxError::*;
        let table: &[(&[u8], ExtensionSyntaxError)] = &[
            (b";", ExpectedToken),
            (b"a;", ExpectedToken),
            (b"a; ;b", ExpectedToken),
            (b"a; =1", ExpectedToken),
            (b"a; b=", ExpectedToken),
            (b"a; b= ,", ExpectedToken),
            (b"a b", UnexpectedByte(b'b')),
            (b"a; b c", UnexpectedByte(b'c')),
            (b"a; b=1 2", UnexpectedByte(b'2')),
            (b"a; b=1=2", UnexpectedByte(b'=')),
            (b"a/b", UnexpectedByte(b'/')),
            (b"a; b=\xff", ExpectedToken),
            (b"\xc3\xa9", ExpectedToken),
            (b"a; b=\"1", UnterminatedQuotedString),
            (b"a; b=\"1\\", UnterminatedQuotedString),
            (b"a; b=\"\"", QuotedValueNotToken),
            (b"a; b=\"1 2\"", QuotedValueNotToken),
            (b"a; b=\"1,2\"", QuotedValueNotToken),
            (b"a; b=\"\\\"\"", QuotedValueNotToken),
            (b"a; b=\"\\ \"", QuotedValueNotToken),
            (b"a; b=\"\xc3\xa9\"", QuotedValueNotToken),
            (b"a\r\n b", UnexpectedByte(b'\r')),
        ];
        for &(value, error) in table {
            assert_eq!(parse_extensions(&[value]), Err(error), "{:?}", String::from_utf8_lossy(value));
        }
        // A bad line spoils the whole header, even after good ones.
        assert_eq!(parse_extensions(&[b"a", b"b c"]), Err(UnexpectedByte(b'c')));
    }

    #[test]
    fn tchar_is_visible_ascii_minus_separators() {
        let separators = b"\"(),/:;<=>?@[\\]{}";
        for byte in 0..=255u8 {
            let expected = (0x21..0x7F).contains(&byte) && !separators.contains(&byte);
            assert_eq!(is_tchar(byte), expected, "{byte:#x}");
        }
    }
}
