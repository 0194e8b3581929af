//! Connection configuration: security [`Limits`] and tuning knobs in [`Config`].

use std::time::Duration;

pub use crate::protocol::Limits;

/// Per-connection configuration: [`Limits`] plus tuning.
///
/// One `Config` can be cloned into every connection; it is small and `Copy`.
///
/// ```
/// use std::time::Duration;
/// use silverback::{Config, Limits};
///
/// let config = Config::default()
///     .limits(Limits::default().max_message_size(1 << 20))
///     .close_timeout(Duration::from_secs(5))
///     .write_buffer_size(64 * 1024);
/// assert_eq!(config.get_limits().get_max_message_size(), 1 << 20);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    limits: Limits,
    write_buffer_size: usize,
    read_buffer_size: usize,
    close_timeout: Duration,
    ping_interval: Option<Duration>,
    read_timeout: Option<Duration>,
    write_timeout: Option<Duration>,
    #[cfg(feature = "deflate")]
    deflate: Option<crate::DeflateConfig>,
}

impl Config {
    /// Default for [`Config::write_buffer_size`]: 128 KiB.
    pub const DEFAULT_WRITE_BUFFER_SIZE: usize = 128 * 1024;
    /// Default for [`Config::read_buffer_size`]: 4 KiB.
    pub const DEFAULT_READ_BUFFER_SIZE: usize = 4 * 1024;
    /// Default for [`Config::close_timeout`]: 10 seconds.
    pub const DEFAULT_CLOSE_TIMEOUT: Duration = Duration::from_secs(10);

    /// Replaces the security limits.
    #[must_use]
    pub const fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Tuning: how many encoded bytes `Sink::poll_ready` lets accumulate
    /// before it flushes them itself. Larger batches mean fewer syscalls when
    /// many messages are fed; this is also the bound on unflushed data a
    /// writer can queue (beyond one message), so it is the backpressure point.
    #[must_use]
    pub const fn write_buffer_size(mut self, bytes: usize) -> Self {
        self.write_buffer_size = if bytes == 0 { 1 } else { bytes };
        self
    }

    /// Tuning: how much room each socket read asks for at least. The buffer is
    /// allocated on demand and released again while the connection is idle.
    /// Reads that fill their room double the next one's (up to 64 KiB), and
    /// mostly empty reads halve it again down to this size, so a connection
    /// receiving large messages takes each in one read while one trading
    /// small messages asks for little.
    #[must_use]
    pub const fn read_buffer_size(mut self, bytes: usize) -> Self {
        self.read_buffer_size = if bytes < 256 { 256 } else { bytes };
        self
    }

    /// How long `close()` waits for the peer's close frame before giving up
    /// with [`Error::Timeout`](crate::Error::Timeout).
    #[must_use]
    pub const fn close_timeout(mut self, timeout: Duration) -> Self {
        self.close_timeout = timeout;
        self
    }

    /// Offers (client) or accepts (server) permessage-deflate during the
    /// handshake, with these settings (RFC 7692). Off by default: see
    /// [`DeflateConfig`](crate::DeflateConfig) for what it costs.
    #[cfg(feature = "deflate")]
    #[must_use]
    pub const fn deflate(mut self, deflate: crate::DeflateConfig) -> Self {
        self.deflate = Some(deflate);
        self
    }

    /// The permessage-deflate settings, when compression is on.
    #[cfg(feature = "deflate")]
    #[must_use]
    pub const fn get_deflate(&self) -> Option<crate::DeflateConfig> {
        self.deflate
    }

    /// Keepalive: send a ping whenever nothing has arrived from the peer for
    /// `interval` (RFC 6455 §5.5.2). The pong, like any frame, counts as
    /// arriving. Off by default. Pings are sent by the [`ReadHalf`] (or
    /// the unsplit stream) while it is being polled, as pongs are.
    ///
    /// [`ReadHalf`]: crate::ReadHalf
    #[must_use]
    pub const fn ping_interval(mut self, interval: Duration) -> Self {
        self.ping_interval = Some(interval);
        self
    }

    /// Read deadline ("idle timeout"): when nothing at all has arrived from
    /// the peer for `timeout`, the connection is failed: the stream yields
    /// [`Error::Timeout`](crate::Error::Timeout) and sends close 1001 (going
    /// away) if it still can. Off by default. With
    /// [`ping_interval`](Config::ping_interval) shorter than this, a live
    /// peer's pongs keep the connection open (gorilla/websocket's pong-wait
    /// pattern).
    #[must_use]
    pub const fn read_timeout(mut self, timeout: Duration) -> Self {
        self.read_timeout = Some(timeout);
        self
    }

    /// Write deadline: a flush that cannot complete within `timeout` (the
    /// peer does not read) fails the connection with
    /// [`Error::Timeout`](crate::Error::Timeout); later sends return it too.
    /// Off by default (a slow peer then only slows the writer down, through
    /// backpressure).
    #[must_use]
    pub const fn write_timeout(mut self, timeout: Duration) -> Self {
        self.write_timeout = Some(timeout);
        self
    }

    /// The keepalive ping interval, if any.
    #[must_use]
    pub const fn get_ping_interval(&self) -> Option<Duration> {
        self.ping_interval
    }

    /// The read deadline, if any.
    #[must_use]
    pub const fn get_read_timeout(&self) -> Option<Duration> {
        self.read_timeout
    }

    /// The write deadline, if any.
    #[must_use]
    pub const fn get_write_timeout(&self) -> Option<Duration> {
        self.write_timeout
    }

    /// The configured limits.
    #[must_use]
    pub const fn get_limits(&self) -> Limits {
        self.limits
    }

    /// The configured write batch size.
    #[must_use]
    pub const fn get_write_buffer_size(&self) -> usize {
        self.write_buffer_size
    }

    /// The configured read size.
    #[must_use]
    pub const fn get_read_buffer_size(&self) -> usize {
        self.read_buffer_size
    }

    /// The configured closing-handshake timeout.
    #[must_use]
    pub const fn get_close_timeout(&self) -> Duration {
        self.close_timeout
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            limits: Limits::default(),
            write_buffer_size: Self::DEFAULT_WRITE_BUFFER_SIZE,
            read_buffer_size: Self::DEFAULT_READ_BUFFER_SIZE,
            close_timeout: Self::DEFAULT_CLOSE_TIMEOUT,
            ping_interval: None,
            read_timeout: None,
            write_timeout: None,
            #[cfg(feature = "deflate")]
            deflate: None,
        }
    }
}
