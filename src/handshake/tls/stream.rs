//! [`MaybeTlsStream`], the client's transport, whichever TLS backend runs.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// The connection that [`connect`](crate::connect) and
/// [`Connector::connect`](crate::Connector::connect) open: plain TCP for
/// `ws://`, TLS for `wss://` (with the `rustls` or `native-tls` feature),
/// either one straight to the server or through a proxy's tunnel.
///
/// A TLS variant runs over another `MaybeTlsStream`: [`Plain`] TCP, or,
/// through an `https://` proxy, the TLS session with the proxy (so
/// `wss://` through an `https://` proxy is TLS inside TLS, and `ws://`
/// through one is the proxy's TLS session alone).
///
/// Match on it to reach the TLS session (negotiated protocol, peer
/// certificates); [`MaybeTlsStream::tcp`] gives the socket underneath.
/// Reads and writes, vectored writes included, go to the variant inside.
///
/// [`Plain`]: MaybeTlsStream::Plain
#[derive(Debug)]
#[non_exhaustive]
pub enum MaybeTlsStream {
    /// Plain TCP, for `ws://` (to the server, or a tunnel through an
    /// `http://` or SOCKS proxy).
    Plain(TcpStream),
    /// TLS by rustls over the stream inside (boxed: a TLS session takes a
    /// few kilobytes).
    #[cfg(feature = "rustls")]
    Rustls(Box<tokio_rustls::client::TlsStream<MaybeTlsStream>>),
    /// TLS by the platform's library (feature `native-tls`) over the stream
    /// inside.
    #[cfg(feature = "native-tls")]
    NativeTls(Box<tokio_native_tls::TlsStream<MaybeTlsStream>>),
}

impl MaybeTlsStream {
    /// The TCP connection underneath: to the server, or to the proxy when
    /// the connection goes through one.
    #[must_use]
    pub fn tcp(&self) -> &TcpStream {
        match self {
            MaybeTlsStream::Plain(tcp) => tcp,
            #[cfg(feature = "rustls")]
            MaybeTlsStream::Rustls(tls) => tls.get_ref().0.tcp(),
            #[cfg(feature = "native-tls")]
            MaybeTlsStream::NativeTls(tls) => tls.get_ref().get_ref().get_ref().tcp(),
        }
    }

    /// Whether TLS with the server negotiated `h2` by ALPN (RFC 7301).
    #[cfg(feature = "hyper")]
    pub(crate) fn negotiated_h2(&self) -> bool {
        match self {
            MaybeTlsStream::Plain(_) => false,
            #[cfg(feature = "rustls")]
            MaybeTlsStream::Rustls(tls) => tls.get_ref().1.alpn_protocol() == Some(b"h2"),
            #[cfg(feature = "native-tls")]
            MaybeTlsStream::NativeTls(tls) => {
                tls.get_ref().negotiated_alpn().ok().flatten().is_some_and(|alpn| alpn == b"h2")
            }
        }
    }

    /// Whether the bytes leaving this machine are encrypted: to the server
    /// for `wss://`; for `ws://` through an `https://` proxy, only as far as
    /// the proxy.
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
            #[cfg(feature = "native-tls")]
            MaybeTlsStream::NativeTls($io) => {
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
            #[cfg(feature = "native-tls")]
            MaybeTlsStream::NativeTls(tls) => tls.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        delegate!(self, io => io.poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        delegate!(self, io => io.poll_shutdown(cx))
    }
}

impl crate::PeerAddr for MaybeTlsStream {
    fn peer_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        self.tcp().peer_addr()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn is_send_sync_static() {
        fn assert_send_sync<T: Send + Sync + 'static>() {}
        assert_send_sync::<super::MaybeTlsStream>();
    }
}
