//! Line client: `cargo run --example client -- ws://127.0.0.1:9001`
//!
//! Connects, sends each line of standard input as a text message, prints each
//! message that comes back on its own line, and closes cleanly at the end of
//! input.

use futures_util::{SinkExt, StreamExt};
use silverback::{CloseFrame, Message};
use tokio::io::{AsyncBufReadExt, BufReader};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let url = std::env::args().nth(1).unwrap_or_else(|| "ws://127.0.0.1:9001".to_owned());
    let (ws, response) = silverback::connect(&url).await?;
    eprintln!("connected to {url} ({})", response.status());
    let (mut read, mut write) = ws.split();

    let printer = tokio::spawn(async move {
        while let Some(msg) = read.next().await {
            match msg? {
                Message::Text(text) => println!("{text}"),
                Message::Binary(data) => println!("<{} bytes of binary>", data.len()),
                Message::Close(frame) => eprintln!("closed by peer: {frame:?}"),
                _ => {}
            }
        }
        Ok::<_, silverback::Error>(())
    });

    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    while let Some(line) = lines.next_line().await? {
        write.send(Message::text(line)).await?;
    }
    write.close(Some(CloseFrame::normal())).await?;
    // The reader ends once the server has answered our close.
    tokio::time::timeout(std::time::Duration::from_secs(5), printer).await???;
    Ok(())
}
