//! Serving one hyper HTTP/1 connection with upgrades on, for the servers
//! whose handshake runs on hyper (fastwebsockets, yawc), in the echo and
//! fan-out benches alike.

use tokio::net::TcpStream;

/// The error every bench server task ends with.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Serves `tcp` as one hyper HTTP/1 connection with upgrades on: `service`
/// answers the upgrade request and spawns the WebSocket task on the
/// upgrade future.
pub async fn serve_with_upgrades<S>(tcp: TcpStream, service: S) -> Result<(), BoxError>
where
    S: hyper::service::HttpService<hyper::body::Incoming>,
    S::Error: Into<BoxError>,
    S::ResBody: 'static,
    <S::ResBody as hyper::body::Body>::Error: Into<BoxError>,
{
    hyper::server::conn::http1::Builder::new()
        .serve_connection(hyper_util::rt::TokioIo::new(tcp), service)
        .with_upgrades()
        .await?;
    Ok(())
}
