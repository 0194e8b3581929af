//! SOCKS5 proxies (feature `socks`): `socks5://` resolves the destination
//! here, `socks5h://` lets the proxy resolve it; user and password by RFC
//! 1929; `wss://` runs TLS inside the tunnel. Refusals, bad replies,
//! hang-ups and stalls are typed errors. The proxy is the test server in
//! `reach_support/socks.rs`, on loopback.

#![cfg(feature = "socks")]

mod reach_support;

use std::time::Duration;

use reach_support::socks::{Socks, SocksMode};
use reach_support::{bounded, env, handshake_error, plain_echo_server, round_trip};
use silverback::{Connector, HandshakeError};

#[tokio::test]
async fn ws_through_socks5h_sends_the_name_and_socks5_an_address() {
    bounded(async {
        let backend = plain_echo_server().await;
        let mut socks = Socks::start(SocksMode::Open(None), backend).await;

        let (ws, _) = Connector::new().proxy(&socks.url("socks5h", None)).connect("ws://echo.test:81/").await.unwrap();
        round_trip(ws).await;
        assert_eq!(socks.target().await, "echo.test:81");

        // socks5:// resolves here (localhost: 127.0.0.1 or ::1).
        let (ws, _) = Connector::new().proxy(&socks.url("socks5", None)).connect("ws://localhost:82/").await.unwrap();
        round_trip(ws).await;
        let target = socks.target().await;
        assert!(target == "127.0.0.1:82" || target == "[::1]:82", "{target}");

        // An IP literal goes as an address with either scheme.
        let (ws, _) = Connector::new().proxy(&socks.url("socks5h", None)).connect("ws://[2001:db8::7]/").await.unwrap();
        round_trip(ws).await;
        assert_eq!(socks.target().await, "[2001:db8::7]:80");
    })
    .await;
}

#[tokio::test]
async fn socks_credentials_are_sent_by_rfc_1929() {
    bounded(async {
        let backend = plain_echo_server().await;
        let mut socks = Socks::start(SocksMode::Open(Some(("us:er", "p@ss word"))), backend).await;
        let url = socks.url("socks5h", Some("us%3Aer:p%40ss%20word"));
        let (ws, _) = Connector::new().proxy(&url).connect("ws://echo.test/").await.unwrap();
        round_trip(ws).await;
        assert_eq!(socks.target().await, "echo.test:80");

        // Wrong password; no credentials where the proxy wants some.
        for userinfo in [Some("us%3Aer:wrong"), None] {
            let url = socks.url("socks5h", userinfo);
            let err = handshake_error(Connector::new().proxy(&url).connect("ws://echo.test/").await);
            assert_eq!(err, HandshakeError::SocksAuthFailed, "{userinfo:?}");
            assert_eq!(err.to_string(), "socks proxy refused the credentials");
        }
    })
    .await;
}

#[tokio::test]
async fn socks_failures_are_typed() {
    bounded(async {
        let backend = plain_echo_server().await;
        let table = [
            (SocksMode::Fail(5), HandshakeError::SocksRefused(5)),
            (SocksMode::Fail(2), HandshakeError::SocksRefused(2)),
            (SocksMode::Fail(1), HandshakeError::SocksRefused(1)),
            (SocksMode::Fail(0x42), HandshakeError::MalformedSocksReply),
            (SocksMode::BadAddressType, HandshakeError::MalformedSocksReply),
            (SocksMode::Garbage, HandshakeError::MalformedSocksReply),
            (SocksMode::Close, HandshakeError::UnexpectedEof),
        ];
        for (mode, expected) in table {
            let socks = Socks::start(mode, backend).await;
            for scheme in ["socks5", "socks5h"] {
                let result = Connector::new().proxy(&socks.url(scheme, None)).connect("ws://127.0.0.9:1/").await;
                assert_eq!(handshake_error(result), expected, "{mode:?} {scheme}");
            }
        }
    })
    .await;
}

#[tokio::test]
async fn a_stalled_socks_proxy_times_out() {
    bounded(async {
        let backend = plain_echo_server().await;
        let socks = Socks::start(SocksMode::Silent, backend).await;
        let connector =
            Connector::new().proxy(&socks.url("socks5h", None)).handshake_timeout(Duration::from_millis(300));
        assert_eq!(handshake_error(connector.connect("ws://echo.test/").await), HandshakeError::Timeout);
    })
    .await;
}

#[tokio::test]
async fn socks_proxies_from_each_environment_variable_and_no_proxy() {
    bounded(async {
        let backend = plain_echo_server().await;
        let mut socks = Socks::start(SocksMode::Open(None), backend).await;
        for scheme in ["socks5", "socks5h"] {
            let url = socks.url(scheme, None);
            for name in ["ALL_PROXY", "all_proxy", "HTTP_PROXY", "http_proxy"] {
                let vars = [(name, url.as_str()), ("NO_PROXY", "direct.test,10.0.0.0/8")];
                let connector = Connector::new().proxy_env(env(&vars));
                // A TEST-NET address: never reached, the proxy relays to
                // loopback (and socks5:// needs no resolver for it).
                let (ws, _) = connector.connect("ws://192.0.2.1:83/").await.unwrap();
                round_trip(ws).await;
                assert_eq!(socks.target().await, "192.0.2.1:83", "{scheme} {name}");
                assert_eq!(connector.proxy_for("ws://direct.test/").unwrap(), None, "{scheme} {name}");
                assert_eq!(connector.proxy_for("ws://10.1.2.3/").unwrap(), None, "{scheme} {name}");
            }
            // wss:// reads HTTPS_PROXY, then ALL_PROXY.
            for name in ["HTTPS_PROXY", "https_proxy", "ALL_PROXY"] {
                let vars = [(name, url.as_str()), ("no_proxy", ".corp.test")];
                let connector = Connector::new().proxy_env(env(&vars));
                assert_eq!(connector.proxy_for("wss://echo.test/").unwrap().as_deref(), Some(url.as_str()));
                assert_eq!(connector.proxy_for("wss://git.corp.test/").unwrap(), None);
            }
        }
    })
    .await;
}

#[cfg(feature = "rustls")]
#[tokio::test]
async fn wss_through_socks5_and_socks5h_runs_tls_inside_the_tunnel() {
    use reach_support::tls::{acceptor, certificate, tls_echo_server, trusting};

    bounded(async {
        let (cert, key) = certificate(&["echo.test", "localhost"]);
        let (backend, mut sessions) = tls_echo_server(acceptor(cert.clone(), key)).await;
        let mut socks = Socks::start(SocksMode::Open(Some(("u", "p"))), backend).await;
        for (scheme, url) in [("socks5h", "wss://echo.test/"), ("socks5", "wss://localhost:8443/")] {
            let connector = Connector::new().tls_config(trusting(cert.clone())).proxy(&socks.url(scheme, Some("u:p")));
            let (ws, _) = connector.connect(url).await.unwrap();
            round_trip(ws).await;
            assert_eq!(sessions.recv().await.unwrap().unwrap(), b"http/1.1", "{scheme}");
            let target = socks.target().await;
            assert!(["echo.test:443", "127.0.0.1:8443", "[::1]:8443"].contains(&target.as_str()), "{target}");
        }
    })
    .await;
}
