//! HTTP/2 echo benchmark (RFC 8441): 10 WebSockets on one TLS HTTP/2
//! connection, echoed by silverback (`Upgrader::upgrade_hyper` on hyper's
//! HTTP/2 server), yawc (`WebSocket::upgrade_with_options` on the same
//! hyper server) and sockudo-ws (`WebSocketServer::<Http2>::serve`, its own
//! h2 server), all with extended CONNECT enabled and rustls (ring) with
//! ALPN h2.
//!
//! `cargo bench -p silverback-compare --bench h2echo`. The load comes from
//! silverback's client (`Connector::http2_connect` + `open`), the same for
//! every server: each of the 10 WebSockets keeps one message in flight; the
//! servers take turns round by round. Each
//! server runs on a single-threaded runtime on a thread pinned to core 0,
//! the load generator on one pinned to core 1 (when there are two cores).
//! A cell is the median of its rounds; `SB_BENCH_SECS` (default 6) and
//! `SB_BENCH_ROUNDS` (default 6) as for the echo bench. The Markdown table
//! goes to stdout. Without `--bench` (as `cargo test --benches` runs it) it
//! does a short smoke run.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Row, Timing};
use futures_util::{SinkExt, StreamExt, TryStreamExt};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use silverback::rustls::ClientConfig;
use silverback::tokio_rustls::TlsAcceptor;
use silverback::{Connector, Message, Upgrader};
use tokio::net::{TcpListener, TcpStream};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// WebSockets on the one HTTP/2 connection.
const STREAMS: usize = 10;

/// The servers compared.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Yawc,
    SockudoWs,
    Silverback,
}

impl Kind {
    const ALL: [Kind; 3] = [Kind::Yawc, Kind::SockudoWs, Kind::Silverback];

    fn name(self) -> &'static str {
        match self {
            Kind::Yawc => "yawc",
            Kind::SockudoWs => "sockudo-ws",
            Kind::Silverback => "silverback",
        }
    }
}

const ROWS: [Row; 2] = [
    Row { label: "10 WebSockets on one TLS HTTP/2 conn × 20 B binary (msgs/s)", size: 20, mb_per_sec: false },
    Row { label: "10 WebSockets on one TLS HTTP/2 conn × 16 KiB binary (MB/s)", size: 16 * 1024, mb_per_sec: true },
];

// ---------------------------------------------------------------- TLS

/// The server's TLS acceptor (ALPN h2) and a client configuration trusting
/// its certificate.
fn tls() -> (TlsAcceptor, Arc<ClientConfig>) {
    let (server, client) = common::localhost_tls(b"h2", false);
    (TlsAcceptor::from(Arc::new(server)), Arc::new(client))
}

// ---------------------------------------------------------------- servers

/// Starts `kind` on a thread of its own (pinned to `core`); its address.
fn start_server(kind: Kind, acceptor: TlsAcceptor, core: Option<core_affinity::CoreId>) -> SocketAddr {
    common::start_server(core, move |tx| async move {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        tx.send(listener.local_addr().expect("addr")).expect("report the address");
        let upgrader = Arc::new(Upgrader::new());
        loop {
            let Ok((tcp, _)) = listener.accept().await else { continue };
            let (acceptor, upgrader) = (acceptor.clone(), upgrader.clone());
            tokio::spawn(async move {
                if let Err(e) = serve(kind, acceptor, upgrader, tcp).await {
                    eprintln!("{}: {e}", kind.name());
                }
            });
        }
    })
}

/// One TLS HTTP/2 connection to `kind`.
async fn serve(kind: Kind, acceptor: TlsAcceptor, upgrader: Arc<Upgrader>, tcp: TcpStream) -> Result<(), BoxError> {
    tcp.set_nodelay(true)?;
    let tls = acceptor.accept(tcp).await?;
    if let Kind::SockudoWs = kind {
        let server = sockudo_ws::WebSocketServer::<sockudo_ws::Http2>::new(sockudo_ws::Config::default());
        return Ok(server.serve(tls, |ws, _| sockudo_echo(ws)).await?);
    }
    let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        let upgrader = upgrader.clone();
        async move {
            let response = match kind {
                Kind::Silverback => match upgrader.upgrade_hyper(&mut req) {
                    Ok((response, upgrade)) => {
                        tokio::spawn(async move {
                            let Ok(ws) = upgrade.await else { return };
                            let (read, write) = ws.split();
                            let _ = read.try_filter(|m| std::future::ready(m.is_binary())).forward(write).await;
                        });
                        response
                    }
                    Err(refusal) => refusal.into_response(),
                },
                Kind::Yawc => {
                    let (response, upgrade) =
                        yawc::WebSocket::upgrade_with_options(&mut req, yawc::Options::default().with_utf8())?;
                    tokio::spawn(yawc_echo(upgrade));
                    response.map(|_| String::new())
                }
                Kind::SockudoWs => unreachable!("served by its own HTTP/2 server"),
            };
            Ok::<_, yawc::WebSocketError>(response)
        }
    });
    let mut builder = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
    builder.enable_connect_protocol();
    builder.serve_connection(TokioIo::new(tls), service).await?;
    Ok(())
}

async fn yawc_echo(upgrade: yawc::UpgradeFut) {
    let Ok(mut ws) = upgrade.await else { return };
    while let Some(frame) = ws.next().await {
        if matches!(frame.opcode(), yawc::frame::OpCode::Binary) && ws.send(frame).await.is_err() {
            return;
        }
    }
}

async fn sockudo_echo<W>(mut ws: W)
where
    W: futures_util::Stream<Item = sockudo_ws::Result<sockudo_ws::Message>>
        + futures_util::Sink<sockudo_ws::Message, Error = sockudo_ws::Error>
        + Unpin,
{
    while let Some(Ok(msg)) = ws.next().await {
        let echo = match msg {
            msg @ sockudo_ws::Message::Binary(_) => ws.send(msg).await,
            sockudo_ws::Message::Close(_) => return,
            _ => Ok(()),
        };
        if echo.is_err() {
            return;
        }
    }
}

// ---------------------------------------------------------------- load

/// The WebSockets a row drives on one server.
type Streams = Vec<silverback::WebSocketStream<silverback::http2::Http2Io>>;

/// One HTTP/2 connection to the server at `addr` and [`STREAMS`]
/// WebSockets on it.
async fn open(addr: SocketAddr, tls: Arc<ClientConfig>) -> Streams {
    let connector = Connector::new().no_proxy().tls_config(tls);
    let h2 = connector.http2_connect(&format!("wss://localhost:{}", addr.port())).await.expect("HTTP/2 connect");
    assert!(h2.is_http2(), "the server did not take WebSockets over HTTP/2");
    let mut streams = Vec::new();
    for n in 0..STREAMS {
        streams.push(h2.open(&format!("/ws{n}")).await.expect("open").0);
    }
    streams
}

/// One round: every WebSocket keeps one `size`-byte message in flight for
/// `warmup` and then `secs` seconds; messages echoed per second.
async fn round(streams: &mut Streams, size: usize, secs: f64, warmup: f64) -> f64 {
    let payload = bytes::Bytes::from(vec![0x5a; size]);
    let warm_end = Instant::now() + Duration::from_secs_f64(warmup);
    let end = warm_end + Duration::from_secs_f64(secs);
    let tasks: Vec<_> = streams
        .drain(..)
        .map(|mut ws| {
            let payload = payload.clone();
            tokio::spawn(async move {
                let mut counted = 0u64;
                while Instant::now() < end {
                    let counts = Instant::now() >= warm_end;
                    ws.send(Message::binary(payload.clone())).await.expect("send");
                    match ws.next().await {
                        Some(Ok(msg)) if msg.len() == payload.len() => {}
                        other => panic!("bad echo: {other:?}"),
                    }
                    counted += u64::from(counts);
                }
                (ws, counted)
            })
        })
        .collect();
    let mut total = 0;
    for task in tasks {
        let (ws, counted) = task.await.expect("load task");
        streams.push(ws);
        total += counted;
    }
    total as f64 / secs
}

fn main() {
    let Timing { secs, rounds, warmup } = Timing::from_env();
    let server_core = common::pin_load_answer_server_core();
    let (acceptor, client_tls) = tls();
    let addrs: Vec<SocketAddr> = Kind::ALL.iter().map(|k| start_server(*k, acceptor.clone(), server_core)).collect();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");

    let names: Vec<&str> = Kind::ALL.iter().map(|k| k.name()).collect();
    let mut table = format!("| scenario | {} | silverback / best peer |\n|---|", names.join(" | "));
    table.push_str(&"--:|".repeat(names.len() + 1));
    table.push('\n');
    for row in &ROWS {
        // The servers take turns, round by round, so that a change in the
        // machine's load (it may be shared) hits them alike.
        let mut streams: Vec<Streams> =
            addrs.iter().map(|addr| runtime.block_on(open(*addr, client_tls.clone()))).collect();
        let mut rates = vec![Vec::new(); Kind::ALL.len()];
        for n in 0..rounds {
            eprintln!("{}: round {} of {rounds}", row.label, n + 1);
            for (streams, rates) in streams.iter_mut().zip(&mut rates) {
                rates.push(runtime.block_on(round(streams, row.size, secs, warmup)));
            }
        }
        for streams in streams {
            for mut ws in streams {
                let _ = runtime.block_on(ws.close(None));
            }
        }
        let (cells, shown): (Vec<f64>, Vec<String>) = rates.into_iter().map(|r| row.cell(r)).unzip();
        let ours = cells[cells.len() - 1];
        let best_peer = cells[..cells.len() - 1].iter().copied().fold(0.0, f64::max);
        table.push_str(&format!("| {} | {} | {:.2}× |\n", row.label, shown.join(" | "), ours / best_peer));
    }
    println!("{table}");
}
