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
//! With `--http3` (and the `http3` feature) it also serves WebSockets over
//! HTTP/3 (RFC 9220) on the same port number over UDP (QUIC, ALPN `h3`),
//! through [`Upgrader::accept_h3`], and announces it to browsers with
//! `Alt-Svc`; without the feature, `--http3` exits with status 2.
//!
//! ```sh
//! cargo run --example wss_server --features rustls,hyper,http3 -- 127.0.0.1:8443 cert.pem key.pem --http3
//! ```

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
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let http3 = args.iter().any(|a| a == "--http3");
    args.retain(|a| a != "--http3");
    if http3 && !cfg!(feature = "http3") {
        eprintln!("wss_server: --http3 needs the http3 feature");
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
    let quic_tls = config.clone();
    // HTTP/2 preferred, HTTP/1.1 for clients that do not offer it.
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let acceptor = TlsAcceptor::from(Arc::new(config));
    // The page's script comes from this server's own origin: the default
    // origin policy (Origin against Host or :authority) accepts it.
    let upgrader = Arc::new(Upgrader::new());

    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    println!("listening on https://{local}");
    // Tells browsers where HTTP/3 is: the same port number, over UDP.
    let alt_svc = http3.then(|| format!("h3=\":{}\"", local.port()));
    #[cfg(feature = "http3")]
    if http3 {
        let endpoint = h3::endpoint(quic_tls, local)?;
        println!("listening on https://{local} (HTTP/3, udp)");
        tokio::spawn(h3::serve(endpoint));
    }
    #[cfg(not(feature = "http3"))]
    drop(quic_tls);
    loop {
        let (tcp, peer) = listener.accept().await?;
        let (acceptor, upgrader, alt_svc) = (acceptor.clone(), upgrader.clone(), alt_svc.clone());
        tokio::spawn(async move {
            if let Err(e) = serve(acceptor, upgrader, tcp, peer, alt_svc).await {
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
    alt_svc: Option<String>,
) -> Result<(), BoxError> {
    tcp.set_nodelay(true)?;
    // Bound the TLS handshake, or a client that connects and says nothing
    // holds a task forever.
    let tls = tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp))
        .await
        .map_err(|_| "tls handshake timed out")??;
    let service = service_fn(move |req| {
        let (upgrader, alt_svc) = (upgrader.clone(), alt_svc.clone());
        async move {
            let mut response = respond(upgrader, req, peer).await?;
            if let Some(alt_svc) = alt_svc {
                response.headers_mut().insert("alt-svc", alt_svc.parse().unwrap());
            }
            Ok::<_, Infallible>(response)
        }
    });
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

/// The HTTP/3 side (`--http3`): QUIC on the same port number over UDP.
#[cfg(feature = "http3")]
mod h3 {
    use std::net::SocketAddr;
    use std::sync::Arc;

    use futures_util::{SinkExt, StreamExt};
    use silverback::http3::quinn;
    use silverback::rustls::ServerConfig;
    use silverback::{Rejection, Upgrader};

    use super::BoxError;

    /// A QUIC endpoint on `addr` (UDP) with the server's certificate,
    /// TLS 1.3 and ALPN `h3`.
    pub fn endpoint(mut tls: ServerConfig, addr: SocketAddr) -> Result<quinn::Endpoint, BoxError> {
        tls.alpn_protocols = vec![b"h3".to_vec()];
        tls.max_early_data_size = 0;
        let crypto = quinn::crypto::rustls::QuicServerConfig::try_from(tls)?;
        Ok(quinn::Endpoint::server(quinn::ServerConfig::with_crypto(Arc::new(crypto)), addr)?)
    }

    /// Accepts QUIC connections; echoes every WebSocket at `/ws` (other
    /// paths are refused with 404).
    pub async fn serve(endpoint: quinn::Endpoint) {
        let upgrader = Upgrader::new().check_request(|request| match request.uri().path() {
            "/ws" => Ok(()),
            _ => Err(Rejection::new(http::StatusCode::NOT_FOUND)),
        });
        while let Some(incoming) = endpoint.accept().await {
            let upgrader = upgrader.clone();
            tokio::spawn(async move {
                let peer = incoming.remote_address();
                let Ok(Ok(quic)) = tokio::time::timeout(std::time::Duration::from_secs(10), incoming).await else {
                    return;
                };
                let Ok(mut acceptor) = upgrader.accept_h3(quic).await else { return };
                while let Some(accepted) = acceptor.accept().await {
                    let Ok((mut ws, _request)) = accepted else { continue };
                    println!("ws over HTTP/3 from {peer}");
                    tokio::spawn(async move {
                        while let Some(Ok(msg)) = ws.next().await {
                            if (msg.is_text() || msg.is_binary()) && ws.send(msg).await.is_err() {
                                break;
                            }
                        }
                    });
                }
            });
        }
    }
}
