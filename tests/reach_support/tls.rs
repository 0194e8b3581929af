//! Self-signed certificates (rcgen) and rustls configurations for the reach
//! tests, and a `wss://` echo server.

use std::net::SocketAddr;
use std::sync::Arc;

use silverback::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use silverback::rustls::{self, ClientConfig, RootCertStore, ServerConfig};
use silverback::tokio_rustls::TlsAcceptor;
use silverback::Error;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use super::echo;

/// A self-signed certificate for `names`, and its key.
pub fn certificate(names: &[&str]) -> (CertificateDer<'static>, PrivateKeyDer<'static>) {
    let names: Vec<String> = names.iter().map(|&n| n.to_owned()).collect();
    let rcgen::CertifiedKey { cert, key_pair } = rcgen::generate_simple_self_signed(names).unwrap();
    let key = PrivatePkcs8KeyDer::from(key_pair.serialize_der());
    (cert.der().clone(), key.into())
}

/// ring, passed explicitly.
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A server configuration serving `cert`, speaking only `http/1.1`.
pub fn acceptor(cert: CertificateDer<'static>, key: PrivateKeyDer<'static>) -> TlsAcceptor {
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .unwrap();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    TlsAcceptor::from(Arc::new(config))
}

/// A client configuration trusting only `cert`. It offers ALPN `h2`,
/// which the server above refuses: the connector must replace it.
pub fn trusting(cert: CertificateDer<'static>) -> Arc<ClientConfig> {
    trusting_all(&[cert])
}

/// A client configuration trusting exactly `certs` (ALPN `h2`, as above).
pub fn trusting_all(certs: &[CertificateDer<'static>]) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    for cert in certs {
        roots.add(cert.clone()).unwrap();
    }
    let mut config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec()];
    Arc::new(config)
}

/// A `wss://` echo server on loopback; reports the ALPN protocol of each
/// TLS session, or the TLS error.
pub async fn tls_echo_server(acceptor: TlsAcceptor) -> (SocketAddr, mpsc::UnboundedReceiver<Result<Vec<u8>, String>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, tx) = (acceptor.clone(), tx.clone());
            tokio::spawn(async move {
                match acceptor.accept(tcp).await {
                    Ok(tls) => {
                        let alpn = tls.get_ref().1.alpn_protocol().unwrap_or_default().to_vec();
                        let _ = tx.send(Ok(alpn));
                        echo(tls).await;
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e.to_string()));
                    }
                }
            });
        }
    });
    (addr, rx)
}

/// The rustls error inside `result`.
pub fn tls_error<T: std::fmt::Debug>(result: silverback::Result<T>) -> rustls::Error {
    match result {
        Err(Error::Io(e)) => match e.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()) {
            Some(tls) => tls.clone(),
            None => panic!("an i/o error without a rustls error inside: {e:?}"),
        },
        other => panic!("expected a tls error, got {other:?}"),
    }
}

/// Whether `err` is a certificate that no trusted root vouches for.
pub fn is_untrusted(err: &rustls::Error) -> bool {
    matches!(
        err,
        rustls::Error::InvalidCertificate(
            rustls::CertificateError::BadSignature | rustls::CertificateError::UnknownIssuer
        )
    )
}
