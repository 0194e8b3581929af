//! The decoder's streaming mode (see the parent module's docs): a data
//! message handed out as [`Event`]s as its bytes arrive, never gathered.

use std::mem;

use bytes::{Buf, BytesMut};

use super::{Event, Fragmented, MessageDecoder};
use crate::protocol::{apply_mask, parse_close_payload, DecodeError, Message, OpCode, ProtocolError, RSV1};

/// Streaming: compressed input is fed to the inflater this many bytes at a
/// time. DEFLATE expands a byte to at most about 1032 bytes (a 258-byte
/// match in two bits), so one piece yields at most about 66 KiB.
pub(crate) const INFLATE_PIECE: usize = 64;
/// Streaming: inflation stops once an event holds this many bytes.
pub(crate) const INFLATE_TARGET: usize = 16 * 1024;

impl MessageDecoder {
    /// Decodes the next step of a message in streaming mode, consuming what
    /// it used: a data message comes out as [`Event::Start`], its payload in
    /// [`Event::Data`] pieces as soon as they arrive (a partial frame
    /// included), then [`Event::End`]; control frames come out whole as
    /// [`Event::Control`], also between a message's frames (RFC 6455 §5.4).
    ///
    /// `Ok(None)` means more bytes are needed. Nothing is reserved for a
    /// data frame's payload: the caller reads into `src` at its own pace,
    /// which is what bounds memory. `Limits::max_message_size` does not
    /// apply; `max_frame_size` does, and text is validated as in
    /// [`decode`](MessageDecoder::decode). A message that `decode` had begun
    /// to gather continues here (its gathered part comes first, as data);
    /// the reverse is not supported: once a message has started here, it
    /// must be finished here.
    pub fn decode_chunk(&mut self, src: &mut BytesMut) -> Result<Option<Event>, DecodeError> {
        if let Some(event) = self.queued.take() {
            return Ok(Some(event));
        }
        loop {
            if self.frame.is_none() && !self.start_frame_streamed(src)? {
                return Ok(None);
            }
            if let Some(start) = self.start_streamed() {
                return Ok(Some(start));
            }
            let frame = self.frame.as_mut().expect("frame in progress");
            if frame.header.opcode.is_control() {
                // Control payloads are at most 125 bytes (§5.5): gathered.
                if src.len() < frame.len {
                    src.reserve(frame.len - src.len());
                    return Ok(None);
                }
                if let Some(key) = frame.header.mask {
                    apply_mask(&mut src[frame.processed..frame.len], key, frame.processed);
                }
                let frame = self.frame.take().expect("frame in progress");
                let payload = src.split_to(frame.len).freeze();
                let msg = match frame.header.opcode {
                    OpCode::Ping => Message::Ping(payload),
                    OpCode::Pong => Message::Pong(payload),
                    _ => Message::Close(parse_close_payload(payload)?),
                };
                return Ok(Some(Event::Control(msg)));
            }
            let remaining = frame.len - frame.handed;
            let avail = src.len().min(remaining);
            if avail > 0 {
                // Unmask (and validate plain text) what is new, in place.
                if avail > frame.processed {
                    let fresh = &mut src[frame.processed..avail];
                    if let Some(key) = frame.header.mask {
                        apply_mask(fresh, key, frame.handed + frame.processed);
                    }
                    if frame.validate {
                        self.utf8.feed(fresh).map_err(|_| ProtocolError::InvalidUtf8)?;
                    }
                    frame.processed = avail;
                }
                if frame.compressed {
                    let out = self.inflate_available(src)?;
                    if !out.is_empty() {
                        return Ok(Some(Event::Data(out)));
                    }
                    continue;
                }
                frame.handed += avail;
                frame.processed = 0;
                return Ok(Some(Event::Data(src.split_to(avail))));
            }
            if remaining > 0 {
                return Ok(None);
            }
            let frame = self.frame.take().expect("frame in progress");
            if frame.header.fin {
                return self.end_streamed().map(Some);
            }
        }
    }

    /// Streaming: parses and checks the next frame header, as `decode`
    /// does but without the message size limit. Returns `false` when more
    /// bytes are needed.
    fn start_frame_streamed(&mut self, src: &mut BytesMut) -> Result<bool, DecodeError> {
        self.frame = self.start_frame(src, false)?;
        Ok(self.frame.is_some())
    }

    /// Streaming: the [`Event::Start`] owed for the frame in progress, if
    /// it begins a message or continues one that `decode` was gathering.
    fn start_streamed(&mut self) -> Option<Event> {
        let frame = self.frame.as_ref()?;
        match &mut self.message {
            None if matches!(frame.header.opcode, OpCode::Text | OpCode::Binary) => {
                let (text, compressed) = (frame.header.opcode == OpCode::Text, frame.compressed);
                self.message = Some(Fragmented { text, compressed, data: BytesMut::new(), streamed: true });
                Some(Event::Start { text })
            }
            Some(message) if !message.streamed => {
                message.streamed = true;
                let data = mem::take(&mut message.data);
                if !data.is_empty() {
                    self.queued = Some(Event::Data(data));
                }
                Some(Event::Start { text: message.text })
            }
            _ => None,
        }
    }

    /// Streaming: the final frame is complete. Ends the inflation (whose
    /// last output comes first) and the text's validation (§8.1: a message
    /// may not end inside a character).
    fn end_streamed(&mut self) -> Result<Event, DecodeError> {
        let message = self.message.take().expect("checked in start_frame");
        let mut out = BytesMut::new();
        if message.compressed {
            self.inflate_end(&mut out)?;
            if message.text {
                self.utf8.feed(&out).map_err(|_| ProtocolError::InvalidUtf8)?;
            }
        }
        if message.text {
            self.utf8.finish().map_err(|_| ProtocolError::InvalidUtf8)?;
        }
        if out.is_empty() {
            return Ok(Event::End);
        }
        self.queued = Some(Event::End);
        Ok(Event::Data(out))
    }

    /// Streaming: inflates the unmasked bytes at the front of `src` (those
    /// of the frame in progress), a piece at a time, until an event's worth
    /// of output is ready or the input runs out. Text is validated on the
    /// output.
    fn inflate_available(&mut self, src: &mut BytesMut) -> Result<BytesMut, DecodeError> {
        let frame = self.frame.as_mut().expect("frame in progress");
        let Some(inflate) = self.inflate.as_mut() else {
            return Err(ProtocolError::ReservedBits(RSV1).into());
        };
        let text = self.message.as_ref().is_some_and(|m| m.text);
        let mut out = BytesMut::new();
        let mut taken = 0;
        while taken < frame.processed && out.len() < INFLATE_TARGET {
            let piece = (frame.processed - taken).min(INFLATE_PIECE);
            // No size limit: the message is not gathered. The piece bounds
            // the output.
            inflate
                .decompress(&src[taken..taken + piece], &mut out, usize::MAX)
                .map_err(|_| ProtocolError::InvalidCompressedData)?;
            taken += piece;
        }
        src.advance(taken);
        frame.handed += taken;
        frame.processed -= taken;
        if text {
            self.utf8.feed(&out).map_err(|_| ProtocolError::InvalidUtf8)?;
        }
        Ok(out)
    }

    /// Streaming: the end of a compressed message (RFC 7692 §7.2.2).
    fn inflate_end(&mut self, out: &mut BytesMut) -> Result<(), DecodeError> {
        let Some(inflate) = self.inflate.as_mut() else {
            return Err(ProtocolError::ReservedBits(RSV1).into());
        };
        inflate.finish_message(out, usize::MAX).map_err(|_| ProtocolError::InvalidCompressedData.into())
    }
}
