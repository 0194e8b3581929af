//! Helpers shared by the fuzz targets: a paused-clock runtime, a scripted
//! in-memory transport, the accept-key computation and the invariants every
//! received message must satisfy.

use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use base64::Engine;
use sha1::{Digest, Sha1};
use silverback::{Limits, Message};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::runtime::{Builder, Runtime};

thread_local! {
    static RUNTIME: Runtime = Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("runtime");
}

/// Runs `fut` on a current-thread runtime whose clock is paused: a task with
/// nothing to do but wait for a timer jumps straight to it, so handshake and
/// close timeouts cost no wall time and runs are reproducible.
pub fn block_on<F: Future>(fut: F) -> F::Output {
    RUNTIME.with(|rt| rt.block_on(fut))
}

/// The `Sec-WebSocket-Accept` value for a `Sec-WebSocket-Key` (RFC 6455 §4.2.2
/// item 5.4).
pub fn accept_key(key: &[u8]) -> String {
    let mut sha = Sha1::new();
    sha.update(key);
    sha.update(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    base64::engine::general_purpose::STANDARD.encode(sha.finalize())
}

/// What a [`ScriptedIo`] does once its script is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// Reads return end of stream.
    Eof,
    /// Reads never complete (a silent peer): only a timeout ends the wait.
    Pending,
}

/// The peer's bytes, produced lazily from what we wrote (so a scripted server
/// can answer the client's key).
pub type Responder = Box<dyn FnOnce(&[u8]) -> Vec<u8> + Send>;

/// An in-memory transport that plays a script: reads return the script in
/// chunks of a fixed size, writes are recorded.
pub struct ScriptedIo {
    chunks: VecDeque<Vec<u8>>,
    chunk: usize,
    end: End,
    responder: Option<Responder>,
    written: Arc<Mutex<Vec<u8>>>,
}

impl ScriptedIo {
    /// Reads return `script` `chunk` bytes at a time (all at once for 0).
    pub fn new(script: &[u8], chunk: usize, end: End) -> Self {
        let mut io = ScriptedIo::lazy(Box::new(|_| Vec::new()), chunk, end);
        io.load(script.to_vec());
        io.responder = None;
        io
    }

    /// The script is computed by `responder` from everything written so far,
    /// at the first read.
    pub fn lazy(responder: Responder, chunk: usize, end: End) -> Self {
        ScriptedIo {
            chunks: VecDeque::new(),
            chunk: if chunk == 0 { usize::MAX } else { chunk },
            end,
            responder: Some(responder),
            written: Arc::default(),
        }
    }

    fn load(&mut self, script: Vec<u8>) {
        let size = self.chunk.min(script.len().max(1));
        self.chunks = script.chunks(size).map(<[u8]>::to_vec).collect();
    }

    /// Everything written to the transport, shared so it stays readable
    /// after the transport moved into a `WebSocketStream`.
    pub fn written(&self) -> Arc<Mutex<Vec<u8>>> {
        self.written.clone()
    }
}

impl AsyncRead for ScriptedIo {
    fn poll_read(mut self: Pin<&mut Self>, _: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        if let Some(responder) = self.responder.take() {
            let script = responder(&self.written.lock().unwrap());
            self.load(script);
        }
        let Some(mut chunk) = self.chunks.pop_front() else {
            return match self.end {
                End::Eof => Poll::Ready(Ok(())),
                End::Pending => Poll::Pending,
            };
        };
        let n = chunk.len().min(buf.remaining());
        buf.put_slice(&chunk[..n]);
        if n < chunk.len() {
            self.chunks.push_front(chunk.split_off(n));
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for ScriptedIo {
    fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.written.lock().unwrap().extend_from_slice(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// What every received message must satisfy: text is UTF-8, data within the
/// message limit, control payloads within 125 bytes (RFC 6455 §5.5), a close
/// reason within 123 bytes of UTF-8 and a code allowed on the wire (§7.4).
pub fn check_message(msg: &Message, limits: Limits) {
    match msg {
        Message::Text(text) => {
            assert!(std::str::from_utf8(text.as_bytes()).is_ok(), "text message is not UTF-8");
            assert!(text.len() <= limits.get_max_message_size(), "text above max_message_size");
        }
        Message::Binary(data) => assert!(data.len() <= limits.get_max_message_size(), "binary above max_message_size"),
        Message::Ping(data) | Message::Pong(data) => assert!(data.len() <= 125, "control payload above 125 bytes"),
        Message::Close(Some(frame)) => {
            assert!(frame.reason.len() <= 123, "close reason above 123 bytes");
            assert!(std::str::from_utf8(frame.reason.as_bytes()).is_ok(), "close reason is not UTF-8");
            assert!(frame.code.is_allowed_on_wire(), "close code {:?} not allowed on the wire", frame.code);
        }
        Message::Close(None) => {}
    }
}

/// Reads what the peer sent after a successful handshake, each read bounded
/// by a (paused-clock) timeout, checking the invariants of the stream: every
/// message is well formed, after an error or the end no message follows, and
/// after an error sends fail too.
pub async fn drain<S>(ws: &mut silverback::WebSocketStream<S>, limits: Limits)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    use futures_util::{SinkExt, StreamExt};
    for _ in 0..64 {
        match tokio::time::timeout(Duration::from_secs(1), ws.next()).await {
            Err(_) => return,
            Ok(Some(Ok(msg))) => check_message(&msg, limits),
            Ok(Some(Err(_))) => {
                let after = tokio::time::timeout(Duration::from_secs(1), ws.send(Message::text("after"))).await;
                assert!(!matches!(after, Ok(Ok(()))), "a send succeeded after the stream failed");
                break;
            }
            Ok(None) => {
                let after = tokio::time::timeout(Duration::from_secs(1), ws.send(Message::text("after"))).await;
                assert!(!matches!(after, Ok(Ok(()))), "a send succeeded after the stream ended");
                break;
            }
        }
    }
    for _ in 0..2 {
        let next = tokio::time::timeout(Duration::from_secs(1), ws.next()).await;
        assert!(matches!(next, Ok(None)), "the stream yielded after it ended: {next:?}");
    }
}

/// Chunk sizes etc. derived from a byte without a dependency on `arbitrary`.
pub fn pick<T: Copy>(choices: &[T], byte: u8) -> T {
    choices[usize::from(byte) % choices.len()]
}
