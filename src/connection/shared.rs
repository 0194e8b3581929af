//! [`Shared`]: what both halves of a connection (and its control handles)
//! own together: the connection state ([`Conn`]: transport, outgoing queue,
//! urgent frames, closing handshake) and the wakers around it.
//!
//! The state sits behind one `std::sync::Mutex` that is only ever held for the
//! duration of a non-blocking `poll_*` call or a queue update, never across an
//! `.await`. Either half may drive the transport's write side: the reader
//! must be able to send a pong or a close echo while the writer task sleeps.
//! A transport keeps one waker per direction, so writes are polled with a
//! fan-out waker that wakes whichever halves are waiting to write; without
//! it, the half that polled last would steal the other's wake-up.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Wake, Waker};

use futures_util::task::AtomicWaker;

use super::conn::Conn;
use super::stats::Counters;
use crate::protocol::Role;

/// Which half is waiting on the transport's write side.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Half {
    Reader,
    Writer,
}

/// Wakes both halves when the transport becomes writable.
#[derive(Debug, Default)]
struct WriteWakers {
    reader: AtomicWaker,
    writer: AtomicWaker,
}

impl Wake for WriteWakers {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.reader.wake();
        self.writer.wake();
    }
}

/// What both halves (and any [`Control`](crate::Control) handles) own
/// together.
#[derive(Debug)]
pub(crate) struct Shared<S> {
    conn: Mutex<Conn<S>>,
    wakers: Arc<WriteWakers>,
    write_waker: Waker,
    /// The task polling the read half, woken when a control handle queued
    /// a frame for it to write.
    read_task: AtomicWaker,
    /// Set when an urgent frame (a pong, a close echo, a keepalive or
    /// control handle's ping or close; see `conn.rs`) is queued; lets the
    /// read half skip the lock while none is.
    urgent_queued: AtomicBool,
    /// Set by a control handle when it queued a frame, cleared by the read
    /// half when it notices: closes the race with the read half going to
    /// sleep just as the frame is queued.
    queued_by_control: AtomicBool,
    /// Traffic counters and the keepalive round trip (see `stats.rs`).
    pub(crate) counters: Counters,
    /// The connection's span, entered by the halves while they poll.
    #[cfg(feature = "tracing")]
    pub(crate) span: tracing::Span,
}

impl<S> Shared<S> {
    pub(crate) fn new(conn: Conn<S>, role: Role) -> Self {
        #[cfg(not(feature = "tracing"))]
        let _ = role;
        let wakers = Arc::new(WriteWakers::default());
        let write_waker = Waker::from(wakers.clone());
        Shared {
            conn: Mutex::new(conn),
            wakers,
            write_waker,
            read_task: AtomicWaker::new(),
            urgent_queued: AtomicBool::new(false),
            queued_by_control: AtomicBool::new(false),
            counters: Counters::default(),
            #[cfg(feature = "tracing")]
            span: super::trace::connection_span(role),
        }
    }

    /// Records the read half's task, for [`Shared::wake_reader_to_write`].
    pub(crate) fn register_reader(&self, cx: &Context<'_>) {
        self.read_task.register(cx.waker());
    }

    /// Whether an urgent frame is queued for the read half to write.
    pub(crate) fn is_urgent_queued(&self) -> bool {
        self.urgent_queued.load(Ordering::Acquire)
    }

    /// Records whether urgent frames are still unwritten, after the read
    /// half wrote or queued one.
    pub(crate) fn set_urgent_queued(&self, queued: bool) {
        self.urgent_queued.store(queued, Ordering::Release);
    }

    /// An urgent frame was queued outside the read half (a control handle,
    /// our close): flag it and wake the read half's task to write it.
    pub(crate) fn wake_reader_to_write(&self) {
        self.urgent_queued.store(true, Ordering::Release);
        self.queued_by_control.store(true, Ordering::Release);
        self.read_task.wake();
    }

    /// Whether a control handle queued a frame since the last call.
    pub(crate) fn take_queued_by_control(&self) -> bool {
        self.queued_by_control.load(Ordering::Relaxed) && self.queued_by_control.swap(false, Ordering::AcqRel)
    }

    /// Locks the connection state. A panic in another half while it held
    /// the lock leaves the state consistent (every update is a single
    /// step), so poisoning is ignored.
    pub(crate) fn lock(&self) -> MutexGuard<'_, Conn<S>> {
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers `half`'s interest in write readiness and returns the
    /// context to poll the transport's write side with.
    pub(crate) fn write_context(&self, half: Half, cx: &Context<'_>) -> Context<'_> {
        match half {
            Half::Reader => self.wakers.reader.register(cx.waker()),
            Half::Writer => self.wakers.writer.register(cx.waker()),
        }
        Context::from_waker(&self.write_waker)
    }
}
