//! Echo server: `cargo run --release --example echo_server -- 127.0.0.1:9001`
//!
//! Accepts any origin, echoes every text and binary message as received and
//! answers close frames; runs until killed. The Autobahn `fuzzingclient`
//! tests silverback's server side against it.

use std::sync::Arc;

use futures_util::{future, StreamExt, TryStreamExt};
use silverback::{DeflateConfig, Error, Upgrader};
use tokio::net::{TcpListener, TcpStream};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:9001".to_owned());
    let listener = TcpListener::bind(&addr).await?;
    println!("echo server listening on ws://{}", listener.local_addr()?);
    // Shared, not cloned: each connection's task then holds a pointer
    // rather than a copy of the settings.
    // Compression is accepted when a client offers it (RFC 7692).
    let upgrader = Arc::new(Upgrader::new().allow_any_origin().deflate(DeflateConfig::default()));
    loop {
        let (tcp, _) = listener.accept().await?;
        let upgrader = upgrader.clone();
        tokio::spawn(async move {
            if let Err(e) = serve(&upgrader, tcp).await {
                eprintln!("connection ended with error: {e}: {:?}", std::error::Error::source(&e));
            }
        });
    }
}

async fn serve(upgrader: &Upgrader, tcp: TcpStream) -> Result<(), Error> {
    tcp.set_nodelay(true)?;
    let (read, write) = upgrader.accept(tcp).await?.split();
    // `forward` queues each message and flushes only when no more input is
    // ready, so pipelined messages leave in one write. Pings are answered
    // and close frames echoed by the stream itself.
    read.try_filter(|msg| future::ready(msg.is_text() || msg.is_binary())).forward(write).await
}
