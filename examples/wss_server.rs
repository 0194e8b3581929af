//! A `wss://` server for HTTP/1.1 and HTTP/2 on one TLS port (ALPN `h2`,
//! `http/1.1`): a page at `/` whose script opens `wss://HOST/ws`, sends a
//! message and shows the echo, and an echo WebSocket at `/ws`, through
//! hyper-util's `auto` builder and [`Upgrader::upgrade_hyper`], which takes
//! an HTTP/1.1 upgrade and an HTTP/2 extended CONNECT (RFC 8441) alike.
//! Prints one line per WebSocket naming the HTTP version it came over.
//!
//! ```sh
//! # A self-signed certificate; CA:FALSE, as webpki refuses a CA certificate
//! # used as the server's own.
//! openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
//!     -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 \
//!     -addext basicConstraints=critical,CA:FALSE -keyout key.pem -out cert.pem
//! cargo run --example wss_server --features rustls,hyper -- 127.0.0.1:8443 cert.pem key.pem
//! SSL_CERT_FILE=cert.pem cargo run --example client --features rustls-native-roots -- wss://localhost:8443/ws
//! ```
//!
//! `--http3` (RFC 9220) is not supported yet: it exits with status 2.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use silverback::rustls::pki_types::pem::PemObject;
use silverback::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use silverback::rustls::{self, ServerConfig};
use silverback::tokio_rustls::TlsAcceptor;
use silverback::Upgrader;
use tokio::net::{TcpListener, TcpStream};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The page at `/`: opens `/ws` on the same host, sends one message and
/// shows what comes back.
const PAGE: &str = r#"<!doctype html>
<meta charset="utf-8">
<title>silverback wss echo</title>
<pre id="log"></pre>
<script>
const log = (line) => { document.getElementById("log").textContent += line + "\n"; };
const ws = new WebSocket(`wss://${location.host}/ws`);
ws.onopen = () => { log("open"); ws.send("hello over wss"); };
ws.onmessage = (event) => { log("echo: " + event.data); document.title = "echo: " + event.data; };
ws.onclose = (event) => log("closed " + event.code);
</script>
"#;

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--http3") {
        eprintln!("wss_server: --http3 is not supported yet");
        std::process::exit(2);
    }
    let [addr, cert_path, key_path] = &args[..] else {
        eprintln!("usage: wss_server ADDR CERT.pem KEY.pem [--http3]");
        std::process::exit(2);
    };

    let certs = CertificateDer::pem_file_iter(cert_path)
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .map_err(|e| format!("{cert_path}: {e}"))?;
    let key = PrivateKeyDer::from_pem_file(key_path).map_err(|e| format!("{key_path}: {e}"))?;
    // An explicit crypto provider, as silverback's client uses: nothing
    // depends on a process-wide default.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    // HTTP/2 preferred, HTTP/1.1 for clients that do not offer it.
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let acceptor = TlsAcceptor::from(Arc::new(config));
    // The page's script comes from this server's own origin: the default
    // origin policy (Origin against Host or :authority) accepts it.
    let upgrader = Arc::new(Upgrader::new());

    let listener = TcpListener::bind(addr).await?;
    println!("listening on https://{}", listener.local_addr()?);
    loop {
        let (tcp, peer) = listener.accept().await?;
        let (acceptor, upgrader) = (acceptor.clone(), upgrader.clone());
        tokio::spawn(async move {
            if let Err(e) = serve(acceptor, upgrader, tcp, peer).await {
                eprintln!("{peer}: {e}");
            }
        });
    }
}

/// TLS, then HTTP/1.1 or HTTP/2 (as ALPN chose; the auto builder reads the
/// connection preface) until the client leaves.
async fn serve(
    acceptor: TlsAcceptor,
    upgrader: Arc<Upgrader>,
    tcp: TcpStream,
    peer: SocketAddr,
) -> Result<(), BoxError> {
    tcp.set_nodelay(true)?;
    // Bound the TLS handshake, or a client that connects and says nothing
    // holds a task forever.
    let tls = tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp))
        .await
        .map_err(|_| "tls handshake timed out")??;
    let service = service_fn(move |req| respond(upgrader.clone(), req, peer));
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    // RFC 8441: announce extended CONNECT, or browsers keep WebSockets on
    // HTTP/1.1 connections of their own.
    builder.http2().enable_connect_protocol();
    builder.serve_connection_with_upgrades(TokioIo::new(tls), service).await
}

/// The page at `/`, the echo WebSocket at `/ws`, 404 elsewhere.
async fn respond(
    upgrader: Arc<Upgrader>,
    mut req: hyper::Request<Incoming>,
    peer: SocketAddr,
) -> Result<hyper::Response<String>, Infallible> {
    let mut response = hyper::Response::new(String::new());
    match req.uri().path() {
        "/" => {
            *response.body_mut() = PAGE.to_owned();
            response.headers_mut().insert("content-type", "text/html; charset=utf-8".parse().unwrap());
        }
        "/ws" => {
            let version = req.version();
            return Ok(match upgrader.upgrade_hyper(&mut req) {
                Ok((response, upgrade)) => {
                    tokio::spawn(async move {
                        let Ok(mut ws) = upgrade.await else { return };
                        println!(
                            "ws over {} from {peer}",
                            if version == http::Version::HTTP_2 { "HTTP/2" } else { "HTTP/1.1" }
                        );
                        while let Some(Ok(msg)) = ws.next().await {
                            if (msg.is_text() || msg.is_binary()) && ws.send(msg).await.is_err() {
                                break;
                            }
                        }
                    });
                    response
                }
                Err(refusal) => refusal.into_response(),
            });
        }
        _ => *response.status_mut() = http::StatusCode::NOT_FOUND,
    }
    Ok(response)
}
