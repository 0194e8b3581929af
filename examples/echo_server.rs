//! Echo server: `cargo run --release --example echo_server -- 127.0.0.1:9001 [--deflate-low-memory]`
//!
//! With `--deflate-low-memory` compression uses [`DeflateConfig::low_memory`]
//! (no context takeover either way) instead of the defaults.
//!
//! Accepts any origin, echoes every text and binary message as received and
//! answers close frames. The Autobahn `fuzzingclient` tests silverback's
//! server side against it.
//!
//! On SIGTERM or Ctrl-C (SIGINT) it stops accepting, closes every
//! connection with 1001 Going Away (a [`Shutdown`]), and exits with status
//! 0 once their closing handshakes are done, which the close timeout
//! bounds.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{future, StreamExt, TryStreamExt};
use silverback::{Config, DeflateConfig, Error, Shutdown, Upgrader};
use tokio::net::{TcpListener, TcpStream};

#[path = "common/stop.rs"]
mod stop;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:9001".to_owned());
    let deflate = if std::env::args().skip(2).any(|arg| arg == "--deflate-low-memory") {
        DeflateConfig::low_memory()
    } else {
        DeflateConfig::default()
    };
    // Installed before anything else, so that a signal is never missed.
    let mut stop = stop::StopSignals::new()?;
    let listener = TcpListener::bind(&addr).await?;
    println!("echo server listening on ws://{}", listener.local_addr()?);
    let shutdown = Shutdown::new();
    // Shared, not cloned: each connection's task then holds a pointer
    // rather than a copy of the settings.
    // Compression is accepted when a client offers it (RFC 7692).
    let upgrader = Arc::new(Upgrader::new().allow_any_origin().deflate(deflate).shutdown(&shutdown));
    loop {
        let tcp = tokio::select! {
            accepted = listener.accept() => accepted?.0,
            () = stop.recv() => break,
        };
        let upgrader = upgrader.clone();
        tokio::spawn(async move {
            if let Err(e) = serve(&upgrader, tcp).await {
                eprintln!("connection ended with error: {e}: {:?}", std::error::Error::source(&e));
            }
        });
    }
    drop(listener);
    eprintln!("draining {} connections", shutdown.connections());
    shutdown.trigger();
    // Every reader gives its peer the close timeout to answer our close;
    // the margin covers handshakes that were in flight at the signal.
    let bound = Config::DEFAULT_CLOSE_TIMEOUT + Duration::from_secs(1);
    if tokio::time::timeout(bound, shutdown.drained()).await.is_err() {
        eprintln!("{} connections did not close in time", shutdown.connections());
    }
    Ok(())
}

async fn serve(upgrader: &Upgrader, tcp: TcpStream) -> Result<(), Error> {
    tcp.set_nodelay(true)?;
    let (read, write) = upgrader.accept(tcp).await?.split();
    // `forward` queues each message and flushes only when no more input is
    // ready, so pipelined messages leave in one write. Pings are answered
    // and close frames echoed by the stream itself; on shutdown the reader
    // sends 1001 and the stream ends with the peer's answer.
    read.try_filter(|msg| future::ready(msg.is_text() || msg.is_binary())).forward(write).await
}
