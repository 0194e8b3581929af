//! Line client: `cargo run --example client -- ws://127.0.0.1:9001`
//!
//! Connects (through the proxy the environment names, if any), sends each
//! line of standard input as a text message, prints each message that comes
//! back on its own line, and closes cleanly at the end of input.
//!
//! At the end of input it does not close at once: a peer that receives our
//! close frame may answer it before the replies it still owes us, and may
//! then no longer send them (RFC 6455 §5.5.1 forbids data after its close;
//! Python's `websockets`, for one, fails the send). So it first waits until
//! one message came back per line sent, or none came for `LINGER`; then it
//! sends its close and keeps printing what arrives until the peer's close.
//! (`--reconnect` is reserved for reconnecting with backoff; not yet built.)

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use silverback::{CloseFrame, Message};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::mpsc;

/// At the end of input, how long to wait for a reply before closing.
const LINGER: Duration = Duration::from_secs(2);
/// After our close, how long to wait for the peer's.
const CLOSE_WAIT: Duration = Duration::from_secs(5);

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let url = std::env::args().nth(1).unwrap_or_else(|| "ws://127.0.0.1:9001".to_owned());
    let (ws, response) = silverback::connect(&url).await?;
    eprintln!("connected to {url} ({})", response.status());
    let (mut read, mut write) = ws.split();

    // The printer tells the main task about each data message it printed.
    let (printed_tx, mut printed) = mpsc::unbounded_channel::<()>();
    let printer = tokio::spawn(async move {
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
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    while let Some(line) = lines.next_line().await? {
        write.send(Message::text(line)).await?;
        sent += 1;
    }

    // End of input: let the replies in before closing (see the top).
    let mut received = 0usize;
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
    Ok(())
}
