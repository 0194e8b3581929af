//! The native-tls backend (feature `native-tls`): `wss://` to a loopback
//! server whose self-signed certificate (rcgen) a native-tls connector
//! trusts as an added root; an untrusted one is an I/O error carrying the
//! `native_tls::Error`; an `https://` proxy over native-tls. The server
//! side is native-tls too, so this file needs no other feature.

#![cfg(feature = "native-tls")]

mod reach_support;

use std::net::SocketAddr;

use reach_support::{bounded, echo, plain_echo_server, round_trip, Mode, Proxy};
use silverback::native_tls::{self, Certificate, Identity};
use silverback::tokio_native_tls::TlsAcceptor;
use silverback::{Connector, Error, MaybeTlsStream};
use tokio::net::TcpListener;

/// A self-signed certificate for `names`, as PEM, and its key (PKCS #8 PEM).
fn certificate(names: &[&str]) -> (String, String) {
    let names: Vec<String> = names.iter().map(|&n| n.to_owned()).collect();
    let rcgen::CertifiedKey { cert, key_pair } = rcgen::generate_simple_self_signed(names).unwrap();
    (cert.pem(), key_pair.serialize_pem())
}

/// A native-tls acceptor serving `cert`.
fn acceptor((cert, key): &(String, String)) -> TlsAcceptor {
    let identity = Identity::from_pkcs8(cert.as_bytes(), key.as_bytes()).unwrap();
    TlsAcceptor::from(native_tls::TlsAcceptor::new(identity).unwrap())
}

/// A native-tls connector trusting `cert` besides the platform's roots.
fn trusting(cert: &str) -> native_tls::TlsConnector {
    let root = Certificate::from_pem(cert.as_bytes()).unwrap();
    native_tls::TlsConnector::builder().add_root_certificate(root).build().unwrap()
}

/// A `wss://` echo server on loopback over native-tls.
async fn tls_echo_server(acceptor: TlsAcceptor) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Ok(tls) = acceptor.accept(tcp).await {
                    echo(tls).await;
                }
            });
        }
    });
    addr
}

#[tokio::test]
async fn wss_over_native_tls_with_an_added_root() {
    bounded(async {
        let identity = certificate(&["localhost", "127.0.0.1"]);
        let addr = tls_echo_server(acceptor(&identity)).await;
        // Given a native-tls connector, the connector uses native-tls even
        // when rustls is built in too.
        let connector = Connector::new().native_tls(trusting(&identity.0)).no_proxy();
        for url in [format!("wss://localhost:{}/echo", addr.port()), format!("wss://127.0.0.1:{}/", addr.port())] {
            let (ws, response) = connector.connect(&url).await.unwrap();
            assert_eq!(response.status(), 101);
            assert!(ws.with_io(|io| matches!(io, MaybeTlsStream::NativeTls(_))), "{url}");
            round_trip(ws).await;
        }
    })
    .await;
}

#[tokio::test]
async fn an_untrusted_certificate_is_a_native_tls_error() {
    bounded(async {
        let identity = certificate(&["127.0.0.1"]);
        let stranger = certificate(&["127.0.0.1"]);
        let addr = tls_echo_server(acceptor(&identity)).await;
        for connector in [native_tls::TlsConnector::new().unwrap(), trusting(&stranger.0)] {
            let result = Connector::new().native_tls(connector).no_proxy().connect(&format!("wss://{addr}/")).await;
            match result {
                Err(Error::Io(e)) => {
                    assert!(e.get_ref().is_some_and(|inner| inner.is::<native_tls::Error>()), "{e:?}");
                }
                other => panic!("expected a native-tls error, got {other:?}"),
            }
        }
    })
    .await;
}

#[tokio::test]
async fn an_https_proxy_over_native_tls() {
    bounded(async {
        // The proxy serves TLS with native-tls here: wrap the test proxy's
        // plain listener with a relay that terminates TLS first.
        let backend = plain_echo_server().await;
        let mut proxy = Proxy::start(Mode::Open, backend).await;
        let identity = certificate(&["127.0.0.1"]);
        let acceptor = acceptor(&identity);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let front = listener.local_addr().unwrap();
        let inner: SocketAddr = proxy.authority().parse().unwrap();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let (Ok(mut tls), Ok(mut plain)) =
                        (acceptor.accept(tcp).await, tokio::net::TcpStream::connect(inner).await)
                    else {
                        return;
                    };
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
                });
            }
        });
        let connector = Connector::new().proxy_native_tls(trusting(&identity.0)).proxy(&format!("https://{front}"));
        let (ws, _) = connector.connect("ws://echo.test/").await.unwrap();
        assert!(ws.with_io(|io| matches!(io, MaybeTlsStream::NativeTls(_))));
        round_trip(ws).await;
        assert!(proxy.head().await.starts_with("CONNECT echo.test:80 HTTP/1.1\r\n"));
    })
    .await;
}
