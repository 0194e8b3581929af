//! HTTP/3 framing (RFC 9114 §7), pure: variable-length integers (RFC 9000
//! §16), frame headers, SETTINGS, and the stream types of §6.2.

/// Frame types (RFC 9114 §7.2).
pub(crate) const DATA: u64 = 0x0;
pub(crate) const HEADERS: u64 = 0x1;
pub(crate) const SETTINGS: u64 = 0x4;
pub(crate) const GOAWAY: u64 = 0x7;

/// Unidirectional stream types (RFC 9114 §6.2, RFC 9204 §4.2).
pub(crate) const CONTROL_STREAM: u64 = 0x0;
pub(crate) const QPACK_ENCODER_STREAM: u64 = 0x2;
pub(crate) const QPACK_DECODER_STREAM: u64 = 0x3;

/// Settings (RFC 9114 §7.2.4.1, RFC 9204 §5, RFC 9220 §3).
pub(crate) const SETTINGS_MAX_FIELD_SECTION_SIZE: u64 = 0x6;
pub(crate) const SETTINGS_ENABLE_CONNECT_PROTOCOL: u64 = 0x8;

/// Error codes (RFC 9114 §8.1).
pub(crate) const H3_NO_ERROR: u32 = 0x100;
pub(crate) const H3_STREAM_CREATION_ERROR: u32 = 0x103;
pub(crate) const H3_CLOSED_CRITICAL_STREAM: u32 = 0x104;
pub(crate) const H3_FRAME_UNEXPECTED: u32 = 0x105;
pub(crate) const H3_FRAME_ERROR: u32 = 0x106;
pub(crate) const H3_ID_ERROR: u32 = 0x108;
pub(crate) const H3_SETTINGS_ERROR: u32 = 0x109;
pub(crate) const H3_REQUEST_REJECTED: u32 = 0x10b;
pub(crate) const H3_REQUEST_CANCELLED: u32 = 0x10c;
pub(crate) const H3_MESSAGE_ERROR: u32 = 0x10e;

/// The largest value a variable-length integer holds, 2^62 - 1.
const VARINT_MAX: u64 = (1 << 62) - 1;

/// Appends `value` as a variable-length integer (RFC 9000 §16), in the
/// shortest encoding. Values past 2^62 - 1 are a caller's bug.
pub(crate) fn put_varint(out: &mut Vec<u8>, value: u64) {
    debug_assert!(value <= VARINT_MAX);
    if value < 1 << 6 {
        out.push(value as u8);
    } else if value < 1 << 14 {
        out.extend_from_slice(&(value as u16 | 0x4000).to_be_bytes());
    } else if value < 1 << 30 {
        out.extend_from_slice(&(value as u32 | 0x8000_0000).to_be_bytes());
    } else {
        out.extend_from_slice(&(value | 0xc000_0000_0000_0000).to_be_bytes());
    }
}

/// Reads a variable-length integer from the start of `buf`: the value and
/// the bytes it took, or `None` while `buf` holds only part of it.
pub(crate) fn get_varint(buf: &[u8]) -> Option<(u64, usize)> {
    let first = *buf.first()?;
    // RFC 9000 §16: the two most significant bits give the length.
    let len = 1usize << (first >> 6);
    let bytes = buf.get(..len)?;
    let mut value = u64::from(first & 0x3f);
    for &b in &bytes[1..] {
        value = value << 8 | u64::from(b);
    }
    Some((value, len))
}

/// A frame header (RFC 9114 §7.1): type and payload length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FrameHeader {
    /// The frame type.
    pub(crate) kind: u64,
    /// The payload length.
    pub(crate) len: u64,
    /// The bytes the header took.
    pub(crate) size: usize,
}

/// Reads a frame header from the start of `buf`; `None` while incomplete.
pub(crate) fn get_frame_header(buf: &[u8]) -> Option<FrameHeader> {
    let (kind, a) = get_varint(buf)?;
    let (len, b) = get_varint(&buf[a..])?;
    Some(FrameHeader { kind, len, size: a + b })
}

/// Appends a frame header of `kind` announcing `len` payload bytes.
pub(crate) fn put_frame_header(out: &mut Vec<u8>, kind: u64, len: u64) {
    put_varint(out, kind);
    put_varint(out, len);
}

/// Whether a frame of `kind` is one of the reserved ("grease") types of RFC
/// 9114 §7.2.8, or any other type unknown to us: §9 says to ignore them.
pub(crate) fn is_unknown(kind: u64) -> bool {
    // §7.2.8 and §11.2.1: 0x02, 0x06, 0x08, 0x09 are HTTP/2 types reserved
    // so that they are never used in HTTP/3; receiving one is an error.
    !matches!(kind, 0x0..=0x9 | 0xd)
}

/// The SETTINGS frame (type, length, payload) with these identifier and
/// value pairs (RFC 9114 §7.2.4).
pub(crate) fn settings_frame(settings: &[(u64, u64)]) -> Vec<u8> {
    let mut payload = Vec::new();
    for &(id, value) in settings {
        put_varint(&mut payload, id);
        put_varint(&mut payload, value);
    }
    let mut out = Vec::with_capacity(payload.len() + 4);
    put_frame_header(&mut out, SETTINGS, payload.len() as u64);
    out.extend_from_slice(&payload);
    out
}

/// The GOAWAY frame (RFC 9114 §5.2, §7.2.6) naming `id`: from a server,
/// the first client-initiated bidirectional stream it will not process.
pub(crate) fn goaway_frame(id: u64) -> Vec<u8> {
    let mut payload = Vec::with_capacity(8);
    put_varint(&mut payload, id);
    let mut out = Vec::with_capacity(payload.len() + 2);
    put_frame_header(&mut out, GOAWAY, payload.len() as u64);
    out.extend_from_slice(&payload);
    out
}

/// The identifier a GOAWAY payload carries: one variable-length integer
/// filling the payload exactly; `None` otherwise (H3_FRAME_ERROR).
pub(crate) fn parse_goaway(payload: &[u8]) -> Option<u64> {
    match get_varint(payload)? {
        (id, used) if used == payload.len() => Some(id),
        _ => None,
    }
}

/// The pairs of a SETTINGS payload; `None` for a malformed one (a cut
/// integer, or an identifier twice: §7.2.4 "the same identifier MUST NOT
/// occur more than once").
pub(crate) fn parse_settings(mut payload: &[u8]) -> Option<Vec<(u64, u64)>> {
    let mut out: Vec<(u64, u64)> = Vec::new();
    while !payload.is_empty() {
        let (id, a) = get_varint(payload)?;
        let (value, b) = get_varint(&payload[a..])?;
        if out.iter().any(|&(seen, _)| seen == id) {
            return None;
        }
        out.push((id, value));
        payload = &payload[a + b..];
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_of_rfc9000_appendix_a1() {
        let cases: [(&[u8], u64); 4] = [
            (&[0xc2, 0x19, 0x7c, 0x5e, 0xff, 0x14, 0xe8, 0x8c], 151_288_809_941_952_652),
            (&[0x9d, 0x7f, 0x3e, 0x7d], 494_878_333),
            (&[0x7b, 0xbd], 15_293),
            (&[0x25], 37),
        ];
        for (bytes, value) in cases {
            assert_eq!(get_varint(bytes), Some((value, bytes.len())));
            let mut out = Vec::new();
            put_varint(&mut out, value);
            assert_eq!(out, bytes);
            assert_eq!(get_varint(&bytes[..bytes.len() - 1]), None);
        }
        // A non-shortest encoding reads the same value.
        assert_eq!(get_varint(&[0x40, 0x25]), Some((37, 2)));
    }

    #[test]
    fn frame_headers_and_settings() {
        let frame = settings_frame(&[(SETTINGS_ENABLE_CONNECT_PROTOCOL, 1), (SETTINGS_MAX_FIELD_SECTION_SIZE, 16384)]);
        let header = get_frame_header(&frame).unwrap();
        assert_eq!((header.kind, header.size), (SETTINGS, 2));
        assert_eq!(header.len as usize, frame.len() - 2);
        let pairs = parse_settings(&frame[2..]).unwrap();
        assert_eq!(pairs, [(SETTINGS_ENABLE_CONNECT_PROTOCOL, 1), (SETTINGS_MAX_FIELD_SECTION_SIZE, 16384)]);
        assert_eq!(parse_settings(&[8, 1, 8, 0]), None, "repeated identifier");
        assert_eq!(parse_settings(&[8]), None, "cut");
        assert_eq!(get_frame_header(&[0]), None);
        assert!(is_unknown(0x21) && !is_unknown(DATA) && !is_unknown(0x7));
    }

    #[test]
    fn goaway_frames() {
        assert_eq!(goaway_frame(0), [0x07, 0x01, 0x00]);
        let frame = goaway_frame(400);
        let header = get_frame_header(&frame).unwrap();
        assert_eq!((header.kind, header.len, header.size), (GOAWAY, 2, 2));
        assert_eq!(parse_goaway(&frame[2..]), Some(400));
        assert_eq!(parse_goaway(&[]), None, "empty");
        assert_eq!(parse_goaway(&[0x41]), None, "cut");
        assert_eq!(parse_goaway(&[0x04, 0x00]), None, "trailing byte");
    }
}
