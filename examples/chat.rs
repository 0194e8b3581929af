//! Chat server: `cargo run --example chat -- 127.0.0.1:8080`, then open
//! <http://127.0.0.1:8080/> in two browser tabs.
//!
//! gorilla/websocket's chat example, on silverback. The page at `/` is a
//! minimal chat client; it connects to `ws://<host>/ws`, and every text
//! message any client sends is broadcast to every client, the sender
//! included. Binary messages are refused (close 1003).
//!
//! - One **hub** task owns the set of clients. Each message is encoded once
//!   as a [`PreparedMessage`] and queued to every client's bounded queue.
//! - Each client has a **writer** task that empties its queue into the
//!   socket (`feed_prepared` for all that is queued, then one flush) and a
//!   **reader** that hands the messages it receives to the hub.
//! - A **slow client** does not slow the others down: when its queue is
//!   full the hub drops it (its writer sends what was queued, then close
//!   1008, each write bounded by the write timeout).
//! - **Keepalive**: a ping after 30 s of silence, and a connection silent
//!   for 60 s is dropped (close 1001); writes time out after 10 s.
//! - Messages over 4 KiB close the connection with 1009.
//! - The `Upgrader`'s default origin policy applies: the page is served from
//!   the same host, so only pages of this server may connect.
//!
//! Prints `listening on http://ADDR` once bound (pass `127.0.0.1:0` for any
//! free port), then a line per client joining, leaving or being dropped.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use silverback::{CloseCode, CloseFrame, Config, Limits, Message, PreparedMessage, ReadHalf, Upgrader, WriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc::{self, error::TrySendError};

mod common;

/// The largest message a client may send.
const MAX_MESSAGE_SIZE: usize = 4096;
/// Messages queued for one client at most; a client that falls further
/// behind is dropped.
const QUEUE_LEN: usize = 256;
/// Keepalive: ping a client that has been silent this long.
const PING_INTERVAL: Duration = Duration::from_secs(30);
/// Drop a client that has been silent this long (pongs count).
const READ_TIMEOUT: Duration = Duration::from_secs(60);
/// Bound on writing to a client that does not read.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

type Transport = common::Rewind<TcpStream>;

/// What the hub hears about.
enum Event {
    /// A client connected; its messages go to `queue`.
    Join { id: u64, queue: mpsc::Sender<PreparedMessage> },
    /// A client is gone.
    Leave { id: u64 },
    /// A client said something.
    Say(Message),
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:8080".to_owned());
    let listener = TcpListener::bind(&addr).await?;
    println!("listening on http://{}", listener.local_addr()?);

    let config = Config::default()
        .limits(Limits::default().max_message_size(MAX_MESSAGE_SIZE).max_frame_size(MAX_MESSAGE_SIZE))
        .ping_interval(PING_INTERVAL)
        .read_timeout(READ_TIMEOUT)
        .write_timeout(WRITE_TIMEOUT);
    // Same-origin policy (the default): the page comes from this server.
    let upgrader = Arc::new(Upgrader::new().config(config));
    let page: Arc<str> = PAGE.replace("{{MAX}}", &MAX_MESSAGE_SIZE.to_string()).into();

    let (hub_tx, hub_rx) = mpsc::channel(1024);
    tokio::spawn(hub(hub_rx));

    for id in 1.. {
        let (tcp, peer) = listener.accept().await?;
        let (upgrader, hub_tx, page) = (upgrader.clone(), hub_tx.clone(), page.clone());
        tokio::spawn(async move {
            let Some(io) = common::route(tcp, &page).await.ok().flatten() else { return };
            match upgrader.accept(io).await {
                Ok(ws) => client(id, ws.split(), hub_tx).await,
                Err(e) => eprintln!("{peer}: handshake refused: {}", common::describe(&e)),
            }
        });
    }
    Ok(())
}

/// Owns the clients; broadcasts every message to all of them.
async fn hub(mut events: mpsc::Receiver<Event>) {
    let mut clients: HashMap<u64, mpsc::Sender<PreparedMessage>> = HashMap::new();
    while let Some(event) = events.recv().await {
        match event {
            Event::Join { id, queue } => {
                clients.insert(id, queue);
                println!("client {id} joined ({} connected)", clients.len());
            }
            Event::Leave { id } => {
                if clients.remove(&id).is_some() {
                    println!("client {id} left ({} connected)", clients.len());
                }
            }
            Event::Say(msg) => {
                // Encoded once; every queue gets the same frame.
                let Ok(msg) = PreparedMessage::new(&msg) else { continue };
                clients.retain(|id, queue| match queue.try_send(msg.clone()) {
                    Ok(()) => true,
                    Err(TrySendError::Full(_)) => {
                        // Dropping its queue tells the writer to finish up.
                        println!("client {id} dropped: too slow");
                        false
                    }
                    Err(TrySendError::Closed(_)) => false,
                });
            }
        }
    }
}

/// Runs one client until it leaves or is dropped.
async fn client(id: u64, (read, write): (ReadHalf<Transport>, WriteHalf<Transport>), hub: mpsc::Sender<Event>) {
    let (queue_tx, queue_rx) = mpsc::channel(QUEUE_LEN);
    if hub.send(Event::Join { id, queue: queue_tx }).await.is_err() {
        return;
    }
    let mut writer = tokio::spawn(write_pump(write, queue_rx));
    let reader = read_pump(read, &hub);
    tokio::pin!(reader);
    tokio::select! {
        // The client closed or failed: leave, which ends the writer too.
        () = &mut reader => {
            let _ = hub.send(Event::Leave { id }).await;
            let _ = tokio::time::timeout(WRITE_TIMEOUT, &mut writer).await;
        }
        // The hub dropped us (close sent) or a write failed: give the
        // client a moment to answer the close, then hang up.
        _ = &mut writer => {
            let _ = hub.send(Event::Leave { id }).await;
            let _ = tokio::time::timeout(Duration::from_secs(2), reader).await;
        }
    }
}

/// Hands every text message the client sends to the hub. Returns when the
/// connection ends: the client closed (the stream answers the close), went
/// silent past the read timeout, or broke the protocol.
async fn read_pump(mut read: ReadHalf<Transport>, hub: &mpsc::Sender<Event>) {
    while let Some(msg) = read.next().await {
        match msg {
            Ok(msg @ Message::Text(_)) => {
                if hub.send(Event::Say(msg)).await.is_err() {
                    return;
                }
            }
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

/// Writes what the hub queues; everything queued goes out in one flush.
/// When the hub drops the queue (the client left, or was too slow), sends
/// what is left and then a close frame.
async fn write_pump(
    mut write: WriteHalf<Transport>,
    mut queue: mpsc::Receiver<PreparedMessage>,
) -> silverback::Result<()> {
    while let Some(msg) = queue.recv().await {
        write.feed_prepared(&msg).await?;
        while let Ok(msg) = queue.try_recv() {
            write.feed_prepared(&msg).await?;
        }
        write.flush().await?;
    }
    // A no-op (an error we ignore) when the client already closed.
    write.send_close(Some(CloseFrame::new(CloseCode::POLICY_VIOLATION, "too slow"))).await
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
