//! The native-tls backend (feature `native-tls`): the platform's TLS
//! library (OpenSSL on Linux, Secure Transport on macOS, SChannel on
//! Windows) and its trust store.
//!
//! No ALPN is offered: a server that hears none speaks HTTP/1.1, the
//! protocol of the upgrade. A caller's connector should offer none either,
//! or `http/1.1` alone.

use std::io;
use std::sync::OnceLock;

use tokio_native_tls::native_tls;
use tokio_native_tls::TlsConnector;

use super::MaybeTlsStream;
use crate::error::Result;

/// The default connector, trusting the platform's roots: built on first
/// use and shared after. A failure is not remembered.
pub(super) fn default_connector() -> Result<TlsConnector> {
    static DEFAULT: OnceLock<TlsConnector> = OnceLock::new();
    if let Some(connector) = DEFAULT.get() {
        return Ok(connector.clone());
    }
    let connector = native_tls::TlsConnector::new().map_err(io::Error::other)?;
    Ok(DEFAULT.get_or_init(|| TlsConnector::from(connector)).clone())
}

/// Runs the TLS handshake over `io` for `host`; a failure is an
/// [`Error::Io`](crate::Error::Io) of kind `InvalidData` whose inner error
/// is the `native_tls::Error`.
pub(super) async fn wrap(io: MaybeTlsStream, host: &str, connector: &TlsConnector) -> Result<MaybeTlsStream> {
    let tls = connector.connect(host, io).await.map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    Ok(MaybeTlsStream::NativeTls(Box::new(tls)))
}
