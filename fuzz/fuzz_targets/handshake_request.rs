//! The server side of the opening handshake: arbitrary bytes as the client's
//! upgrade request, through the public `Upgrader::accept_with_request` (the
//! request parser itself is crate-private).
//!
//! Input: `[mode, chunk, request...]`. The request is read `chunk` bytes at a
//! time (all at once for 0); `mode` chooses what happens after it (end of
//! stream, or a silent client that only the handshake timeout ends, on a
//! paused clock), the deflate offer we accept, small head limits,
//! subprotocols and the origin policy.
//!
//! Asserts: no panic; a failure is a typed `Error::Handshake`; a refusal with
//! an HTTP status wrote exactly that status line, and a failure without one
//! (timeout, end of stream) wrote nothing; a success wrote a `101` with the
//! right `Sec-WebSocket-Accept` for a `GET` request with one key. After a
//! success the bytes that followed the head are read as frames, with the
//! stream invariants of `silverback_fuzz::drain`.
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use silverback::{Config, DeflateConfig, Error, Limits, Upgrader};
use silverback_fuzz::{accept_key, block_on, drain, End, ScriptedIo};

fuzz_target!(|data: &[u8]| {
    let [mode, chunk, request @ ..] = data else { return };
    let end = if mode & 1 != 0 { End::Pending } else { End::Eof };
    let io = ScriptedIo::new(request, usize::from(*chunk), end);
    let written = io.written();

    let limits = Limits::default().max_frame_size(1 << 12).max_message_size(1 << 13);
    let mut upgrader = Upgrader::new()
        .config(Config::default().limits(limits).close_timeout(Duration::from_secs(1)))
        .handshake_timeout(Duration::from_secs(5));
    if mode & 2 != 0 {
        upgrader = upgrader.allow_any_origin();
    }
    match mode >> 2 & 3 {
        0 => {}
        1 => upgrader = upgrader.deflate(DeflateConfig::default()),
        2 => {
            upgrader = upgrader.deflate(
                DeflateConfig::default()
                    .server_no_context_takeover(true)
                    .client_no_context_takeover(true)
                    .server_max_window_bits(9),
            )
        }
        _ => upgrader = upgrader.deflate(DeflateConfig::default().client_max_window_bits(8)),
    }
    if mode & 0x10 != 0 {
        upgrader = upgrader.max_head_size(160).max_headers(6);
    }
    if mode & 0x20 != 0 {
        upgrader = upgrader.subprotocols(["chat", "superchat"]);
    }

    block_on(async {
        match upgrader.accept_with_request(io).await {
            Ok((mut ws, req)) => {
                let response = written.lock().unwrap().clone();
                assert!(response.starts_with(b"HTTP/1.1 101 "), "accepted without a 101");
                assert_eq!(req.method(), "GET");
                let keys: Vec<_> = req.headers().get_all("sec-websocket-key").iter().collect();
                assert_eq!(keys.len(), 1, "accepted with {} keys", keys.len());
                let accept = format!("\r\nsec-websocket-accept: {}\r\n", accept_key(keys[0].as_bytes()));
                let lower = String::from_utf8_lossy(&response).to_ascii_lowercase();
                assert!(lower.contains(&accept.to_ascii_lowercase()), "wrong or missing accept key");
                drain(&mut ws, limits).await;
            }
            Err(Error::Handshake(err)) => {
                let response = written.lock().unwrap().clone();
                match err.status() {
                    Some(status) => {
                        let line = format!("HTTP/1.1 {} ", status.as_u16());
                        assert!(response.starts_with(line.as_bytes()), "{err:?} answered without {line:?}");
                    }
                    None => assert!(response.is_empty(), "{err:?} wrote a response"),
                }
            }
            Err(err) => panic!("not a handshake error: {err:?}"),
        }
    });
});
