//! WebSockets over HTTP/2 (RFC 8441) against independent HTTP/2 stacks, over
//! loopback: Node's built-in `http2` module and Python's `h2` 4.x, with the
//! WebSocket frames written and parsed by hand in the peer programs
//! `tests/interop/h2peer.mjs` and `tests/interop/h2peer.py`.
//!
//! - `node_http2_client` and `python_h2_client`: the peer opens three
//!   WebSockets by extended CONNECT on one TLS connection to
//!   `examples/wss_server.rs` (built by the test, with a self-signed
//!   certificate), sends masked frames (text, fragmented text in Node's case,
//!   ping, a large binary), checks the echoes and the pong, closes with 1000
//!   and expects 1000 back and the end of each stream; it prints `OK 3`. The
//!   server must print `ws over HTTP/2` three times, all from one peer
//!   address (one connection).
//! - `silverback_client_against_node_http2_server`: Node's `http2` server
//!   with `settings: { enableConnectProtocol: true }`, over h2c (prior
//!   knowledge) and over TLS (ALPN h2), echoes WebSocket frames; silverback's
//!   `Connector::http2_connect` + `Http2Connection::open` opens four
//!   WebSockets on the one connection, round-trips text and a 200 000-byte
//!   binary on each, and closes each with 1000. The peer must report each
//!   WebSocket on its first session and each close with 1000.
//!
//! They run only under `SILVERBACK_CONFORMANCE=1`, which
//! `scripts/conformance.sh` sets after installing Node and the Python venv
//! (with `h2`) through `tests/interop/setup.sh`; without it they print one
//! line and pass, so `cargo test` stays hermetic. With it, the test finds the
//! tools through `setup.sh --check`, which installs nothing: a missing tool
//! fails the test. Every child process and wait is bounded in time.

#![cfg(all(unix, feature = "rustls", feature = "hyper"))]

mod common;

use std::collections::HashMap;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use silverback::rustls::pki_types::CertificateDer;
use silverback::rustls::{self, ClientConfig, RootCertStore};
use silverback::{CloseCode, CloseFrame, Connector, Message};

use common::process::{run_bounded, setup_report, ExampleServer, SelfSigned};

/// Bound on a peer's whole run.
const RUN: Duration = Duration::from_secs(90);
/// Bound on one step: a server starting, a handshake, an echo, a line.
const STEP: Duration = Duration::from_secs(20);

/// The tools `tests/interop/setup.sh` reports, or `None` without
/// `SILVERBACK_CONFORMANCE=1`; a panic when one is missing with it.
fn tools(what: &str) -> Option<&'static HashMap<String, String>> {
    static TOOLS: OnceLock<Result<HashMap<String, String>, String>> = OnceLock::new();
    if !common::conformance_only(what) {
        return None;
    }
    let found = TOOLS.get_or_init(|| setup_report("interop/setup.sh", &[], &["PYTHON", "PYTHONPATH", "NODE"]));
    match found {
        Ok(tools) => Some(tools),
        Err(e) => panic!("interop tools missing ({}=1): {e}", common::CONFORMANCE_VAR),
    }
}

fn peer_script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop").join(name)
}

/// Runs a client peer (`cmd`, which must print `OK 3`) against a fresh
/// `wss_server`, and checks that the server saw three WebSockets over HTTP/2
/// on one connection.
fn client_against_wss_server(mut cmd: impl FnMut(&str) -> Command) {
    let binary = common::build_example("wss_server");
    let cert = SelfSigned::new("http2_interop");
    let args = [Path::new("127.0.0.1:0"), &cert.cert_pem, &cert.key_pem];
    let mut server = ExampleServer::start(&binary, args, "https", STEP);
    let url = format!("https://{}/ws", server.addr);
    let out = run_bounded(&mut cmd(&url), RUN).unwrap_or_else(|e| panic!("{e}"));
    eprintln!("peer: {}\nstdout:\n{}\nstderr:\n{}", out.status, out.stdout, out.stderr);
    assert!(out.status.success() && out.stdout.lines().any(|l| l == "OK 3"), "the peer failed: {}", out.stdout);
    let lines = server.wait_for(STEP, |lines| lines.len() >= 3);
    let peers: Vec<&str> = lines.iter().filter_map(|l| l.strip_prefix("ws over HTTP/2 from ")).collect();
    assert_eq!(peers.len(), 3, "{lines:?}");
    assert!(peers.iter().all(|p| *p == peers[0]), "not one connection: {lines:?}");
}

#[test]
fn node_http2_client() {
    let Some(tools) = tools("node_http2_client: Node") else { return };
    client_against_wss_server(|url| {
        let mut cmd = Command::new(&tools["NODE"]);
        cmd.arg(peer_script("h2peer.mjs")).args(["client", url, "3"]);
        cmd
    });
}

#[test]
fn python_h2_client() {
    let Some(tools) = tools("python_h2_client: Python h2") else { return };
    client_against_wss_server(|url| {
        let mut cmd = Command::new(&tools["PYTHON"]);
        cmd.arg(peer_script("h2peer.py")).args([url, "3"]);
        if !tools["PYTHONPATH"].is_empty() {
            cmd.env("PYTHONPATH", &tools["PYTHONPATH"]);
        }
        cmd
    });
}

/// A rustls client configuration trusting only `cert`.
fn trusting(cert: &SelfSigned) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    roots.add(CertificateDer::from(cert.cert_der.clone())).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(config)
}

/// Four WebSockets on one HTTP/2 connection to `url`'s origin, each
/// round-tripping a text and a large binary, then closing with 1000.
async fn four_websockets(connector: Connector, url: &str) {
    let h2 = tokio::time::timeout(STEP, connector.http2_connect(url)).await.expect("connect in time").unwrap();
    assert!(h2.is_http2());
    let mut tasks = Vec::new();
    for n in 0..4 {
        let (mut ws, response) =
            tokio::time::timeout(STEP, h2.open(&format!("/ws{n}"))).await.expect("open in time").unwrap();
        assert_eq!(response.status(), 200);
        tasks.push(tokio::spawn(async move {
            let big: Vec<u8> = (0..200_000u32).map(|i| (i * 7 + n) as u8).collect();
            for msg in [Message::text(format!("hello {n} from silverback")), Message::binary(big)] {
                ws.send(msg.clone()).await.unwrap();
                let echo = tokio::time::timeout(STEP, ws.next()).await.expect("echo in time");
                assert_eq!(echo.expect("stream open").unwrap(), msg, "stream {n}");
            }
            ws.send_close(Some(CloseFrame::normal())).await.unwrap();
            let reply = tokio::time::timeout(STEP, ws.next()).await.expect("close in time");
            match reply {
                Some(Ok(Message::Close(frame))) => {
                    assert_eq!(frame.map(|f| f.code), Some(CloseCode::NORMAL), "stream {n}")
                }
                other => panic!("stream {n}: expected the close echo, got {other:?}"),
            }
            let end = tokio::time::timeout(STEP, ws.next()).await.expect("end in time");
            assert!(end.is_none(), "stream {n} after the close: {end:?}");
        }));
    }
    for task in tasks {
        tokio::time::timeout(STEP, task).await.expect("WebSocket in time").unwrap();
    }
}

#[test]
fn silverback_client_against_node_http2_server() {
    let Some(tools) = tools("silverback_client_against_node_http2_server: Node") else { return };
    let cert = SelfSigned::new("http2_interop_server");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let script = peer_script("h2peer.mjs");
    let node = Path::new(&tools["NODE"]);
    for tls in [false, true] {
        let mut args = vec![script.as_os_str(), OsStr::new("server")];
        if tls {
            args.extend([OsStr::new("--tls"), cert.cert_pem.as_os_str(), cert.key_pem.as_os_str()]);
        }
        let scheme = if tls { "https" } else { "http" };
        let mut server = ExampleServer::start(node, args, scheme, STEP);
        let connector = Connector::new().no_proxy();
        let (connector, url) = if tls {
            (connector.tls_config(trusting(&cert)), format!("wss://{}", server.addr))
        } else {
            (connector, format!("ws://{}", server.addr))
        };
        runtime.block_on(four_websockets(connector, &url));
        let lines = server.wait_for(STEP, |lines| lines.iter().filter(|l| l.starts_with("CLOSED")).count() >= 4);
        for n in 0..4 {
            assert!(lines.contains(&format!("WS /ws{n} session 1")), "{scheme}: {lines:?}");
            assert!(lines.contains(&format!("CLOSED /ws{n} 1000")), "{scheme}: {lines:?}");
        }
    }
}
