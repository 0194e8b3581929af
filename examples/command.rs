//! Command server: `cargo run --example command -- 127.0.0.1:8080 -- sh -c 'cat'`,
//! then open <http://127.0.0.1:8080/>.
//!
//! gorilla/websocket's command example, on silverback: every WebSocket
//! connection to `/ws` starts its own process (by default `cat`) and bridges
//! the two. Each message from the socket is written to the process's stdin,
//! followed by a newline; each line the process writes to stdout or stderr
//! is sent to the socket as a text message (lines over 64 KiB are split).
//! The page at `/` shows the output and sends what you type.
//!
//! Shutdown is orderly, either way round:
//!
//! - **The socket closes first** (the page was closed, or the peer went
//!   silent past the read timeout): the process's stdin is closed; a process
//!   still running 1 s later is killed (the process only, as in gorilla's
//!   example: processes it started itself live on).
//! - **The process ends first** (its stdout and stderr are closed): the
//!   server sends close 1000 and waits up to 5 s for the peer's close, then
//!   hangs up and reaps the process.
//!
//! Keepalive pings go out after 30 s of silence, a peer silent for 60 s is
//! dropped, and messages from the peer are limited to 8 KiB. The default
//! origin policy applies (the page is served from the same host).
//!
//! Unix only: stdout and stderr share one pipe (`tokio::net::unix::pipe`).

#![cfg_attr(not(unix), allow(dead_code, unused_imports))]

use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use silverback::{CloseCode, CloseFrame, Config, Limits, Message, ReadHalf, Upgrader, WriteHalf};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
#[cfg(unix)]
use tokio::net::unix::pipe;
use tokio::net::{TcpListener, TcpStream};
use tokio::process::{ChildStdin, Command};

mod common;

/// The largest message the peer may send.
const MAX_MESSAGE_SIZE: usize = 8 * 1024;
/// Output lines longer than this are sent in pieces.
const MAX_LINE: usize = 64 * 1024;
/// Keepalive: ping a peer that has been silent this long.
const PING_INTERVAL: Duration = Duration::from_secs(30);
/// Drop a peer that has been silent this long (pongs count).
const READ_TIMEOUT: Duration = Duration::from_secs(60);
/// Bound on writing to a peer that does not read.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the peer has to answer our close once the process ended.
const CLOSE_GRACE: Duration = Duration::from_secs(5);
/// How long a process has to exit once its stdin is closed.
const KILL_GRACE: Duration = Duration::from_secs(1);

type Transport = common::Rewind<TcpStream>;

/// The program to run for each connection, and its arguments.
#[derive(Debug)]
struct Program {
    path: String,
    args: Vec<String>,
}

#[cfg(not(unix))]
fn main() {
    eprintln!("the command example runs on Unix only");
}

#[cfg(unix)]
#[tokio::main]
async fn main() -> std::io::Result<()> {
    // command [ADDR] [-- PROGRAM ARGS...]
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let program = match args.iter().position(|a| a == "--") {
        Some(i) => args.split_off(i).split_off(1),
        None => Vec::new(),
    };
    let program = match program.split_first() {
        Some((path, args)) => Program { path: path.clone(), args: args.to_vec() },
        None => Program { path: "cat".to_owned(), args: Vec::new() },
    };
    let addr = args.first().cloned().unwrap_or_else(|| "127.0.0.1:8080".to_owned());
    let listener = TcpListener::bind(&addr).await?;
    let shown = std::iter::once(&program.path).chain(&program.args).map(|a| format!("{a:?}")).collect::<Vec<_>>();
    println!("listening on http://{} (one `{}` per connection)", listener.local_addr()?, shown.join(" "));

    let config = Config::default()
        .limits(Limits::default().max_message_size(MAX_MESSAGE_SIZE).max_frame_size(MAX_MESSAGE_SIZE))
        .ping_interval(PING_INTERVAL)
        .read_timeout(READ_TIMEOUT)
        .write_timeout(WRITE_TIMEOUT)
        .close_timeout(CLOSE_GRACE);
    let upgrader = Arc::new(Upgrader::new().config(config));
    let program = Arc::new(program);
    loop {
        let (tcp, peer) = listener.accept().await?;
        let (upgrader, program) = (upgrader.clone(), program.clone());
        tokio::spawn(async move {
            let Some(io) = common::route(tcp, PAGE).await.ok().flatten() else { return };
            let ws = match upgrader.accept(io).await {
                Ok(ws) => ws,
                Err(e) => return eprintln!("{peer}: handshake refused: {}", common::describe(&e)),
            };
            match bridge(ws.split(), &program).await {
                Ok(status) => println!("{peer}: process ended: {status}"),
                Err(e) => eprintln!("{peer}: {e}"),
            }
        });
    }
}

/// Runs the program for one connection and bridges it to the socket until
/// both are done.
#[cfg(unix)]
async fn bridge(
    (read, mut write): (ReadHalf<Transport>, WriteHalf<Transport>),
    program: &Program,
) -> std::io::Result<ExitStatus> {
    // stdout and stderr share one pipe, as in gorilla's example, so their
    // lines arrive in the order the process wrote them.
    let (output_tx, output_rx) = pipe::pipe()?;
    let stdout = output_tx.into_blocking_fd()?;
    let stderr = stdout.try_clone()?;
    let spawned = Command::new(&program.path)
        .args(&program.args)
        .stdin(Stdio::piped())
        .stdout(stdout)
        .stderr(stderr)
        .kill_on_drop(true)
        .spawn(); // the `Command`, and with it our copies of the pipe's write end, drop here
    let mut child = match spawned {
        Ok(child) => child,
        Err(e) => {
            let reason = format!("cannot start {}", program.path);
            let _ = write.send_close(Some(CloseFrame::new(CloseCode::INTERNAL_ERROR, reason))).await;
            return Err(e);
        }
    };
    let stdin = child.stdin.take().expect("stdin is piped");
    let mut output = tokio::spawn(pump_output(write, output_rx));
    let mut input = Box::pin(pump_input(read, stdin));

    let output_ended = tokio::select! {
        () = &mut input => false,
        _ = &mut output => true,
    };
    if output_ended {
        // The process is done writing and our close 1000 is out: wait for
        // the peer's close, which ends the input pump.
        if tokio::time::timeout(CLOSE_GRACE, &mut input).await.is_err() {
            eprintln!("peer did not answer our close within {CLOSE_GRACE:?}");
        }
    }
    // Closes stdin (if the input pump still held it) and the socket's read side.
    drop(input);

    // Some programs exit when stdin closes; the others are killed.
    let status = match tokio::time::timeout(KILL_GRACE, child.wait()).await {
        Ok(status) => status?,
        Err(_) => {
            child.kill().await?;
            child.wait().await?
        }
    };
    if !output_ended && tokio::time::timeout(KILL_GRACE, &mut output).await.is_err() {
        // A grandchild still holds the pipes open.
        output.abort();
    }
    Ok(status)
}

/// Writes every message from the socket to the process's stdin, with a
/// newline. Returns when the socket is done (the peer's close, answered by
/// the stream; an error; the read timeout), dropping stdin and so closing
/// it. Once the process stops reading, messages are discarded.
async fn pump_input(mut read: ReadHalf<Transport>, stdin: ChildStdin) {
    let mut stdin = Some(stdin);
    while let Some(msg) = read.next().await {
        let data = match msg {
            Ok(Message::Text(text)) => text.into_bytes(),
            Ok(Message::Binary(data)) => data,
            Ok(_) => continue,
            Err(e) => {
                if e.is_unexpected_close(&[CloseCode::GOING_AWAY, CloseCode::ABNORMAL]) {
                    eprintln!("connection failed: {e}");
                }
                return;
            }
        };
        if let Some(pipe) = stdin.as_mut() {
            let written = async {
                pipe.write_all(&data).await?;
                pipe.write_all(b"\n").await?;
                pipe.flush().await
            };
            if written.await.is_err() {
                stdin = None; // the process closed its stdin or exited
            }
        }
    }
}

/// Sends each line of the process's output as a text message (at most
/// [`MAX_LINE`] bytes, without the line ending, invalid UTF-8 replaced),
/// flushing once no complete line is left to send; once the output ends,
/// sends close 1000. Returns at the first socket error, which closes the
/// pipe: the process gets SIGPIPE if it writes on.
#[cfg(unix)]
async fn pump_output(mut write: WriteHalf<Transport>, output: pipe::Receiver) -> silverback::Result<()> {
    let mut output = BufReader::new(output);
    let mut line = Vec::new();
    loop {
        line.clear();
        match (&mut output).take(MAX_LINE as u64).read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        if line.last() == Some(&b'\n') {
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
        }
        write.feed(Message::text(String::from_utf8_lossy(&line).into_owned())).await?;
        if !output.buffer().contains(&b'\n') {
            write.flush().await?;
        }
    }
    write.send_close(Some(CloseFrame::normal())).await
}

/// The page served at `/`.
const PAGE: &str = r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<link rel="icon" href="data:,">
<title>silverback command</title>
<style>
  html, body { height: 100%; margin: 0; font-family: sans-serif; background: #eee; }
  #log { position: absolute; top: 0.5em; left: 0.5em; right: 0.5em; bottom: 3.5em; overflow: auto;
         background: #fff; padding: 0.5em; font-family: monospace; white-space: pre-wrap; }
  #log .note { color: #888; font-style: italic; font-family: sans-serif; }
  #form { position: absolute; left: 0.5em; right: 0.5em; bottom: 0.8em; display: flex; gap: 0.5em; }
  #msg { flex: 1; font-family: monospace; }
</style>
</head>
<body data-state="connecting">
<div id="log"></div>
<form id="form">
  <input type="text" id="msg" autocomplete="off" autofocus placeholder="A line for the process's stdin">
  <input type="submit" id="send" value="Send">
</form>
<script>
"use strict";
const log = document.getElementById("log");
const msg = document.getElementById("msg");

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
conn.onopen = () => { document.body.dataset.state = "open"; append("Process started.", "note"); };
conn.onclose = (e) => {
  document.body.dataset.state = "closed";
  append("Connection closed (" + e.code + (e.reason ? ": " + e.reason : "") + ").", "note");
};
conn.onmessage = (e) => append(e.data, "line");

document.getElementById("form").onsubmit = (e) => {
  e.preventDefault();
  if (conn.readyState !== WebSocket.OPEN) return;
  conn.send(msg.value);
  msg.value = "";
};
</script>
</body>
</html>
"#;
