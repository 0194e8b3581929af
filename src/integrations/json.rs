//! JSON messages (`json` feature), like gorilla/websocket's `WriteJSON` and
//! `ReadJSON`: a value goes out as one text message; a received data
//! message (text or binary) is deserialized.

use futures_core::Stream;
use futures_util::{SinkExt, StreamExt};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::error::{Error, Result};
use crate::{Message, ReadHalf, WebSocketStream, WriteHalf};

impl Message {
    /// A text message holding `value` as JSON.
    ///
    /// ```
    /// let msg = silverback::Message::json(&serde_json::json!({"op": "join", "room": 7})).unwrap();
    /// assert_eq!(msg.as_text(), Some(r#"{"op":"join","room":7}"#));
    /// ```
    pub fn json<T: Serialize + ?Sized>(value: &T) -> Result<Message> {
        serde_json::to_string(value).map(Message::text).map_err(Error::Json)
    }

    /// The payload of a data message, deserialized from JSON. A control
    /// message is an error.
    pub fn parse_json<T: DeserializeOwned>(&self) -> Result<T> {
        match self {
            Message::Text(text) => serde_json::from_str(text.as_str()).map_err(Error::Json),
            Message::Binary(bytes) => serde_json::from_slice(bytes).map_err(Error::Json),
            _ => Err(Error::Json(<serde_json::Error as serde::de::Error>::custom("not a data message"))),
        }
    }
}

/// The next data message of `stream`, deserialized; control messages are
/// skipped (they are answered by the stream itself).
async fn next_json<St, T>(stream: &mut St) -> Option<Result<T>>
where
    St: Stream<Item = Result<Message>> + Unpin,
    T: DeserializeOwned,
{
    loop {
        match stream.next().await? {
            Ok(msg) if msg.is_text() || msg.is_binary() => return Some(msg.parse_json()),
            Ok(_) => {}
            Err(e) => return Some(Err(e)),
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> WebSocketStream<S> {
    /// Sends `value` as a JSON text message and flushes.
    ///
    /// ```no_run
    /// # async fn run(mut ws: silverback::WebSocketStream<tokio::net::TcpStream>) -> silverback::Result<()> {
    /// #[derive(serde::Serialize, serde::Deserialize)]
    /// struct Chat { from: String, text: String }
    ///
    /// ws.send_json(&Chat { from: "ana".into(), text: "hi".into() }).await?;
    /// while let Some(chat) = ws.next_json::<Chat>().await {
    ///     let chat = chat?;
    ///     println!("{}: {}", chat.from, chat.text);
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub async fn send_json<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        self.send(Message::json(value)?).await
    }

    /// Receives the next data message and deserializes it from JSON;
    /// `None` once the connection has ended. A payload that is not the JSON
    /// expected is an [`Error::Json`] and leaves the connection open.
    ///
    /// Cancel safe, like `next()`: a message not yet returned stays queued.
    pub async fn next_json<T: DeserializeOwned>(&mut self) -> Option<Result<T>> {
        next_json(self).await
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> ReadHalf<S> {
    /// Receives the next data message and deserializes it from JSON; see
    /// [`WebSocketStream::next_json`].
    pub async fn next_json<T: DeserializeOwned>(&mut self) -> Option<Result<T>> {
        next_json(self).await
    }
}

impl<S: AsyncWrite + Unpin> WriteHalf<S> {
    /// Sends `value` as a JSON text message and flushes.
    ///
    /// Not cancel safe, like `SinkExt::send`: dropped before the message was
    /// queued, it is lost.
    pub async fn send_json<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        self.send(Message::json(value)?).await
    }
}
