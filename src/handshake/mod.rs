//! The opening handshake (RFC 6455 §4): an HTTP/1.1 upgrade.
//!
//! Parsing and building HTTP heads is pure (`request.rs`, `response.rs`,
//! `accept_key.rs`, `url.rs`, `headers.rs`: byte slices in, values out, unit
//! tested from the RFC examples). The I/O lives in `server.rs`
//! ([`Upgrader`], [`accept`]) and `client.rs` ([`Connector`], [`connect`]),
//! which share the head reader in `head.rs`. Under the client: `dial.rs`
//! (every resolved address, raced), `proxy/` (HTTP, HTTPS and SOCKS5
//! tunnels), `tls/` (rustls or native-tls); over it, `reconnect.rs` and
//! `backoff.rs` ([`Reconnect`], [`Backoff`]).
//!
//! Both sides read the peer's head in small steps into one buffer that never
//! grows past the configured head limit. Whatever arrived after the head (a
//! client's first frames may share a packet with its request; a server's
//! with its 101 response) is handed to the [`WebSocketStream`] through
//! [`WebSocketStream::from_raw_parts`], never dropped.
//!
//! [`WebSocketStream`]: crate::WebSocketStream
//! [`WebSocketStream::from_raw_parts`]: crate::WebSocketStream::from_raw_parts

mod accept_key;
mod backoff;
mod client;
mod dial;
mod error;
pub(crate) mod extensions;
pub(crate) mod head;
mod headers;
pub(crate) mod policy;
mod proxy;
mod reconnect;
mod rejection;
pub(crate) mod request;
pub(crate) mod response;
pub(crate) mod server;
pub(crate) mod settings;
pub(crate) mod tls;
pub(crate) mod url;

pub use backoff::Backoff;
pub use client::{connect, Connector};
pub use error::HandshakeError;
pub use reconnect::{AttemptError, Connection, Reconnect};
pub use rejection::Rejection;
pub use server::{accept, Upgrader};
pub use tls::MaybeTlsStream;

/// The client's upgrade request as the server received it (method, path and
/// query, version, header fields; no body). See
/// [`Upgrader::accept_with_request`] and [`Upgrader::check_origin`].
pub type Request = http::Request<()>;

/// The server's 101 response as the client received it (status, version,
/// header fields such as `Sec-WebSocket-Protocol`).
pub type Response = http::Response<()>;
