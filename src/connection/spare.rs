//! One spare read buffer and one spare write buffer per thread.
//!
//! An idle connection keeps no read buffer (see `read.rs`): it lets its
//! buffer go as soon as a read finds nothing more to take. A connection
//! trading one message at a time would then allocate and free a buffer per
//! message, and the kernel would copy each message into memory just handed
//! back by the allocator, often cold in the cache. Instead, the buffer a
//! connection lets go is parked here, and the next connection polled on the
//! same thread that needs one takes it: the same few kilobytes serve message
//! after message, connection after connection, while still warm. The write
//! side's staging buffer (see `write_queue.rs`), released once everything
//! queued is written, is parked the same way in a pool of its own, so that
//! a reader's request never takes a writer's smaller buffer or the reverse.
//!
//! Memory stays bounded and honest: at most one buffer of at most
//! [`MAX_SPARE`] bytes per pool and thread, and a buffer still shared with a
//! message the application holds (or with queued bytes) is never parked: it
//! would keep that memory alive after its last user dropped it.

use std::cell::Cell;
use std::thread::LocalKey;

use bytes::BytesMut;

/// The largest buffer worth parking; bigger ones are freed.
const MAX_SPARE: usize = 64 * 1024;

thread_local! {
    static READ_SLOT: Cell<Option<BytesMut>> = const { Cell::new(None) };
    static WRITE_SLOT: Cell<Option<BytesMut>> = const { Cell::new(None) };
}

/// A per-thread slot holding at most one spare buffer.
pub(crate) struct Pool(&'static LocalKey<Cell<Option<BytesMut>>>);

/// Read buffers, let go by idle readers.
pub(crate) static READ: Pool = Pool(&READ_SLOT);
/// Staging buffers, let go by writers once everything queued is written.
pub(crate) static WRITE: Pool = Pool(&WRITE_SLOT);

impl Pool {
    /// This thread's spare buffer (empty) if it has room for at least
    /// `min_room` bytes, or a new unallocated one: a connection that reads
    /// large messages is not handed a small buffer that would split its
    /// reads.
    pub(crate) fn take(&self, min_room: usize) -> BytesMut {
        let spare = self.0.try_with(|spare| match spare.take() {
            Some(buf) if buf.capacity() >= min_room => Some(buf),
            other => {
                spare.set(other);
                None
            }
        });
        spare.ok().flatten().unwrap_or_default()
    }

    /// Parks `buf`, which must be empty, as this thread's spare if it owns
    /// its memory alone and is not too big, and is bigger than the spare
    /// already parked (which is then freed); otherwise frees it.
    pub(crate) fn park(&self, mut buf: BytesMut) {
        debug_assert!(buf.is_empty());
        let room = buf.capacity();
        // Asking for one byte more than the room left succeeds, without
        // allocating, only when no split-off part still shares the
        // allocation: the whole of it is then reclaimed.
        if room == 0 || !buf.try_reclaim(room + 1) || buf.capacity() > MAX_SPARE {
            return;
        }
        let _ = self.0.try_with(|spare| {
            // Keep the bigger of the two, which serves every request the
            // smaller one would; the other is freed.
            let keep = match spare.take() {
                Some(old) if old.capacity() >= buf.capacity() => old,
                _ => buf,
            };
            spare.set(Some(keep));
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn take(min_room: usize) -> BytesMut {
        READ.take(min_room)
    }

    fn park(buf: BytesMut) {
        READ.park(buf);
    }

    #[test]
    fn a_parked_buffer_is_handed_out_again_with_its_memory() {
        let mut buf = BytesMut::with_capacity(4096);
        buf.extend_from_slice(&[1; 100]);
        drop(buf.split_to(100));
        let at = buf.as_ptr();
        park(buf);
        assert_eq!(take(8192).capacity(), 0, "too small for this reader: kept");
        let again = take(4096);
        assert!(again.is_empty());
        assert_eq!(again.capacity(), 4096);
        assert_eq!(again.as_ptr(), at.wrapping_sub(100), "the whole allocation, reclaimed");
        assert_eq!(take(0).capacity(), 0, "only one spare");
    }

    #[test]
    fn a_buffer_shared_with_a_live_message_is_not_parked() {
        let mut buf = BytesMut::with_capacity(4096);
        buf.extend_from_slice(&[1; 100]);
        let message = buf.split_to(100).freeze();
        park(buf);
        assert_eq!(take(0).capacity(), 0);
        drop(message);
    }

    #[test]
    fn big_buffers_are_not_parked_and_the_bigger_spare_is_kept() {
        let mut big = BytesMut::with_capacity(MAX_SPARE + 1);
        big.extend_from_slice(&[1; 8]);
        drop(big.split_to(8));
        park(big);
        assert_eq!(take(0).capacity(), 0);

        let mut first = BytesMut::with_capacity(1024);
        first.extend_from_slice(&[1; 8]);
        drop(first.split_to(8));
        let mut second = BytesMut::with_capacity(2048);
        second.extend_from_slice(&[1; 8]);
        drop(second.split_to(8));
        park(second);
        park(first);
        assert_eq!(take(0).capacity(), 2048);
        assert_eq!(take(0).capacity(), 0);
    }

    #[test]
    fn the_read_and_write_pools_are_apart() {
        let mut buf = BytesMut::with_capacity(1024);
        buf.extend_from_slice(&[1; 8]);
        drop(buf.split_to(8));
        WRITE.park(buf);
        assert_eq!(READ.take(0).capacity(), 0, "a writer's buffer is not a reader's");
        assert_eq!(WRITE.take(1024).capacity(), 1024);
        assert_eq!(WRITE.take(0).capacity(), 0);
    }
}
