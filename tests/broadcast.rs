//! `silverback::broadcast`: topics over real connections (`tokio::io::duplex`
//! pairs, a server-side `WriteHalf` subscribed to the topic and a client
//! reading it), and the overflow policies with a subscription read by hand.
//!
//! `a_burst_larger_than_the_log_reaches_every_reading_subscriber` is the
//! regression test of the chat that dropped every client after 256
//! messages; `naive_bounded_queues_drop_readers_in_the_same_burst` runs the
//! same burst through per-subscriber bounded queues that drop when full
//! (the old chat hub) and shows that the scenario tells the two apart.

use std::time::Duration;

use futures_util::StreamExt;
use silverback::broadcast::{Ended, Overflow, RecvError, Topic, TopicConfig};
use silverback::{CloseCode, Config, Message, PreparedMessage, Role, WebSocketStream};
use tokio::io::DuplexStream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{timeout, Instant};

/// Bound on any test's whole scenario.
const LIMIT: Duration = Duration::from_secs(60);

/// A server and a client connection over a duplex pipe of `buffer` bytes.
fn pair(buffer: usize) -> (WebSocketStream<DuplexStream>, WebSocketStream<DuplexStream>) {
    let (a, b) = tokio::io::duplex(buffer);
    let server = WebSocketStream::from_raw_parts(a, Role::Server, Config::default(), Default::default());
    let client = WebSocketStream::from_raw_parts(b, Role::Client, Config::default(), Default::default());
    (server, client)
}

/// A 64-byte text message carrying `i`.
fn numbered(i: usize) -> PreparedMessage {
    PreparedMessage::new(&Message::text(format!("{i:064}"))).unwrap()
}

/// Reads `client` until it ends; returns the numbers received, checking
/// that they come in order, and how the connection ended.
fn read_all(mut client: WebSocketStream<DuplexStream>) -> JoinHandle<(usize, String)> {
    tokio::spawn(async move {
        let mut next = 0;
        loop {
            match client.next().await {
                Some(Ok(Message::Text(text))) => {
                    let i: usize = text.as_str().parse().expect("a number");
                    assert_eq!(i, next, "out of order");
                    next += 1;
                }
                Some(Ok(Message::Close(frame))) => return (next, format!("close {:?}", frame.map(|f| f.code))),
                Some(Ok(_)) => {}
                Some(Err(e)) => return (next, format!("error {e}")),
                None => return (next, "end".to_owned()),
            }
        }
    })
}

const SUBSCRIBERS: usize = 200;
const BURST: usize = 2_000;
const QUEUE: usize = 256;

/// 200 subscribers that keep reading, a burst of 2 000 messages published
/// as fast as the topic takes them, on one thread (so the publisher runs
/// ahead of every writer task): nobody is dropped, everyone gets all.
#[tokio::test(flavor = "current_thread")]
async fn a_burst_larger_than_the_log_reaches_every_reading_subscriber() {
    timeout(LIMIT, async {
        let topic = Topic::with_config(TopicConfig::default().capacity(QUEUE));
        let mut readers = Vec::new();
        let mut writers = Vec::new();
        for _ in 0..SUBSCRIBERS {
            let (server, client) = pair(16 * 1024);
            let (_read, write) = server.split();
            writers.push(topic.subscribe_writer(write));
            readers.push(read_all(client));
            // The server's read half is dropped: nothing needs answering.
        }
        assert_eq!(topic.subscriber_count(), SUBSCRIBERS);
        let started = Instant::now();
        for i in 0..BURST {
            assert_eq!(topic.publish(&numbered(i)).await, SUBSCRIBERS, "message {i}: a subscriber was dropped");
        }
        topic.close();
        for writer in writers {
            let (mut write, ended) = writer.await.unwrap();
            assert_eq!(ended.unwrap(), Ended::Closed);
            futures_util::SinkExt::close(&mut write).await.unwrap();
        }
        for reader in readers {
            let (received, ending) = reader.await.unwrap();
            assert_eq!(received, BURST, "a reading subscriber missed messages ({ending})");
        }
        let elapsed = started.elapsed();
        eprintln!(
            "{SUBSCRIBERS} x {BURST} messages in {elapsed:.2?} ({:.0} messages/s delivered)",
            (SUBSCRIBERS * BURST) as f64 / elapsed.as_secs_f64()
        );
    })
    .await
    .expect("the burst took too long");
}

/// The same burst through one bounded queue per subscriber that drops the
/// subscriber when its queue is full (the old chat hub): most readers are
/// dropped, though all of them read as fast as they can. This is what the
/// test above guards against. In both tests the publisher runs ahead of
/// the writers as far as the design lets it (here: `try_send` never
/// yields, like a hub with a backlog of messages; the topic's `publish`
/// does not yield either while the log has room).
#[tokio::test(flavor = "current_thread")]
async fn naive_bounded_queues_drop_readers_in_the_same_burst() {
    timeout(LIMIT, async {
        let mut queues = Vec::new();
        let mut readers = Vec::new();
        for _ in 0..SUBSCRIBERS {
            let (server, client) = pair(16 * 1024);
            let (_read, mut write) = server.split();
            let (tx, mut rx) = mpsc::channel::<PreparedMessage>(QUEUE);
            tokio::spawn(async move {
                while let Some(msg) = rx.recv().await {
                    write.feed_prepared(&msg).await?;
                    while let Ok(msg) = rx.try_recv() {
                        write.feed_prepared(&msg).await?;
                    }
                    futures_util::SinkExt::flush(&mut write).await?;
                }
                futures_util::SinkExt::close(&mut write).await
            });
            queues.push(Some(tx));
            readers.push(read_all(client));
        }
        let mut dropped = 0;
        for i in 0..BURST {
            let msg = numbered(i);
            for queue in &mut queues {
                if queue.as_ref().is_some_and(|q| q.try_send(msg.clone()).is_err()) {
                    *queue = None;
                    dropped += 1;
                }
            }
        }
        drop(queues);
        let mut complete = 0;
        for reader in readers {
            complete += usize::from(reader.await.unwrap().0 == BURST);
        }
        eprintln!("naive queues: {dropped} of {SUBSCRIBERS} readers dropped, {complete} got everything");
        assert!(dropped > SUBSCRIBERS / 2, "the naive design dropped only {dropped} readers");
    })
    .await
    .expect("the naive burst took too long");
}

/// A peer that stops reading is dropped with 1008 once its writer made no
/// progress for the lag time; the others receive everything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_whose_peer_stopped_reading_is_closed_with_1008() {
    timeout(LIMIT, async {
        let lag = Duration::from_millis(300);
        let topic = Topic::with_config(TopicConfig::default().capacity(64).lag(lag));
        let mut readers = Vec::new();
        for _ in 0..3 {
            let (server, client) = pair(64 * 1024);
            topic.subscribe_writer(server.split().1);
            readers.push(read_all(client));
        }
        // The stuck peer: a small pipe it never reads.
        let (server, mut stuck) = pair(1024);
        let stuck_writer = topic.subscribe_writer(server.split().1);
        let messages = 2_000;
        let started = Instant::now();
        for i in 0..messages {
            topic.publish(&numbered(i)).await;
        }
        let (mut write, ended) = timeout(lag * 10, stuck_writer).await.expect("dropped in time").unwrap();
        assert_eq!(ended.unwrap(), Ended::Lagged);
        assert!(started.elapsed() >= lag, "dropped before the lag time: {:?}", started.elapsed());
        assert_eq!(topic.subscriber_count(), 3);
        topic.close();
        for reader in readers {
            let (received, ending) = reader.await.unwrap();
            assert_eq!(received, messages, "a reading subscriber missed messages ({ending})");
        }
        // Reading at last, the stuck peer finds the start of the stream,
        // then close 1008.
        let flush = tokio::spawn(async move { futures_util::SinkExt::flush(&mut write).await });
        let mut received = 0;
        let code = loop {
            match stuck.next().await {
                Some(Ok(Message::Text(_))) => received += 1,
                Some(Ok(Message::Close(frame))) => break frame.map(|f| f.code),
                other => panic!("expected messages then a close, got {other:?}"),
            }
        };
        assert_eq!(code, Some(CloseCode::POLICY_VIOLATION));
        assert!(received < messages, "the stuck peer got everything");
        let _ = flush.await;
    })
    .await
    .expect("took too long");
}

/// Dropping a subscription unsubscribes it, as does aborting a writer task
/// or the connection failing under it.
#[tokio::test]
async fn dropping_a_subscription_unsubscribes() {
    let topic = Topic::new();
    let a = topic.subscribe();
    let b = topic.subscribe();
    assert_eq!(topic.subscriber_count(), 2);
    drop(a);
    assert_eq!(topic.subscriber_count(), 1);
    drop(b);
    assert_eq!(topic.subscriber_count(), 0);
    assert_eq!(topic.publish(&numbered(0)).await, 0);

    let (server, _client) = pair(1024);
    let writer = topic.subscribe_writer(server.split().1);
    assert_eq!(topic.subscriber_count(), 1);
    writer.abort();
    let _ = writer.await;
    assert_eq!(topic.subscriber_count(), 0);

    // The peer goes away: the next write fails and the writer ends.
    let (server, client) = pair(1024);
    let writer = topic.subscribe_writer(server.split().1);
    drop(client);
    topic.publish(&numbered(1)).await;
    let (_write, ended) = timeout(LIMIT, writer).await.expect("writer ended").unwrap();
    assert!(ended.is_err(), "{ended:?}");
    assert_eq!(topic.subscriber_count(), 0);
}

/// `Overflow::Wait`: publish waits while a subscriber's queue is full and
/// resumes as it drains, however long that takes.
#[tokio::test(start_paused = true)]
async fn publish_waits_for_room_and_resumes_when_the_subscriber_drains() {
    let topic = Topic::with_config(TopicConfig::default().capacity(4).overflow(Overflow::Wait));
    let mut sub = topic.subscribe();
    for i in 0..4 {
        assert_eq!(topic.publish(&numbered(i)).await, 1);
    }
    // Full: the fifth waits, an hour included.
    let fifth = numbered(4);
    assert!(timeout(Duration::from_secs(3600), topic.publish(&fifth)).await.is_err());
    let publisher = {
        let topic = topic.clone();
        tokio::spawn(async move {
            for i in 4..20 {
                topic.publish(&numbered(i)).await;
            }
        })
    };
    let mut got = Vec::new();
    while got.len() < 20 {
        let mut batch = Vec::new();
        sub.recv_many(&mut batch, 3).await.unwrap();
        got.extend(batch);
    }
    publisher.await.unwrap();
    assert_eq!(got, (0..20).map(numbered).collect::<Vec<_>>());
    assert_eq!(sub.skipped(), 0);
}

/// `Overflow::Close` (the default): a subscriber that takes nothing holds
/// the publisher for the lag time, then is dropped.
#[tokio::test(start_paused = true)]
async fn a_stuck_subscription_holds_the_publisher_for_the_lag_time_then_is_dropped() {
    let lag = Duration::from_secs(2);
    let topic = Topic::with_config(TopicConfig::default().capacity(4).lag(lag));
    let mut stuck = topic.subscribe();
    let mut fine = topic.subscribe();
    let started = Instant::now();
    for i in 0..10 {
        topic.publish(&numbered(i)).await;
        fine.recv().await.unwrap();
    }
    assert!(started.elapsed() >= lag, "the publisher did not wait: {:?}", started.elapsed());
    assert!(started.elapsed() < lag * 2, "the publisher waited too long: {:?}", started.elapsed());
    assert_eq!(topic.subscriber_count(), 1);
    assert_eq!(stuck.recv().await, Err(RecvError::Lagged));
    assert!(stuck.is_lagged());
}

/// `Overflow::DropOldest`: a stuck subscription is skipped (counted) and
/// keeps the newest messages; the publisher waits once, not per message.
#[tokio::test(start_paused = true)]
async fn drop_oldest_skips_a_stuck_subscription_and_counts() {
    let lag = Duration::from_secs(1);
    let topic = Topic::with_config(TopicConfig::default().capacity(4).lag(lag).overflow(Overflow::DropOldest));
    let mut stuck = topic.subscribe();
    let started = Instant::now();
    for i in 0..100 {
        topic.publish(&numbered(i)).await;
    }
    assert!(started.elapsed() < lag * 2, "waited per message: {:?}", started.elapsed());
    assert_eq!(stuck.skipped(), 96);
    let mut rest = Vec::new();
    stuck.recv_many(&mut rest, 10).await.unwrap();
    assert_eq!(rest, (96..100).map(numbered).collect::<Vec<_>>());
}

/// Closing the topic ends subscriptions after what was published.
#[tokio::test]
async fn closing_the_topic_ends_subscriptions() {
    let topic = Topic::new();
    let mut sub = topic.subscribe();
    topic.publish(&numbered(7)).await;
    drop(topic);
    assert_eq!(sub.recv().await, Ok(numbered(7)));
    assert_eq!(sub.recv().await, Err(RecvError::Closed));
}
