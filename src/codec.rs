//! [`Codec`]: the protocol core behind `tokio_util::codec`'s traits.

use bytes::BytesMut;
use tokio_util::codec::{Decoder, Encoder};

use crate::config::Config;
use crate::error::Error;
use crate::protocol::{Frame, FrameEncoder, Limits, Message, MessageDecoder, ProtocolError, Role};

/// A WebSocket codec for `tokio_util::codec::Framed` and friends.
///
/// Decoding yields whole [`Message`]s: fragments are assembled, text is
/// validated as UTF-8 while it arrives, control frames between fragments come
/// out as they arrive, and [`Limits`] are checked before any payload is
/// buffered. Encoding takes [`Message`]s or raw [`Frame`]s and masks them
/// with a fresh key per frame when the role is [`Role::Client`].
///
/// The codec does not answer pings or close frames by itself; that is the job
/// of [`WebSocketStream`](crate::WebSocketStream), which most users want.
///
/// ```
/// use bytes::BytesMut;
/// use silverback::{Codec, Message, Role};
/// use tokio_util::codec::{Decoder, Encoder};
///
/// let mut client = Codec::new(Role::Client);
/// let mut server = Codec::new(Role::Server);
/// let mut wire = BytesMut::new();
/// client.encode(Message::text("hi"), &mut wire).unwrap();
/// assert_eq!(server.decode(&mut wire).unwrap(), Some(Message::text("hi")));
/// ```
#[derive(Debug)]
pub struct Codec {
    decoder: MessageDecoder,
    encoder: FrameEncoder,
}

impl Codec {
    /// A codec for `role` with the default [`Limits`].
    #[must_use]
    pub fn new(role: Role) -> Self {
        Codec::with_limits(role, Limits::default())
    }

    /// A codec for `role` with the given limits.
    #[must_use]
    pub fn with_limits(role: Role, limits: Limits) -> Self {
        Codec { decoder: MessageDecoder::new(role, limits), encoder: FrameEncoder::new(role) }
    }

    /// A codec for `role` configured from `config`.
    #[must_use]
    pub fn with_config(role: Role, config: &Config) -> Self {
        Codec::with_limits(role, config.get_limits())
    }

    /// The role this codec plays.
    #[must_use]
    pub fn role(&self) -> Role {
        self.encoder.role()
    }

    /// Accepts compressed messages, inflated by `inflater`
    /// (permessage-deflate was negotiated, e.g. a
    /// [`deflate::Decompressor`](crate::deflate::Decompressor)).
    pub fn set_inflater(&mut self, inflater: Box<dyn crate::protocol::Inflate>) {
        self.decoder.set_inflater(inflater);
    }
}

impl Decoder for Codec {
    type Item = Message;
    type Error = Error;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Message>, Error> {
        Ok(self.decoder.decode(src)?)
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Message>, Error> {
        match self.decoder.decode(src)? {
            Some(msg) => Ok(Some(msg)),
            None if src.is_empty() => Ok(None),
            None => Err(ProtocolError::UnexpectedEof.into()),
        }
    }
}

impl Encoder<Message> for Codec {
    type Error = Error;

    fn encode(&mut self, msg: Message, dst: &mut BytesMut) -> Result<(), Error> {
        let (opcode, payload) = FrameEncoder::message_payload(msg)?;
        self.encoder.encode(dst, true, 0, opcode, &payload);
        Ok(())
    }
}

impl Encoder<Frame> for Codec {
    type Error = Error;

    /// Encodes a raw frame. The caller is responsible for the fragmentation
    /// rules (RFC 6455 §5.4) and for control payloads of at most 125 bytes.
    fn encode(&mut self, frame: Frame, dst: &mut BytesMut) -> Result<(), Error> {
        self.encoder.encode(dst, frame.fin, frame.rsv, frame.opcode, &frame.payload);
        Ok(())
    }
}
