//! Regression: `echo hi | client ws://HOST/` sometimes printed nothing.
//!
//! The `client` example sent its close frame as soon as standard input
//! ended. A server that answers a close frame as soon as it reads it (Python's
//! `websockets` does) may then no longer send the replies it still owed, since
//! no data may follow its own close (RFC 6455 §5.5.1): the reply was lost
//! whenever the close arrived before the server had echoed. This runs the
//! real example binary 100 times against such a server on loopback, one that
//! waits 30 ms before each echo, and checks that every reply is printed.

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::process::Command;
use tokio::sync::mpsc;

/// How long the server waits before echoing a message.
const ECHO_DELAY: Duration = Duration::from_millis(30);
const RUNS: usize = 100;
const PARALLEL: usize = 8;

/// An echo server that answers a close frame at once, from its reading
/// task, while a writing task echoes each data message after
/// [`ECHO_DELAY`]: an echo that comes after the close answer fails.
async fn serve(listener: TcpListener) {
    loop {
        let (tcp, _) = listener.accept().await.unwrap();
        tokio::spawn(async move {
            let Ok(ws) = silverback::accept(tcp).await else { return };
            let (mut read, mut write) = ws.split();
            let (tx, mut rx) = mpsc::unbounded_channel();
            tokio::spawn(async move {
                while let Some(msg) = rx.recv().await {
                    tokio::time::sleep(ECHO_DELAY).await;
                    if write.send(msg).await.is_err() {
                        break;
                    }
                }
            });
            // Reading also answers the close frame, as soon as it arrives.
            while let Some(Ok(msg)) = read.next().await {
                if msg.is_text() || msg.is_binary() {
                    let _ = tx.send(msg);
                }
            }
        });
    }
}

/// One run of the client with `line` on its standard input: what it printed.
async fn run_client(client: &std::path::Path, url: &str, line: &str) -> Result<String, String> {
    let mut child = Command::new(client)
        .arg(url)
        .env_remove("HTTP_PROXY")
        .env_remove("http_proxy")
        .env_remove("ALL_PROXY")
        .env_remove("all_proxy")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("spawn: {e}"))?;
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(format!("{line}\n").as_bytes()).await.map_err(|e| format!("stdin: {e}"))?;
    drop(stdin);
    let output = tokio::time::timeout(Duration::from_secs(10), child.wait_with_output())
        .await
        .map_err(|_| "client did not exit within 10 s".to_owned())?
        .map_err(|e| format!("wait: {e}"))?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        return Err(format!("client failed ({}): {stderr}", output.status));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_example_prints_the_reply_to_every_line_before_closing() {
    let building = Instant::now();
    let client = tokio::task::spawn_blocking(|| common::build_example("client")).await.unwrap();
    eprintln!("built the client example in {:?}", building.elapsed());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    tokio::spawn(serve(listener));

    let started = Instant::now();
    let runs = futures_util::stream::iter(0..RUNS)
        .map(|i| {
            let (client, url) = (client.clone(), url.clone());
            async move {
                let line = format!("line {i}");
                let printed = run_client(&client, &url, &line).await;
                (line, printed)
            }
        })
        .buffer_unordered(PARALLEL)
        .collect::<Vec<_>>()
        .await;
    let failures: Vec<_> =
        runs.iter().filter(|(line, printed)| printed.as_deref() != Ok(&format!("{line}\n"))).collect();
    assert!(
        failures.is_empty(),
        "{} of {RUNS} runs missed their reply, e.g. {:?}",
        failures.len(),
        &failures[..failures.len().min(3)]
    );
    eprintln!("{RUNS} runs in {:?}", started.elapsed());
    assert!(started.elapsed() < Duration::from_secs(30), "too slow: {:?}", started.elapsed());
}
