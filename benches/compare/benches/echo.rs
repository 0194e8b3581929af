//! End-to-end echo benchmark: silverback against tokio-tungstenite,
//! tokio-websockets, fastwebsockets and a raw TCP echo (the limit), all in
//! one run, driven by the same neutral load generator; with
//! permessage-deflate (row 8), against yawc, sockudo-ws and wtx.
//!
//! `cargo bench -p silverback-compare --bench echo` (see PERFORMANCE.md for
//! the environment variables). Each server runs in a child process (this binary re-executed
//! with `SB_ECHO_SERVER=<kind>`) on a single-threaded runtime pinned to core
//! 0; the load generator runs here, pinned to core 1. The Markdown table goes
//! to stdout and to `target/echo-bench.md`; progress goes to stderr.
//!
//! Without `--bench` (as `cargo test -p silverback-compare --benches`
//! runs it) it does a short smoke run and writes no file.

// A crate root's modules live beside it, so point into `echo/`.
#[path = "echo/deflate.rs"]
mod deflate;
#[path = "echo/fmt.rs"]
mod fmt;
#[path = "echo/host.rs"]
mod host;
#[path = "echo/loadgen.rs"]
mod loadgen;
#[path = "echo/report.rs"]
mod report;
#[path = "echo/servers.rs"]
mod servers;
#[path = "echo/upgrades.rs"]
mod upgrades;
#[path = "echo/wire.rs"]
mod wire;

use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use loadgen::{Sample, Target, Timing};
use report::{Results, Row, Unit};
use servers::Kind;
use wire::{OP_BINARY, OP_TEXT};

const KIB: usize = 1024;

/// What a row measures.
#[derive(Debug, Clone, Copy)]
enum Scenario {
    Echo {
        conns: usize,
        text: bool,
        size: usize,
        depth: usize,
    },
    /// Both RSS rows come from one measurement; this is the idle one.
    RssIdle,
    RssAfterEcho,
    Handshakes {
        connectors: usize,
    },
    /// Echo of JSON-like text compressed with permessage-deflate; `size` is
    /// the uncompressed size, the one the MB/s count.
    Deflate {
        conns: usize,
        size: usize,
        depth: usize,
    },
}

const SCENARIOS: [(Row, Scenario); 9] = [
    (
        Row { label: "100 conns × 20 B binary, 1 in flight (msgs/s)", unit: Unit::MsgsPerSec, deflate: false },
        Scenario::Echo { conns: 100, text: false, size: 20, depth: 1 },
    ),
    (
        Row { label: "100 conns × 20 B binary, 16 in flight (msgs/s)", unit: Unit::MsgsPerSec, deflate: false },
        Scenario::Echo { conns: 100, text: false, size: 20, depth: 16 },
    ),
    (
        Row { label: "10 conns × 16 KiB binary (MB/s)", unit: Unit::MbPerSec, deflate: false },
        Scenario::Echo { conns: 10, text: false, size: 16 * KIB, depth: 1 },
    ),
    (
        Row { label: "10 conns × 16 KiB multi-byte UTF-8 text (MB/s)", unit: Unit::MbPerSec, deflate: false },
        Scenario::Echo { conns: 10, text: true, size: 16 * KIB, depth: 1 },
    ),
    (
        Row { label: "1 conn × 1 MiB binary (MB/s)", unit: Unit::MbPerSec, deflate: false },
        Scenario::Echo { conns: 1, text: false, size: KIB * KIB, depth: 1 },
    ),
    (
        Row { label: "server RSS per idle upgraded conn (KB, lower is better)", unit: Unit::KbPerConn, deflate: false },
        Scenario::RssIdle,
    ),
    (
        Row {
            label: "… same conns after one 20 B echo each (KB, lower is better)",
            unit: Unit::KbPerConn,
            deflate: false,
        },
        Scenario::RssAfterEcho,
    ),
    (
        Row { label: "handshakes/s (connect + upgrade + close, 16 connectors)", unit: Unit::PerSec, deflate: false },
        Scenario::Handshakes { connectors: 16 },
    ),
    (
        Row {
            label: "10 conns × 16 KiB JSON-like text, permessage-deflate (MB/s)",
            unit: Unit::MbPerSec,
            deflate: true,
        },
        Scenario::Deflate { conns: 10, size: 16 * KIB, depth: 1 },
    ),
];

/// The row number (as in PERFORMANCE.md and `SB_BENCH_ROWS`) of each
/// entry of [`SCENARIOS`]; both RSS rows are row 6.
const ROW_NUMBERS: [usize; 9] = [1, 2, 3, 4, 5, 6, 6, 7, 8];

/// Run settings, from the command line and the environment.
#[derive(Debug)]
struct Settings {
    full: bool,
    timing: Timing,
    rounds: usize,
    rss_conns: usize,
    kinds: Vec<Kind>,
    /// Selected rows, numbered 1–8 as in PERFORMANCE.md (6 = both RSS rows).
    rows: Vec<usize>,
}

impl Settings {
    /// Whether entry `i` of [`SCENARIOS`] is selected.
    fn selected(&self, i: usize) -> bool {
        self.rows.contains(&ROW_NUMBERS[i])
    }

    fn from_env(args: &[String]) -> Settings {
        let full = args.iter().any(|a| a == "--bench");
        let env_f64 = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<f64>().ok());
        let secs = env_f64("SB_BENCH_SECS").unwrap_or(if full { 6.0 } else { 0.2 });
        let warmup = env_f64("SB_BENCH_WARMUP").unwrap_or(if full { 0.3 } else { 0.05 });
        let env_usize = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<usize>().ok());
        let rss_conns = env_usize("SB_BENCH_RSS_CONNS").unwrap_or(if full { 2000 } else { 100 });
        let rounds = env_usize("SB_BENCH_ROUNDS").unwrap_or(if full { 6 } else { 1 }).max(1);
        let kinds = match std::env::var("SB_BENCH_ONLY") {
            Ok(only) => Kind::ALL.into_iter().filter(|k| only.split(',').any(|f| k.matches(f))).collect(),
            Err(_) => Kind::ALL.to_vec(),
        };
        let rows = match std::env::var("SB_BENCH_ROWS") {
            Ok(rows) => rows.split(',').filter_map(|r| r.trim().parse().ok()).collect(),
            Err(_) => (1..=8).collect(),
        };
        Settings {
            full,
            timing: Timing {
                warmup: Duration::from_secs_f64(warmup),
                measure: Duration::from_secs_f64(secs / rounds as f64),
            },
            rounds,
            rss_conns,
            kinds,
            rows,
        }
    }
}

/// A running server child; killed on drop.
#[derive(Debug)]
struct Server {
    child: Child,
    target: Target,
}

impl Server {
    fn spawn(kind: Kind, cores: Option<(core_affinity::CoreId, core_affinity::CoreId)>) -> std::io::Result<Server> {
        let mut cmd = Command::new(std::env::current_exe()?);
        cmd.env("SB_ECHO_SERVER", kind.name())
            .env("SB_ECHO_ADDR", "127.0.0.1:0")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if let Some((core, _)) = cores {
            cmd.env("SB_ECHO_CORE", core.id.to_string());
        }
        let mut child = cmd.spawn()?;
        let mut line = String::new();
        let stdout = child.stdout.take().expect("piped stdout");
        BufReader::new(stdout).read_line(&mut line)?;
        let port: u16 = match line.trim().parse() {
            Ok(port) => port,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(std::io::Error::other(format!("{} server did not start", kind.name())));
            }
        };
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let cores = cores.map(|(s, c)| (s.id, c.id));
        Ok(Server { target: Target { kind, addr, pid: child.id(), cores }, child })
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
    if let Ok(name) = std::env::var("SB_ECHO_SERVER") {
        let kind = Kind::from_name(&name).unwrap_or_else(|| panic!("unknown SB_ECHO_SERVER {name:?}"));
        let addr = std::env::var("SB_ECHO_ADDR").unwrap_or_else(|_| "127.0.0.1:0".to_owned());
        let core = std::env::var("SB_ECHO_CORE").ok().and_then(|c| c.parse().ok());
        servers::run(kind, &addr, core.map(|id| core_affinity::CoreId { id }));
    }
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--list") {
        return; // `cargo test --list`: nothing to list.
    }
    wire::self_check();
    deflate::self_check();
    let mut settings = Settings::from_env(&args);
    if settings.kinds.is_empty() {
        let names: Vec<&str> = Kind::ALL.iter().map(|k| k.name()).collect();
        eprintln!("SB_BENCH_ONLY selects no server; names: {}", names.join(", "));
        std::process::exit(2);
    }
    // Start only the servers some selected row measures.
    let measured_rows: Vec<Row> =
        (0..SCENARIOS.len()).filter(|&i| settings.selected(i)).map(|i| SCENARIOS[i].0).collect();
    settings.kinds.retain(|&kind| measured_rows.iter().any(|row| row.applies(kind)));
    if settings.kinds.is_empty() {
        eprintln!("no server selected by SB_BENCH_ONLY is measured in the rows of SB_BENCH_ROWS");
        std::process::exit(2);
    }

    // Server on core 0, load generator on core 1; no pinning on one core.
    let pinning = host::pinning();
    let preamble = preamble(&settings, pinning.is_some());
    let servers: Vec<Server> = settings
        .kinds
        .iter()
        .map(|&kind| Server::spawn(kind, pinning).unwrap_or_else(|e| panic!("{}: {e}", kind.name())))
        .collect();
    if let Some((_, client)) = pinning {
        core_affinity::set_for_current(client);
    }
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let results = rt.block_on(run_all(&servers, &settings));
    drop(servers);

    let rows: Vec<Row> = SCENARIOS.iter().map(|(row, _)| *row).collect();
    let report = report::render(&rows, &results, &settings.kinds, &preamble);
    println!("\n{report}");
    if settings.full {
        let dir = std::env::var("CARGO_TARGET_DIR")
            .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../../target").to_owned());
        let path = std::path::Path::new(&dir).join("echo-bench.md");
        match std::fs::write(&path, &report) {
            Ok(()) => eprintln!("written to {}", path.display()),
            Err(e) => eprintln!("could not write {}: {e}", path.display()),
        }
    }
}

/// Runs every row for every server, row by row and in rounds that go
/// round-robin over the servers (each round starting at the next server),
/// so that slow drifts of this shared VM hit every column alike; a cell is
/// the median of its rounds. RSS goes first, once, while each server process
/// is fresh.
async fn run_all(servers: &[Server], settings: &Settings) -> Results {
    let mut results = Results::default();
    let selected = |i: usize| settings.selected(i);
    let rss_row = SCENARIOS[5].0;
    for server in servers.iter().filter(|s| selected(5) && rss_row.applies(s.target.kind)) {
        let (idle, used) = loadgen::idle_rss(server.target, settings.rss_conns).await;
        progress(&SCENARIOS[5].0, server.target.kind, &idle);
        progress(&SCENARIOS[6].0, server.target.kind, &used);
        results.insert(5, server.target.kind, idle);
        results.insert(6, server.target.kind, used);
    }
    for (i, (row, scenario)) in SCENARIOS.iter().enumerate().filter(|(i, _)| selected(*i)) {
        let servers: Vec<&Server> = servers.iter().filter(|s| row.applies(s.target.kind)).collect();
        let mut rounds: Vec<Vec<Sample>> = servers.iter().map(|_| Vec::new()).collect();
        for round in 0..settings.rounds {
            // Each round starts one server further on, so that no server
            // always runs right after the same neighbour or at the same
            // point of a round.
            for k in 0..servers.len() {
                let at = (round + k) % servers.len();
                let Some(sample) = measure(servers[at].target, *row, *scenario, settings.timing).await else {
                    continue;
                };
                rounds[at].push(sample);
                // Let the server finish tearing the connections down.
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        for (server, samples) in servers.iter().zip(rounds) {
            if !samples.is_empty() {
                let sample = Sample::combine(samples);
                progress(row, server.target.kind, &sample);
                results.insert(i, server.target.kind, sample);
            }
        }
    }
    results
}

/// One round of one cell; `None` for the RSS rows, measured apart.
async fn measure(target: Target, row: Row, scenario: Scenario, timing: Timing) -> Option<Sample> {
    Some(match scenario {
        Scenario::Echo { conns, text, size, depth } => {
            let (opcode, payload) =
                if text { (OP_TEXT, wire::non_ascii_text(size)) } else { (OP_BINARY, vec![0x5a; size]) };
            let mut s = loadgen::throughput(target, conns, opcode, &payload, depth, timing).await;
            if row.unit == Unit::MbPerSec {
                s.value *= size as f64 / 1e6;
            }
            s
        }
        Scenario::RssIdle | Scenario::RssAfterEcho => return None,
        Scenario::Handshakes { connectors } => loadgen::handshakes(target, connectors, timing).await,
        Scenario::Deflate { conns, size, depth } => {
            let messages = deflate::Messages::new(size);
            let mut s = loadgen::deflate_throughput(target, conns, &messages, depth, timing).await;
            s.value *= size as f64 / 1e6;
            s
        }
    })
}

fn progress(row: &Row, kind: Kind, s: &Sample) {
    let cpu = match (s.server_cpu, s.client_cpu) {
        (Some(a), Some(b)) => format!(" (cpu server {a:.0}%, loadgen {b:.0}%)"),
        _ => String::new(),
    };
    let trouble = if s.error_count > 0 || s.stalled > 0 {
        format!(" [stalled {}, errors {}: {:?}]", s.stalled, s.error_count, s.errors)
    } else {
        String::new()
    };
    if s.declined {
        eprintln!("{:<22} {:<62} {:>14}", kind.name(), row.label, "declined");
        return;
    }
    let spread = s.spread.map_or_else(String::new, |x| format!(" spread {:.0}%", x * 100.0));
    eprintln!("{:<22} {:<62} {:>14.2}{spread}{cpu}{trouble}", kind.name(), row.label, s.value);
}

fn preamble(settings: &Settings, pinned: bool) -> String {
    let date = host::date_utc();
    let cpu = host::cpu_model();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let versions = ["tokio", "tokio-tungstenite", "tokio-websockets", "fastwebsockets", "yawc", "sockudo-ws", "wtx"]
        .map(|name| format!("{name} {}", host::locked_version(name)))
        .join(", ");
    let compressed = match SCENARIOS.iter().position(|(row, _)| row.deflate) {
        Some(i) if settings.selected(i) => {
            let messages = deflate::Messages::new(16 * KIB);
            format!(
                " Row 8 sends {} different JSON-like 16 KiB texts in rotation, each compressed \
                 on its own at level 6 to 1/{:.1} of its size; servers compress at level 1.",
                deflate::VARIANTS,
                messages.client_ratio()
            )
        }
        _ => String::new(),
    };
    format!(
        "## silverback echo benchmark\n\n\
         {date}; {cores} × {cpu}; {}; each cell is the median of {} rounds of {:.2} s measured after {:.1} s warm-up; \
         RSS over {} connections; silverback {}, {versions}.{compressed}\n\n",
        if pinned { "servers pinned to core 0, load generator to core 1" } else { "no pinning (one core)" },
        settings.rounds,
        settings.timing.measure.as_secs_f64(),
        settings.timing.warmup.as_secs_f64(),
        settings.rss_conns,
        host::locked_version("silverback"),
    )
}
