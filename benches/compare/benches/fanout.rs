//! The fan-out benchmark: one server process broadcasting to thousands of
//! loopback WebSocket connections, silverback's `Topic` next to a raw TCP
//! fan-out (the limit) and the peer crates driven through a
//! `tokio::sync::broadcast` channel, then compressed fan-out (compress once
//! versus per connection). See PERFORMANCE.md, "Fan-out".
//!
//! `cargo bench -p silverback-compare --bench fanout` runs it; without
//! `--bench` (as `cargo test --benches` runs it) it does a short smoke run.

#[path = "fanout/chat.rs"]
mod chat;
#[path = "echo/deflate.rs"]
#[allow(dead_code)] // The echo bench uses the rest; here only the JSON texts and the extension parser.
mod deflate;
#[path = "echo/fmt.rs"]
mod fmt;
#[path = "echo/host.rs"]
mod host;
#[path = "fanout/loadgen.rs"]
mod loadgen;
#[path = "fanout/report.rs"]
mod report;
#[path = "fanout/servers.rs"]
mod servers;
#[path = "fanout/sys.rs"]
mod sys;
#[path = "echo/upgrades.rs"]
mod upgrades;
#[path = "echo/wire.rs"]
#[allow(dead_code)] // Shared with the echo bench, which uses all of it.
mod wire;

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use report::{Cell, Row};
use servers::{Kind, Setup};

const ROWS: [Row; 3] = [
    Row { key: "64", label: "64 B text messages", size: 64, compressed: false },
    Row { key: "16k", label: "16 KiB text messages", size: 16 * 1024, compressed: false },
    Row {
        key: "deflate",
        label: "16 KiB JSON-like text, permessage-deflate (server_no_context_takeover)",
        size: 16 * 1024,
        compressed: true,
    },
];

/// Run settings, from the command line and the environment.
#[derive(Debug)]
struct Settings {
    full: bool,
    conns: usize,
    rounds: usize,
    warmup: Duration,
    /// Measured window of one round.
    measure: Duration,
    /// Bound on the whole run: cells not started by then are skipped.
    max_total: Duration,
    capacity: usize,
    kinds: Vec<Kind>,
    rows: Vec<Row>,
}

impl Settings {
    fn from_env(args: &[String]) -> Settings {
        let full = args.iter().any(|a| a == "--bench");
        let env_f64 = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<f64>().ok());
        let env_usize = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<usize>().ok());
        let rounds = env_usize("SB_FANOUT_ROUNDS").unwrap_or(if full { 2 } else { 1 }).max(1);
        let secs = env_f64("SB_FANOUT_SECS").unwrap_or(if full { 6.0 } else { 0.3 });
        let kinds = match std::env::var("SB_FANOUT_ONLY") {
            Ok(only) => Kind::ALL
                .into_iter()
                .filter(|k| only.split(',').any(|f| !f.trim().is_empty() && k.name().starts_with(f.trim())))
                .collect(),
            Err(_) => Kind::ALL.to_vec(),
        };
        let rows = match std::env::var("SB_FANOUT_ROWS") {
            Ok(keys) => ROWS.into_iter().filter(|r| keys.split(',').any(|k| k.trim() == r.key)).collect(),
            Err(_) => ROWS.to_vec(),
        };
        Settings {
            full,
            conns: env_usize("SB_FANOUT_CONNS").unwrap_or(if full { 10_000 } else { 50 }).max(1),
            rounds,
            warmup: Duration::from_secs_f64(env_f64("SB_FANOUT_WARMUP").unwrap_or(if full { 0.5 } else { 0.1 })),
            measure: Duration::from_secs_f64(secs / rounds as f64),
            max_total: Duration::from_secs_f64(env_f64("SB_FANOUT_MAX_SECS").unwrap_or(if full {
                900.0
            } else {
                60.0
            })),
            capacity: env_usize("SB_FANOUT_CAPACITY").unwrap_or(16).max(1),
            kinds,
            rows,
        }
    }
}

/// A running server child; killed on drop.
struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Server {
    fn spawn(kind: Kind, row: Row, settings: &Settings, core: Option<usize>) -> std::io::Result<Server> {
        let mut cmd = Command::new(std::env::current_exe()?);
        cmd.env("SB_FANOUT_SERVER", kind.name())
            .env("SB_FANOUT_SIZE", row.size.to_string())
            .env("SB_FANOUT_JSON", if row.compressed { "1" } else { "0" })
            .env("SB_FANOUT_CAPACITY", settings.capacity.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if let Some(core) = core {
            cmd.env("SB_FANOUT_CORE", core.to_string());
        }
        let mut child = cmd.spawn()?;
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("piped stdout")).read_line(&mut line)?;
        match line.trim().parse::<u16>() {
            Ok(port) => Ok(Server { child, addr: SocketAddr::from(([127, 0, 0, 1], port)) }),
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                Err(std::io::Error::other(format!("{} server did not start", kind.name())))
            }
        }
    }

    /// Tells the server that `n` connections are open: start publishing.
    fn go(&mut self, n: usize) {
        if let Some(stdin) = self.child.stdin.as_mut() {
            let _ = writeln!(stdin, "go {n}");
            let _ = stdin.flush();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn main() {
    if let Ok(name) = std::env::var("SB_FANOUT_SERVER") {
        let kind = Kind::from_name(&name).unwrap_or_else(|| panic!("unknown SB_FANOUT_SERVER {name:?}"));
        let var = |n: &str| std::env::var(n).ok().and_then(|v| v.parse::<usize>().ok());
        let setup = Setup {
            size: var("SB_FANOUT_SIZE").unwrap_or(64).max(16),
            json: var("SB_FANOUT_JSON") == Some(1),
            capacity: var("SB_FANOUT_CAPACITY").unwrap_or(16),
        };
        servers::run(kind, setup, var("SB_FANOUT_CORE").map(|id| core_affinity::CoreId { id }));
    }
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--list") {
        return; // `cargo test --list`: nothing to list.
    }
    wire::self_check();
    loadgen::self_check();
    let mut settings = Settings::from_env(&args);
    if settings.kinds.is_empty() || settings.rows.is_empty() {
        eprintln!("SB_FANOUT_ONLY or SB_FANOUT_ROWS selects nothing");
        std::process::exit(2);
    }
    let nofile = sys::raise_nofile();
    let max_conns = (nofile as usize).saturating_sub(100);
    if settings.conns > max_conns {
        eprintln!("RLIMIT_NOFILE is {nofile}: {} connections instead of {}", max_conns, settings.conns);
        settings.conns = max_conns;
    }
    if let Ok(addrs) = std::env::var("SB_FANOUT_CHAT") {
        chat_mode(&addrs, &settings);
        return;
    }
    let pinning = host::pinning();
    // Before pinning: the core count is read from our affinity mask.
    let preamble = preamble(&settings, pinning.is_some());
    if let Some((_, client)) = pinning {
        core_affinity::set_for_current(client);
    }
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let cells = rt.block_on(run_all(&settings, pinning.map(|(s, c)| (s.id, c.id))));
    let report = report::render(&settings.rows, &cells, &preamble);
    println!("\n{report}");
    if settings.full {
        let dir = std::env::var("CARGO_TARGET_DIR")
            .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../../target").to_owned());
        let path = std::path::Path::new(&dir).join("fanout-bench.md");
        match std::fs::write(&path, &report) {
            Ok(()) => eprintln!("written to {}", path.display()),
            Err(e) => eprintln!("could not write {}: {e}", path.display()),
        }
    }
}

/// `SB_FANOUT_CHAT=ADDR,...`: one round against running chat processes
/// (see `fanout/chat.rs` and `benches/redis/run.sh`); prints one Markdown
/// table row labelled `SB_FANOUT_CHAT_LABEL`. `SB_FANOUT_CHAT_PIDS` lists
/// the processes whose CPU time counts as the server's.
fn chat_mode(addrs: &str, settings: &Settings) {
    let parse = |list: &str| -> Vec<String> {
        list.split(',').map(str::trim).filter(|a| !a.is_empty()).map(str::to_owned).collect()
    };
    let addrs: Vec<SocketAddr> =
        parse(addrs).iter().map(|a| a.parse().unwrap_or_else(|e| panic!("SB_FANOUT_CHAT: {a:?}: {e}"))).collect();
    assert!(!addrs.is_empty(), "SB_FANOUT_CHAT names no address");
    let pids: Vec<u32> = parse(&std::env::var("SB_FANOUT_CHAT_PIDS").unwrap_or_default())
        .iter()
        .filter_map(|p| p.parse().ok())
        .collect();
    let label = std::env::var("SB_FANOUT_CHAT_LABEL").unwrap_or_else(|_| format!("{} chat process(es)", addrs.len()));
    let plan = loadgen::Plan {
        conns: settings.conns,
        compressed: false,
        warmup: settings.warmup,
        measure: settings.measure * settings.rounds as u32,
        loadgen_core: None,
    };
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let r = rt.block_on(chat::round(&addrs, &pids, plan));
    let ms = |q: f64| loadgen::quantile(&r.latency, q).map_or_else(|| "–".to_owned(), |v| format!("{:.1}", v / 1e3));
    let us = r.server_us_per_msg.map_or_else(|| "–".to_owned(), |v| format!("{v:.2}"));
    if !r.errors.is_empty() || r.failed > 0 {
        eprintln!("{label}: {} connections failed; errors {:?}", r.failed, r.errors);
    }
    println!(
        "| {label} | {} | {} | {:.0} | {} | {} | {us} | {} / {} |",
        r.opened,
        addrs.len(),
        r.rate,
        ms(0.5),
        ms(0.99),
        r.ended_early,
        r.stalled
    );
}

/// Runs every selected row, in rounds that go round-robin over the servers
/// (each round starting one server further on), each round on a fresh
/// server process; a cell is the combination of its rounds.
async fn run_all(settings: &Settings, cores: Option<(usize, usize)>) -> Vec<Vec<(Kind, Option<Cell>)>> {
    let started = Instant::now();
    let mut all = Vec::new();
    for &row in &settings.rows {
        let kinds: Vec<Kind> = settings.kinds.iter().copied().filter(|&k| row.applies(k)).collect();
        let mut rounds: Vec<Vec<loadgen::Round>> = kinds.iter().map(|_| Vec::new()).collect();
        for round in 0..settings.rounds {
            for k in 0..kinds.len() {
                if started.elapsed() > settings.max_total {
                    break;
                }
                let at = (round + k) % kinds.len();
                let kind = kinds[at];
                let mut server = match Server::spawn(kind, row, settings, cores.map(|c| c.0)) {
                    Ok(s) => s,
                    Err(e) => {
                        eprintln!("{}: {e}", kind.name());
                        continue;
                    }
                };
                let (addr, pid) = (server.addr, server.child.id());
                let plan = loadgen::Plan {
                    conns: settings.conns,
                    compressed: row.compressed,
                    warmup: settings.warmup,
                    measure: settings.measure,
                    loadgen_core: cores.map(|c| c.1),
                };
                let target = loadgen::Target { addrs: &[addr], request: None, pids: &[pid] };
                let r = loadgen::round(target, |n| server.go(n), plan).await;
                eprintln!(
                    "{:<22} {:<28} {:>12.0} msgs/s  {:>8} µs/msg  p50 {:>8} ms  p99 {:>8} ms  ended {} stalled {} failed {}{}",
                    kind.name(),
                    row.label.chars().take(28).collect::<String>(),
                    r.rate,
                    r.server_us_per_msg.map_or_else(|| "–".to_owned(), |v| format!("{v:.2}")),
                    loadgen::quantile(&r.latency, 0.5).map_or_else(|| "–".to_owned(), |v| format!("{:.1}", v / 1e3)),
                    loadgen::quantile(&r.latency, 0.99).map_or_else(|| "–".to_owned(), |v| format!("{:.1}", v / 1e3)),
                    r.ended_early,
                    r.stalled,
                    r.failed,
                    if r.errors.is_empty() { String::new() } else { format!(" {:?}", r.errors) },
                );
                rounds[at].push(r);
                drop(server);
                // Let the kernel tear the sockets down.
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        }
        let secs = settings.measure.as_secs_f64();
        all.push(
            kinds.iter().zip(rounds).map(|(&k, r)| (k, (!r.is_empty()).then(|| Cell::combine(&r, secs)))).collect(),
        );
    }
    all
}

fn preamble(settings: &Settings, pinned: bool) -> String {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let versions = ["tokio", "tokio-tungstenite", "tokio-websockets", "fastwebsockets", "yawc"]
        .map(|name| format!("{name} {}", host::locked_version(name)))
        .join(", ");
    format!(
        "## silverback fan-out benchmark\n\n\
         {}; {cores} × {}; {}; {} connections; each cell is {} round(s) of {:.2} s measured after all \
         connections received a message and {:.1} s of warm-up, each round on a fresh server process; \
         log / channel capacity {} messages; silverback {}, {versions}. Latency is send (publish) to \
         receipt by the load generator; in the compressed row it is sampled on one message in {} per \
         connection (inflated).\n\n",
        host::date_utc(),
        host::cpu_model(),
        if pinned { "server pinned to core 0, load generator to core 1" } else { "no pinning (one core)" },
        settings.conns,
        settings.rounds,
        settings.measure.as_secs_f64(),
        settings.warmup.as_secs_f64(),
        settings.capacity,
        host::locked_version("silverback"),
        loadgen::INFLATE_EVERY,
    )
}
