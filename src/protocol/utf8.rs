//! Incremental UTF-8 validation for text arriving in pieces (RFC 6455 §8.1).
//!
//! A text message may be split across frames, and a frame across reads, at
//! any byte, including inside a multi-byte character. The validator keeps the
//! at most three bytes of an unfinished character between pieces and fails as
//! soon as a piece contains a byte sequence that can never become valid, so a
//! connection is failed at the first bad fragment (Autobahn 6.4.x) rather than
//! at the end of the message.

/// Invalid UTF-8 was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Utf8Error;

/// State carried between the pieces of one text message.
#[derive(Clone, Copy, Debug, Default)]
pub struct Utf8Validator {
    partial: [u8; 4],
    partial_len: u8,
}

impl Utf8Validator {
    /// A validator at the start of a message.
    #[must_use]
    pub const fn new() -> Self {
        Utf8Validator { partial: [0; 4], partial_len: 0 }
    }

    /// Validates the next piece. Succeeds while everything seen so far is
    /// valid UTF-8 or a prefix of it.
    pub fn feed(&mut self, mut data: &[u8]) -> Result<(), Utf8Error> {
        if self.partial_len > 0 {
            let have = usize::from(self.partial_len);
            let need = char_width(self.partial[0]).ok_or(Utf8Error)?;
            let take = (need - have).min(data.len());
            self.partial[have..have + take].copy_from_slice(&data[..take]);
            let pending = &self.partial[..have + take];
            match simdutf8::compat::from_utf8(pending) {
                Ok(_) => self.partial_len = 0,
                Err(e) if e.error_len().is_none() => {
                    self.partial_len = pending.len() as u8;
                    return Ok(());
                }
                Err(_) => return Err(Utf8Error),
            }
            data = &data[take..];
        }
        // The piece may end inside a character (reads and fragments split
        // text anywhere): set that character aside first, so that the rest
        // is validated in one pass of the fast validator.
        let (head, tail) = data.split_at(incomplete_tail_start(data));
        if simdutf8::basic::from_utf8(head).is_err() {
            return Err(Utf8Error);
        }
        if tail.is_empty() {
            return Ok(());
        }
        // The unfinished character must be a valid prefix (no overlong or
        // out-of-range lead): the compat validator reports "ends early".
        match simdutf8::compat::from_utf8(tail) {
            Err(e) if e.error_len().is_none() && e.valid_up_to() == 0 => {
                self.partial[..tail.len()].copy_from_slice(tail);
                self.partial_len = tail.len() as u8;
                Ok(())
            }
            _ => Err(Utf8Error),
        }
    }

    /// Ends the message: fails if it stopped inside a character.
    pub fn finish(&mut self) -> Result<(), Utf8Error> {
        let complete = self.partial_len == 0;
        *self = Utf8Validator::new();
        if complete {
            Ok(())
        } else {
            Err(Utf8Error)
        }
    }

    /// Forgets any state, for reuse on a new message.
    pub fn reset(&mut self) {
        *self = Utf8Validator::new();
    }
}

/// Where a character that the end of `data` cuts short begins: the index of
/// a lead byte among the last three bytes whose width reaches past the end,
/// or `data.len()` when the last character is not cut.
pub(crate) fn incomplete_tail_start(data: &[u8]) -> usize {
    let len = data.len();
    for back in 1..=len.min(3) {
        let byte = data[len - back];
        if byte & 0xC0 != 0x80 {
            let cut = char_width(byte).is_some_and(|width| width > back);
            return if cut { len - back } else { len };
        }
    }
    len
}

/// The encoded width of the character starting with `lead`, or `None` when
/// `lead` cannot start a character.
const fn char_width(lead: u8) -> Option<usize> {
    match lead {
        0x00..=0x7F => Some(1),
        0xC2..=0xDF => Some(2),
        0xE0..=0xEF => Some(3),
        0xF0..=0xF4 => Some(4),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed_split(data: &[u8], at: &[usize]) -> Result<(), Utf8Error> {
        let mut v = Utf8Validator::new();
        let mut start = 0;
        for &end in at.iter().chain(std::iter::once(&data.len())) {
            v.feed(&data[start..end])?;
            start = end;
        }
        v.finish()
    }

    #[test]
    fn every_split_of_valid_text_is_accepted() {
        let text = "Hello-µ@ßöäüàá-UTF-8!! κόσμε 𝄞 \u{10FFFF}".as_bytes();
        for i in 0..=text.len() {
            for j in i..=text.len() {
                assert_eq!(feed_split(text, &[i, j]), Ok(()), "split at {i},{j}");
            }
        }
    }

    #[test]
    fn every_split_of_invalid_text_is_rejected() {
        let cases: &[&[u8]] = &[
            b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited", // surrogate
            b"\xf4\x90\x80\x80",                                               // > U+10FFFF
            b"\xc0\xaf",                                                       // overlong
            b"\xe0\x80\xaf",                                                   // overlong
            b"abc\xff",
            b"\x80",
            b"\xce\xba\xe1", // truncated at end
        ];
        for data in cases {
            for i in 0..=data.len() {
                assert_eq!(feed_split(data, &[i]), Err(Utf8Error), "{data:x?} split at {i}");
            }
        }
    }

    /// Autobahn 6.4.1: the first fragment ending in a prefix that can never
    /// complete (here `F4 90`) fails before the message ends.
    #[test]
    fn fails_fast_inside_a_fragment() {
        let mut v = Utf8Validator::new();
        assert_eq!(v.feed("κόσμε".as_bytes()), Ok(()));
        assert_eq!(v.feed(b"\xf4\x90"), Err(Utf8Error));
        let mut v = Utf8Validator::new();
        assert_eq!(v.feed(b"\xf4"), Ok(()));
        assert_eq!(v.feed(b"\x90"), Err(Utf8Error));
    }
}

#[cfg(test)]
mod tail_tests {
    use super::incomplete_tail_start;

    #[test]
    fn finds_the_cut_character() {
        let table: &[(&[u8], usize)] = &[
            (b"", 0),
            (b"abc", 3),
            (b"ab\xce", 2),
            (b"ab\xce\xba", 4),
            (b"a\xe1\xbd", 1),
            (b"\xf0\x9d\x84", 0),
            (b"\xf0\x9d\x84\x9e", 4),
            (b"ab\x80\x80\x80", 5),
        ];
        for &(data, at) in table {
            assert_eq!(incomplete_tail_start(data), at, "{data:x?}");
        }
    }
}
