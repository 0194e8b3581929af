//! The connection engine: the only code that polls a socket.
//!
//! ```text
//!   WebSocketStream ── split ──▶ ReadHalf ─────────┐        WriteHalf ──┐
//!   (websocket.rs)              (read.rs: the one  │        (write.rs)  │
//!                                read loop, timers)│                    │
//!   MessageReader (reader.rs) ──▶ ReadHalf::poll_read                   │
//!   MessageWriter (writer.rs) ──────────────────────────────▶ WriteHalf │
//!   Control (control.rs) ──┐                        │                   │
//!                          ▼                        ▼                   ▼
//!                   Shared (shared.rs): Mutex<Conn> + write wakers
//!                   Conn (conn.rs): transport, WriteQueue (write_queue.rs),
//!                   urgent frames, closing handshake, sticky error
//! ```
//!
//! The read half owns the [`MessageDecoder`](crate::protocol::MessageDecoder)
//! and its buffer; the transport and everything outgoing sit in `Conn`,
//! which both halves lock for the length of a non-blocking poll only. Every
//! timer is a [`Deadline`](deadline::Deadline). Idle connections give their
//! buffers back to a per-thread spare (`spare.rs`). [`PreparedMessage`] is
//! a frame encoded once for many connections. [`Shutdown`] (`shutdown.rs`)
//! is a registry of connections that its trigger asks to go away; each
//! read half acts on it. Each connection keeps [`Stats`] (`stats.rs`) and,
//! with the `tracing` feature, a span and events (`trace.rs`).

use std::io;

use crate::error::{Error, ProtocolError};

mod conn;
mod control;
mod deadline;
mod peer;
mod prepared;
mod read;
mod read_item;
mod read_size;
mod reader;
mod shared;
mod shutdown;
mod spare;
mod stats;
pub(crate) mod trace;
mod websocket;
mod write;
mod write_queue;
mod writer;

pub use control::Control;
pub use peer::PeerAddr;
pub use prepared::PreparedMessage;
pub use read::{ReadHalf, ReuniteError};
pub use reader::{MessageKind, MessageReader};
pub use shutdown::Shutdown;
pub use stats::Stats;
pub use websocket::WebSocketStream;
pub use write::WriteHalf;
pub use writer::MessageWriter;

/// An [`Error`] as the `io::Error` that `AsyncRead`/`AsyncWrite` return:
/// transport errors as they were, others wrapped (get them back with
/// `get_ref` and a downcast) under the closest kind.
fn into_io(err: Error) -> io::Error {
    let kind = match &err {
        Error::Io(e) => e.kind(),
        Error::Protocol(ProtocolError::UnexpectedEof) | Error::Closed => io::ErrorKind::UnexpectedEof,
        Error::Protocol(_) | Error::Capacity(_) => io::ErrorKind::InvalidData,
        Error::Timeout => io::ErrorKind::TimedOut,
        _ => io::ErrorKind::Other,
    };
    match err {
        Error::Io(e) => e,
        other => io::Error::new(kind, other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_become_io_errors_of_the_closest_kind() {
        let e = into_io(ProtocolError::InvalidUtf8.into());
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        let inner = e.get_ref().and_then(|e| e.downcast_ref::<Error>());
        assert!(matches!(inner, Some(Error::Protocol(ProtocolError::InvalidUtf8))));
        assert_eq!(into_io(Error::Closed).kind(), io::ErrorKind::UnexpectedEof);
        let io = into_io(Error::Io(io::Error::new(io::ErrorKind::BrokenPipe, "gone")));
        assert_eq!(io.kind(), io::ErrorKind::BrokenPipe);
    }
}
