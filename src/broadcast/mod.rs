//! Broadcast: publish a message once to every subscriber of a [`Topic`],
//! each written to its connection at that connection's own pace.
//!
//! ```text
//!   publish ──▶ Topic: one log of the last `capacity` PreparedMessages
//!                 │        (one copy each; subscribers are cursors)
//!                 ├──▶ Subscription ── forward ──▶ WriteHalf (batch, one flush)
//!                 ├──▶ Subscription ── recv_many ──▶ your writer task
//!                 └──▶ ...
//! ```
//!
//! # What "slow" means
//!
//! A bounded queue per subscriber that drops the subscriber when it is full
//! confuses a slow socket with a task the scheduler has not run yet: a
//! publisher that runs ahead of a thousand writer tasks fills every queue
//! before most of them were polled once, and drops clients that were
//! reading as fast as they could. Here the decision rests on progress:
//!
//! - A subscriber that is behind but takes messages (its writer flushes
//!   and comes back for more) holds the publisher back when the log is
//!   full: [`Topic::publish`] waits (backpressure). Nobody is dropped for
//!   a burst, whatever its size.
//! - A subscriber that holds the oldest message of a full log and took
//!   nothing for [`TopicConfig::lag`] (its writer is stuck in a flush: the
//!   peer stopped reading) gets the [`Overflow`] policy: dropped with close
//!   1008 (the default), skipped (the oldest messages, counted), or waited
//!   for.
//!
//! # Costs
//!
//! Publishing clones one [`PreparedMessage`](crate::PreparedMessage) (reference counts) into the
//! log and wakes the subscribers that wait for a message; it allocates
//! nothing per subscriber. A subscriber takes a batch of messages under
//! the topic's lock (reference counts again) and writes them with the lock
//! released: no lock is held across I/O. The lock is a `std` mutex held for
//! a few memory operations at a time.
//!
//! # Example
//!
//! ```no_run
//! use silverback::broadcast::Topic;
//! use silverback::Message;
//! use tokio::net::TcpListener;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let listener = TcpListener::bind("127.0.0.1:9001").await?;
//! let topic = Topic::new();
//! loop {
//!     let (tcp, _) = listener.accept().await?;
//!     let topic = topic.clone();
//!     tokio::spawn(async move {
//!         let (mut read, write) = silverback::accept(tcp).await?.split();
//!         let writer = topic.subscribe_writer(write);
//!         while let Some(msg) = futures_util::StreamExt::next(&mut read).await {
//!             let msg = msg?;
//!             if msg.is_text() {
//!                 topic.publish_message(&msg).await?;
//!             }
//!         }
//!         writer.abort();
//!         Ok::<_, silverback::Error>(())
//!     });
//! }
//! # }
//! ```

mod config;
mod log;
mod subscription;
mod topic;

pub use config::{Overflow, TopicConfig};
pub use subscription::{Ended, RecvError, Subscription};
pub use topic::Topic;
