//! What the chat example's end-to-end tests share (`tests/chat_browser.rs`,
//! `tests/chat_redis.rs`): bounded child processes, the chat example run as
//! a child (built once per test binary), the browser tools that
//! `tests/chat_browser/setup.sh` installs and a two-page chat through
//! `tests/chat_browser/drive.mjs`, and silverback clients read on a task.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use tokio::sync::mpsc as tmpsc;
use tokio::time::timeout;

use crate::common;
use crate::common::process::{BrowserTools, ExampleServer};

/// Bound on one run of `drive.mjs` (each of its waits is 20 s at most).
const DRIVE_TIMEOUT: Duration = Duration::from_secs(180);
/// Bound on one step: the server starting, a handshake, a message arriving.
pub const STEP: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------------------
// the chat server
// ---------------------------------------------------------------------------

/// Builds the chat example once per test binary; its path.
fn chat_binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        let started = Instant::now();
        let path = common::build_example("chat");
        eprintln!("built the chat example in {:.1?}", started.elapsed());
        path
    })
}

/// A running chat example, killed on drop.
pub struct ChatServer {
    server: ExampleServer,
    /// The address it listens on.
    pub addr: SocketAddr,
}

impl ChatServer {
    /// Builds (once) and starts the example on a free port.
    pub fn start() -> ChatServer {
        ChatServer::start_with(&[])
    }

    /// [`ChatServer::start`] with more arguments (`--redis URL`).
    pub fn start_with(args: &[&str]) -> ChatServer {
        let mut cmd = Command::new(chat_binary());
        cmd.arg("127.0.0.1:0").args(args).env_remove("REDIS_URL");
        let server = ExampleServer::spawn(&mut cmd, "http", STEP);
        ChatServer { addr: server.addr, server }
    }

    /// Stdout lines printed so far, without waiting.
    pub fn printed(&self) -> Vec<String> {
        self.server.printed()
    }

    /// The chat's WebSocket URL.
    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    /// The page's URL.
    pub fn page_url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// Waits up to `limit` for a stdout line containing `needle` (lines
    /// before it are consumed); whether one came.
    pub fn wait_for_line(&self, needle: &str, limit: Duration) -> bool {
        self.server.wait_for_line(needle, limit)
    }
}

// ---------------------------------------------------------------------------
// browser test
// ---------------------------------------------------------------------------

/// Two headless Chromium pages, A on `url_a` and B on `url_b` (chat pages),
/// each send a message through the page's form; both must show both
/// messages. Panics, with what each page showed, when they do not.
pub fn two_pages_chat(tools: &BrowserTools, url_a: &str, url_b: &str) {
    let nonce = std::process::id();
    let msg_a = format!("hello from page A ({nonce})");
    let msg_b = format!("hi from page B, <b>not bold</b> ({nonce})");

    let (out, report) = tools.drive("chat_browser/drive.mjs", [url_a, &msg_a, &msg_b, url_b], DRIVE_TIMEOUT);
    let log = |page: &str| -> Vec<String> {
        report[page]
            .as_array()
            .unwrap_or_else(|| panic!("no log for page {page} in {report}"))
            .iter()
            .filter_map(|m| m.as_str().map(str::to_owned))
            .collect()
    };
    let (log_a, log_b) = (log("a"), log("b"));
    assert!(log_a.contains(&msg_b), "page A did not receive page B's message: {log_a:?} ({report})");
    assert!(log_b.contains(&msg_a), "page B did not receive page A's message: {log_b:?} ({report})");
    assert!(log_a.contains(&msg_a) && log_b.contains(&msg_b), "a page missed its own message: {report}");
    assert!(out.status.success(), "drive.mjs failed ({}): {report}\n{}", out.status, out.stderr);
}

// ---------------------------------------------------------------------------
// clients
// ---------------------------------------------------------------------------

/// Reads a connection on a task, forwarding every text message.
pub fn reader<S>(mut read: silverback::ReadHalf<S>) -> tmpsc::UnboundedReceiver<String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (tx, rx) = tmpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(Ok(msg)) = read.next().await {
            if let Some(text) = msg.as_text() {
                if tx.send(text.to_owned()).is_err() {
                    break;
                }
            }
        }
    });
    rx
}

/// Waits until every one of `want` has arrived on `rx`, in any order,
/// skipping other messages.
pub async fn expect(rx: &mut tmpsc::UnboundedReceiver<String>, want: &[&str], who: &str) {
    let mut missing: Vec<&str> = want.to_vec();
    let done = timeout(STEP, async {
        while !missing.is_empty() {
            let Some(text) = rx.recv().await else { return false };
            missing.retain(|w| *w != text);
        }
        true
    })
    .await;
    let short: Vec<&str> = missing.iter().map(|w| &w[..w.len().min(40)]).collect();
    assert_eq!(done, Ok(true), "{who} did not receive {short:?}");
}
