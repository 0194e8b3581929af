//! The chat example (`examples/chat.rs`) across processes: two chat
//! processes share one room through a real `redis-server`
//! (`chat 127.0.0.1:0 --redis redis://127.0.0.1:PORT/`). Each test starts
//! its own `redis-server` on a free loopback port (no persistence) and its
//! own chat processes, and kills them when done.
//!
//! - `two_processes_two_browser_pages`: a headless Chromium page on each
//!   process; each sends a message and must show the other's.
//! - `per_sender_order_across_processes`: three silverback clients per
//!   process each send numbered messages; every client, in both
//!   processes, receives every sender's messages, all of them, in order.
//! - `local_delivery_while_redis_is_down`: `redis-server` is killed mid-run:
//!   messages sent meanwhile still reach the clients of the sender's
//!   process; once it is back on the same port, messages cross processes
//!   again, and no client sees a message twice.
//! - `starts_without_redis_and_connects_later`: both processes start while
//!   nothing listens on the Redis port, serve their own clients, and share
//!   the room once `redis-server` comes up (reconnect with backoff).
//!
//! They need `redis-server` (Debian's package), and the browser test
//! Chromium and playwright-core, so they run only under
//! `SILVERBACK_CONFORMANCE=1`, which `scripts/conformance.sh` sets after
//! installing them; without it each test prints one line and passes, so
//! `cargo test` stays hermetic. With it, a missing `redis-server` fails.
//! Every wait is bounded.

#![cfg(unix)]

mod chat_support;
mod common;
#[path = "chat_redis/redis_server.rs"]
mod redis_server;

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use chat_support::{reader, ChatServer, STEP};
use futures_util::SinkExt;
use redis_server::RedisServer;
use silverback::{Connector, MaybeTlsStream, Message, WriteHalf};
use tokio::sync::mpsc as tmpsc;
use tokio::time::timeout;

/// Bound on a whole socket scenario.
const SCENARIO: Duration = Duration::from_secs(120);
/// Bound on a chat process (re)connecting to Redis: its backoff is 5 s at
/// most.
const RECONNECT: Duration = Duration::from_secs(20);

/// `redis-server`'s path under `SILVERBACK_CONFORMANCE=1` (a panic when it
/// is missing); `None`, after one line saying so, otherwise.
fn redis_or_skip(test: &str) -> Option<PathBuf> {
    if !common::conformance_only(&format!("{test}: redis-server")) {
        return None;
    }
    let found = redis_server::find();
    assert!(
        found.is_some(),
        "redis-server missing ({}=1): bash scripts/conformance.sh installs it",
        common::CONFORMANCE_VAR
    );
    found
}

/// Two chat processes on `redis`, both connected to it.
fn two_chats(redis: &RedisServer) -> (ChatServer, ChatServer) {
    let url = redis.url();
    let start = || {
        let chat = ChatServer::start_with(&["--redis", &url]);
        assert!(chat.wait_for_line("redis connected", RECONNECT), "chat on {} did not connect to Redis", chat.addr);
        chat
    };
    (start(), start())
}

/// Waits (blocking the thread, not the runtime's other workers) for a
/// stdout line containing `needle` from each of `chats`.
fn expect_lines(chats: &[&ChatServer], needle: &str, limit: Duration) {
    for chat in chats {
        let seen = tokio::task::block_in_place(|| chat.wait_for_line(needle, limit));
        assert!(seen, "chat on {} printed no {needle:?} line within {limit:?}", chat.addr);
    }
}

/// Starts `redis` again on its port and waits until both chats are back.
fn restart_redis(redis: &mut RedisServer, chats: &[&ChatServer]) {
    tokio::task::block_in_place(|| redis.restart());
    expect_lines(chats, "redis connected", RECONNECT);
}

#[test]
fn two_processes_two_browser_pages() {
    let Some(binary) = redis_or_skip("two_processes_two_browser_pages") else { return };
    let tools = match common::process::browser_tools() {
        Ok(tools) => tools,
        Err(e) => panic!("browser tools missing ({}=1): {e}", common::CONFORMANCE_VAR),
    };
    let redis = RedisServer::start(&binary);
    let (a, b) = two_chats(&redis);
    chat_support::two_pages_chat(tools, &a.page_url(), &b.page_url());
}

// ---------------------------------------------------------------------------
// silverback clients
// ---------------------------------------------------------------------------

/// A silverback client of a chat process, with every text it received.
struct Client {
    name: String,
    write: WriteHalf<MaybeTlsStream>,
    rx: tmpsc::UnboundedReceiver<String>,
    seen: Vec<String>,
}

impl Client {
    async fn connect(chat: &ChatServer, name: &str) -> Client {
        let (ws, _) = timeout(STEP, Connector::new().connect(&chat.ws_url()))
            .await
            .expect("handshake in time")
            .expect("handshake");
        let (read, write) = ws.split();
        Client { name: name.to_owned(), write, rx: reader(read), seen: Vec::new() }
    }

    async fn send(&mut self, text: &str) {
        self.write.send(Message::text(text.to_owned())).await.expect("send");
    }

    /// Waits until `text` has arrived (now or earlier).
    async fn expect(&mut self, text: &str) {
        let name = self.name.clone();
        let found = timeout(STEP, async {
            while !self.seen.iter().any(|t| t == text) {
                let Some(got) = self.rx.recv().await else { return false };
                self.seen.push(got);
            }
            true
        })
        .await;
        assert_eq!(found, Ok(true), "{name} did not receive {text:?}; it has {:?}", self.seen);
    }

    /// Sends `text` and waits until each of `to` has received it.
    async fn reaches(&mut self, text: &str, to: &mut [&mut Client]) {
        self.send(text).await;
        for client in to {
            client.expect(text).await;
        }
    }

    /// Says hello and waits for it to come back: the client is in the room.
    async fn join(&mut self) {
        let hello = format!("{} is here", self.name);
        self.send(&hello).await;
        self.expect(&hello).await;
    }

    /// Panics if a message arrived twice.
    fn assert_no_duplicates(&self) {
        let mut counts: HashMap<&str, usize> = HashMap::new();
        for text in &self.seen {
            *counts.entry(text).or_default() += 1;
        }
        let twice: Vec<_> = counts.into_iter().filter(|(_, n)| *n > 1).collect();
        assert!(twice.is_empty(), "{} received messages more than once: {twice:?}", self.name);
    }
}

// ---------------------------------------------------------------------------
// per-sender order
// ---------------------------------------------------------------------------

/// Clients per chat process.
const CLIENTS_PER_PROCESS: usize = 3;
/// Messages each client sends.
const PER_SENDER: usize = 200;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_sender_order_across_processes() {
    let Some(binary) = redis_or_skip("per_sender_order_across_processes") else { return };
    let redis = RedisServer::start(&binary);
    let (a, b) = tokio::task::block_in_place(|| two_chats(&redis));
    timeout(SCENARIO, order_scenario(&a, &b)).await.expect("the order scenario took too long");
}

async fn order_scenario(a: &ChatServer, b: &ChatServer) {
    let mut clients = Vec::new();
    for (p, chat) in [a, b].into_iter().enumerate() {
        for c in 0..CLIENTS_PER_PROCESS {
            let mut client = Client::connect(chat, &format!("client {c} of process {p}")).await;
            client.join().await;
            clients.push(client);
        }
    }
    let senders = clients.len();
    let mut tasks = Vec::new();
    for (id, client) in clients.into_iter().enumerate() {
        tasks.push(tokio::spawn(async move {
            let Client { name, mut write, mut rx, .. } = client;
            // Send everything, then read: the room never waits on us for long.
            for i in 0..PER_SENDER {
                write.feed(Message::text(format!("s{id:02}:{i:04}"))).await.expect("feed");
            }
            write.flush().await.expect("flush");
            let mut next = vec![0usize; senders];
            while next.iter().any(|&n| n < PER_SENDER) {
                let Some(text) = rx.recv().await else {
                    return Err(format!("{name}: connection ended having {next:?}"));
                };
                let Some((sender, i)) = text.strip_prefix('s').and_then(|t| t.split_once(':')) else { continue };
                let (sender, i): (usize, usize) = (sender.parse().expect("sender"), i.parse().expect("number"));
                if i != next[sender] {
                    return Err(format!("{name}: from sender {sender} got {i}, expected {}", next[sender]));
                }
                next[sender] += 1;
            }
            Ok(())
        }));
    }
    let mut failures = Vec::new();
    for task in tasks {
        if let Err(e) = task.await.expect("client task") {
            failures.push(e);
        }
    }
    assert!(failures.is_empty(), "per-sender order broken: {failures:?}");
}

// ---------------------------------------------------------------------------
// Redis restart
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_delivery_while_redis_is_down() {
    let Some(binary) = redis_or_skip("local_delivery_while_redis_is_down") else { return };
    let mut redis = RedisServer::start(&binary);
    let (a, b) = tokio::task::block_in_place(|| two_chats(&redis));
    timeout(SCENARIO, restart_scenario(&mut redis, &a, &b)).await.expect("the restart scenario took too long");
}

async fn restart_scenario(redis: &mut RedisServer, a: &ChatServer, b: &ChatServer) {
    let mut a1 = Client::connect(a, "A1").await;
    let mut a2 = Client::connect(a, "A2").await;
    let mut b1 = Client::connect(b, "B1").await;
    for client in [&mut a1, &mut a2, &mut b1] {
        client.join().await;
    }
    a1.reaches("before the outage", &mut [&mut b1]).await;

    // Redis goes away: each process keeps its own clients talking.
    redis.kill();
    expect_lines(&[a, b], "redis lost", STEP);
    a1.reaches("A during the outage", &mut [&mut a2]).await;
    a1.expect("A during the outage").await;
    b1.reaches("B during the outage", &mut []).await;
    b1.expect("B during the outage").await;
    assert!(!a1.seen.iter().any(|t| t == "B during the outage"), "a message crossed without Redis");

    // Back on the same port: messages cross again.
    restart_redis(redis, &[a, b]);
    a1.reaches("A after the restart", &mut [&mut b1, &mut a2]).await;
    b1.reaches("B after the restart", &mut [&mut a1, &mut a2]).await;

    // What was delivered locally during the outage and published after the
    // reconnect came back from Redis before these: it was skipped.
    a1.expect("A after the restart").await;
    b1.expect("B after the restart").await;
    for client in [&a1, &a2, &b1] {
        client.assert_no_duplicates();
    }
}

// ---------------------------------------------------------------------------
// Redis down at start
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starts_without_redis_and_connects_later() {
    let Some(binary) = redis_or_skip("starts_without_redis_and_connects_later") else { return };
    let mut redis = RedisServer::start(&binary);
    redis.kill();
    let url = redis.url();
    let (a, b) = tokio::task::block_in_place(|| {
        (ChatServer::start_with(&["--redis", &url]), ChatServer::start_with(&["--redis", &url]))
    });
    timeout(SCENARIO, late_redis_scenario(&mut redis, &a, &b)).await.expect("the late Redis scenario took too long");
}

async fn late_redis_scenario(redis: &mut RedisServer, a: &ChatServer, b: &ChatServer) {
    expect_lines(&[a, b], "redis unavailable", STEP);
    // Each process serves its own clients meanwhile.
    let mut a1 = Client::connect(a, "A1").await;
    let mut b1 = Client::connect(b, "B1").await;
    a1.join().await;
    b1.join().await;

    restart_redis(redis, &[a, b]);
    a1.reaches("A with Redis", &mut [&mut b1]).await;
    b1.reaches("B with Redis", &mut [&mut a1]).await;
    a1.assert_no_duplicates();
    b1.assert_no_duplicates();
}
