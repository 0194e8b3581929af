//! [`H3Io`]: a WebSocket's bytes in the DATA frames of an HTTP/3 request
//! stream (RFC 9220 §3, RFC 9114 §4.1), as `AsyncRead + AsyncWrite`.
//!
//! Reading parses frame headers, passes DATA payloads through (straight
//! into the caller's buffer once a frame's header is read), skips frames of
//! unknown types (RFC 9114 §9) and trailers, and fails on any other frame.
//! It buffers at most one read of [`READ_CHUNK`] bytes. Writing puts each
//! write in a DATA frame of at most [`MAX_DATA_FRAME`] bytes; QUIC flow
//! control is the backpressure: a write waits while the stream's or the
//! connection's window is full.

use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::{fmt, io, pin::Pin};

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::conn::{linger, ConnGuard};
use super::frame::{self, get_frame_header, put_frame_header};

/// The most read from the QUIC stream into the adapter's own buffer at a
/// time; DATA payloads go straight to the caller.
const READ_CHUNK: usize = 8 * 1024;

/// The largest DATA frame written.
pub(crate) const MAX_DATA_FRAME: usize = 64 * 1024;

/// Where the reader is in the stream's frames.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ReadState {
    /// Before a frame header.
    Header,
    /// Inside a DATA frame, this many payload bytes left.
    Data(u64),
    /// Inside a frame to skip, this many bytes left.
    Skip(u64),
    /// The stream ended cleanly (FIN between frames).
    Done,
}

/// The receiving half: the QUIC stream and the frame reader over it.
pub(crate) struct FrameReader {
    pub(crate) recv: quinn::RecvStream,
    /// Bytes read and not yet consumed.
    buf: BytesMut,
    state: ReadState,
}

/// An error of the QUIC stream as an I/O error: a reset of the stream or
/// the loss of the connection is `ConnectionReset`.
pub(crate) fn read_error(err: quinn::ReadError) -> io::Error {
    let kind = match err {
        quinn::ReadError::Reset(_) | quinn::ReadError::ConnectionLost(_) => io::ErrorKind::ConnectionReset,
        _ => io::ErrorKind::Other,
    };
    io::Error::new(kind, err)
}

/// A write error of the QUIC stream as an I/O error: the peer stopping the
/// stream, or the loss of the connection, is `ConnectionReset`.
pub(crate) fn write_error(err: quinn::WriteError) -> io::Error {
    let kind = match err {
        quinn::WriteError::Stopped(_) | quinn::WriteError::ConnectionLost(_) => io::ErrorKind::ConnectionReset,
        _ => io::ErrorKind::Other,
    };
    io::Error::new(kind, err)
}

/// An HTTP/3 framing error on a request stream.
fn frame_error(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("http/3 request stream: {what}"))
}

impl FrameReader {
    pub(crate) fn new(recv: quinn::RecvStream) -> Self {
        FrameReader { recv, buf: BytesMut::new(), state: ReadState::Header }
    }

    /// Reads up to [`READ_CHUNK`] more bytes into the buffer: how many (0
    /// at the end of the stream).
    fn poll_more(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let mut chunk = [0u8; READ_CHUNK];
        let n = ready!(self.recv.poll_read(cx, &mut chunk)).map_err(read_error)?;
        self.buf.extend_from_slice(&chunk[..n]);
        Poll::Ready(Ok(n))
    }

    /// Reads the first HEADERS frame's payload (a request's or a
    /// response's field section), skipping frames of unknown types;
    /// `None` for a section over `max_size` bytes (left unread); fails on a
    /// DATA frame before it and at the end of the stream.
    pub(crate) async fn read_headers(&mut self, max_size: usize) -> io::Result<Option<BytesMut>> {
        std::future::poll_fn(|cx| self.poll_headers(cx, max_size)).await
    }

    fn poll_headers(&mut self, cx: &mut Context<'_>, max_size: usize) -> Poll<io::Result<Option<BytesMut>>> {
        loop {
            if let ReadState::Skip(left) = self.state {
                let n = left.min(self.buf.len() as u64) as usize;
                self.buf.advance(n);
                self.state = if left == n as u64 { ReadState::Header } else { ReadState::Skip(left - n as u64) };
            }
            if self.state == ReadState::Header {
                if let Some(header) = get_frame_header(&self.buf) {
                    match header.kind {
                        frame::HEADERS if header.len > max_size as u64 => return Poll::Ready(Ok(None)),
                        frame::HEADERS if self.buf.len() as u64 >= header.size as u64 + header.len => {
                            self.buf.advance(header.size);
                            return Poll::Ready(Ok(Some(self.buf.split_to(header.len as usize))));
                        }
                        frame::HEADERS => {}
                        kind if frame::is_unknown(kind) => {
                            self.buf.advance(header.size);
                            self.state = ReadState::Skip(header.len);
                            continue;
                        }
                        _ => return Poll::Ready(Err(frame_error("unexpected frame before the headers"))),
                    }
                }
            }
            if ready!(self.poll_more(cx))? == 0 {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "http/3 stream ended before its headers",
                )));
            }
        }
    }

    /// `AsyncRead::poll_read` over the DATA frames.
    fn poll_data(&mut self, cx: &mut Context<'_>, out: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        if out.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        loop {
            match self.state {
                ReadState::Done => return Poll::Ready(Ok(())),
                ReadState::Data(0) | ReadState::Skip(0) => self.state = ReadState::Header,
                ReadState::Data(left) => {
                    let want = left.min(out.remaining() as u64) as usize;
                    let n = if self.buf.is_empty() {
                        let n =
                            ready!(self.recv.poll_read(cx, out.initialize_unfilled_to(want))).map_err(read_error)?;
                        if n == 0 {
                            return Poll::Ready(Err(io::Error::new(
                                io::ErrorKind::UnexpectedEof,
                                "http/3 stream ended inside a DATA frame",
                            )));
                        }
                        out.advance(n);
                        n
                    } else {
                        let n = want.min(self.buf.len());
                        out.put_slice(&self.buf[..n]);
                        self.buf.advance(n);
                        n
                    };
                    self.state = ReadState::Data(left - n as u64);
                    return Poll::Ready(Ok(()));
                }
                ReadState::Skip(left) => {
                    if self.buf.is_empty() && ready!(self.poll_more(cx))? == 0 {
                        return Poll::Ready(Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "http/3 stream ended inside a frame",
                        )));
                    }
                    let n = left.min(self.buf.len() as u64);
                    self.buf.advance(n as usize);
                    self.state = ReadState::Skip(left - n);
                }
                ReadState::Header => match get_frame_header(&self.buf) {
                    Some(header) => {
                        self.buf.advance(header.size);
                        self.state = match header.kind {
                            frame::DATA => ReadState::Data(header.len),
                            // Trailers (RFC 9114 §4.1), and unknown types (§9).
                            kind if kind == frame::HEADERS || frame::is_unknown(kind) => ReadState::Skip(header.len),
                            _ => return Poll::Ready(Err(frame_error("unexpected frame"))),
                        };
                    }
                    None => {
                        if ready!(self.poll_more(cx))? == 0 {
                            if self.buf.is_empty() {
                                self.state = ReadState::Done;
                                return Poll::Ready(Ok(()));
                            }
                            return Poll::Ready(Err(io::Error::new(
                                io::ErrorKind::UnexpectedEof,
                                "http/3 stream ended inside a frame header",
                            )));
                        }
                    }
                },
            }
        }
    }
}

/// The I/O of a WebSocket over HTTP/3 (RFC 9220): a bidirectional QUIC
/// request stream whose DATA frames carry the WebSocket's bytes.
///
/// A reset of the stream by the peer (`RESET_STREAM`, `STOP_SENDING`) or
/// the loss of the QUIC connection is an [`io::Error`] of kind
/// [`io::ErrorKind::ConnectionReset`] with quinn's error inside; the end of
/// the stream (FIN) is the end of the reads. Shutting down the writing side
/// ends the stream (FIN). It keeps the HTTP/3 connection open while it
/// lives.
pub struct H3Io {
    reader: FrameReader,
    send: quinn::SendStream,
    /// The header of the DATA frame being written, and how much of it is.
    header: Vec<u8>,
    header_at: usize,
    /// Payload bytes the frame being written still needs.
    write_left: usize,
    guard: Arc<ConnGuard>,
}

impl fmt::Debug for H3Io {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("H3Io").field("stream", &self.send.id()).finish_non_exhaustive()
    }
}

impl H3Io {
    pub(crate) fn new(reader: FrameReader, send: quinn::SendStream, guard: Arc<ConnGuard>) -> Self {
        H3Io { reader, send, header: Vec::with_capacity(16), header_at: 0, write_left: 0, guard }
    }

    /// The QUIC stream's id.
    #[must_use]
    pub fn stream_id(&self) -> quinn::StreamId {
        self.send.id()
    }

    /// Abandons the stream: resets the sending side (`RESET_STREAM`) and
    /// stops the receiving side (`STOP_SENDING`) with `code`, an HTTP/3
    /// error code (RFC 9114 §8.1; `H3_REQUEST_CANCELLED` is 0x10c). The
    /// peer's reads and writes then fail with `ConnectionReset`.
    pub fn reset(&mut self, code: u32) {
        let _ = self.send.reset(code.into());
        let _ = self.reader.recv.stop(code.into());
    }

    /// The sending side of the QUIC stream.
    #[must_use]
    pub fn send_stream(&self) -> &quinn::SendStream {
        &self.send
    }

    /// The receiving side of the QUIC stream.
    #[must_use]
    pub fn recv_stream(&self) -> &quinn::RecvStream {
        &self.reader.recv
    }
}

impl Drop for H3Io {
    fn drop(&mut self) {
        // Not reading the rest: tell the peer with H3_NO_ERROR (RFC 9114
        // §4.1.1) rather than quinn's default code 0.
        if self.reader.state != ReadState::Done {
            let _ = self.reader.recv.stop(frame::H3_NO_ERROR.into());
        }
        // Our FIN (if not sent yet) and the bytes before it must reach the
        // peer before the last user of the connection closes it.
        let _ = self.send.finish();
        linger(&self.send, self.guard.clone());
    }
}

impl AsyncRead for H3Io {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        self.reader.poll_data(cx, buf)
    }
}

impl AsyncWrite for H3Io {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if data.is_empty() {
            return Poll::Ready(Ok(0));
        }
        if this.write_left == 0 && this.header_at == this.header.len() {
            // A new DATA frame for (the start of) these bytes: the bytes of
            // the next writes fill it, whatever they are.
            let len = data.len().min(MAX_DATA_FRAME);
            this.header.clear();
            this.header_at = 0;
            put_frame_header(&mut this.header, frame::DATA, len as u64);
            this.write_left = len;
        }
        while this.header_at < this.header.len() {
            let n =
                ready!(Pin::new(&mut this.send).poll_write(cx, &this.header[this.header_at..])).map_err(write_error)?;
            this.header_at += n;
        }
        let len = data.len().min(this.write_left);
        let n = ready!(Pin::new(&mut this.send).poll_write(cx, &data[..len])).map_err(write_error)?;
        this.write_left -= n;
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        // quinn sends what it was given without being asked to.
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.write_left > 0 {
            return Poll::Ready(Err(io::Error::new(io::ErrorKind::WriteZero, "shutdown inside an http/3 DATA frame")));
        }
        // Finishing twice is not an error for us.
        let _ = self.send.finish();
        Poll::Ready(Ok(()))
    }
}
