//! Close codes and the close frame payload (RFC 6455 §5.5.1, §7.4).

use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};

use crate::protocol::ProtocolError;
use crate::protocol::Utf8Bytes;

/// A close status code (RFC 6455 §7.4), an open newtype over `u16`.
///
/// Named constants cover the registered codes; any other value can be built
/// with `CloseCode::from(n)`. Whether a code may appear on the wire is
/// answered by [`CloseCode::is_allowed_on_wire`].
///
/// ```
/// use silverback::CloseCode;
///
/// assert_eq!(u16::from(CloseCode::NORMAL), 1000);
/// assert!(CloseCode::from(4000).is_allowed_on_wire());
/// assert!(!CloseCode::NO_STATUS.is_allowed_on_wire());
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CloseCode(u16);

impl CloseCode {
    /// 1000: the purpose of the connection has been fulfilled.
    pub const NORMAL: CloseCode = CloseCode(1000);
    /// 1001: the endpoint is going away (server shutdown, page navigation).
    pub const GOING_AWAY: CloseCode = CloseCode(1001);
    /// 1002: the peer violated the protocol.
    pub const PROTOCOL_ERROR: CloseCode = CloseCode(1002);
    /// 1003: the endpoint received a data type it cannot accept.
    pub const UNSUPPORTED_DATA: CloseCode = CloseCode(1003);
    /// 1005: no status code was present. Never sent on the wire.
    pub const NO_STATUS: CloseCode = CloseCode(1005);
    /// 1006: the connection closed without a close frame. Never sent on the wire.
    pub const ABNORMAL: CloseCode = CloseCode(1006);
    /// 1007: a message's data was inconsistent with its type (bad UTF-8).
    pub const INVALID_PAYLOAD: CloseCode = CloseCode(1007);
    /// 1008: a message violated the endpoint's policy.
    pub const POLICY_VIOLATION: CloseCode = CloseCode(1008);
    /// 1009: a message was too big to process.
    pub const MESSAGE_TOO_BIG: CloseCode = CloseCode(1009);
    /// 1010: the client expected the server to negotiate an extension.
    pub const MANDATORY_EXTENSION: CloseCode = CloseCode(1010);
    /// 1011: the server hit an unexpected condition.
    pub const INTERNAL_ERROR: CloseCode = CloseCode(1011);
    /// 1012: the service is restarting (IANA registry).
    pub const SERVICE_RESTART: CloseCode = CloseCode(1012);
    /// 1013: try again later (IANA registry).
    pub const TRY_AGAIN_LATER: CloseCode = CloseCode(1013);
    /// 1014: a gateway received an invalid response (IANA registry).
    pub const BAD_GATEWAY: CloseCode = CloseCode(1014);
    /// 1015: the TLS handshake failed. Never sent on the wire.
    pub const TLS_HANDSHAKE: CloseCode = CloseCode(1015);

    /// Whether this code may be sent or received in a close frame.
    ///
    /// RFC 6455 §7.4.1/§7.4.2: 1000–1003 and 1007–1011 are defined, 1012–1014
    /// are registered with IANA, 3000–3999 are for libraries and frameworks,
    /// 4000–4999 are private. 0–999, 1004–1006, 1015 and 1016–2999 are not
    /// allowed on the wire; 5000 and up are undefined.
    #[must_use]
    pub const fn is_allowed_on_wire(self) -> bool {
        matches!(self.0, 1000..=1003 | 1007..=1014 | 3000..=4999)
    }
}

impl From<u16> for CloseCode {
    fn from(code: u16) -> Self {
        CloseCode(code)
    }
}

impl From<CloseCode> for u16 {
    fn from(code: CloseCode) -> Self {
        code.0
    }
}

impl fmt::Display for CloseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Debug for CloseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match *self {
            CloseCode::NORMAL => "NORMAL",
            CloseCode::GOING_AWAY => "GOING_AWAY",
            CloseCode::PROTOCOL_ERROR => "PROTOCOL_ERROR",
            CloseCode::UNSUPPORTED_DATA => "UNSUPPORTED_DATA",
            CloseCode::NO_STATUS => "NO_STATUS",
            CloseCode::ABNORMAL => "ABNORMAL",
            CloseCode::INVALID_PAYLOAD => "INVALID_PAYLOAD",
            CloseCode::POLICY_VIOLATION => "POLICY_VIOLATION",
            CloseCode::MESSAGE_TOO_BIG => "MESSAGE_TOO_BIG",
            CloseCode::MANDATORY_EXTENSION => "MANDATORY_EXTENSION",
            CloseCode::INTERNAL_ERROR => "INTERNAL_ERROR",
            CloseCode::SERVICE_RESTART => "SERVICE_RESTART",
            CloseCode::TRY_AGAIN_LATER => "TRY_AGAIN_LATER",
            CloseCode::BAD_GATEWAY => "BAD_GATEWAY",
            CloseCode::TLS_HANDSHAKE => "TLS_HANDSHAKE",
            _ => return write!(f, "CloseCode({})", self.0),
        };
        write!(f, "CloseCode::{name}({})", self.0)
    }
}

/// The code and reason carried by a close frame.
///
/// The reason is at most 123 bytes of UTF-8 on the wire (a control frame's
/// payload is at most 125 bytes, two of which are the code).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CloseFrame {
    /// The status code.
    pub code: CloseCode,
    /// A human-readable reason, possibly empty.
    pub reason: Utf8Bytes,
}

impl CloseFrame {
    /// The longest reason that fits in a control frame, in bytes.
    pub const MAX_REASON_LEN: usize = 123;

    /// A close frame with the given code and reason.
    #[must_use]
    pub fn new(code: CloseCode, reason: impl Into<Utf8Bytes>) -> Self {
        CloseFrame { code, reason: reason.into() }
    }

    /// A `1000 Normal Closure` frame with an empty reason.
    #[must_use]
    pub fn normal() -> Self {
        CloseFrame::new(CloseCode::NORMAL, Utf8Bytes::default())
    }
}

/// Parses a received close payload (RFC 6455 §5.5.1).
///
/// An empty payload means "no status" (`None`). A one-byte payload, a code not
/// allowed on the wire (§7.4) or a reason that is not UTF-8 (§5.5.1: "the data
/// ... is not guaranteed to be human readable" but "MUST be UTF-8") is an
/// error.
pub fn parse_close_payload(payload: Bytes) -> Result<Option<CloseFrame>, ProtocolError> {
    match payload.len() {
        0 => Ok(None),
        1 => Err(ProtocolError::InvalidClosePayload),
        _ => {
            let code = CloseCode(u16::from_be_bytes([payload[0], payload[1]]));
            if !code.is_allowed_on_wire() {
                return Err(ProtocolError::InvalidCloseCode(code.0));
            }
            let reason = Utf8Bytes::try_from(payload.slice(2..)).map_err(|_| ProtocolError::InvalidUtf8)?;
            Ok(Some(CloseFrame { code, reason }))
        }
    }
}

/// Encodes a close payload: the code in network order, then the reason,
/// truncated at a character boundary to fit a control frame.
///
/// Codes that must never be sent (1005, 1006, 1015, …) are replaced by an empty
/// payload, which the peer reads as "no status" (RFC 6455 §7.4.1).
pub fn encode_close_payload(frame: Option<&CloseFrame>) -> Bytes {
    let Some(frame) = frame else {
        return Bytes::new();
    };
    if !frame.code.is_allowed_on_wire() {
        return Bytes::new();
    }
    let reason = truncate_at_char_boundary(frame.reason.as_str(), CloseFrame::MAX_REASON_LEN);
    let mut out = BytesMut::with_capacity(2 + reason.len());
    out.put_u16(frame.code.0);
    out.put_slice(reason.as_bytes());
    out.freeze()
}

fn truncate_at_char_boundary(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_ranges_follow_rfc_7_4() {
        let table: &[(u16, bool)] = &[
            (0, false),
            (999, false),
            (1000, true),
            (1001, true),
            (1002, true),
            (1003, true),
            (1004, false),
            (1005, false),
            (1006, false),
            (1007, true),
            (1011, true),
            (1012, true),
            (1014, true),
            (1015, false),
            (1016, false),
            (2999, false),
            (3000, true),
            (3999, true),
            (4000, true),
            (4999, true),
            (5000, false),
            (65535, false),
        ];
        for &(code, allowed) in table {
            assert_eq!(CloseCode(code).is_allowed_on_wire(), allowed, "code {code}");
        }
    }

    #[test]
    fn parses_close_payloads() {
        assert_eq!(parse_close_payload(Bytes::new()), Ok(None));
        assert_eq!(parse_close_payload(Bytes::from_static(b"\x03")), Err(ProtocolError::InvalidClosePayload));
        assert_eq!(
            parse_close_payload(Bytes::from_static(b"\x03\xe8bye")),
            Ok(Some(CloseFrame::new(CloseCode::NORMAL, "bye")))
        );
        assert_eq!(parse_close_payload(Bytes::from_static(b"\x03\xed")), Err(ProtocolError::InvalidCloseCode(1005)));
        assert_eq!(parse_close_payload(Bytes::from_static(b"\x03\xe8\xce\xba\xe1")), Err(ProtocolError::InvalidUtf8));
    }

    #[test]
    fn encodes_and_truncates_reasons() {
        assert!(encode_close_payload(None).is_empty());
        let abnormal = CloseFrame::new(CloseCode::ABNORMAL, "x");
        assert!(encode_close_payload(Some(&abnormal)).is_empty());
        let long = "é".repeat(100); // 200 bytes
        let frame = CloseFrame::new(CloseCode::GOING_AWAY, long);
        let payload = encode_close_payload(Some(&frame));
        assert_eq!(payload.len(), 2 + 122);
        let back = parse_close_payload(payload).unwrap().unwrap();
        assert_eq!(back.code, CloseCode::GOING_AWAY);
        assert_eq!(back.reason.len(), 122);
    }
}
