//! HTTP routing without a web framework, shared by the `chat`, `command` and
//! `filewatch` examples: read the request head ourselves, answer `GET /`
//! with the example's page, and hand `/ws` to `silverback::Upgrader`
//! together with the bytes already read (through [`Rewind`]).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

/// The largest request head we read (the `Upgrader`'s default limit too).
const MAX_HEAD: usize = 8 * 1024;
/// How long a client may take to send its request head.
const HEAD_TIMEOUT: Duration = Duration::from_secs(10);

/// `e` and its sources, for a log line: "websocket handshake failed: origin rejected".
pub fn describe(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(e) = source {
        text = format!("{text}: {e}");
        source = e.source();
    }
    text
}

/// A transport that first replays bytes already read from it (the request
/// head we routed on), then reads from the transport itself. Writes go
/// straight through.
#[derive(Debug)]
pub struct Rewind<S> {
    prefix: Bytes,
    inner: S,
}

impl<S> Rewind<S> {
    /// Replays `prefix` before reading from `inner`.
    pub fn new(inner: S, prefix: Bytes) -> Self {
        Rewind { prefix, inner }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Rewind<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        if !self.prefix.is_empty() {
            let n = self.prefix.len().min(buf.remaining());
            buf.put_slice(&self.prefix.split_to(n));
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Rewind<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Routes one HTTP request: `GET /` is answered with `page` (HTML), other
/// paths with 404, and a request for `/ws` is returned, head and all, for
/// the caller to upgrade (`Upgrader::accept` then checks it: method,
/// headers, origin). `Ok(None)` means the request was answered here.
pub async fn route(mut tcp: TcpStream, page: &str) -> io::Result<Option<Rewind<TcpStream>>> {
    tcp.set_nodelay(true)?;
    let head = match tokio::time::timeout(HEAD_TIMEOUT, read_head(&mut tcp)).await {
        Ok(Ok(Some(head))) => head,
        Ok(Ok(None)) => return respond(&mut tcp, "431 Request Header Fields Too Large", "text/plain", "").await,
        Ok(Err(e)) => return Err(e),
        Err(_) => return Ok(None), // a client that sends nothing gets nothing
    };
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut request = httparse::Request::new(&mut headers);
    let (method, path) = match request.parse(&head) {
        Ok(httparse::Status::Complete(_)) => (request.method.unwrap_or(""), request.path.unwrap_or("")),
        _ => return respond(&mut tcp, "400 Bad Request", "text/plain", "bad request\n").await,
    };
    let path = path.split('?').next().unwrap_or(path);
    match (method, path) {
        (_, "/ws") => Ok(Some(Rewind::new(tcp, head.freeze()))),
        ("GET", "/") => respond(&mut tcp, "200 OK", "text/html; charset=utf-8", page).await,
        (_, "/") => respond(&mut tcp, "405 Method Not Allowed", "text/plain", "GET only\n").await,
        _ => respond(&mut tcp, "404 Not Found", "text/plain", "not found\n").await,
    }
}

/// Reads until the blank line that ends a request head, at most
/// [`MAX_HEAD`] bytes. `None` when the head is larger. What follows the head
/// in the same read (a client's first frames) stays in the buffer.
async fn read_head(tcp: &mut TcpStream) -> io::Result<Option<BytesMut>> {
    let mut buf = BytesMut::with_capacity(1024);
    loop {
        if buf.windows(4).any(|w| w == b"\r\n\r\n") {
            return Ok(Some(buf));
        }
        if buf.len() >= MAX_HEAD {
            return Ok(None);
        }
        // Never read past the limit.
        let mut chunk = (&mut *tcp).take((MAX_HEAD - buf.len()) as u64);
        if chunk.read_buf(&mut buf).await? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
    }
}

/// Writes a whole response and closes the connection.
async fn respond<T>(tcp: &mut TcpStream, status: &str, content_type: &str, body: &str) -> io::Result<Option<T>> {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Cache-Control: no-store\r\nConnection: close\r\n\r\n",
        body.len()
    );
    tcp.write_all(head.as_bytes()).await?;
    tcp.write_all(body.as_bytes()).await?;
    tcp.shutdown().await?;
    Ok(None)
}
