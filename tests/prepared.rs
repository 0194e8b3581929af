//! Prepared messages: encoded once, sent over many connections, by servers
//! (shared frame bytes) and by clients (masked per send); on connections
//! that negotiated permessage-deflate, compressed (RSV1 set) unless the
//! message is short or compression is off.

mod common;

use bytes::BytesMut;
use futures_util::StreamExt;
use silverback::{Config, Message, PreparedMessage, Role, WebSocketStream};
use tokio::io::DuplexStream;

type Ws = WebSocketStream<DuplexStream>;

fn pair(sender: Role) -> (Ws, Ws) {
    let (a, b) = tokio::io::duplex(1 << 20);
    let receiver = if sender == Role::Server { Role::Client } else { Role::Server };
    (
        WebSocketStream::from_raw_parts(a, sender, Config::default(), BytesMut::new()),
        WebSocketStream::from_raw_parts(b, receiver, Config::default(), BytesMut::new()),
    )
}

async fn next(ws: &mut Ws) -> Message {
    tokio::time::timeout(std::time::Duration::from_secs(5), ws.next()).await.expect("in time").unwrap().unwrap()
}

#[tokio::test]
async fn one_prepared_message_reaches_many_connections_from_both_roles() {
    let small = Message::text("broadcast κόσμε");
    let large = Message::binary((0..100_000u32).map(|i| i as u8).collect::<Vec<u8>>());
    let prepared = [PreparedMessage::new(&small).unwrap(), PreparedMessage::new(&large).unwrap()];
    for role in [Role::Server, Role::Client] {
        let mut links: Vec<(Ws, Ws)> = (0..5).map(|_| pair(role)).collect();
        for (tx, _) in &mut links {
            for p in &prepared {
                tx.feed_prepared(p).await.unwrap();
            }
            tx.send_prepared(&prepared[0]).await.unwrap();
        }
        for (_, rx) in &mut links {
            assert_eq!(next(rx).await, small, "{role:?}");
            assert_eq!(next(rx).await, large, "{role:?}");
            assert_eq!(next(rx).await, small, "{role:?}");
        }
    }
}

#[tokio::test]
async fn a_prepared_close_starts_the_closing_handshake() {
    let (mut tx, mut rx) = pair(Role::Server);
    let close = PreparedMessage::new(&Message::Close(None)).unwrap();
    tx.send_prepared(&close).await.unwrap();
    assert_eq!(next(&mut rx).await, Message::Close(None));
    let again = tx.send_prepared(&PreparedMessage::new(&Message::text("late")).unwrap()).await;
    assert!(matches!(again, Err(silverback::Error::Closed)), "{again:?}");
}

#[cfg(feature = "deflate")]
mod compressed {
    use super::*;
    use common::{op, read_frame, within};
    use futures_util::SinkExt;
    use silverback::deflate::{Decompressor, DeflateParams};
    use silverback::{Connector, DeflateConfig, Upgrader};

    const RSV1: u8 = 0b100;

    /// About 16 KiB of JSON-like text.
    fn json() -> String {
        (0..200).map(|i| format!(r#"{{"id":{i},"user":"user{}","text":"hello there, everyone"}},"#, i % 7)).collect()
    }

    fn params(role: Role, no_context_takeover: bool, window_bits: u8) -> DeflateParams {
        let mut params = DeflateParams::default();
        match role {
            Role::Server => {
                params.server_no_context_takeover = no_context_takeover;
                params.server_max_window_bits = window_bits;
            }
            Role::Client => {
                params.client_no_context_takeover = no_context_takeover;
                params.client_max_window_bits = window_bits;
            }
        }
        params
    }

    /// A `role` stream that agreed on `params`, and the raw peer's end.
    fn raw(role: Role, params: DeflateParams, deflate: DeflateConfig) -> (Ws, DuplexStream) {
        let (a, b) = tokio::io::duplex(1 << 20);
        let config = Config::default().deflate(deflate);
        (WebSocketStream::from_raw_parts_with_deflate(a, role, config, BytesMut::new(), params), b)
    }

    fn inflate(decompressor: &mut Decompressor, payload: &[u8]) -> Vec<u8> {
        let mut out = BytesMut::new();
        decompressor.decompress(payload, &mut out, 1 << 24).unwrap();
        decompressor.finish_message(&mut out, 1 << 24).unwrap();
        out.to_vec()
    }

    /// The frames on the wire: RSV1 set, masked by clients only, and the
    /// public decompressor gives back the payload. Every connection's first
    /// message compresses alike (an empty window either way); a second send
    /// repeats those bytes only without context takeover.
    #[tokio::test]
    async fn compressed_prepared_frames_set_rsv1_and_inflate_to_the_payload() {
        let text = json();
        let prepared = PreparedMessage::new(&Message::text(text.clone())).unwrap();
        for role in [Role::Server, Role::Client] {
            for no_context_takeover in [true, false] {
                let case = format!("{role:?}, no context takeover: {no_context_takeover}");
                let mut first_payloads = Vec::new();
                for _ in 0..3 {
                    let agreed = params(role, no_context_takeover, 12);
                    let (mut ws, mut peer) = raw(role, agreed, DeflateConfig::default());
                    let mut decompressor = Decompressor::new(12, no_context_takeover);
                    let mut payloads = Vec::new();
                    for _ in 0..2 {
                        ws.send_prepared(&prepared).await.unwrap();
                        let frame = read_frame(&mut peer).await;
                        assert_eq!((frame.fin, frame.rsv, frame.opcode), (true, RSV1, op::TEXT), "{case}");
                        assert_eq!(frame.masked, role == Role::Client, "{case}");
                        assert!(frame.payload.len() < text.len() / 2, "{case}: {} bytes", frame.payload.len());
                        assert_eq!(inflate(&mut decompressor, &frame.payload), text.as_bytes(), "{case}");
                        payloads.push(frame.payload);
                    }
                    // Without context takeover each send starts from an
                    // empty window; with it, the second starts from the
                    // first's window and comes out different.
                    assert_eq!(payloads[0] == payloads[1], no_context_takeover, "{case}");
                    first_payloads.push(payloads.swap_remove(0));
                }
                assert!(first_payloads.windows(2).all(|w| w[0] == w[1]), "{case}");
            }
        }
    }

    /// Through the real handshake: silverback clients that negotiated
    /// permessage-deflate receive the prepared message intact as text, from
    /// a server that imposes no context takeover (one compression shared)
    /// and from one that keeps its context (one per connection).
    #[tokio::test]
    async fn silverback_clients_receive_compressed_prepared_text() {
        let text = json();
        let msg = Message::text(text.clone());
        let prepared = PreparedMessage::new(&msg).unwrap();
        for server_no_context_takeover in [true, false] {
            let mut clients = Vec::new();
            for _ in 0..4 {
                let (a, b) = tokio::io::duplex(1 << 20);
                let config = DeflateConfig::default().server_no_context_takeover(server_no_context_takeover);
                let server = tokio::spawn(async move { Upgrader::new().deflate(config).accept(a).await.unwrap() });
                let connector = Connector::new().deflate(DeflateConfig::default());
                let (client, _) = connector.connect_on(b, "ws://h/").await.unwrap();
                let mut server = server.await.unwrap();
                assert!(server.is_compressing());
                server.send_prepared(&prepared).await.unwrap();
                server.feed_prepared(&prepared).await.unwrap();
                server.send(Message::text("and one more")).await.unwrap();
                clients.push((server, client));
            }
            for (_server, client) in &mut clients {
                for expected in [&msg, &msg, &Message::text("and one more")] {
                    let got = within("message", client.next()).await.unwrap().unwrap();
                    assert_eq!(got.as_text(), expected.as_text(), "{server_no_context_takeover}");
                }
            }
        }
    }

    /// A prepared message shorter than `min_size`, or sent while
    /// `set_compression(false)`, goes out uncompressed (RSV1 clear), from
    /// both roles, as `Sink::send` would send it.
    #[tokio::test]
    async fn min_size_and_compression_off_send_prepared_uncompressed() {
        let text = json();
        let prepared = PreparedMessage::new(&Message::text(text.clone())).unwrap();
        for role in [Role::Server, Role::Client] {
            for no_context_takeover in [true, false] {
                let agreed = params(role, no_context_takeover, 15);
                let case = format!("{role:?}, no context takeover: {no_context_takeover}");

                let (mut ws, mut peer) = raw(role, agreed, DeflateConfig::default().min_size(text.len() + 1));
                ws.send_prepared(&prepared).await.unwrap();
                let frame = read_frame(&mut peer).await;
                assert_eq!((frame.rsv, frame.payload.as_slice()), (0, text.as_bytes()), "{case}: min_size");

                let (mut ws, mut peer) = raw(role, agreed, DeflateConfig::default().min_size(text.len()));
                ws.set_compression(false);
                ws.send_prepared(&prepared).await.unwrap();
                let frame = read_frame(&mut peer).await;
                assert_eq!((frame.rsv, frame.payload.as_slice()), (0, text.as_bytes()), "{case}: compression off");
                assert_eq!(frame.masked, role == Role::Client);
                ws.set_compression(true);
                ws.send_prepared(&prepared).await.unwrap();
                let frame = read_frame(&mut peer).await;
                assert_eq!(frame.rsv, RSV1, "{case}: compression back on, at exactly min_size");
                let mut decompressor = Decompressor::new(15, no_context_takeover);
                assert_eq!(inflate(&mut decompressor, &frame.payload), text.as_bytes(), "{case}");
            }
        }
    }

    /// Ping, pong and close are never compressed (RFC 7692 §6.1).
    #[tokio::test]
    async fn prepared_control_frames_are_never_compressed() {
        for role in [Role::Server, Role::Client] {
            let (mut ws, mut peer) = raw(role, params(role, true, 15), DeflateConfig::default().min_size(0));
            let ping = PreparedMessage::new(&Message::ping(vec![b'a'; 100])).unwrap();
            ws.send_prepared(&ping).await.unwrap();
            let frame = read_frame(&mut peer).await;
            assert_eq!((frame.rsv, frame.opcode, frame.payload.len()), (0, op::PING, 100), "{role:?}");
        }
    }
}
