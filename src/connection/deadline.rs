//! [`Deadline`]: the one timer idiom of the engine. Every timeout (the close
//! timeout, the write timeout, keepalive pings and the read deadline) is a
//! lazily armed `tokio::time::Sleep` polled beside the I/O it bounds.

use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use tokio::time::{Instant, Sleep};

/// A timer that is armed when first polled and disarmed when it fires or is
/// cleared. Boxed, so that an unarmed one costs a pointer.
#[derive(Debug, Default)]
pub(crate) struct Deadline {
    sleep: Option<Pin<Box<Sleep>>>,
}

impl Deadline {
    /// Ready once `timeout` has passed since the first poll after the last
    /// time it fired or was cleared; then disarmed.
    pub(crate) fn poll_after(&mut self, cx: &mut Context<'_>, timeout: Duration) -> Poll<()> {
        let sleep = self.sleep.get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        ready!(sleep.as_mut().poll(cx));
        self.sleep = None;
        Poll::Ready(())
    }

    /// Ready once `at` has passed. Stays armed (the timer is reused when the
    /// next instant is set).
    pub(crate) fn poll_until(&mut self, cx: &mut Context<'_>, at: Instant) -> Poll<()> {
        match &mut self.sleep {
            Some(sleep) if sleep.deadline() == at => {}
            Some(sleep) => sleep.as_mut().reset(at),
            None => self.sleep = Some(Box::pin(tokio::time::sleep_until(at))),
        }
        self.sleep.as_mut().map_or(Poll::Ready(()), |sleep| sleep.as_mut().poll(cx))
    }

    /// Disarms the timer: the work it bounded is done.
    pub(crate) fn clear(&mut self) {
        self.sleep = None;
    }
}
