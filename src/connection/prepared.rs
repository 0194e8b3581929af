//! [`PreparedMessage`]: encode once, send to many connections; on
//! connections that compress, compress once per distinct setting.

use std::fmt;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};

use crate::error::CapacityError;
use crate::protocol::{FrameEncoder, OpCode, Role};
use crate::Message;

/// A message encoded once, to be sent to many connections (broadcast).
///
/// A server's frames are not masked, so the encoded frame is the same for
/// every connection: sending a prepared message queues that one shared
/// buffer (no re-encoding, no copy of a large payload). A client must mask
/// every frame with a fresh key, so on a client connection the payload is
/// encoded again — still without cloning the message.
///
/// # Compression
///
/// On a connection that negotiated permessage-deflate, a data message goes
/// out compressed as [`Sink::start_send`](futures_sink::Sink::start_send)
/// would send it: uncompressed (RSV1 clear) when it is shorter than
/// [`DeflateConfig::min_size`](crate::DeflateConfig::min_size) or when
/// [`WriteHalf::set_compression`](crate::WriteHalf::set_compression) turned
/// compression off; ping, pong and close are never compressed.
///
/// - When our side of the connection has **no context takeover**
///   (`server_no_context_takeover` when we are the server,
///   `client_no_context_takeover` when we are the client), each message is
///   compressed from an empty window, so its compressed form depends only on
///   the compression level and our window size. The prepared message
///   compresses itself once per such setting, on the first send that needs
///   it, and keeps the result for every connection (and every clone) that
///   shares the setting: a server sends the same compressed frame to all of
///   them; a client keeps the compressed payload and masks it per send.
/// - With context takeover on our side (the RFC's default, and what
///   browsers get unless the server imposes otherwise), each message may
///   refer back to the ones before it *on that connection*, and the peer's
///   decompressor follows our compressor message by message (RFC 7692
///   §7.1.1). Such a connection must compress every message itself, so it
///   compresses the prepared message with its own compressor on each send,
///   as it would a [`Message`]. A server that broadcasts to many
///   compressing clients should set
///   [`DeflateConfig::server_no_context_takeover`](crate::DeflateConfig::server_no_context_takeover)
///   so that a message is compressed once for all of them.
///
/// Cloning is cheap (a reference count). Send it with
/// [`WebSocketStream::send_prepared`](crate::WebSocketStream::send_prepared)
/// or [`WriteHalf::feed_prepared`](crate::WriteHalf::feed_prepared) (then
/// flush) and their siblings.
///
/// ```
/// use silverback::{Message, PreparedMessage};
///
/// let news = PreparedMessage::new(&Message::text("extra, extra")).unwrap();
/// assert_eq!(news.len(), 12);
/// let copy = news.clone(); // shares the encoded frame
/// # let _ = copy;
/// ```
#[derive(Clone)]
pub struct PreparedMessage {
    inner: Arc<Inner>,
}

struct Inner {
    opcode: OpCode,
    payload: Bytes,
    server_frame: Bytes,
    /// The compressed forms made so far, one per setting.
    #[cfg(feature = "deflate")]
    compressed: compressed::Cache,
}

impl PreparedMessage {
    /// Encodes `msg`. Fails for a ping or pong over 125 bytes.
    pub fn new(msg: &Message) -> Result<Self, CapacityError> {
        let (opcode, payload) = FrameEncoder::message_payload(msg.clone())?;
        let mut frame = BytesMut::new();
        FrameEncoder::new(Role::Server).encode(&mut frame, true, 0, opcode, &payload);
        Ok(PreparedMessage {
            inner: Arc::new(Inner {
                opcode,
                payload,
                server_frame: frame.freeze(),
                #[cfg(feature = "deflate")]
                compressed: compressed::Cache::default(),
            }),
        })
    }

    /// The payload length in bytes.
    #[must_use]
    pub fn len(&self) -> usize {
        self.inner.payload.len()
    }

    /// Whether the payload is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.inner.payload.is_empty()
    }

    pub(crate) fn opcode(&self) -> OpCode {
        self.inner.opcode
    }

    pub(crate) fn payload(&self) -> &Bytes {
        &self.inner.payload
    }

    pub(crate) fn server_frame(&self) -> &Bytes {
        &self.inner.server_frame
    }

    /// The compressed form at `settings`, made now if no connection with
    /// them asked before. Only for data messages.
    #[cfg(feature = "deflate")]
    pub(crate) fn compressed(&self, settings: crate::deflate::FreshSettings) -> Arc<compressed::Compressed> {
        debug_assert!(!self.opcode().is_control(), "control frames are never compressed (RFC 7692 §6.1)");
        self.inner.compressed.get_or_compress(settings, self.opcode(), self.payload())
    }

    /// How many compressed forms were made.
    #[cfg(all(test, feature = "deflate"))]
    pub(crate) fn compressed_count(&self) -> usize {
        self.inner.compressed.len()
    }
}

impl PartialEq for PreparedMessage {
    /// Equal when they encode the same message; what was compressed so far
    /// does not count.
    fn eq(&self, other: &Self) -> bool {
        self.inner.opcode == other.inner.opcode && self.inner.payload == other.inner.payload
    }
}

impl Eq for PreparedMessage {}

impl fmt::Debug for PreparedMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PreparedMessage")
            .field("opcode", &self.inner.opcode)
            .field("payload", &self.inner.payload)
            .finish_non_exhaustive()
    }
}

impl TryFrom<Message> for PreparedMessage {
    type Error = CapacityError;

    fn try_from(msg: Message) -> Result<Self, CapacityError> {
        PreparedMessage::new(&msg)
    }
}

#[cfg(feature = "deflate")]
pub(crate) mod compressed {
    //! The compressed forms of one prepared message, one per setting.

    use std::sync::{Arc, Mutex, OnceLock, PoisonError};

    use bytes::{Bytes, BytesMut};

    use crate::deflate::FreshSettings;
    use crate::protocol::{FrameEncoder, OpCode, Role, RSV1};

    /// A compressed message: the server's whole frame (RSV1 set,
    /// unmasked), and the payload inside it for clients, which mask it.
    #[derive(Debug)]
    pub(crate) struct Compressed {
        server_frame: Bytes,
        payload: Bytes,
    }

    impl Compressed {
        fn new(settings: FreshSettings, opcode: OpCode, payload: &[u8]) -> Self {
            let mut compressed = BytesMut::new();
            settings.compress(payload, &mut compressed);
            let mut frame = BytesMut::with_capacity(compressed.len() + crate::protocol::FrameHeader::MAX_LEN);
            FrameEncoder::new(Role::Server).encode(&mut frame, true, RSV1, opcode, &compressed);
            let server_frame = frame.freeze();
            let payload = server_frame.slice(server_frame.len() - compressed.len()..);
            Compressed { server_frame, payload }
        }

        pub(crate) fn server_frame(&self) -> &Bytes {
            &self.server_frame
        }

        pub(crate) fn payload(&self) -> &Bytes {
            &self.payload
        }
    }

    /// A slot per setting seen, at most 70 (levels 0..=9 by windows
    /// 9..=15) and in practice one or two. The lock is held only to find or
    /// add a slot; the compression itself runs outside it, once per slot,
    /// while other senders of the same setting wait for it
    /// (`OnceLock::get_or_init`) and senders of other settings do not.
    #[derive(Debug, Default)]
    pub(crate) struct Cache {
        slots: Mutex<Vec<Slot>>,
    }

    type Slot = (FreshSettings, Arc<OnceLock<Arc<Compressed>>>);

    impl Cache {
        pub(crate) fn get_or_compress(
            &self,
            settings: FreshSettings,
            opcode: OpCode,
            payload: &[u8],
        ) -> Arc<Compressed> {
            let slot = {
                let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
                if let Some((_, slot)) = slots.iter().find(|(s, _)| *s == settings) {
                    if let Some(done) = slot.get() {
                        return done.clone();
                    }
                    slot.clone()
                } else {
                    let slot = Arc::new(OnceLock::new());
                    slots.push((settings, slot.clone()));
                    slot
                }
            };
            slot.get_or_init(|| Arc::new(Compressed::new(settings, opcode, payload))).clone()
        }

        /// How many compressed forms were made.
        #[cfg(test)]
        pub(crate) fn len(&self) -> usize {
            self.slots.lock().unwrap().iter().filter(|(_, slot)| slot.get().is_some()).count()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_frame_is_the_plain_encoding() {
        let p = PreparedMessage::new(&Message::text("Hello")).unwrap();
        assert_eq!(&p.server_frame()[..], b"\x81\x05Hello");
        assert!(PreparedMessage::new(&Message::ping(vec![0; 126])).is_err());
    }

    #[cfg(feature = "deflate")]
    mod compressed {
        use futures_util::StreamExt;
        use tokio::io::DuplexStream;

        use super::*;
        use crate::deflate::{DeflateParams, COMPRESSIONS};
        use crate::{Config, DeflateConfig, WebSocketStream};

        type Ws = WebSocketStream<DuplexStream>;

        /// A sender in `role` and its peer, both with permessage-deflate
        /// agreed as `params`; the sender compresses at `level`.
        fn pair(role: Role, params: DeflateParams, level: u8) -> (Ws, Ws) {
            let (a, b) = tokio::io::duplex(1 << 16);
            let peer_role = if role == Role::Server { Role::Client } else { Role::Server };
            let config = Config::default().deflate(DeflateConfig::default().level(level));
            let tx = WebSocketStream::from_raw_parts_with_deflate(a, role, config, BytesMut::new(), params);
            let rx = WebSocketStream::from_raw_parts_with_deflate(b, peer_role, config, BytesMut::new(), params);
            (tx, rx)
        }

        fn no_takeover(role: Role, window_bits: u8) -> DeflateParams {
            let mut params = DeflateParams::default();
            match role {
                Role::Server => {
                    (params.server_no_context_takeover, params.server_max_window_bits) = (true, window_bits)
                }
                Role::Client => {
                    (params.client_no_context_takeover, params.client_max_window_bits) = (true, window_bits)
                }
            }
            params
        }

        fn compressions() -> usize {
            COMPRESSIONS.with(std::cell::Cell::get)
        }

        fn news() -> Message {
            Message::text(r#"{"user":"ada","text":"hello, hello, hello everyone","seq":1}"#.repeat(20))
        }

        /// Sends `prepared` on every link and checks that each peer gets
        /// `expected`.
        async fn broadcast(links: &mut [(Ws, Ws)], prepared: &PreparedMessage, expected: &Message) {
            for (tx, _) in links.iter_mut() {
                tx.send_prepared(prepared).await.unwrap();
            }
            for (_, rx) in links.iter_mut() {
                assert_eq!(&rx.next().await.unwrap().unwrap(), expected);
            }
        }

        #[tokio::test]
        async fn compressed_once_per_setting_without_context_takeover() {
            for role in [Role::Server, Role::Client] {
                let msg = news();
                let prepared = PreparedMessage::new(&msg).unwrap();
                let before = compressions();
                let mut links: Vec<_> = (0..50).map(|_| pair(role, no_takeover(role, 15), 1)).collect();
                broadcast(&mut links, &prepared, &msg).await;
                assert_eq!(compressions() - before, 1, "{role:?}: 50 connections, one setting");
                assert_eq!(prepared.compressed_count(), 1);

                // Clones share the cache; sending again compresses nothing.
                broadcast(&mut links, &prepared.clone(), &msg).await;
                assert_eq!(compressions() - before, 1);

                // Another window, another level: one more each.
                let mut other_window: Vec<_> = (0..5).map(|_| pair(role, no_takeover(role, 12), 1)).collect();
                broadcast(&mut other_window, &prepared, &msg).await;
                assert_eq!((compressions() - before, prepared.compressed_count()), (2, 2), "{role:?}");
                let mut other_level: Vec<_> = (0..5).map(|_| pair(role, no_takeover(role, 15), 6)).collect();
                broadcast(&mut other_level, &prepared, &msg).await;
                assert_eq!((compressions() - before, prepared.compressed_count()), (3, 3), "{role:?}");
            }
        }

        /// With context takeover every connection compresses its own copy,
        /// in its window's order: the peer's inflater follows it across
        /// prepared and ordinary messages.
        #[tokio::test]
        async fn compressed_per_connection_with_context_takeover() {
            use futures_util::SinkExt;

            for role in [Role::Server, Role::Client] {
                let msg = news();
                let prepared = PreparedMessage::new(&msg).unwrap();
                let before = compressions();
                let mut links: Vec<_> = (0..20).map(|_| pair(role, DeflateParams::default(), 1)).collect();
                broadcast(&mut links, &prepared, &msg).await;
                assert_eq!(compressions() - before, 20, "{role:?}");
                assert_eq!(prepared.compressed_count(), 0, "nothing shared");
                for (tx, rx) in &mut links {
                    tx.send(msg.clone()).await.unwrap();
                    tx.send_prepared(&prepared).await.unwrap();
                    for _ in 0..2 {
                        assert_eq!(rx.next().await.unwrap().unwrap(), msg);
                    }
                }
                assert_eq!(compressions() - before, 60, "{role:?}");
            }
        }

        /// Control frames are never compressed (RFC 7692 §6.1): a peer
        /// would fail the connection over RSV1 on a ping.
        #[tokio::test]
        async fn prepared_control_frames_stay_uncompressed() {
            let ping = Message::ping(vec![b'p'; 100]);
            let prepared = PreparedMessage::new(&ping).unwrap();
            let before = compressions();
            let (mut tx, mut rx) = pair(Role::Server, no_takeover(Role::Server, 15), 1);
            tx.send_prepared(&prepared).await.unwrap();
            assert_eq!(rx.next().await.unwrap().unwrap(), ping);
            assert_eq!((compressions() - before, prepared.compressed_count()), (0, 0));
        }
    }
}
