//! Line client: `cargo run --example client -- ws://127.0.0.1:9001 [--reconnect]`
//!
//! Connects (through the proxy the environment names, if any: `HTTP_PROXY`,
//! `HTTPS_PROXY`, `ALL_PROXY` with `http://`, `https://`, `socks5://` or
//! `socks5h://` proxies, and `NO_PROXY`), sends each line of standard input
//! as a text message, prints each message that comes back on its own line,
//! and closes cleanly at the end of input.
//!
//! With `--reconnect` a lost connection is not the end: it connects again
//! with backoff (printing each failed attempt on standard error), keeps
//! reading standard input meanwhile, and sends what it read once the server
//! is back. Without it, a lost connection ends the program with an error.
//!
//! At the end of input it does not close at once: a peer that receives our
//! close frame may answer it before the replies it still owes us, and may
//! then no longer send them (RFC 6455 §5.5.1 forbids data after its close;
//! Python's `websockets`, for one, fails the send). So it first waits until
//! one message came back per line sent, or none came for `LINGER`; then it
//! sends its close and keeps printing what arrives until the peer's close.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use silverback::{Backoff, CloseFrame, Connector, MaybeTlsStream, Message, WebSocketStream};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::mpsc;

/// At the end of input, how long to wait for a reply before closing.
const LINGER: Duration = Duration::from_secs(2);
/// After our close, how long to wait for the peer's.
const CLOSE_WAIT: Duration = Duration::from_secs(5);

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// How a session over one connection ended.
enum Ended {
    /// Standard input ended and the connection was closed.
    InputDone,
    /// The connection was lost; the reason.
    Lost(String),
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let reconnect = args.iter().any(|a| a == "--reconnect");
    let url = args.iter().find(|a| !a.starts_with("--")).cloned().unwrap_or_else(|| "ws://127.0.0.1:9001".to_owned());

    // Standard input is read on its own task, so that lines keep coming in
    // while a connection is being made again.
    let (lines_tx, mut lines) = mpsc::unbounded_channel::<String>();
    tokio::spawn(async move {
        let mut stdin = BufReader::new(tokio::io::stdin()).lines();
        while let Ok(Some(line)) = stdin.next_line().await {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    // A line read but not sent when the connection was lost.
    let mut unsent = None;

    if !reconnect {
        let (ws, response) = silverback::connect(&url).await?;
        eprintln!("connected to {url} ({})", response.status());
        return match session(ws, &mut lines, &mut unsent).await? {
            Ended::InputDone => Ok(()),
            Ended::Lost(why) => Err(format!("connection lost: {why}").into()),
        };
    }

    let backoff = Backoff::new().initial(Duration::from_millis(200)).max(Duration::from_secs(5));
    let mut connections = Connector::new().reconnect(url.as_str()).backoff(backoff);
    while let Some(attempt) = connections.next().await {
        let (ws, response) = match attempt {
            Ok(connection) => connection,
            Err(failed) => {
                eprintln!("{failed}: {}", chain(failed.error()));
                continue;
            }
        };
        eprintln!("connected to {url} ({})", response.status());
        match session(ws, &mut lines, &mut unsent).await? {
            Ended::InputDone => return Ok(()),
            Ended::Lost(why) => eprintln!("connection lost: {why}; reconnecting"),
        }
    }
    Err("gave up reconnecting".into())
}

/// Sends lines over `ws` and prints what comes back, until the input ends
/// (then closes cleanly) or the connection is lost.
async fn session(
    ws: WebSocketStream<MaybeTlsStream>,
    lines: &mut mpsc::UnboundedReceiver<String>,
    unsent: &mut Option<String>,
) -> Result<Ended, BoxError> {
    let (mut read, mut write) = ws.split();

    // The printer tells the session about each data message it printed,
    // and ends with the connection.
    let (printed_tx, mut printed) = mpsc::unbounded_channel::<()>();
    let mut printer = tokio::spawn(async move {
        while let Some(msg) = read.next().await {
            match msg? {
                Message::Text(text) => println!("{text}"),
                Message::Binary(data) => println!("<{} bytes of binary>", data.len()),
                Message::Close(frame) => {
                    eprintln!("closed by peer: {frame:?}");
                    continue;
                }
                _ => continue,
            }
            let _ = printed_tx.send(());
        }
        Ok::<_, silverback::Error>(())
    });

    let mut sent = 0usize;
    let mut received = 0usize;
    loop {
        let line = match unsent.take() {
            Some(line) => line,
            None => tokio::select! {
                line = lines.recv() => match line {
                    Some(line) => line,
                    None => break,
                },
                Some(()) = printed.recv() => {
                    received += 1;
                    continue;
                }
                ended = &mut printer => return Ok(Ended::Lost(why(ended))),
            },
        };
        if let Err(e) = write.send(Message::text(line.clone())).await {
            *unsent = Some(line);
            return Ok(Ended::Lost(chain(&e)));
        }
        sent += 1;
    }

    // End of input: let the replies in before closing (see the top).
    while received < sent {
        match tokio::time::timeout(LINGER, printed.recv()).await {
            Ok(Some(())) => received += 1,
            // The connection ended, or the peer went quiet.
            Ok(None) | Err(_) => break,
        }
    }
    write.send_close(Some(CloseFrame::normal())).await?;
    // The printer keeps printing until the peer's close, then ends.
    tokio::time::timeout(CLOSE_WAIT, printer).await???;
    Ok(Ended::InputDone)
}

/// Why the printer ended: the connection's error, or its end.
fn why(ended: Result<Result<(), silverback::Error>, tokio::task::JoinError>) -> String {
    match ended {
        Ok(Ok(())) => "closed".to_owned(),
        Ok(Err(e)) => chain(&e),
        Err(e) => e.to_string(),
    }
}

/// An error and its sources, `outer: inner: ...`.
fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(inner) = source {
        text = format!("{text}: {inner}");
        source = inner.source();
    }
    text
}
