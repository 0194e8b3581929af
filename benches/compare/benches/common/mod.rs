//! What the multiplexed echo benches (`h2echo`, `h3echo`) share: their rows,
//! their timing, core pinning, the localhost certificate, and the table cells.

use std::sync::Arc;

use silverback::rustls::crypto::CryptoProvider;
use silverback::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use silverback::rustls::{self, ClientConfig, RootCertStore, ServerConfig};

/// A row: the message size and how its figure is given.
pub struct Row {
    pub label: &'static str,
    pub size: usize,
    /// MB/s of payload (counted once) rather than messages/s.
    pub mb_per_sec: bool,
}

impl Row {
    /// The cell for a row's rates (messages/s, one per round): their
    /// median, in the row's unit, and as shown.
    pub fn cell(&self, rates: Vec<f64>) -> (f64, String) {
        let value = median(rates) * if self.mb_per_sec { self.size as f64 / 1e6 } else { 1.0 };
        let shown = if self.mb_per_sec { format!("{value:.1}") } else { format!("{value:.0}") };
        (value, shown)
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn env_or(name: &str, default: f64) -> f64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// How long each round runs: `SB_BENCH_SECS` (default 6, split over the
/// rounds), `SB_BENCH_ROUNDS` (default 6) and `SB_BENCH_WARMUP` (default
/// 0.3 s per round) under `--bench`; a short smoke run without it (as
/// `cargo test --benches` runs a bench).
pub struct Timing {
    pub secs: f64,
    pub rounds: usize,
    pub warmup: f64,
}

impl Timing {
    pub fn from_env() -> Timing {
        if std::env::args().any(|a| a == "--bench") {
            let rounds = env_or("SB_BENCH_ROUNDS", 6.0).max(1.0) as usize;
            let secs = env_or("SB_BENCH_SECS", 6.0) / rounds as f64;
            Timing { secs, rounds, warmup: env_or("SB_BENCH_WARMUP", 0.3) }
        } else {
            Timing { secs: 0.2, rounds: 1, warmup: 0.05 }
        }
    }
}

/// Pins this thread (the load generator) to the second core and answers
/// the first, for the servers; neither when there are fewer than two.
pub fn pin_load_answer_server_core() -> Option<core_affinity::CoreId> {
    let cores = core_affinity::get_core_ids().unwrap_or_default();
    let [server, client, ..] = cores.as_slice() else { return None };
    core_affinity::set_for_current(*client);
    Some(*server)
}

/// A self-signed certificate for localhost, with `alpn`: the server's TLS
/// configuration and a client configuration trusting it (ring, TLS 1.3
/// and 1.2, or 1.3 alone when `tls13_only`, as QUIC needs).
pub fn localhost_tls(alpn: &[u8], tls13_only: bool) -> (ServerConfig, ClientConfig) {
    let rcgen::CertifiedKey { cert, key_pair } =
        rcgen::generate_simple_self_signed(vec!["localhost".into()]).expect("certificate");
    let cert: CertificateDer<'static> = cert.der().clone();
    let key: PrivateKeyDer<'static> = PrivatePkcs8KeyDer::from(key_pair.serialize_der()).into();
    let provider: Arc<CryptoProvider> = Arc::new(rustls::crypto::ring::default_provider());
    let versions: &[&rustls::SupportedProtocolVersion] =
        if tls13_only { &[&rustls::version::TLS13] } else { rustls::DEFAULT_VERSIONS };
    let mut server = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)
        .expect("protocol versions")
        .with_no_client_auth()
        .with_single_cert(vec![cert.clone()], key)
        .expect("server config");
    server.alpn_protocols = vec![alpn.to_vec()];
    let mut roots = RootCertStore::empty();
    roots.add(cert).expect("root");
    let mut client = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .expect("protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    client.alpn_protocols = vec![alpn.to_vec()];
    (server, client)
}

/// Runs `serve` on a thread of its own (pinned to `core`) with a
/// single-threaded runtime, for as long as the process lives; answers what
/// `serve` sends on its channel first (the server's address).
pub fn start_server<A, F, Fut>(core: Option<core_affinity::CoreId>, serve: F) -> A
where
    A: Send + 'static,
    F: FnOnce(std::sync::mpsc::Sender<A>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()>,
{
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        if let Some(core) = core {
            core_affinity::set_for_current(core);
        }
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        runtime.block_on(serve(tx));
    });
    rx.recv().expect("server started")
}
