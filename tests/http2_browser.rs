//! Headless Chromium against `examples/wss_server.rs`: WebSockets over
//! HTTP/2 (RFC 8441) with a real browser. The test builds the example (same
//! profile, target directory and features as this test), makes a self-signed
//! certificate with rcgen, starts `wss_server 127.0.0.1:0 CERT KEY` and
//! reads its port from its `listening on https://ADDR` line.
//!
//! `chromium_websockets_over_http2`: `tests/http2_browser/drive.mjs` loads
//! the page at `/` (which makes the HTTP/2 connection and has its own
//! WebSocket echo once), opens another WebSocket to `/ws`, round-trips text
//! and binary messages and closes with 1000. The server must print
//! `ws over HTTP/2` for both WebSockets and nothing over HTTP/1.1. A control
//! run with `--disable-http2` must come over HTTP/1.1 instead: the check
//! tells one from the other.
//!
//! Chromium needs no flag for this: WebSockets over HTTP/2 are on by
//! default (Chromium 156 has no `WebSocketOverHttp2` feature left to
//! switch; `--disable-features=WebSocketOverHttp2` changes nothing). It
//! uses one only on an HTTP/2 connection to the origin that is already open
//! and whose server sent `SETTINGS_ENABLE_CONNECT_PROTOCOL`; loading `/`
//! first opens it.
//!
//! It runs only under `SILVERBACK_CONFORMANCE=1`, which
//! `scripts/conformance.sh` sets after installing Chromium and
//! `playwright-core` with `tests/chat_browser/setup.sh`; without it the test
//! prints one line and passes, so `cargo test` stays hermetic. With it, a
//! missing tool fails the test. Every child process and wait is bounded.

#![cfg(all(unix, feature = "rustls", feature = "hyper"))]

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::process::{browser_tools_for, BrowserTools, ExampleServer, SelfSigned};

/// Bound on one run of `drive.mjs` (each of its waits is 20 s at most).
const DRIVE_TIMEOUT: Duration = Duration::from_secs(120);
/// Bound on the server starting and on its lines arriving.
const STEP: Duration = Duration::from_secs(20);

/// One browser run against a fresh server with `flags` for Chromium: the
/// driver's report and the server's `ws over ...` lines.
fn browse(tools: &BrowserTools, binary: &Path, cert: &SelfSigned, flags: &[&str]) -> (serde_json::Value, Vec<String>) {
    let args = [Path::new("127.0.0.1:0"), &cert.cert_pem, &cert.key_pem];
    let mut server = ExampleServer::start(binary, args, "https", STEP);
    let url = format!("https://{}/", server.addr);
    let args = std::iter::once(url.as_str()).chain(flags.iter().copied());
    let (out, report) = tools.drive("http2_browser/drive.mjs", args, DRIVE_TIMEOUT);
    assert!(out.status.success(), "drive.mjs {flags:?} failed ({}): {report}\n{}", out.status, out.stderr);
    // The page's WebSocket and the driver's.
    let lines = server.wait_for(STEP, |lines| lines.iter().filter(|l| l.starts_with("ws over ")).count() >= 2);
    (report, lines.iter().filter(|l| l.starts_with("ws over ")).cloned().collect())
}

#[test]
fn chromium_websockets_over_http2() {
    let Some(tools) = browser_tools_for("chromium_websockets_over_http2: Chromium and Node playwright-core") else {
        return;
    };
    let started = Instant::now();
    let binary = common::build_example("wss_server");
    eprintln!("built wss_server in {:.1?}", started.elapsed());
    let cert = SelfSigned::new("http2_browser");

    let (report, lines) = browse(tools, &binary, &cert, &[]);
    assert_eq!(report["protocol"], "h2", "the page did not load over HTTP/2: {report}");
    assert_eq!(report["pageEcho"], "echo: hello over wss", "{report}");
    assert_eq!(lines.len(), 2, "expected two WebSockets: {lines:?} ({report})");
    assert!(lines.iter().all(|l| l.starts_with("ws over HTTP/2 from 127.0.0.1:")), "{lines:?} ({report})");

    // The control: with HTTP/2 off, the same page and WebSockets come over
    // HTTP/1.1, and the server says so.
    let (report, lines) = browse(tools, &binary, &cert, &["--disable-http2"]);
    assert_eq!(report["protocol"], "http/1.1", "{report}");
    assert_eq!(lines.len(), 2, "expected two WebSockets: {lines:?} ({report})");
    assert!(lines.iter().all(|l| l.starts_with("ws over HTTP/1.1 from 127.0.0.1:")), "{lines:?} ({report})");
}
