//! [`Conn`]: the transport and the send-side state machine, behind the
//! lock that both halves share (see `shared.rs`).
//!
//! Frames are queued in order and written by whichever half flushes. Some
//! must go out even while no task writes: pongs and close echoes the
//! protocol obliges us to send, and the pings and close frames a keepalive
//! timer or a [`Control`](crate::Control) handle queues. These *urgent*
//! frames are written by the read half (which is always being polled on a
//! live connection); `urgent_mark` records how far the queue must be
//! written for them to be out.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use tokio::io::AsyncWrite;

use super::trace::trace_event;
use super::write_queue::WriteQueue;
use crate::error::{Error, Result};
use crate::protocol::{
    encode_close_payload, CapacityError, CloseFrame, CloseState, FrameEncoder, Message, OnReceive, OpCode, Role,
    MAX_CONTROL_PAYLOAD,
};
use crate::PreparedMessage;

/// The transport and the send-side state machine.
#[derive(Debug)]
pub(crate) struct Conn<S> {
    pub(crate) io: S,
    queue: WriteQueue,
    encoder: FrameEncoder,
    vectored: bool,
    /// The latest ping's payload, not yet queued as a pong. RFC 6455 §5.5.3:
    /// only the most recent ping needs an answer, so a newer ping replaces it
    /// and a ping flood cannot grow the queue.
    pong: Option<Bytes>,
    /// Urgent frames (see the module docs) are queued up to this stream
    /// position.
    urgent_mark: u64,
    close: CloseState,
    /// The error that failed the connection; replayed by every later send.
    fatal: Option<Error>,
    write_buffer_size: usize,
}

impl<S> Conn<S> {
    /// The sticky error, or `Closed` once our close frame is out.
    fn check_writable(&self) -> Result<()> {
        if let Some(e) = &self.fatal {
            return Err(e.replay());
        }
        if self.close.is_sent() {
            return Err(Error::Closed);
        }
        Ok(())
    }

    /// Queues one frame of a data message sent in pieces (a
    /// [`MessageWriter`](crate::MessageWriter)'s fragment, RFC 6455 §5.4),
    /// never compressed: RSV bits clear. Needs no transport, so that a
    /// writer dropped mid-message can still end it.
    pub(crate) fn push_fragment(&mut self, fin: bool, opcode: OpCode, payload: &[u8]) -> Result<()> {
        self.check_writable()?;
        let header = self.encoder.header(fin, 0, opcode, payload.len());
        self.queue.push_slice(&header, payload);
        Ok(())
    }
}

impl<S: AsyncWrite + Unpin> Conn<S> {
    pub(crate) fn new(io: S, encoder: FrameEncoder, write_buffer_size: usize) -> Self {
        let vectored = io.is_write_vectored();
        Conn {
            io,
            queue: WriteQueue::default(),
            encoder,
            vectored,
            pong: None,
            urgent_mark: 0,
            close: CloseState::default(),
            fatal: None,
            write_buffer_size,
        }
    }

    /// Queues a message from the application. A close message starts the
    /// closing handshake; nothing may be sent after it. The message is
    /// borrowed, so the caller drops it after the lock is released.
    #[inline]
    pub(crate) fn push_message(&mut self, msg: &Message) -> Result<()> {
        self.check_writable()?;
        match msg {
            // Data messages, the hot path: straight into the queue.
            Message::Text(text) => self.push_frame(OpCode::Text, text.as_bytes()),
            Message::Binary(payload) => self.push_frame(OpCode::Binary, payload),
            control => {
                let (opcode, payload) = FrameEncoder::message_payload(control.clone())?;
                self.push_app_frame(opcode, &payload, None);
            }
        }
        Ok(())
    }

    /// Queues a data message compressed by permessage-deflate: `payload` is
    /// the compressed form, sent with RSV1 set (RFC 7692 §6). A server
    /// sends `server_frame`, when given, as it is: that frame, encoded once
    /// for many connections (a prepared message).
    #[cfg(feature = "deflate")]
    pub(crate) fn push_compressed(
        &mut self,
        opcode: OpCode,
        payload: &Bytes,
        server_frame: Option<&Bytes>,
    ) -> Result<()> {
        self.check_writable()?;
        match server_frame {
            Some(frame) if self.encoder.role() == Role::Server => self.queue.push_encoded(frame, self.vectored),
            _ => {
                let header = self.encoder.header(true, crate::protocol::RSV1, opcode, payload.len());
                self.queue.push(&header, payload, self.vectored);
            }
        }
        Ok(())
    }

    /// Queues a message encoded ahead of time. A server sends its frame
    /// bytes as they are; a client must mask, so it encodes the payload.
    pub(crate) fn push_prepared(&mut self, msg: &PreparedMessage) -> Result<()> {
        self.check_writable()?;
        self.push_app_frame(msg.opcode(), msg.payload(), Some(msg.server_frame()));
        Ok(())
    }

    /// Queues a frame the application asked for, data or control (a close
    /// starts the closing handshake), from its server encoding when we are
    /// the server and have one.
    fn push_app_frame(&mut self, opcode: OpCode, payload: &Bytes, server_frame: Option<&Bytes>) {
        if opcode == OpCode::Close {
            if self.close.handle_send() {
                trace_event!(tracing::Level::DEBUG, initiator = "local", code = payload_code(payload), reason = %payload_reason(payload), "closing handshake started");
            }
            self.queue_owed_pong();
        }
        match server_frame {
            Some(frame) if self.encoder.role() == Role::Server => {
                self.queue.push_encoded(frame, self.vectored);
            }
            _ => self.push_frame(opcode, payload),
        }
    }

    /// Queues our close frame unless one was already sent.
    pub(crate) fn push_close(&mut self, frame: Option<&CloseFrame>) -> Result<()> {
        if let Some(e) = &self.fatal {
            return Err(e.replay());
        }
        if self.close.handle_send() {
            trace_close_started("local", frame);
            self.queue_owed_pong();
            self.push_frame(OpCode::Close, &encode_close_payload(frame));
        }
        Ok(())
    }

    fn push_frame(&mut self, opcode: OpCode, payload: &Bytes) {
        let header = self.encoder.header(true, 0, opcode, payload.len());
        self.queue.push(&header, payload, self.vectored);
    }

    fn push_urgent(&mut self, opcode: OpCode, payload: &Bytes) {
        self.push_frame(opcode, payload);
        self.urgent_mark = self.queue.queued();
    }

    /// Queues a ping of ours (keepalive or a control handle) as a frame the
    /// read half writes. Fails once the connection is closing or failed.
    pub(crate) fn push_ping(&mut self, payload: &Bytes) -> Result<()> {
        self.check_writable()?;
        if payload.len() > MAX_CONTROL_PAYLOAD {
            return Err(CapacityError::ControlFrameTooLong { len: payload.len() }.into());
        }
        self.push_urgent(OpCode::Ping, payload);
        Ok(())
    }

    /// Queues our close frame (unless one was sent) as an urgent frame, which
    /// the read half writes if no flush does first.
    pub(crate) fn push_close_urgent(&mut self, frame: Option<&CloseFrame>) -> Result<()> {
        self.push_close(frame)?;
        self.urgent_mark = self.queue.queued();
        Ok(())
    }

    /// A ping arrived: remember to answer it (RFC 6455 §5.5.2).
    pub(crate) fn handle_ping(&mut self, payload: Bytes) {
        if !self.close.is_sent() && self.fatal.is_none() {
            self.pong = Some(payload);
        }
    }

    /// The peer's close frame arrived: echo it unless ours is already out
    /// (RFC 6455 §5.5.1). The echo carries the peer's code, or no code when
    /// the peer sent none.
    pub(crate) fn handle_close(&mut self, frame: Option<&CloseFrame>) {
        self.pong = None;
        if self.close.handle_receive() == OnReceive::Echo {
            trace_close_started("peer", frame);
            let echo = frame.map(|f| CloseFrame::new(f.code, ""));
            self.push_urgent(OpCode::Close, &encode_close_payload(echo.as_ref()));
        }
    }

    /// The connection failed: send the close code for `err` if we still may
    /// (RFC 6455 §7.1.7), and make every later send return the error.
    pub(crate) fn handle_failure(&mut self, err: &Error) {
        self.pong = None;
        if let Some(code) = err.close_code() {
            if self.close.handle_send() && self.fatal.is_none() {
                trace_event!(tracing::Level::INFO, code = u16::from(code), error = %err, "connection failed, closing with an error code");
                let frame = CloseFrame::new(code, "");
                self.push_urgent(OpCode::Close, &encode_close_payload(Some(&frame)));
            }
        }
        if self.fatal.is_none() {
            self.fatal = Some(err.replay());
        }
    }

    /// Whether an urgent frame (or a pong owed) is still unwritten.
    pub(crate) fn has_pending_urgent(&self) -> bool {
        self.pong.is_some() || self.queue.written() < self.urgent_mark
    }

    /// Whether both close frames have been exchanged.
    pub(crate) fn is_close_done(&self) -> bool {
        self.close.is_done()
    }

    /// Writes the urgent frames (and everything queued before them).
    pub(crate) fn poll_urgent(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            self.queue_pong();
            // A pong still waiting for room needs the whole backlog written.
            let mark = if self.pong.is_some() { self.queue.queued() } else { self.urgent_mark };
            ready!(self.poll_write_until(cx, mark))?;
            if self.pong.is_none() {
                return Pin::new(&mut self.io).poll_flush(cx);
            }
        }
    }

    /// Writes everything queued, then flushes the transport.
    pub(crate) fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.queue_pong();
        let mark = self.queue.queued();
        ready!(self.poll_write_until(cx, mark))?;
        Pin::new(&mut self.io).poll_flush(cx)
    }

    /// Shuts the transport's write side down (TCP FIN).
    pub(crate) fn poll_shutdown(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    /// Moves a pending pong into the queue once the previous reply is out and
    /// there is room, so that pings arriving faster than we can write coalesce
    /// into one pong (the latest) instead of queueing one each.
    fn queue_pong(&mut self) {
        let previous_reply_written = self.queue.written() >= self.urgent_mark;
        if previous_reply_written && self.queue.len() < self.write_buffer_size {
            self.queue_owed_pong();
        }
    }

    /// Queues the pending pong now: our close frame is about to follow, and
    /// nothing may be sent after it (RFC 6455 §5.5.1).
    fn queue_owed_pong(&mut self) {
        if let Some(payload) = self.pong.take() {
            self.push_urgent(OpCode::Pong, &payload);
        }
    }

    fn poll_write_until(&mut self, cx: &mut Context<'_>, mark: u64) -> Poll<io::Result<()>> {
        let result = ready!(self.queue.poll_write_until(Pin::new(&mut self.io), cx, mark));
        if let Err(e) = &result {
            if self.fatal.is_none() {
                self.fatal = Some(Error::Io(io::Error::new(e.kind(), e.to_string())));
            }
        }
        Poll::Ready(result)
    }

    /// The sticky error, for sends after the connection failed.
    pub(crate) fn fatal(&self) -> Option<Error> {
        self.fatal.as_ref().map(Error::replay)
    }
}

/// The code of an encoded close payload (RFC 6455 §5.5.1), for tracing.
#[cfg(feature = "tracing")]
fn payload_code(payload: &[u8]) -> Option<u16> {
    Some(u16::from_be_bytes([*payload.first()?, *payload.get(1)?]))
}

/// The reason of an encoded close payload, for tracing.
#[cfg(feature = "tracing")]
fn payload_reason(payload: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(payload.get(2..).unwrap_or_default())
}

/// The closing handshake started: `initiator` (`"local"` or `"peer"`) sent
/// the first close frame, `frame`. An event with the `tracing` feature.
fn trace_close_started(initiator: &'static str, frame: Option<&CloseFrame>) {
    trace_event!(
        tracing::Level::DEBUG,
        initiator,
        code = frame.map(|f| u16::from(f.code)),
        reason = frame.map(|f| f.reason.as_str()),
        "closing handshake started"
    );
    #[cfg(not(feature = "tracing"))]
    let _ = (initiator, frame);
}
