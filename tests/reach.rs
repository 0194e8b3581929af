//! Reach: `wss://` over rustls in both directions, HTTP `CONNECT` proxies
//! (open, asking for credentials, refusing, misbehaving, with TLS inside the
//! tunnel), and the choice of a proxy from environment variables. The other
//! proxy kinds, native-tls, dual-stack connect and reconnecting have their
//! own files: `reach_https_proxy.rs`, `reach_socks.rs`,
//! `reach_native_tls.rs`, `reach_dual_stack.rs`, `reconnect.rs`; the test
//! servers they share are in `reach_support/`.
//!
//! Everything runs over loopback against servers and proxies started here;
//! the environment is injected with `Connector::proxy_env`, never mutated.
//! The TLS tests need the `rustls` feature:
//! `cargo test --test reach --features rustls` (or `--all-features`).
//! Every test bounds itself with `bounded`, so none can hang.

mod reach_support;

use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use http::StatusCode;
use reach_support::{bounded, env, handshake_error, plain_echo_server, round_trip, Mode, Proxy};
use silverback::{Connector, Error, HandshakeError};
use tokio::net::TcpListener;

// ---------------------------------------------------------------- proxy

#[tokio::test]
async fn ws_through_a_proxy_without_credentials() {
    bounded(async {
        let backend = plain_echo_server().await;
        let mut proxy = Proxy::start(Mode::Open, backend).await;
        let connector = Connector::new().proxy(&proxy.url);
        let (ws, response) = connector.connect("ws://echo.test:8080/chat?room=1").await.unwrap();
        assert_eq!(response.status(), 101);
        round_trip(ws).await;
        assert_eq!(proxy.head().await, "CONNECT echo.test:8080 HTTP/1.1\r\nHost: echo.test:8080\r\n\r\n");
    })
    .await;
}

#[tokio::test]
async fn ws_through_a_proxy_with_percent_encoded_credentials() {
    const EXPECTED: &str = "Basic dXNlcjpwQHNzIHdvcmQ=";
    assert_eq!(EXPECTED, format!("Basic {}", STANDARD.encode("user:p@ss word")));
    bounded(async {
        let backend = plain_echo_server().await;
        let mut proxy = Proxy::start(Mode::Auth(EXPECTED), backend).await;
        let host = proxy.url.strip_prefix("http://").unwrap().to_owned();

        let connector = Connector::new().proxy(&format!("http://user:p%40ss%20word@{host}/"));
        let (ws, _) = connector.connect("ws://echo.test/").await.unwrap();
        round_trip(ws).await;
        assert_eq!(
            proxy.head().await,
            format!("CONNECT echo.test:80 HTTP/1.1\r\nHost: echo.test:80\r\nProxy-Authorization: {EXPECTED}\r\n\r\n")
        );

        // Wrong or missing credentials: 407, as a typed error.
        for url in [format!("http://user:wrong@{host}"), format!("http://{host}")] {
            let err = handshake_error(Connector::new().proxy(&url).connect("ws://echo.test/").await);
            assert_eq!(err, HandshakeError::ProxyRefused(StatusCode::PROXY_AUTHENTICATION_REQUIRED), "{url}");
            assert_eq!(err.to_string(), "proxy refused the tunnel with status 407 Proxy Authentication Required");
            proxy.head().await;
        }
    })
    .await;
}

#[tokio::test]
async fn proxy_refusals_are_typed_errors_with_the_status() {
    bounded(async {
        let backend = plain_echo_server().await;
        for (status, expected) in [(403, StatusCode::FORBIDDEN), (502, StatusCode::BAD_GATEWAY)] {
            let proxy = Proxy::start(Mode::Refuse(status), backend).await;
            let result = Connector::new().proxy(&proxy.url).connect("ws://echo.test/").await;
            assert_eq!(handshake_error(result), HandshakeError::ProxyRefused(expected));
        }
    })
    .await;
}

#[tokio::test]
async fn malformed_proxy_answers_are_refused() {
    bounded(async {
        let backend = plain_echo_server().await;
        for mode in [Mode::Garbage, Mode::Trailing] {
            let proxy = Proxy::start(mode, backend).await;
            let result = Connector::new().proxy(&proxy.url).connect("ws://echo.test/").await;
            assert_eq!(handshake_error(result), HandshakeError::MalformedProxyResponse, "{mode:?}");
        }
        // Hanging up in the middle of the status line.
        let proxy = Proxy::start(Mode::Close, backend).await;
        let result = Connector::new().proxy(&proxy.url).connect("ws://echo.test/").await;
        assert_eq!(handshake_error(result), HandshakeError::UnexpectedEof);
    })
    .await;
}

#[tokio::test]
async fn a_silent_proxy_times_out() {
    bounded(async {
        let backend = plain_echo_server().await;
        let proxy = Proxy::start(Mode::Silent, backend).await;
        let connector = Connector::new().proxy(&proxy.url).handshake_timeout(Duration::from_millis(200));
        assert_eq!(handshake_error(connector.connect("ws://echo.test/").await), HandshakeError::Timeout);
    })
    .await;
}

#[tokio::test]
async fn an_unreachable_proxy_is_an_io_error() {
    bounded(async {
        // A port that was just free: nothing listens there any more.
        let addr = TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap();
        let result = Connector::new().proxy(&format!("http://{addr}")).connect("ws://echo.test/").await;
        assert!(matches!(result, Err(Error::Io(_))), "{result:?}");
    })
    .await;
}

#[tokio::test]
async fn bad_proxy_urls_fail_before_any_connection() {
    bounded(async {
        let table: &[(Connector, HandshakeError)] = &[
            (Connector::new().proxy("socks4://127.0.0.1:1"), HandshakeError::UnsupportedProxyScheme),
            (Connector::new().proxy("http://u:%zz@127.0.0.1:1"), HandshakeError::InvalidProxyUrl),
            (Connector::new().proxy("http://127.0.0.1:1/path"), HandshakeError::InvalidProxyUrl),
            (
                Connector::new().proxy_env(env(&[("ALL_PROXY", "ftp://127.0.0.1:1")])),
                HandshakeError::UnsupportedProxyScheme,
            ),
        ];
        for (connector, err) in table {
            assert_eq!(handshake_error(connector.connect("ws://echo.test/").await), *err, "{connector:?}");
        }
    })
    .await;
}

#[tokio::test]
async fn the_environment_proxy_is_used_through_an_injected_lookup() {
    bounded(async {
        let backend = plain_echo_server().await;
        let mut proxy = Proxy::start(Mode::Open, backend).await;
        let vars = [("http_proxy", proxy.url.as_str()), ("NO_PROXY", "other.test")];
        let connector = Connector::new().proxy_env(env(&vars));
        let (ws, _) = connector.connect("ws://echo.test:81/").await.unwrap();
        round_trip(ws).await;
        assert!(proxy.head().await.starts_with("CONNECT echo.test:81 HTTP/1.1\r\n"));

        // Loopback goes direct, whatever the environment says.
        let (ws, _) = connector.connect(&format!("ws://{backend}/")).await.unwrap();
        round_trip(ws).await;
        assert!(proxy.heads.try_recv().is_err(), "loopback went through the proxy");
    })
    .await;
}

/// Variables: (name, value) pairs.
type Vars<'a> = &'a [(&'a str, &'a str)];

#[test]
fn proxy_selection_from_the_environment() {
    // (variables, url, expected proxy)
    let table: &[(Vars<'_>, &str, Option<&str>)] = &[
        (&[], "wss://example.com/", None),
        (&[("HTTPS_PROXY", "http://s:1")], "wss://example.com/", Some("http://s:1")),
        (&[("HTTPS_PROXY", "http://s:1")], "ws://example.com/", None),
        (&[("HTTP_PROXY", "http://h:1")], "ws://example.com/", Some("http://h:1")),
        (&[("HTTP_PROXY", "http://h:1")], "wss://example.com/", None),
        (&[("ALL_PROXY", "http://a:1")], "wss://example.com/", Some("http://a:1")),
        (&[("ALL_PROXY", "http://a:1")], "ws://example.com/", Some("http://a:1")),
        (&[("HTTPS_PROXY", "http://s:1"), ("ALL_PROXY", "http://a:1")], "wss://example.com/", Some("http://s:1")),
        (&[("HTTPS_PROXY", "http://S:1"), ("https_proxy", "http://s:1")], "wss://example.com/", Some("http://s:1")),
        (&[("HTTP_PROXY", "http://H:1"), ("http_proxy", "http://h:1")], "ws://example.com/", Some("http://h:1")),
        (&[("ALL_PROXY", "http://a:1"), ("NO_PROXY", "example.com")], "wss://www.example.com/", None),
        (&[("ALL_PROXY", "http://a:1"), ("NO_PROXY", ".example.com")], "wss://example.com/", None),
        (&[("ALL_PROXY", "http://a:1"), ("NO_PROXY", "example.com")], "wss://notexample.com/", Some("http://a:1")),
        (&[("ALL_PROXY", "http://a:1"), ("no_proxy", "*")], "wss://example.com/", None),
        (&[("ALL_PROXY", "http://a:1"), ("NO_PROXY", "example.com:8443")], "wss://example.com:8443/", None),
        (&[("ALL_PROXY", "http://a:1"), ("NO_PROXY", "example.com:8443")], "wss://example.com/", Some("http://a:1")),
        (&[("ALL_PROXY", "http://a:1"), ("NO_PROXY", "10.1.2.3")], "ws://10.1.2.3/", None),
        (&[("ALL_PROXY", "http://a:1"), ("NO_PROXY", "10.0.0.0/8")], "ws://10.1.2.3/", None),
        (&[("ALL_PROXY", "http://a:1"), ("NO_PROXY", "2001:db8::1")], "ws://[2001:db8::1]/", None),
        (&[("ALL_PROXY", "http://a:1")], "ws://localhost:9/", None),
        (&[("ALL_PROXY", "http://a:1")], "ws://127.0.0.1:9/", None),
        (&[("ALL_PROXY", "http://a:1")], "ws://[::1]:9/", None),
        (&[("HTTP_PROXY", "http://h:1"), ("REQUEST_METHOD", "POST")], "ws://example.com/", None),
        // https:// proxies, from each variable, and NO_PROXY.
        (&[("HTTPS_PROXY", "https://s:1")], "wss://example.com/", Some("https://s:1")),
        (&[("HTTP_PROXY", "https://h:1")], "ws://example.com/", Some("https://h:1")),
        (&[("ALL_PROXY", "https://a:1")], "ws://example.com/", Some("https://a:1")),
        (&[("ALL_PROXY", "https://a:1")], "wss://example.com/", Some("https://a:1")),
        (&[("HTTPS_PROXY", "https://s:1"), ("NO_PROXY", "example.com")], "wss://example.com/", None),
        (&[("HTTP_PROXY", "https://h:1"), ("no_proxy", ".example.com")], "ws://www.example.com/", None),
        (&[("ALL_PROXY", "https://a:1"), ("NO_PROXY", "*")], "ws://example.com/", None),
    ];
    for &(vars, url, expected) in table {
        let connector = Connector::new().proxy_env(env(vars));
        assert_eq!(connector.proxy_for(url).unwrap().as_deref(), expected, "{vars:?} {url}");
    }

    // An explicit proxy ignores the environment; no_proxy turns both off.
    let everything = env(&[("ALL_PROXY", "http://a:1"), ("NO_PROXY", "*")]);
    let explicit = Connector::new().proxy_env(everything).proxy("http://p:2");
    assert_eq!(explicit.proxy_for("ws://localhost/").unwrap().as_deref(), Some("http://p:2"));
    let direct = Connector::new().proxy("http://p:2").no_proxy();
    assert_eq!(direct.proxy_for("wss://example.com/").unwrap(), None);
    assert_eq!(Connector::new().proxy_for("ftp://example.com/"), Err(HandshakeError::UnsupportedScheme));
}

#[tokio::test]
async fn connector_debug_hides_proxy_credentials() {
    let connector = Connector::new().proxy("http://user:hunter2@proxy:3128");
    let text = format!("{connector:?}");
    assert!(!text.contains("hunter2"), "{text}");
    assert!(text.contains("proxy"), "{text}");
}

#[cfg(not(any(feature = "rustls", feature = "native-tls")))]
#[tokio::test]
async fn wss_without_a_tls_feature_is_tls_not_enabled() {
    bounded(async {
        // Refused before any connection, proxy or not.
        for connector in [
            Connector::new(),
            Connector::new().proxy("http://127.0.0.1:1"),
            Connector::new().proxy("https://127.0.0.1:1"),
        ] {
            assert_eq!(handshake_error(connector.connect("wss://127.0.0.1:1/").await), HandshakeError::TlsNotEnabled);
        }
    })
    .await;
}

// ------------------------------------------------------------------ TLS

#[cfg(feature = "rustls")]
mod tls {
    use silverback::rustls;

    use super::reach_support::tls::{acceptor, certificate, tls_echo_server, tls_error, trusting};
    use super::*;

    #[tokio::test]
    async fn wss_round_trip_with_an_own_config_negotiates_http11() {
        bounded(async {
            let (cert, key) = certificate(&["localhost", "127.0.0.1"]);
            let (addr, mut sessions) = tls_echo_server(acceptor(cert.clone(), key)).await;
            let connector = Connector::new().tls_config(trusting(cert)).no_proxy();
            for url in [format!("wss://127.0.0.1:{}/echo", addr.port()), format!("wss://localhost:{}/", addr.port())] {
                let (ws, response) = connector.connect(&url).await.unwrap();
                assert_eq!(response.status(), 101);
                round_trip(ws).await;
                assert_eq!(sessions.recv().await.unwrap().unwrap(), b"http/1.1", "{url}");
            }
        })
        .await;
    }

    #[tokio::test]
    async fn a_wrongly_named_certificate_is_a_tls_error() {
        bounded(async {
            let (cert, key) = certificate(&["other.test"]);
            let (addr, mut sessions) = tls_echo_server(acceptor(cert.clone(), key)).await;
            let connector = Connector::new().tls_config(trusting(cert)).no_proxy();
            let err = tls_error(connector.connect(&format!("wss://127.0.0.1:{}/", addr.port())).await);
            assert!(
                matches!(
                    err,
                    rustls::Error::InvalidCertificate(
                        rustls::CertificateError::NotValidForName
                            | rustls::CertificateError::NotValidForNameContext { .. }
                    )
                ),
                "{err:?}"
            );
            // The server saw the client give up.
            assert!(sessions.recv().await.unwrap().is_err());
        })
        .await;
    }

    #[tokio::test]
    async fn reconnect_does_not_retry_an_untrusted_certificate() {
        bounded(async {
            let (cert, key) = certificate(&["127.0.0.1"]);
            let (stranger, _) = certificate(&["127.0.0.1"]);
            let (addr, mut sessions) = tls_echo_server(acceptor(cert, key)).await;
            let backoff = silverback::Backoff::new().initial(Duration::from_millis(10));
            let connector = Connector::new().tls_config(trusting(stranger)).no_proxy();
            let mut connections = connector.reconnect(format!("wss://{addr}/")).backoff(backoff);
            let failed = connections.next().await.unwrap().unwrap_err();
            assert!(failed.is_final(), "{failed}");
            assert!(connections.next().await.is_none());
            assert!(sessions.recv().await.unwrap().is_err());
            tokio::time::sleep(Duration::from_millis(100)).await;
            assert!(sessions.try_recv().is_err(), "the certificate was tried again");
        })
        .await;
    }

    #[tokio::test]
    async fn an_untrusted_certificate_is_a_tls_error() {
        bounded(async {
            let (cert, key) = certificate(&["127.0.0.1"]);
            let (stranger, _) = certificate(&["127.0.0.1"]);
            let (addr, _sessions) = tls_echo_server(acceptor(cert, key)).await;
            let connector = Connector::new().tls_config(trusting(stranger)).no_proxy();
            let err = tls_error(connector.connect(&format!("wss://127.0.0.1:{}/", addr.port())).await);
            assert!(
                matches!(
                    err,
                    rustls::Error::InvalidCertificate(
                        rustls::CertificateError::BadSignature | rustls::CertificateError::UnknownIssuer
                    )
                ),
                "{err:?}"
            );
        })
        .await;
    }

    /// The default roots (webpki or native) do not trust a self-signed
    /// certificate; with no roots built in, `wss://` asks for a config.
    #[tokio::test]
    async fn the_default_configuration_refuses_a_self_signed_server() {
        bounded(async {
            let (cert, key) = certificate(&["127.0.0.1"]);
            let (addr, _sessions) = tls_echo_server(acceptor(cert, key)).await;
            let result = Connector::new().no_proxy().connect(&format!("wss://127.0.0.1:{}/", addr.port())).await;
            if cfg!(any(feature = "rustls-webpki-roots", feature = "rustls-native-roots")) {
                // Native roots may fail to load on a bare machine: NotFound.
                match result {
                    Err(Error::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => {}
                    result => assert!(
                        matches!(tls_error(result), rustls::Error::InvalidCertificate(_)),
                        "expected an invalid certificate"
                    ),
                }
            } else {
                assert_eq!(handshake_error(result), HandshakeError::NoTlsRoots);
            }
        })
        .await;
    }

    #[tokio::test]
    async fn wss_through_a_proxy_runs_tls_inside_the_tunnel() {
        bounded(async {
            let (cert, key) = certificate(&["echo.test"]);
            let (backend, mut sessions) = tls_echo_server(acceptor(cert.clone(), key)).await;
            let mut proxy = Proxy::start(Mode::Open, backend).await;

            // Explicit proxy.
            let connector = Connector::new().tls_config(trusting(cert.clone())).proxy(&proxy.url);
            let (ws, _) = connector.connect("wss://echo.test/secure").await.unwrap();
            round_trip(ws).await;
            assert_eq!(proxy.head().await, "CONNECT echo.test:443 HTTP/1.1\r\nHost: echo.test:443\r\n\r\n");
            assert_eq!(sessions.recv().await.unwrap().unwrap(), b"http/1.1");

            // From the environment: wss:// takes https_proxy, not http_proxy.
            let vars = [("https_proxy", proxy.url.as_str()), ("http_proxy", "http://127.0.0.1:1")];
            let connector = Connector::new().tls_config(trusting(cert)).proxy_env(env(&vars));
            let (ws, _) = connector.connect("wss://echo.test:8443/").await.unwrap();
            round_trip(ws).await;
            assert!(proxy.head().await.starts_with("CONNECT echo.test:8443 HTTP/1.1\r\n"));
            assert_eq!(sessions.recv().await.unwrap().unwrap(), b"http/1.1");
        })
        .await;
    }
}
