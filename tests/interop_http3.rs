//! HTTP/3 interop (RFC 9220) with aioquic, the Python QUIC and HTTP/3
//! implementation, over loopback UDP, through `tests/interop/h3peer.py`
//! (which writes and parses the WebSocket frames itself):
//!
//! - aioquic's client (`h3peer.py client`) against `Upgrader::accept_h3`:
//!   extended CONNECT, the message sequence echoed, a 1000 close answered;
//! - aioquic's server (`h3peer.py server`, extended CONNECT enabled,
//!   printing `PORT <n>`) against `Connector::http3_connect`: a 403 refusal
//!   as a typed error, then a WebSocket with the `chat` subprotocol, the
//!   sequence echoed, a 1000 close the peer must report;
//! - aioquic's client against `examples/wss_server.rs --http3`.
//!
//! Like `tests/interop.rs`, these run only under `SILVERBACK_CONFORMANCE=1`
//! (`scripts/conformance.sh` installs aioquic into the interop venv with
//! `tests/interop/setup.sh`); without it they print one line and pass.
//! Every child is killed on drop and every wait is bounded.

#![cfg(unix)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use silverback::http3::quinn;
use silverback::{CloseCode, CloseFrame, Connector, Error, HandshakeError, Message, Upgrader};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;
use tokio::time::timeout;

/// Bound on a step (a line from the peer, an echo) and on a whole run.
const STEP: Duration = Duration::from_secs(30);
const RUN: Duration = Duration::from_secs(90);

/// The message sequence of `messages()` in h3peer.py.
fn messages() -> Vec<Message> {
    vec![
        Message::text("hello over http/3"),
        Message::text("sn\u{f6}wman \u{2603} and \u{1f600}"),
        Message::binary((0..=255u8).collect::<Vec<u8>>()),
        Message::binary((0..200_000usize).map(|i| ((i * 31 + 7) % 251) as u8).collect::<Vec<u8>>()),
        Message::text("x".repeat(70_000)),
        Message::binary(Bytes::new()),
    ]
}

/// The interpreter (and import path) `setup.sh --check` reports.
fn python() -> (PathBuf, String) {
    let fields = common::process::setup_report("interop/setup.sh", &[], &["PYTHON", "PYTHONPATH"]).unwrap();
    (fields["PYTHON"].clone().into(), fields["PYTHONPATH"].clone())
}

/// Runs `h3peer.py ARGS`, killed on drop.
fn peer(args: &[&str]) -> Child {
    let (python, pythonpath) = python();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/h3peer.py");
    Command::new(python)
        .arg(script)
        .args(args)
        .env("PYTHONPATH", pythonpath)
        .env("PYTHONUNBUFFERED", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawning h3peer.py")
}

/// The peer's stdout lines, one at a time, each within [`STEP`].
async fn lines(child: &mut Child) -> tokio::io::Lines<BufReader<tokio::process::ChildStdout>> {
    BufReader::new(child.stdout.take().unwrap()).lines()
}

async fn next_line(lines: &mut tokio::io::Lines<BufReader<tokio::process::ChildStdout>>) -> String {
    let line = timeout(STEP, lines.next_line()).await.expect("peer silent").unwrap().expect("peer's output ended");
    eprintln!("h3peer: {line}");
    line
}

#[tokio::test]
async fn aioquic_client_against_silverback_server() {
    if !common::conformance_only("HTTP/3 interop with aioquic") {
        return;
    }
    let files = common::process::SelfSigned::new("interop-http3-server");
    let cert = common::LocalhostCert::of(&files);
    let crypto = quinn::crypto::rustls::QuicServerConfig::try_from(cert.server(true, &[b"h3"])).unwrap();
    let endpoint =
        quinn::Endpoint::server(quinn::ServerConfig::with_crypto(Arc::new(crypto)), "127.0.0.1:0".parse().unwrap())
            .unwrap();
    let port = endpoint.local_addr().unwrap().port();
    let (report, mut reports) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let incoming = endpoint.accept().await.unwrap();
        let quic = incoming.await.unwrap();
        let upgrader = Upgrader::new().subprotocols(["chat"]);
        let mut acceptor = upgrader.accept_h3(quic).await.unwrap();
        let (mut ws, request) = acceptor.accept().await.unwrap().unwrap();
        let _ = report.send(format!("path {}", request.uri().path()));
        while let Some(msg) = ws.next().await {
            match msg {
                Ok(Message::Close(frame)) => {
                    let _ = report.send(format!("close {:?}", frame.map(|f| f.code)));
                }
                Ok(msg) if msg.is_text() || msg.is_binary() => ws.send(msg).await.unwrap(),
                Ok(_) => {}
                Err(err) => {
                    let _ = report.send(format!("error {err}"));
                    break;
                }
            }
        }
        let _ = report.send("ended".to_owned());
    });
    let mut child = peer(&["client", &port.to_string(), "/chat", files.cert_pem.to_str().unwrap()]);
    let mut out = lines(&mut child).await;
    assert_eq!(next_line(&mut out).await, "STATUS 200");
    assert_eq!(next_line(&mut out).await, format!("OK {}", messages().len()));
    let status = timeout(RUN, child.wait()).await.expect("peer did not exit").unwrap();
    assert!(status.success(), "{status}");
    let mut seen = Vec::new();
    while let Ok(Some(line)) = timeout(STEP, reports.recv()).await {
        let ended = line == "ended";
        seen.push(line);
        if ended {
            break;
        }
    }
    assert_eq!(seen, ["path /chat", &format!("close {:?}", Some(CloseCode::NORMAL)), "ended"]);
}

#[tokio::test]
async fn silverback_client_against_aioquic_server() {
    if !common::conformance_only("HTTP/3 interop with aioquic") {
        return;
    }
    let files = common::process::SelfSigned::new("interop-http3-client");
    let client_tls = common::LocalhostCert::of(&files).client();
    let mut child = peer(&["server", files.cert_pem.to_str().unwrap(), files.key_pem.to_str().unwrap()]);
    let mut out = lines(&mut child).await;
    let line = next_line(&mut out).await;
    let port: u16 = line.strip_prefix("PORT ").and_then(|p| p.parse().ok()).unwrap_or_else(|| panic!("{line}"));
    let connector = Connector::new().tls_config(client_tls).subprotocols(["chat"]);
    let h3 = timeout(STEP, connector.http3_connect(&format!("wss://localhost:{port}"))).await.unwrap().unwrap();
    let err = timeout(STEP, h3.open("/refuse")).await.unwrap().unwrap_err();
    assert!(matches!(err, Error::Handshake(HandshakeError::UnexpectedStatus(s)) if s == 403), "{err:?}");
    let (mut ws, response) = timeout(STEP, h3.open("/ws")).await.unwrap().unwrap();
    assert_eq!(response.headers()["sec-websocket-protocol"], "chat");
    for (i, msg) in messages().into_iter().enumerate() {
        ws.send(msg.clone()).await.unwrap();
        let echoed = timeout(STEP, ws.next()).await.unwrap().expect("stream ended").unwrap();
        assert_eq!(echoed, msg, "message {i}");
    }
    timeout(STEP, ws.close(Some(CloseFrame::new(CloseCode::NORMAL, "")))).await.unwrap().unwrap();
    assert_eq!(next_line(&mut out).await, "CLOSED 1000");
    let status = timeout(RUN, child.wait()).await.expect("peer did not exit").unwrap();
    assert!(status.success(), "{status}");
}

/// `wss_server --http3` (the example) against aioquic's client: the
/// WebSocket at `/ws` echoes over HTTP/3 on the TCP port's number over UDP,
/// and the server prints `ws over HTTP/3 from PEER`. The example needs the
/// `hyper` feature too.
#[cfg(feature = "hyper")]
#[tokio::test]
async fn aioquic_client_against_wss_server_http3() {
    if !common::conformance_only("HTTP/3 interop with aioquic") {
        return;
    }
    let binary = common::build_example("wss_server");
    let files = common::process::SelfSigned::new("interop-http3-example");
    let args = [Path::new("127.0.0.1:0"), &files.cert_pem, &files.key_pem, Path::new("--http3")];
    let mut server = common::process::ExampleServer::start(&binary, args, "https", STEP);
    let port = server.addr.port().to_string();
    let mut child = peer(&["client", &port, "/ws", files.cert_pem.to_str().unwrap()]);
    let mut out = lines(&mut child).await;
    assert_eq!(next_line(&mut out).await, "STATUS 200");
    assert_eq!(next_line(&mut out).await, format!("OK {}", messages().len()));
    let status = timeout(RUN, child.wait()).await.expect("peer did not exit").unwrap();
    assert!(status.success(), "{status}");
    let seen = server.wait_for(STEP, |lines| lines.iter().any(|l| l.starts_with("ws over HTTP/3 from 127.0.0.1:")));
    assert!(seen.iter().any(|l| l.starts_with("ws over HTTP/3 from 127.0.0.1:")), "{seen:?}");
    // A path other than /ws is refused on its own stream.
    let mut child = peer(&["client", &port, "/other", files.cert_pem.to_str().unwrap()]);
    let mut out = lines(&mut child).await;
    assert_eq!(next_line(&mut out).await, "STATUS 404");
}
