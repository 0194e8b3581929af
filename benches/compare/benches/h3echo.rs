//! HTTP/3 echo benchmark (RFC 9220): 10 WebSockets on one QUIC connection,
//! echoed by silverback (`Upgrader::accept_h3`) and sockudo-ws 3.1
//! (`WebSocketServer::<Http3>`, on the h3 crate), the only Rust peer with
//! WebSockets over HTTP/3. Both servers get the same quinn endpoint
//! configuration and rustls (ring) with ALPN h3.
//!
//! `cargo bench -p silverback-compare --bench h3echo`. It prints two tables:
//!
//! - Interop: one WebSocket from each library's client to each server.
//!   RFC 9220 requests carry `:protocol = websocket`; sockudo-ws's client
//!   sends `webtransport` instead (its h3 0.0.8 accepts no other value), and
//!   its server maps `webtransport` to a WebSocket.
//! - Echo: as the two cannot talk to each other, each library drives its
//!   own server with its own client ("each library at both ends"), so a
//!   cell measures a client and a server, not a server alone. Each of the 10
//!   WebSockets keeps one message in flight; the pairs take turns round by
//!   round. Servers run on a single-threaded runtime on a thread pinned to
//!   core 0, the load on one pinned to core 1 (when there are two cores).
//!
//! A cell is the median of its rounds; `SB_BENCH_SECS` (default 6),
//! `SB_BENCH_ROUNDS` (default 6) and `SB_BENCH_WARMUP` as for the echo
//! bench. Without `--bench` (as `cargo test --benches` runs it) it does a
//! short smoke run.

mod common;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{Row, Timing};
use futures_util::{Sink, SinkExt, Stream, StreamExt, TryStreamExt};
use silverback::http3::quinn;
use silverback::rustls::ClientConfig;
use silverback::{Connector, Message, Upgrader};

/// WebSockets on the one QUIC connection.
const STREAMS: usize = 10;

/// The libraries compared, as server and as client.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    SockudoWs,
    Silverback,
}

impl Kind {
    const ALL: [Kind; 2] = [Kind::SockudoWs, Kind::Silverback];

    fn name(self) -> &'static str {
        match self {
            Kind::SockudoWs => "sockudo-ws",
            Kind::Silverback => "silverback",
        }
    }
}

const ROWS: [Row; 2] = [
    Row { label: "10 WebSockets on one QUIC conn × 20 B binary (msgs/s)", size: 20, mb_per_sec: false },
    Row { label: "10 WebSockets on one QUIC conn × 16 KiB binary (MB/s)", size: 16 * 1024, mb_per_sec: true },
];

// ---------------------------------------------------------------- TLS, QUIC

/// The servers' QUIC configuration (ALPN h3, quinn's default transport)
/// and a client TLS configuration trusting its certificate (ALPN h3, which
/// sockudo-ws's client does not set itself).
fn tls() -> (quinn::ServerConfig, ClientConfig) {
    let (server, client) = common::localhost_tls(b"h3", true);
    let crypto = quinn::crypto::rustls::QuicServerConfig::try_from(server).expect("QUIC server config");
    (quinn::ServerConfig::with_crypto(Arc::new(crypto)), client)
}

// ---------------------------------------------------------------- servers

/// Starts `kind`'s server on a thread of its own (pinned to `core`); its
/// UDP address.
fn start_server(kind: Kind, config: quinn::ServerConfig, core: Option<core_affinity::CoreId>) -> SocketAddr {
    common::start_server(core, move |tx| async move {
        let endpoint = quinn::Endpoint::server(config, "127.0.0.1:0".parse().unwrap()).expect("bind");
        tx.send(endpoint.local_addr().expect("addr")).expect("report the address");
        match kind {
            Kind::Silverback => serve_silverback(endpoint).await,
            Kind::SockudoWs => {
                let server = sockudo_ws::WebSocketServer::<sockudo_ws::Http3>::from_endpoint(
                    endpoint,
                    sockudo_ws::Config::default(),
                );
                if let Err(e) = server.serve(|ws, _| sockudo_echo(ws)).await {
                    eprintln!("sockudo-ws: {e}");
                }
            }
        }
    })
}

async fn serve_silverback(endpoint: quinn::Endpoint) {
    let upgrader = Upgrader::new();
    while let Some(incoming) = endpoint.accept().await {
        let upgrader = upgrader.clone();
        tokio::spawn(async move {
            let Ok(quic) = incoming.await else { return };
            let Ok(mut acceptor) = upgrader.accept_h3(quic).await else { return };
            while let Some(accepted) = acceptor.accept().await {
                let Ok((ws, _)) = accepted else { continue };
                tokio::spawn(async move {
                    let (read, write) = ws.split();
                    let _ = read.try_filter(|m| std::future::ready(m.is_binary())).forward(write).await;
                });
            }
        });
    }
}

async fn sockudo_echo<W>(mut ws: W)
where
    W: Stream<Item = sockudo_ws::Result<sockudo_ws::Message>> + Sink<sockudo_ws::Message> + Unpin,
{
    while let Some(Ok(msg)) = ws.next().await {
        let echo = match msg {
            msg @ sockudo_ws::Message::Binary(_) => ws.send(msg).await.is_ok(),
            sockudo_ws::Message::Close(_) => return,
            _ => true,
        };
        if !echo {
            return;
        }
    }
}

// ---------------------------------------------------------------- clients

/// Fails after 5 s instead of hanging.
async fn bounded<T>(fut: impl Future<Output = Result<T, String>>) -> Result<T, String> {
    tokio::time::timeout(Duration::from_secs(5), fut).await.unwrap_or_else(|_| Err("timed out".into()))
}

/// `err` with its sources, `: `-separated.
fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(err) = source {
        text.push_str(&format!(": {err}"));
        source = err.source();
    }
    text
}

/// One QUIC connection to `addr` from silverback's client, with `count`
/// WebSockets on it.
async fn silverback_open(addr: SocketAddr, tls: &ClientConfig, count: usize) -> Result<Vec<SilverbackWs>, String> {
    let connector = Connector::new().tls_config(Arc::new(tls.clone()));
    let h3 = connector.http3_connect(&format!("wss://localhost:{}", addr.port())).await.map_err(|e| chain(&e))?;
    let mut streams = Vec::new();
    for n in 0..count {
        streams.push(h3.open(&format!("/ws{n}")).await.map_err(|e| chain(&e))?.0);
    }
    Ok(streams)
}

/// One QUIC connection to `addr` from sockudo-ws's client, with `count`
/// WebSockets on it.
async fn sockudo_open(addr: SocketAddr, tls: &ClientConfig, count: usize) -> Result<Vec<SockudoWs>, String> {
    let client = sockudo_ws::WebSocketClient::<sockudo_ws::Http3>::new(sockudo_ws::Config::default());
    let mut conn = client.connect_multiplexed(addr, "localhost", tls.clone()).await.map_err(|e| chain(&e))?;
    let mut streams = Vec::new();
    for n in 0..count {
        streams.push(conn.open_websocket(&format!("/ws{n}"), None).await.map_err(|e| chain(&e))?);
    }
    // The connection lives as long as its streams hold it.
    Ok(streams)
}

type SilverbackWs = silverback::http3::H3WebSocket;
type SockudoWs = sockudo_ws::WebSocketStream<sockudo_ws::Stream<sockudo_ws::Http3>>;

/// A message of either library, for [`round`].
trait EchoMessage: Sized {
    fn binary(payload: Bytes) -> Self;
    /// The payload's length if this is a binary message.
    fn binary_len(&self) -> Option<usize>;
}

impl EchoMessage for Message {
    fn binary(payload: Bytes) -> Self {
        Message::binary(payload)
    }
    fn binary_len(&self) -> Option<usize> {
        self.is_binary().then(|| self.len())
    }
}

impl EchoMessage for sockudo_ws::Message {
    fn binary(payload: Bytes) -> Self {
        sockudo_ws::Message::Binary(payload)
    }
    fn binary_len(&self) -> Option<usize> {
        match self {
            sockudo_ws::Message::Binary(payload) => Some(payload.len()),
            _ => None,
        }
    }
}

/// One round: every WebSocket keeps one `size`-byte message in flight for
/// `warmup` and then `secs` seconds; messages echoed per second. The
/// WebSockets run as futures of one task (neither library's stream needs
/// to be `Send` for that).
async fn round<W, M, E>(streams: &mut [W], size: usize, secs: f64, warmup: f64) -> f64
where
    W: Stream<Item = Result<M, E>> + Sink<M> + Unpin,
    <W as Sink<M>>::Error: std::fmt::Debug,
    M: EchoMessage,
    E: std::fmt::Debug,
{
    let payload = Bytes::from(vec![0x5a; size]);
    let warm_end = Instant::now() + Duration::from_secs_f64(warmup);
    let end = warm_end + Duration::from_secs_f64(secs);
    let each = streams.iter_mut().map(|ws| {
        let payload = payload.clone();
        async move {
            let mut counted = 0u64;
            while Instant::now() < end {
                let counts = Instant::now() >= warm_end;
                ws.send(M::binary(payload.clone())).await.expect("send");
                match ws.next().await {
                    Some(Ok(msg)) if msg.binary_len() == Some(payload.len()) => {}
                    Some(Ok(_)) => panic!("bad echo"),
                    other => panic!("bad echo: {:?}", other.map(|r| r.err())),
                }
                counted += u64::from(counts);
            }
            counted
        }
    });
    let total: u64 = futures_util::future::join_all(each).await.into_iter().sum();
    total as f64 / secs
}

/// The WebSockets of one library at both ends.
enum Pair {
    SockudoWs(Vec<SockudoWs>),
    Silverback(Vec<SilverbackWs>),
}

impl Pair {
    async fn open(kind: Kind, addr: SocketAddr, tls: &ClientConfig) -> Pair {
        let opened = match kind {
            Kind::SockudoWs => sockudo_open(addr, tls, STREAMS).await.map(Pair::SockudoWs),
            Kind::Silverback => silverback_open(addr, tls, STREAMS).await.map(Pair::Silverback),
        };
        opened.unwrap_or_else(|e| panic!("{} at both ends: {e}", kind.name()))
    }

    async fn round(&mut self, size: usize, secs: f64, warmup: f64) -> f64 {
        match self {
            Pair::SockudoWs(streams) => round(streams, size, secs, warmup).await,
            Pair::Silverback(streams) => round(streams, size, secs, warmup).await,
        }
    }

    async fn close(self) {
        match self {
            Pair::SockudoWs(streams) => {
                for mut ws in streams {
                    let _ = ws.close(1000, "").await;
                }
            }
            Pair::Silverback(streams) => {
                for mut ws in streams {
                    let _ = ws.close(None).await;
                }
            }
        }
    }
}

// ---------------------------------------------------------------- main

/// Whether `client`'s client opens one WebSocket on `server`'s server, and
/// echoes a message on it: `ok`, or why not.
async fn interop(client: Kind, addr: SocketAddr, tls: &ClientConfig) -> String {
    let outcome = match client {
        Kind::Silverback => {
            bounded(async {
                let mut streams = silverback_open(addr, tls, 1).await?;
                round(&mut streams, 20, 0.05, 0.0).await;
                Ok(())
            })
            .await
        }
        Kind::SockudoWs => {
            bounded(async {
                let mut streams = sockudo_open(addr, tls, 1).await?;
                round(&mut streams, 20, 0.05, 0.0).await;
                Ok(())
            })
            .await
        }
    };
    match outcome {
        Ok(()) => "ok".into(),
        Err(e) => format!("fails: {}", e.replace('|', "/")),
    }
}

fn main() {
    let Timing { secs, rounds, warmup } = Timing::from_env();
    let server_core = common::pin_load_answer_server_core();
    let (server_config, client_tls) = tls();
    let addrs: Vec<SocketAddr> =
        Kind::ALL.iter().map(|k| start_server(*k, server_config.clone(), server_core)).collect();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");

    let names: Vec<&str> = Kind::ALL.iter().map(|k| k.name()).collect();
    let mut interop_table = format!("| client ↓ / server → | {} |\n|---|", names.join(" | "));
    interop_table.push_str(&"---|".repeat(names.len()));
    interop_table.push('\n');
    for client in Kind::ALL {
        let cells: Vec<String> =
            addrs.iter().map(|addr| runtime.block_on(interop(client, *addr, &client_tls))).collect();
        interop_table.push_str(&format!("| {} | {} |\n", client.name(), cells.join(" | ")));
    }
    println!("{interop_table}");

    let mut table =
        format!("| scenario (each library at both ends) | {} | silverback / sockudo-ws |\n|---|", names.join(" | "));
    table.push_str(&"--:|".repeat(names.len() + 1));
    table.push('\n');
    for row in &ROWS {
        // The pairs take turns, round by round, so that a change in the
        // machine's load (it may be shared) hits them alike.
        let mut pairs: Vec<Pair> = Kind::ALL
            .iter()
            .zip(&addrs)
            .map(|(k, addr)| runtime.block_on(Pair::open(*k, *addr, &client_tls)))
            .collect();
        let mut rates = vec![Vec::new(); Kind::ALL.len()];
        for n in 0..rounds {
            eprintln!("{}: round {} of {rounds}", row.label, n + 1);
            for (pair, rates) in pairs.iter_mut().zip(&mut rates) {
                rates.push(runtime.block_on(pair.round(row.size, secs, warmup)));
            }
        }
        for pair in pairs {
            runtime.block_on(pair.close());
        }
        let (cells, shown): (Vec<f64>, Vec<String>) = rates.into_iter().map(|r| row.cell(r)).unzip();
        table.push_str(&format!("| {} | {} | {:.2}× |\n", row.label, shown.join(" | "), cells[1] / cells[0]));
    }
    println!("{table}");
}
