//! JSON messages (`json` feature): values out as text messages, data
//! messages in as values, typed errors for bad JSON that leave the
//! connection usable.
#![cfg(feature = "json")]

mod common;

use common::ws_pair;
use futures_util::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use silverback::{Config, Error, Message};

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Chat {
    from: String,
    text: String,
    room: u32,
}

fn chat(n: u32) -> Chat {
    Chat { from: "ana".into(), text: format!("κόσμε #{n}"), room: n }
}

#[tokio::test]
async fn values_round_trip_both_ways_and_control_messages_are_skipped() {
    let (mut client, mut server) = ws_pair(Config::default(), 1 << 16);
    client.send_json(&chat(1)).await.unwrap();
    client.send(Message::Ping("p".into())).await.unwrap();
    client.send(Message::binary(serde_json::to_vec(&chat(2)).unwrap())).await.unwrap();
    assert_eq!(server.next_json::<Chat>().await.unwrap().unwrap(), chat(1));
    assert_eq!(server.next_json::<Chat>().await.unwrap().unwrap(), chat(2), "binary JSON, after a skipped ping");

    let (mut read, mut write) = server.split();
    write.send_json(&chat(3)).await.unwrap();
    let echoed = loop {
        // The pong for the ping above comes first.
        match client.next().await.unwrap().unwrap() {
            Message::Pong(_) => {}
            msg => break msg,
        }
    };
    assert_eq!(echoed.as_text(), Some(r#"{"from":"ana","text":"κόσμε #3","room":3}"#));
    assert_eq!(echoed.parse_json::<Chat>().unwrap(), chat(3));

    client.send(Message::text("{\"from\": 1}")).await.unwrap();
    client.send_json(&chat(4)).await.unwrap();
    let err = read.next_json::<Chat>().await.unwrap().unwrap_err();
    assert!(matches!(err, Error::Json(_)), "{err:?}");
    assert!(std::error::Error::source(&err).is_some());
    assert_eq!(read.next_json::<Chat>().await.unwrap().unwrap(), chat(4), "the connection survives bad JSON");

    client.send(Message::Close(None)).await.unwrap();
    assert!(read.next_json::<Chat>().await.is_none(), "ends at the close");
}

#[test]
fn control_messages_do_not_parse() {
    assert!(matches!(Message::Ping("{}".into()).parse_json::<serde_json::Value>(), Err(Error::Json(_))));
    let not_serializable = std::collections::HashMap::from([((1, 2), "tuple keys are not JSON")]);
    assert!(matches!(Message::json(&not_serializable), Err(Error::Json(_))));
}
