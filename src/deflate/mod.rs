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
//! What a connection keeps between messages, by side and setting (level 1,
//! the default; the window is the agreed one):
//!
//! | state | with context takeover | without |
//! |---|---|---|
//! | compressor ([`Compressor`]), level 1 | 16 or 18 KiB of window (2^14 at most, plus 1/8 slack) + 8 KiB hash table | nothing (one 8 KiB table per thread) |
//! | compressor, levels 0 and 2–9 (zlib-rs) | 245–371 KiB (2^9–2^15) | nothing (one spare state per thread) |
//! | decompressor ([`Decompressor`]) | the peer's window: 4 KiB at 2^12, 32 KiB at 2^15 | nothing |
//!
//! A server with the default [`DeflateConfig`] asks clients whose offer
//! allows it (Chromium's, Python `websockets`') for a 2^12 window
//! ([`DeflateConfig::preferred_client_window_bits`]), so such a connection
//! keeps about 30 KiB; measured with 1 000 Python clients after 41 messages
//! each, 33 KiB of server memory per connection in all, 2.8 KiB with
//! [`DeflateConfig::low_memory`] (see PERFORMANCE.md). States are allocated
//! when first needed, so a connection that never exchanges a compressed
//! message costs nothing.
//!
//! The zlib-rs inflate state (46 KiB whatever the window) is kept only
//! while a connection is busy: the connection drops it when its reads go
//! idle, and the next message makes a new one with the kept window as its
//! dictionary (about 0.4 µs). Without context takeover states are made for
//! each message (or taken from the thread's spare for zlib-rs compressors).
//!
//! # Backend
//!
//! Level 1 (the default) is silverback's own encoder: greedy matching
//! through one hash table of 4 096 entries and fixed Huffman codes, like
//! zlib's fastest level. On JSON-like messages with context takeover it
//! compresses to within 6 % of zlib-rs' level-1 size (200 B to 16 KiB
//! messages: 26.3 % instead of 25.0 %, 22.8 % instead of 21.5 %, 26.9 %
//! instead of 25.6 %), 1.1–1.2 times as fast, and without context takeover
//! 1.3–6.4 times as fast (no 128 KiB table to clear per message). Levels 0
//! and 2–9, and all decompression, use flate2 with the zlib-rs backend,
//! pure Rust, chosen over miniz_oxide when measured on 16 KiB JSON-like
//! messages without context takeover: about 250 MB/s at level 1 (to 31 %)
//! and 70 MB/s at level 6 (to 21 %), inflating at 500–560 MB/s, where
//! miniz_oxide managed about 160 MB/s, 40 MB/s and 250–280 MB/s on the same
//! machine (at 26 % and 20 %).
//!
//! Like zlib, zlib-rs cannot compress a raw DEFLATE stream within a 2^8
//! window, and all levels keep to the same rule.
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
