//! `Sec-WebSocket-Key` and `Sec-WebSocket-Accept` (RFC 6455 §1.3, §4.1,
//! §4.2.2).

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use sha1::{Digest, Sha1};

/// The GUID every server appends to the client's key (RFC 6455 §1.3).
const GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// A fresh client key: 16 random bytes in base64, 24 characters (RFC 6455
/// §4.1: "a randomly selected 16-byte value ... base64-encoded").
pub(crate) fn generate_key() -> String {
    STANDARD.encode(rand::random::<[u8; 16]>())
}

/// Whether `key` is the base64 encoding of exactly 16 bytes (RFC 6455
/// §4.2.1 item 5), in canonical form with padding.
pub(crate) fn is_valid_key(key: &[u8]) -> bool {
    // 16 bytes always encode to 22 characters plus "==".
    if key.len() != 24 {
        return false;
    }
    let mut decoded = [0u8; 18];
    matches!(STANDARD.decode_slice(key, &mut decoded), Ok(16))
}

/// The `Sec-WebSocket-Accept` value for a key: base64(SHA-1(key ++ GUID))
/// (RFC 6455 §4.2.2 item 5.4). `key` is the header value as received, with
/// surrounding whitespace removed.
pub(crate) fn accept_key(key: &[u8]) -> String {
    let mut sha1 = Sha1::new();
    sha1.update(key);
    sha1.update(GUID);
    STANDARD.encode(sha1.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6455_examples() {
        // RFC 6455 §1.3 and §4.2.2.
        let table: &[(&str, &str)] = &[
            ("dGhlIHNhbXBsZSBub25jZQ==", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
            // A second pair, checked against an independent implementation.
            ("x3JJHMbDL1EzLkh9GBhXDw==", "HSmrc0sMlYUkAGmm5OPpG2HaGWk="),
        ];
        for (key, accept) in table {
            assert!(is_valid_key(key.as_bytes()), "{key}");
            assert_eq!(accept_key(key.as_bytes()), *accept, "{key}");
        }
    }

    #[test]
    fn key_validation() {
        let table: &[(&[u8], bool)] = &[
            (b"dGhlIHNhbXBsZSBub25jZQ==", true),
            (b"AAAAAAAAAAAAAAAAAAAAAA==", true),
            (b"", false),
            (b"dGhlIHNhbXBsZSBub25jZQ", false),    // no padding
            (b"dGhlIHNhbXBsZSBub25jZQ=", false),   // short padding
            (b"dGhlIHNhbXBsZSBub25jZQ===", false), // too long
            (b"dGhlIHNhbXBsZSBub25jZR==", false),  // non-canonical bits
            (b"dGhlIHNhbXBsZSBub25j!!==", false),  // not base64
            (b"c2hvcnQ=", false),                  // 5 bytes
            (b"AAAAAAAAAAAAAAAAAAAAAAAA", false),  // 18 bytes
        ];
        for (key, valid) in table {
            assert_eq!(is_valid_key(key), *valid, "{:?}", String::from_utf8_lossy(key));
        }
    }

    #[test]
    fn generated_keys_are_valid_and_fresh() {
        let a = generate_key();
        let b = generate_key();
        assert!(is_valid_key(a.as_bytes()));
        assert!(is_valid_key(b.as_bytes()));
        assert_ne!(a, b);
    }
}
