//! [`Backoff`]: how long [`Reconnect`](crate::Reconnect) waits between
//! attempts, and when it gives up.

use std::time::Duration;

use rand::Rng;

/// Exponential backoff with jitter for [`Reconnect`](crate::Reconnect).
///
/// The `n`-th wait (from 0) is drawn uniformly from
/// `[ceiling × (1 − jitter), ceiling]` with `ceiling = min(max, initial ×
/// factorⁿ)`: with the defaults, 0.5–1 s, 1–2 s, 2–4 s... up to 30–60 s.
/// The jitter keeps many clients that lost the same server from coming
/// back in step.
///
/// By default it never gives up; [`Backoff::max_attempts`] and
/// [`Backoff::give_up_after`] bound a run of failed attempts.
///
/// ```
/// use std::time::Duration;
/// use silverback::Backoff;
///
/// let backoff = Backoff::new()
///     .initial(Duration::from_millis(100))
///     .max(Duration::from_secs(10))
///     .factor(1.5)
///     .jitter(0.2)
///     .give_up_after(Duration::from_secs(300));
/// assert_eq!(backoff.ceiling(0), Duration::from_millis(100));
/// assert_eq!(backoff.ceiling(2), Duration::from_millis(225));
/// assert_eq!(backoff.ceiling(100), Duration::from_secs(10));
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    factor: f64,
    jitter: f64,
    max_attempts: Option<u32>,
    give_up_after: Option<Duration>,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff::new()
    }
}

impl Backoff {
    /// Default for [`Backoff::initial`]: 1 second.
    pub const DEFAULT_INITIAL: Duration = Duration::from_secs(1);
    /// Default for [`Backoff::max`]: 60 seconds.
    pub const DEFAULT_MAX: Duration = Duration::from_secs(60);
    /// Default for [`Backoff::factor`]: 2.
    pub const DEFAULT_FACTOR: f64 = 2.0;
    /// Default for [`Backoff::jitter`]: 0.5.
    pub const DEFAULT_JITTER: f64 = 0.5;

    /// The defaults: 1 s doubling up to 60 s, jitter 0.5, never giving up.
    #[must_use]
    pub fn new() -> Self {
        Backoff {
            initial: Self::DEFAULT_INITIAL,
            max: Self::DEFAULT_MAX,
            factor: Self::DEFAULT_FACTOR,
            jitter: Self::DEFAULT_JITTER,
            max_attempts: None,
            give_up_after: None,
        }
    }

    /// The first wait's ceiling.
    #[must_use]
    pub fn initial(mut self, delay: Duration) -> Self {
        self.initial = delay;
        self
    }

    /// The largest wait's ceiling. It also decides when a connection counts
    /// as stable: see [`Reconnect`](crate::Reconnect).
    #[must_use]
    pub fn max(mut self, delay: Duration) -> Self {
        self.max = delay;
        self
    }

    /// How much each ceiling grows over the last one; values below 1 (and
    /// NaN) count as 1, a constant delay.
    #[must_use]
    pub fn factor(mut self, factor: f64) -> Self {
        self.factor = if factor >= 1.0 { factor } else { 1.0 };
        self
    }

    /// The fraction of each ceiling that is random, from 0 (no jitter) to 1
    /// ("full jitter": anywhere from zero to the ceiling); clamped to that
    /// range (NaN counts as 0).
    #[must_use]
    pub fn jitter(mut self, jitter: f64) -> Self {
        self.jitter = if jitter > 0.0 { jitter.min(1.0) } else { 0.0 };
        self
    }

    /// Gives up after this many failed attempts in a row (1: a single
    /// attempt, never retried). A connection made resets the count.
    #[must_use]
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = Some(attempts);
        self
    }

    /// Gives up rather than start an attempt later than this after the
    /// first failure of a run of failed attempts. A connection made ends
    /// the run.
    #[must_use]
    pub fn give_up_after(mut self, limit: Duration) -> Self {
        self.give_up_after = Some(limit);
        self
    }

    /// The ceiling of the `n`-th wait (from 0), before jitter:
    /// `min(max, initial × factorⁿ)`.
    #[must_use]
    pub fn ceiling(&self, n: u32) -> Duration {
        let grown = self.initial.as_secs_f64() * self.factor.powi(n.min(i32::MAX as u32) as i32);
        if grown.is_finite() && grown < self.max.as_secs_f64() {
            Duration::from_secs_f64(grown)
        } else {
            self.max
        }
    }

    /// The `n`-th wait, jitter drawn.
    pub(crate) fn delay(&self, n: u32) -> Duration {
        let ceiling = self.ceiling(n);
        if self.jitter == 0.0 {
            return ceiling;
        }
        let share = 1.0 - self.jitter * rand::thread_rng().gen::<f64>();
        ceiling.mul_f64(share)
    }

    /// The wait's ceiling that marks a connection as stable.
    pub(crate) fn stable_after(&self) -> Duration {
        self.max
    }

    /// Whether a run of `failures` failed attempts, the first at `elapsed`
    /// before the next one would start, is over.
    pub(crate) fn gives_up(&self, failures: u32, elapsed: Duration) -> bool {
        self.max_attempts.is_some_and(|max| failures >= max) || self.give_up_after.is_some_and(|limit| elapsed > limit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ceilings_grow_and_stop_at_the_maximum() {
        let backoff = Backoff::new();
        let secs: Vec<f64> = (0..8).map(|n| backoff.ceiling(n).as_secs_f64()).collect();
        assert_eq!(secs, [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0]);
        assert_eq!(backoff.ceiling(u32::MAX), Backoff::DEFAULT_MAX);
        let constant = Backoff::new().factor(0.5).initial(Duration::from_millis(10));
        assert_eq!(constant.ceiling(9), Duration::from_millis(10));
        let nan = Backoff::new().factor(f64::NAN).jitter(f64::NAN);
        assert_eq!((nan.factor, nan.jitter), (1.0, 0.0));
    }

    #[test]
    fn jitter_stays_within_its_share_of_the_ceiling() {
        let backoff = Backoff::new().initial(Duration::from_secs(8)).jitter(0.25);
        for _ in 0..1000 {
            let delay = backoff.delay(0);
            assert!(delay >= Duration::from_secs(6) && delay <= Duration::from_secs(8), "{delay:?}");
        }
        let none = Backoff::new().jitter(-1.0);
        assert_eq!(none.delay(1), Duration::from_secs(2));
        let full = Backoff::new().jitter(7.0);
        assert_eq!(full.jitter, 1.0);
    }

    #[test]
    fn giving_up() {
        let forever = Backoff::new();
        assert!(!forever.gives_up(u32::MAX, Duration::MAX));
        let three = Backoff::new().max_attempts(3);
        assert!(!three.gives_up(2, Duration::ZERO) && three.gives_up(3, Duration::ZERO));
        let minute = Backoff::new().give_up_after(Duration::from_secs(60));
        assert!(!minute.gives_up(100, Duration::from_secs(60)));
        assert!(minute.gives_up(1, Duration::from_secs(61)));
    }
}
