//! The load generator's own WebSocket wire code: the fixed upgrade request,
//! pre-built masked client frames, and a streaming parser that looks only at
//! frame headers (lengths, opcode, FIN) so reading echoes costs next to
//! nothing. None of the benchmarked libraries is used here.

use std::io;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Fixed masking key of every client frame (RFC 6455 §5.3 only asks that it
/// be unpredictable to defeat proxy cache poisoning, which is moot here).
pub const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// Opcode of a text frame.
pub const OP_TEXT: u8 = 0x1;
/// Opcode of a binary frame.
pub const OP_BINARY: u8 = 0x2;
/// Opcode of a close frame.
pub const OP_CLOSE: u8 = 0x8;

/// The upgrade request every connection sends (no `Origin`, no extensions).
pub const UPGRADE_REQUEST: &[u8] = b"GET / HTTP/1.1\r\n\
Host: 127.0.0.1\r\n\
Upgrade: websocket\r\n\
Connection: Upgrade\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
Sec-WebSocket-Version: 13\r\n\
\r\n";

/// Upper bound on a response head, so a misbehaving server cannot grow the
/// buffer forever.
const MAX_HEAD: usize = 16 * 1024;

/// Encodes one final, masked client frame.
pub fn client_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let len = payload.len();
    let mut out = Vec::with_capacity(len + 14);
    out.push(0x80 | opcode);
    if len < 126 {
        out.push(0x80 | len as u8);
    } else if len <= usize::from(u16::MAX) {
        out.push(0x80 | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0x80 | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    out.extend_from_slice(&MASK);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ MASK[i % 4]));
    out
}

/// A masked close frame with status 1000 (normal closure).
pub fn close_frame() -> Vec<u8> {
    client_frame(OP_CLOSE, &1000u16.to_be_bytes())
}

/// `len` bytes of multi-byte UTF-8 text (2-, 3- and 4-byte sequences; at most
/// one trailing ASCII byte pads it to the exact length).
pub fn non_ascii_text(len: usize) -> Vec<u8> {
    const CHARS: [char; 8] = ['é', 'ж', '日', '€', '𝄞', 'ü', 'λ', '中'];
    let mut s = String::with_capacity(len);
    for c in CHARS.iter().cycle() {
        if s.len() + c.len_utf8() > len {
            break;
        }
        s.push(*c);
    }
    while s.len() + 2 <= len {
        s.push('ß');
    }
    while s.len() < len {
        s.push('.');
    }
    s.into_bytes()
}

/// What a chunk of server bytes completed.
#[derive(Debug, Default, Clone, Copy)]
pub struct Progress {
    /// Data messages whose final frame ended in the chunk.
    pub messages: u64,
    /// Whether a close frame ended in the chunk.
    pub closed: bool,
}

/// Streaming frame-header parser: skips payloads, counts finished messages.
///
/// Header bytes a frame needs, as far as its first `head` bytes tell (RFC
/// 6455 §5.2: 2, plus 2 or 8 for an extended length, plus 4 for a mask).
pub fn head_needed(head: &[u8]) -> usize {
    let Some(&second) = head.get(1) else { return 2 };
    let ext = match second & 0x7f {
        126 => 2,
        127 => 8,
        _ => 0,
    };
    let mask = if second & 0x80 != 0 { 4 } else { 0 };
    2 + ext + mask
}

/// The payload length of a frame whose whole header is in `head`.
pub fn payload_len(head: &[u8]) -> u64 {
    match head[1] & 0x7f {
        126 => u64::from(u16::from_be_bytes([head[2], head[3]])),
        127 => u64::from_be_bytes(head[2..10].try_into().expect("8 bytes")),
        n => u64::from(n),
    }
}

/// Server frames are normally unmasked, but a raw TCP echo returns our own
/// masked frames, so the mask bit is honoured too.
#[derive(Debug, Default)]
pub struct FrameCounter {
    head: [u8; 14],
    head_len: usize,
    payload_left: u64,
    in_payload: bool,
}

impl FrameCounter {
    /// Consumes `buf`, returning what it completed.
    pub fn feed(&mut self, mut buf: &[u8]) -> Progress {
        let mut progress = Progress::default();
        while !buf.is_empty() {
            if self.in_payload {
                let take = self.payload_left.min(buf.len() as u64);
                self.payload_left -= take;
                buf = &buf[take as usize..];
                if self.payload_left == 0 {
                    self.finish(&mut progress);
                }
                continue;
            }
            let need = self.head_needed();
            let take = (need - self.head_len).min(buf.len());
            self.head[self.head_len..self.head_len + take].copy_from_slice(&buf[..take]);
            self.head_len += take;
            buf = &buf[take..];
            if self.head_len == self.head_needed() && self.head_len >= 2 {
                self.payload_left = self.payload_len();
                if self.payload_left == 0 {
                    self.finish(&mut progress);
                } else {
                    self.in_payload = true;
                }
            }
        }
        progress
    }

    fn head_needed(&self) -> usize {
        head_needed(&self.head[..self.head_len])
    }

    fn payload_len(&self) -> u64 {
        payload_len(&self.head)
    }

    fn finish(&mut self, progress: &mut Progress) {
        let fin = self.head[0] & 0x80 != 0;
        let opcode = self.head[0] & 0x0f;
        if opcode == OP_CLOSE {
            progress.closed = true;
        } else if opcode < 0x8 && fin {
            progress.messages += 1;
        }
        self.head_len = 0;
        self.in_payload = false;
    }
}

/// Sends the upgrade request and reads the response head. Bytes read past
/// the head are left in `buf`. A raw TCP echo "answers" with our request.
pub async fn upgrade(tcp: &mut TcpStream, buf: &mut Vec<u8>, echo: bool) -> io::Result<()> {
    upgrade_with(tcp, buf, UPGRADE_REQUEST, echo).await.map(drop)
}

/// As [`upgrade`], with `request` as the upgrade request; returns the
/// response head (without the final blank line), for its headers.
pub async fn upgrade_with(tcp: &mut TcpStream, buf: &mut Vec<u8>, request: &[u8], echo: bool) -> io::Result<String> {
    tcp.write_all(request).await?;
    buf.clear();
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let expected: &[u8] = if echo { b"GET / " } else { b"HTTP/1.1 101" };
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            if !buf.starts_with(expected) {
                return Err(io::Error::other(format!("upgrade refused: {head}")));
            }
            buf.drain(..end + 4);
            return Ok(head);
        }
        if buf.len() > MAX_HEAD {
            return Err(io::Error::other("response head too large"));
        }
        if tcp.read_buf(buf).await? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
    }
}

/// Reads one whole frame (starting with whatever is in `buf`) and returns
/// its opcode and unmasked payload; used once per connection to check that
/// the server really echoes.
pub async fn read_frame(tcp: &mut TcpStream, buf: &mut Vec<u8>) -> io::Result<(u8, Vec<u8>)> {
    let (first, payload) = read_frame_raw(tcp, buf).await?;
    Ok((first & 0x0f, payload))
}

/// As [`read_frame`], but returns the frame's whole first header byte (FIN,
/// RSV1–3 and opcode) instead of the opcode alone.
pub async fn read_frame_raw(tcp: &mut TcpStream, buf: &mut Vec<u8>) -> io::Result<(u8, Vec<u8>)> {
    loop {
        let mut counter = FrameCounter::default();
        let head_len = buf.len().min(14);
        counter.head[..head_len].copy_from_slice(&buf[..head_len]);
        counter.head_len = head_len;
        let need = counter.head_needed();
        if head_len >= need {
            let end = need + counter.payload_len() as usize;
            if buf.len() >= end {
                let mut payload = buf[need..end].to_vec();
                if buf[1] & 0x80 != 0 {
                    let key = &buf[need - 4..need];
                    payload.iter_mut().enumerate().for_each(|(i, b)| *b ^= key[i % 4]);
                }
                let first = buf[0];
                buf.drain(..end);
                return Ok((first, payload));
            }
        }
        if tcp.read_buf(buf).await? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
    }
}

/// Checks the parser and payload builder; run at start-up (a
/// `harness = false` bench has no `#[test]`s).
pub fn self_check() {
    let frames: Vec<u8> = [
        vec![0x82, 3, 1, 2, 3],
        vec![0x81, 126, 0x01, 0x00],
        vec![b'a'; 256],
        client_frame(OP_BINARY, &[9; 70_000]),
        vec![0x88, 0],
    ]
    .concat();
    for step in [1, 2, 3, 7, 1000] {
        let mut c = FrameCounter::default();
        let (mut msgs, mut closed) = (0, false);
        for chunk in frames.chunks(step) {
            let p = c.feed(chunk);
            msgs += p.messages;
            closed |= p.closed;
        }
        assert_eq!((msgs, closed), (3, true), "frame counter, chunks of {step}");
    }
    let t = non_ascii_text(16 * 1024);
    assert_eq!(t.len(), 16 * 1024);
    let s = std::str::from_utf8(&t).expect("valid UTF-8");
    assert!(s.chars().filter(char::is_ascii).count() <= 1);
}
