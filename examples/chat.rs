//! Chat server: `cargo run --example chat -- 127.0.0.1:8080`, then open
//! <http://127.0.0.1:8080/> in two browser tabs.
//!
//! gorilla/websocket's chat example, on silverback. The page at `/` is a
//! minimal chat client; it connects to `ws://<host>/ws`, and every text
//! message any client sends is broadcast to every client, the sender
//! included. Binary messages are refused (close 1003).
//!
//! - One [`Topic`] is the room. Each message is encoded once as a
//!   [`PreparedMessage`](silverback::PreparedMessage) and published to it: one copy in the topic's log,
//!   which every client's writer reads at its own pace.
//! - Each client has a **writer** task ([`Topic::subscribe_writer`]) that
//!   writes everything it has not sent yet in one flush, and a **reader**
//!   that publishes the messages it receives.
//! - A **slow client** does not slow the others down for long: a client
//!   that is behind but reading holds the room back (nobody is dropped for
//!   a burst), while one whose socket stopped draining for 2 s (the lag
//!   time) is dropped with close 1008 and the others go on.
//! - **Keepalive**: a ping after 30 s of silence, and a connection silent
//!   for 60 s is dropped (close 1001); writes time out after 10 s.
//! - Messages over 4 KiB close the connection with 1009.
//! - The `Upgrader`'s default origin policy applies: the page is served from
//!   the same host, so only pages of this server may connect.
//!
//! - **Several processes** (`--redis redis://HOST:PORT/`, or `REDIS_URL`):
//!   each process subscribes to the room's Redis channel, readers hand
//!   messages to a relay task that publishes them to Redis, and every
//!   process (the sender's included) delivers what comes back from Redis to
//!   its own clients, so all of them see one order. While Redis is down a
//!   process keeps serving its own clients alone; see `chat/relay.rs`.
//!
//! Prints `listening on http://ADDR` once bound (pass `127.0.0.1:0` for any
//! free port), then a line per client joining, leaving or being dropped,
//! and with Redis a line when it connects, is lost or drops queued messages.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use silverback::broadcast::{Ended, Topic, TopicConfig};
use silverback::{CloseCode, CloseFrame, Config, Limits, Message, ReadHalf, Shutdown, Upgrader, WriteHalf};
use tokio::net::{TcpListener, TcpStream};

mod common;
#[path = "chat/relay.rs"]
mod relay;
#[path = "common/stop.rs"]
mod stop;

use relay::Relay;

/// The largest message a client may send.
const MAX_MESSAGE_SIZE: usize = 4096;
/// Messages one client may be behind the others at most; the room waits
/// for a client this far behind while it keeps reading.
const QUEUE_LEN: usize = 256;
/// A client that took no message for this long while the room waited for
/// it is dropped (close 1008).
const LAG: Duration = Duration::from_secs(2);
/// Keepalive: ping a client that has been silent this long.
const PING_INTERVAL: Duration = Duration::from_secs(30);
/// Drop a client that has been silent this long (pongs count).
const READ_TIMEOUT: Duration = Duration::from_secs(60);
/// Bound on writing to a client that does not read.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

type Transport = common::Rewind<TcpStream>;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let (addr, redis_url) = parse_args()?;
    // Installed before anything else, so that a signal is never missed.
    let mut stop = stop::StopSignals::new()?;
    let listener = TcpListener::bind(&addr).await?;
    println!("listening on http://{}", listener.local_addr()?);

    let config = Config::default()
        .limits(Limits::default().max_message_size(MAX_MESSAGE_SIZE).max_frame_size(MAX_MESSAGE_SIZE))
        .ping_interval(PING_INTERVAL)
        .read_timeout(READ_TIMEOUT)
        .write_timeout(WRITE_TIMEOUT);
    // Same-origin policy (the default): the page comes from this server.
    // On SIGTERM or Ctrl-C every client gets close 1001 (going away).
    let shutdown = Shutdown::new();
    let upgrader = Arc::new(Upgrader::new().config(config).shutdown(&shutdown));
    let page: Arc<str> = PAGE.replace("{{MAX}}", &MAX_MESSAGE_SIZE.to_string()).into();

    let room = Topic::with_config(TopicConfig::default().capacity(QUEUE_LEN).lag(LAG));
    // With Redis, the relay task is the room's only publisher.
    let (relay, relay_task) = match &redis_url {
        Some(url) => {
            let (relay, task) = Relay::start(url, "main", room.clone()).map_err(std::io::Error::other)?;
            (Some(relay), Some(task))
        }
        None => (None, None),
    };

    for id in 1.. {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => accepted?,
            () = stop.recv() => break,
        };
        let (upgrader, room, relay, page) = (upgrader.clone(), room.clone(), relay.clone(), page.clone());
        tokio::spawn(async move {
            let Some(io) = common::route(tcp, &page).await.ok().flatten() else { return };
            match upgrader.accept(io).await {
                Ok(ws) => client(id, ws.split(), room, relay).await,
                Err(e) => eprintln!("{peer}: handshake refused: {}", common::describe(&e)),
            }
        });
    }
    drop(listener);
    println!("draining {} clients", shutdown.connections());
    shutdown.trigger();
    let bound = Config::DEFAULT_CLOSE_TIMEOUT + Duration::from_secs(1);
    if tokio::time::timeout(bound, shutdown.drained()).await.is_err() {
        eprintln!("{} clients did not close in time", shutdown.connections());
    }
    if let Some(task) = relay_task {
        task.abort();
    }
    Ok(())
}

/// `ADDR [--redis URL]`; the URL also comes from `REDIS_URL`.
fn parse_args() -> std::io::Result<(String, Option<String>)> {
    let mut addr = None;
    let mut redis_url = std::env::var("REDIS_URL").ok().filter(|url| !url.is_empty());
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--redis" => {
                let url = args.next().ok_or_else(|| std::io::Error::other("--redis needs a URL"))?;
                redis_url = Some(url);
            }
            _ if addr.is_none() => addr = Some(arg),
            _ => {
                return Err(std::io::Error::other(format!(
                    "unexpected argument {arg:?}; usage: chat ADDR [--redis URL]"
                )))
            }
        }
    }
    Ok((addr.unwrap_or_else(|| "127.0.0.1:8080".to_owned()), redis_url))
}

/// Runs one client until it leaves or is dropped.
async fn client(
    id: u64,
    (read, write): (ReadHalf<Transport>, WriteHalf<Transport>),
    room: Topic,
    relay: Option<Relay>,
) {
    let mut writer = room.subscribe_writer(write);
    println!("client {id} joined ({} connected)", room.subscriber_count());
    let reader = read_pump(read, &room, relay.as_ref());
    tokio::pin!(reader);
    tokio::select! {
        // The client closed or failed: leave (aborting the writer unsubscribes).
        () = &mut reader => {
            writer.abort();
            let _ = writer.await;
            println!("client {id} left ({} connected)", room.subscriber_count());
        }
        // The room dropped us (close 1008 sent) or a write failed: give the
        // client a moment to answer the close, then hang up.
        ended = &mut writer => {
            match ended {
                Ok((_, Ok(Ended::Lagged))) => println!("client {id} dropped: too slow"),
                _ => println!("client {id} left ({} connected)", room.subscriber_count()),
            }
            let _ = tokio::time::timeout(Duration::from_secs(2), reader).await;
        }
    }
}

/// Publishes every text message the client sends to the room, or hands it
/// to the Redis relay (which never waits). Returns when the connection
/// ends: the client closed (the stream answers the close), went silent past
/// the read timeout, or broke the protocol.
async fn read_pump(mut read: ReadHalf<Transport>, room: &Topic, relay: Option<&Relay>) {
    while let Some(msg) = read.next().await {
        match msg {
            Ok(msg @ Message::Text(_)) => match (relay, msg.as_text()) {
                // Through Redis: queued for the relay task, no waiting.
                (Some(relay), Some(text)) => relay.submit(text),
                // Encoded once for everyone; waits while a reading client is
                // a whole log behind.
                _ => {
                    let _ = room.publish_message(&msg).await;
                }
            },
            Ok(Message::Binary(_)) => {
                // Refuse, then keep reading until the client's close.
                let goodbye = CloseFrame::new(CloseCode::UNSUPPORTED_DATA, "text messages only");
                let _ = read.control().close(Some(goodbye));
            }
            // Pings are answered and closes echoed by the stream itself.
            Ok(_) => {}
            Err(e) => {
                if e.is_unexpected_close(&[CloseCode::GOING_AWAY, CloseCode::ABNORMAL]) {
                    eprintln!("client connection failed: {e}");
                }
                return;
            }
        }
    }
}

/// The chat client, served at `/`.
const PAGE: &str = r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<link rel="icon" href="data:,">
<title>silverback chat</title>
<style>
  html, body { height: 100%; margin: 0; font-family: sans-serif; background: #eee; }
  #log { position: absolute; top: 0.5em; left: 0.5em; right: 0.5em; bottom: 3.5em;
         overflow: auto; background: #fff; padding: 0.5em; }
  #log .note { color: #888; font-style: italic; }
  #form { position: absolute; left: 0.5em; right: 0.5em; bottom: 0.8em; display: flex; gap: 0.5em; }
  #msg { flex: 1; }
  #status { color: #555; align-self: center; }
</style>
</head>
<body data-state="connecting">
<div id="log"></div>
<form id="form">
  <input type="text" id="msg" autocomplete="off" autofocus placeholder="Say something">
  <input type="submit" id="send" value="Send">
  <span id="status">connecting</span>
</form>
<script>
"use strict";
const MAX = {{MAX}};
const log = document.getElementById("log");
const msg = document.getElementById("msg");
const status = document.getElementById("status");

function append(text, cls) {
  const atBottom = log.scrollTop > log.scrollHeight - log.clientHeight - 1;
  const item = document.createElement("div");
  item.className = cls;
  item.textContent = text;
  log.appendChild(item);
  if (atBottom) log.scrollTop = log.scrollHeight - log.clientHeight;
}

const scheme = location.protocol === "https:" ? "wss://" : "ws://";
const conn = new WebSocket(scheme + location.host + "/ws");
conn.onopen = () => {
  status.textContent = "connected";
  document.body.dataset.state = "open";
};
conn.onclose = (e) => {
  status.textContent = "disconnected";
  document.body.dataset.state = "closed";
  append("Connection closed (" + e.code + (e.reason ? ": " + e.reason : "") + ").", "note");
};
conn.onmessage = (e) => append(e.data, "msg");

document.getElementById("form").onsubmit = (e) => {
  e.preventDefault();
  if (!msg.value || conn.readyState !== WebSocket.OPEN) return;
  if (new TextEncoder().encode(msg.value).length > MAX) {
    append("Message too long (" + MAX + " bytes at most).", "note");
    return;
  }
  conn.send(msg.value);
  msg.value = "";
};
</script>
</body>
</html>
"#;
