//! The sans-I/O protocol core of RFC 6455: no tokio, no sockets, no clock.
//!
//! Parsers take bytes and answer "need more", "done" or an error; state
//! machines take input through `handle_*` methods. Everything here is pure and
//! tested from the RFC's own examples.

mod close;
mod closing;
mod decoder;
mod encoder;
mod frame;
mod header;
mod keepalive;
mod mask;
mod opcode;
mod utf8;

pub use close::{encode_close_payload, parse_close_payload, CloseCode, CloseFrame};
pub use closing::{CloseState, OnReceive};
pub use decoder::MessageDecoder;
pub use encoder::{encode_frame, FrameEncoder};
pub use frame::Frame;
pub use header::{FrameHeader, Status, RSV1};
pub use keepalive::{Keepalive, KeepaliveAction};
pub use mask::{apply_mask, apply_mask_bytewise};
pub use opcode::OpCode;
pub use utf8::{Utf8Error, Utf8Validator};

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
