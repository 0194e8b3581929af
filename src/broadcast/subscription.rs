//! [`Subscription`]: one subscriber's cursor into a topic, and the writer
//! loop that drains it into a connection.

use std::fmt;
use std::future::{poll_fn, Future};
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_util::SinkExt;
use tokio::io::AsyncWrite;
use tokio::time::Instant;

use super::log::Take;
use super::topic::Inner;
use crate::error::Result;
use crate::protocol::{CloseCode, CloseFrame};
use crate::{PreparedMessage, WriteHalf};

/// Messages [`Subscription::forward`] takes at a time, then writes with one
/// flush. Its progress is measured per batch.
const FORWARD_BATCH: usize = 64;

/// Room for the one message [`Subscription::recv`] takes, without an
/// allocation.
struct One(Option<PreparedMessage>);

impl Extend<PreparedMessage> for One {
    fn extend<I: IntoIterator<Item = PreparedMessage>>(&mut self, iter: I) {
        self.0 = iter.into_iter().last();
    }
}

/// Why [`Subscription::recv`] returned no message. Both are final.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RecvError {
    /// The topic's overflow policy ([`Overflow::Close`](super::Overflow::Close))
    /// dropped this subscriber: it took nothing for the lag time while the
    /// topic's log was full.
    Lagged,
    /// The topic was closed and every message published before was taken.
    Closed,
}

impl fmt::Display for RecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RecvError::Lagged => "subscriber dropped: it stopped draining",
            RecvError::Closed => "topic closed",
        })
    }
}

impl std::error::Error for RecvError {}

/// How [`Subscription::forward`] ended without a connection error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Ended {
    /// The topic closed; everything published was written and flushed.
    Closed,
    /// The overflow policy dropped the subscriber; close 1008 was sent (or
    /// queued, if the peer did not take it within the lag time).
    Lagged,
}

/// One subscriber of a [`Topic`](super::Topic): receives every message
/// published after it subscribed, in order. Dropping it unsubscribes.
///
/// Read it with [`Subscription::recv`] / [`Subscription::recv_many`] (a
/// bounded channel to your own writer task: the topic's log is the
/// queue), or hand it a connection's [`WriteHalf`] with
/// [`Subscription::forward`].
pub struct Subscription {
    inner: Arc<Inner>,
    id: usize,
}

impl Subscription {
    pub(super) fn new(inner: Arc<Inner>, id: usize) -> Self {
        Subscription { inner, id }
    }

    /// The next message.
    ///
    /// # Cancellation safety
    ///
    /// Cancel safe: a message is taken only in the poll that returns it.
    pub async fn recv(&mut self) -> Result<PreparedMessage, RecvError> {
        let mut one = One(None);
        poll_fn(|cx| self.poll_take(cx, &mut one, 1)).await?;
        Ok(one.0.take().expect("took one message"))
    }

    /// Appends up to `limit` waiting messages (at least one: it waits for
    /// the first) to `buf`, and returns how many. Taking messages is what
    /// counts as progress for the overflow policy, so take them when you
    /// can write them: write the batch, flush, then call again.
    ///
    /// # Cancellation safety
    ///
    /// Cancel safe: messages are taken only in the poll that returns them.
    pub async fn recv_many(&mut self, buf: &mut Vec<PreparedMessage>, limit: usize) -> Result<usize, RecvError> {
        poll_fn(|cx| self.poll_recv_many(cx, buf, limit)).await
    }

    /// Polls for up to `limit` messages; see [`Subscription::recv_many`].
    pub fn poll_recv_many(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut Vec<PreparedMessage>,
        limit: usize,
    ) -> Poll<Result<usize, RecvError>> {
        self.poll_take(cx, buf, limit)
    }

    fn poll_take(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut impl Extend<PreparedMessage>,
        limit: usize,
    ) -> Poll<Result<usize, RecvError>> {
        let took = self.inner.lock().take(self.id, buf, limit, Instant::now(), cx.waker());
        match took {
            Take::Got(n) => Poll::Ready(Ok(n)),
            Take::Pending => Poll::Pending,
            Take::Lagged => Poll::Ready(Err(RecvError::Lagged)),
            Take::Closed => Poll::Ready(Err(RecvError::Closed)),
        }
    }

    /// Messages the [`Overflow::DropOldest`](super::Overflow::DropOldest)
    /// policy skipped for this subscriber so far.
    #[must_use]
    pub fn skipped(&self) -> u64 {
        self.inner.lock().skipped(self.id)
    }

    /// Whether the overflow policy dropped this subscriber.
    #[must_use]
    pub fn is_lagged(&self) -> bool {
        self.inner.lock().is_lagged(self.id)
    }

    /// Writes every message published to the topic to `write`, until the
    /// topic closes ([`Ended::Closed`]), the overflow policy drops this
    /// subscriber ([`Ended::Lagged`], after sending close 1008 "too slow",
    /// waiting at most the lag time for it to be written), or a write fails
    /// (the connection's error: it failed, was closed, or a flush
    /// outlasted `Config::write_timeout`). Spawn it per connection, or use
    /// [`Topic::subscribe_writer`](super::Topic::subscribe_writer).
    ///
    /// It batches: it takes every waiting message (up to 64), queues them
    /// all with [`WriteHalf::feed_prepared`], then flushes once. While it
    /// is blocked in a flush, a drop by the overflow policy interrupts it.
    /// Other tasks may still send on the connection through a `Control`.
    ///
    /// # Cancellation safety
    ///
    /// Not cancel safe: messages taken from the topic but not yet queued
    /// on the connection are lost when the future is dropped; those queued
    /// go out with the connection's next flush. Calling it again continues
    /// with the messages after them.
    pub async fn forward<S: AsyncWrite + Unpin>(&mut self, write: &mut WriteHalf<S>) -> Result<Ended> {
        // Grown on demand: a subscriber that never saw a burst holds no
        // room for 64 messages (512 bytes) while it idles.
        let mut batch = Vec::new();
        loop {
            match self.recv_many(&mut batch, FORWARD_BATCH).await {
                Ok(_) => {}
                Err(RecvError::Closed) => return Ok(Ended::Closed),
                Err(RecvError::Lagged) => return Ok(self.close_lagged(write).await),
            }
            // The future borrowing `write` ends with this block.
            let written = {
                let mut writing = pin!(async {
                    for msg in batch.drain(..) {
                        write.feed_prepared(&msg).await?;
                    }
                    write.flush().await
                });
                poll_fn(|cx| {
                    if let Poll::Ready(result) = writing.as_mut().poll(cx) {
                        return Poll::Ready(Some(result));
                    }
                    if self.inner.lock().poll_lagged(self.id, cx.waker()) {
                        return Poll::Ready(None);
                    }
                    Poll::Pending
                })
                .await
            };
            match written {
                Some(result) => result?,
                None => {
                    batch.clear();
                    return Ok(self.close_lagged(write).await);
                }
            }
        }
    }

    /// Sends close 1008 after what is queued, waiting the lag time at most.
    async fn close_lagged<S: AsyncWrite + Unpin>(&mut self, write: &mut WriteHalf<S>) -> Ended {
        let lag = self.inner.lock().config().get_lag();
        let goodbye = CloseFrame::new(CloseCode::POLICY_VIOLATION, "too slow");
        // The frame stays queued (urgent) if the peer does not take it in
        // time; the reading side may still write it.
        let _ = tokio::time::timeout(lag, write.send_close(Some(goodbye))).await;
        Ended::Lagged
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.inner.lock().unsubscribe(self.id);
    }
}

impl fmt::Debug for Subscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription").field("id", &self.id).finish_non_exhaustive()
    }
}
