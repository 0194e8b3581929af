//! `https://` proxies: TLS with the proxy, `CONNECT` with Basic credentials
//! inside it, then the WebSocket (and for `wss://`, TLS with the server
//! inside the tunnel: TLS in TLS). The proxy's certificate is checked with
//! its own settings or with the server's; an untrusted one, a stalled
//! proxy, wrong credentials and a hang-up are typed errors.
//!
//! Needs the `rustls` feature (the test proxy serves TLS with rustls).

#![cfg(feature = "rustls")]

mod reach_support;

use std::time::Duration;

use http::StatusCode;
use reach_support::tls::{acceptor, certificate, is_untrusted, tls_echo_server, tls_error, trusting, trusting_all};
use reach_support::{bounded, env, handshake_error, plain_echo_server, round_trip, Mode, Proxy};
use silverback::{Connector, HandshakeError};

/// `Basic base64("user:pass")`.
const CREDENTIALS: &str = "Basic dXNlcjpwYXNz";

#[tokio::test]
async fn wss_through_an_https_proxy_runs_tls_inside_tls() {
    bounded(async {
        let (server_cert, server_key) = certificate(&["echo.test"]);
        let (backend, mut sessions) = tls_echo_server(acceptor(server_cert.clone(), server_key)).await;
        let (proxy_cert, proxy_key) = certificate(&["127.0.0.1"]);
        let mut proxy =
            Proxy::start_tls(Mode::Auth(CREDENTIALS), backend, acceptor(proxy_cert.clone(), proxy_key)).await;
        let url = format!("https://user:pass@{}", proxy.authority());

        // The proxy with its own roots, the server with others.
        let connector = Connector::new()
            .tls_config(trusting(server_cert.clone()))
            .proxy_tls_config(trusting(proxy_cert.clone()))
            .proxy(&url);
        let (ws, response) = connector.connect("wss://echo.test/secure").await.unwrap();
        assert_eq!(response.status(), 101);
        assert!(ws.with_io(|io| io.is_tls()));
        round_trip(ws).await;
        assert_eq!(
            proxy.head().await,
            format!(
                "CONNECT echo.test:443 HTTP/1.1\r\nHost: echo.test:443\r\nProxy-Authorization: {CREDENTIALS}\r\n\r\n"
            )
        );
        assert_eq!(sessions.recv().await.unwrap().unwrap(), b"http/1.1");

        // The same roots for both.
        let both = trusting_all(&[server_cert, proxy_cert]);
        let connector = Connector::new().tls_config(both).proxy(&url);
        let (ws, _) = connector.connect("wss://echo.test:8443/").await.unwrap();
        round_trip(ws).await;
        assert!(proxy.head().await.starts_with("CONNECT echo.test:8443 HTTP/1.1\r\n"));
    })
    .await;
}

#[tokio::test]
async fn ws_through_an_https_proxy_is_encrypted_to_the_proxy() {
    bounded(async {
        let backend = plain_echo_server().await;
        let (cert, key) = certificate(&["127.0.0.1"]);
        let mut proxy = Proxy::start_tls(Mode::Open, backend, acceptor(cert.clone(), key)).await;
        let connector = Connector::new().tls_config(trusting(cert)).proxy(&proxy.url);
        let (ws, _) = connector.connect("ws://echo.test/").await.unwrap();
        assert!(ws.with_io(|io| io.is_tls()));
        round_trip(ws).await;
        assert!(proxy.head().await.starts_with("CONNECT echo.test:80 HTTP/1.1\r\n"));
    })
    .await;
}

#[tokio::test]
async fn an_https_proxy_from_each_environment_variable_and_no_proxy() {
    bounded(async {
        let backend = plain_echo_server().await;
        let (cert, key) = certificate(&["127.0.0.1"]);
        let mut proxy = Proxy::start_tls(Mode::Open, backend, acceptor(cert.clone(), key)).await;
        // A wss:// server is not needed: ws:// takes HTTP_PROXY / ALL_PROXY,
        // and the wss:// rows of the selection are checked in reach.rs.
        for name in ["HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"] {
            let vars = [(name, proxy.url.as_str()), ("NO_PROXY", "direct.test")];
            let connector = Connector::new().tls_config(trusting(cert.clone())).proxy_env(env(&vars));
            let (ws, _) = connector.connect("ws://echo.test:81/").await.unwrap();
            round_trip(ws).await;
            assert!(proxy.head().await.starts_with("CONNECT echo.test:81 HTTP/1.1\r\n"), "{name}");
            // NO_PROXY (checked without a connection: a direct one would
            // leave loopback).
            assert_eq!(connector.proxy_for("ws://direct.test/").unwrap(), None, "{name}");
        }
        // HTTPS_PROXY is for wss:// only.
        let connector = Connector::new().proxy_env(env(&[("HTTPS_PROXY", proxy.url.as_str())]));
        assert_eq!(connector.proxy_for("ws://echo.test/").unwrap(), None);
        assert_eq!(connector.proxy_for("wss://echo.test/").unwrap().as_deref(), Some(proxy.url.as_str()));
    })
    .await;
}

#[tokio::test]
async fn an_untrusted_proxy_certificate_is_a_tls_error() {
    bounded(async {
        let backend = plain_echo_server().await;
        let (cert, key) = certificate(&["127.0.0.1"]);
        let (stranger, _) = certificate(&["127.0.0.1"]);
        let mut proxy = Proxy::start_tls(Mode::Open, backend, acceptor(cert, key)).await;
        // The server's roots do not vouch for the proxy, and neither do the
        // proxy's own when they are someone else's.
        for connector in [
            Connector::new().tls_config(trusting(stranger.clone())),
            Connector::new().proxy_tls_config(trusting(stranger)),
        ] {
            let err = tls_error(connector.proxy(&proxy.url).connect("ws://echo.test/").await);
            assert!(is_untrusted(&err), "{err:?}");
        }
        assert!(proxy.heads.try_recv().is_err(), "a CONNECT went to an untrusted proxy");
    })
    .await;
}

#[tokio::test]
async fn https_proxy_refusals_stalls_and_hang_ups_are_typed() {
    bounded(async {
        let backend = plain_echo_server().await;
        let (cert, key) = certificate(&["127.0.0.1"]);
        let connector = |url: &str| Connector::new().tls_config(trusting(cert.clone())).proxy(url);

        let proxy = Proxy::start_tls(Mode::Auth(CREDENTIALS), backend, acceptor(cert.clone(), key.clone_key())).await;
        let wrong = format!("https://user:wrong@{}", proxy.authority());
        assert_eq!(
            handshake_error(connector(&wrong).connect("ws://echo.test/").await),
            HandshakeError::ProxyRefused(StatusCode::PROXY_AUTHENTICATION_REQUIRED)
        );
        let proxy = Proxy::start_tls(Mode::Garbage, backend, acceptor(cert.clone(), key.clone_key())).await;
        assert_eq!(
            handshake_error(connector(&proxy.url).connect("ws://echo.test/").await),
            HandshakeError::MalformedProxyResponse
        );
        let proxy = Proxy::start_tls(Mode::Close, backend, acceptor(cert.clone(), key.clone_key())).await;
        assert_eq!(
            handshake_error(connector(&proxy.url).connect("ws://echo.test/").await),
            HandshakeError::UnexpectedEof
        );
        let proxy = Proxy::start_tls(Mode::Silent, backend, acceptor(cert.clone(), key.clone_key())).await;
        let stalled = connector(&proxy.url).handshake_timeout(Duration::from_millis(300));
        assert_eq!(handshake_error(stalled.connect("ws://echo.test/").await), HandshakeError::Timeout);
    })
    .await;
}
