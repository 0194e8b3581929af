//! The fan-out bench against running chat example processes
//! (`SB_FANOUT_CHAT=ADDR[,ADDR...]`, started by `benches/redis/run.sh`):
//! one process alone (the in-process `Topic`), or several sharing the room
//! through Redis (`chat ADDR --redis URL`).
//!
//! The load generator's connections go round-robin over the processes
//! (`GET /ws`). The chat has no publisher of its own, so a publisher client
//! (silverback's `connect`) sends 64-byte text messages, each starting with
//! its send time, to the first process, and reads the room on one probe
//! connection per process: it keeps at most [`window`] messages sent but
//! not yet received on every probe, so it goes as fast as the slowest
//! process delivers and never overruns the chat's bounded queues.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use futures_util::{SinkExt, StreamExt};
use silverback::Message;
use tokio::sync::Notify;
use tokio::task::JoinSet;

use crate::loadgen::{self, Plan, Round, Target};
use crate::sys::{mono_ns, put_stamp};
use crate::wire;

/// The load generator's upgrade request for the chat's hub: the bench's
/// own, on `/ws`.
fn chat_request() -> Vec<u8> {
    [b"GET /ws ".as_slice(), wire::UPGRADE_REQUEST.strip_prefix(b"GET / ").expect("a GET / request")].concat()
}

/// Size of a published message.
const SIZE: usize = 64;

/// Messages the publisher may have in flight (`SB_FANOUT_CHAT_WINDOW`,
/// default 64).
fn window() -> u64 {
    std::env::var("SB_FANOUT_CHAT_WINDOW").ok().and_then(|v| v.parse().ok()).unwrap_or(64).max(1)
}

/// One round against the chat processes at `addrs` (CPU time from `pids`).
pub async fn round(addrs: &[SocketAddr], pids: &[u32], plan: Plan) -> Round {
    let mut publisher = JoinSet::new();
    let go = |_| {
        let addrs = addrs.to_vec();
        publisher.spawn(async move {
            if let Err(e) = publish(&addrs).await {
                eprintln!("publisher: {e}");
            }
        });
    };
    let request = chat_request();
    let target = Target { addrs, request: Some(&request), pids };
    let round = loadgen::round(target, go, plan).await;
    publisher.abort_all();
    round
}

/// Publishes stamped messages through `addrs[0]` until aborted, with at
/// most [`window`] in flight on every probe.
async fn publish(addrs: &[SocketAddr]) -> silverback::Result<()> {
    let received: Arc<Vec<AtomicU64>> = Arc::new(addrs.iter().map(|_| AtomicU64::new(0)).collect());
    let arrived = Arc::new(Notify::new());
    let mut probes = JoinSet::new();
    let mut sender = None;
    for (i, addr) in addrs.iter().enumerate() {
        let (ws, _) = silverback::connect(&format!("ws://{addr}/ws")).await?;
        let (mut read, write) = ws.split();
        sender.get_or_insert(write);
        let (received, arrived) = (received.clone(), arrived.clone());
        probes.spawn(async move {
            while let Some(Ok(msg)) = read.next().await {
                if msg.is_text() {
                    received[i].fetch_add(1, Ordering::Relaxed);
                    arrived.notify_one();
                }
            }
        });
    }
    let mut sender = sender.expect("at least one address");
    let window = window();
    let mut payload = vec![b'x'; SIZE];
    for sent in 1u64.. {
        loop {
            let notified = arrived.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let slowest = received.iter().map(|r| r.load(Ordering::Relaxed)).min().unwrap_or(0);
            if sent - slowest <= window {
                break;
            }
            notified.await;
        }
        put_stamp(&mut payload, mono_ns());
        let text = String::from_utf8(payload.clone()).expect("ASCII");
        sender.send(Message::text(text)).await?;
    }
    Ok(())
}
