//! A `wss://` echo server: TLS with a certificate chain and private key read
//! from PEM files, then silverback's `accept` over the TLS stream (it takes
//! any `AsyncRead + AsyncWrite`).
//!
//! ```sh
//! # A self-signed certificate; CA:FALSE, as webpki refuses a CA certificate
//! # used as the server's own.
//! openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
//!     -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 \
//!     -addext basicConstraints=critical,CA:FALSE -keyout key.pem -out cert.pem
//! cargo run --example wss_server --features rustls -- 127.0.0.1:8443 cert.pem key.pem
//! SSL_CERT_FILE=cert.pem cargo run --example client --features rustls-native-roots -- wss://localhost:8443/
//! ```

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use silverback::rustls::pki_types::pem::PemObject;
use silverback::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use silverback::rustls::{self, ServerConfig};
use silverback::tokio_rustls::TlsAcceptor;
use tokio::net::{TcpListener, TcpStream};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [addr, cert_path, key_path] = &args[..] else {
        eprintln!("usage: wss_server ADDR CERT.pem KEY.pem");
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
    // The upgrade is HTTP/1.1; a client offering only h2 is refused.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let acceptor = TlsAcceptor::from(Arc::new(config));

    let listener = TcpListener::bind(addr).await?;
    println!("listening on wss://{}", listener.local_addr()?);
    loop {
        let (tcp, peer) = listener.accept().await?;
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            if let Err(e) = serve(acceptor, tcp).await {
                eprintln!("{peer}: {e}");
            }
        });
    }
}

/// TLS, then the WebSocket handshake, then echo until the client closes.
async fn serve(acceptor: TlsAcceptor, tcp: TcpStream) -> Result<(), BoxError> {
    tcp.set_nodelay(true)?;
    // silverback bounds its own handshake; bound the TLS one too, or a
    // client that connects and says nothing holds a task forever.
    let tls = tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp))
        .await
        .map_err(|_| "tls handshake timed out")??;
    let mut ws = silverback::accept(tls).await?;
    while let Some(msg) = ws.next().await {
        let msg = msg?;
        if msg.is_text() || msg.is_binary() {
            ws.send(msg).await?;
        }
    }
    Ok(())
}
