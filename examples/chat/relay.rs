//! The chat's Redis relay (`chat ADDR --redis redis://HOST:PORT/`): several
//! chat processes share one room through a Redis pub/sub channel,
//! `silverback:chat:<room>`.
//!
//! ```text
//! client -ws-> reader -submit-> relay -PUBLISH-> Redis -message-> relay of every process
//!                                                                   -> Topic -> writers -ws-> clients
//! ```
//!
//! - **One way in, one way out.** A reader [`Relay::submit`]s each text
//!   message: a push onto a bounded queue under a short lock, never an
//!   await, so a slow or absent Redis never blocks a WebSocket reader. The
//!   relay task owns both Redis connections (a subscriber and a publisher)
//!   and is the only one that publishes to the local [`Topic`], so every
//!   process delivers in the order Redis gives it, its own messages
//!   included (they are delivered when they come back, not when sent).
//! - **Envelope.** Each message is published as `ORIGIN:SEQ:TEXT`: the
//!   process's random 64-bit origin and a per-process sequence number (16
//!   hex digits each), then the text. Sequence numbers of one origin only
//!   grow, and Redis keeps one publisher's order, so each process keeps the
//!   highest sequence number it delivered per origin and skips anything at
//!   or below it: a message is never delivered twice, whoever republished
//!   it.
//! - **Redis down** (at start, or lost while running): the relay delivers
//!   its own process's messages locally at once, in order, and records
//!   them as delivered (highest own sequence number). They stay queued; on
//!   reconnect the queue is flushed to Redis in order, so other processes
//!   get them, and this process skips them when they come back. Messages
//!   published but not yet back when Redis went away are delivered locally
//!   at that moment and published again after the reconnect (processes
//!   that already had them skip them). Reconnects back off from 100 ms to
//!   5 s.
//! - **Bounds.** The queue holds [`QUEUE_MAX`] messages; past it the oldest
//!   is dropped, counted and reported on stdout. While Redis is up that
//!   only happens when it accepts messages slower than clients send them
//!   (a dropped message that was neither published nor delivered locally
//!   is lost). A publish that takes longer than [`PUBLISH_TIMEOUT`] counts
//!   as losing Redis.
//! - **What Redis does not do.** Pub/sub keeps no history: a process that
//!   is not subscribed when a message is published never gets it (the
//!   other processes' messages sent while it was cut off are not replayed;
//!   its own are, to the others, once it is back).
//!
//! Lines printed: `redis connected to URL (channel CHANNEL)`, `redis
//! unavailable: ERROR; retrying in DELAY`, `redis lost: REASON; local
//! delivery only until it is back`, `redis queue full: dropped N oldest
//! messages (T in all)`.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use redis::aio::{MultiplexedConnection, PubSubSink, PubSubStream};
use silverback::broadcast::Topic;
use silverback::Message;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// Messages of this process waiting for Redis (not yet published, or
/// published and not yet back) at most; past it the oldest is dropped.
pub const QUEUE_MAX: usize = 1024;
/// Messages published in one pipeline.
const BATCH: usize = 256;
/// First reconnect delay; it doubles up to [`BACKOFF_MAX`].
const BACKOFF_MIN: Duration = Duration::from_millis(100);
/// Longest reconnect delay.
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// Bound on connecting and subscribing.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Bound on one pipelined publish.
pub const PUBLISH_TIMEOUT: Duration = Duration::from_secs(5);

/// The queue of this process's messages, shared by readers and the relay.
#[derive(Debug, Default)]
struct Queue {
    /// In sequence order; `entries[..published]` went to Redis and have not
    /// come back yet.
    entries: VecDeque<(u64, String)>,
    published: usize,
    /// The sequence number of the last message submitted.
    last_seq: u64,
    /// Messages dropped and not reported yet.
    dropped: u64,
}

impl Queue {
    /// Forgets messages up to `seq` (they came back from Redis).
    fn acknowledge(&mut self, seq: u64) {
        while self.entries.front().is_some_and(|(s, _)| *s <= seq) {
            self.entries.pop_front();
            self.published = self.published.saturating_sub(1);
        }
    }
}

/// A handle on the relay for the readers: cheap to clone.
#[derive(Clone, Debug)]
pub struct Relay {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    queue: Mutex<Queue>,
    wake: Notify,
}

impl Relay {
    /// Checks `url`, then spawns the relay task, which connects (and keeps
    /// reconnecting) to Redis and delivers the room's messages to `room`.
    /// The task runs until aborted.
    pub fn start(url: &str, room_name: &str, room: Topic) -> redis::RedisResult<(Relay, JoinHandle<()>)> {
        let client = redis::Client::open(url)?;
        let shared = Arc::new(Shared { queue: Mutex::new(Queue::default()), wake: Notify::new() });
        let task = Task {
            client,
            url: url.to_owned(),
            channel: format!("silverback:chat:{room_name}"),
            origin: rand::random(),
            room,
            shared: shared.clone(),
            delivered: HashMap::new(),
            dropped_total: 0,
        };
        Ok((Relay { shared }, tokio::spawn(task.run())))
    }

    /// Queues a text message for the room. Never waits: past
    /// [`QUEUE_MAX`] queued messages the oldest is dropped.
    pub fn submit(&self, text: &str) {
        let mut queue = self.shared.queue.lock().unwrap_or_else(|e| e.into_inner());
        queue.last_seq += 1;
        let seq = queue.last_seq;
        queue.entries.push_back((seq, text.to_owned()));
        if queue.entries.len() > QUEUE_MAX {
            queue.entries.pop_front();
            queue.published = queue.published.saturating_sub(1);
            queue.dropped += 1;
        }
        drop(queue);
        self.shared.wake.notify_one();
    }
}

/// Both connections to Redis.
struct Link {
    /// Kept: dropping it would end the subscription.
    _sink: PubSubSink,
    messages: PubSubStream,
    publisher: MultiplexedConnection,
}

type Publishing = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;

/// The relay task's state.
struct Task {
    client: redis::Client,
    url: String,
    channel: String,
    /// This process, in the envelopes it publishes.
    origin: u64,
    room: Topic,
    shared: Arc<Shared>,
    /// Highest sequence number delivered to the room, per origin.
    delivered: HashMap<u64, u64>,
    dropped_total: u64,
}

impl Task {
    async fn run(mut self) {
        let mut backoff = BACKOFF_MIN;
        loop {
            match tokio::time::timeout(CONNECT_TIMEOUT, self.connect()).await {
                Ok(Ok(link)) => {
                    backoff = BACKOFF_MIN;
                    println!("redis connected to {} (channel {})", self.url, self.channel);
                    let why = self.serve(link).await;
                    println!("redis lost: {why}; local delivery only until it is back");
                    self.shared.queue.lock().unwrap_or_else(|e| e.into_inner()).published = 0;
                    self.deliver_own_locally().await;
                }
                Ok(Err(e)) => println!("redis unavailable: {e}; retrying in {backoff:?}"),
                Err(_) => println!("redis unavailable: no answer within {CONNECT_TIMEOUT:?}; retrying in {backoff:?}"),
            }
            // Until the next attempt, this process's messages go straight to its room.
            let retry = tokio::time::sleep_until(Instant::now() + backoff);
            tokio::pin!(retry);
            loop {
                tokio::select! {
                    () = &mut retry => break,
                    () = self.shared.wake.notified() => self.deliver_own_locally().await,
                }
            }
            backoff = (backoff * 2).min(BACKOFF_MAX);
        }
    }

    async fn connect(&self) -> redis::RedisResult<Link> {
        let (mut sink, messages) = self.client.get_async_pubsub().await?.split();
        sink.subscribe(&self.channel).await?;
        let publisher = self.client.get_multiplexed_async_connection().await?;
        Ok(Link { _sink: sink, messages, publisher })
    }

    /// Relays until Redis is lost; the reason. Publishes everything queued
    /// first (what was delivered locally while Redis was down included).
    async fn serve(&mut self, mut link: Link) -> String {
        let mut publishing: Option<Publishing> = None;
        loop {
            self.report_drops();
            if publishing.is_none() {
                publishing =
                    self.next_batch().map(|batch| publish(link.publisher.clone(), self.channel.clone(), batch));
            }
            tokio::select! {
                msg = link.messages.next() => match msg {
                    Some(msg) => self.deliver_from_redis(msg.get_payload_bytes()).await,
                    None => return "connection closed".to_owned(),
                },
                done = async { publishing.as_mut().expect("guarded").await }, if publishing.is_some() => {
                    publishing = None;
                    if let Err(e) = done {
                        return e;
                    }
                }
                () = self.shared.wake.notified(), if publishing.is_none() => {}
            }
        }
    }

    /// The next queued messages to publish, as envelopes.
    fn next_batch(&self) -> Option<Vec<Vec<u8>>> {
        let mut queue = self.shared.queue.lock().unwrap_or_else(|e| e.into_inner());
        let end = queue.entries.len().min(queue.published + BATCH);
        if end == queue.published {
            return None;
        }
        let batch =
            queue.entries.range(queue.published..end).map(|(seq, text)| envelope(self.origin, *seq, text)).collect();
        queue.published = end;
        Some(batch)
    }

    /// Delivers a message that came from Redis, unless it was delivered
    /// already (a message of this process delivered locally while Redis was
    /// down, or one published again after a reconnect).
    async fn deliver_from_redis(&mut self, payload: &[u8]) {
        let Some((origin, seq, text)) = open_envelope(payload) else { return };
        if origin == self.origin {
            self.shared.queue.lock().unwrap_or_else(|e| e.into_inner()).acknowledge(seq);
        }
        let last = self.delivered.entry(origin).or_insert(0);
        if seq <= *last {
            return;
        }
        *last = seq;
        let _ = self.room.publish_message(&Message::text(text.to_owned())).await;
    }

    /// Delivers this process's queued messages that the room has not had
    /// yet, in order (Redis is down).
    async fn deliver_own_locally(&mut self) {
        self.report_drops();
        let last = self.delivered.entry(self.origin).or_insert(0);
        let fresh: Vec<(u64, String)> = {
            let queue = self.shared.queue.lock().unwrap_or_else(|e| e.into_inner());
            queue.entries.iter().filter(|(seq, _)| *seq > *last).cloned().collect()
        };
        if let Some((seq, _)) = fresh.last() {
            *last = *seq;
        }
        for (_, text) in fresh {
            let _ = self.room.publish_message(&Message::text(text)).await;
        }
    }

    fn report_drops(&mut self) {
        let dropped = std::mem::take(&mut self.shared.queue.lock().unwrap_or_else(|e| e.into_inner()).dropped);
        if dropped > 0 {
            self.dropped_total += dropped;
            println!("redis queue full: dropped {dropped} oldest messages ({} in all)", self.dropped_total);
        }
    }
}

/// Publishes `batch` in one pipeline, bounded by [`PUBLISH_TIMEOUT`].
fn publish(mut conn: MultiplexedConnection, channel: String, batch: Vec<Vec<u8>>) -> Publishing {
    Box::pin(async move {
        let mut pipe = redis::pipe();
        for payload in &batch {
            pipe.cmd("PUBLISH").arg(&channel).arg(payload).ignore();
        }
        match tokio::time::timeout(PUBLISH_TIMEOUT, pipe.query_async::<()>(&mut conn)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(format!("publish failed: {e}")),
            Err(_) => Err(format!("publish took over {PUBLISH_TIMEOUT:?}")),
        }
    })
}

/// `ORIGIN:SEQ:TEXT`, the numbers as 16 hex digits.
fn envelope(origin: u64, seq: u64, text: &str) -> Vec<u8> {
    format!("{origin:016x}:{seq:016x}:{text}").into_bytes()
}

/// The parts of an envelope; `None` for anything else on the channel.
fn open_envelope(payload: &[u8]) -> Option<(u64, u64, &str)> {
    let text = std::str::from_utf8(payload).ok()?;
    let (origin, rest) = text.split_at_checked(16)?;
    let (seq, rest) = rest.strip_prefix(':')?.split_at_checked(16)?;
    let text = rest.strip_prefix(':')?;
    Some((u64::from_str_radix(origin, 16).ok()?, u64::from_str_radix(seq, 16).ok()?, text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes_round_trip() {
        let payload = envelope(0xfeed, 42, "hello: world");
        assert_eq!(open_envelope(&payload), Some((0xfeed, 42, "hello: world")));
        assert_eq!(open_envelope(b"not an envelope"), None);
        assert_eq!(open_envelope(b""), None);
    }

    #[test]
    fn acknowledged_messages_leave_the_queue() {
        let mut queue = Queue::default();
        queue.entries.extend((1..=4).map(|seq| (seq, String::new())));
        queue.published = 3;
        queue.acknowledge(2);
        assert_eq!(queue.entries.front().map(|e| e.0), Some(3));
        assert_eq!(queue.published, 1);
    }
}
