//! The client side of the opening handshake: a scripted server answers the
//! client's upgrade request with fuzz bytes, through the public
//! `Connector::connect_on` (the response parser itself is crate-private).
//!
//! Input: `[mode, chunk, response...]`. A real answer must carry the
//! `Sec-WebSocket-Accept` computed from the client's random key, which no
//! fuzzer can guess, so the scripted server computes it from the request the
//! client wrote and splices it in: every `$A` in the response is replaced by
//! it, and with `mode & 1` a `Sec-WebSocket-Accept: <accept>` line is also
//! inserted after the status line. The response is read `chunk` bytes at a
//! time (all at once for 0). `mode` also chooses the deflate offer, small
//! head limits, subprotocols, and end of stream or silence after the script
//! (silence ends with the handshake timeout, on a paused clock).
//!
//! Asserts: no panic; the request is a `GET` with a key; a failure is a typed
//! `Error::Handshake`; a success means status 101 and exactly one accept
//! value, equal to the right one (a wrong key is never accepted). After a
//! success the bytes that followed the head are read as frames, with the
//! stream invariants of `silverback_fuzz::drain`.
#![no_main]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use silverback::{Config, Connector, DeflateConfig, Error, Limits};
use silverback_fuzz::{accept_key, block_on, drain, End, ScriptedIo};

/// Finds the value of `name` (lowercase) in an HTTP head.
fn header<'a>(head: &'a [u8], name: &str) -> Option<&'a [u8]> {
    head.split(|&b| b == b'\n').find_map(|line| {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let colon = line.iter().position(|&b| b == b':')?;
        let (key, value) = line.split_at(colon);
        key.eq_ignore_ascii_case(name.as_bytes()).then(|| value[1..].trim_ascii())
    })
}

/// Replaces every `$A` in `template` with `accept`.
fn splice(template: &[u8], accept: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(template.len() + 32);
    let mut rest = template;
    while let Some(at) = rest.windows(2).position(|w| w == b"$A") {
        out.extend_from_slice(&rest[..at]);
        out.extend_from_slice(accept);
        rest = &rest[at + 2..];
    }
    out.extend_from_slice(rest);
    out
}

fuzz_target!(|data: &[u8]| {
    let [mode, chunk, template @ ..] = data else { return };
    let (mode, template) = (*mode, template.to_vec());
    let expected: Arc<Mutex<Option<String>>> = Arc::default();
    let expected_in = expected.clone();
    let responder = Box::new(move |request: &[u8]| {
        assert!(request.starts_with(b"GET / HTTP/1.1\r\n"), "the request line is wrong");
        let key = header(request, "sec-websocket-key").expect("the request has a key");
        let accept = accept_key(key);
        let mut response = splice(&template, accept.as_bytes());
        if mode & 1 != 0 {
            let line = format!("Sec-WebSocket-Accept: {accept}\r\n");
            let at = response.windows(2).position(|w| w == b"\r\n").map_or(response.len(), |at| at + 2);
            response.splice(at..at, line.into_bytes());
        }
        *expected_in.lock().unwrap() = Some(accept);
        response
    });
    let end = if mode & 2 != 0 { End::Pending } else { End::Eof };
    let io = ScriptedIo::lazy(responder, usize::from(*chunk), end);

    let limits = Limits::default().max_frame_size(1 << 12).max_message_size(1 << 13);
    let mut connector = Connector::new()
        .config(Config::default().limits(limits).close_timeout(Duration::from_secs(1)))
        .handshake_timeout(Duration::from_secs(5));
    match mode >> 2 & 3 {
        0 => {}
        1 => connector = connector.deflate(DeflateConfig::default()),
        2 => {
            connector =
                connector.deflate(DeflateConfig::default().client_no_context_takeover(true).server_max_window_bits(10))
        }
        _ => {
            connector =
                connector.deflate(DeflateConfig::default().server_no_context_takeover(true).client_max_window_bits(8))
        }
    }
    if mode & 0x10 != 0 {
        connector = connector.max_head_size(192).max_headers(6);
    }
    if mode & 0x20 != 0 {
        connector = connector.subprotocols(["chat", "superchat"]);
    }

    block_on(async {
        match connector.connect_on(io, "ws://h/").await {
            Ok((mut ws, response)) => {
                assert_eq!(response.status(), 101);
                let accepts: Vec<_> = response.headers().get_all("sec-websocket-accept").iter().collect();
                assert_eq!(accepts.len(), 1, "accepted with {} accept values", accepts.len());
                let expected = expected.lock().unwrap().clone().expect("the server answered");
                assert_eq!(accepts[0].as_bytes(), expected.as_bytes(), "accepted a wrong accept key");
                drain(&mut ws, limits).await;
            }
            Err(Error::Handshake(_)) => {}
            Err(err) => panic!("not a handshake error: {err:?}"),
        }
    });
});
