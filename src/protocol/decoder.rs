//! Message decoding: frames in, messages out (RFC 6455 §5.2–§5.6).
//!
//! The decoder works on a `BytesMut` that the caller fills. It parses a
//! header, checks it against the rules and the limits *before* any payload is
//! buffered, then unmasks and (for text) validates the payload as it arrives,
//! in place and once, so that invalid UTF-8 fails the connection as soon as it
//! is seen, even in the middle of a frame. A single-frame message is split off
//! the buffer without a copy; fragments are gathered into one buffer.
//!
//! With permessage-deflate (RFC 7692) negotiated, a message whose first frame
//! has RSV1 set is compressed: each of its frames is inflated as it completes,
//! within `max_message_size` of output, and text is validated on the
//! inflated bytes.
//!
//! # Streaming
//!
//! [`MessageDecoder::decode_chunk`] is the same decoder in streaming mode: it
//! hands a data message out as `Event`s (its start, its payload in pieces
//! as the bytes arrive, its end) instead of gathering it, so a message of any
//! size passes through in bounded memory. The frame rules, `max_frame_size`
//! and UTF-8 validation (fail fast, inside a frame) are the same;
//! `max_message_size` is not applied, since nothing is gathered. A
//! compressed message is inflated a small piece of input at a time (DEFLATE
//! expands at most about 1032:1), so each piece of output is bounded too.

use bytes::{Buf, BytesMut};

use crate::protocol::{
    apply_mask, parse_close_payload, CapacityError, DecodeError, FrameHeader, Inflate, InflateError, Limits, Message,
    OpCode, ProtocolError, Role, Status, Utf8Bytes, Utf8Validator, RSV1,
};

/// One step of a data message decoded in streaming mode
/// ([`MessageDecoder::decode_chunk`]): what a reader that hands a message
/// out in pieces is built on.
#[derive(Debug, PartialEq)]
pub enum Event {
    /// A data message begins: text (validated as UTF-8) or binary.
    Start {
        /// A text message.
        text: bool,
    },
    /// The next piece of the message's payload: unmasked, inflated, and for
    /// text validated so far. Never empty.
    Data(BytesMut),
    /// The message is complete (and its text valid to the end).
    End,
    /// A control frame, which may arrive between a message's frames.
    Control(Message),
}

/// The frame whose header has been consumed and whose payload is arriving.
#[derive(Debug)]
struct InFrame {
    header: FrameHeader,
    len: usize,
    /// Leading payload bytes of the buffer already unmasked and validated.
    processed: usize,
    /// Whether the payload is validated as UTF-8 as it arrives (text that
    /// is not compressed).
    validate: bool,
    /// Whether the payload is compressed (RFC 7692 §6).
    compressed: bool,
    /// Streaming mode: payload bytes already handed out (split off the
    /// buffer, which then starts at this offset into the payload).
    handed: usize,
}

/// A fragmented message being gathered (RFC 6455 §5.4).
#[derive(Debug)]
struct Fragmented {
    text: bool,
    compressed: bool,
    /// The payload so far (inflated, for a compressed message).
    data: BytesMut,
    /// Whether it is handed out as `Event`s (streaming mode) rather than
    /// gathered.
    streamed: bool,
}

/// Turns received bytes into [`Message`]s.
#[derive(Debug)]
pub struct MessageDecoder {
    expect_masked: bool,
    allowed_rsv: u8,
    limits: Limits,
    frame: Option<InFrame>,
    message: Option<Fragmented>,
    utf8: Utf8Validator,
    /// Streaming: an event to hand out before decoding further.
    queued: Option<Event>,
    /// The inflater, once permessage-deflate is negotiated.
    inflate: Option<Box<dyn Inflate>>,
}

impl MessageDecoder {
    /// A decoder for the given role (a server expects masked frames).
    #[must_use]
    pub fn new(role: Role, limits: Limits) -> Self {
        MessageDecoder {
            expect_masked: role == Role::Server,
            allowed_rsv: 0,
            limits,
            frame: None,
            message: None,
            utf8: Utf8Validator::new(),
            queued: None,
            inflate: None,
        }
    }

    /// Accepts compressed messages (RSV1 on a message's first frame),
    /// inflated by `inflater`: permessage-deflate was negotiated.
    pub fn set_inflater(&mut self, inflater: Box<dyn Inflate>) {
        self.allowed_rsv = RSV1;
        self.inflate = Some(inflater);
    }

    /// The connection has no more input for now: lets the inflater give up
    /// what it can rebuild (see [`Inflate::idle`]).
    pub fn idle(&mut self) {
        if let Some(inflate) = self.inflate.as_mut() {
            inflate.idle();
        }
    }

    /// The limits in force.
    #[must_use]
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Whether no frame is partly received (a buffer with no pending payload
    /// may then be released).
    #[must_use]
    pub fn is_between_frames(&self) -> bool {
        self.frame.is_none()
    }

    /// Whether a message is being decoded in streaming mode: its
    /// [`Event::Start`] was handed out and its [`Event::End`] not yet.
    #[must_use]
    pub fn is_streaming(&self) -> bool {
        self.queued.is_some() || self.message.as_ref().is_some_and(|m| m.streamed)
    }

    /// Decodes the next message from `src`, consuming what it used.
    ///
    /// `Ok(None)` means more bytes are needed; `src` has then been reserved
    /// for the rest of the current frame (within the limits), unless it is
    /// empty. Control frames that arrive between fragments are returned as
    /// they come (RFC 6455 §5.4). After an error the connection must be
    /// failed: the decoder's state is not meant to be resumed.
    pub fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Message>, DecodeError> {
        match self.decode_whole(src) {
            Some(decoded) => decoded.map(Some),
            None => self.decode_frames(src),
        }
    }

    /// [`decode`](MessageDecoder::decode) without its fast path: for a
    /// caller that has just tried [`decode_whole`](MessageDecoder::decode_whole)
    /// itself (the read half).
    pub fn decode_frames(&mut self, src: &mut BytesMut) -> Result<Option<Message>, DecodeError> {
        loop {
            // The frame stays in a local while it is worked on: a frame that
            // is wholly in the buffer (the common case for small messages)
            // never round-trips through `self.frame`.
            let mut frame = match self.frame.take() {
                Some(frame) => frame,
                None => match self.start_frame(src, true)? {
                    Some(frame) => frame,
                    None => return Ok(None),
                },
            };
            let avail = src.len().min(frame.len);
            if avail > frame.processed {
                let fresh = &mut src[frame.processed..avail];
                if let Some(key) = frame.header.mask {
                    apply_mask(fresh, key, frame.processed);
                }
                if frame.validate {
                    self.utf8.feed(fresh).map_err(|_| ProtocolError::InvalidUtf8)?;
                }
                frame.processed = avail;
            }
            if avail < frame.len {
                reserve_for_payload(src, frame.len - src.len());
                self.frame = Some(frame);
                return Ok(None);
            }
            let payload = src.split_to(frame.len);
            if let Some(msg) = self.finish_frame(frame, payload)? {
                return Ok(Some(msg));
            }
        }
    }

    /// Parses and checks the next header, consuming it. Returns `None` when
    /// more bytes are needed. A message decoded in streaming mode is not
    /// gathered (`gathered` false), so its size is not limited.
    ///
    /// Always inlined, together with `FrameHeader::parse`: the hot
    /// whole-message path (`decode_frames`) loses about 5 % on small
    /// messages when this is an out-of-line call.
    #[inline(always)]
    fn start_frame(&mut self, src: &mut BytesMut, gathered: bool) -> Result<Option<InFrame>, DecodeError> {
        let (header, header_len) = match FrameHeader::parse(src)? {
            Status::Complete(h, n) => (h, n),
            // An empty buffer is left to the caller, which sizes its reads
            // itself (and may have released the buffer while idle):
            // reserving a header's few bytes here would cost an allocation
            // and then a reallocation per message.
            Status::Partial(n) => {
                if !src.is_empty() {
                    src.reserve(n - src.len());
                }
                return Ok(None);
            }
        };
        header.validate(self.expect_masked, self.allowed_rsv)?;
        let rsv1 = header.rsv & RSV1 != 0;
        // RFC 7692 §6.1: RSV1 marks a compressed message on its first frame
        // only; control frames are never compressed.
        if rsv1 && (header.opcode.is_control() || header.opcode == OpCode::Continuation) {
            return Err(ProtocolError::CompressedControlOrContinuation.into());
        }
        let (text, compressed) = match (header.opcode, &self.message) {
            // §5.4: a continuation needs a message in progress …
            (OpCode::Continuation, None) => return Err(ProtocolError::UnexpectedContinuation.into()),
            (OpCode::Continuation, Some(m)) => (m.text, m.compressed),
            // … and a new data frame must not interrupt one.
            (OpCode::Text | OpCode::Binary, Some(_)) => return Err(ProtocolError::ExpectedContinuation.into()),
            (OpCode::Text, None) => (true, rsv1),
            (OpCode::Binary, None) => (false, rsv1),
            _ => (false, false),
        };
        let max_frame = self.limits.get_max_frame_size();
        if header.payload_len > max_frame as u64 {
            return Err(CapacityError::FrameTooLarge { len: header.payload_len, max: max_frame }.into());
        }
        // A compressed message's size is known only once inflated: inflation
        // enforces the limit on its output.
        if gathered && !header.opcode.is_control() && !compressed {
            let so_far = self.message.as_ref().map_or(0, |m| m.data.len()) as u64;
            let total = so_far + header.payload_len;
            let max_message = self.limits.get_max_message_size();
            if total > max_message as u64 {
                return Err(CapacityError::MessageTooLarge { len: total, max: max_message }.into());
            }
        }
        if header.opcode == OpCode::Text {
            self.utf8.reset();
        }
        src.advance(header_len);
        let len = header.payload_len as usize;
        Ok(Some(InFrame { header, len, processed: 0, validate: text && !compressed, compressed, handed: 0 }))
    }

    /// A whole frame has arrived (unmasked, validated so far): turn it into a
    /// message, or gather it into the fragmented one.
    fn finish_frame(&mut self, frame: InFrame, payload: BytesMut) -> Result<Option<Message>, DecodeError> {
        let fin = frame.header.fin;
        if frame.compressed {
            return self.inflate_frame(frame.header.opcode, fin, &payload);
        }
        let msg = match frame.header.opcode {
            OpCode::Ping => Message::Ping(payload.freeze()),
            OpCode::Pong => Message::Pong(payload.freeze()),
            OpCode::Close => Message::Close(parse_close_payload(payload.freeze())?),
            OpCode::Text | OpCode::Binary if !fin => {
                let text = frame.header.opcode == OpCode::Text;
                self.message = Some(Fragmented { text, compressed: false, data: payload, streamed: false });
                return Ok(None);
            }
            OpCode::Continuation => {
                let message = self.message.as_mut().expect("checked in start_frame");
                message.data.unsplit(payload);
                if !fin {
                    return Ok(None);
                }
                let message = self.message.take().expect("checked above");
                self.data_message(message.text, message.data)?
            }
            OpCode::Text => self.data_message(true, payload)?,
            OpCode::Binary => self.data_message(false, payload)?,
        };
        Ok(Some(msg))
    }

    /// A whole frame of a compressed message has arrived: inflate it onto
    /// the message (RFC 7692 §7.2.2), validating text as it comes out.
    fn inflate_frame(&mut self, opcode: OpCode, fin: bool, payload: &[u8]) -> Result<Option<Message>, DecodeError> {
        let Some(inflate) = self.inflate.as_mut() else {
            return Err(ProtocolError::ReservedBits(RSV1).into());
        };
        let max = self.limits.get_max_message_size();
        let mut message = match self.message.take() {
            Some(message) => message,
            None => {
                let text = opcode == OpCode::Text;
                Fragmented { text, compressed: true, data: BytesMut::new(), streamed: false }
            }
        };
        let before = message.data.len();
        let inflated = inflate.decompress(payload, &mut message.data, max).and_then(|()| {
            if fin {
                inflate.finish_message(&mut message.data, max)
            } else {
                Ok(())
            }
        });
        inflated.map_err(|e| match e {
            InflateError::TooLarge => DecodeError::from(CapacityError::InflatedMessageTooLarge { max }),
            _ => ProtocolError::InvalidCompressedData.into(),
        })?;
        if message.text {
            self.utf8.feed(&message.data[before..]).map_err(|_| ProtocolError::InvalidUtf8)?;
        }
        if !fin {
            self.message = Some(message);
            return Ok(None);
        }
        self.data_message(message.text, message.data).map(Some)
    }

    fn data_message(&mut self, text: bool, data: BytesMut) -> Result<Message, DecodeError> {
        if !text {
            return Ok(Message::Binary(data.freeze()));
        }
        self.utf8.finish().map_err(|_| ProtocolError::InvalidUtf8)?;
        Ok(Message::Text(Utf8Bytes::from_bytes_unchecked(data.freeze())))
    }
}

/// Payloads up to this size get their whole remainder reserved at once (one
/// allocation, no copy as they arrive).
const EXACT_RESERVE_MAX: usize = 64 * 1024;

/// Makes room for `missing` more payload bytes: all of it when that is
/// small, otherwise as much as is already buffered (doubling), so the
/// copying on growth stays linear in the bytes received and what a frame
/// makes us allocate stays proportional to what the peer actually sent: a
/// header alone announcing a huge payload costs at most
/// [`EXACT_RESERVE_MAX`], not the announced size (many hostile connections
/// could otherwise each claim the frame limit for the price of 14 bytes).
fn reserve_for_payload(src: &mut BytesMut, missing: usize) {
    src.reserve(missing.min(EXACT_RESERVE_MAX.max(src.len())));
}

mod chunked;
#[cfg(all(test, feature = "deflate"))]
pub(crate) use chunked::{INFLATE_PIECE, INFLATE_TARGET};
#[cfg(test)]
mod tests;
mod whole;
