//! [`PeerAddr`]: transports that know the address of their peer, so that a
//! connection over one can tell it ([`WebSocketStream::peer_addr`]).

use std::io;
use std::net::SocketAddr;

use super::{ReadHalf, WebSocketStream, WriteHalf};

/// A transport that knows its peer's address: `TcpStream`, and TLS streams
/// over one ([`MaybeTlsStream`](crate::MaybeTlsStream), and tokio-rustls'
/// server stream with the `rustls` feature). For any other transport use
/// [`WebSocketStream::with_io`].
pub trait PeerAddr {
    /// The remote address the transport is connected to.
    fn peer_addr(&self) -> io::Result<SocketAddr>;
}

impl PeerAddr for tokio::net::TcpStream {
    fn peer_addr(&self) -> io::Result<SocketAddr> {
        tokio::net::TcpStream::peer_addr(self)
    }
}

#[cfg(feature = "rustls")]
impl<S: PeerAddr> PeerAddr for tokio_rustls::server::TlsStream<S> {
    fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.get_ref().0.peer_addr()
    }
}

#[cfg(feature = "rustls")]
impl<S: PeerAddr> PeerAddr for tokio_rustls::client::TlsStream<S> {
    fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.get_ref().0.peer_addr()
    }
}

impl<S: PeerAddr> WebSocketStream<S> {
    /// The peer's address, from the transport.
    ///
    /// ```no_run
    /// # async fn run(listener: tokio::net::TcpListener) -> silverback::Result<()> {
    /// let (tcp, _) = listener.accept().await?;
    /// let ws = silverback::accept(tcp).await?;
    /// println!("connection from {}", ws.peer_addr()?);
    /// # Ok(())
    /// # }
    /// ```
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.with_io(|io| io.peer_addr())
    }
}

impl<S: PeerAddr> WebSocketStream<S> {
    /// Records the peer's address in the connection's span (`tracing`
    /// feature; nothing without it).
    #[inline]
    pub(crate) fn trace_peer(&self) {
        #[cfg(feature = "tracing")]
        if let Ok(addr) = self.peer_addr() {
            self.trace_record("peer", tracing::field::display(addr));
        }
    }
}

impl<S: PeerAddr> ReadHalf<S> {
    /// The peer's address, from the transport.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.with_io(|io| io.peer_addr())
    }
}

impl<S: PeerAddr> WriteHalf<S> {
    /// The peer's address, from the transport.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.with_io(|io| io.peer_addr())
    }
}
