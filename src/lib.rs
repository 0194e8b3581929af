#![doc = include_str!("lib.md")]
#![cfg_attr(docsrs, feature(doc_auto_cfg))]

pub mod broadcast;
#[cfg(feature = "deflate")]
pub mod deflate;
#[cfg(feature = "http3")]
pub mod http3;
pub mod protocol;

mod codec;
mod config;
mod connection;
mod error;
mod handshake;
mod integrations;

#[cfg(feature = "axum")]
pub use integrations::axum;
#[cfg(feature = "hyper")]
pub use integrations::http2;
#[cfg(feature = "hyper")]
pub use integrations::hyper;

pub use codec::Codec;
pub use config::{Config, Limits};
pub use connection::{
    Control, MessageKind, MessageReader, MessageWriter, PeerAddr, PreparedMessage, ReadHalf, ReuniteError, Shutdown,
    Stats, WebSocketStream, WriteHalf,
};
#[cfg(feature = "deflate")]
pub use deflate::DeflateConfig;
pub use error::{CapacityError, Error, ProtocolError, Result};
pub use handshake::{
    accept, connect, AttemptError, Backoff, Connection, Connector, HandshakeError, MaybeTlsStream, Reconnect,
    Rejection, Request, Response, Upgrader,
};
pub use protocol::{CloseCode, CloseFrame, Frame, Message, OpCode, Role, Utf8Bytes};
/// The rustls version `Connector::tls_config` takes, for building a
/// `rustls::ClientConfig` (or a server's) without a version mismatch.
#[cfg(feature = "rustls")]
pub use rustls;
/// The tokio-rustls version behind [`MaybeTlsStream::Rustls`], for serving
/// `wss://` with its `TlsAcceptor` (see `examples/wss_server.rs`).
#[cfg(feature = "rustls")]
pub use tokio_rustls;

/// The tokio-native-tls version behind [`MaybeTlsStream::NativeTls`].
#[cfg(feature = "native-tls")]
pub use tokio_native_tls;
/// The native-tls version `Connector::native_tls` takes, for building a
/// `native_tls::TlsConnector` (roots, identities) without a version
/// mismatch.
#[cfg(feature = "native-tls")]
pub use tokio_native_tls::native_tls;

/// The README's examples, compiled and run as doctests (one needs
/// permessage-deflate).
#[cfg(all(doctest, feature = "deflate"))]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
