//! Reading an HTTP head off a stream, and the deadline both sides share.
//!
//! The only I/O helpers of the handshake; parsing itself is pure (see
//! `request.rs` and `response.rs`) and plugged in as a closure.

use std::future::Future;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::time::{timeout_at, Instant};

use super::HandshakeError;
use crate::error::Result;

/// How much one read asks for at most. Typical upgrade heads are well under
/// this, so most handshakes take one read; larger heads grow the buffer in
/// steps no bigger than this, never past the head limit.
const READ_CHUNK: usize = 1024;

/// Limits on a head, checked by the pure parsers.
#[derive(Clone, Copy, Debug)]
pub(crate) struct HeadLimits {
    /// The largest head, in bytes, up to and including the blank line.
    pub(crate) max_size: usize,
    /// The most header fields.
    pub(crate) max_headers: usize,
}

/// What a head parser found in a buffer, in the shape of httparse's `Status`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Parsed<T> {
    /// The head is not complete yet (and the buffer is below the size limit).
    Partial,
    /// The head and how many bytes it took, blank line included.
    Complete(T, usize),
}

/// The errors one side of the handshake reports for a head it cannot take.
#[derive(Clone, Copy, Debug)]
pub(crate) struct HeadErrors {
    pub(crate) too_large: HandshakeError,
    pub(crate) too_many_headers: HandshakeError,
    pub(crate) malformed: HandshakeError,
}

/// Turns httparse's answer for a head in a buffer of `buffered` bytes,
/// parsed with room for `room` header fields, into [`Parsed`], applying the
/// limits; `complete` converts the head once it is complete.
pub(crate) fn classify<T>(
    status: httparse::Result<usize>,
    buffered: usize,
    room: usize,
    limits: HeadLimits,
    errors: HeadErrors,
    complete: impl FnOnce() -> Result<T, HandshakeError>,
) -> Result<Parsed<T>, HandshakeError> {
    match status {
        Ok(httparse::Status::Partial) if buffered >= limits.max_size => Err(errors.too_large),
        Ok(httparse::Status::Partial) => Ok(Parsed::Partial),
        Ok(httparse::Status::Complete(len)) if len > limits.max_size => Err(errors.too_large),
        Ok(httparse::Status::Complete(len)) => Ok(Parsed::Complete(complete()?, len)),
        Err(httparse::Error::TooManyHeaders) if room == limits.max_headers => Err(errors.too_many_headers),
        Err(_) => Err(errors.malformed),
    }
}

#[cfg(test)]
impl<T> Parsed<T> {
    /// How many bytes the head took, if complete (for tests, as requests
    /// and responses have no `PartialEq`).
    pub(crate) fn consumed(&self) -> Option<usize> {
        match self {
            Parsed::Partial => None,
            Parsed::Complete(_, len) => Some(*len),
        }
    }
}

/// Runs `parse` on `buf` with room for at most `max_headers` header fields
/// (fewer when `buf` is too short to hold that many, so a huge configured
/// limit never allocates more than the input justifies).
pub(crate) fn with_headers<'b, R>(
    buf: &'b [u8],
    max_headers: usize,
    parse: impl FnOnce(&'b [u8], &mut [httparse::Header<'b>]) -> R,
) -> R {
    const ON_STACK: usize = 64;
    // Every header line takes at least three bytes ("a:\n").
    let room = max_headers.min(buf.len() / 3 + 1);
    if room <= ON_STACK {
        let mut headers = [httparse::EMPTY_HEADER; ON_STACK];
        parse(buf, &mut headers[..room])
    } else {
        let mut headers = vec![httparse::EMPTY_HEADER; room];
        parse(buf, &mut headers)
    }
}

/// Reads from `io` until `parse` finds a complete head; answers the parsed
/// value and the bytes read past the head (the start of the WebSocket
/// stream, which must reach the codec).
///
/// `parse` must fail once the buffer reaches the size limit without a
/// complete head, which bounds the buffer: reads never ask for more than the
/// room left below `max_size`.
pub(crate) async fn read_head<S, T>(
    io: &mut S,
    max_size: usize,
    mut parse: impl FnMut(&[u8]) -> Result<Parsed<T>, HandshakeError>,
) -> Result<(T, BytesMut)>
where
    S: AsyncRead + Unpin,
{
    let mut buf = BytesMut::new();
    loop {
        if let Parsed::Complete(value, len) = parse(&buf)? {
            buf.advance(len);
            return Ok((value, buf));
        }
        // `parse` answered Partial, so the buffer is below the limit.
        let want = max_size.saturating_sub(buf.len()).clamp(1, READ_CHUNK);
        buf.reserve(want);
        let n = (&mut *io).take(want as u64).read_buf(&mut buf).await?;
        if n == 0 {
            return Err(HandshakeError::UnexpectedEof.into());
        }
    }
}

/// The instant `timeout` from now; `None` (no deadline) when that is beyond
/// what the clock can represent, e.g. for `Duration::MAX`.
pub(crate) fn deadline_after(timeout: Duration) -> Option<Instant> {
    Instant::now().checked_add(timeout)
}

/// Runs `fut` until `deadline`, failing with [`HandshakeError::Timeout`].
pub(crate) async fn within<F: Future>(deadline: Option<Instant>, fut: F) -> Result<F::Output, HandshakeError> {
    match deadline {
        Some(deadline) => timeout_at(deadline, fut).await.map_err(|_| HandshakeError::Timeout),
        None => Ok(fut.await),
    }
}
