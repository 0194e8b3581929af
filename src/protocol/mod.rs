//! The sans-I/O protocol core of RFC 6455: no tokio, no sockets, no clock.
//!
//! Parsers take bytes and answer "need more", "done" or an error; state
//! machines take input through `handle_*` methods. Everything here is pure and
//! tested from the RFC's own examples. This module imports only `std`,
//! `bytes`, `simdutf8` and itself (`tests/layering.rs` keeps it so); the
//! `deflate` module reaches the decoder through [`Inflate`], a trait defined
//! here.
//!
//! What someone building on the core needs is public: the [`FrameHeader`]
//! parser, [`apply_mask`], [`CloseCode`] and close payloads, the
//! [`MessageDecoder`] (whole messages, or [`Event`]s in streaming mode) and
//! the [`FrameEncoder`]. The closing and keepalive state machines stay
//! inside the crate.

mod close;
mod closing;
mod decoder;
mod encoder;
mod error;
mod frame;
mod header;
mod inflate;
mod keepalive;
mod limits;
mod mask;
mod message;
mod opcode;
mod utf8;
mod utf8_bytes;

pub use close::{encode_close_payload, parse_close_payload, CloseCode, CloseFrame};
pub(crate) use closing::{CloseState, OnReceive};
pub use decoder::{Event, MessageDecoder};
#[cfg(all(test, feature = "deflate"))]
pub(crate) use decoder::{INFLATE_PIECE, INFLATE_TARGET};
pub use encoder::{encode_frame, FrameEncoder};
pub use error::{CapacityError, DecodeError, ProtocolError};
pub use frame::Frame;
pub use header::{FrameHeader, Status, RSV1};
pub use inflate::{Inflate, InflateError};
pub(crate) use keepalive::{Keepalive, KeepaliveAction};
pub use limits::Limits;
pub use mask::apply_mask;
pub use message::Message;
pub use opcode::OpCode;
pub(crate) use utf8::incomplete_tail_start;
pub use utf8::{Utf8Error, Utf8Validator};
pub use utf8_bytes::Utf8Bytes;

/// The largest payload of a control frame (RFC 6455 §5.5).
pub const MAX_CONTROL_PAYLOAD: usize = 125;

/// Which end of the connection we are: it decides masking (RFC 6455 §5.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// The end that opened the connection: masks every frame it sends and
    /// refuses masked frames.
    Client,
    /// The end that accepted the connection: sends unmasked frames and refuses
    /// unmasked ones.
    Server,
}
