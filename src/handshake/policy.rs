//! The server's policy types: who may connect ([`OriginPolicy`]), the
//! application's own check ([`RequestCheck`]), and the two outcomes of
//! judging a request, [`Answer`] or [`Refused`]. `Upgrader::decide` applies
//! them (`server.rs`).

use std::fmt;
use std::sync::Arc;

use super::extensions::Agreed;
use super::rejection::Rejection;
use super::response::build_error_response;
use super::{HandshakeError, Request};

/// Who may connect, judged by the request (usually its `Origin`).
#[derive(Clone)]
pub(crate) enum OriginPolicy {
    /// `Origin` absent, or naming the same host as `Host`.
    SameHost,
    /// Everyone.
    Any,
    /// The application decides.
    Check(Arc<dyn Fn(&Request) -> bool + Send + Sync>),
}

impl fmt::Debug for OriginPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OriginPolicy::SameHost => "SameHost",
            OriginPolicy::Any => "Any",
            OriginPolicy::Check(_) => "Check(..)",
        })
    }
}

/// The closure of [`Upgrader::check_request`].
pub(crate) type CheckFn = dyn Fn(&Request) -> Result<(), Rejection> + Send + Sync;

/// The application's own check of a request, after the handshake's.
#[derive(Clone)]
pub(crate) struct RequestCheck(pub(crate) Arc<CheckFn>);

impl fmt::Debug for RequestCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RequestCheck(..)")
    }
}

/// Why a request was refused, and so what to answer it with.
#[derive(Debug)]
pub(crate) enum Refused {
    /// One of the handshake's own checks failed: answered with the error's
    /// status (see [`build_error_response`]).
    Error(HandshakeError),
    /// The application refused it: answered as it asked.
    Rejected(Rejection),
}

impl Refused {
    /// The error the handshake fails with.
    pub(crate) fn error(&self) -> HandshakeError {
        match self {
            Refused::Error(err) => *err,
            Refused::Rejected(rejection) => HandshakeError::Rejected(rejection.status()),
        }
    }

    /// The response to send on an HTTP/1.1 connection, if any.
    pub(crate) fn to_bytes(&self) -> Option<Vec<u8>> {
        match self {
            Refused::Error(err) => build_error_response(*err),
            Refused::Rejected(rejection) => Some(rejection.to_bytes()),
        }
    }
}

impl From<HandshakeError> for Refused {
    fn from(err: HandshakeError) -> Self {
        Refused::Error(err)
    }
}

/// What the server answers a request it accepts with.
#[derive(Debug)]
pub(crate) struct Answer<'u> {
    /// The `Sec-WebSocket-Accept` value; `None` for HTTP/2 (RFC 8441 §5).
    pub(crate) accept: Option<String>,
    /// The subprotocol selected, one of the upgrader's.
    pub(crate) subprotocol: Option<&'u str>,
    /// The `Sec-WebSocket-Extensions` value, if any extension was agreed.
    pub(crate) extensions: Option<String>,
    /// The extensions agreed on.
    pub(crate) agreed: Agreed,
}
