//! Prepared messages: encoded once, sent over many connections, by servers
//! (shared frame bytes) and by clients (masked per send).

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
