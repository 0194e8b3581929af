#![doc = include_str!("lib.md")]
#![cfg_attr(docsrs, feature(doc_auto_cfg))]

#[cfg(feature = "deflate")]
pub mod deflate;
pub mod protocol;
#[cfg(feature = "hyper")]
pub use handshake::hyper;
#[cfg(feature = "axum")]
pub mod axum;

mod close_checks;
mod codec;
mod config;
mod control;
mod error;
mod handshake;
mod io;
#[cfg(feature = "json")]
mod json;
mod message;
mod prepared;
mod shared;
mod spare;
mod split;
mod stream;
mod utf8_bytes;
mod write_queue;

pub use codec::Codec;
pub use config::{Config, Limits};
pub use control::Control;
#[cfg(feature = "deflate")]
pub use deflate::DeflateConfig;
pub use error::{CapacityError, Error, ProtocolError, Result};
pub use handshake::{accept, connect, Connector, HandshakeError, Request, Response, Upgrader};
pub use handshake::Rejection;
pub use handshake::MaybeTlsStream;
pub use io::{MessageKind, MessageReader, MessageWriter};
pub use message::Message;
pub use prepared::PreparedMessage;
pub use protocol::{CloseCode, CloseFrame, Frame, OpCode, Role};
pub use split::{ReadHalf, ReuniteError, WriteHalf};
pub use stream::WebSocketStream;
pub use utf8_bytes::Utf8Bytes;
/// The rustls version `Connector::tls_config` takes, for building a
/// `rustls::ClientConfig` (or a server's) without a version mismatch.
#[cfg(feature = "rustls")]
pub use rustls;
/// The tokio-rustls version behind [`MaybeTlsStream::Rustls`], for serving
/// `wss://` with its `TlsAcceptor` (see `examples/wss_server.rs`).
#[cfg(feature = "rustls")]
pub use tokio_rustls;

/// The README's examples, compiled and run as doctests (one needs
/// permessage-deflate).
#[cfg(all(doctest, feature = "deflate"))]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
