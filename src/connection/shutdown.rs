//! [`Shutdown`]: a server-wide drain. Connections register with it (an
//! [`Upgrader`](crate::Upgrader) given one registers each connection it
//! makes); triggering it closes every one of them with 1001 Going Away, and
//! [`Shutdown::drained`] waits until they are all gone.
//!
//! ```text
//!   Shutdown ──Arc──▶ Registry: triggered flag, Notify, slab of Arc<Entry>
//!                                                        ▲  (removed when the
//!   ReadHalf ── Registration ──Arc──▶ Entry ─────────────┘   Registration drops)
//!               (phase)               requested flag, the reader's waker
//! ```
//!
//! The registry never reaches a connection's state (it does not know its
//! transport type): [`Shutdown::trigger`] sets each entry's flag and wakes
//! the task reading the connection, and the read half queues the close
//! frame itself the next time it is polled, then bounds the rest of the
//! closing handshake by the close timeout. A [`Registration`] lives in the
//! read half and unregisters when the read half is dropped or its closing
//! handshake is over, so the registry holds only live connections.

use std::fmt;
use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::Waker;

use futures_util::task::AtomicWaker;
use tokio::sync::Notify;

use super::{ReadHalf, WebSocketStream};

/// A server-wide graceful shutdown: closes every registered connection with
/// `1001 Going Away` when triggered, and tells when they are all gone.
///
/// Clone it freely (clones share one registry) and hand it to the
/// [`Upgrader`](crate::Upgrader) ([`Upgrader::shutdown`](crate::Upgrader::shutdown)):
/// every connection that upgrader accepts, on a raw transport or through
/// hyper or axum, is registered. Connections made otherwise (a
/// [`Connector`](crate::Connector), [`WebSocketStream::from_raw_parts`])
/// join with [`Shutdown::register`].
///
/// [`trigger`](Shutdown::trigger) asks each registered connection to send
/// its close frame (1001); the task reading the connection writes it and
/// then completes the closing handshake, which is bounded by
/// [`Config::close_timeout`](crate::Config::close_timeout) from then on
/// (after it, the read yields [`Error::Timeout`](crate::Error::Timeout)
/// and the stream ends). So, as always, **the application must keep
/// polling each connection's reader** (`next()`, the read half, a
/// [`MessageReader`](crate::MessageReader)): a connection nobody reads
/// neither sends the close nor notices the answer. A connection is
/// unregistered when its read half (the unsplit stream, or the
/// [`ReadHalf`] after a split) is dropped, or when its closing handshake is
/// over (the read has yielded its last item).
///
/// After a trigger, an `Upgrader` holding this shutdown refuses new
/// handshakes with `503 Service Unavailable` (and
/// [`HandshakeError::Rejected`](crate::HandshakeError::Rejected)), and a
/// connection registered afterwards (one whose handshake was already past
/// that check, or a [`register`](Shutdown::register)ed one) is closed with
/// 1001 at once, as if it had been registered before the trigger.
///
/// ```no_run
/// use std::time::Duration;
///
/// use futures_util::{future, StreamExt, TryStreamExt};
/// use silverback::{Shutdown, Upgrader};
/// use tokio::net::TcpListener;
///
/// # async fn run() -> std::io::Result<()> {
/// let shutdown = Shutdown::new();
/// let upgrader = std::sync::Arc::new(Upgrader::new().shutdown(&shutdown));
/// let listener = TcpListener::bind("127.0.0.1:9001").await?;
/// loop {
///     let tcp = tokio::select! {
///         accepted = listener.accept() => accepted?.0,
///         _ = tokio::signal::ctrl_c() => break,
///     };
///     let upgrader = upgrader.clone();
///     tokio::spawn(async move {
///         let (read, write) = upgrader.accept(tcp).await?.split();
///         read.try_filter(|msg| future::ready(msg.is_text() || msg.is_binary())).forward(write).await
///     });
/// }
/// shutdown.trigger();
/// // Each closing handshake is bounded by the close timeout (10 s by default).
/// let _ = tokio::time::timeout(Duration::from_secs(11), shutdown.drained()).await;
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Default)]
pub struct Shutdown {
    registry: Arc<Registry>,
}

/// What every clone of a [`Shutdown`] and every registered connection share.
#[derive(Default)]
struct Registry {
    triggered: AtomicBool,
    slots: Mutex<Slots>,
    /// Woken on the trigger and whenever the last connection leaves.
    notify: Notify,
}

/// A slab of the registered connections: freed slots are reused, so the
/// registry grows with the most connections open at once, never with the
/// number ever registered.
#[derive(Default)]
struct Slots {
    entries: Vec<Option<Arc<Entry>>>,
    free: Vec<usize>,
    live: usize,
}

/// One registered connection, as the registry sees it.
struct Entry {
    registry: Arc<Registry>,
    key: usize,
    /// Set by the trigger: the read half is to send its close frame.
    requested: AtomicBool,
    /// The task reading the connection, woken by the trigger.
    reader: AtomicWaker,
}

impl Shutdown {
    /// A new shutdown, not triggered, with no connection registered.
    #[must_use]
    pub fn new() -> Self {
        Shutdown::default()
    }

    /// Registers `ws`, so that [`trigger`](Shutdown::trigger) closes it
    /// with 1001 and [`drained`](Shutdown::drained) waits for it. Once
    /// triggered, the connection is closed at once (by its reader, the next
    /// time it is polled). A connection belongs to one shutdown at a time:
    /// registering it again replaces its registration.
    ///
    /// Registration costs one small allocation and a slot in the registry,
    /// given back when the connection's read half is dropped or its closing
    /// handshake is over.
    pub fn register<S>(&self, ws: &mut WebSocketStream<S>) {
        self.register_reader(ws.read_half_mut());
    }

    /// Registers the connection of a [`ReadHalf`], as
    /// [`register`](Shutdown::register) does for the unsplit stream: the
    /// connection counts as gone once this half is dropped or has ended.
    pub fn register_reader<S>(&self, read: &mut ReadHalf<S>) {
        read.set_registration(Some(self.registration()));
    }

    fn registration(&self) -> Registration {
        let mut slots = self.registry.lock();
        let key = slots.free.pop().unwrap_or(slots.entries.len());
        let entry = Arc::new(Entry {
            registry: self.registry.clone(),
            key,
            requested: AtomicBool::new(false),
            reader: AtomicWaker::new(),
        });
        if key == slots.entries.len() {
            slots.entries.push(Some(entry.clone()));
        } else {
            slots.entries[key] = Some(entry.clone());
        }
        slots.live += 1;
        // Read under the lock: a trigger either came before (and this entry
        // is closed now) or comes after and finds it in the slab.
        if self.is_triggered() {
            entry.requested.store(true, Ordering::Release);
        }
        drop(slots);
        Registration { entry, phase: Phase::Open }
    }

    /// Starts the drain: every registered connection (and every one
    /// registered later) sends `1001 Going Away` and completes its closing
    /// handshake. Wakes the [`triggered`](Shutdown::triggered) and
    /// [`drained`](Shutdown::drained) futures. Calling it again does
    /// nothing more.
    pub fn trigger(&self) {
        let entries: Vec<Arc<Entry>> = {
            let slots = self.registry.lock();
            if self.registry.triggered.swap(true, Ordering::AcqRel) {
                return;
            }
            slots.entries.iter().flatten().cloned().collect()
        };
        // Woken outside the lock: a woken task may register or leave at once.
        for entry in &entries {
            entry.requested.store(true, Ordering::Release);
            entry.reader.wake();
        }
        self.registry.notify.notify_waiters();
    }

    /// Whether [`trigger`](Shutdown::trigger) was called.
    #[must_use]
    pub fn is_triggered(&self) -> bool {
        self.registry.triggered.load(Ordering::Acquire)
    }

    /// How many connections are registered now (open, or still closing).
    #[must_use]
    pub fn connections(&self) -> usize {
        self.registry.lock().live
    }

    /// Resolves once [`trigger`](Shutdown::trigger) has been called (at
    /// once if it was): `select!` on it in an accept loop to stop
    /// accepting.
    ///
    /// # Cancellation safety
    ///
    /// Cancel safe: it holds no state; call it again to keep waiting.
    pub fn triggered(&self) -> impl Future<Output = ()> + Send + '_ {
        self.wait_until(Shutdown::is_triggered)
    }

    /// Resolves once the shutdown has been triggered and every registered
    /// connection is gone: its read half dropped, or its closing handshake
    /// over. Since the readers bound each handshake by the close timeout,
    /// this takes at most about that long after the trigger, provided every
    /// connection's reader is being polled; bound it with a timeout of your
    /// own (`tokio::time::timeout`) if some may not be.
    ///
    /// # Cancellation safety
    ///
    /// Cancel safe: it holds no state; call it again to keep waiting.
    pub fn drained(&self) -> impl Future<Output = ()> + Send + '_ {
        self.wait_until(|s| s.is_triggered() && s.connections() == 0)
    }

    async fn wait_until(&self, done: impl Fn(&Self) -> bool) {
        loop {
            let mut notified = pin!(self.registry.notify.notified());
            // Registered before the check, so that a wake-up between the
            // check and the await is not missed.
            notified.as_mut().enable();
            if done(self) {
                return;
            }
            notified.await;
        }
    }
}

impl Registry {
    /// Locks the slab. Every update is one step, so a panic elsewhere while
    /// it was held leaves it consistent: poisoning is ignored.
    fn lock(&self) -> MutexGuard<'_, Slots> {
        self.slots.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn remove(&self, key: usize) {
        let mut slots = self.lock();
        slots.entries[key] = None;
        slots.free.push(key);
        slots.live -= 1;
        let last = slots.live == 0;
        drop(slots);
        if last && self.triggered.load(Ordering::Acquire) {
            self.notify.notify_waiters();
        }
    }
}

/// Where a registered connection is in the drain, as its read half sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Not asked to close (or not noticed yet).
    Open,
    /// Our close frame is queued; the peer's is awaited within the close
    /// timeout.
    GoingAway,
    /// The close timeout passed first: the connection gives up.
    Expired,
}

/// A connection's membership in a [`Shutdown`], held by its read half;
/// dropping it unregisters the connection.
pub(crate) struct Registration {
    entry: Arc<Entry>,
    phase: Phase,
}

impl Registration {
    /// The read half queues its close frame now.
    pub(crate) fn start_going_away(&mut self) {
        self.phase = Phase::GoingAway;
    }

    /// Whether the shutdown asked for the close and the read half has not
    /// acted on it yet.
    #[inline]
    pub(crate) fn is_requested(&self) -> bool {
        self.phase == Phase::Open && self.entry.requested.load(Ordering::Acquire)
    }

    /// Records the task reading the connection, for the trigger to wake.
    pub(crate) fn register_waker(&self, waker: &Waker) {
        if self.phase == Phase::Open {
            self.entry.reader.register(waker);
        }
    }

    pub(crate) fn phase(&self) -> Phase {
        self.phase
    }

    pub(crate) fn expire(&mut self) {
        self.phase = Phase::Expired;
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.entry.registry.remove(self.entry.key);
    }
}

impl fmt::Debug for Shutdown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shutdown")
            .field("triggered", &self.is_triggered())
            .field("connections", &self.connections())
            .finish()
    }
}

impl fmt::Debug for Registration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registration").field("key", &self.entry.key).field("phase", &self.phase).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_reused_and_counted() {
        let shutdown = Shutdown::new();
        let a = shutdown.registration();
        let b = shutdown.registration();
        assert_eq!((a.entry.key, b.entry.key, shutdown.connections()), (0, 1, 2));
        drop(a);
        assert_eq!(shutdown.connections(), 1);
        let c = shutdown.registration();
        assert_eq!(c.entry.key, 0, "the freed slot is reused");
        drop((b, c));
        assert_eq!(shutdown.connections(), 0);
        assert_eq!(shutdown.registry.lock().entries.len(), 2, "no growth past the most at once");
    }

    #[test]
    fn trigger_flags_registered_and_later_connections_once() {
        let shutdown = Shutdown::new();
        let mut before = shutdown.registration();
        assert!(!before.is_requested());
        shutdown.clone().trigger();
        assert!(shutdown.is_triggered());
        assert!(before.is_requested());
        before.start_going_away();
        assert!(!before.is_requested(), "acted on once");
        let after = shutdown.registration();
        assert!(after.is_requested(), "registered after the trigger: closed at once");
    }

    #[tokio::test]
    async fn drained_waits_for_the_trigger_and_the_last_connection() {
        let shutdown = Shutdown::new();
        let reg = shutdown.registration();
        let waiter = tokio::spawn({
            let shutdown = shutdown.clone();
            async move { shutdown.drained().await }
        });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        shutdown.trigger();
        shutdown.triggered().await;
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished(), "a connection is still registered");
        drop(reg);
        tokio::time::timeout(std::time::Duration::from_secs(5), waiter).await.unwrap().unwrap();
    }
}
