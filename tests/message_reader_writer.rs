//! Messages streamed one at a time: `next_reader` (`AsyncRead`) and
//! `next_writer` (`AsyncWrite`).
//!
//! A counting global allocator (as in `tests/limits.rs`) tracks, per thread,
//! the bytes allocated and their peak. The large transfers run on a
//! current-thread runtime, so everything they allocate (both ends, the
//! in-memory pipe, the checks) is counted: a 64 MiB message must pass
//! through an echo server in a few MiB, with `max_message_size` at 1 MiB
//! (which a streamed message is not subject to).
// The counting allocator needs `unsafe impl GlobalAlloc`; it only forwards to
// `System` and adds bookkeeping.
#![allow(unsafe_code)]

mod common;
#[path = "common/counting_alloc.rs"]
mod counting_alloc;

use std::io;

use bytes::BytesMut;
use common::{client_frame, client_msg, op, read_frame, server_and_raw_peer, within, ws_pair};
use counting_alloc::peak_during;
use futures_util::{SinkExt, StreamExt};
#[cfg(feature = "deflate")]
use silverback::{deflate::DeflateParams, DeflateConfig};
use silverback::{
    CloseCode, Config, Connector, Error, Limits, Message, MessageKind, ProtocolError, Role, Upgrader, WebSocketStream,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const KIB: usize = 1024;
const MIB: usize = 1024 * KIB;
/// The message streamed through the echo servers.
const BIG: usize = 64 * MIB;
/// What a whole transfer of [`BIG`] may cost at its peak.
const PEAK_BOUND: usize = 8 * MIB;

/// A message limit far below the messages streamed here.
fn small_limit_config() -> Config {
    Config::default().limits(Limits::default().max_message_size(MIB))
}

/// Byte `i` of the test payload: not periodic at any fragment size.
fn pattern(i: usize) -> u8 {
    (i ^ (i >> 11) ^ (i >> 19)) as u8
}

/// Writes `len` bytes of [`pattern`] in writes of varied sizes, then ends
/// the message.
async fn write_pattern<W: AsyncWrite + Unpin>(w: &mut W, len: usize) -> io::Result<()> {
    const SIZES: [usize; 6] = [1, 100, 5000, 16 * KIB, 70_000, 3];
    let mut buf = vec![0u8; 70_000];
    let mut at = 0;
    let mut turn = 0;
    while at < len {
        let n = SIZES[turn % SIZES.len()].min(len - at);
        turn += 1;
        for (k, b) in buf[..n].iter_mut().enumerate() {
            *b = pattern(at + k);
        }
        w.write_all(&buf[..n]).await?;
        at += n;
    }
    w.shutdown().await
}

/// Reads a whole message, checking it against [`pattern`]; returns its
/// length.
async fn check_pattern<R: AsyncRead + Unpin>(r: &mut R) -> io::Result<usize> {
    let mut buf = vec![0u8; 8 * KIB + 13];
    let mut at = 0;
    loop {
        let n = r.read(&mut buf).await?;
        if n == 0 {
            return Ok(at);
        }
        for (k, &b) in buf[..n].iter().enumerate() {
            assert_eq!(b, pattern(at + k), "byte {}", at + k);
        }
        at += n;
    }
}

/// Echoes every data message as it streams in, with `tokio::io::copy`.
async fn stream_echo<S>(ws: WebSocketStream<S>) -> Result<usize, Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (mut read, mut write) = ws.split();
    let mut echoed = 0;
    while let Some(next) = read.next_reader().await {
        let (kind, mut reader) = next?;
        let mut writer = write.next_writer(kind);
        tokio::io::copy(&mut reader, &mut writer).await?;
        writer.shutdown().await?;
        echoed += 1;
    }
    Ok(echoed)
}

/// Streams [`BIG`] bytes to the echo server on the other end of `client`
/// and checks what comes back, while it comes back; then closes.
async fn big_round_trip<S>(client: WebSocketStream<S>)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (mut read, mut write) = client.split();
    let send = async {
        let mut writer = write.next_writer(MessageKind::Binary);
        write_pattern(&mut writer, BIG).await.expect("stream out");
    };
    let receive = async {
        let (kind, mut reader) = read.next_reader().await.expect("a message").expect("no error");
        assert_eq!(kind, MessageKind::Binary);
        check_pattern(&mut reader).await.expect("stream in")
    };
    let ((), received) = tokio::join!(send, receive);
    assert_eq!(received, BIG);
    let mut ws = read.reunite(write).expect("same connection");
    ws.close(None).await.expect("clean close");
}

#[test]
fn sixty_four_mib_echo_over_duplex_in_bounded_memory() {
    let (echoed, peak) = peak_during(|| async {
        let (client, server) = ws_pair(small_limit_config(), 64 * KIB);
        let server = tokio::spawn(stream_echo(server));
        big_round_trip(client).await;
        within("server end", server).await.unwrap().expect("server")
    });
    assert_eq!(echoed, 1);
    eprintln!("peak: {} KiB", peak / KIB);
    assert!(peak < PEAK_BOUND, "peak {peak} bytes");
}

#[test]
fn sixty_four_mib_echo_over_loopback_tcp_in_bounded_memory() {
    let (echoed, peak) = peak_during(|| async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let ws = Upgrader::new().config(small_limit_config()).accept(tcp).await.expect("accept");
            stream_echo(ws).await
        });
        let tcp = TcpStream::connect(addr).await.unwrap();
        let url = format!("ws://{addr}/");
        let (client, _) = Connector::new().config(small_limit_config()).connect_on(tcp, &url).await.expect("connect");
        big_round_trip(client).await;
        within("server end", server).await.unwrap().expect("server")
    });
    assert_eq!(echoed, 1);
    eprintln!("peak: {} KiB", peak / KIB);
    assert!(peak < PEAK_BOUND, "peak {peak} bytes");
}

/// Text with two-, three- and four-byte characters, written in pieces that
/// split characters, read back in pieces that split them again.
#[tokio::test]
async fn text_streams_with_characters_split_across_writes_and_frames() {
    let text: String = "κόσμε € 𝄞 ascii ".repeat(4000);
    let (client, server) = ws_pair(small_limit_config(), 16 * KIB);
    let server = tokio::spawn(stream_echo(server));
    let (mut read, mut write) = client.split();
    let send = async {
        let mut writer = write.next_writer(MessageKind::Text);
        let bytes = text.as_bytes();
        let mut at = 0;
        for size in [1usize, 2, 3, 5, 7, 16 * KIB + 1, 13].iter().cycle() {
            let end = (at + size).min(bytes.len());
            writer.write_all(&bytes[at..end]).await.unwrap();
            at = end;
            if at == bytes.len() {
                break;
            }
            if at % 7 == 0 {
                // A flush cuts a fragment wherever the text is.
                writer.flush().await.unwrap();
            }
        }
        writer.shutdown().await.unwrap();
    };
    let receive = async {
        let (kind, mut reader) = read.next_reader().await.unwrap().unwrap();
        assert_eq!(kind, MessageKind::Text);
        let mut got = Vec::new();
        let mut buf = [0u8; 5];
        loop {
            let n = reader.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        String::from_utf8(got).unwrap()
    };
    let ((), got) = within("text round trip", async { tokio::join!(send, receive) }).await;
    assert_eq!(got, text);
    let mut ws = read.reunite(write).unwrap();
    ws.close(None).await.unwrap();
    assert_eq!(server.await.unwrap().unwrap(), 1);
}

/// The writer refuses invalid UTF-8 and text ending inside a character,
/// with `InvalidData`; the message it had begun still ends validly.
#[tokio::test]
async fn writer_rejects_invalid_text() {
    let (mut ws, mut peer) = server_and_raw_peer(Config::default(), 64 * KIB);
    let mut writer = ws.next_writer(MessageKind::Text);
    writer.write_all("ok κ".as_bytes()).await.unwrap();
    writer.write_all(&[0xe2, 0x82]).await.unwrap(); // two thirds of "€"
    let err = writer.write_all(b"\xff").await.unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    assert_eq!(writer.write_all(b"more").await.unwrap_err().kind(), io::ErrorKind::InvalidData, "sticky");
    drop(writer);
    let mut writer = ws.next_writer(MessageKind::Text);
    writer.write_all(&[0xe2, 0x82]).await.unwrap();
    assert_eq!(writer.shutdown().await.unwrap_err().kind(), io::ErrorKind::InvalidData);
    drop(writer);
    ws.send(Message::text("after")).await.unwrap();
    // The first ended with what was valid, the unfinished character left
    // off; the second had nothing valid to send and sent nothing.
    let first = read_frame(&mut peer).await;
    assert_eq!((first.fin, first.opcode, &first.payload[..]), (true, op::TEXT, "ok κ".as_bytes()));
    let next = read_frame(&mut peer).await;
    assert_eq!((next.fin, next.opcode, &next.payload[..]), (true, op::TEXT, &b"after"[..]));
}

/// Invalid UTF-8 in the middle of a streamed message: the bytes before it
/// were already readable, the read fails with the typed error, and the
/// peer gets close 1007.
#[tokio::test]
async fn invalid_utf8_mid_stream_fails_with_1007() {
    let (mut ws, mut peer) = server_and_raw_peer(Config::default(), 256 * KIB);
    let valid = "κόσμε".repeat(2000);
    peer.write_all(&client_frame(false, 0, op::TEXT, valid.as_bytes())).await.unwrap();
    let (kind, mut reader) = ws.next_reader().await.unwrap().unwrap();
    assert_eq!(kind, MessageKind::Text);
    let mut got = vec![0u8; valid.len()];
    within("valid prefix", reader.read_exact(&mut got)).await.unwrap();
    assert_eq!(got, valid.as_bytes());
    peer.write_all(&client_frame(true, 0, op::CONT, b"fine until \xc3\x28")).await.unwrap();
    let err = within("bad text", reader.read_to_end(&mut Vec::new())).await.unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    let inner = err.get_ref().and_then(|e| e.downcast_ref::<Error>());
    assert!(matches!(inner, Some(Error::Protocol(ProtocolError::InvalidUtf8))), "{err:?}");
    let again = reader.read(&mut [0u8; 8]).await.unwrap_err();
    assert_eq!(again.kind(), io::ErrorKind::InvalidData, "errors are sticky");
    drop(reader);
    assert_eq!(read_frame(&mut peer).await.close_code(), Some(1007));
    assert!(ws.next_reader().await.is_none());
}

/// A ping between the fragments of a message being read is answered while
/// the message is still incomplete, and the message then reads intact.
#[tokio::test]
async fn pings_are_answered_mid_message() {
    let (mut ws, mut peer) = server_and_raw_peer(Config::default(), 256 * KIB);
    peer.write_all(&client_frame(false, 0, op::BINARY, &[1; 30_000])).await.unwrap();
    let (_, mut reader) = ws.next_reader().await.unwrap().unwrap();
    let mut first = vec![0u8; 30_000];
    reader.read_exact(&mut first).await.unwrap();
    peer.write_all(&client_msg(op::PING, b"mid")).await.unwrap();
    peer.write_all(&client_frame(false, 0, op::CONT, &[2; 10])).await.unwrap();
    let mut second = [0u8; 10];
    within("second fragment", reader.read_exact(&mut second)).await.unwrap();
    assert_eq!(second, [2; 10]);
    // The pong went out before the message ended.
    let pong = read_frame(&mut peer).await;
    assert_eq!((pong.opcode, &pong.payload[..]), (op::PONG, &b"mid"[..]));
    peer.write_all(&client_frame(true, 0, op::CONT, &[3; 5])).await.unwrap();
    let mut rest = Vec::new();
    reader.read_to_end(&mut rest).await.unwrap();
    assert_eq!(rest, [3; 5]);
    assert!(first.iter().all(|&b| b == 1));
}

/// A close frame in the middle of a message cuts it short: the read fails
/// with `UnexpectedEof`, the close is echoed, and the stream ends.
#[tokio::test]
async fn close_mid_message_ends_the_reader() {
    let (mut ws, mut peer) = server_and_raw_peer(Config::default(), 64 * KIB);
    peer.write_all(&client_frame(false, 0, op::BINARY, b"partial")).await.unwrap();
    peer.write_all(&client_msg(op::CLOSE, &common::close_payload(1000, "bye"))).await.unwrap();
    let (_, mut reader) = ws.next_reader().await.unwrap().unwrap();
    let mut got = Vec::new();
    let err = within("cut short", reader.read_to_end(&mut got)).await.unwrap_err();
    assert_eq!(got, b"partial");
    assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    drop(reader);
    assert_eq!(read_frame(&mut peer).await.close_code(), Some(1000));
    assert!(ws.next_reader().await.is_none());
    assert!(ws.next().await.is_none());
}

/// Dropping a reader before its message ends discards the rest, whether
/// the next message is read whole or streamed.
#[tokio::test]
async fn dropping_a_reader_mid_message_skips_the_rest() {
    let (mut ws, mut peer) = server_and_raw_peer(Config::default(), 512 * KIB);
    for next in ["whole", "streamed"] {
        peer.write_all(&client_frame(false, 0, op::BINARY, &[7; 40_000])).await.unwrap();
        peer.write_all(&client_msg(op::PING, b"")).await.unwrap();
        peer.write_all(&client_frame(false, 0, op::CONT, &[8; 100_000])).await.unwrap();
        let (_, mut reader) = ws.next_reader().await.unwrap().unwrap();
        let mut some = [0u8; 10];
        reader.read_exact(&mut some).await.unwrap();
        drop(reader);
        peer.write_all(&client_frame(true, 0, op::CONT, &[9; 5])).await.unwrap();
        peer.write_all(&client_msg(op::TEXT, next.as_bytes())).await.unwrap();
        if next == "whole" {
            assert_eq!(within("next message", ws.next()).await.unwrap().unwrap(), Message::text("whole"));
        } else {
            let (kind, mut reader) = within("next reader", ws.next_reader()).await.unwrap().unwrap();
            assert_eq!(kind, MessageKind::Text);
            let mut got = String::new();
            reader.read_to_string(&mut got).await.unwrap();
            assert_eq!(got, "streamed");
        }
        assert_eq!(read_frame(&mut peer).await.opcode, op::PONG);
    }
}

/// A message that `next()` began to gather (it returned a ping that came
/// between fragments) can still be streamed from the start.
#[tokio::test]
async fn a_message_begun_by_next_streams_from_its_start() {
    let (mut ws, mut peer) = server_and_raw_peer(Config::default(), 64 * KIB);
    peer.write_all(&client_frame(false, 0, op::BINARY, b"first ")).await.unwrap();
    peer.write_all(&client_msg(op::PING, b"p")).await.unwrap();
    assert_eq!(ws.next().await.unwrap().unwrap(), Message::ping(&b"p"[..]));
    peer.write_all(&client_frame(true, 0, op::CONT, b"second")).await.unwrap();
    let (_, mut reader) = ws.next_reader().await.unwrap().unwrap();
    let mut got = Vec::new();
    reader.read_to_end(&mut got).await.unwrap();
    assert_eq!(got, b"first second");
}

/// The writer's fragments as a raw peer sees them: the message's opcode
/// first, then continuations, FIN only on the last, no fragment above
/// 16 KiB, a flush cutting one short, RSV clear even with
/// permessage-deflate negotiated; and a writer dropped mid-message still
/// ends it before the next message begins.
#[tokio::test]
async fn writer_fragments_are_visible_on_the_wire() {
    let (io, mut peer) = tokio::io::duplex(1 << 20);
    #[cfg(feature = "deflate")]
    let mut ws = {
        let config = Config::default().deflate(DeflateConfig::default());
        let params = DeflateParams::default();
        let ws = WebSocketStream::from_raw_parts_with_deflate(io, Role::Server, config, BytesMut::new(), params);
        assert!(ws.is_compressing());
        ws
    };
    #[cfg(not(feature = "deflate"))]
    let mut ws = WebSocketStream::from_raw_parts(io, Role::Server, Config::default(), BytesMut::new());
    let payload: Vec<u8> = (0..50_000).map(pattern).collect();
    let mut writer = ws.next_writer(MessageKind::Binary);
    writer.write_all(&payload[..100]).await.unwrap();
    writer.flush().await.unwrap();
    writer.write_all(&payload[100..]).await.unwrap();
    writer.shutdown().await.unwrap();
    drop(writer);
    let mut frames = Vec::new();
    let mut got = Vec::new();
    while got.len() < payload.len() || frames.is_empty() {
        let frame = read_frame(&mut peer).await;
        got.extend_from_slice(&frame.payload);
        let last = frame.fin;
        frames.push(frame);
        if last {
            break;
        }
    }
    assert_eq!(got, payload);
    assert!(frames.len() >= 4, "{} frames", frames.len());
    assert_eq!(frames[0].payload.len(), 100, "the flush ended the first fragment");
    for (i, frame) in frames.iter().enumerate() {
        let first = i == 0;
        let last = i == frames.len() - 1;
        assert_eq!(frame.opcode, if first { op::BINARY } else { op::CONT }, "frame {i}");
        assert_eq!(frame.fin, last, "frame {i}");
        assert_eq!(frame.rsv, 0, "streamed messages are not compressed");
        assert!(!frame.masked);
        assert!(frame.payload.len() <= 16 * KIB, "frame {i}: {}", frame.payload.len());
        assert!(last || !frame.payload.is_empty(), "frame {i} is empty");
    }

    // Dropped after one fragment went out: the drop queues the last one.
    let mut writer = ws.next_writer(MessageKind::Binary);
    writer.write_all(&payload[..20_000]).await.unwrap();
    writer.write_all(&payload[20_000..20_100]).await.unwrap();
    drop(writer);
    let mut writer = ws.next_writer(MessageKind::Text);
    writer.write_all(b"next").await.unwrap();
    writer.shutdown().await.unwrap();
    drop(writer);
    let mut frames = Vec::new();
    for _ in 0..3 {
        let frame = read_frame(&mut peer).await;
        frames.push((frame.opcode, frame.fin, frame.payload.len()));
    }
    let rest = 20_100 - 16 * KIB;
    assert_eq!(frames, [(op::BINARY, false, 16 * KIB), (op::CONT, true, rest), (op::TEXT, true, 4)]);

    // A writer dropped before anything was written sends nothing; a
    // message sent whole still goes out compressed.
    drop(ws.next_writer(MessageKind::Binary));
    ws.send(Message::text("compressed ".repeat(100))).await.unwrap();
    let frame = read_frame(&mut peer).await;
    let rsv = if cfg!(feature = "deflate") { 4 } else { 0 };
    assert_eq!((frame.opcode, frame.fin, frame.rsv), (op::TEXT, true, rsv));
}

/// A client's streamed fragments are masked (the server-side decoder
/// insists), and a message streams both ways between two libraries.
#[tokio::test]
async fn client_writer_masks_its_fragments() {
    let (mut client, mut server) = ws_pair(Config::default(), 64 * KIB);
    let payload: Vec<u8> = (0..100_000).map(pattern).collect();
    let send = async {
        let mut writer = client.next_writer(MessageKind::Binary);
        writer.write_all(&payload).await.unwrap();
        writer.shutdown().await.unwrap();
    };
    let receive = async { server.next().await.unwrap().unwrap() };
    let ((), msg) = within("client to server", async { tokio::join!(send, receive) }).await;
    assert_eq!(msg, Message::binary(payload));
}

#[cfg(feature = "deflate")]
/// Compressed messages stream too: a 64 MiB message compressed by a raw
/// peer as it goes (so the peer holds none of it) inflates in bounded
/// pieces on a connection whose message limit is 1 MiB.
#[test]
fn compressed_sixty_four_mib_streams_in_bounded_memory() {
    let (received, peak) = peak_during(|| async {
        let (io, mut peer) = tokio::io::duplex(64 * KIB);
        let config = small_limit_config().deflate(DeflateConfig::default());
        let params = DeflateParams::default();
        let mut ws = WebSocketStream::from_raw_parts_with_deflate(io, Role::Server, config, BytesMut::new(), params);
        let send = async move {
            let mut deflate = flate2::Compress::new(flate2::Compression::fast(), false);
            let mut plain = vec![0u8; 256 * KIB];
            let mut out = vec![0u8; 512 * KIB];
            let mut at = 0;
            let mut first = true;
            while at < BIG {
                for (k, b) in plain.iter_mut().enumerate() {
                    *b = b"silverback streams "[(at + k) % 19];
                }
                at += plain.len();
                let before = deflate.total_out();
                deflate.compress(&plain, &mut out, flate2::FlushCompress::Sync).unwrap();
                let mut n = (deflate.total_out() - before) as usize;
                let last = at >= BIG;
                if last {
                    // RFC 7692 §7.2.1: the final sync flush's tail is left off.
                    n -= 4;
                }
                let opcode = if first { op::TEXT } else { op::CONT };
                let rsv = if first { 4 } else { 0 };
                peer.write_all(&client_frame(last, rsv, opcode, &out[..n])).await.unwrap();
                first = false;
            }
            peer
        };
        let receive = async {
            let (kind, mut reader) = ws.next_reader().await.unwrap().unwrap();
            assert_eq!(kind, MessageKind::Text);
            let mut buf = vec![0u8; 8 * KIB];
            let mut at = 0;
            loop {
                let n = reader.read(&mut buf).await.unwrap();
                if n == 0 {
                    break;
                }
                for (k, &b) in buf[..n].iter().enumerate() {
                    assert_eq!(b, b"silverback streams "[(at + k) % 19]);
                }
                at += n;
            }
            at
        };
        let (_peer, received) = tokio::join!(send, receive);
        received
    });
    assert_eq!(received, BIG);
    eprintln!("peak: {} KiB", peak / KIB);
    assert!(peak < PEAK_BOUND, "peak {peak} bytes");
}

#[cfg(feature = "deflate")]
/// Between two libraries with permessage-deflate: a large message sent
/// whole (compressed) is streamed in and echoed back streamed
/// (uncompressed), past the receiver's message limit.
#[tokio::test]
async fn compressed_message_is_streamed_and_echoed() {
    let (a, b) = tokio::io::duplex(64 * KIB);
    let config = Config::default().deflate(DeflateConfig::default());
    let params = DeflateParams::default();
    let mut client = WebSocketStream::from_raw_parts_with_deflate(a, Role::Client, config, BytesMut::new(), params);
    let server_config = small_limit_config().deflate(DeflateConfig::default());
    let server = WebSocketStream::from_raw_parts_with_deflate(b, Role::Server, server_config, BytesMut::new(), params);
    let server = tokio::spawn(stream_echo(server));
    let text = "a compressible line of text, ".repeat(100_000);
    client.send(Message::text(text.clone())).await.unwrap();
    let echo = within("echo", client.next()).await.unwrap().unwrap();
    assert_eq!(echo, Message::text(text));
    client.close(None).await.unwrap();
    assert_eq!(server.await.unwrap().unwrap(), 1);
}

/// A frame above `max_frame_size` still fails a streamed message (1009).
#[tokio::test]
async fn frame_limit_still_applies_to_streamed_messages() {
    let config = Config::default().limits(Limits::default().max_frame_size(1000));
    let (mut ws, mut peer) = server_and_raw_peer(config, 64 * KIB);
    peer.write_all(&client_frame(false, 0, op::BINARY, &[0; 1000])).await.unwrap();
    peer.write_all(&client_frame(true, 0, op::CONT, &[0; 1001])).await.unwrap();
    let (_, mut reader) = ws.next_reader().await.unwrap().unwrap();
    let err = within("too large", reader.read_to_end(&mut Vec::new())).await.unwrap_err();
    let inner = err.get_ref().and_then(|e| e.downcast_ref::<Error>());
    assert!(matches!(inner, Some(Error::Capacity(_))), "{err:?}");
    drop(reader);
    assert_eq!(read_frame(&mut peer).await.close_code(), Some(u16::from(CloseCode::MESSAGE_TOO_BIG)));
}

/// Once our close frame is queued nothing more may be sent: the writer
/// reports a broken pipe.
#[tokio::test]
async fn writer_after_close_reports_a_broken_pipe() {
    let (mut ws, _peer) = server_and_raw_peer(Config::default(), 64 * KIB);
    ws.control().close(None).unwrap();
    let mut writer = ws.next_writer(MessageKind::Binary);
    writer.write_all(b"gathered, not yet sent").await.unwrap();
    let err = writer.shutdown().await.unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
    assert!(err.get_ref().and_then(|e| e.downcast_ref::<Error>()).is_some_and(Error::is_closed));
}
