//! Observability through `tracing`, compiled in only with the `tracing`
//! feature: without it the macros below expand to nothing, their
//! arguments are not evaluated, and a connection carries no span.
//!
//! Every connection gets a span ([`connection_span`]) that its halves
//! enter while they poll, so the events below and the application's own
//! carry its role, peer, subprotocol and compression. Call sites stay one
//! line: [`trace_event!`] for an event, [`enter!`] for the span.

/// `tracing::event!` with the feature, nothing without it.
#[cfg(feature = "tracing")]
macro_rules! trace_event {
    ($($arg:tt)*) => {
        ::tracing::event!($($arg)*)
    };
}

/// `tracing::event!` with the feature, nothing without it.
#[cfg(not(feature = "tracing"))]
macro_rules! trace_event {
    ($($arg:tt)*) => {
        ()
    };
}

/// Enters the connection's span (`$shared` is its [`Shared`](super::shared::Shared))
/// until the end of the enclosing block; nothing without the feature. The
/// guard owns a clone of the span, so the block may borrow the half
/// mutably (a disabled span clones for free).
#[cfg(feature = "tracing")]
macro_rules! enter {
    ($shared:expr) => {
        let _entered = $shared.span.clone().entered();
    };
}

/// Enters the connection's span; nothing without the feature.
#[cfg(not(feature = "tracing"))]
macro_rules! enter {
    ($shared:expr) => {};
}

pub(crate) use {enter, trace_event};

/// The span of one connection: its role now, the rest recorded by the
/// handshake when it knows them.
#[cfg(feature = "tracing")]
pub(crate) fn connection_span(role: crate::Role) -> tracing::Span {
    use tracing::field::Empty;
    let role = match role {
        crate::Role::Client => "client",
        crate::Role::Server => "server",
    };
    tracing::info_span!("websocket", role, peer = Empty, subprotocol = Empty, compression = false)
}

/// A value a span field can record: `tracing::Value` with the feature.
#[cfg(feature = "tracing")]
pub(crate) use tracing::Value as TraceValue;

/// A value a span field can record: anything, recorded nowhere, without
/// the feature.
#[cfg(not(feature = "tracing"))]
pub(crate) trait TraceValue {}

#[cfg(not(feature = "tracing"))]
impl<T> TraceValue for T {}
