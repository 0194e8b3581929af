//! Micro-benchmarks of the hot paths: masking, frame decode and encode, UTF-8
//! validation, write batching through the sink, broadcast, an echo loop and
//! the server handshake, all without system calls.
//!
//! `cargo bench --bench protocol`

// criterion_group! generates an undocumented public function.
#![allow(missing_docs)]

use bytes::{Bytes, BytesMut};
use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use futures_util::{SinkExt, StreamExt};
use silverback::protocol::{apply_mask, Utf8Validator};
use silverback::{Codec, Config, Message, Role, WebSocketStream};
use tokio_util::codec::{Decoder, Encoder};

fn masking(c: &mut Criterion) {
    let mut group = c.benchmark_group("mask");
    for size in [64usize, 1024, 16 * 1024, 1 << 20] {
        let mut data = vec![0x5Au8; size];
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_with_input(BenchmarkId::new("silverback", size), &size, |b, _| {
            b.iter(|| apply_mask(black_box(&mut data), [1, 2, 3, 4], 1));
        });
        group.bench_with_input(BenchmarkId::new("bytewise", size), &size, |b, _| {
            b.iter(|| mask_bytewise(black_box(&mut data), [1, 2, 3, 4], 1));
        });
    }
    group.finish();
}

fn wire(role: Role, msg: Message, count: usize) -> BytesMut {
    let mut codec = Codec::new(role);
    let mut out = BytesMut::new();
    for _ in 0..count {
        codec.encode(msg.clone(), &mut out).unwrap();
    }
    out
}

fn decode(c: &mut Criterion) {
    let mut group = c.benchmark_group("decode");
    for (name, msg, count) in [
        ("text_20B_x1000", Message::text("x".repeat(20)), 1000),
        ("binary_16KiB_x16", Message::binary(vec![1u8; 16 * 1024]), 16),
        ("text_utf8_16KiB_x16", Message::text("κόσμε ".repeat(16 * 1024 / 11)), 16),
        ("binary_1MiB_x1", Message::binary(vec![1u8; 1 << 20]), 1),
    ] {
        let bytes = wire(Role::Client, msg, count);
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        group.bench_function(name, |b| {
            b.iter(|| {
                let mut codec = Codec::new(Role::Server);
                let mut buf = bytes.clone();
                let mut n = 0;
                while let Some(m) = codec.decode(&mut buf).unwrap() {
                    n += m.len();
                }
                black_box(n)
            });
        });
    }
    group.finish();
}

fn encode(c: &mut Criterion) {
    let mut group = c.benchmark_group("encode");
    for (name, role, msg) in [
        ("server_text_20B", Role::Server, Message::text("x".repeat(20))),
        ("client_text_20B", Role::Client, Message::text("x".repeat(20))),
        ("server_binary_16KiB", Role::Server, Message::binary(vec![1u8; 16 * 1024])),
        ("client_binary_16KiB", Role::Client, Message::binary(vec![1u8; 16 * 1024])),
    ] {
        group.throughput(Throughput::Bytes(msg.len() as u64));
        let mut codec = Codec::new(role);
        let mut out = BytesMut::with_capacity(64 * 1024);
        group.bench_function(name, |b| {
            b.iter(|| {
                out.clear();
                codec.encode(msg.clone(), &mut out).unwrap();
                black_box(out.len())
            });
        });
    }
    group.finish();
}

fn utf8(c: &mut Criterion) {
    let mut group = c.benchmark_group("utf8");
    for (name, text) in [("ascii_16KiB", "a".repeat(16 * 1024)), ("greek_16KiB", "κόσμε".repeat(16 * 1024 / 10))] {
        group.throughput(Throughput::Bytes(text.len() as u64));
        group.bench_function(BenchmarkId::new("incremental", name), |b| {
            b.iter(|| {
                let mut v = Utf8Validator::new();
                for chunk in text.as_bytes().chunks(4093) {
                    v.feed(black_box(chunk)).unwrap();
                }
                v.finish().unwrap();
            });
        });
        group.bench_function(BenchmarkId::new("std", name), |b| {
            b.iter(|| std::str::from_utf8(black_box(text.as_bytes())).unwrap().len());
        });
    }
    group.finish();
}

/// 1000 20-byte messages through a duplex pipe: `feed` + one `flush` (one
/// batched write) against `send` each (one write per message).
fn write_batching(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let mut group = c.benchmark_group("sink_1000x20B");
    group.throughput(Throughput::Elements(1000));
    for batched in [true, false] {
        group.bench_function(if batched { "feed_flush" } else { "send_each" }, |b| {
            b.to_async(&rt).iter(|| async move {
                let (a, z) = tokio::io::duplex(1 << 20);
                let mut tx = WebSocketStream::from_raw_parts(a, Role::Server, Config::default(), BytesMut::new());
                let mut rx = WebSocketStream::from_raw_parts(z, Role::Client, Config::default(), BytesMut::new());
                let payload = Bytes::from_static(&[b'x'; 20]);
                for _ in 0..1000 {
                    if batched {
                        tx.feed(Message::Binary(payload.clone())).await.unwrap();
                    } else {
                        tx.send(Message::Binary(payload.clone())).await.unwrap();
                    }
                }
                tx.flush().await.unwrap();
                for _ in 0..1000 {
                    black_box(rx.next().await.unwrap().unwrap());
                }
            });
        });
    }
    group.finish();
}

/// A transport that accepts every write at once and never has input: the
/// send path's CPU cost without a kernel.
#[derive(Debug)]
struct Discard;

impl tokio::io::AsyncRead for Discard {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        _: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Pending
    }
}

impl tokio::io::AsyncWrite for Discard {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::task::Poll::Ready(Ok(buf.len()))
    }
    fn poll_write_vectored(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::task::Poll::Ready(Ok(bufs.iter().map(|b| b.len()).sum()))
    }
    fn is_write_vectored(&self) -> bool {
        true
    }
    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

/// One message to 10 000 server connections: built from a `String` per
/// connection (a copy each, what an application that formats per
/// connection pays), the same `Message` cloned (shared bytes, header encoded
/// per connection), and a `PreparedMessage` (frame encoded once).
fn broadcast(c: &mut Criterion) {
    const CONNS: usize = 10_000;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let mut conns: Vec<WebSocketStream<Discard>> = (0..CONNS)
        .map(|_| WebSocketStream::from_raw_parts(Discard, Role::Server, Config::default(), BytesMut::new()))
        .collect();
    let mut group = c.benchmark_group("broadcast_10000");
    group.throughput(Throughput::Elements(CONNS as u64));
    for size in [20usize, 16 * 1024] {
        let text = "κ".repeat(size / 2);
        let message = Message::text(text.clone());
        let prepared = silverback::PreparedMessage::new(&message).unwrap();
        group.bench_function(BenchmarkId::new("string_per_conn", size), |b| {
            b.iter(|| {
                rt.block_on(async {
                    for ws in conns.iter_mut() {
                        ws.send(Message::text(text.clone())).await.unwrap();
                    }
                })
            });
        });
        group.bench_function(BenchmarkId::new("message_clone", size), |b| {
            b.iter(|| {
                rt.block_on(async {
                    for ws in conns.iter_mut() {
                        ws.send(message.clone()).await.unwrap();
                    }
                })
            });
        });
        group.bench_function(BenchmarkId::new("prepared", size), |b| {
            b.iter(|| {
                rt.block_on(async {
                    for ws in conns.iter_mut() {
                        ws.send_prepared(&prepared).await.unwrap();
                    }
                })
            });
        });
    }
    group.finish();
}

/// One 16 KiB JSON-like text message to 1 000 server connections that
/// negotiated permessage-deflate with `server_no_context_takeover`: the same
/// `Message` cloned (every connection compresses it) against a
/// `PreparedMessage` made for each broadcast (compressed once, its frame
/// shared).
#[cfg(feature = "deflate")]
fn broadcast_deflate(c: &mut Criterion) {
    use silverback::deflate::DeflateParams;
    use silverback::{DeflateConfig, PreparedMessage};

    const CONNS: usize = 1_000;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let params = DeflateParams { server_no_context_takeover: true, ..DeflateParams::default() };
    let config = Config::default().deflate(DeflateConfig::default());
    let mut conns: Vec<WebSocketStream<Discard>> = (0..CONNS)
        .map(|_| WebSocketStream::from_raw_parts_with_deflate(Discard, Role::Server, config, BytesMut::new(), params))
        .collect();
    let mut text = String::new();
    for i in 0.. {
        if text.len() >= 16 * 1024 {
            break;
        }
        text.push_str(&format!(
            r#"{{"id":{i},"user":"user{}","score":{},"text":"hello there"}},"#,
            i % 13,
            i * 7 % 101
        ));
    }
    let message = Message::text(text);
    let mut group = c.benchmark_group("broadcast_deflate_1000");
    group.sample_size(10);
    group.throughput(Throughput::Elements(CONNS as u64));
    group.bench_function("message_clone", |b| {
        b.iter(|| {
            rt.block_on(async {
                for ws in conns.iter_mut() {
                    ws.send(message.clone()).await.unwrap();
                }
            })
        });
    });
    group.bench_function("prepared", |b| {
        b.iter(|| {
            rt.block_on(async {
                let prepared = PreparedMessage::new(&message).unwrap();
                for ws in conns.iter_mut() {
                    ws.send_prepared(&prepared).await.unwrap();
                }
            })
        });
    });
    group.finish();
}

#[cfg(not(feature = "deflate"))]
fn broadcast_deflate(_: &mut Criterion) {}

/// One connection's compressor and decompressor on a conversation of 64
/// different JSON-like messages (512 B and 16 KiB), with context takeover
/// (a window carried from message to message) and without. Throughput is
/// per message. As on a server with the default `DeflateConfig` and
/// Chromium's offer, the compressor may use a 2^15 window and the
/// decompressor inflates a peer that agreed to 2^12.
#[cfg(feature = "deflate")]
fn deflate_messages(c: &mut Criterion) {
    use silverback::deflate::{Compressor, Decompressor};

    const MESSAGES: usize = 64;
    let json = |seed: usize, len: usize| {
        let mut text = String::from("[");
        let mut i = seed * 1_000;
        while text.len() < len {
            text.push_str(&format!(
                r#"{{"id":{i},"user":"user{}","score":{},"city":"{}","text":"hello there"}},"#,
                i * 7 % 13,
                i * 31 % 1001,
                ["Oslo", "Lima", "Osaka", "Dublin"][i % 4]
            ));
            i += 1 + i % 3;
        }
        text.truncate(len);
        text.into_bytes()
    };
    let mut group = c.benchmark_group("deflate_messages");
    group.throughput(Throughput::Elements(MESSAGES as u64));
    for len in [512, 16 * 1024] {
        let messages: Vec<Vec<u8>> = (0..MESSAGES).map(|seed| json(seed, len)).collect();
        for no_context_takeover in [false, true] {
            let mode = if no_context_takeover { "no_context_takeover" } else { "context_takeover" };
            let mut compressed = Vec::new();
            let mut compressor = Compressor::new(1, 12, no_context_takeover).unwrap();
            for message in &messages {
                let mut out = BytesMut::new();
                compressor.compress(message, &mut out);
                compressed.push(out);
            }
            group.bench_function(BenchmarkId::new(format!("compress_{mode}"), len), |b| {
                let mut compressor = Compressor::new(1, 15, no_context_takeover).unwrap();
                let mut out = BytesMut::with_capacity(2 * len);
                b.iter(|| {
                    for message in &messages {
                        out.clear();
                        compressor.compress(message, &mut out);
                    }
                });
            });
            if !no_context_takeover {
                // Idle after every message: the state is rebuilt from the
                // kept window each time (how silverback's connections work
                // when messages come one by one).
                group.bench_function(BenchmarkId::new("decompress_context_takeover_idle", len), |b| {
                    let mut out = BytesMut::with_capacity(2 * len);
                    b.iter(|| {
                        let mut decompressor = Decompressor::new(12, false);
                        for payload in &compressed {
                            out.clear();
                            decompressor.decompress(payload, &mut out, usize::MAX).unwrap();
                            decompressor.finish_message(&mut out, usize::MAX).unwrap();
                            decompressor.idle();
                        }
                    });
                });
            }
            group.bench_function(BenchmarkId::new(format!("decompress_{mode}"), len), |b| {
                let mut out = BytesMut::with_capacity(2 * len);
                b.iter(|| {
                    let mut decompressor = Decompressor::new(12, no_context_takeover);
                    for payload in &compressed {
                        out.clear();
                        decompressor.decompress(payload, &mut out, usize::MAX).unwrap();
                        decompressor.finish_message(&mut out, usize::MAX).unwrap();
                    }
                });
            });
        }
    }
    group.finish();
}

#[cfg(not(feature = "deflate"))]
fn deflate_messages(_: &mut Criterion) {}

criterion_group!(
    benches,
    masking,
    decode,
    encode,
    utf8,
    write_batching,
    broadcast,
    broadcast_deflate,
    deflate_messages,
    echo_pipeline,
    handshake
);
criterion_main!(benches);

/// A transport that plays back client frames `chunk` bytes per read, then
/// ends, and discards what is written: the user-space cost of an echo
/// server's loop, with no system calls.
struct Replay {
    wire: Bytes,
    chunk: usize,
}

impl tokio::io::AsyncRead for Replay {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let n = self.wire.len().min(self.chunk).min(buf.remaining());
        let part = self.wire.split_to(n);
        buf.put_slice(&part);
        std::task::Poll::Ready(Ok(()))
    }
}

impl tokio::io::AsyncWrite for Replay {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut Discard).poll_write(cx, buf)
    }
    fn poll_write_vectored(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut Discard).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        true
    }
    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

/// `examples/echo_server.rs`'s loop (split, filter data messages, forward)
/// over [`Replay`]: 1 600 messages arriving 16 frames per read, as in the
/// end-to-end benchmark's pipelined row, ending with a close frame.
fn echo_pipeline(c: &mut Criterion) {
    use futures_util::TryStreamExt;
    const COUNT: usize = 1600;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let mut group = c.benchmark_group("echo_pipeline");
    group.throughput(Throughput::Elements(COUNT as u64));
    for (name, msg) in [
        ("binary_20B", Message::binary(vec![7u8; 20])),
        ("text_utf8_16KiB", Message::text("κόσμε ".repeat(16 * 1024 / 11))),
    ] {
        let frame_len = wire(Role::Client, msg.clone(), 1).len();
        let mut bytes = wire(Role::Client, msg, COUNT);
        bytes.extend_from_slice(&wire(Role::Client, Message::Close(None), 1));
        let bytes = bytes.freeze();
        group.bench_function(name, |b| {
            b.iter(|| {
                rt.block_on(async {
                    let io = Replay { wire: bytes.clone(), chunk: frame_len * 16 };
                    let ws = WebSocketStream::from_raw_parts(io, Role::Server, Config::default(), BytesMut::new());
                    let (read, write) = ws.split();
                    read.try_filter(|m| std::future::ready(m.is_text() || m.is_binary())).forward(write).await.unwrap();
                })
            });
        });
    }
    group.finish();
}

/// The server handshake's user-space cost: `Upgrader::accept` reading a
/// request from memory and writing its 101 into a sink (no system calls),
/// for the echo bench's bare request and for a browser's, with
/// permessage-deflate offered and accepted.
fn handshake(c: &mut Criterion) {
    const BARE: &[u8] = b"GET / HTTP/1.1\r\nHost: 127.0.0.1:9001\r\nUpgrade: websocket\r\n\
Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
Sec-WebSocket-Version: 13\r\n\r\n";
    const BROWSER: &[u8] = b"GET /chat?room=7 HTTP/1.1\r\nHost: example.com\r\n\
Connection: Upgrade\r\nPragma: no-cache\r\nCache-Control: no-cache\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36\r\n\
Upgrade: websocket\r\nOrigin: https://example.com\r\nSec-WebSocket-Version: 13\r\n\
Accept-Encoding: gzip, deflate, br, zstd\r\nAccept-Language: en-US,en;q=0.9\r\n\
Cookie: session=4f2a9c; theme=dark\r\nSec-WebSocket-Key: x3JJHMbDL1EzLkh9GBhXDw==\r\n\
Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n";
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let mut group = c.benchmark_group("handshake");
    group.throughput(Throughput::Elements(1));
    for (name, request) in [("bare", BARE), ("browser_deflate", BROWSER)] {
        let upgrader = silverback::Upgrader::new().deflate(silverback::DeflateConfig::default());
        let request = Bytes::from_static(request);
        group.bench_function(name, |b| {
            b.iter(|| {
                rt.block_on(async {
                    let io = Replay { wire: request.clone(), chunk: request.len() };
                    black_box(upgrader.accept(io).await.unwrap());
                })
            });
        });
    }
    group.finish();
}

/// The byte-at-a-time reference for `apply_mask` (RFC 6455 §5.3):
/// octet i is XORed with octet i mod 4 of the key.
fn mask_bytewise(buf: &mut [u8], key: [u8; 4], offset: usize) {
    for (i, b) in buf.iter_mut().enumerate() {
        *b ^= key[(offset + i) % 4];
    }
}
