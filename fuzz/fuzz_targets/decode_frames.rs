//! Arbitrary bytes into the message decoder, for both roles, fed in two
//! pieces: it must never panic, and never reserve past the limits.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use silverback::protocol::MessageDecoder;
use silverback::{Limits, Role};

fuzz_target!(|data: &[u8]| {
    let Some((&split, data)) = data.split_first() else { return };
    let limits = Limits::default().max_frame_size(1 << 16).max_message_size(1 << 17);
    for role in [Role::Client, Role::Server] {
        let mut decoder = MessageDecoder::new(role, limits);
        let cut = usize::from(split).min(data.len());
        let mut buf = BytesMut::new();
        for piece in [&data[..cut], &data[cut..]] {
            buf.extend_from_slice(piece);
            loop {
                match decoder.decode(&mut buf) {
                    Ok(Some(_)) => continue,
                    Ok(None) => break,
                    Err(_) => return,
                }
            }
            assert!(buf.capacity() <= 4 * (1 << 17) + 2 * data.len() + 1024);
        }
    }
});
