//! Memory per idle connection, plain and subscribed to a `Topic`:
//! `cargo bench --bench subscriber_memory [-- CONNECTIONS]`.
//!
//! For each mode, one server process (this binary again, on a
//! current-thread runtime) accepts CONNECTIONS (5 000 by default) loopback
//! WebSocket connections from a client process (this binary a third time).
//! Each server connection is split; a task drains its `ReadHalf`, and its
//! `WriteHalf` is either kept idle (`plain`) or handed to
//! `Topic::subscribe_writer` (`subscribed`). The figure is the growth of the
//! server's resident memory over its baseline (runtime up, listener bound),
//! divided by CONNECTIONS: read 0.5 s after the last connection, and again
//! after one message went to every connection. Linux only (`/proc`).

// A bench binary: its items need no docs.
#![allow(missing_docs)]

use std::process::{Command, Stdio};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use silverback::broadcast::{Topic, TopicConfig};
use silverback::{Message, PreparedMessage, Upgrader};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

#[path = "../tests/common/rlimit.rs"]
mod rlimit;

const DEFAULT_CONNECTIONS: usize = 5_000;
/// The environment variable that makes this binary a server or a client.
const ROLE: &str = "SB_SUBSCRIBER_MEMORY_ROLE";
const MODES: [&str; 2] = ["plain", "subscribed"];
const SETTLE: Duration = Duration::from_millis(500);

fn main() {
    // `cargo bench` passes `--bench`; the only argument of ours is a count.
    let count = std::env::args().skip(1).find_map(|a| a.parse::<usize>().ok()).unwrap_or(DEFAULT_CONNECTIONS);
    rlimit::raise_open_files_limit(count as u64 + 64);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    match std::env::var(ROLE).as_deref() {
        Ok("client") => runtime.block_on(client(count)),
        Ok(mode) => runtime.block_on(server(mode, count)),
        Err(_) => report(count),
    }
}

/// Runs a server process per mode and prints the table.
fn report(count: usize) {
    println!("{count} idle loopback connections per server process, resident memory growth per connection");
    println!();
    println!("| server connection | bytes per connection | after one message |");
    println!("|---|--:|--:|");
    for mode in MODES {
        let exe = std::env::current_exe().unwrap();
        let out = Command::new(exe).arg(count.to_string()).env(ROLE, mode).output().unwrap();
        assert!(out.status.success(), "{mode} server failed: {}", String::from_utf8_lossy(&out.stderr));
        let line = String::from_utf8(out.stdout).unwrap();
        print!("{line}");
    }
}

/// Resident memory of this process, in bytes.
fn rss() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: usize = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

async fn server(mode: &str, count: usize) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let topic = Topic::with_config(TopicConfig::default());
    let upgrader = Upgrader::new();
    tokio::time::sleep(SETTLE).await;
    let baseline = rss();

    let mut client = tokio::process::Command::new(std::env::current_exe().unwrap())
        .arg(count.to_string())
        .env(ROLE, "client")
        .env("SB_SUBSCRIBER_MEMORY_ADDR", addr.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut idle_writers = Vec::new();
    let mut subscribers = Vec::new();
    for _ in 0..count {
        let (tcp, _) = listener.accept().await.unwrap();
        let ws = upgrader.accept(tcp).await.unwrap();
        let (mut read, write) = ws.split();
        tokio::spawn(async move { while let Some(Ok(_)) = read.next().await {} });
        if mode == "subscribed" {
            subscribers.push(topic.subscribe_writer(write));
        } else {
            idle_writers.push(write);
        }
    }
    tokio::time::sleep(SETTLE).await;
    let idle = rss();

    let msg = Message::text("one message to every connection");
    if mode == "subscribed" {
        topic.publish(&PreparedMessage::new(&msg).unwrap()).await;
    } else {
        for write in &mut idle_writers {
            write.send(msg.clone()).await.unwrap();
        }
    }
    // The client prints a line once every connection got its message.
    let mut lines = BufReader::new(client.stdout.take().unwrap()).lines();
    tokio::time::timeout(Duration::from_secs(60), lines.next_line()).await.unwrap().unwrap();
    tokio::time::sleep(SETTLE).await;
    let after = rss();
    let per = |rss: usize| rss.saturating_sub(baseline) / count;
    println!("| {mode} | {} | {} |", per(idle), per(after));
    drop((idle_writers, subscribers));
}

async fn client(count: usize) {
    let addr = std::env::var("SB_SUBSCRIBER_MEMORY_ADDR").unwrap();
    let url = format!("ws://{addr}/");
    let (got_tx, mut got_rx) = tokio::sync::mpsc::unbounded_channel();
    let mut conns = Vec::with_capacity(count);
    for _ in 0..count {
        let tcp = TcpStream::connect(&addr).await.unwrap();
        let (mut ws, _) = silverback::Connector::new().connect_on(tcp, &url).await.unwrap();
        let got = got_tx.clone();
        conns.push(tokio::spawn(async move {
            if let Some(Ok(_)) = ws.next().await {
                let _ = got.send(());
            }
            // Hold the connection until the server ends.
            while let Some(Ok(_)) = ws.next().await {}
        }));
    }
    for _ in 0..count {
        got_rx.recv().await.unwrap();
    }
    println!("all received");
    // Hold every connection until the server closes our stdin (or ends).
    let _ = tokio::io::stdin().read_u8().await;
    drop(conns);
}
