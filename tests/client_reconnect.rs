//! `client URL --reconnect`: the example keeps reading standard input while
//! its server is gone and sends what it read once the server is back.
//!
//! Runs the real example binary against an echo server on loopback, stops
//! the server (every connection dropped, the port closed), writes a line,
//! starts a server on the same port again, and expects that line and the
//! next one echoed, then a clean exit at the end of input.

mod common;

use std::process::Stdio;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::net::TcpListener;
use tokio::process::{ChildStdout, Command};
use tokio::sync::mpsc;
use tokio::task::{JoinHandle, JoinSet};

/// An echo server on `listener`; aborting the handle drops the listener
/// and every connection.
fn serve(listener: TcpListener) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut connections = JoinSet::new();
        while let Ok((tcp, _)) = listener.accept().await {
            connections.spawn(async move {
                let Ok(mut ws) = silverback::accept(tcp).await else { return };
                while let Some(Ok(msg)) = ws.next().await {
                    if (msg.is_text() || msg.is_binary()) && ws.send(msg).await.is_err() {
                        break;
                    }
                }
            });
        }
    })
}

/// The next line the client printed, within a few seconds.
async fn next_line(stdout: &mut Lines<BufReader<ChildStdout>>) -> String {
    tokio::time::timeout(Duration::from_secs(10), stdout.next_line())
        .await
        .expect("no output from the client within 10 s")
        .unwrap()
        .expect("the client's output ended")
}

/// Waits until the client reports something containing `what` on stderr.
async fn wait_for(stderr: &mut mpsc::UnboundedReceiver<String>, what: &str) {
    let found = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(line) = stderr.recv().await {
            if line.contains(what) {
                return;
            }
        }
        panic!("the client's stderr ended before {what:?}");
    });
    found.await.unwrap_or_else(|_| panic!("the client never said {what:?}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_example_reconnects_and_resumes_sending() {
    let client = tokio::task::spawn_blocking(|| common::build_example("client")).await.unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = serve(listener);

    let mut child = Command::new(client)
        .arg(format!("ws://{addr}/"))
        .arg("--reconnect")
        .env_remove("HTTP_PROXY")
        .env_remove("http_proxy")
        .env_remove("ALL_PROXY")
        .env_remove("all_proxy")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    let (tx, mut stderr) = mpsc::unbounded_channel();
    let mut err_lines = BufReader::new(child.stderr.take().unwrap()).lines();
    tokio::spawn(async move {
        while let Ok(Some(line)) = err_lines.next_line().await {
            eprintln!("client: {line}");
            let _ = tx.send(line);
        }
    });

    stdin.write_all(b"one\n").await.unwrap();
    assert_eq!(next_line(&mut stdout).await, "one");

    // The server goes away: its connections and its port.
    server.abort();
    let _ = server.await;
    wait_for(&mut stderr, "connection lost").await;
    stdin.write_all(b"two\n").await.unwrap();
    wait_for(&mut stderr, "connection attempt 1 failed").await;

    // Back on the same port.
    let listener = TcpListener::bind(addr).await.unwrap();
    let server = serve(listener);
    assert_eq!(next_line(&mut stdout).await, "two");
    stdin.write_all(b"three\n").await.unwrap();
    assert_eq!(next_line(&mut stdout).await, "three");

    drop(stdin);
    let status =
        tokio::time::timeout(Duration::from_secs(10), child.wait()).await.expect("client did not exit").unwrap();
    assert!(status.success(), "{status}");
    server.abort();
}
