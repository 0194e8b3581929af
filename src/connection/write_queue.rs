//! The outgoing byte queue: whole frames, written in order, batched.
//!
//! Small frames are copied into one staging buffer so that many of them leave
//! in one `write`. A large unmasked payload is not copied: it is queued by
//! reference (a `Bytes` clone) and written with `write_vectored` next to the
//! headers around it. Masked payloads (client side) are always copied, since
//! masking rewrites them.

use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::mem;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio::io::AsyncWrite;

use super::spare;
use crate::protocol::{apply_mask, FrameHeader};

/// Payloads at least this long are queued by reference instead of copied,
/// when the transport supports vectored writes.
const BY_REFERENCE_MIN: usize = 4096;
/// The least room the staging buffer comes back with after it was released
/// (from this thread's spare, or allocated): a batch of small frames, and
/// small enough to come from the allocator's per-thread cache (glibc's
/// takes blocks up to 1032 bytes) when there is no spare.
const STAGE_MIN: usize = 1024;
/// At most this many slices per `write_vectored` call.
const MAX_SLICES: usize = 64;

/// A piece of the queue written by reference.
#[derive(Clone, Debug)]
enum Segment {
    /// The header of a frame whose payload follows by reference, kept
    /// inline so that queueing a large frame allocates nothing.
    Header { bytes: [u8; FrameHeader::MAX_LEN], start: u8, end: u8 },
    /// Bytes shared with the application (a payload, a prepared frame) or
    /// frozen staging bytes.
    Shared(Bytes),
}

impl Segment {
    fn as_slice(&self) -> &[u8] {
        match self {
            Segment::Header { bytes, start, end } => &bytes[usize::from(*start)..usize::from(*end)],
            Segment::Shared(bytes) => bytes,
        }
    }

    /// Drops the first `n` bytes (`n` < the segment's length).
    fn advance(&mut self, n: usize) {
        match self {
            Segment::Header { start, .. } => *start += n as u8,
            Segment::Shared(bytes) => bytes.advance(n),
        }
    }
}

/// Encoded frames waiting for the transport.
#[derive(Clone, Debug, Default)]
pub(crate) struct WriteQueue {
    /// Segments queued before `staged`, oldest first.
    chunks: VecDeque<Segment>,
    /// Bytes queued after the last chunk.
    staged: BytesMut,
    /// Total bytes ever queued and written: positions in the outgoing stream.
    queued: u64,
    written: u64,
}

impl WriteQueue {
    /// Bytes queued but not yet written.
    pub(crate) fn len(&self) -> usize {
        (self.queued - self.written) as usize
    }

    /// The stream position just past the last queued byte.
    pub(crate) fn queued(&self) -> u64 {
        self.queued
    }

    /// The stream position just past the last written byte.
    pub(crate) fn written(&self) -> u64 {
        self.written
    }

    /// Appends one frame. `by_reference` allows queueing a large unmasked
    /// payload without copying it (the transport writes vectored).
    #[inline]
    pub(crate) fn push(&mut self, header: &FrameHeader, payload: &Bytes, by_reference: bool) {
        if header.mask.is_none() && header.payload_len <= 125 {
            // A server's small frame, the most common of all: its two
            // header bytes go in directly.
            let head = [header.first_byte(), header.payload_len as u8];
            self.reserve(2 + payload.len());
            self.staged.put_u16(u16::from_be_bytes(head));
            self.staged.put_slice(payload);
            self.queued += (2 + payload.len()) as u64;
            return;
        }
        let mut head = [0u8; FrameHeader::MAX_LEN];
        let n = header.encode(&mut head);
        if by_reference && header.mask.is_none() && payload.len() >= BY_REFERENCE_MIN {
            self.seal_staged();
            self.chunks.push_back(Segment::Header { bytes: head, start: 0, end: n as u8 });
            self.chunks.push_back(Segment::Shared(payload.clone()));
            self.queued += (n + payload.len()) as u64;
        } else {
            self.stage(header, &head[..n], payload);
        }
    }

    /// Appends one frame whose payload is borrowed: it is copied (and
    /// masked, if the header says so).
    pub(crate) fn push_slice(&mut self, header: &FrameHeader, payload: &[u8]) {
        let mut head = [0u8; FrameHeader::MAX_LEN];
        let n = header.encode(&mut head);
        self.stage(header, &head[..n], payload);
    }

    /// Copies an encoded header and its payload into the staging buffer.
    #[inline]
    fn stage(&mut self, header: &FrameHeader, head: &[u8], payload: &[u8]) {
        self.reserve(head.len() + payload.len());
        self.staged.put_slice(head);
        let start = self.staged.len();
        self.staged.put_slice(payload);
        if let Some(key) = header.mask {
            apply_mask(&mut self.staged[start..], key, 0);
        }
        self.queued += (head.len() + payload.len()) as u64;
    }

    /// Appends frames encoded ahead of time (unmasked), sharing their
    /// buffer instead of copying it when it is large and `by_reference`.
    pub(crate) fn push_encoded(&mut self, frames: &Bytes, by_reference: bool) {
        if by_reference && frames.len() >= BY_REFERENCE_MIN {
            self.seal_staged();
            self.chunks.push_back(Segment::Shared(frames.clone()));
        } else {
            self.reserve(frames.len());
            self.staged.put_slice(frames);
        }
        self.queued += frames.len() as u64;
    }

    /// Moves the staged bytes into the segment list, ahead of what is
    /// queued next by reference.
    fn seal_staged(&mut self) {
        if !self.staged.is_empty() {
            self.chunks.push_back(Segment::Shared(self.staged.split().freeze()));
        }
    }

    /// Makes room for `additional` bytes; a released buffer comes back with
    /// room for a batch of small frames at once rather than growing by
    /// doubling from the first frame's size.
    fn reserve(&mut self, additional: usize) {
        if self.staged.capacity() == 0 {
            let want = additional.max(STAGE_MIN);
            self.staged = spare::WRITE.take(want);
            self.staged.reserve(want);
        } else {
            self.staged.reserve(additional);
        }
    }

    /// Writes until the stream position `mark` has been written.
    pub(crate) fn poll_write_until<S>(
        &mut self,
        mut io: Pin<&mut S>,
        cx: &mut Context<'_>,
        mark: u64,
    ) -> Poll<io::Result<()>>
    where
        S: AsyncWrite + ?Sized,
    {
        while self.written < mark {
            let n = if self.chunks.is_empty() {
                ready!(io.as_mut().poll_write(cx, &self.staged))?
            } else {
                let mut slices = [IoSlice::new(&[]); MAX_SLICES];
                let mut count = 0;
                for chunk in self.chunks.iter().take(MAX_SLICES - 1) {
                    slices[count] = IoSlice::new(chunk.as_slice());
                    count += 1;
                }
                if !self.staged.is_empty() {
                    slices[count] = IoSlice::new(&self.staged);
                    count += 1;
                }
                ready!(io.as_mut().poll_write_vectored(cx, &slices[..count]))?
            };
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.consume(n);
        }
        if self.len() == 0 {
            // Idle connections keep no write buffer: it goes to the next
            // connection on this thread that writes.
            spare::WRITE.park(mem::take(&mut self.staged));
        }
        Poll::Ready(Ok(()))
    }

    fn consume(&mut self, mut n: usize) {
        self.written += n as u64;
        while n > 0 {
            let Some(front) = self.chunks.front_mut() else {
                self.staged.advance(n);
                return;
            };
            let len = front.as_slice().len();
            if n < len {
                front.advance(n);
                return;
            }
            n -= len;
            self.chunks.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::OpCode;
    use std::task::Waker;

    /// A writer that takes at most `max` bytes per call and records them.
    struct Trickle {
        out: Vec<u8>,
        max: usize,
        calls: usize,
    }

    impl AsyncWrite for Trickle {
        fn poll_write(mut self: Pin<&mut Self>, _: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
            self.calls += 1;
            let n = buf.len().min(self.max);
            self.out.extend_from_slice(&buf[..n]);
            Poll::Ready(Ok(n))
        }
        fn poll_write_vectored(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            bufs: &[IoSlice<'_>],
        ) -> Poll<io::Result<usize>> {
            self.calls += 1;
            let mut left = self.max;
            for b in bufs {
                let n = b.len().min(left);
                self.out.extend_from_slice(&b[..n]);
                left -= n;
            }
            Poll::Ready(Ok(self.max - left))
        }
        fn is_write_vectored(&self) -> bool {
            true
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    fn header(len: usize) -> FrameHeader {
        FrameHeader { fin: true, rsv: 0, opcode: OpCode::Binary, mask: None, payload_len: len as u64 }
    }

    #[test]
    fn mixed_small_and_large_frames_come_out_in_order() {
        let big = Bytes::from(vec![9u8; 10_000]);
        let mut q = WriteQueue::default();
        let mut expected = Vec::new();
        for (i, payload) in
            [Bytes::from_static(b"ab"), big.clone(), Bytes::from_static(b"c"), big].into_iter().enumerate()
        {
            q.push(&header(payload.len()), &payload, i != 2);
            let mut head = [0u8; 14];
            let n = header(payload.len()).encode(&mut head);
            expected.extend_from_slice(&head[..n]);
            expected.extend_from_slice(&payload);
        }
        assert_eq!(q.len(), expected.len());
        for max in [1, 7, 4096, usize::MAX] {
            let mut q2 = q.clone();
            let mut io = Trickle { out: Vec::new(), max, calls: 0 };
            let mut cx = Context::from_waker(Waker::noop());
            let mark = q2.queued();
            assert!(q2.poll_write_until(Pin::new(&mut io), &mut cx, mark).is_ready());
            assert_eq!(io.out, expected, "max {max}");
            assert_eq!(q2.len(), 0);
            if max == usize::MAX {
                assert_eq!(io.calls, 1, "one vectored write for everything");
            }
        }
    }

    #[test]
    fn short_unmasked_frames_match_the_general_header_encoding() {
        for len in [0usize, 1, 124, 125, 126, 127, 300] {
            let payload = Bytes::from(vec![3u8; len]);
            let mut q = WriteQueue::default();
            q.push(&header(len), &payload, true);
            let mut expected = [0u8; 14];
            let n = header(len).encode(&mut expected);
            assert_eq!(&q.staged[..n], &expected[..n], "len {len}");
            assert_eq!(&q.staged[n..], &payload[..], "len {len}");
            assert_eq!(q.len(), n + len);
        }
    }

    #[test]
    fn many_small_frames_leave_in_one_write() {
        let mut q = WriteQueue::default();
        for _ in 0..1000 {
            q.push(&header(20), &Bytes::from_static(&[1; 20]), true);
        }
        let mut io = Trickle { out: Vec::new(), max: usize::MAX, calls: 0 };
        let mut cx = Context::from_waker(Waker::noop());
        let mark = q.queued();
        assert!(q.poll_write_until(Pin::new(&mut io), &mut cx, mark).is_ready());
        assert_eq!(io.calls, 1);
        assert_eq!(io.out.len(), 22 * 1000);
    }
}
