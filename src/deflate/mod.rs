//! The sans-I/O core of permessage-deflate (RFC 7692): negotiation in the
//! opening handshake and per-message DEFLATE compression. Needs the
//! `deflate` feature (on by default).
//!
//! RFC 7692 lets the two ends of a WebSocket agree, through the
//! `Sec-WebSocket-Extensions` header, to compress the payload of data
//! messages with DEFLATE (RFC 1951). A compressed message has RSV1 set on its
//! first frame (RFC 7692 §6); its payload is the DEFLATE data of the whole
//! message, ended with a sync flush whose last four bytes are left off
//! (§7.2.1). Each direction keeps, unless the handshake said otherwise, its
//! LZ77 window from message to message ("context takeover"), so later
//! messages may refer back into earlier ones.
//!
//! # The pieces
//!
//! - [`DeflateConfig`]: what we offer or accept, and how we compress.
//! - [`parse_extensions`] reads `Sec-WebSocket-Extensions` values
//!   (RFC 6455 §9.1).
//! - [`client_offer`], [`server_negotiate`] and [`client_accept`] run the
//!   negotiation (RFC 7692 §5, §7.1) and yield the agreed [`DeflateParams`].
//! - [`DeflateParams::compressor`] and [`DeflateParams::decompressor`] build
//!   the two halves for our [`Role`](crate::Role): a [`Compressor`] for what
//!   we send and a [`Decompressor`] for what we receive.
//!
//! Nothing here does I/O or knows about frames. The connection uses it so:
//! [`Upgrader::deflate`](crate::Upgrader::deflate) and
//! [`Connector::deflate`](crate::Connector::deflate) negotiate; the write
//! half sends each data message of at least [`DeflateConfig::get_min_size`]
//! bytes compressed, with RSV1 set, unless
//! [`WriteHalf::set_compression`](crate::WriteHalf::set_compression) turned
//! it off, and never compresses control frames (RFC 7692 §6.1); a
//! [`PreparedMessage`](crate::PreparedMessage) is compressed once per level
//! and window for all connections whose side has no context takeover; the
//! decoder accepts RSV1 only on the first frame of a data message (1002
//! otherwise), inflates each frame as it completes within
//! `Limits::max_message_size` of output (1009 beyond it, 1007 for data that
//! is not DEFLATE), and validates text on the inflated bytes.
//!
//! # Memory per connection
//!
//! Measured with a counting allocator (flate2 1.1 with zlib-rs 0.6; the
//! memory level, which sizes the hash tables, is fixed at 8 by flate2):
//!
//! | state | window 2^9 | window 2^12 | window 2^15 |
//! |---|---|---|---|
//! | compressor ([`Compressor`]) | 245 KiB | 259 KiB | 371 KiB |
//! | decompressor ([`Decompressor`]) | 46 KiB | 46 KiB | 46 KiB |
//!
//! The level does not change these figures, and a smaller window saves less
//! than one might hope: the hash tables and the pending-output buffer
//! dominate. Both states are allocated when first needed (the first
//! compressed message each way), so a connection that never exchanges one
//! costs nothing. With context takeover a state then lives as long as the
//! connection, since it *is* the window; without, it is dropped after each
//! message. Re-creating it costs about 4 µs per message for the compressor
//! and under 1 µs for the decompressor (a 200-byte message, window 2^15),
//! against 4 µs and 0.8 µs for the message itself — a fair price for a
//! server holding thousands of idle connections. A server short of memory
//! sets [`DeflateConfig::server_no_context_takeover`] (and perhaps
//! [`DeflateConfig::client_no_context_takeover`]), which RFC 7692 lets it
//! impose.
//!
//! # Backend
//!
//! flate2 with the zlib-rs backend, pure Rust. On 16 KiB JSON-like messages
//! without context takeover it compresses at about 250 MB/s at level 1
//! (to 31 %) and 70 MB/s at level 6 (to 21 %), and inflates at 500–560 MB/s;
//! the miniz_oxide backend managed about 160 MB/s, 40 MB/s and 250–280 MB/s
//! on the same machine (at 26 % and 20 %).
//!
//! Like zlib, it cannot compress a raw DEFLATE stream within a 2^8 window.
//! Rather than silently using 2^9 (zlib's old behaviour, which breaks a peer
//! that sized its window by the agreement) or refusing such peers, a side
//! whose compressor was limited to 2^8 sends its messages uncompressed,
//! which permessage-deflate always allows; its peer still compresses.
//! Decompressing needs no such care: a window at least as large as the
//! peer's always works, so 2^8 is decompressed with 2^9.

mod compress;
mod config;
mod decompress;
mod extension_header;
mod negotiate;
mod outgoing;
mod quick;

pub use crate::protocol::InflateError;
pub use compress::Compressor;
#[cfg(test)]
pub(crate) use compress::COMPRESSIONS;
pub use config::DeflateConfig;
pub use decompress::Decompressor;
pub use extension_header::{parse_extensions, Extension, ExtensionSyntaxError};
pub use negotiate::{client_accept, client_offer, server_negotiate, DeflateParams, NegotiationError, EXTENSION_NAME};
pub(crate) use outgoing::{FreshSettings, Outgoing, SharedPlan};

#[cfg(test)]
mod decoder_tests;
#[cfg(test)]
mod tests;
