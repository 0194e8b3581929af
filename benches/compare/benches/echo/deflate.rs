//! The load generator's side of permessage-deflate (RFC 7692) for the
//! compressed row: JSON-like messages, their pre-built compressed client
//! frames, the upgrade request that offers the extension, the check of the
//! server's answer, and the verification of the first echoes.
//!
//! The client offers `client_no_context_takeover`, so each of its messages
//! is compressed on its own and the pre-built frames can be replayed in any
//! order. Servers may keep their own context across messages (the default,
//! and what silverback, sockudo-ws and yawc do here) or not (wtx), so the
//! verifying decompressor keeps its window across messages; it only has to
//! be right for the first two echoes of each connection.
//!
//! Several different messages are sent in rotation, never the same one twice
//! in a row: a server compressing with context takeover would otherwise
//! encode each echo as one long back-reference to the previous, identical
//! one, and the row would reward that artefact of the benchmark rather than
//! compression of realistic traffic.

use std::fmt::Write as _;
use std::io;
use std::net::SocketAddr;

use bytes::BytesMut;
use silverback::deflate::{Compressor, Decompressor};
use tokio::io::AsyncWriteExt as _;
use tokio::net::TcpStream;

use crate::wire::{self, MASK, OP_TEXT};

/// The upgrade request of the compressed row: [`wire::UPGRADE_REQUEST`]
/// plus the extension offer.
pub const UPGRADE_REQUEST: &[u8] = b"GET / HTTP/1.1\r\n\
Host: 127.0.0.1\r\n\
Upgrade: websocket\r\n\
Connection: Upgrade\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
Sec-WebSocket-Version: 13\r\n\
Sec-WebSocket-Extensions: permessage-deflate; client_no_context_takeover; client_max_window_bits\r\n\
\r\n";

/// Level the client's frames are compressed at, once, before the run:
/// zlib's default, as a browser would send them.
const CLIENT_LEVEL: u8 = 6;

/// How many different messages are sent in rotation (at least 3, so that
/// the previous copy of a message is always out of a 32 KiB window).
pub const VARIANTS: usize = 4;

/// Limit on an inflated echo, far above the 16 KiB messages.
const MAX_INFLATED: usize = 1 << 20;

/// The messages of the compressed row and their compressed client frames.
#[derive(Debug)]
pub struct Messages {
    /// The uncompressed texts, [`VARIANTS`] of them.
    pub texts: Vec<Vec<u8>>,
    /// Their frames for a 2^15 client window, the one every server here
    /// agrees to; other windows are compressed on demand.
    frames_15: Vec<Vec<u8>>,
}

impl Messages {
    /// [`VARIANTS`] JSON-like texts of exactly `size` bytes each.
    pub fn new(size: usize) -> Messages {
        let texts: Vec<Vec<u8>> = (0..VARIANTS as u64).map(|seed| json_text(size, seed)).collect();
        let frames_15 = frames(&texts, 15).expect("window 15 is valid");
        Messages { texts, frames_15 }
    }

    /// The compressed client frames for a client window of 2^`bits`, or
    /// `None` if zlib cannot compress within it (8).
    pub fn frames(&self, bits: u8) -> Option<Vec<Vec<u8>>> {
        if bits == 15 {
            Some(self.frames_15.clone())
        } else {
            frames(&self.texts, bits)
        }
    }

    /// Uncompressed ÷ compressed payload size of the client's messages.
    pub fn client_ratio(&self) -> f64 {
        let raw: usize = self.texts.iter().map(Vec::len).sum();
        let packed: usize = self.frames_15.iter().map(|f| f.len() - header_len(f)).sum();
        raw as f64 / packed as f64
    }
}

/// Each text compressed on its own (RFC 7692 §7.2.1: raw DEFLATE, sync
/// flush, trailing `00 00 ff ff` removed) into a masked text frame with
/// RSV1 set.
fn frames(texts: &[Vec<u8>], window_bits: u8) -> Option<Vec<Vec<u8>>> {
    texts
        .iter()
        .map(|text| {
            let mut compressor = Compressor::new(CLIENT_LEVEL, window_bits, true)?;
            let mut payload = BytesMut::new();
            compressor.compress(text, &mut payload);
            let mut frame = wire::client_frame(OP_TEXT, &payload);
            frame[0] |= 0x40; // RSV1: this message is compressed.
            Some(frame)
        })
        .collect()
}

/// Length of a masked client frame's header.
fn header_len(frame: &[u8]) -> usize {
    match frame[1] & 0x7f {
        126 => 8,
        127 => 14,
        _ => 6,
    }
}

/// `len` bytes of deterministic JSON-like text: an array of user records
/// with ids, names, e-mail addresses, cities, timestamps and pseudo-random
/// numbers, padded with spaces before the closing `]` to the exact length.
/// Different `seed`s give different records of the same shape.
pub fn json_text(len: usize, seed: u64) -> Vec<u8> {
    const FIRST: [&str; 16] = [
        "Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Margaret", "Ken", "Dennis", "Frances", "John", "Radia",
        "Leslie", "Niklaus", "Sophie", "Tony",
    ];
    const LAST: [&str; 16] = [
        "Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Hamilton", "Thompson", "Ritchie", "Allen",
        "Backus", "Perlman", "Lamport", "Wirth", "Wilson", "Hoare",
    ];
    const CITIES: [&str; 8] = ["Zurich", "Lisbon", "Osaka", "Toronto", "Nairobi", "Oslo", "Lima", "Dublin"];
    const TAGS: [&str; 8] = ["admin", "beta", "staff", "trial", "vip", "new", "legacy", "mobile"];
    // splitmix64: well mixed from the first output on, whatever the seed.
    let mut state = seed.wrapping_mul(0x2545_f491_4f6c_dd1d);
    let mut next = move || {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    let mut out = String::with_capacity(len);
    out.push('[');
    let mut id = 100_000 + seed * 1_000;
    // Seconds since 2026-01-01T00:00:00Z, in a 28-day-month calendar.
    let mut t = seed * 86_400;
    let mut record = String::new();
    loop {
        let r = next();
        id += 1 + r % 7;
        t += (r >> 8) & 0xfff;
        let (first, last) = (FIRST[(r >> 20) as usize % 16], LAST[(r >> 24) as usize % 16]);
        let (day, secs) = (t / 86_400, t % 86_400);
        record.clear();
        let _ = write!(
            record,
            r#"{{"id":{id},"name":"{first} {last}","email":"{}.{}{}@example.com","city":"{}","created":"2026-{:02}-{:02}T{:02}:{:02}:{:02}Z","score":{}.{:02},"balance":{},"active":{},"tags":["{}","{}"]}}"#,
            first.to_ascii_lowercase(),
            last.to_ascii_lowercase(),
            (r >> 40) & 0x3f,
            CITIES[(r >> 28) as usize % 8],
            1 + day / 28 % 12,
            1 + day % 28,
            secs / 3600,
            secs / 60 % 60,
            secs % 60,
            (r >> 32) & 0x3ff,
            ((r >> 44) & 0x7f) % 100,
            (r >> 12) % 1_000_000,
            r & 0x40 != 0,
            TAGS[(r >> 48) as usize % 8],
            TAGS[(r >> 52) as usize % 8],
        );
        let comma = usize::from(out.len() > 1);
        if out.len() + comma + record.len() + 1 > len {
            break;
        }
        if comma == 1 {
            out.push(',');
        }
        out.push_str(&record);
    }
    while out.len() + 1 < len {
        out.push(' ');
    }
    out.push(']');
    out.into_bytes()
}

/// What the server agreed to (RFC 7692 §7.1), from its 101 response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Agreed {
    /// The extension as the server wrote it, for the report.
    pub header: String,
    /// Window the client must compress within (`client_max_window_bits`).
    pub client_window: u8,
    /// Window the server compresses within (`server_max_window_bits`).
    pub server_window: u8,
}

/// Finds permessage-deflate among the response head's
/// `Sec-WebSocket-Extensions` values; `None` if the server declined it.
pub fn agreed(head: &str) -> io::Result<Option<Agreed>> {
    let values = head.lines().filter_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.trim().eq_ignore_ascii_case("sec-websocket-extensions").then(|| value.trim())
    });
    for value in values {
        for extension in value.split(',') {
            let mut params = extension.split(';').map(str::trim);
            if params.next() != Some("permessage-deflate") {
                continue;
            }
            let mut agreed = Agreed { header: extension.trim().to_owned(), client_window: 15, server_window: 15 };
            for param in params {
                let (name, value) = match param.split_once('=') {
                    Some((n, v)) => (n.trim(), Some(v.trim().trim_matches('"'))),
                    None => (param, None),
                };
                let bits = || -> io::Result<u8> {
                    value
                        .and_then(|v| v.parse().ok())
                        .filter(|b| (8..=15).contains(b))
                        .ok_or_else(|| io::Error::other(format!("bad {name} in {value:?}")))
                };
                match name {
                    "client_max_window_bits" => agreed.client_window = bits()?,
                    "server_max_window_bits" => agreed.server_window = bits()?,
                    "client_no_context_takeover" | "server_no_context_takeover" => {}
                    _ => return Err(io::Error::other(format!("unknown parameter {param:?}"))),
                }
            }
            return Ok(Some(agreed));
        }
    }
    Ok(None)
}

/// One upgraded and verified connection of the compressed row.
#[derive(Debug)]
pub struct Opened {
    /// The connection.
    pub tcp: TcpStream,
    /// Bytes read past the verified echoes (normally none).
    pub leftover: Vec<u8>,
    /// What the server agreed to.
    pub agreed: Agreed,
    /// Compressed payload sizes of the echoes of the first two messages.
    pub echo_sizes: (usize, usize),
}

/// Connects, offers permessage-deflate, and checks the echoes of the first
/// two messages: compressed (RSV1), text, and inflating to what was sent.
/// A server that declines the extension yields an
/// [`io::ErrorKind::Unsupported`] error.
pub async fn open(addr: SocketAddr, messages: &Messages) -> io::Result<Opened> {
    let mut tcp = TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    let mut buf = Vec::with_capacity(4096);
    let head = wire::upgrade_with(&mut tcp, &mut buf, UPGRADE_REQUEST, false).await?;
    let agreed = agreed(&head)?
        .ok_or_else(|| io::Error::new(io::ErrorKind::Unsupported, "server declined permessage-deflate"))?;
    let frames = messages.frames(agreed.client_window).ok_or_else(|| {
        io::Error::other(format!("cannot compress within the agreed client window 2^{}", agreed.client_window))
    })?;
    let mut inflate = Decompressor::new(agreed.server_window, false);
    let mut sizes = [0; 2];
    for (i, size) in sizes.iter_mut().enumerate() {
        tcp.write_all(&frames[i]).await?;
        let (first, payload) = read_message(&mut tcp, &mut buf).await?;
        if first & 0x0f != OP_TEXT || first & 0x40 == 0 {
            return Err(io::Error::other(format!(
                "echo {} not a compressed text message (first byte {first:#04x})",
                i + 1
            )));
        }
        let mut text = BytesMut::new();
        inflate
            .decompress(&payload, &mut text, MAX_INFLATED)
            .and_then(|()| inflate.finish_message(&mut text, MAX_INFLATED))
            .map_err(|e| io::Error::other(format!("echo {} does not inflate: {e}", i + 1)))?;
        if text[..] != messages.texts[i][..] {
            return Err(io::Error::other(format!(
                "echo {} inflates to {} bytes that differ from the {} sent",
                i + 1,
                text.len(),
                messages.texts[i].len()
            )));
        }
        *size = payload.len();
    }
    Ok(Opened { tcp, leftover: buf, agreed, echo_sizes: (sizes[0], sizes[1]) })
}

/// Reads one whole message: its first frame's first header byte (FIN,
/// RSV1, opcode) and all its frames' payloads concatenated.
async fn read_message(tcp: &mut TcpStream, buf: &mut Vec<u8>) -> io::Result<(u8, Vec<u8>)> {
    let (first, mut payload) = wire::read_frame_raw(tcp, buf).await?;
    let mut fin = first & 0x80 != 0;
    while !fin {
        let (next, more) = wire::read_frame_raw(tcp, buf).await?;
        if next & 0x0f != 0 {
            return Err(io::Error::other("expected a continuation frame"));
        }
        payload.extend_from_slice(&more);
        fin = next & 0x80 != 0;
    }
    Ok((first, payload))
}

/// Checks the generator, the frame builder and the response parser; run at
/// start-up with [`wire::self_check`].
pub fn self_check() {
    let text = json_text(16 * 1024, 0);
    assert_eq!(text.len(), 16 * 1024);
    assert!(text.starts_with(b"[{\"id\":") && text.ends_with(b"]"));
    assert!(text.is_ascii());
    assert_ne!(json_text(16 * 1024, 1), text);
    let messages = Messages::new(16 * 1024);
    let ratio = messages.client_ratio();
    assert!((3.0..20.0).contains(&ratio), "compression ratio {ratio}");
    // The frame unmasks and inflates back to the text.
    let frame = &messages.frames(15).expect("frames")[0];
    assert_eq!(frame[0], 0xc1, "FIN, RSV1, text");
    let start = header_len(frame);
    let key = &frame[start - 4..start];
    assert_eq!(key, MASK);
    let payload: Vec<u8> = frame[start..].iter().enumerate().map(|(i, b)| b ^ key[i % 4]).collect();
    let mut inflate = Decompressor::new(15, true);
    let mut out = BytesMut::new();
    inflate.decompress(&payload, &mut out, MAX_INFLATED).expect("inflate");
    inflate.finish_message(&mut out, MAX_INFLATED).expect("finish");
    assert_eq!(out[..], text[..]);
    let head = "HTTP/1.1 101 Switching Protocols\r\nsec-websocket-extensions: x-foo, \
                permessage-deflate; client_max_window_bits=12; server_no_context_takeover\r\n";
    let a = agreed(head).expect("parses").expect("agreed");
    assert_eq!((a.client_window, a.server_window), (12, 15));
    assert_eq!(agreed("HTTP/1.1 101 OK\r\nUpgrade: websocket\r\n").expect("parses"), None);
    assert!(messages.frames(8).is_none());
}
