//! The closing handshake as a state machine (RFC 6455 §5.5.1, §7.1.2–§7.1.4).
//!
//! ```text
//!            handle_send (we close)                  handle_receive (peer closes)
//!   Open ───────────────────────────▶ Sent ─┐   Open ──────────────────────────▶ Received
//!     │                                     │ peer's close arrives                 │ we echo
//!     │                                     ▼                                      ▼
//!     └──────────────────────────────▶ Done ◀──────────────────────────────────────┘
//! ```
//!
//! After we have sent a close frame we send no more data (§5.5.1); after both
//! sides have sent one, the handshake is done and the transport may be closed
//! (the server closes TCP first, §7.1.1).

/// Where the closing handshake stands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CloseState {
    sent: bool,
    received: bool,
}

/// What the caller must do after a close frame arrived.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnReceive {
    /// Send a close frame in reply (echoing the peer's code).
    Echo,
    /// Nothing to send: our close was already out; the handshake is done.
    Done,
}

impl CloseState {
    /// We want to send a close frame: `true` if we may (first time only).
    pub fn handle_send(&mut self) -> bool {
        !std::mem::replace(&mut self.sent, true)
    }

    /// A close frame arrived.
    pub fn handle_receive(&mut self) -> OnReceive {
        self.received = true;
        if self.handle_send() {
            OnReceive::Echo
        } else {
            OnReceive::Done
        }
    }

    /// Whether we have sent (or queued) our close frame: no data may follow.
    #[must_use]
    pub fn is_sent(&self) -> bool {
        self.sent
    }

    /// Both close frames are exchanged.
    #[must_use]
    pub fn is_done(&self) -> bool {
        self.sent && self.received
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn we_close_first() {
        let mut s = CloseState::default();
        assert!(s.handle_send());
        assert!(!s.handle_send(), "a second close frame is never sent");
        assert!(s.is_sent() && !s.is_done());
        assert_eq!(s.handle_receive(), OnReceive::Done);
        assert!(s.is_done());
    }

    #[test]
    fn peer_closes_first() {
        let mut s = CloseState::default();
        assert_eq!(s.handle_receive(), OnReceive::Echo);
        assert!(s.is_done());
        assert!(!s.handle_send());
    }
}
