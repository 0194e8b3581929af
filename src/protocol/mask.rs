//! Payload masking (RFC 6455 §5.3).
//!
//! `transformed[i] = original[i] ^ key[i % 4]`. The fast path XORs 64-byte
//! blocks against a pre-expanded key (the fixed block size lets the compiler
//! emit SIMD for it with no `unsafe`; on x86-64 the same loop is also
//! compiled for AVX2 and picked at run time, the module's one `unsafe`
//! call), then 8-byte words, a 4-byte word and single bytes; a payload
//! shorter than a block skips the block set-up.
//! `apply_mask_bytewise` is the obvious scalar twin, kept for the tests and
//! benchmarks.

/// The block size of the vectorisable loop.
const BLOCK: usize = 64;

/// Masks (or unmasks) `buf` in place with `key`, as if `buf` started `offset`
/// bytes into the payload. Streaming callers pass how many payload bytes they
/// have already processed.
#[inline]
pub fn apply_mask(buf: &mut [u8], key: [u8; 4], offset: usize) {
    let key = rotate(key, offset);
    let word = u64::from_ne_bytes([key[0], key[1], key[2], key[3], key[0], key[1], key[2], key[3]]);
    if buf.len() < BLOCK {
        // A chat-sized payload: a few words, inlined into the caller.
        mask_words(buf, key, word);
    } else {
        mask_blocks(buf, key, word);
    }
}

/// [`apply_mask`] for at least one block, `key` already rotated.
fn mask_blocks(buf: &mut [u8], key: [u8; 4], word: u64) {
    let mut pattern = [0u8; BLOCK];
    for part in pattern.chunks_exact_mut(8) {
        part.copy_from_slice(&word.to_ne_bytes());
    }
    let (blocks, rest) = buf.split_at_mut(buf.len() - buf.len() % BLOCK);
    xor_blocks_dispatch(blocks, &pattern);
    mask_words(rest, key, word);
}

/// XORs whole blocks with `pattern`, with AVX2 where the CPU has it (twice
/// the width of the SSE2 that every x86-64 has).
#[cfg(target_arch = "x86_64")]
fn xor_blocks_dispatch(blocks: &mut [u8], pattern: &[u8; BLOCK]) {
    // Not worth the check for a block or two.
    if blocks.len() >= 4 * BLOCK && std::is_x86_feature_detected!("avx2") {
        // SAFETY: `xor_blocks_avx2` only requires AVX2, which the CPU was
        // just found to support.
        #[allow(unsafe_code)]
        unsafe {
            xor_blocks_avx2(blocks, pattern);
        }
        return;
    }
    xor_blocks(blocks, pattern);
}

#[cfg(not(target_arch = "x86_64"))]
fn xor_blocks_dispatch(blocks: &mut [u8], pattern: &[u8; BLOCK]) {
    xor_blocks(blocks, pattern);
}

/// [`xor_blocks`] compiled for AVX2.
///
/// # Safety
///
/// The CPU must support AVX2. (An `unsafe fn` rather than a safe one with
/// `#[target_feature]`, which needs Rust 1.86: the MSRV is 1.85.)
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[allow(unsafe_code)]
unsafe fn xor_blocks_avx2(blocks: &mut [u8], pattern: &[u8; BLOCK]) {
    xor_blocks(blocks, pattern);
}

/// XORs each `BLOCK`-byte chunk of `blocks` (a multiple of `BLOCK` long)
/// with `pattern`. Plain safe code: the fixed width lets the compiler
/// vectorise it for whatever target features its caller was compiled with.
#[inline(always)]
fn xor_blocks(blocks: &mut [u8], pattern: &[u8; BLOCK]) {
    for block in blocks.chunks_exact_mut(BLOCK) {
        for (b, k) in block.iter_mut().zip(pattern.iter()) {
            *b ^= k;
        }
    }
}

/// Masks fewer than [`BLOCK`] bytes that start at a multiple of 4 into the
/// key (`key` already rotated): whole 8-byte words, then at most one 4-byte
/// word, then at most 3 bytes.
#[inline(always)]
fn mask_words(buf: &mut [u8], key: [u8; 4], word: u64) {
    let mut words = buf.chunks_exact_mut(8);
    for part in &mut words {
        let masked = u64::from_ne_bytes((&*part).try_into().expect("8-byte chunk")) ^ word;
        part.copy_from_slice(&masked.to_ne_bytes());
    }
    let rest = words.into_remainder();
    let rest = match rest.split_first_chunk_mut::<4>() {
        Some((part, tail)) => {
            *part = (u32::from_ne_bytes(*part) ^ u32::from_ne_bytes(key)).to_ne_bytes();
            tail
        }
        None => rest,
    };
    for (b, k) in rest.iter_mut().zip(key) {
        *b ^= k;
    }
}

/// The byte-at-a-time reference implementation of [`apply_mask`].
#[cfg(test)]
pub(crate) fn apply_mask_bytewise(buf: &mut [u8], key: [u8; 4], offset: usize) {
    for (i, b) in buf.iter_mut().enumerate() {
        *b ^= key[(offset + i) % 4];
    }
}

/// The key as seen from `offset` bytes into the payload: `key` rotated left
/// by `offset % 4` bytes.
#[inline(always)]
fn rotate(key: [u8; 4], offset: usize) -> [u8; 4] {
    let bits = 8 * (offset % 4) as u32;
    u32::from_le_bytes(key).rotate_right(bits).to_le_bytes()
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
