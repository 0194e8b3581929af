//! QPACK (RFC 9204) without a dynamic table, pure: field sections are
//! encoded with literal names and values (no Huffman, no table state), and
//! decoded with the static table and Huffman-coded strings. Both sides
//! announce `SETTINGS_QPACK_MAX_TABLE_CAPACITY` 0 (the default, RFC 9204
//! §5), so a peer may not refer to a dynamic table: a section that does is
//! refused.

use std::sync::OnceLock;

use super::tables::{HUFFMAN_LENGTHS, STATIC_TABLE};

/// Why a field section could not be decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum QpackError {
    /// Malformed: a cut integer or string, a bad Huffman code, an index
    /// past the static table (RFC 9204 §2.2.3: a decompression failure).
    Malformed,
    /// A reference to the dynamic table, which we never allow.
    DynamicReference,
    /// The decoded fields are larger than the limit (RFC 9114 §4.2.2).
    TooLarge,
}

/// One decoded field line: name and value as sent.
pub(crate) type Field = (Vec<u8>, Vec<u8>);

/// Encodes a field section: the prefix (Required Insert Count 0, Base 0),
/// then each field as a literal field line with a literal name (§4.5.6),
/// neither name nor value Huffman-coded. Names must be lowercase.
pub(crate) fn encode<'f>(fields: impl IntoIterator<Item = (&'f [u8], &'f [u8])>) -> Vec<u8> {
    let mut out = vec![0, 0];
    for (name, value) in fields {
        // 001N H + name length with a 3-bit prefix; N = 0 (may be indexed
        // by intermediaries), H = 0.
        put_int(&mut out, 0x20, 3, name.len());
        out.extend_from_slice(name);
        // H = 0 + value length with a 7-bit prefix.
        put_int(&mut out, 0x00, 7, value.len());
        out.extend_from_slice(value);
    }
    out
}

/// Decodes a field section, refusing one whose fields take more than
/// `max_size` bytes, counting each as name, value and 32 (RFC 9114
/// §4.2.2).
pub(crate) fn decode(block: &[u8], max_size: usize) -> Result<Vec<Field>, QpackError> {
    let mut rest = block;
    // §4.5.1: Required Insert Count (8-bit prefix) and Base (sign bit and
    // a 7-bit prefix). A count other than 0 needs a dynamic table.
    let (required, used) = get_int(rest, 8)?;
    if required != 0 {
        return Err(QpackError::DynamicReference);
    }
    rest = &rest[used..];
    let (_delta_base, used) = get_int(rest, 7)?;
    rest = &rest[used..];
    let mut fields = Vec::new();
    let mut size = 0usize;
    while let Some(&first) = rest.first() {
        let field = if first & 0x80 != 0 {
            // §4.5.2: indexed field line, 1 T index(6).
            let (index, used) = get_int(rest, 6)?;
            rest = &rest[used..];
            let (name, value) = static_entry(first & 0x40 != 0, index)?;
            (name.as_bytes().to_vec(), value.as_bytes().to_vec())
        } else if first & 0x40 != 0 {
            // §4.5.4: literal with a name reference, 01 N T index(4).
            let (index, used) = get_int(rest, 4)?;
            rest = &rest[used..];
            let (name, _) = static_entry(first & 0x10 != 0, index)?;
            let (value, used) = get_string(rest, 7)?;
            rest = &rest[used..];
            (name.as_bytes().to_vec(), value)
        } else if first & 0x20 != 0 {
            // §4.5.6: literal with a literal name, 001 N H length(3).
            let (name, used) = get_string(rest, 3)?;
            rest = &rest[used..];
            let (value, used) = get_string(rest, 7)?;
            rest = &rest[used..];
            (name, value)
        } else {
            // §4.5.3 and §4.5.5: post-base references, dynamic only.
            return Err(QpackError::DynamicReference);
        };
        size = size.saturating_add(field.0.len() + field.1.len() + 32);
        if size > max_size {
            return Err(QpackError::TooLarge);
        }
        fields.push(field);
    }
    Ok(fields)
}

/// The static table's entry `index`; `static_table` false (T = 0) names
/// the dynamic table.
fn static_entry(static_table: bool, index: u64) -> Result<(&'static str, &'static str), QpackError> {
    if !static_table {
        return Err(QpackError::DynamicReference);
    }
    let index = usize::try_from(index).map_err(|_| QpackError::Malformed)?;
    STATIC_TABLE.get(index).copied().ok_or(QpackError::Malformed)
}

/// Appends `value` as an integer with an `n`-bit prefix (RFC 7541 §5.1),
/// the bits above the prefix in the first byte taken from `flags`.
fn put_int(out: &mut Vec<u8>, flags: u8, n: u32, value: usize) {
    let max = (1usize << n) - 1;
    if value < max {
        out.push(flags | value as u8);
        return;
    }
    out.push(flags | max as u8);
    let mut rest = value - max;
    while rest >= 0x80 {
        out.push(0x80 | (rest & 0x7f) as u8);
        rest >>= 7;
    }
    out.push(rest as u8);
}

/// Reads an integer with an `n`-bit prefix from the start of `buf`: the
/// value and the bytes it took. At most 62 bits (RFC 9204 §4.1.1).
fn get_int(buf: &[u8], n: u32) -> Result<(u64, usize), QpackError> {
    let first = *buf.first().ok_or(QpackError::Malformed)?;
    let max = (1u64 << n) - 1;
    let mut value = u64::from(first) & max;
    if value < max {
        return Ok((value, 1));
    }
    for (at, &b) in buf.iter().enumerate().skip(1) {
        let shift = 7 * (at as u32 - 1);
        if shift > 56 {
            return Err(QpackError::Malformed);
        }
        value = value.checked_add(u64::from(b & 0x7f) << shift).ok_or(QpackError::Malformed)?;
        if b & 0x80 == 0 {
            return Ok((value, at + 1));
        }
    }
    Err(QpackError::Malformed)
}

/// Reads a string literal whose length has an `n`-bit prefix, the bit
/// above the prefix being the Huffman flag (RFC 9204 §4.1.2).
fn get_string(buf: &[u8], n: u32) -> Result<(Vec<u8>, usize), QpackError> {
    let huffman = buf.first().is_some_and(|b| b & (1 << n) != 0);
    let (len, used) = get_int(buf, n)?;
    let len = usize::try_from(len).map_err(|_| QpackError::Malformed)?;
    let end = used.checked_add(len).ok_or(QpackError::Malformed)?;
    let raw = buf.get(used..end).ok_or(QpackError::Malformed)?;
    let value = if huffman { huffman_decode(raw)? } else { raw.to_vec() };
    Ok((value, end))
}

/// The canonical Huffman code of RFC 7541 Appendix B, for decoding: for
/// each code length, the first code of that length and where its symbols
/// start in `symbols` (sorted by length, then value).
struct Canonical {
    first_code: [u32; 31],
    first_at: [usize; 31],
    count: [usize; 31],
    symbols: Vec<u16>,
}

/// The code, built once from the lengths.
fn canonical() -> &'static Canonical {
    static CODE: OnceLock<Canonical> = OnceLock::new();
    CODE.get_or_init(|| {
        let mut symbols: Vec<u16> = (0..257).collect();
        symbols.sort_by_key(|&s| (HUFFMAN_LENGTHS[s as usize], s));
        let mut code = Canonical { first_code: [0; 31], first_at: [0; 31], count: [0; 31], symbols };
        for &s in &code.symbols {
            code.count[HUFFMAN_LENGTHS[s as usize] as usize] += 1;
        }
        let (mut next, mut at) = (0u32, 0usize);
        for len in 1..31 {
            next <<= 1;
            code.first_code[len] = next;
            code.first_at[len] = at;
            next += code.count[len] as u32;
            at += code.count[len];
        }
        code
    })
}

/// Decodes a Huffman-coded string (RFC 7541 §5.2): padding is at most 7
/// bits, all ones (a prefix of EOS); EOS itself is an error.
fn huffman_decode(raw: &[u8]) -> Result<Vec<u8>, QpackError> {
    let code = canonical();
    let mut out = Vec::with_capacity(raw.len() * 8 / 5);
    let (mut value, mut len) = (0u32, 0usize);
    for &byte in raw {
        for bit in (0..8).rev() {
            value = value << 1 | u32::from(byte >> bit & 1);
            len += 1;
            if len > 30 {
                return Err(QpackError::Malformed);
            }
            let offset = value.wrapping_sub(code.first_code[len]) as usize;
            if value >= code.first_code[len] && offset < code.count[len] {
                match code.symbols[code.first_at[len] + offset] {
                    256 => return Err(QpackError::Malformed),
                    symbol => out.push(symbol as u8),
                }
                (value, len) = (0, 0);
            }
        }
    }
    if len > 7 || value != (1 << len) - 1 {
        return Err(QpackError::Malformed);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Huffman-encodes with the canonical code (for the tests).
    fn huffman_encode(text: &[u8]) -> Vec<u8> {
        let code = canonical();
        let mut bits: Vec<bool> = Vec::new();
        for &b in text {
            let len = HUFFMAN_LENGTHS[b as usize] as usize;
            let rank = code.symbols[code.first_at[len]..].iter().position(|&s| s == u16::from(b)).unwrap();
            let value = code.first_code[len] + rank as u32;
            bits.extend((0..len).rev().map(|i| value >> i & 1 == 1));
        }
        while bits.len() % 8 != 0 {
            bits.push(true);
        }
        bits.chunks(8).map(|c| c.iter().fold(0u8, |acc, &b| acc << 1 | u8::from(b))).collect()
    }

    #[test]
    fn huffman_examples_of_rfc7541_c4() {
        // C.4.1: "www.example.com".
        let www = [0xf1, 0xe3, 0xc2, 0xe5, 0xf2, 0x3a, 0x6b, 0xa0, 0xab, 0x90, 0xf4, 0xff];
        assert_eq!(huffman_decode(&www).unwrap(), b"www.example.com");
        assert_eq!(huffman_encode(b"www.example.com"), www);
        // C.4.2: "no-cache"; C.4.3: "custom-key".
        assert_eq!(huffman_decode(&[0xa8, 0xeb, 0x10, 0x64, 0x9c, 0xbf]).unwrap(), b"no-cache");
        assert_eq!(huffman_decode(&[0x25, 0xa8, 0x49, 0xe9, 0x5b, 0xa9, 0x7d, 0x7f]).unwrap(), b"custom-key");
        // Padding that is not all ones, or longer than 7 bits.
        assert_eq!(
            huffman_decode(&[0xf1, 0xe3, 0xc2, 0xe5, 0xf2, 0x3a, 0x6b, 0xa0, 0xab, 0x90, 0xf4, 0xfe]),
            Err(QpackError::Malformed)
        );
        assert_eq!(huffman_decode(&[0xff]), Err(QpackError::Malformed));
        let all: Vec<u8> = (0..=255).collect();
        assert_eq!(huffman_decode(&huffman_encode(&all)).unwrap(), all);
    }

    #[test]
    fn integers_of_rfc7541_c1() {
        let mut out = Vec::new();
        put_int(&mut out, 0, 5, 10);
        put_int(&mut out, 0, 5, 1337);
        put_int(&mut out, 0, 8, 42);
        assert_eq!(out, [10, 31, 154, 10, 42]);
        assert_eq!(get_int(&out, 5).unwrap(), (10, 1));
        assert_eq!(get_int(&out[1..], 5).unwrap(), (1337, 3));
        assert_eq!(get_int(&[31, 154], 5), Err(QpackError::Malformed));
        assert_eq!(get_int(&[0xff; 12], 8), Err(QpackError::Malformed));
    }

    #[test]
    fn sections_round_trip_and_static_references() {
        let fields: [(&[u8], &[u8]); 3] =
            [(b":method", b"CONNECT"), (b":protocol", b"websocket"), (b"x-long", &[b'a'; 300])];
        let block = encode(fields);
        let decoded = decode(&block, 16 * 1024).unwrap();
        assert_eq!(decoded.len(), 3);
        assert_eq!(decoded[1], (b":protocol".to_vec(), b"websocket".to_vec()));
        assert_eq!(decoded[2].1.len(), 300);
        assert_eq!(decode(&block, 100), Err(QpackError::TooLarge));
        // Indexed static 25 (":status" "200"); name reference static 15
        // (":method", 15 takes a second byte past the 4-bit prefix) with a
        // Huffman value; static 99 does not exist.
        let connect = huffman_encode(b"CONNECT");
        let mut block = vec![0, 0, 0xc0 | 25, 0x50 | 15, 0, 0x80 | connect.len() as u8];
        block.extend(connect);
        let decoded = decode(&block, 1024).unwrap();
        assert_eq!(decoded, [(b":status".to_vec(), b"200".to_vec()), (b":method".to_vec(), b"CONNECT".to_vec())]);
        assert_eq!(decode(&[0, 0, 0xc0 | 63, 36], 1024), Err(QpackError::Malformed));
        // Dynamic references: a Required Insert Count, T = 0, post-base.
        assert_eq!(decode(&[1, 0, 0x80], 1024), Err(QpackError::DynamicReference));
        assert_eq!(decode(&[0, 0, 0x80], 1024), Err(QpackError::DynamicReference));
        assert_eq!(decode(&[0, 0, 0x10], 1024), Err(QpackError::DynamicReference));
        assert_eq!(decode(&[0, 0, 0x23, b'a'], 1024), Err(QpackError::Malformed));
    }
}
