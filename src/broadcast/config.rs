//! [`TopicConfig`] and [`Overflow`]: how much a topic holds, and what it
//! does about a subscriber that stopped draining.

use std::time::Duration;

/// What a [`Topic`](super::Topic) does when its log is full and the
/// subscriber holding the oldest message **stopped draining**: it took no
/// message for [`TopicConfig::lag`] while that message was waiting for it
/// (and, if it was skipped before, since it was first stuck).
///
/// A subscriber that is behind but still taking messages is never subject
/// to the policy: [`Topic::publish`](super::Topic::publish) waits for it
/// (backpressure), however many messages behind it is, so a burst larger
/// than the log reaches every subscriber that keeps reading.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Overflow {
    /// Drop the subscriber: its [`Subscription::recv`](super::Subscription::recv)
    /// fails with [`RecvError::Lagged`](super::RecvError::Lagged), and
    /// [`Subscription::forward`](super::Subscription::forward) sends close
    /// 1008 (policy violation, "too slow") and returns
    /// [`Ended::Lagged`](super::Ended::Lagged). The default, like
    /// gorilla/websocket's chat hub.
    #[default]
    Close,
    /// Skip the oldest message for that subscriber (one per publish, so it
    /// keeps the newest [`TopicConfig::capacity`] messages), counted by
    /// [`Subscription::skipped`](super::Subscription::skipped). The
    /// subscriber stays; the publisher goes on at once.
    DropOldest,
    /// Never drop or skip: the publisher waits for room as long as it
    /// takes. One subscriber that stops reading stops the topic, so bound
    /// its writes another way (`Config::write_timeout`, which fails the
    /// connection and so ends its subscription).
    Wait,
}

/// How a [`Topic`](super::Topic) queues messages. Build it with the
/// by-value setters; the order of the calls does not matter.
///
/// ```
/// use std::time::Duration;
/// use silverback::broadcast::{Overflow, TopicConfig};
///
/// let config = TopicConfig::default().capacity(1024).lag(Duration::from_secs(5)).overflow(Overflow::DropOldest);
/// assert_eq!(config.get_capacity(), 1024);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TopicConfig {
    capacity: usize,
    lag: Duration,
    overflow: Overflow,
}

impl Default for TopicConfig {
    fn default() -> Self {
        TopicConfig { capacity: Self::DEFAULT_CAPACITY, lag: Self::DEFAULT_LAG, overflow: Overflow::Close }
    }
}

impl TopicConfig {
    /// Default for [`TopicConfig::capacity`]: 256 messages.
    pub const DEFAULT_CAPACITY: usize = 256;
    /// Default for [`TopicConfig::lag`]: 2 seconds.
    pub const DEFAULT_LAG: Duration = Duration::from_secs(2);

    /// The most messages a subscriber may be behind the publisher: the
    /// size of the topic's log, which holds one copy of each message for
    /// all subscribers. Memory is bounded by `capacity` messages (plus
    /// what each subscriber has taken and not yet written, a batch at
    /// most). 0 is taken as 1.
    #[must_use]
    pub const fn capacity(mut self, messages: usize) -> Self {
        self.capacity = if messages == 0 { 1 } else { messages };
        self
    }

    /// How long a subscriber may hold the oldest message of a full log
    /// without taking any message before [`TopicConfig::overflow`] applies
    /// to it. Meanwhile the publisher waits. It measures a socket that
    /// stopped draining (a writer blocked on a flush), not a task that the
    /// scheduler has not reached yet: keep it well above a scheduling
    /// round under load.
    #[must_use]
    pub const fn lag(mut self, lag: Duration) -> Self {
        self.lag = lag;
        self
    }

    /// What happens to a subscriber that stopped draining (see
    /// [`Overflow`]).
    #[must_use]
    pub const fn overflow(mut self, overflow: Overflow) -> Self {
        self.overflow = overflow;
        self
    }

    /// See [`TopicConfig::capacity`].
    #[must_use]
    pub const fn get_capacity(&self) -> usize {
        self.capacity
    }

    /// See [`TopicConfig::lag`].
    #[must_use]
    pub const fn get_lag(&self) -> Duration {
        self.lag
    }

    /// See [`TopicConfig::overflow`].
    #[must_use]
    pub const fn get_overflow(&self) -> Overflow {
        self.overflow
    }
}
