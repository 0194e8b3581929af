//! Payload masking (RFC 6455 §5.3).
//!
//! `transformed[i] = original[i] ^ key[i % 4]`. The fast path XORs 64-byte
//! blocks against a pre-expanded key (the fixed block size lets the compiler
//! emit SIMD for it with no `unsafe`), then 8-byte words.
//! [`apply_mask_bytewise`] is the obvious
//! scalar twin, kept for tests and benchmarks.

/// The block size of the vectorisable loop.
const BLOCK: usize = 64;

/// Masks (or unmasks) `buf` in place with `key`, as if `buf` started `offset`
/// bytes into the payload. Streaming callers pass how many payload bytes they
/// have already processed.
pub fn apply_mask(buf: &mut [u8], key: [u8; 4], offset: usize) {
    let key = rotate(key, offset);
    let word = u64::from_ne_bytes([key[0], key[1], key[2], key[3], key[0], key[1], key[2], key[3]]);
    let mut blocks = buf.chunks_exact_mut(BLOCK);
    if blocks.len() > 0 {
        let mut pattern = [0u8; BLOCK];
        for part in pattern.chunks_exact_mut(8) {
            part.copy_from_slice(&word.to_ne_bytes());
        }
        for block in &mut blocks {
            for (b, k) in block.iter_mut().zip(pattern.iter()) {
                *b ^= k;
            }
        }
    }
    // What is left (all of a chat-sized payload): whole 8-byte words, then
    // at most 7 bytes. Both start at a multiple of 4: the key phase holds.
    let mut words = blocks.into_remainder().chunks_exact_mut(8);
    for part in &mut words {
        let masked = u64::from_ne_bytes((&*part).try_into().expect("8-byte chunk")) ^ word;
        part.copy_from_slice(&masked.to_ne_bytes());
    }
    for (i, b) in words.into_remainder().iter_mut().enumerate() {
        *b ^= key[i % 4];
    }
}

/// The byte-at-a-time reference implementation of [`apply_mask`].
pub fn apply_mask_bytewise(buf: &mut [u8], key: [u8; 4], offset: usize) {
    for (i, b) in buf.iter_mut().enumerate() {
        *b ^= key[(offset + i) % 4];
    }
}

fn rotate(key: [u8; 4], offset: usize) -> [u8; 4] {
    let s = offset % 4;
    [key[s], key[(s + 1) % 4], key[(s + 2) % 4], key[(s + 3) % 4]]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6455 §5.7: "Hello" masked with 37 fa 21 3d.
    #[test]
    fn rfc_5_7_example() {
        let mut data = *b"Hello";
        apply_mask(&mut data, [0x37, 0xfa, 0x21, 0x3d], 0);
        assert_eq!(&data, b"\x7f\x9f\x4d\x51\x58");
        apply_mask(&mut data, [0x37, 0xfa, 0x21, 0x3d], 0);
        assert_eq!(&data, b"Hello");
    }

    #[test]
    fn fast_path_matches_bytewise_twin_for_every_length_and_offset() {
        let key = [0x12, 0x34, 0x56, 0x78];
        let original: Vec<u8> = (0..300u32).map(|i| (i * 7 + 3) as u8).collect();
        for len in 0..original.len() {
            for offset in 0..5 {
                let mut fast = original[..len].to_vec();
                let mut slow = original[..len].to_vec();
                apply_mask(&mut fast, key, offset);
                apply_mask_bytewise(&mut slow, key, offset);
                assert_eq!(fast, slow, "len {len} offset {offset}");
            }
        }
    }

    #[test]
    fn masking_in_pieces_equals_masking_at_once() {
        let key = [1, 2, 3, 4];
        let mut whole: Vec<u8> = (0..200u8).collect();
        let mut pieces = whole.clone();
        apply_mask(&mut whole, key, 0);
        let (a, rest) = pieces.split_at_mut(7);
        let (b, c) = rest.split_at_mut(70);
        apply_mask(a, key, 0);
        apply_mask(b, key, 7);
        apply_mask(c, key, 77);
        assert_eq!(whole, pieces);
    }
}
