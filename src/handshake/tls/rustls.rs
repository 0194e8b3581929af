//! The rustls backend (feature `rustls`): the crypto provider, the roots,
//! ALPN.
//!
//! - Provider: ring, passed explicitly to every configuration this crate
//!   builds (`builder_with_provider`), so nothing depends on, or panics for
//!   want of, a process-wide default provider.
//! - Roots: the Mozilla set compiled in (`rustls-webpki-roots`), the
//!   operating system's (`rustls-native-roots`), or both when both features
//!   are on; loaded once per process. With neither, `wss://` needs
//!   [`Connector::tls_config`](crate::Connector) (or native-tls).
//! - ALPN: exactly `http/1.1` (the WebSocket handshake is an HTTP/1.1
//!   upgrade), also in a caller's configuration; `h2` (and `http/1.1` when
//!   falling back is allowed) for `Connector::http2_connect` (RFC 8441).

use std::io;
use std::sync::Arc;

use super::MaybeTlsStream;
use crate::error::Result;
use crate::handshake::HandshakeError;

/// A rustls client configuration, shared.
type Config = Arc<rustls::ClientConfig>;

/// The one ALPN protocol offered (RFC 7301), the HTTP/1.1 of the upgrade.
pub(crate) const ALPN_HTTP11: &[u8] = b"http/1.1";

/// `config` offering exactly [`ALPN_HTTP11`]: itself when it already does,
/// otherwise a copy that does.
pub(crate) fn force_alpn(config: Config) -> Config {
    if config.alpn_protocols.len() == 1 && config.alpn_protocols[0] == ALPN_HTTP11 {
        return config;
    }
    let mut config = (*config).clone();
    config.alpn_protocols = vec![ALPN_HTTP11.to_vec()];
    Arc::new(config)
}

/// A copy of `config` offering `h2` by ALPN (RFC 8441 over TLS), then
/// `http/1.1` when `with_http1`.
#[cfg(feature = "hyper")]
pub(crate) fn alpn_h2(config: &Config, with_http1: bool) -> Config {
    let mut config = (**config).clone();
    config.alpn_protocols = vec![b"h2".to_vec()];
    if with_http1 {
        config.alpn_protocols.push(ALPN_HTTP11.to_vec());
    }
    Arc::new(config)
}

/// Runs the TLS handshake over `io`, checking the server's certificate
/// against `host` (a DNS name or an IP address). A failed handshake or
/// verification is an [`Error::Io`](crate::Error::Io) whose inner error is
/// the `rustls::Error`.
pub(super) async fn wrap(io: MaybeTlsStream, host: &str, config: Config) -> Result<MaybeTlsStream> {
    let name = rustls::pki_types::ServerName::try_from(host.to_owned()).map_err(|_| HandshakeError::InvalidUrl)?;
    let tls = tokio_rustls::TlsConnector::from(config).connect(name, io).await?;
    Ok(MaybeTlsStream::Rustls(Box::new(tls)))
}

/// A fresh configuration builder on ring, with rustls' safe default
/// protocol versions (TLS 1.2 and 1.3).
#[cfg_attr(not(any(feature = "rustls-webpki-roots", feature = "rustls-native-roots")), allow(dead_code))]
fn builder() -> io::Result<rustls::ConfigBuilder<rustls::ClientConfig, rustls::WantsVerifier>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(io::Error::other)
}

/// The default configuration, built on first use and shared after: the
/// root stores are large (the native one is read from disk). A failure is
/// not remembered, so certificates installed later are found.
#[cfg(any(feature = "rustls-webpki-roots", feature = "rustls-native-roots"))]
pub(super) fn default_config() -> Result<Config> {
    use std::sync::OnceLock;

    static DEFAULT: OnceLock<Config> = OnceLock::new();
    if let Some(config) = DEFAULT.get() {
        return Ok(config.clone());
    }
    let mut roots = rustls::RootCertStore::empty();
    #[cfg(feature = "rustls-webpki-roots")]
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    #[cfg(feature = "rustls-native-roots")]
    {
        let found = rustls_native_certs::load_native_certs();
        roots.add_parsable_certificates(found.certs);
        if roots.is_empty() {
            let why = found.errors.first().map_or_else(String::new, |e| format!(": {e}"));
            let message = format!("no native root certificates found{why}");
            return Err(io::Error::new(io::ErrorKind::NotFound, message).into());
        }
    }
    let mut config = builder()?.with_root_certificates(roots).with_no_client_auth();
    config.alpn_protocols = vec![ALPN_HTTP11.to_vec()];
    Ok(DEFAULT.get_or_init(|| Arc::new(config)).clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn empty_config(alpn: &[&[u8]]) -> Config {
        let mut config =
            builder().unwrap().with_root_certificates(rustls::RootCertStore::empty()).with_no_client_auth();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Arc::new(config)
    }

    #[test]
    fn alpn_is_forced_to_http11() {
        for alpn in [&[][..], &[&b"h2"[..]], &[b"h2", b"http/1.1"], &[b"http/1.1", b"h2"]] {
            let forced = force_alpn(empty_config(alpn));
            assert_eq!(forced.alpn_protocols, vec![b"http/1.1".to_vec()], "{alpn:?}");
        }
        let already = empty_config(&[b"http/1.1"]);
        assert!(Arc::ptr_eq(&force_alpn(already.clone()), &already));
    }

    #[cfg(any(feature = "rustls-webpki-roots", feature = "rustls-native-roots"))]
    #[test]
    fn default_config_offers_http11_and_is_shared() {
        let config = default_config().unwrap();
        assert_eq!(config.alpn_protocols, vec![b"http/1.1".to_vec()]);
        assert!(Arc::ptr_eq(&config, &default_config().unwrap()));
    }
}
