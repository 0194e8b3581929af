//! TLS for the client: the transport ([`MaybeTlsStream`], `stream.rs`), the
//! two backends (rustls in `rustls.rs`, the platform's library through
//! native-tls in `native.rs`) and the choice between them.
//!
//! # Choosing a backend
//!
//! A connector holds at most one configuration of each backend for the
//! server ([`Connector::tls_config`], [`Connector::native_tls`]) and for an
//! `https://` proxy ([`Connector::proxy_tls_config`],
//! [`Connector::proxy_native_tls`]). [`TlsSettings::choose`] picks, in this
//! order, whatever the order of the setter calls:
//!
//! 1. a native-tls connector given to the connector;
//! 2. a rustls configuration given to the connector;
//! 3. rustls with the default roots, when a root feature is on
//!    (`rustls-webpki-roots`, `rustls-native-roots`);
//! 4. native-tls with the platform's trust store, when `native-tls` is on;
//! 5. otherwise [`HandshakeError::NoTlsRoots`] (`rustls` without roots) or
//!    [`HandshakeError::TlsNotEnabled`] (no TLS feature).
//!
//! So with both features on, rustls serves by default and native-tls serves
//! the connectors that are given a native-tls connector. An `https://` proxy
//! uses its own settings when it has any, else the server's.
//!
//! The functions here hide the feature switches from `client.rs`, the way
//! `extensions.rs` does for compression: without a TLS feature,
//! [`TlsConfig`] is uninhabited.
//!
//! [`Connector::tls_config`]: crate::Connector
//! [`Connector::native_tls`]: crate::Connector
//! [`Connector::proxy_tls_config`]: crate::Connector
//! [`Connector::proxy_native_tls`]: crate::Connector

#[cfg(feature = "native-tls")]
mod native;
#[cfg(feature = "rustls")]
mod rustls;
mod stream;

use std::fmt;

#[cfg(feature = "rustls")]
pub(crate) use self::rustls::force_alpn;
pub use self::stream::MaybeTlsStream;
use super::HandshakeError;
use crate::error::Result;

/// A client TLS configuration of one backend, shared by the connections
/// that use it. Uninhabited without a TLS feature.
#[derive(Clone)]
pub(crate) enum TlsConfig {
    /// rustls, with ALPN `http/1.1`.
    #[cfg(feature = "rustls")]
    Rustls(std::sync::Arc<::rustls::ClientConfig>),
    /// The platform's TLS library.
    #[cfg(feature = "native-tls")]
    Native(tokio_native_tls::TlsConnector),
}

impl fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let _ = &f;
        match *self {
            #[cfg(feature = "rustls")]
            TlsConfig::Rustls(_) => f.write_str("Rustls(..)"),
            #[cfg(feature = "native-tls")]
            TlsConfig::Native(_) => f.write_str("NativeTls(..)"),
        }
    }
}

/// The TLS configurations given to a connector, for the server or for an
/// `https://` proxy: none, or one per backend.
#[derive(Clone, Default)]
pub(crate) struct TlsSettings {
    /// From [`Connector::tls_config`](crate::Connector), ALPN forced.
    #[cfg(feature = "rustls")]
    pub(crate) rustls: Option<std::sync::Arc<::rustls::ClientConfig>>,
    /// From [`Connector::native_tls`](crate::Connector).
    #[cfg(feature = "native-tls")]
    pub(crate) native: Option<tokio_native_tls::TlsConnector>,
}

impl fmt::Debug for TlsSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = f.debug_struct("TlsSettings");
        #[cfg(feature = "rustls")]
        out.field("rustls", &self.rustls.is_some());
        #[cfg(feature = "native-tls")]
        out.field("native_tls", &self.native.is_some());
        out.finish()
    }
}

impl TlsSettings {
    /// Whether a configuration was given.
    fn is_set(&self) -> bool {
        #[cfg(feature = "native-tls")]
        if self.native.is_some() {
            return true;
        }
        #[cfg(feature = "rustls")]
        if self.rustls.is_some() {
            return true;
        }
        false
    }

    /// The configuration to use, by the rules of the module documentation.
    pub(crate) fn choose(&self) -> Result<TlsConfig> {
        #[cfg(feature = "native-tls")]
        if let Some(connector) = &self.native {
            return Ok(TlsConfig::Native(connector.clone()));
        }
        #[cfg(feature = "rustls")]
        if let Some(config) = &self.rustls {
            return Ok(TlsConfig::Rustls(config.clone()));
        }
        default_config()
    }

    /// The configuration for an `https://` proxy: its own (`self`) when it
    /// has one, else the server's.
    pub(crate) fn choose_for_proxy(&self, server: &TlsSettings) -> Result<TlsConfig> {
        if self.is_set() {
            self.choose()
        } else {
            server.choose()
        }
    }
}

/// Steps 3 to 5 of the module documentation: the default configuration.
fn default_config() -> Result<TlsConfig> {
    if cfg!(any(feature = "rustls-webpki-roots", feature = "rustls-native-roots")) {
        return default_rustls();
    }
    if cfg!(feature = "native-tls") {
        return default_native();
    }
    Err(if cfg!(feature = "rustls") { HandshakeError::NoTlsRoots } else { HandshakeError::TlsNotEnabled }.into())
}

/// rustls with the roots the features select.
#[cfg(any(feature = "rustls-webpki-roots", feature = "rustls-native-roots"))]
fn default_rustls() -> Result<TlsConfig> {
    rustls::default_config().map(TlsConfig::Rustls)
}

/// No roots built in (never called: see [`default_config`]).
#[cfg(not(any(feature = "rustls-webpki-roots", feature = "rustls-native-roots")))]
fn default_rustls() -> Result<TlsConfig> {
    Err(HandshakeError::NoTlsRoots.into())
}

/// native-tls with the platform's roots.
#[cfg(feature = "native-tls")]
fn default_native() -> Result<TlsConfig> {
    native::default_connector().map(TlsConfig::Native)
}

/// No native-tls built in (never called: see [`default_config`]).
#[cfg(not(feature = "native-tls"))]
fn default_native() -> Result<TlsConfig> {
    Err(HandshakeError::TlsNotEnabled.into())
}

impl TlsConfig {
    /// This configuration offering `h2` by ALPN, then `http/1.1` when
    /// `with_http1`. A native-tls connector is used as given: its ALPN list
    /// is fixed when it is built (`request_alpns`).
    #[cfg(feature = "hyper")]
    pub(crate) fn offering_h2(self, with_http1: bool) -> TlsConfig {
        let _ = with_http1;
        match self {
            #[cfg(feature = "rustls")]
            TlsConfig::Rustls(config) => TlsConfig::Rustls(rustls::alpn_h2(&config, with_http1)),
            #[cfg(feature = "native-tls")]
            native @ TlsConfig::Native(_) => native,
        }
    }
}

/// Runs the TLS handshake over `io`, checking the peer's certificate
/// against `host` (a DNS name or an IP address). A failed handshake or
/// verification is an [`Error::Io`](crate::Error::Io) whose inner error is
/// the backend's (`rustls::Error`, `native_tls::Error`).
pub(crate) async fn wrap(io: MaybeTlsStream, host: &str, config: &TlsConfig) -> Result<MaybeTlsStream> {
    let _ = (&io, host);
    match *config {
        #[cfg(feature = "rustls")]
        TlsConfig::Rustls(ref config) => rustls::wrap(io, host, config.clone()).await,
        #[cfg(feature = "native-tls")]
        TlsConfig::Native(ref connector) => native::wrap(io, host, connector).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Which backend a choice fell on.
    fn backend(config: &TlsConfig) -> &'static str {
        match *config {
            #[cfg(feature = "rustls")]
            TlsConfig::Rustls(_) => "rustls",
            #[cfg(feature = "native-tls")]
            TlsConfig::Native(_) => "native-tls",
        }
    }

    #[cfg(feature = "rustls")]
    fn own_rustls() -> std::sync::Arc<::rustls::ClientConfig> {
        let provider = std::sync::Arc::new(::rustls::crypto::ring::default_provider());
        let config = ::rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(::rustls::RootCertStore::empty())
            .with_no_client_auth();
        std::sync::Arc::new(config)
    }

    #[test]
    fn the_default_backend() {
        let chosen = TlsSettings::default().choose();
        let roots = cfg!(any(feature = "rustls-webpki-roots", feature = "rustls-native-roots"));
        match chosen {
            Ok(config) if roots => assert_eq!(backend(&config), "rustls"),
            Ok(config) => assert_eq!(backend(&config), "native-tls"),
            // Native roots may be missing on a bare machine.
            Err(crate::Error::Io(_)) if roots => {}
            Err(crate::Error::Handshake(e)) if !roots && !cfg!(feature = "native-tls") => {
                let expected =
                    if cfg!(feature = "rustls") { HandshakeError::NoTlsRoots } else { HandshakeError::TlsNotEnabled };
                assert_eq!(e, expected);
            }
            Err(e) => panic!("unexpected {e:?}"),
        }
    }

    #[cfg(feature = "rustls")]
    #[test]
    fn an_own_rustls_config_is_used_as_given() {
        let own = own_rustls();
        let settings = TlsSettings { rustls: Some(own.clone()), ..TlsSettings::default() };
        match settings.choose().unwrap() {
            TlsConfig::Rustls(chosen) => assert!(std::sync::Arc::ptr_eq(&chosen, &own)),
            #[allow(unreachable_patterns)]
            other => panic!("{other:?}"),
        }
    }

    #[cfg(feature = "native-tls")]
    #[test]
    fn a_native_connector_wins_and_a_proxy_falls_back_to_the_server_settings() {
        let native = tokio_native_tls::native_tls::TlsConnector::new().unwrap();
        let server = TlsSettings { native: Some(native.into()), ..TlsSettings::default() };
        #[cfg(feature = "rustls")]
        let server = TlsSettings { rustls: Some(own_rustls()), ..server };
        assert_eq!(backend(&server.choose().unwrap()), "native-tls");
        assert_eq!(backend(&TlsSettings::default().choose_for_proxy(&server).unwrap()), "native-tls");
        #[cfg(feature = "rustls")]
        {
            let proxy = TlsSettings { rustls: Some(own_rustls()), ..TlsSettings::default() };
            assert_eq!(backend(&proxy.choose_for_proxy(&server).unwrap()), "rustls");
        }
    }
}
