//! An echo server on axum 0.8 with silverback's extractor.
//!
//! `cargo run --example axum_echo --features axum -- 127.0.0.1:3000` serves
//! `ws://127.0.0.1:3000/ws` until stopped; without an address it serves on
//! a free port, makes one round trip with silverback's client, and exits.

use std::sync::Arc;

use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use futures_util::{SinkExt, StreamExt};
use silverback::axum::WebSocketUpgrade;
use silverback::{Message, Upgrader};

/// The whole integration: extract, pick the upgrader, say what to run.
async fn echo(State(upgrader): State<Arc<Upgrader>>, ws: WebSocketUpgrade) -> Response {
    ws.upgrader(upgrader).on_upgrade(|mut ws| async move {
        while let Some(Ok(msg)) = ws.next().await {
            if (msg.is_text() || msg.is_binary()) && ws.send(msg).await.is_err() {
                break;
            }
        }
    })
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let upgrader = Arc::new(Upgrader::new().subprotocols(["echo"]));
    let app = Router::new().route("/ws", get(echo)).with_state(upgrader);

    let addr = std::env::args().nth(1);
    let listener = tokio::net::TcpListener::bind(addr.as_deref().unwrap_or("127.0.0.1:0")).await?;
    let url = format!("ws://{}/ws", listener.local_addr()?);
    if addr.is_some() {
        println!("serving {url}");
        return Ok(axum::serve(listener, app).await?);
    }

    tokio::spawn(async move { axum::serve(listener, app).await });
    let (mut ws, _) = silverback::connect(&url).await?;
    ws.send(Message::text("hello through axum")).await?;
    let reply = ws.next().await.ok_or("no reply")??;
    println!("{url} echoed {reply:?}");
    ws.close(None).await?;
    Ok(())
}
