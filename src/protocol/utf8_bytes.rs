//! [`Utf8Bytes`]: a cheaply cloneable, immutable UTF-8 string over [`Bytes`].

use std::fmt;
use std::ops::Deref;
use std::str::Utf8Error;

use bytes::Bytes;

/// Validated UTF-8 text stored in a reference-counted [`Bytes`] buffer.
///
/// This is the payload of [`Message::Text`](crate::Message::Text). Cloning is
/// O(1) and never copies the text, so one received message can be handed to
/// many tasks, and a text message can be echoed without re-validation.
///
/// ```
/// use silverback::Utf8Bytes;
///
/// let text = Utf8Bytes::from("héllo");
/// assert_eq!(text.as_str(), "héllo");
/// assert_eq!(text.len(), 6);
/// assert!(Utf8Bytes::try_from(bytes::Bytes::from_static(b"\xff")).is_err());
/// ```
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Utf8Bytes(Bytes);

impl Utf8Bytes {
    /// Creates text from a `'static` string without copying it.
    #[must_use]
    pub const fn from_static(text: &'static str) -> Self {
        Utf8Bytes(Bytes::from_static(text.as_bytes()))
    }

    /// Wraps bytes that the caller has already proven to be UTF-8.
    ///
    /// Crate-internal: the decoder validates incrementally as frames arrive and
    /// calls this once the whole message has passed.
    #[inline]
    pub(crate) fn from_bytes_unchecked(bytes: Bytes) -> Self {
        debug_assert!(simdutf8::basic::from_utf8(&bytes).is_ok());
        Utf8Bytes(bytes)
    }

    /// The text as a string slice (O(1): the bytes were validated once, when
    /// this value was made).
    #[must_use]
    #[allow(unsafe_code)]
    pub fn as_str(&self) -> &str {
        // SAFETY: every constructor of `Utf8Bytes` validates its bytes as
        // UTF-8 (`From<String>`/`From<&str>` take `str`, `TryFrom` checks with
        // simdutf8, `from_bytes_unchecked` is crate-internal and only called by
        // the decoder after its incremental validator accepted the whole
        // message, which a debug assertion re-checks), and `Bytes` is
        // immutable, so the invariant holds for the value's whole life.
        unsafe { std::str::from_utf8_unchecked(&self.0) }
    }

    /// The underlying bytes (O(1), no copy).
    #[must_use]
    #[inline]
    pub fn into_bytes(self) -> Bytes {
        self.0
    }

    /// A borrow of the underlying bytes.
    #[must_use]
    pub fn as_bytes(&self) -> &Bytes {
        &self.0
    }
}

impl Deref for Utf8Bytes {
    type Target = str;

    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for Utf8Bytes {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<[u8]> for Utf8Bytes {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Display for Utf8Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Utf8Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl From<String> for Utf8Bytes {
    fn from(text: String) -> Self {
        Utf8Bytes(Bytes::from(text))
    }
}

impl From<&str> for Utf8Bytes {
    fn from(text: &str) -> Self {
        Utf8Bytes(Bytes::copy_from_slice(text.as_bytes()))
    }
}

impl From<&String> for Utf8Bytes {
    fn from(text: &String) -> Self {
        Utf8Bytes::from(text.as_str())
    }
}

impl From<Utf8Bytes> for Bytes {
    fn from(text: Utf8Bytes) -> Self {
        text.0
    }
}

impl TryFrom<Bytes> for Utf8Bytes {
    type Error = Utf8Error;

    /// Validates `bytes` as UTF-8 without copying them.
    fn try_from(bytes: Bytes) -> Result<Self, Utf8Error> {
        if simdutf8::basic::from_utf8(&bytes).is_err() {
            // Re-run the (slower) compat check only on failure, for its details.
            return Err(std::str::from_utf8(&bytes).unwrap_err());
        }
        Ok(Utf8Bytes(bytes))
    }
}

impl TryFrom<Vec<u8>> for Utf8Bytes {
    type Error = Utf8Error;

    fn try_from(bytes: Vec<u8>) -> Result<Self, Utf8Error> {
        Utf8Bytes::try_from(Bytes::from(bytes))
    }
}

impl PartialEq<str> for Utf8Bytes {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Utf8Bytes {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<String> for Utf8Bytes {
    fn eq(&self, other: &String) -> bool {
        self.as_str() == other.as_str()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_invalid_utf8_and_keeps_valid_without_copy() {
        let raw = Bytes::from_static("κόσμε".as_bytes());
        let text = Utf8Bytes::try_from(raw.clone()).unwrap();
        assert_eq!(text.as_bytes().as_ptr(), raw.as_ptr());
        assert_eq!(text, "κόσμε");
        let err = Utf8Bytes::try_from(Bytes::from_static(b"ab\xc3")).unwrap_err();
        assert_eq!(err.valid_up_to(), 2);
    }

    #[test]
    fn conversions_round_trip() {
        let text = Utf8Bytes::from(String::from("abc"));
        assert_eq!(&*text, "abc");
        assert_eq!(Bytes::from(text.clone()), Bytes::from_static(b"abc"));
        assert_eq!(format!("{text} {text:?}"), "abc \"abc\"");
        assert_eq!(Utf8Bytes::from_static("x"), Utf8Bytes::from("x"));
    }
}
