//! [`Control`]: a cloneable handle that pings or closes a connection from
//! any task.

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use tokio::io::AsyncWrite;

use super::shared::Shared;
use super::trace::enter;
use crate::error::Result;
use crate::protocol::CloseFrame;

/// Sends control frames on a connection from any task, like
/// gorilla/websocket's `WriteControl`: a ping, or the close frame that starts
/// the closing handshake. Clone it freely; it keeps the connection's shared
/// state alive but not its tasks.
///
/// The frame is queued at once, ahead of nothing already queued, and
/// written by the task polling the [`ReadHalf`](crate::ReadHalf) (or the
/// unsplit [`WebSocketStream`](crate::WebSocketStream)), which the handle
/// wakes; that task is also the one that answers pings, so a connection
/// whose messages are being read needs nothing more. After a close, the
/// read side sees the peer's close frame and ends.
///
/// ```no_run
/// use std::time::Duration;
///
/// # async fn run(ws: silverback::WebSocketStream<tokio::net::TcpStream>) -> silverback::Result<()> {
/// let control = ws.control();
/// tokio::spawn(async move {
///     // Shut the connection down from elsewhere after a minute.
///     tokio::time::sleep(Duration::from_secs(60)).await;
///     let _ = control.close(Some(silverback::CloseFrame::new(silverback::CloseCode::GOING_AWAY, "bye")));
/// });
/// # Ok(())
/// # }
/// ```
pub struct Control<S> {
    shared: Arc<Shared<S>>,
}

impl<S> Control<S> {
    pub(crate) fn new(shared: Arc<Shared<S>>) -> Self {
        Control { shared }
    }

    /// The connection's traffic counters and round-trip time (see
    /// [`Stats`](crate::Stats)). Takes no lock.
    #[must_use]
    pub fn stats(&self) -> crate::Stats {
        self.shared.counters.get()
    }
}

impl<S: AsyncWrite + Unpin> Control<S> {
    /// Queues a ping with `payload` (at most 125 bytes, RFC 6455 §5.5).
    ///
    /// Fails with [`Error::Closed`](crate::Error::Closed) once our close
    /// frame was queued, with the connection's error once it failed, and
    /// with [`CapacityError::ControlFrameTooLong`](crate::CapacityError) for
    /// a longer payload.
    pub fn ping(&self, payload: impl Into<Bytes>) -> Result<()> {
        enter!(self.shared);
        self.shared.lock().push_ping(&payload.into())?;
        self.shared.wake_reader_to_write();
        Ok(())
    }

    /// Queues our close frame (`None` sends one without a code), unless one
    /// was already sent; data queued after it is refused.
    pub fn close(&self, frame: Option<CloseFrame>) -> Result<()> {
        enter!(self.shared);
        self.shared.lock().push_close_urgent(frame.as_ref())?;
        self.shared.wake_reader_to_write();
        Ok(())
    }
}

impl<S> Clone for Control<S> {
    fn clone(&self) -> Self {
        Control { shared: self.shared.clone() }
    }
}

impl<S> fmt::Debug for Control<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Control").finish_non_exhaustive()
    }
}
