//! [`Topic`]: the publishing side, and the state it shares with its
//! subscriptions.

use std::fmt;
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

use tokio::io::AsyncWrite;
use tokio::task::JoinHandle;
use tokio::time::{Instant, Sleep};

use super::log::{Log, Publish};
use super::{Ended, Subscription, TopicConfig};
use crate::error::{CapacityError, Result};
use crate::{Message, PreparedMessage, WriteHalf};

/// What a topic and its subscriptions share.
#[derive(Debug)]
pub(super) struct Inner {
    log: Mutex<Log>,
    /// Live `Topic` handles: the topic closes when the last one goes.
    handles: AtomicUsize,
}

impl Inner {
    /// Locks the log, for one non-blocking call. Every update of the log
    /// is one step, so a panic elsewhere leaves it consistent.
    pub(super) fn lock(&self) -> MutexGuard<'_, Log> {
        self.log.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Wakes every waker in `wake` (outside the lock) and empties it.
pub(super) fn wake_all(wake: &mut Vec<Waker>) {
    wake.drain(..).for_each(Waker::wake);
}

/// A broadcast topic (a room): every message published to it reaches every
/// subscriber, in order, without being encoded or copied per subscriber.
///
/// The topic keeps one log of the last [`TopicConfig::capacity`] messages
/// (shared [`PreparedMessage`]s, reference counted); each [`Subscription`]
/// is a cursor into it. Subscribers that read at different speeds drift
/// apart by up to the capacity; then [`Topic::publish`] waits for the
/// slowest one, as long as it keeps taking messages. Only a subscriber
/// that took nothing for [`TopicConfig::lag`] while holding the oldest
/// message is dropped (close 1008), skipped or waited for, per
/// [`TopicConfig::overflow`]. So a burst larger than the log reaches every
/// subscriber that keeps reading, and a peer that stopped reading costs the
/// others at most one lag time.
///
/// Clone the handle to publish from several tasks; the topic closes (its
/// subscriptions end once they have taken what was published) when the last
/// handle is dropped or on [`Topic::close`]. For rooms, keep topics in a
/// map:
///
/// ```no_run
/// use std::collections::HashMap;
/// use silverback::broadcast::Topic;
/// use silverback::{Message, WebSocketStream};
/// use tokio::net::TcpStream;
///
/// # async fn run(rooms: &mut HashMap<String, Topic>, room: &str, ws: WebSocketStream<TcpStream>) -> silverback::Result<()> {
/// let topic = rooms.entry(room.to_owned()).or_default().clone();
/// let (mut read, write) = ws.split();
/// // The library writes what the room says to this connection.
/// let writer = topic.subscribe_writer(write);
/// while let Some(msg) = futures_util::StreamExt::next(&mut read).await {
///     let msg = msg?;
///     if msg.is_text() {
///         topic.publish_message(&msg).await?;
///     }
/// }
/// writer.abort(); // unsubscribes
/// # Ok(())
/// # }
/// ```
pub struct Topic {
    inner: Arc<Inner>,
}

impl Topic {
    /// A topic with the default [`TopicConfig`].
    #[must_use]
    pub fn new() -> Self {
        Topic::with_config(TopicConfig::default())
    }

    /// A topic configured by `config`.
    #[must_use]
    pub fn with_config(config: TopicConfig) -> Self {
        let inner = Inner { log: Mutex::new(Log::new(config)), handles: AtomicUsize::new(1) };
        Topic { inner: Arc::new(inner) }
    }

    /// The topic's configuration.
    #[must_use]
    pub fn config(&self) -> TopicConfig {
        *self.inner.lock().config()
    }

    /// Subscribes: the subscription receives every message published from
    /// now on, until it is dropped (which unsubscribes it), the overflow
    /// policy drops it, or the topic closes. Read it with
    /// [`Subscription::recv`] or [`Subscription::recv_many`] in your own
    /// writer task, or let [`Subscription::forward`] write to a connection.
    #[must_use]
    pub fn subscribe(&self) -> Subscription {
        let id = self.inner.lock().subscribe(Instant::now());
        Subscription::new(self.inner.clone(), id)
    }

    /// Subscribes `write` and spawns a task (on the current Tokio runtime)
    /// that writes every message published from now on to it, as
    /// [`Subscription::forward`] does. The task ends when the topic closes,
    /// when the connection fails or is closed, or when the overflow policy
    /// drops the subscriber (after sending close 1008); it gives the
    /// [`WriteHalf`] back with the reason. Abort the task to unsubscribe
    /// earlier.
    ///
    /// # Panics
    ///
    /// Outside a Tokio runtime, like `tokio::spawn`.
    pub fn subscribe_writer<S>(&self, mut write: WriteHalf<S>) -> JoinHandle<(WriteHalf<S>, Result<Ended>)>
    where
        S: AsyncWrite + Unpin + Send + 'static,
    {
        let mut subscription = self.subscribe();
        tokio::spawn(async move {
            let ended = subscription.forward(&mut write).await;
            (write, ended)
        })
    }

    /// Subscribers the next message would be queued for.
    #[must_use]
    pub fn subscriber_count(&self) -> usize {
        self.inner.lock().active()
    }

    /// Queues `msg` for every subscriber and returns how many that is. When
    /// the log is full, waits for the subscriber holding its oldest message
    /// to take it, or for the overflow policy to drop or skip that
    /// subscriber (after [`TopicConfig::lag`] without progress). Publishing
    /// costs one reference count per message, not one per subscriber; the
    /// subscribers waiting for a message are woken.
    ///
    /// Publishing to a closed topic, or one without subscribers, does
    /// nothing and returns 0.
    ///
    /// # Cancellation safety
    ///
    /// Cancel safe: the message is queued in the poll that returns `Ready`,
    /// or not at all; a dropped `publish` published nothing.
    pub async fn publish(&self, msg: &PreparedMessage) -> usize {
        let mut timer: Option<Pin<Box<Sleep>>> = None;
        poll_fn(|cx| self.poll_publish(cx, msg, &mut timer)).await
    }

    /// Encodes `msg` once ([`PreparedMessage::new`]) and publishes it, as
    /// [`Topic::publish`]. Fails, publishing nothing, for a ping or pong
    /// over 125 bytes.
    ///
    /// # Cancellation safety
    ///
    /// Cancel safe, as [`Topic::publish`].
    pub async fn publish_message(&self, msg: &Message) -> Result<usize, CapacityError> {
        let prepared = PreparedMessage::new(msg)?;
        Ok(self.publish(&prepared).await)
    }

    fn poll_publish(
        &self,
        cx: &mut Context<'_>,
        msg: &PreparedMessage,
        timer: &mut Option<Pin<Box<Sleep>>>,
    ) -> Poll<usize> {
        loop {
            // The wakers are woken once the lock is released, from a vector
            // the log keeps: no allocation per message.
            let (result, mut wake) = {
                let mut log = self.inner.lock();
                let mut wake = log.take_spare();
                (log.publish(msg, Instant::now(), &mut wake, cx.waker()), wake)
            };
            if wake.capacity() > 0 {
                wake_all(&mut wake);
                self.inner.lock().put_spare(wake);
            }
            match result {
                Publish::Queued(n) => return Poll::Ready(n),
                Publish::Full(deadline) => {
                    let Some(at) = deadline else { return Poll::Pending };
                    let sleep = match timer {
                        Some(sleep) => {
                            if sleep.deadline() != at {
                                sleep.as_mut().reset(at);
                            }
                            sleep
                        }
                        None => timer.insert(Box::pin(tokio::time::sleep_until(at))),
                    };
                    if sleep.as_mut().poll(cx).is_pending() {
                        return Poll::Pending;
                    }
                    // The lag time passed: look again (the policy applies).
                }
            }
        }
    }

    /// Closes the topic: publishing does nothing from now on, and each
    /// subscription ends ([`RecvError::Closed`](super::RecvError::Closed),
    /// [`Ended::Closed`]) once it has taken what was already published.
    pub fn close(&self) {
        let mut wake = Vec::new();
        self.inner.lock().close(&mut wake);
        wake_all(&mut wake);
    }

    /// Whether the topic is closed.
    #[must_use]
    pub fn is_closed(&self) -> bool {
        self.inner.lock().is_closed()
    }
}

impl Default for Topic {
    fn default() -> Self {
        Topic::new()
    }
}

impl Clone for Topic {
    fn clone(&self) -> Self {
        self.inner.handles.fetch_add(1, Ordering::Relaxed);
        Topic { inner: self.inner.clone() }
    }
}

impl Drop for Topic {
    fn drop(&mut self) {
        if self.inner.handles.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.close();
        }
    }
}

impl fmt::Debug for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let log = self.inner.lock();
        f.debug_struct("Topic").field("subscribers", &log.active()).field("config", log.config()).finish()
    }
}
