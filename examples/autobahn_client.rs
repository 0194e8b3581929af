//! Autobahn fuzzingserver testee:
//! `cargo run --release --example autobahn_client -- ws://127.0.0.1:9001 AGENT`
//!
//! Asks `/getCaseCount`, runs every `/runCase?case=N&agent=AGENT` as an echo
//! client, then asks for `/updateReports?agent=AGENT`.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use silverback::{Config, DeflateConfig, Error, Limits, Message};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let mut args = std::env::args().skip(1);
    let base = args.next().unwrap_or_else(|| "ws://127.0.0.1:9001".to_owned());
    let agent = args.next().unwrap_or_else(|| "silverback".to_owned());

    let count = case_count(&base).await?;
    println!("running {count} cases as {agent}");
    for case in 1..=count {
        if let Err(e) = run_case(&base, &agent, case).await {
            eprintln!("case {case}: {e}: {:?}", std::error::Error::source(&e));
        }
    }
    // wstest writes every report before it answers this handshake, which
    // takes minutes for the permessage-deflate cases on a slow machine.
    let slow = Config::default().close_timeout(Duration::from_secs(600));
    let connector = silverback::Connector::new().config(slow).handshake_timeout(Duration::from_secs(600));
    let (mut ws, _) = connector.connect(&format!("{base}/updateReports?agent={agent}")).await?;
    ws.close(None).await?;
    println!("reports updated");
    Ok(())
}

async fn case_count(base: &str) -> Result<u32, Error> {
    let (mut ws, _) = silverback::connect(&format!("{base}/getCaseCount")).await?;
    let mut count = 0;
    while let Some(msg) = ws.next().await {
        if let Message::Text(text) = msg? {
            count = text.parse().unwrap_or(0);
        }
    }
    Ok(count)
}

async fn run_case(base: &str, agent: &str, case: u32) -> Result<(), Error> {
    let url = format!("{base}/runCase?case={case}&agent={agent}");
    let config = Config::default().limits(Limits::default().max_message_size(64 << 20));
    let connector = silverback::Connector::new().config(config).deflate(DeflateConfig::default());
    let (mut ws, _) = connector.connect(&url).await?;
    while let Some(msg) = ws.next().await {
        let msg = msg?;
        if msg.is_text() || msg.is_binary() {
            ws.send(msg).await?;
        }
    }
    Ok(())
}
