//! The client's transport, [`MaybeTlsStream`], and with the `rustls`
//! feature the TLS under `wss://`: the crypto provider, the roots, ALPN.
//!
//! - Provider: ring, passed explicitly to every configuration this crate
//!   builds (`builder_with_provider`), so nothing depends on, or panics for
//!   want of, a process-wide default provider.
//! - Roots: the Mozilla set compiled in (`rustls-webpki-roots`), the
//!   operating system's (`rustls-native-roots`), or both when both features
//!   are on; loaded once per process. With neither, `wss://` needs
//!   [`Connector::tls_config`](crate::Connector).
//! - ALPN: exactly `http/1.1` (the WebSocket handshake is an HTTP/1.1
//!   upgrade; RFC 8441's HTTP/2 bootstrapping is not supported), also in a
//!   caller's configuration.
//!
//! The functions here hide the feature switch from `client.rs`, the way
//! `extensions.rs` does for compression: without `rustls`, [`TlsConfig`] is
//! uninhabited and [`client_config`] answers
//! [`HandshakeError::TlsNotEnabled`].

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use super::HandshakeError;
use crate::error::Result;

/// The connection that [`connect`](crate::connect) and
/// [`Connector::connect`](crate::Connector::connect) open: plain TCP for
/// `ws://`, TLS over TCP for `wss://` (with the `rustls` feature), either
/// one straight to the server or through a proxy's `CONNECT` tunnel.
///
/// Match on it to reach the TLS session (negotiated protocol, peer
/// certificates); [`MaybeTlsStream::tcp`] gives the socket underneath.
/// Reads and writes, vectored writes included, go to the variant inside.
#[derive(Debug)]
#[non_exhaustive]
pub enum MaybeTlsStream {
    /// Plain TCP, for `ws://`.
    Plain(TcpStream),
    /// TLS over TCP, for `wss://` (boxed: a TLS session takes a few
    /// kilobytes).
    #[cfg(feature = "rustls")]
    Rustls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl MaybeTlsStream {
    /// The TCP connection underneath: to the server, or to the proxy when
    /// the connection goes through one.
    #[must_use]
    pub fn tcp(&self) -> &TcpStream {
        match self {
            MaybeTlsStream::Plain(tcp) => tcp,
            #[cfg(feature = "rustls")]
            MaybeTlsStream::Rustls(tls) => tls.get_ref().0,
        }
    }

    /// Whether the connection is encrypted.
    #[must_use]
    pub fn is_tls(&self) -> bool {
        !matches!(self, MaybeTlsStream::Plain(_))
    }
}

/// Runs `$call` on the stream inside `$self`, pinned.
macro_rules! delegate {
    ($self:ident, $io:ident => $call:expr) => {
        match $self.get_mut() {
            MaybeTlsStream::Plain($io) => {
                let $io = Pin::new($io);
                $call
            }
            #[cfg(feature = "rustls")]
            MaybeTlsStream::Rustls($io) => {
                let $io = Pin::new(&mut **$io);
                $call
            }
        }
    };
}

impl AsyncRead for MaybeTlsStream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        delegate!(self, io => io.poll_read(cx, buf))
    }
}

impl AsyncWrite for MaybeTlsStream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        delegate!(self, io => io.poll_write(cx, buf))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        delegate!(self, io => io.poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            MaybeTlsStream::Plain(tcp) => tcp.is_write_vectored(),
            #[cfg(feature = "rustls")]
            MaybeTlsStream::Rustls(tls) => tls.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        delegate!(self, io => io.poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        delegate!(self, io => io.poll_shutdown(cx))
    }
}

/// A client TLS configuration, shared by the connections that use it.
#[cfg(feature = "rustls")]
pub(crate) type TlsConfig = std::sync::Arc<rustls::ClientConfig>;
/// A client TLS configuration: none can exist without the `rustls` feature.
#[cfg(not(feature = "rustls"))]
pub(crate) type TlsConfig = std::convert::Infallible;

/// The one ALPN protocol offered (RFC 7301), the HTTP/1.1 of the upgrade.
#[cfg_attr(not(feature = "rustls"), allow(dead_code))]
pub(crate) const ALPN_HTTP11: &[u8] = b"http/1.1";

/// The configuration for a `wss://` connection: the connector's own, or
/// the default one (the roots the features select).
#[cfg(feature = "rustls")]
pub(crate) fn client_config(own: Option<&TlsConfig>) -> Result<TlsConfig> {
    match own {
        Some(config) => Ok(config.clone()),
        None => roots::default_config(),
    }
}

/// Without the `rustls` feature, `wss://` cannot be served.
#[cfg(not(feature = "rustls"))]
pub(crate) fn client_config(own: Option<&TlsConfig>) -> Result<TlsConfig> {
    match own {
        Some(never) => match *never {},
        None => Err(HandshakeError::TlsNotEnabled.into()),
    }
}

/// `config` offering exactly [`ALPN_HTTP11`]: itself when it already does,
/// otherwise a copy that does.
#[cfg(feature = "rustls")]
pub(crate) fn force_alpn(config: TlsConfig) -> TlsConfig {
    if config.alpn_protocols.len() == 1 && config.alpn_protocols[0] == ALPN_HTTP11 {
        return config;
    }
    let mut config = (*config).clone();
    config.alpn_protocols = vec![ALPN_HTTP11.to_vec()];
    std::sync::Arc::new(config)
}

/// Runs the TLS handshake over `tcp`, checking the server's certificate
/// against `host` (a DNS name or an IP address). A failed handshake or
/// verification is an [`Error::Io`](crate::Error::Io) whose inner error is
/// the `rustls::Error`.
#[cfg(feature = "rustls")]
pub(crate) async fn wrap(tcp: TcpStream, host: &str, config: TlsConfig) -> Result<MaybeTlsStream> {
    let name = rustls::pki_types::ServerName::try_from(host.to_owned()).map_err(|_| HandshakeError::InvalidUrl)?;
    let tls = tokio_rustls::TlsConnector::from(config).connect(name, tcp).await?;
    Ok(MaybeTlsStream::Rustls(Box::new(tls)))
}

/// Unreachable: no [`TlsConfig`] exists without the `rustls` feature.
#[cfg(not(feature = "rustls"))]
#[allow(clippy::unused_async)]
pub(crate) async fn wrap(_: TcpStream, _: &str, config: TlsConfig) -> Result<MaybeTlsStream> {
    match config {}
}

/// A fresh configuration builder on ring, with rustls' safe default
/// protocol versions (TLS 1.2 and 1.3).
#[cfg(feature = "rustls")]
fn builder() -> io::Result<rustls::ConfigBuilder<rustls::ClientConfig, rustls::WantsVerifier>> {
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(io::Error::other)
}

/// The default configuration, from the roots the features select.
#[cfg(feature = "rustls")]
mod roots {
    use super::{Result, TlsConfig};

    /// The default configuration, built on first use and shared after: the
    /// root stores are large (the native one is read from disk). A failure
    /// is not remembered, so certificates installed later are found.
    #[cfg(any(feature = "rustls-webpki-roots", feature = "rustls-native-roots"))]
    pub(super) fn default_config() -> Result<TlsConfig> {
        use std::sync::{Arc, OnceLock};

        static DEFAULT: OnceLock<TlsConfig> = OnceLock::new();
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
                return Err(std::io::Error::new(std::io::ErrorKind::NotFound, message).into());
            }
        }
        let mut config = super::builder()?.with_root_certificates(roots).with_no_client_auth();
        config.alpn_protocols = vec![super::ALPN_HTTP11.to_vec()];
        Ok(DEFAULT.get_or_init(|| Arc::new(config)).clone())
    }

    /// No roots built in: the caller must bring a configuration.
    #[cfg(not(any(feature = "rustls-webpki-roots", feature = "rustls-native-roots")))]
    pub(super) fn default_config() -> Result<TlsConfig> {
        let _ = super::builder;
        Err(super::HandshakeError::NoTlsRoots.into())
    }
}

#[cfg(all(test, feature = "rustls"))]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn empty_config(alpn: &[&[u8]]) -> TlsConfig {
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

    #[test]
    fn own_config_is_used_as_given() {
        let own = empty_config(&[b"http/1.1"]);
        assert!(Arc::ptr_eq(&client_config(Some(&own)).unwrap(), &own));
    }

    #[cfg(any(feature = "rustls-webpki-roots", feature = "rustls-native-roots"))]
    #[test]
    fn default_config_offers_http11_and_is_shared() {
        let config = client_config(None).unwrap();
        assert_eq!(config.alpn_protocols, vec![b"http/1.1".to_vec()]);
        assert!(Arc::ptr_eq(&config, &client_config(None).unwrap()));
    }

    #[cfg(not(any(feature = "rustls-webpki-roots", feature = "rustls-native-roots")))]
    #[test]
    fn without_roots_the_default_is_a_typed_error() {
        assert!(matches!(client_config(None), Err(crate::Error::Handshake(HandshakeError::NoTlsRoots))));
    }
}
impl crate::PeerAddr for MaybeTlsStream {
    fn peer_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        self.tcp().peer_addr()
    }
}
