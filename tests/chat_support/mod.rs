//! What the chat example's end-to-end tests share (`tests/chat_browser.rs`,
//! `tests/chat_redis.rs`): bounded child processes, the chat example run as
//! a child (built once per test binary), the browser tools that
//! `tests/chat_browser/setup.sh` installs and a two-page chat through
//! `tests/chat_browser/drive.mjs`, and silverback clients read on a task.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{mpsc, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use tokio::sync::mpsc as tmpsc;
use tokio::time::timeout;

use crate::common;

/// Bound on `setup.sh --check` (it only looks; a locked install may be running).
const SETUP_TIMEOUT: Duration = Duration::from_secs(600);
/// Bound on one run of `drive.mjs` (each of its waits is 20 s at most).
const DRIVE_TIMEOUT: Duration = Duration::from_secs(180);
/// Bound on one step: the server starting, a handshake, a message arriving.
pub const STEP: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------------------
// processes
// ---------------------------------------------------------------------------

/// The output of a finished child process.
#[derive(Debug)]
pub struct Output {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `cmd` to completion within `limit`, capturing its output. The child
/// leads its own process group, killed whole on timeout (apt-get, npm and
/// Chromium start children of their own).
pub fn run_bounded(cmd: &mut Command, limit: Duration) -> Result<Output, String> {
    let what = format!("{cmd:?}");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(|e| format!("spawning {what}: {e}"))?;
    let collect = |pipe: Option<Box<dyn Read + Send>>| {
        thread::spawn(move || {
            let mut text = String::new();
            if let Some(mut pipe) = pipe {
                let mut bytes = Vec::new();
                let _ = pipe.read_to_end(&mut bytes);
                text = String::from_utf8_lossy(&bytes).into_owned();
            }
            text
        })
    };
    let stdout = collect(child.stdout.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let stderr = collect(child.stderr.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let deadline = Instant::now() + limit;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(50)),
            _ => {
                kill_group(&mut child);
                break None;
            }
        }
    };
    let (stdout, stderr) = (stdout.join().unwrap_or_default(), stderr.join().unwrap_or_default());
    match status {
        Some(status) => Ok(Output { status, stdout, stderr }),
        None => Err(format!("{what} did not finish within {limit:?}\nstdout:\n{stdout}\nstderr:\n{stderr}")),
    }
}

/// Kills `child`'s whole process group (it leads one) and reaps it.
pub fn kill_group(child: &mut Child) {
    let _ = Command::new("kill").args(["-KILL", "--", &format!("-{}", child.id())]).status();
    let _ = child.kill();
    let _ = child.wait();
}

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
    child: Child,
    pub addr: SocketAddr,
    /// The server's stdout lines after `listening on ...`.
    lines: mpsc::Receiver<String>,
}

impl ChatServer {
    /// Builds (once) and starts the example on a free port.
    pub fn start() -> ChatServer {
        ChatServer::start_with(&[])
    }

    /// [`ChatServer::start`] with more arguments (`--redis URL`).
    pub fn start_with(args: &[&str]) -> ChatServer {
        let mut child = Command::new(chat_binary())
            .arg("127.0.0.1:0")
            .args(args)
            .env_remove("REDIS_URL")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("starting the chat example");
        // Read stdout on a thread, always: a full pipe would stall the server.
        let (tx, lines) = mpsc::channel();
        let stdout = child.stdout.take().expect("piped");
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                eprintln!("[chat] {line}");
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut server = ChatServer { child, addr: ([0, 0, 0, 0], 0).into(), lines };
        let first = server.lines.recv_timeout(STEP).expect("the chat example printed nothing");
        let addr =
            first.strip_prefix("listening on http://").unwrap_or_else(|| panic!("unexpected first line {first:?}"));
        server.addr = addr.trim().parse().unwrap_or_else(|e| panic!("bad address in {first:?}: {e}"));
        server
    }

    /// Stdout lines printed so far, without waiting.
    pub fn printed(&self) -> Vec<String> {
        self.lines.try_iter().collect()
    }

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
        let deadline = Instant::now() + limit;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return true,
                Ok(_) => {}
                Err(_) => return false,
            }
        }
        false
    }
}

impl Drop for ChatServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------
// browser test
// ---------------------------------------------------------------------------

/// What `setup.sh` reports.
#[derive(Debug)]
pub struct Tools {
    chromium: PathBuf,
    node: PathBuf,
    playwright: PathBuf,
}

pub fn setup() -> &'static Result<Tools, String> {
    static TOOLS: OnceLock<Result<Tools, String>> = OnceLock::new();
    TOOLS.get_or_init(|| {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/chat_browser/setup.sh");
        let prefix = common::profile_dir().parent().expect("<target>").join("chat-e2e");
        let started = Instant::now();
        let out = run_bounded(Command::new("bash").arg(&script).arg("--check").arg(&prefix), SETUP_TIMEOUT)?;
        if !out.status.success() {
            return Err(format!("{} failed ({}):\n{}\n{}", script.display(), out.status, out.stdout, out.stderr));
        }
        let field =
            |key: &str| {
                out.stdout.lines().find_map(|l| l.strip_prefix(key)?.strip_prefix('=')).map(PathBuf::from).ok_or_else(
                    || format!("{} printed no {key}= line:\n{}\n{}", script.display(), out.stdout, out.stderr),
                )
            };
        let tools = Tools { chromium: field("CHROMIUM")?, node: field("NODE")?, playwright: field("PLAYWRIGHT")? };
        eprintln!("browser setup: {:.1?} {tools:?}", started.elapsed());
        Ok(tools)
    })
}

/// Two headless Chromium pages, A on `url_a` and B on `url_b` (chat pages),
/// each send a message through the page's form; both must show both
/// messages. Panics, with what each page showed, when they do not.
pub fn two_pages_chat(tools: &Tools, url_a: &str, url_b: &str) {
    let nonce = std::process::id();
    let msg_a = format!("hello from page A ({nonce})");
    let msg_b = format!("hi from page B, <b>not bold</b> ({nonce})");

    let started = Instant::now();
    let drive = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/chat_browser/drive.mjs");
    let out = run_bounded(
        Command::new(&tools.node)
            .arg(&drive)
            .args([url_a, &msg_a, &msg_b, url_b])
            .env("PLAYWRIGHT", &tools.playwright)
            .env("CHROMIUM", &tools.chromium),
        DRIVE_TIMEOUT,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    eprintln!("drive.mjs: {:.1?}, {}\nstderr:\n{}", started.elapsed(), out.status, out.stderr);

    let report = out
        .stdout
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .unwrap_or_else(|| panic!("drive.mjs printed no report ({}):\n{}\n{}", out.status, out.stdout, out.stderr));
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
