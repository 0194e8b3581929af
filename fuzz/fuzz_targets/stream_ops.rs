//! Stateful: arbitrary sequences of operations on a `WebSocketStream` over a
//! small `tokio::io::duplex` pipe, on a current-thread runtime with a paused
//! clock. Every future is polled a bounded number of times with a no-op
//! waker and then dropped, so cancellation mid-poll is exercised everywhere.
//!
//! The other end of the pipe is a scripted peer that writes raw bytes or
//! well-formed (possibly fragmented, compressed, interleaved) messages,
//! reads at its own pace, shuts down or vanishes. The application side sends
//! (poll_ready / start_send / flush, `feed_prepared`), polls `next()` once
//! and drops it, closes, toggles compression, splits and reunites, and
//! advances the clock past the close timeout.
//!
//! Asserts:
//! - no panic;
//! - after `next()` yields an error or `None`, it yields only `None`, and
//!   every later send fails (fatal errors are sticky; a close, sent or
//!   received, forbids further data);
//! - every received message is well formed and within the limits;
//! - everything the stream writes decodes without error on the peer's side
//!   (masking, close codes, compression with the agreed window and context
//!   takeover), the data messages arrive in the order they were queued and
//!   nothing follows our close frame; a message whose `feed_prepared` future
//!   was dropped before it completed is never sent;
//! - while the peer has sent only well-formed messages, `next()` yields
//!   exactly those, in order, and fails only when a message broke a limit or
//!   the peer went away; a message over a limit is never delivered;
//! - `reunite` accepts the halves of one stream.
#![no_main]

use std::collections::VecDeque;
use std::future::Future;
use std::pin::{pin, Pin};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use arbitrary::Arbitrary;
use bytes::{Buf, BufMut, BytesMut};
use futures_util::{Sink, Stream};
use libfuzzer_sys::fuzz_target;
use silverback::deflate::{Compressor, DeflateParams};
use silverback::protocol::{encode_close_payload, FrameEncoder, MessageDecoder, OpCode, RSV1};
use silverback::{
    CapacityError, CloseCode, CloseFrame, Config, DeflateConfig, Error, Limits, Message, PreparedMessage, ReadHalf,
    Role, WebSocketStream, WriteHalf,
};
use silverback_fuzz::{block_on, check_message, pick};
use tokio::io::{AsyncRead, AsyncWrite, DuplexStream, ReadBuf};

#[derive(Arbitrary, Debug)]
struct Input {
    server: bool,
    duplex_size: u16,
    write_buffer_size: u16,
    limits: u8,
    close_timeout_ms: u16,
    deflate: Option<Deflate>,
    ops: Vec<Op>,
}

#[derive(Arbitrary, Debug)]
struct Deflate {
    server_no_context_takeover: bool,
    client_no_context_takeover: bool,
    server_max_window_bits: u8,
    client_max_window_bits: u8,
    level: u8,
    min_size: u8,
    peer_level: u8,
}

#[derive(Arbitrary, Debug)]
enum Op {
    /// The peer writes raw bytes (garbage, or frames the fuzzer made up).
    PeerRaw(Vec<u8>),
    /// The peer writes a well-formed message.
    PeerMessage(PeerMsg),
    /// The peer reads at most this many bytes of what we wrote.
    PeerRead(u16),
    /// The peer shuts its write side down (we read end of stream).
    PeerShutdown,
    /// The peer goes away (our writes fail).
    PeerDrop,
    /// poll_ready, start_send, then poll_flush up to n times.
    Send(AppMsg, u8),
    /// poll_ready, start_send.
    Feed(AppMsg),
    /// `feed_prepared` polled up to n times, then dropped.
    FeedPrepared(AppMsg, u8),
    /// poll_flush up to n times.
    Flush(u8),
    /// `next()` polled once, then dropped.
    PollNext,
    /// The peer pumps and `next()` is polled, n times.
    Drive(u8),
    /// `close()` polled up to n times (the peer pumping in between), then
    /// dropped.
    Close(Option<(u16, Vec<u8>)>, u8),
    Split,
    Reunite,
    SetCompression(bool),
    /// The paused clock moves on by this many milliseconds.
    Advance(u16),
}

#[derive(Arbitrary, Debug)]
struct PeerMsg {
    kind: PeerKind,
    payload: Vec<u8>,
    fragments: u8,
    compress: bool,
    ping_between: Option<Vec<u8>>,
}

#[derive(Arbitrary, Debug)]
enum PeerKind {
    Text,
    Binary,
    Ping,
    Pong,
    Close(u16),
}

#[derive(Arbitrary, Debug, Clone)]
enum AppMsg {
    /// Taken as UTF-8, lossily (byte vectors keep hand-made seeds simple).
    Text(Vec<u8>),
    Binary(Vec<u8>),
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    Close(Option<(u16, Vec<u8>)>),
}

impl AppMsg {
    fn into_message(self) -> Message {
        match self {
            AppMsg::Text(text) => Message::text(String::from_utf8_lossy(&text).into_owned()),
            AppMsg::Binary(data) => Message::binary(data),
            AppMsg::Ping(data) => Message::ping(data),
            AppMsg::Pong(data) => Message::pong(data),
            AppMsg::Close(frame) => Message::close(close_frame(frame)),
        }
    }
}

fn close_frame(frame: Option<(u16, Vec<u8>)>) -> Option<CloseFrame> {
    frame.map(|(code, reason)| CloseFrame::new(CloseCode::from(code), String::from_utf8_lossy(&reason).into_owned()))
}

/// (max_frame_size, max_message_size) pairs.
const LIMITS: [(usize, usize); 4] = [(1 << 16, 1 << 17), (100, 300), (1 << 10, 1 << 10), (40, 1 << 12)];

fuzz_target!(|input: Input| {
    block_on(run(input));
});

async fn run(input: Input) {
    let role = if input.server { Role::Server } else { Role::Client };
    let peer_role = if input.server { Role::Client } else { Role::Server };
    let (max_frame, max_message) = pick(&LIMITS, input.limits);
    let limits = Limits::default().max_frame_size(max_frame).max_message_size(max_message);
    let mut config = Config::default()
        .limits(limits)
        .write_buffer_size(usize::from(input.write_buffer_size % 4096))
        .read_buffer_size(256)
        .close_timeout(Duration::from_millis(u64::from(input.close_timeout_ms % 5000) + 1));
    let (ours, theirs) = tokio::io::duplex(usize::from(input.duplex_size % 2048) + 1);

    let mut peer_decoder = MessageDecoder::new(peer_role, Limits::unlimited());
    let mut peer_compressor = None;
    let ws = match &input.deflate {
        None => WebSocketStream::from_raw_parts(ours, role, config, BytesMut::new()),
        Some(d) => {
            let params = DeflateParams {
                server_no_context_takeover: d.server_no_context_takeover,
                client_no_context_takeover: d.client_no_context_takeover,
                server_max_window_bits: 8 + d.server_max_window_bits % 8,
                client_max_window_bits: 8 + d.client_max_window_bits % 8,
            };
            config = config.deflate(DeflateConfig::default().level(d.level % 10).min_size(usize::from(d.min_size)));
            peer_decoder.set_inflater(Box::new(params.decompressor(peer_role)));
            peer_compressor = params.compressor(peer_role, d.peer_level % 10);
            WebSocketStream::from_raw_parts_with_deflate(ours, role, config, BytesMut::new(), params)
        }
    };

    let mut h = Harness {
        ws: Some(Ws::Whole(ws)),
        peer: Peer {
            io: Some(theirs),
            out: BytesMut::new(),
            shut: false,
            inbox: BytesMut::new(),
            decoder: peer_decoder,
            compressor: peer_compressor,
            encoder: FrameEncoder::new(peer_role),
            our_close_seen: false,
            sent: VecDeque::new(),
        },
        reader: Reader { limits, clean: true, expected: VecDeque::new(), failed: false, ended: false, unknown: false },
        dead: false,
    };
    for op in input.ops {
        h.apply(op).await;
    }
    // Let whatever is still queued reach the peer, for the write oracle.
    h.drive(16);
}

enum Ws {
    Whole(WebSocketStream<DuplexStream>),
    Split(ReadHalf<DuplexStream>, WriteHalf<DuplexStream>),
}

struct Harness {
    /// Always `Some`, except while `Split` or `Reunite` moves it.
    ws: Option<Ws>,
    peer: Peer,
    reader: Reader,
    /// A send must fail from now on: the connection failed, or a close frame
    /// was queued (ours or the echo of the peer's).
    dead: bool,
}

/// The scripted other end of the pipe.
struct Peer {
    io: Option<DuplexStream>,
    /// Bytes the peer still has to write.
    out: BytesMut,
    shut: bool,
    /// What the stream wrote, not yet decoded.
    inbox: BytesMut,
    decoder: MessageDecoder,
    compressor: Option<Compressor>,
    encoder: FrameEncoder,
    our_close_seen: bool,
    /// Data messages the stream queued, not yet seen by the peer.
    sent: VecDeque<Message>,
}

/// A message the peer sent, as the stream should yield it.
struct Expected {
    msg: Message,
    /// It breaks a limit: the stream must fail instead of yielding it.
    over_limit: bool,
}

/// The read side's observed state and the read oracle.
struct Reader {
    limits: Limits,
    /// The peer has sent only well-formed messages, and nothing consumed
    /// messages behind our back: `expected` is exact.
    clean: bool,
    expected: VecDeque<Expected>,
    failed: bool,
    ended: bool,
    /// `close()` failed: whether the read side ended is unknown.
    unknown: bool,
}

/// `STREAM_OPS_TRACE=1` prints each operation and what the stream yields,
/// to follow a reproducer.
fn tracing() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("STREAM_OPS_TRACE").is_some())
}

fn cx() -> Context<'static> {
    Context::from_waker(Waker::noop())
}

impl Harness {
    async fn apply(&mut self, op: Op) {
        if tracing() {
            eprintln!("op: {op:?}");
        }
        match op {
            Op::PeerRaw(bytes) => {
                self.reader.clean = false;
                self.peer.out.extend_from_slice(&bytes);
                self.peer.pump(usize::MAX, true);
            }
            Op::PeerMessage(msg) => {
                let limits = self.reader.limits;
                let expected = self.peer.write_message(msg, limits);
                self.reader.expected.extend(expected);
                self.peer.pump(usize::MAX, true);
            }
            Op::PeerRead(n) => self.peer.pump(usize::from(n), false),
            Op::PeerShutdown => {
                self.peer.pump(usize::MAX, true);
                if let Some(io) = self.peer.io.as_mut() {
                    let _ = Pin::new(io).poll_shutdown(&mut cx());
                }
                self.peer.shut = true;
            }
            Op::PeerDrop => {
                self.peer.pump(usize::MAX, true);
                self.peer.io = None;
                self.peer.shut = true;
            }
            Op::Send(msg, polls) => {
                self.feed(msg);
                self.flush(polls);
            }
            Op::Feed(msg) => self.feed(msg),
            Op::FeedPrepared(msg, polls) => self.feed_prepared(msg, polls),
            Op::Flush(polls) => self.flush(polls),
            Op::PollNext => {
                let poll = match self.ws.as_mut().expect("stream present") {
                    Ws::Whole(ws) => Pin::new(ws).poll_next(&mut cx()),
                    Ws::Split(read, _) => Pin::new(read).poll_next(&mut cx()),
                };
                self.on_next(poll);
            }
            Op::Drive(n) => self.drive(usize::from(n % 32) + 1),
            Op::Close(frame, polls) => self.close(close_frame(frame), polls),
            Op::Split => {
                self.ws = Some(match self.ws.take().expect("stream present") {
                    Ws::Whole(ws) => {
                        let (read, write) = ws.split();
                        assert!(read.is_pair_of(&write), "halves of one stream are not a pair");
                        Ws::Split(read, write)
                    }
                    split => split,
                });
            }
            Op::Reunite => {
                self.ws = Some(match self.ws.take().expect("stream present") {
                    Ws::Split(read, write) => {
                        Ws::Whole(read.reunite(write).unwrap_or_else(|_| panic!("reunite refused a pair")))
                    }
                    whole => whole,
                });
            }
            Op::SetCompression(on) => match self.ws.as_mut().expect("stream present") {
                Ws::Whole(ws) => ws.set_compression(on),
                Ws::Split(_, write) => write.set_compression(on),
            },
            Op::Advance(ms) => tokio::time::advance(Duration::from_millis(u64::from(ms))).await,
        }
    }

    /// poll_ready then start_send, as `SinkExt::feed` does on its first poll.
    fn feed(&mut self, msg: AppMsg) {
        let msg = msg.into_message();
        let result = match self.ws.as_mut().expect("stream present") {
            Ws::Whole(ws) => sink_feed(ws, msg.clone()),
            Ws::Split(_, write) => sink_feed(write, msg.clone()),
        };
        match result {
            None => {}
            Some(Ok(())) => self.queued(msg),
            Some(Err(e)) => self.send_failed(&msg, &e),
        }
    }

    fn feed_prepared(&mut self, msg: AppMsg, polls: u8) {
        let msg = msg.into_message();
        let Ok(prepared) = PreparedMessage::new(&msg) else { return };
        let Harness { ws, peer, .. } = self;
        let mut result = None;
        {
            let mut fut: Pin<Box<dyn Future<Output = silverback::Result<()>> + '_>> =
                match ws.as_mut().expect("stream present") {
                    Ws::Whole(ws) => Box::pin(ws.feed_prepared(&prepared)),
                    Ws::Split(_, write) => Box::pin(write.feed_prepared(&prepared)),
                };
            for _ in 0..=polls % 8 {
                if let Poll::Ready(r) = fut.as_mut().poll(&mut cx()) {
                    result = Some(r);
                    break;
                }
                peer.pump(usize::MAX, true);
            }
        }
        // Dropped while pending: documented as not queued.
        match result {
            None => {}
            Some(Ok(())) => self.queued(msg),
            Some(Err(e)) => self.send_failed(&msg, &e),
        }
    }

    fn queued(&mut self, msg: Message) {
        assert!(!self.dead, "a send succeeded after the connection failed or closed: {msg:?}");
        match msg {
            Message::Text(_) | Message::Binary(_) => self.peer.sent.push_back(msg),
            Message::Close(_) => self.dead = true,
            Message::Ping(_) | Message::Pong(_) => {}
        }
    }

    fn send_failed(&mut self, msg: &Message, e: &Error) {
        if let Error::Capacity(CapacityError::ControlFrameTooLong { len }) = e {
            assert!(len > &125 && (msg.is_ping() || msg.is_pong()), "{e:?} for {msg:?}");
            return;
        }
        self.dead = true;
    }

    fn flush(&mut self, polls: u8) {
        let Harness { ws, peer, dead, .. } = self;
        for _ in 0..=polls % 8 {
            let poll = match ws.as_mut().expect("stream present") {
                Ws::Whole(ws) => Pin::new(ws).poll_flush(&mut cx()),
                Ws::Split(_, write) => Pin::new(write).poll_flush(&mut cx()),
            };
            match poll {
                Poll::Ready(Ok(())) => return,
                Poll::Ready(Err(_)) => {
                    *dead = true;
                    return;
                }
                Poll::Pending => peer.pump(usize::MAX, true),
            }
        }
    }

    fn close(&mut self, frame: Option<CloseFrame>, polls: u8) {
        let Harness { ws, peer, reader, .. } = self;
        let mut result = None;
        match ws.as_mut().expect("stream present") {
            Ws::Whole(ws) => {
                // close() reads and discards data messages: the read oracle
                // cannot follow.
                reader.clean = false;
                let mut fut = pin!(ws.close(frame));
                for _ in 0..=polls % 16 {
                    if let Poll::Ready(r) = fut.as_mut().poll(&mut cx()) {
                        result = Some(r);
                        break;
                    }
                    peer.pump(usize::MAX, true);
                }
                match &result {
                    Some(Ok(())) => reader.ended = true,
                    Some(Err(Error::Timeout)) | None => {}
                    Some(Err(_)) => reader.unknown = true,
                }
            }
            Ws::Split(_, write) => {
                let mut fut = pin!(write.send_close(frame));
                for _ in 0..=polls % 16 {
                    if let Poll::Ready(r) = fut.as_mut().poll(&mut cx()) {
                        result = Some(r);
                        break;
                    }
                    peer.pump(usize::MAX, true);
                }
            }
        }
        if tracing() {
            eprintln!("  close: {result:?}");
        }
        // Polled at least once: our close frame is queued (or the
        // connection had already failed).
        self.dead = true;
    }

    fn drive(&mut self, rounds: usize) {
        for _ in 0..rounds {
            self.peer.pump(usize::MAX, true);
            let poll = match self.ws.as_mut().expect("stream present") {
                Ws::Whole(ws) => Pin::new(ws).poll_next(&mut cx()),
                Ws::Split(read, _) => Pin::new(read).poll_next(&mut cx()),
            };
            self.on_next(poll);
        }
        self.peer.pump(usize::MAX, true);
    }

    fn on_next(&mut self, poll: Poll<Option<silverback::Result<Message>>>) {
        if tracing() && poll.is_ready() {
            eprintln!("  next: {poll:?}");
        }
        let r = &mut self.reader;
        if (r.failed || r.ended) && !r.unknown {
            assert!(matches!(poll, Poll::Ready(None)), "next() after the end or an error gave {poll:?}");
            return;
        }
        let peer_gone = self.peer.shut;
        match poll {
            Poll::Pending => {}
            Poll::Ready(None) => {
                r.ended = true;
                r.unknown = false;
                self.dead = true;
            }
            Poll::Ready(Some(Ok(msg))) => {
                check_message(&msg, r.limits);
                if r.clean {
                    let expected = r.expected.pop_front().unwrap_or_else(|| panic!("unexpected {msg:?}"));
                    assert!(!expected.over_limit, "a message over the limits was delivered: {msg:?}");
                    assert_eq!(msg, expected.msg, "the stream yielded something else than the peer sent");
                }
            }
            Poll::Ready(Some(Err(e))) => {
                if r.clean {
                    let limit = r.expected.iter().any(|x| x.over_limit);
                    let allowed = match &e {
                        Error::Capacity(_) => limit,
                        Error::Protocol(silverback::ProtocolError::UnexpectedEof) | Error::Io(_) => peer_gone,
                        _ => false,
                    };
                    assert!(allowed, "the stream failed on well-formed input: {e:?}");
                }
                r.failed = true;
                r.unknown = false;
                self.dead = true;
            }
        }
    }
}

fn sink_feed<S: Sink<Message, Error = Error> + Unpin>(sink: &mut S, msg: Message) -> Option<silverback::Result<()>> {
    match Pin::new(&mut *sink).poll_ready(&mut cx()) {
        Poll::Pending => None,
        Poll::Ready(Err(e)) => Some(Err(e)),
        Poll::Ready(Ok(())) => Some(Pin::new(sink).start_send(msg)),
    }
}

impl Peer {
    /// Encodes a well-formed message; returns what the stream should yield,
    /// in order (a ping between fragments comes first).
    fn write_message(&mut self, msg: PeerMsg, limits: Limits) -> Vec<Expected> {
        let max_frame = limits.get_max_frame_size();
        let control = |out: &mut BytesMut, opcode: OpCode, payload: &[u8]| {
            self.encoder.encode(out, true, 0, opcode, payload);
            payload.len() > max_frame
        };
        let mut expected = Vec::new();
        let (opcode, plain) = match msg.kind {
            PeerKind::Text => {
                let text = String::from_utf8_lossy(&msg.payload).into_owned();
                (OpCode::Text, text.into_bytes())
            }
            PeerKind::Binary => (OpCode::Binary, msg.payload),
            PeerKind::Ping | PeerKind::Pong => {
                let payload = &msg.payload[..msg.payload.len().min(125)];
                let (opcode, m) = if matches!(msg.kind, PeerKind::Ping) {
                    (OpCode::Ping, Message::ping(payload.to_vec()))
                } else {
                    (OpCode::Pong, Message::pong(payload.to_vec()))
                };
                let over_limit = control(&mut self.out, opcode, payload);
                return vec![Expected { msg: m, over_limit }];
            }
            PeerKind::Close(code) => {
                let reason = String::from_utf8_lossy(&msg.payload[..msg.payload.len().min(123)]).into_owned();
                let frame = CloseFrame::new(CloseCode::from(code), reason);
                let payload = encode_close_payload(Some(&frame));
                let m = if payload.is_empty() {
                    Message::close(None)
                } else {
                    let parsed = silverback::protocol::parse_close_payload(payload.clone()).expect("well formed");
                    Message::close(parsed)
                };
                let over_limit = control(&mut self.out, OpCode::Close, &payload);
                return vec![Expected { msg: m, over_limit }];
            }
        };
        let compressed = match (&mut self.compressor, msg.compress) {
            (Some(c), true) => {
                let mut out = BytesMut::new();
                c.compress(&plain, &mut out);
                Some(out)
            }
            _ => None,
        };
        let wire: &[u8] = compressed.as_deref().unwrap_or(&plain);
        let n = usize::from(msg.fragments % 4) + 1;
        let size = wire.len().div_ceil(n).max(1);
        let mut pieces: Vec<&[u8]> = wire.chunks(size).collect();
        pieces.resize(n.max(pieces.len()), &[]);
        let mut over_limit = pieces.iter().any(|p| p.len() > max_frame);
        let max_message = limits.get_max_message_size();
        over_limit |= plain.len() > max_message;
        let last = pieces.len() - 1;
        for (i, piece) in pieces.iter().enumerate() {
            let op = if i == 0 { opcode } else { OpCode::Continuation };
            let rsv = if i == 0 && compressed.is_some() { RSV1 } else { 0 };
            self.encoder.encode(&mut self.out, i == last, rsv, op, piece);
            if i == 0 && last > 0 {
                if let Some(ping) = &msg.ping_between {
                    let ping = &ping[..ping.len().min(125)];
                    let over = ping.len() > max_frame;
                    self.encoder.encode(&mut self.out, true, 0, OpCode::Ping, ping);
                    expected.push(Expected { msg: Message::ping(ping.to_vec()), over_limit: over });
                }
            }
        }
        let m = if opcode == OpCode::Text {
            Message::text(String::from_utf8(plain).expect("lossy text is UTF-8"))
        } else {
            Message::binary(plain)
        };
        expected.push(Expected { msg: m, over_limit });
        expected
    }

    /// Writes what the peer owes (if `write`), reads at most `max` bytes of
    /// what the stream wrote, and checks them.
    fn pump(&mut self, max: usize, write: bool) {
        let Some(io) = self.io.as_mut() else { return };
        let mut cx = cx();
        while write && !self.shut && self.out.has_remaining() {
            match Pin::new(&mut *io).poll_write(&mut cx, &self.out) {
                Poll::Ready(Ok(n)) if n > 0 => self.out.advance(n),
                Poll::Ready(_) => {
                    self.out.clear();
                    break;
                }
                Poll::Pending => break,
            }
        }
        let mut left = max;
        let mut buf = [0u8; 1024];
        while left > 0 {
            let want = left.min(buf.len());
            let mut rb = ReadBuf::new(&mut buf[..want]);
            match Pin::new(&mut *io).poll_read(&mut cx, &mut rb) {
                Poll::Ready(Ok(())) if !rb.filled().is_empty() => {
                    left -= rb.filled().len();
                    self.inbox.put_slice(rb.filled());
                }
                _ => break,
            }
        }
        self.check_inbox();
    }

    /// Everything the stream wrote must decode; data messages arrive in the
    /// order they were queued; nothing follows our close frame.
    fn check_inbox(&mut self) {
        loop {
            match self.decoder.decode(&mut self.inbox) {
                Ok(None) => return,
                Ok(Some(msg)) => {
                    if tracing() {
                        eprintln!("  peer got: {msg:?}");
                    }
                    assert!(!self.our_close_seen, "the stream wrote {msg:?} after its close frame");
                    match msg {
                        Message::Text(_) | Message::Binary(_) => {
                            let queued = self.sent.pop_front().unwrap_or_else(|| panic!("never queued: {msg:?}"));
                            assert_eq!(msg, queued, "data messages arrived out of order or changed");
                        }
                        Message::Close(_) => self.our_close_seen = true,
                        Message::Ping(_) | Message::Pong(_) => {}
                    }
                }
                Err(e) => panic!("the stream wrote bytes its peer cannot decode: {e:?}"),
            }
        }
    }
}
