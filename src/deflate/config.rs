//! [`DeflateConfig`]: what we offer, accept and impose for permessage-deflate
//! (RFC 7692 §7.1), and how hard we compress.

/// Settings for permessage-deflate, the same type for both roles.
///
/// The four negotiation settings read differently depending on the side:
/// a client *offers* them and then checks the server's answer; a server
/// *accepts* or *declines* each offer and may *impose* more. The setters
/// document both readings. The negotiated defaults are the RFC's own (no
/// restriction: context takeover on both sides, 32 KiB windows), which
/// compress best and are what browsers offer, with one wish: a server asks
/// clients that let it choose for a 2^12 window
/// ([`DeflateConfig::preferred_client_window_bits`]). See the [module
/// docs](crate::deflate) for the memory a connection costs (about 33 KiB
/// with the defaults, 3 KiB with [`DeflateConfig::low_memory`]).
///
/// Setters clamp out-of-range values rather than panic.
///
/// ```
/// use silverback::DeflateConfig;
///
/// let config = DeflateConfig::default().level(6).server_no_context_takeover(true);
/// assert_eq!(config.get_level(), 6);
/// assert!(config.get_server_no_context_takeover());
/// assert_eq!(DeflateConfig::default().server_max_window_bits(20).get_server_max_window_bits(), 15);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeflateConfig {
    level: u8,
    min_size: usize,
    server_no_context_takeover: bool,
    client_no_context_takeover: bool,
    server_max_window_bits: u8,
    client_max_window_bits: u8,
    preferred_client_window_bits: u8,
}

impl DeflateConfig {
    /// Default for [`DeflateConfig::level`]: 1, the fastest level that
    /// compresses. On 16 KiB JSON-like messages it runs about 3.5 times as
    /// fast as level 6 and leaves them at 31 % of their size instead of 21 %
    /// (measurements in the [module docs](crate::deflate)).
    pub const DEFAULT_LEVEL: u8 = 1;
    /// Default for [`DeflateConfig::min_size`]: 32 bytes. On JSON-like text,
    /// level 1 saves nothing below about 128 bytes without context takeover;
    /// with it, a 16-byte message shrinks by 6 bytes and a 32-byte one by
    /// 14, hardly worth a compressor call on both ends.
    pub const DEFAULT_MIN_SIZE: usize = 32;
    /// The smallest window RFC 7692 §7.1.2 allows: 2^8 bytes.
    pub const MIN_WINDOW_BITS: u8 = 8;
    /// The largest window, and the default: 2^15 bytes (32 KiB), the most
    /// DEFLATE can refer back.
    pub const MAX_WINDOW_BITS: u8 = 15;
    /// Default for [`DeflateConfig::preferred_client_window_bits`]: 2^12
    /// bytes (4 KiB), as Python `websockets` asks of its clients. What a
    /// server keeps per connection for the client's window shrinks from
    /// 32 KiB to 4 KiB; on JSON-like text the client's messages grow by
    /// about 3 % (16 KiB messages) to 10 % (512 bytes).
    pub const DEFAULT_PREFERRED_CLIENT_WINDOW_BITS: u8 = 12;

    /// The defaults (same as [`Default::default`]).
    #[must_use]
    pub const fn new() -> Self {
        DeflateConfig {
            level: Self::DEFAULT_LEVEL,
            min_size: Self::DEFAULT_MIN_SIZE,
            server_no_context_takeover: false,
            client_no_context_takeover: false,
            server_max_window_bits: Self::MAX_WINDOW_BITS,
            client_max_window_bits: Self::MAX_WINDOW_BITS,
            preferred_client_window_bits: Self::DEFAULT_PREFERRED_CLIENT_WINDOW_BITS,
        }
    }

    /// A server setting for a small memory footprint: no context takeover
    /// either way (imposed on every client, which RFC 7692 §7.1.1 allows),
    /// so that a connection keeps no compression state between messages —
    /// its messages are compressed through one state per thread. About
    /// 3 KiB per connection instead of about 45 KiB, for messages that
    /// compress worse (they cannot refer to earlier ones: on 512-byte JSON
    /// messages, 53 % of their size instead of 22 %).
    ///
    /// ```
    /// use silverback::DeflateConfig;
    ///
    /// let config = DeflateConfig::low_memory();
    /// assert!(config.get_server_no_context_takeover() && config.get_client_no_context_takeover());
    /// ```
    #[must_use]
    pub const fn low_memory() -> Self {
        Self::new().server_no_context_takeover(true).client_no_context_takeover(true)
    }

    /// Tuning: the compression level of messages we send, 0 (store only)
    /// to 9 (smallest, slowest); larger values are taken as 9. It is not
    /// negotiated: each side picks its own.
    #[must_use]
    pub const fn level(mut self, level: u8) -> Self {
        self.level = if level > 9 { 9 } else { level };
        self
    }

    /// Tuning: messages we send that are shorter than this go out
    /// uncompressed (RSV1 clear), which RFC 7692 §6 allows for any message.
    #[must_use]
    pub const fn min_size(mut self, bytes: usize) -> Self {
        self.min_size = bytes;
        self
    }

    /// `server_no_context_takeover` (RFC 7692 §7.1.1.1): the server resets
    /// its compressor after each message.
    ///
    /// - Client: `true` requests it in the offer; a server that accepts must
    ///   confirm it. With `false` we do not ask, but the server may still
    ///   announce it.
    /// - Server: `true` imposes it on every connection (announced in each
    ///   answer), trading compression ratio for not keeping a compressor
    ///   alive between messages. With `false` we still honour a client
    ///   that asks for it.
    #[must_use]
    pub const fn server_no_context_takeover(mut self, on: bool) -> Self {
        self.server_no_context_takeover = on;
        self
    }

    /// `client_no_context_takeover` (RFC 7692 §7.1.1.2): the client resets
    /// its compressor after each message.
    ///
    /// - Client: `true` announces in the offer that we will reset; we do so
    ///   whatever the answer. With `false` we reset only if the server's
    ///   answer asks us to.
    /// - Server: `true` imposes it on every client (in each answer), so that
    ///   we need not keep a decompressor alive between messages. With
    ///   `false` we still confirm it when a client announces it.
    #[must_use]
    pub const fn client_no_context_takeover(mut self, on: bool) -> Self {
        self.client_no_context_takeover = on;
        self
    }

    /// `server_max_window_bits` (RFC 7692 §7.1.2.1), clamped to 8..=15: the
    /// base-2 logarithm of the largest window the server compresses with.
    ///
    /// - Client: below 15, the offer asks the server to stay within it (a
    ///   server that accepts must confirm a value no larger).
    /// - Server: our own compressor's window; a client may ask for less.
    ///   The backend cannot compress with a 2^8 window, so when the agreed
    ///   value is 8 the server sends every message uncompressed.
    #[must_use]
    pub const fn server_max_window_bits(mut self, bits: u8) -> Self {
        self.server_max_window_bits = clamp_window_bits(bits);
        self
    }

    /// `client_max_window_bits` (RFC 7692 §7.1.2.2), clamped to 8..=15: the
    /// base-2 logarithm of the largest window the client compresses with.
    ///
    /// - Client: our own compressor's window. The offer always carries the
    ///   parameter (without a value at 15, so that the server may pick any
    ///   window); the server's answer may lower it. The backend cannot
    ///   compress with a 2^8 window, so when the agreed value is 8 the client
    ///   sends every message uncompressed.
    /// - Server: the largest window we let clients use, which sizes our
    ///   decompressor. Below 15 it is imposed on each client; an offer
    ///   without `client_max_window_bits` cannot be limited and is declined.
    #[must_use]
    pub const fn client_max_window_bits(mut self, bits: u8) -> Self {
        self.client_max_window_bits = clamp_window_bits(bits);
        self
    }

    /// Server: the window asked of a client whose offer lets us choose its
    /// window (it carries `client_max_window_bits`, as Chromium's and
    /// Python `websockets`' offers do), clamped to 8..=15; default 12 (see
    /// [`DeflateConfig::DEFAULT_PREFERRED_CLIENT_WINDOW_BITS`]). Unlike
    /// [`DeflateConfig::client_max_window_bits`] it is a wish, not a limit:
    /// an offer without the parameter (Firefox's) is accepted with a 2^15
    /// window. 15 asks nothing. A client ignores it.
    #[must_use]
    pub const fn preferred_client_window_bits(mut self, bits: u8) -> Self {
        self.preferred_client_window_bits = clamp_window_bits(bits);
        self
    }

    /// The configured [`DeflateConfig::preferred_client_window_bits`].
    #[must_use]
    pub const fn get_preferred_client_window_bits(&self) -> u8 {
        self.preferred_client_window_bits
    }

    /// The configured compression level.
    #[must_use]
    pub const fn get_level(&self) -> u8 {
        self.level
    }

    /// The configured minimum size of a compressed message.
    #[must_use]
    pub const fn get_min_size(&self) -> usize {
        self.min_size
    }

    /// The configured `server_no_context_takeover`.
    #[must_use]
    pub const fn get_server_no_context_takeover(&self) -> bool {
        self.server_no_context_takeover
    }

    /// The configured `client_no_context_takeover`.
    #[must_use]
    pub const fn get_client_no_context_takeover(&self) -> bool {
        self.client_no_context_takeover
    }

    /// The configured `server_max_window_bits`.
    #[must_use]
    pub const fn get_server_max_window_bits(&self) -> u8 {
        self.server_max_window_bits
    }

    /// The configured `client_max_window_bits`.
    #[must_use]
    pub const fn get_client_max_window_bits(&self) -> u8 {
        self.client_max_window_bits
    }
}

impl Default for DeflateConfig {
    fn default() -> Self {
        DeflateConfig::new()
    }
}

/// `bits` brought into 8..=15.
const fn clamp_window_bits(bits: u8) -> u8 {
    if bits < DeflateConfig::MIN_WINDOW_BITS {
        DeflateConfig::MIN_WINDOW_BITS
    } else if bits > DeflateConfig::MAX_WINDOW_BITS {
        DeflateConfig::MAX_WINDOW_BITS
    } else {
        bits
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_rfc_defaults() {
        let c = DeflateConfig::default();
        assert_eq!(c, DeflateConfig::new());
        assert_eq!((c.get_level(), c.get_min_size()), (1, 32));
        assert!(!c.get_server_no_context_takeover() && !c.get_client_no_context_takeover());
        assert_eq!((c.get_server_max_window_bits(), c.get_client_max_window_bits()), (15, 15));
        assert_eq!(c.get_preferred_client_window_bits(), 12);
    }

    #[test]
    fn setters_clamp() {
        let table = [(0u8, 8u8), (7, 8), (8, 8), (12, 12), (15, 15), (16, 15), (255, 15)];
        for (given, kept) in table {
            let c = DeflateConfig::new().server_max_window_bits(given).client_max_window_bits(given);
            assert_eq!((c.get_server_max_window_bits(), c.get_client_max_window_bits()), (kept, kept));
        }
        assert_eq!(DeflateConfig::new().level(0).get_level(), 0);
        assert_eq!(DeflateConfig::new().level(10).get_level(), 9);
        assert_eq!(DeflateConfig::new().min_size(0).get_min_size(), 0);
    }
}
