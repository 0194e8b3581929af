//! Interop with independent WebSocket implementations over real loopback TCP:
//! Python `websockets` 17.x and Node `ws` 8.x, driven through the peer
//! programs `tests/interop/peer.py` and `tests/interop/peer.mjs`.
//!
//! These tests run only under `SILVERBACK_CONFORMANCE=1`, which
//! `scripts/conformance.sh` sets after installing both peers with
//! `tests/interop/setup.sh` under `${CARGO_TARGET_DIR:-target}/interop/`;
//! without it they print one line and pass, so `cargo test` stays hermetic.
//! With it, the test finds the peers through `setup.sh --check` (once per
//! test binary), which installs nothing: a missing peer fails the test. There
//! is one `#[test]` per peer, which walks every scenario in both directions:
//!
//! - silverback server (`Upgrader`, split, echo by `forward`) against the
//!   peer's client (`peer client ws://127.0.0.1:PORT/`): the peer must print
//!   `OK <n>`, exit 0, and its `EXT` line must name `permessage-deflate`
//!   exactly when compression was negotiated, with the scenario's parameters;
//! - the peer's server (`peer server`, which prints `PORT <n>`) against a
//!   silverback client (`Connector`): the same messages one at a time, the
//!   `?extensions` question (answered with the header the peer sent, which
//!   must equal the one silverback received), the same messages again
//!   pipelined through split halves, then a 1000 close the peer must see.
//!
//! Every child process is killed when its guard drops and every wait is
//! bounded, so a hang fails the test instead of stalling it.
//!
//! The compression-on scenarios need the permessage-deflate API
//! (`DeflateConfig`, `Upgrader::deflate`, `Connector::deflate`). Until it has
//! landed they are listed but skipped: see [`deflate_switch!`], the one place
//! to flip.

#![cfg(all(unix, feature = "deflate"))]

mod common;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use futures_util::{future, SinkExt, StreamExt, TryStreamExt};
use silverback::{CloseCode, CloseFrame, Connector, Message, Upgrader};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader, Lines};
use tokio::net::TcpListener;
use tokio::process::{Child, ChildStdout, Command};
use tokio::sync::OnceCell;
use tokio::task::JoinHandle;
use tokio::time::timeout;

/// silverback's settings for a scenario.
fn deflate_config(sc: &Scenario) -> silverback::DeflateConfig {
    let mut cfg = silverback::DeflateConfig::default()
        .server_no_context_takeover(sc.server_no_context_takeover)
        .client_no_context_takeover(sc.client_no_context_takeover);
    if let Some(bits) = sc.server_max_window_bits {
        cfg = cfg.server_max_window_bits(bits);
    }
    if let Some(bits) = sc.client_max_window_bits {
        cfg = cfg.client_max_window_bits(bits);
    }
    cfg
}

/// Bound on `setup.sh --check` (it only looks; a locked install may be running).
const SETUP_TIMEOUT: Duration = Duration::from_secs(600);
/// Bound on one step: a line from a peer, a handshake, one echo.
const STEP: Duration = Duration::from_secs(30);
/// Bound on a whole run of a peer, start to exit.
const RUN: Duration = Duration::from_secs(90);

// ---------------------------------------------------------------------------
// scenarios
// ---------------------------------------------------------------------------

/// One compression setup, applied to both ends.
#[derive(Clone, Debug)]
struct Scenario {
    name: &'static str,
    /// The peer offers (client) / accepts (server) permessage-deflate.
    peer_compress: bool,
    /// Silverback is configured with `.deflate(..)`.
    silverback_deflate: bool,
    server_no_context_takeover: bool,
    client_no_context_takeover: bool,
    server_max_window_bits: Option<u8>,
    client_max_window_bits: Option<u8>,
}

impl Scenario {
    const fn new(name: &'static str, peer_compress: bool, silverback_deflate: bool) -> Self {
        Scenario {
            name,
            peer_compress,
            silverback_deflate,
            server_no_context_takeover: false,
            client_no_context_takeover: false,
            server_max_window_bits: None,
            client_max_window_bits: None,
        }
    }

    /// Whether permessage-deflate must end up negotiated.
    fn negotiated(&self) -> bool {
        self.peer_compress && self.silverback_deflate
    }

    /// The peer program's compression flags.
    fn peer_flags(&self) -> Vec<String> {
        let mut flags = vec!["--compress".to_owned(), if self.peer_compress { "on" } else { "off" }.to_owned()];
        if self.server_no_context_takeover {
            flags.push("--server-no-context-takeover".to_owned());
        }
        if self.client_no_context_takeover {
            flags.push("--client-no-context-takeover".to_owned());
        }
        if let Some(bits) = self.server_max_window_bits {
            flags.extend(["--server-max-window-bits".to_owned(), bits.to_string()]);
        }
        if let Some(bits) = self.client_max_window_bits {
            flags.extend(["--client-max-window-bits".to_owned(), bits.to_string()]);
        }
        flags
    }

    /// What a negotiated `Sec-WebSocket-Extensions` value must contain.
    fn expected_params(&self) -> Vec<String> {
        let mut params = vec!["permessage-deflate".to_owned()];
        if self.server_no_context_takeover {
            params.push("server_no_context_takeover".to_owned());
        }
        if self.client_no_context_takeover {
            params.push("client_no_context_takeover".to_owned());
        }
        if let Some(bits) = self.server_max_window_bits {
            params.push(format!("server_max_window_bits={bits}"));
        }
        if let Some(bits) = self.client_max_window_bits {
            params.push(format!("client_max_window_bits={bits}"));
        }
        params
    }

    /// Checks a `Sec-WebSocket-Extensions` value ("" when absent).
    fn check_extensions(&self, value: &str) -> Result<(), String> {
        let has = |p: &str| value.split(';').any(|param| param.trim().eq_ignore_ascii_case(p));
        if !self.negotiated() {
            return if value.contains("permessage-deflate") {
                Err(format!("permessage-deflate negotiated although it must not be: {value:?}"))
            } else {
                Ok(())
            };
        }
        let missing: Vec<String> = self.expected_params().into_iter().filter(|p| !has(p)).collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(format!("extensions {value:?} lack {missing:?}"))
        }
    }
}

fn scenarios() -> Vec<Scenario> {
    vec![
        Scenario::new("off", false, false),
        // The peer offers / accepts deflate, silverback is not configured.
        Scenario::new("peer-only", true, false),
        // Silverback is configured, the peer does not offer / accept it.
        Scenario::new("silverback-only", false, true),
        Scenario::new("deflate", true, true),
        Scenario {
            server_no_context_takeover: true,
            client_no_context_takeover: true,
            ..Scenario::new("no-context-takeover", true, true)
        },
        Scenario {
            server_max_window_bits: Some(10),
            client_max_window_bits: Some(11),
            ..Scenario::new("window-bits", true, true)
        },
    ]
}

fn upgrader(sc: &Scenario) -> Upgrader {
    let upgrader = Upgrader::new().allow_any_origin();
    if sc.silverback_deflate {
        upgrader.deflate(deflate_config(sc))
    } else {
        upgrader
    }
}

fn connector(sc: &Scenario) -> Connector {
    let connector = Connector::new();
    if sc.silverback_deflate {
        connector.deflate(deflate_config(sc))
    } else {
        connector
    }
}

// ---------------------------------------------------------------------------
// messages: the same sequence as `messages()` in peer.py and peer.mjs
// ---------------------------------------------------------------------------

/// Characters of 1, 2, 3 and 4 UTF-8 bytes.
const CHARS: [char; 8] = ['a', '\u{e9}', '\u{20ac}', '\u{1F600}', ' ', 'b', '\u{df}', '\u{4e2d}'];

/// Exactly `n` bytes of UTF-8 mixing 1- to 4-byte characters.
fn text_of_bytes(n: usize) -> String {
    let mut s = String::with_capacity(n);
    let mut i = 0;
    while s.len() < n {
        let c = CHARS[i % CHARS.len()];
        i += 1;
        s.push(if s.len() + c.len_utf8() > n { 'x' } else { c });
    }
    s
}

/// Compressible ASCII JSON-ish text of exactly `n` bytes.
fn json_like(n: usize) -> String {
    let mut s = String::from("[");
    let mut i = 0u64;
    while s.len() < n {
        let _ = write!(
            s,
            r#"{{"id":{i},"name":"user-{i}","tags":["alpha","beta","gamma"],"active":{},"score":{}}},"#,
            i % 2 == 0,
            (i * 7919) % 1000
        );
        i += 1;
    }
    s.truncate(n);
    s
}

/// `n` deterministic pseudo-random bytes (xorshift32, seed 0x9E3779B9).
fn random_ish(n: usize) -> Vec<u8> {
    let mut x: u32 = 0x9E37_79B9;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

/// `n` highly compressible bytes: a repeated phrase.
fn compressible(n: usize) -> Vec<u8> {
    b"silverback permessage-deflate interop ".iter().copied().cycle().take(n).collect()
}

/// Every kind of message twice in a row, so the second copy can be
/// compressed against the first when context takeover is on.
fn messages() -> Vec<Message> {
    let base = vec![
        Message::text(text_of_bytes(0)),
        Message::text(text_of_bytes(1)),
        Message::text(text_of_bytes(125)),
        Message::text(text_of_bytes(126)),
        Message::text(text_of_bytes(1000)),
        Message::text(text_of_bytes(70_000)),
        Message::text(json_like(16 * 1024)),
        Message::binary(random_ish(16 * 1024)),
        Message::binary(compressible(1024 * 1024)),
    ];
    base.into_iter().flat_map(|m| [m.clone(), m]).collect()
}

fn describe(msg: &Message) -> String {
    let kind = match msg {
        Message::Text(_) => "text",
        Message::Binary(_) => "binary",
        Message::Ping(_) => "ping",
        Message::Pong(_) => "pong",
        Message::Close(_) => "close",
    };
    format!("{kind}[{}]", msg.len())
}

fn check_echo(i: usize, sent: &Message, got: &Message) -> Result<(), String> {
    if sent == got {
        return Ok(());
    }
    let same = if sent.len() == got.len() { " (same size, different content)" } else { "" };
    Err(format!("message {i}: sent {}, echo {}{same}", describe(sent), describe(got)))
}

// ---------------------------------------------------------------------------
// setup.sh and peer processes
// ---------------------------------------------------------------------------

/// What `setup.sh` reported.
#[derive(Debug)]
struct Tools {
    python: PathBuf,
    pythonpath: String,
    node: PathBuf,
    node_prefix: PathBuf,
}

static TOOLS: OnceCell<Result<Tools, String>> = OnceCell::const_new();

fn interop_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join("interop")
}

async fn tools() -> &'static Tools {
    match TOOLS.get_or_init(run_setup).await {
        Ok(tools) => tools,
        Err(e) => panic!("{e}"),
    }
}

async fn run_setup() -> Result<Tools, String> {
    let started = Instant::now();
    let script = interop_dir().join("setup.sh");
    let mut cmd = Command::new("bash");
    cmd.arg(&script)
        .arg("--check")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let child = cmd.spawn().map_err(|e| format!("spawning {}: {e}", script.display()))?;
    let pid = child.id();
    let output = match timeout(SETUP_TIMEOUT, child.wait_with_output()).await {
        Ok(output) => output.map_err(|e| format!("running {}: {e}", script.display()))?,
        Err(_) => {
            // Take its children (the python / node probes) down with it: setup.sh
            // leads its own group.
            if let Some(pid) = pid {
                let _ = std::process::Command::new("kill").args(["-KILL", "--", &format!("-{pid}")]).status();
            }
            return Err(format!("{} did not finish within {SETUP_TIMEOUT:?}", script.display()));
        }
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        return Err(format!("{} failed ({}):\n{stdout}\n{stderr}", script.display(), output.status));
    }
    let field = |key: &str| {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(key).and_then(|rest| rest.strip_prefix('=')))
            .map(str::to_owned)
            .ok_or_else(|| format!("{} printed no {key}= line:\n{stdout}\n{stderr}", script.display()))
    };
    let tools = Tools {
        python: field("PYTHON")?.into(),
        pythonpath: field("PYTHONPATH")?,
        node: field("NODE")?.into(),
        node_prefix: field("NODE_PREFIX")?.into(),
    };
    eprintln!("interop setup: {:.2?} {tools:?}", started.elapsed());
    Ok(tools)
}

/// An implementation under test.
#[derive(Clone, Copy, Debug)]
enum Peer {
    Python,
    Node,
}

impl Peer {
    fn command(self, tools: &Tools) -> Command {
        match self {
            Peer::Python => {
                let mut cmd = Command::new(&tools.python);
                cmd.arg(interop_dir().join("peer.py")).env("PYTHONUNBUFFERED", "1");
                if !tools.pythonpath.is_empty() {
                    cmd.env("PYTHONPATH", &tools.pythonpath);
                }
                cmd
            }
            Peer::Node => {
                let mut cmd = Command::new(&tools.node);
                cmd.arg(interop_dir().join("peer.mjs")).env("INTEROP_NODE_PREFIX", &tools.node_prefix);
                cmd
            }
        }
    }
}

/// A running peer program; killed when dropped.
struct PeerProcess {
    what: String,
    child: Child,
    stdout: Lines<BufReader<ChildStdout>>,
    seen: Vec<String>,
    stderr: Option<JoinHandle<String>>,
}

/// How a peer program ended.
#[derive(Debug)]
struct PeerExit {
    status: ExitStatus,
    stdout: Vec<String>,
    stderr: String,
}

impl PeerExit {
    /// The rest of the first stdout line starting with `prefix`.
    fn line(&self, prefix: &str) -> Option<&str> {
        self.stdout.iter().find_map(|l| l.strip_prefix(prefix))
    }

    fn report(&self) -> String {
        format!("{}; stdout: {:?}; stderr: {}", self.status, self.stdout, self.stderr.trim())
    }
}

impl PeerProcess {
    fn spawn(tools: &Tools, peer: Peer, args: &[String]) -> Result<Self, String> {
        let mut cmd = peer.command(tools);
        cmd.args(args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true);
        let what = format!("{peer:?} {}", args.join(" "));
        let mut child = cmd.spawn().map_err(|e| format!("spawning {what}: {e}"))?;
        let stdout = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
        let mut stderr = child.stderr.take().expect("piped stderr");
        let stderr = tokio::spawn(async move {
            let mut s = String::new();
            let _ = stderr.read_to_string(&mut s).await;
            s
        });
        Ok(PeerProcess { what, child, stdout, seen: Vec::new(), stderr: Some(stderr) })
    }

    /// The next stdout line, `None` at EOF.
    async fn line(&mut self, within: Duration) -> Result<Option<String>, String> {
        match timeout(within, self.stdout.next_line()).await {
            Ok(Ok(Some(line))) => {
                self.seen.push(line.clone());
                Ok(Some(line))
            }
            Ok(Ok(None)) => Ok(None),
            Ok(Err(e)) => Err(format!("{}: reading stdout: {e}", self.what)),
            Err(_) => Err(format!("{}: no output within {within:?}; stdout so far: {:?}", self.what, self.seen)),
        }
    }

    /// Waits for the server's `PORT <n>` line.
    async fn port(&mut self) -> Result<u16, String> {
        while let Some(line) = self.line(STEP).await? {
            if let Some(port) = line.strip_prefix("PORT ") {
                return port.trim().parse().map_err(|e| format!("{}: bad {line:?}: {e}", self.what));
            }
        }
        let exit = self.finish().await?;
        Err(format!("{}: exited without a PORT line: {}", self.what, exit.report()))
    }

    /// Reads stdout to its end and waits for the exit, within [`RUN`].
    async fn finish(&mut self) -> Result<PeerExit, String> {
        let deadline = tokio::time::Instant::now() + RUN;
        while self.line(deadline.saturating_duration_since(tokio::time::Instant::now())).await?.is_some() {}
        let status = match tokio::time::timeout_at(deadline, self.child.wait()).await {
            Ok(status) => status.map_err(|e| format!("{}: wait: {e}", self.what))?,
            Err(_) => return Err(format!("{}: did not exit within {RUN:?}; stdout: {:?}", self.what, self.seen)),
        };
        let stderr = match self.stderr.take() {
            Some(task) => timeout(STEP, task).await.ok().and_then(Result::ok).unwrap_or_default(),
            None => String::new(),
        };
        Ok(PeerExit { status, stdout: std::mem::take(&mut self.seen), stderr })
    }
}

impl Drop for PeerProcess {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

// ---------------------------------------------------------------------------
// the two directions
// ---------------------------------------------------------------------------

/// How silverback's echo server saw its one connection.
#[derive(Debug)]
struct EchoEnd {
    offered: String,
    echoed: usize,
    close: Option<Option<CloseFrame>>,
}

/// Accepts one connection, echoes its data messages through split halves.
async fn echo_once(listener: TcpListener, upgrader: Upgrader) -> Result<EchoEnd, String> {
    let (tcp, _) = timeout(STEP, listener.accept())
        .await
        .map_err(|_| "no connection to the echo server".to_owned())?
        .map_err(|e| format!("accept: {e}"))?;
    tcp.set_nodelay(true).map_err(|e| format!("nodelay: {e}"))?;
    let (ws, request) = timeout(STEP, upgrader.accept_with_request(tcp))
        .await
        .map_err(|_| "server handshake timed out".to_owned())?
        .map_err(|e| format!("server handshake: {e:?}"))?;
    let offered = header(request.headers(), "sec-websocket-extensions");
    let (read, write) = ws.split();
    let mut echoed = 0;
    let mut close = None;
    timeout(
        RUN,
        read.try_filter(|msg| {
            if let Message::Close(frame) = msg {
                close = Some(frame.clone());
            }
            let data = msg.is_text() || msg.is_binary();
            echoed += usize::from(data);
            future::ready(data)
        })
        .forward(write),
    )
    .await
    .map_err(|_| "echo server: connection did not end in time".to_owned())?
    .map_err(|e| format!("echo server: {e:?}"))?;
    Ok(EchoEnd { offered, echoed, close })
}

fn header(headers: &http::HeaderMap, name: &str) -> String {
    headers
        .get_all(name)
        .iter()
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Silverback's server, the peer's client.
async fn silverback_server(tools: &Tools, peer: Peer, sc: &Scenario) -> Result<String, String> {
    let listener = TcpListener::bind("127.0.0.1:0").await.map_err(|e| format!("bind: {e}"))?;
    let port = listener.local_addr().map_err(|e| e.to_string())?.port();
    let mut server = AbortOnDrop(tokio::spawn(echo_once(listener, upgrader(sc))));
    let mut args = vec!["client".to_owned(), format!("ws://127.0.0.1:{port}/")];
    args.extend(sc.peer_flags());
    let mut client = PeerProcess::spawn(tools, peer, &args)?;
    let exit = client.finish().await?;
    let end = match timeout(STEP, &mut server.0).await {
        Ok(Ok(end)) => end,
        Ok(Err(e)) => Err(format!("echo server task: {e}")),
        Err(_) => Err("echo server did not finish".to_owned()),
    };
    let expected = messages().len();
    let ok = exit.line("OK ").map(str::trim);
    if !exit.status.success() || ok != Some(expected.to_string().as_str()) {
        return Err(format!("peer client failed (want OK {expected}): {}; server: {end:?}", exit.report()));
    }
    let ext = exit.line("EXT").map(str::trim).ok_or_else(|| format!("peer printed no EXT line: {}", exit.report()))?;
    sc.check_extensions(ext)?;
    let end = end?;
    if end.echoed != expected {
        return Err(format!("server echoed {} messages, want {expected}", end.echoed));
    }
    match &end.close {
        Some(Some(frame)) if frame.code == CloseCode::NORMAL => {}
        other => return Err(format!("server saw close {other:?}, want 1000")),
    }
    Ok(format!("offer {:?} -> EXT {ext:?}", end.offered))
}

/// The next text or binary message, skipping pings and pongs.
async fn next_data<S>(ws: &mut silverback::WebSocketStream<S>) -> Result<Message, String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let next = async {
        loop {
            match ws.next().await {
                Some(Ok(msg @ (Message::Text(_) | Message::Binary(_)))) => return Ok(msg),
                Some(Ok(Message::Close(frame))) => return Err(format!("peer closed early: {frame:?}")),
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(format!("read: {e:?}")),
                None => return Err("stream ended early".to_owned()),
            }
        }
    };
    timeout(STEP, next).await.map_err(|_| "timed out waiting for an echo".to_owned())?
}

/// Silverback's client, the peer's server.
async fn silverback_client(tools: &Tools, peer: Peer, sc: &Scenario) -> Result<String, String> {
    let mut args = vec!["server".to_owned()];
    args.extend(sc.peer_flags());
    let mut server = PeerProcess::spawn(tools, peer, &args)?;
    let port = server.port().await?;
    match drive_client(port, sc).await {
        Ok((ext, reply)) => {
            let exit = server.finish().await?;
            let closed = exit.line("CLOSED ").and_then(|rest| rest.split_whitespace().next());
            if !exit.status.success() || closed != Some("1000") {
                return Err(format!("peer server did not see a clean 1000 close: {}", exit.report()));
            }
            match reply {
                Some(Some(frame)) if frame.code == CloseCode::NORMAL => Ok(format!("EXT {ext:?}")),
                other => Err(format!("close reply {other:?}, want 1000")),
            }
        }
        Err(e) => {
            // Whatever the peer printed may say why (its close code and
            // reason): the connection is gone, so give it a moment to exit.
            let exit = match timeout(Duration::from_secs(3), server.finish()).await {
                Ok(exit) => exit,
                Err(_) => {
                    let _ = server.child.start_kill();
                    server.finish().await
                }
            };
            let peer_side = match exit {
                Ok(exit) => exit.report(),
                Err(e) => e,
            };
            Err(format!("{e}; peer server: {peer_side}"))
        }
    }
}

/// The silverback client's side of [`silverback_client`]: returns the
/// negotiated extensions and the peer's close reply.
async fn drive_client(port: u16, sc: &Scenario) -> Result<(String, Option<Option<CloseFrame>>), String> {
    let url = format!("ws://127.0.0.1:{port}/");
    let (mut ws, response) = timeout(STEP, connector(sc).connect(&url))
        .await
        .map_err(|_| format!("connect {url} timed out"))?
        .map_err(|e| format!("connect {url}: {e:?}"))?;
    let ext = header(response.headers(), "sec-websocket-extensions");
    sc.check_extensions(&ext)?;

    // One at a time.
    let msgs = messages();
    for (i, msg) in msgs.iter().enumerate() {
        timeout(STEP, ws.send(msg.clone()))
            .await
            .map_err(|_| "send timed out".to_owned())?
            .map_err(|e| format!("send {i}: {e:?}"))?;
        check_echo(i, msg, &next_data(&mut ws).await?)?;
    }

    // The peer's view of the negotiation.
    timeout(STEP, ws.send(Message::text("?extensions")))
        .await
        .map_err(|_| "send timed out".to_owned())?
        .map_err(|e| format!("send ?extensions: {e:?}"))?;
    let answer = next_data(&mut ws).await?;
    if answer.as_text() != Some(ext.as_str()) {
        return Err(format!("peer says it sent extensions {answer:?}, silverback received {ext:?}"));
    }

    // Pipelined: a writer task feeds everything, the reader checks echoes.
    let (mut read, mut write) = ws.split();
    let to_send = msgs.clone();
    let mut writer = AbortOnDrop(tokio::spawn(async move {
        for msg in to_send {
            write.feed(msg).await.map_err(|e| format!("feed: {e:?}"))?;
        }
        write.flush().await.map_err(|e| format!("flush: {e:?}"))?;
        Ok::<_, String>(write)
    }));
    let reader = async {
        let mut got = 0;
        while got < msgs.len() {
            match read.next().await {
                Some(Ok(msg @ (Message::Text(_) | Message::Binary(_)))) => {
                    check_echo(got, &msgs[got], &msg).map_err(|e| format!("pipelined {e}"))?;
                    got += 1;
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(format!("pipelined read: {e:?}")),
                None => return Err(format!("pipelined: stream ended after {got} echoes")),
            }
        }
        Ok(())
    };
    timeout(RUN, reader).await.map_err(|_| "pipelined echoes timed out".to_owned())??;
    let mut write = match timeout(STEP, &mut writer.0).await {
        Ok(Ok(result)) => result?,
        Ok(Err(e)) => return Err(format!("writer task: {e}")),
        Err(_) => return Err("writer task did not finish".to_owned()),
    };

    // Close with 1000 and wait for the reply and the end of the stream.
    timeout(STEP, write.send_close(Some(CloseFrame::normal())))
        .await
        .map_err(|_| "close timed out".to_owned())?
        .map_err(|e| format!("close: {e:?}"))?;
    let reply = timeout(STEP, async {
        let mut reply = None;
        while let Some(msg) = read.next().await {
            if let Message::Close(frame) = msg.map_err(|e| format!("read after close: {e:?}"))? {
                reply = Some(frame);
            }
        }
        Ok::<_, String>(reply)
    })
    .await
    .map_err(|_| "closing handshake timed out".to_owned())??;
    Ok((ext, reply))
}

/// Aborts a spawned task when dropped (so a failed scenario leaves nothing).
struct AbortOnDrop<T>(JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

// ---------------------------------------------------------------------------
// the tests
// ---------------------------------------------------------------------------

async fn run_peer(peer: Peer) {
    let what = match peer {
        Peer::Python => "interop with Python websockets",
        Peer::Node => "interop with Node ws",
    };
    if !common::conformance_only(what) {
        return;
    }
    let tools = tools().await;
    let mut failures = Vec::new();
    for sc in scenarios() {
        for (direction, result) in [
            ("silverback server <- peer client", {
                let started = Instant::now();
                (silverback_server(tools, peer, &sc).await, started.elapsed())
            }),
            ("peer server <- silverback client", {
                let started = Instant::now();
                (silverback_client(tools, peer, &sc).await, started.elapsed())
            }),
        ] {
            match result {
                (Ok(summary), took) => eprintln!("{peer:?} {} [{direction}]: ok in {took:.2?}: {summary}", sc.name),
                (Err(e), took) => {
                    eprintln!("{peer:?} {} [{direction}]: FAILED in {took:.2?}: {e}", sc.name);
                    failures.push(format!("{} [{direction}]: {e}", sc.name));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{peer:?} interop failures:\n{}", failures.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_websockets() {
    run_peer(Peer::Python).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_ws() {
    run_peer(Peer::Node).await;
}
