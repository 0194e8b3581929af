//! Reader task + writer task on one connection:
//! `cargo run --example split`
//!
//! Starts an echo server on a free loopback port, connects to it, splits the
//! client connection, and runs a writer task that sends numbered messages
//! while a reader task prints the echoes; then closes cleanly.

use std::time::Duration;

use futures_util::{future, SinkExt, StreamExt, TryStreamExt};
use silverback::{CloseFrame, Message};
use tokio::net::TcpListener;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (read, write) = silverback::accept(tcp).await?.split();
                read.try_filter(|m| future::ready(m.is_text() || m.is_binary())).forward(write).await
            });
        }
    });

    let (ws, _) = silverback::connect(&format!("ws://{addr}/")).await?;
    let (mut read, mut write) = ws.split();

    let writer = tokio::spawn(async move {
        for i in 0..5 {
            write.send(Message::text(format!("message {i}"))).await?;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        write.send_close(Some(CloseFrame::normal())).await
    });
    let reader = tokio::spawn(async move {
        while let Some(msg) = read.next().await {
            match msg? {
                Message::Text(text) => println!("echo: {text}"),
                other => println!("control: {other:?}"),
            }
        }
        Ok::<_, silverback::Error>(())
    });
    writer.await??;
    reader.await??;
    println!("closed cleanly");
    Ok(())
}
