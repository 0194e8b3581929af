//! WebSockets over HTTP/3 (RFC 9220), feature `http3`: a WebSocket on a
//! request stream of a QUIC connection, opened by an extended CONNECT
//! (`:method` `CONNECT`, `:protocol` `websocket`) as over HTTP/2 (RFC
//! 8441), many per connection, each with its own flow control.
//!
//! - Server: [`Upgrader::accept_h3`](crate::Upgrader::accept_h3) takes a
//!   QUIC connection that quinn accepted (ALPN `h3`), announces
//!   `SETTINGS_ENABLE_CONNECT_PROTOCOL`, and decides on each request with
//!   the upgrader's policy (the RFC 8441 checks, origin against
//!   `:authority`, [`Upgrader::check_request`](crate::Upgrader::check_request),
//!   subprotocol, permessage-deflate, [`Upgrader::shutdown`](crate::Upgrader::shutdown));
//!   [`Http3Acceptor::accept`] hands out the WebSockets, or the refusals
//!   (answered with the same status and body as over HTTP/1.1).
//! - Client: [`Connector::http3_connect`](crate::Connector::http3_connect)
//!   opens the QUIC connection with the connector's rustls roots and waits
//!   for the server's SETTINGS, failing with
//!   [`HandshakeError::ExtendedConnectNotEnabled`](crate::HandshakeError::ExtendedConnectNotEnabled)
//!   when they do not enable extended CONNECT; [`Http3Connection::open`]
//!   opens a WebSocket on a new stream.
//!
//! ```no_run
//! use futures_util::{SinkExt, StreamExt};
//! use silverback::{Connector, Message, Upgrader};
//!
//! # async fn server(endpoint: quinn::Endpoint) -> Result<(), silverback::Error> {
//! // `endpoint` serves rustls with ALPN `h3` (see examples/wss_server.rs).
//! let upgrader = Upgrader::new();
//! while let Some(incoming) = endpoint.accept().await {
//!     let upgrader = upgrader.clone();
//!     tokio::spawn(async move {
//!         let quic = incoming.await.map_err(std::io::Error::other)?;
//!         let mut acceptor = upgrader.accept_h3(quic).await?;
//!         while let Some(accepted) = acceptor.accept().await {
//!             let Ok((mut ws, _request)) = accepted else { continue };
//!             tokio::spawn(async move {
//!                 while let Some(Ok(msg)) = ws.next().await {
//!                     if ws.send(msg).await.is_err() {
//!                         break;
//!                     }
//!                 }
//!             });
//!         }
//!         Ok::<_, silverback::Error>(())
//!     });
//! }
//! # Ok(())
//! # }
//! # async fn client() -> Result<(), silverback::Error> {
//! let h3 = Connector::new().http3_connect("wss://example.com").await?;
//! let (mut chat, _response) = h3.open("/chat").await?;
//! let (mut feed, _) = h3.open("/feed").await?; // the same QUIC connection
//! chat.send(Message::text("hello")).await?;
//! # drop(feed);
//! # Ok(())
//! # }
//! ```
//!
//! # HTTP/3 and QPACK here
//!
//! silverback speaks the small part of HTTP/3 (RFC 9114) that WebSockets
//! need, on quinn: the control streams and SETTINGS, HEADERS and DATA
//! frames on request streams, and QPACK (RFC 9204) without a dynamic table
//! (both sides announce a capacity of 0; Huffman-coded strings and the
//! static table are understood). The `h3` crate was not used: its releases
//! (0.0.8) refuse a `:protocol` other than `webtransport` and
//! `connect-udp`. Requests other than extended CONNECT are refused with the
//! handshake's status (405 for a `GET`), so the port serves nothing else.
//!
//! # Streams, flow control, errors
//!
//! A WebSocket's bytes travel in its stream's DATA frames ([`H3Io`]). A
//! peer that stops reading one stream stops only that stream: once its
//! QUIC window and the [`Config`](crate::Config) write buffer are full,
//! `send` on it waits, while the other streams flow (within the
//! connection's window). A reset of the stream or the loss of the
//! connection is an [`Error::Io`](crate::Error::Io) of kind
//! `ConnectionReset`; the closing handshake ends with the stream's FIN (RFC
//! 9220 §3). The connection closes (`H3_NO_ERROR`) when its handle
//! ([`Http3Connection`] or [`Http3Acceptor`]) and its WebSockets are all
//! gone.
//!
//! # Shutting down (GOAWAY)
//!
//! [`Http3Acceptor::graceful_shutdown`], a triggered
//! [`Shutdown`](crate::Shutdown) or dropping the acceptor sends GOAWAY
//! (RFC 9114 §5.2): request streams past it are rejected with
//! `H3_REQUEST_REJECTED`, and the WebSockets already open run on until
//! either side closes them (the `Shutdown` closes them with 1001). A
//! client that received GOAWAY opens nothing more on that connection:
//! [`Http3Connection::is_closed`] turns true and
//! [`Http3Connection::open`] fails with an
//! [`Error::Io`](crate::Error::Io) of kind `ConnectionRefused`; open the
//! next WebSockets on a new connection.

mod client;
mod conn;
mod frame;
mod io;
mod qpack;
mod server;
mod tables;

pub use client::Http3Connection;
pub use io::H3Io;
pub use server::Http3Acceptor;

/// A WebSocket over HTTP/3.
pub type H3WebSocket = crate::WebSocketStream<H3Io>;

/// quinn, the QUIC implementation under [`H3Io`], for building endpoints
/// and server configurations with the same version.
pub use quinn;
