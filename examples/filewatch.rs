//! File watcher: `cargo run --example filewatch -- FILE [127.0.0.1:8080]`,
//! then open <http://127.0.0.1:8080/> and edit FILE.
//!
//! gorilla/websocket's filewatch example, on silverback: the page at `/`
//! shows FILE's contents, pushed over the WebSocket at `/ws` when the page
//! connects and again whenever the file changes.
//!
//! - One task polls the file's modification time and length every 500 ms
//!   (no file-notification crate needed) and, on a change, reads it (the
//!   first 1 MiB, invalid UTF-8 replaced) and encodes the text message once
//!   as a [`PreparedMessage`], published through a `tokio::sync::watch`
//!   channel. A missing or unreadable file is shown as the error.
//! - Each connection sends the current contents, then every new version; a
//!   client that falls behind simply skips to the newest one.
//! - Each connection also keeps reading, which answers pings and the close
//!   handshake and drives the keepalive: a ping after 30 s of silence, and
//!   a client silent for 60 s is dropped. Writes time out after 10 s.
//! - Clients are expected to send nothing: messages over 512 bytes close the
//!   connection with 1009. The default origin policy applies.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures_util::StreamExt;
use silverback::{Config, Limits, Message, PreparedMessage, Upgrader};
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;
use tokio::sync::watch;

mod common;

/// How often the file is checked for changes.
const POLL_INTERVAL: Duration = Duration::from_millis(500);
/// The most of the file that is sent.
const MAX_FILE_SIZE: u64 = 1 << 20;
/// The largest message a client may send.
const MAX_MESSAGE_SIZE: usize = 512;
/// Keepalive: ping a client that has been silent this long.
const PING_INTERVAL: Duration = Duration::from_secs(30);
/// Drop a client that has been silent this long (pongs count).
const READ_TIMEOUT: Duration = Duration::from_secs(60);
/// Bound on writing to a client that does not read.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let Some(file) = args.next().map(PathBuf::from) else {
        eprintln!("usage: filewatch FILE [ADDR]");
        std::process::exit(2);
    };
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:8080".to_owned());

    let (version, contents) = snapshot(&file).await;
    let (publish, contents) = watch::channel(contents);
    tokio::spawn(poll(file.clone(), version, publish));

    let listener = TcpListener::bind(&addr).await?;
    println!("listening on http://{} (watching {})", listener.local_addr()?, file.display());
    let config = Config::default()
        .limits(Limits::default().max_message_size(MAX_MESSAGE_SIZE).max_frame_size(MAX_MESSAGE_SIZE))
        .ping_interval(PING_INTERVAL)
        .read_timeout(READ_TIMEOUT)
        .write_timeout(WRITE_TIMEOUT);
    let upgrader = Arc::new(Upgrader::new().config(config));
    let page: Arc<str> = PAGE.replace("{{FILE}}", &html_escape(&file.display().to_string())).into();
    loop {
        let (tcp, peer) = listener.accept().await?;
        let (upgrader, contents, page) = (upgrader.clone(), contents.clone(), page.clone());
        tokio::spawn(async move {
            let Some(io) = common::route(tcp, &page).await.ok().flatten() else { return };
            let ws = match upgrader.accept(io).await {
                Ok(ws) => ws,
                Err(e) => return eprintln!("{peer}: handshake refused: {}", common::describe(&e)),
            };
            let (mut read, mut write) = ws.split();
            // Reading answers pings and closes and runs the keepalive;
            // clients have nothing to say, so messages are dropped.
            let reader = async { while let Some(Ok(_)) = read.next().await {} };
            let writer = async {
                let mut contents = contents;
                loop {
                    let current = contents.borrow_and_update().clone();
                    write.send_prepared(&current).await?;
                    if contents.changed().await.is_err() {
                        return Ok::<_, silverback::Error>(());
                    }
                }
            };
            tokio::select! {
                () = reader => {}
                result = writer => if let Err(e) = result { eprintln!("{peer}: {e}") },
            }
        });
    }
}

/// What identifies a version of the file: its modification time and
/// length, or the error reading them.
type Version = Result<(SystemTime, u64), String>;

/// Publishes the file's contents whenever its version changes.
async fn poll(file: PathBuf, mut version: Version, publish: watch::Sender<PreparedMessage>) {
    let mut ticks = tokio::time::interval(POLL_INTERVAL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        if stat(&file).await == version {
            continue;
        }
        let (new_version, contents) = snapshot(&file).await;
        version = new_version;
        if publish.send(contents).is_err() {
            return;
        }
    }
}

async fn stat(file: &Path) -> Version {
    let meta = tokio::fs::metadata(file).await.map_err(|e| format!("{}: {e}", file.display()))?;
    let modified = meta.modified().map_err(|e| format!("{}: {e}", file.display()))?;
    Ok((modified, meta.len()))
}

/// The file's version and contents (or the error), as a message ready to send.
async fn snapshot(file: &Path) -> (Version, PreparedMessage) {
    let version = stat(file).await;
    let text = match read_prefix(file).await {
        Ok(text) => text,
        Err(e) => format!("{}: {e}", file.display()),
    };
    let msg = PreparedMessage::new(&Message::text(text)).expect("a data message of any size can be prepared");
    (version, msg)
}

/// The first [`MAX_FILE_SIZE`] bytes of `file`, invalid UTF-8 replaced.
async fn read_prefix(file: &Path) -> std::io::Result<String> {
    let mut bytes = Vec::new();
    tokio::fs::File::open(file).await?.take(MAX_FILE_SIZE).read_to_end(&mut bytes).await?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// The page served at `/`.
const PAGE: &str = r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<link rel="icon" href="data:,">
<title>silverback filewatch</title>
<style>
  body { font-family: sans-serif; margin: 1em; }
  #status { color: #555; }
  #file { background: #f6f6f6; padding: 0.5em; white-space: pre-wrap; }
</style>
</head>
<body data-state="connecting">
<p>Watching <code>{{FILE}}</code> &mdash; <span id="status">connecting</span></p>
<pre id="file"></pre>
<script>
"use strict";
const file = document.getElementById("file");
const status = document.getElementById("status");
const scheme = location.protocol === "https:" ? "wss://" : "ws://";
const conn = new WebSocket(scheme + location.host + "/ws");
conn.onopen = () => { status.textContent = "connected"; document.body.dataset.state = "open"; };
conn.onclose = (e) => {
  status.textContent = "disconnected (" + e.code + ")";
  document.body.dataset.state = "closed";
};
conn.onmessage = (e) => {
  file.textContent = e.data;
  status.textContent = "updated " + new Date().toLocaleTimeString();
};
</script>
</body>
</html>
"#;
