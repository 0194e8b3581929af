//! `stats()`: the per-connection counters after a known exchange, with and
//! without permessage-deflate, and the keepalive round-trip time under
//! tokio's paused clock. In-memory pipes only.

mod common;

use std::time::Duration;

use common::{client_frame, op, server_and_raw_peer, try_read_frame_within, ws_pair};
use futures_util::{SinkExt, StreamExt};
use silverback::{Config, Message, Stats};
use tokio::io::AsyncWriteExt;

/// Reads the next data message, skipping control messages.
async fn next_data<S>(ws: &mut silverback::WebSocketStream<S>) -> Message
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    loop {
        let msg = ws.next().await.expect("stream ended").expect("read failed");
        if msg.is_text() || msg.is_binary() {
            return msg;
        }
    }
}

#[tokio::test]
async fn counts_data_messages_and_payload_bytes_each_way() {
    let (mut client, mut server) = ws_pair(Config::default(), 1 << 16);
    for text in ["hello", "", "κόσμε"] {
        client.feed(Message::text(text)).await.unwrap();
    }
    client.feed(Message::ping("not counted")).await.unwrap();
    client.flush().await.unwrap();
    server.send(Message::binary(vec![1u8; 300])).await.unwrap();

    for _ in 0..3 {
        next_data(&mut server).await;
    }
    next_data(&mut client).await;

    let c = client.stats();
    assert_eq!((c.messages_out, c.bytes_out), (3, 5 + 10), "control frames are not counted");
    assert_eq!((c.messages_in, c.bytes_in), (1, 300));
    assert_eq!(c.compressed_bytes_out, 0);
    assert_eq!(c.rtt, None, "no keepalive ping, no round trip");
    let s = server.stats();
    assert_eq!((s.messages_in, s.bytes_in, s.messages_out, s.bytes_out), (3, 15, 1, 300));

    // Every handle on the connection reads the same counters.
    let control = server.control();
    let (read, write) = server.split();
    assert_eq!(read.stats(), s);
    assert_eq!(write.stats(), s);
    assert_eq!(control.stats(), s);
}

/// A streamed message counts once, when it ends, with every byte of it.
#[tokio::test]
async fn streamed_messages_count_when_they_end() {
    use tokio::io::AsyncReadExt;
    let (client, server) = ws_pair(Config::default(), 1 << 16);
    let (_client_read, mut client_write) = client.split();
    let (mut server_read, _server_write) = server.split();
    let mut writer = client_write.next_writer(silverback::MessageKind::Binary);
    writer.write_all(&[3u8; 1000]).await.unwrap();
    writer.flush().await.unwrap();
    writer.write_all(&[4u8; 500]).await.unwrap();
    writer.shutdown().await.unwrap();
    drop(writer);
    let (_, mut reader) = server_read.next_reader().await.unwrap().unwrap();
    let mut payload = Vec::new();
    reader.read_to_end(&mut payload).await.unwrap();
    assert_eq!(payload.len(), 1500);
    let s = server_read.stats();
    assert_eq!((s.messages_in, s.bytes_in), (1, 1500));
    let c = client_write.stats();
    assert_eq!((c.messages_out, c.bytes_out), (1, 1500));
}

/// With permessage-deflate, `bytes_out` counts what the application
/// queued and `compressed_bytes_out` what went on the wire; the receiver
/// counts the inflated payload.
#[cfg(feature = "deflate")]
#[tokio::test]
async fn compressed_bytes_are_counted_with_deflate() {
    use bytes::BytesMut;
    use silverback::deflate::DeflateParams;
    use silverback::{DeflateConfig, PreparedMessage, Role, WebSocketStream};

    let (a, b) = tokio::io::duplex(1 << 16);
    let config = Config::default().deflate(DeflateConfig::default());
    let params = DeflateParams::default();
    let mut client = WebSocketStream::from_raw_parts_with_deflate(a, Role::Client, config, BytesMut::new(), params);
    let mut server = WebSocketStream::from_raw_parts_with_deflate(b, Role::Server, config, BytesMut::new(), params);

    let text = "all work and no play ".repeat(100);
    client.send(Message::text(text.clone())).await.unwrap();
    client.send_prepared(&PreparedMessage::new(&Message::text(text.clone())).unwrap()).await.unwrap();
    // Too short to compress: counted out, not as compressed.
    client.send(Message::text("hi")).await.unwrap();
    for _ in 0..3 {
        next_data(&mut server).await;
    }

    let c = client.stats();
    assert_eq!((c.messages_out, c.bytes_out), (3, 2 * text.len() as u64 + 2));
    assert!(c.compressed_bytes_out > 0, "{c:?}");
    assert!(c.compressed_bytes_out < text.len() as u64 / 4, "repetitive text compresses well: {c:?}");
    let s = server.stats();
    assert_eq!((s.messages_in, s.bytes_in), (3, 2 * text.len() as u64 + 2), "counted as decoded");
}

/// The round trip of a keepalive ping: its 8-byte payload identifies it,
/// the pong that echoes it measures the time (paused clock: exactly the
/// delay the peer waited). A pong with another payload measures nothing.
#[tokio::test(start_paused = true)]
async fn keepalive_round_trip_time() {
    let config = Config::default().ping_interval(Duration::from_secs(10));
    let (mut ws, mut peer) = server_and_raw_peer(config, 1 << 16);
    let control = ws.control();
    let reader = tokio::spawn(async move {
        while let Some(msg) = ws.next().await {
            if msg.unwrap().is_text() {
                break;
            }
        }
        ws.stats()
    });

    let ping = try_read_frame_within(&mut peer, Duration::from_secs(60)).await.unwrap();
    assert_eq!((ping.opcode, ping.payload.len()), (op::PING, 8), "keepalive pings carry a counter");
    peer.write_all(&client_frame(true, 0, op::PONG, b"unrelated")).await.unwrap();
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert_eq!(control.stats().rtt, None, "an unsolicited pong measures nothing");
    peer.write_all(&client_frame(true, 0, op::PONG, &ping.payload)).await.unwrap();
    peer.write_all(&client_frame(true, 0, op::TEXT, b"done")).await.unwrap();

    let stats: Stats = reader.await.unwrap();
    assert_eq!(stats.rtt, Some(Duration::from_millis(250)));
    assert_eq!(stats.messages_in, 1, "pongs are not counted as messages");
}
