//! Keepalive and read deadline, as a clock-free state machine (time is
//! passed in; the stream owns the timer).
//!
//! RFC 6455 §5.5.2: "A Ping frame MAY serve either as a keepalive or as a
//! means to verify that the remote endpoint is still responsive." When
//! nothing has arrived for `ping_interval`, we ping; when nothing has
//! arrived for `read_timeout`, the peer is presumed gone and the connection
//! is failed. A pong, like any other frame, counts as something arriving.

use std::time::{Duration, Instant};

/// What the connection should do when the timer fires.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeepaliveAction {
    /// Nothing yet: sleep until [`Keepalive::deadline`].
    Wait,
    /// Send a ping now.
    Ping,
    /// Nothing arrived within the read timeout: fail the connection.
    Expire,
}

/// The keepalive state of one connection.
#[derive(Clone, Copy, Debug)]
pub struct Keepalive {
    ping_interval: Option<Duration>,
    read_timeout: Option<Duration>,
    last_activity: Instant,
    /// Whether the ping for the current silence was sent.
    pinged: bool,
}

impl Keepalive {
    /// A keepalive that pings after `ping_interval` of silence and expires
    /// after `read_timeout` of silence (either may be off), counting from
    /// `now`.
    #[must_use]
    pub fn new(ping_interval: Option<Duration>, read_timeout: Option<Duration>, now: Instant) -> Self {
        Keepalive { ping_interval, read_timeout, last_activity: now, pinged: false }
    }

    /// Bytes arrived from the peer at `now`.
    pub fn on_activity(&mut self, now: Instant) {
        self.last_activity = now;
        self.pinged = false;
    }

    /// When the timer should fire next, or `None` when nothing is configured.
    #[must_use]
    pub fn deadline(&self) -> Option<Instant> {
        let ping = self.ping_interval.filter(|_| !self.pinged).map(|d| self.last_activity + d);
        let expire = self.read_timeout.map(|d| self.last_activity + d);
        match (ping, expire) {
            (Some(p), Some(e)) => Some(p.min(e)),
            (p, e) => p.or(e),
        }
    }

    /// The timer fired (or was checked) at `now`.
    pub fn on_timer(&mut self, now: Instant) -> KeepaliveAction {
        if self.read_timeout.is_some_and(|d| now >= self.last_activity + d) {
            return KeepaliveAction::Expire;
        }
        if !self.pinged && self.ping_interval.is_some_and(|d| now >= self.last_activity + d) {
            self.pinged = true;
            return KeepaliveAction::Ping;
        }
        KeepaliveAction::Wait
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn pings_once_per_silence_then_expires() {
        let t0 = Instant::now();
        let mut k = Keepalive::new(Some(10 * S), Some(15 * S), t0);
        assert_eq!(k.deadline(), Some(t0 + 10 * S));
        assert_eq!(k.on_timer(t0 + 9 * S), KeepaliveAction::Wait);
        assert_eq!(k.on_timer(t0 + 10 * S), KeepaliveAction::Ping);
        assert_eq!(k.deadline(), Some(t0 + 15 * S), "after the ping, only the read deadline is left");
        assert_eq!(k.on_timer(t0 + 12 * S), KeepaliveAction::Wait);
        assert_eq!(k.on_timer(t0 + 15 * S), KeepaliveAction::Expire);
    }

    #[test]
    fn activity_restarts_both_clocks() {
        let t0 = Instant::now();
        let mut k = Keepalive::new(Some(10 * S), Some(15 * S), t0);
        assert_eq!(k.on_timer(t0 + 10 * S), KeepaliveAction::Ping);
        k.on_activity(t0 + 11 * S); // the pong
        assert_eq!(k.deadline(), Some(t0 + 21 * S));
        assert_eq!(k.on_timer(t0 + 16 * S), KeepaliveAction::Wait);
        assert_eq!(k.on_timer(t0 + 21 * S), KeepaliveAction::Ping);
    }

    #[test]
    fn either_half_may_be_off() {
        let t0 = Instant::now();
        let mut ping_only = Keepalive::new(Some(5 * S), None, t0);
        assert_eq!(ping_only.on_timer(t0 + 5 * S), KeepaliveAction::Ping);
        assert_eq!(ping_only.deadline(), None);
        assert_eq!(ping_only.on_timer(t0 + 500 * S), KeepaliveAction::Wait);

        let mut deadline_only = Keepalive::new(None, Some(5 * S), t0);
        assert_eq!(deadline_only.deadline(), Some(t0 + 5 * S));
        assert_eq!(deadline_only.on_timer(t0 + 5 * S), KeepaliveAction::Expire);

        assert_eq!(Keepalive::new(None, None, t0).deadline(), None);
    }

    #[test]
    fn a_ping_interval_longer_than_the_timeout_never_pings() {
        let t0 = Instant::now();
        let mut k = Keepalive::new(Some(20 * S), Some(5 * S), t0);
        assert_eq!(k.deadline(), Some(t0 + 5 * S));
        assert_eq!(k.on_timer(t0 + 5 * S), KeepaliveAction::Expire);
    }
}
