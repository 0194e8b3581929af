//! [`Reconnect`]: a client that connects again after each drop, with
//! backoff, in the manner of Python `websockets`' `async for ws in
//! connect(...)`.

use std::fmt;
use std::time::Duration;

use http::StatusCode;
use tokio::time::Instant;

use super::backoff::Backoff;
use super::{Connector, HandshakeError, MaybeTlsStream, Response};
use crate::{Error, WebSocketStream};

/// A connection as [`Reconnect::next`] yields it: the stream and the
/// server's 101 response.
pub type Connection = (WebSocketStream<MaybeTlsStream>, Response);

/// Connects to one URL again and again: each [`Reconnect::next`] yields a
/// fresh connection, or the error of a failed attempt, after the wait that
/// [`Backoff`] prescribes.
///
/// Made by [`Connector::reconnect`], which copies the connector (headers,
/// proxy, TLS, timeouts apply to every attempt).
///
/// ```no_run
/// use std::time::Duration;
/// use futures_util::StreamExt;
/// use silverback::{Backoff, Connector};
///
/// # async fn run() {
/// let mut connections = Connector::new()
///     .reconnect("wss://feed.example/ticks")
///     .backoff(Backoff::new().initial(Duration::from_millis(200)));
/// while let Some(attempt) = connections.next().await {
///     let (mut ws, _response) = match attempt {
///         Ok(connection) => connection,
///         // Each failed attempt is reported; `next` waits, then retries,
///         // unless this one was final (a 403, say): then it answers None.
///         Err(failed) => {
///             eprintln!("{failed}: {}", failed.error());
///             continue;
///         }
///     };
///     while let Some(Ok(msg)) = ws.next().await {
///         println!("{msg:?}");
///     }
///     // Dropped: the next `next` connects again.
/// }
/// # }
/// ```
///
/// # When it retries
///
/// It retries after I/O errors (refused, reset, unreachable; not TLS
/// failures, which come as `InvalidData`), timeouts, a
/// connection closed or garbled mid-handshake, a server's or proxy's 5xx or
/// 429, and SOCKS replies 1, 3, 4, 5 and 6. Anything else is final: every
/// other refusal (a 4xx such as 401, 403, 404, or 407 from a proxy),
/// configuration errors (URL, proxy URL, header, TLS setup), TLS failures
/// (an untrusted or wrongly named certificate) and a server
/// that does not speak WebSocket properly. A final error is yielded once,
/// then `next` answers `None`; so does the last attempt when the backoff
/// gives up.
///
/// A 429 or 503 refusal with `Retry-After` in seconds (RFC 9110 §10.2.3)
/// is retried after exactly that long, instead of the backoff's wait; the
/// HTTP-date form is not read (the backoff's wait applies).
///
/// # Waits
///
/// The first attempt starts at once. After a failed attempt, and after a
/// connection ends, `next` waits for the backoff's next delay; the delays
/// grow with each failure and start over from [`Backoff::initial`] once a
/// connection has stayed up for [`Backoff::max`], so a server that accepts
/// and drops at once is not hammered either.
#[derive(Debug)]
pub struct Reconnect {
    connector: Connector,
    url: String,
    backoff: Backoff,
    /// The backoff step: the next wait is the `step`-th.
    step: u32,
    /// Failed attempts since the last connection.
    failures: u32,
    /// When the current run of failed attempts began.
    failing_since: Option<Instant>,
    /// When the last connection was yielded, until `next` is called again.
    connected_at: Option<Instant>,
    /// When the next attempt may start; kept if `next` is cancelled.
    next_at: Option<Instant>,
    /// A final error was yielded, or the backoff gave up.
    done: bool,
}

impl Connector {
    /// A [`Reconnect`] to `url` with this connector and the default
    /// [`Backoff`].
    #[must_use]
    pub fn reconnect(&self, url: impl Into<String>) -> Reconnect {
        Reconnect {
            connector: self.clone(),
            url: url.into(),
            backoff: Backoff::new(),
            step: 0,
            failures: 0,
            failing_since: None,
            connected_at: None,
            next_at: None,
            done: false,
        }
    }
}

impl Reconnect {
    /// Waits between attempts as `backoff` says.
    #[must_use]
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// The URL it connects to.
    #[must_use]
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Waits as the backoff prescribes, then makes one attempt: answers the
    /// new connection, or the attempt's error (with the wait before the
    /// next one, or none if it was the last), or `None` once a final error
    /// was yielded or the backoff gave up.
    ///
    /// Call it again when the connection it gave you ended (or whenever you
    /// want a new one: it does not watch the old one).
    ///
    /// # Cancellation safety
    ///
    /// Cancel safe. Dropped while waiting, the next call waits until the
    /// same instant, no longer; dropped during an attempt, that attempt is
    /// abandoned (its socket closed) and the next call starts a new one at
    /// once. No connection is ever lost: one is only made inside the call
    /// that returns it.
    pub async fn next(&mut self) -> Option<Result<Connection, AttemptError>> {
        if self.done {
            return None;
        }
        if let Some(connected_at) = self.connected_at.take() {
            if connected_at.elapsed() >= self.backoff.stable_after() {
                self.step = 0;
            }
            self.next_at = Some(Instant::now() + self.wait());
        }
        if let Some(at) = self.next_at {
            tokio::time::sleep_until(at).await;
            self.next_at = None;
        }
        let started = Instant::now();
        let mut retry_after = None;
        match self.connector.connect_noting_retry_after(&self.url, &mut retry_after).await {
            Ok(connection) => {
                self.failures = 0;
                self.failing_since = None;
                self.connected_at = Some(Instant::now());
                Some(Ok(connection))
            }
            Err(error) => {
                self.failures = self.failures.saturating_add(1);
                let since = *self.failing_since.get_or_insert(started);
                let retry_in = if is_retryable(&error) {
                    let wait = retry_after.unwrap_or_else(|| self.wait());
                    let elapsed = (Instant::now() + wait).saturating_duration_since(since);
                    (!self.backoff.gives_up(self.failures, elapsed)).then_some(wait)
                } else {
                    None
                };
                match retry_in {
                    Some(wait) => self.next_at = Some(Instant::now() + wait),
                    None => self.done = true,
                }
                Some(Err(AttemptError { error, attempt: self.failures, retry_in }))
            }
        }
    }

    /// The next backoff wait, advancing the step.
    fn wait(&mut self) -> Duration {
        let wait = self.backoff.delay(self.step);
        self.step = self.step.saturating_add(1);
        wait
    }
}

/// Whether an attempt that failed with `error` is worth another: see
/// [`Reconnect`], "When it retries".
fn is_retryable(error: &Error) -> bool {
    use HandshakeError::*;
    let transient = |status: &StatusCode| *status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error();
    match error {
        // TLS failures (an untrusted or wrongly named certificate) come as
        // InvalidData from both backends, and do not mend by waiting.
        Error::Io(e) => e.kind() != std::io::ErrorKind::InvalidData,
        Error::Timeout => true,
        Error::Handshake(e) => match e {
            UnexpectedStatus(status) | ProxyRefused(status) => transient(status),
            SocksRefused(code) => matches!(code, 1 | 3..=6),
            Timeout | UnexpectedEof | MalformedResponse | MalformedProxyResponse | MalformedSocksReply => true,
            _ => false,
        },
        _ => false,
    }
}

/// The wait a 429 or 503 `response` asks for in `Retry-After`, when given
/// in seconds (RFC 9110 §10.2.3: `delay-seconds = 1*DIGIT`).
pub(crate) fn retry_after(response: &Response) -> Option<Duration> {
    let status = response.status();
    if status != StatusCode::TOO_MANY_REQUESTS && status != StatusCode::SERVICE_UNAVAILABLE {
        return None;
    }
    let value = response.headers().get(http::header::RETRY_AFTER)?.to_str().ok()?.trim();
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // Over u64 seconds: the backoff decides instead.
    value.parse().ok().map(Duration::from_secs)
}

/// A failed attempt of a [`Reconnect`]: the error, which attempt in a row
/// it was, and what happens next.
#[derive(Debug)]
pub struct AttemptError {
    error: Error,
    attempt: u32,
    retry_in: Option<Duration>,
}

impl AttemptError {
    /// Why the attempt failed.
    #[must_use]
    pub fn error(&self) -> &Error {
        &self.error
    }

    /// Why the attempt failed, taken out.
    #[must_use]
    pub fn into_error(self) -> Error {
        self.error
    }

    /// How many attempts in a row have failed, this one included (from 1).
    #[must_use]
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// How long the next [`Reconnect::next`] waits before its attempt, or
    /// `None` if there will be none (see [`AttemptError::is_final`]).
    #[must_use]
    pub fn retry_in(&self) -> Option<Duration> {
        self.retry_in
    }

    /// Whether this was the last attempt: the error is not worth a retry,
    /// or the backoff gave up. The next [`Reconnect::next`] answers `None`.
    #[must_use]
    pub fn is_final(&self) -> bool {
        self.retry_in.is_none()
    }
}

impl fmt::Display for AttemptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.retry_in {
            Some(wait) => write!(f, "connection attempt {} failed, retrying in {wait:.1?}", self.attempt),
            None => write!(f, "connection attempt {} failed, giving up", self.attempt),
        }
    }
}

impl std::error::Error for AttemptError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: u16, retry_after: Option<&str>) -> Response {
        let mut builder = http::Response::builder().status(status);
        if let Some(value) = retry_after {
            builder = builder.header("retry-after", value);
        }
        builder.body(()).unwrap()
    }

    #[test]
    fn retry_after_is_read_in_seconds_from_429_and_503() {
        assert_eq!(retry_after(&response(429, Some("7"))), Some(Duration::from_secs(7)));
        assert_eq!(retry_after(&response(503, Some(" 0 "))), Some(Duration::ZERO));
        assert_eq!(retry_after(&response(503, None)), None);
        assert_eq!(retry_after(&response(403, Some("7"))), None);
        assert_eq!(retry_after(&response(429, Some("Wed, 21 Oct 2015 07:28:00 GMT"))), None);
        assert_eq!(retry_after(&response(429, Some("-1"))), None);
        assert_eq!(retry_after(&response(429, Some("99999999999999999999999"))), None);
    }

    #[test]
    fn what_is_retried() {
        use HandshakeError::*;
        let status = |s: u16| StatusCode::from_u16(s).unwrap();
        let table: &[(Error, bool)] = &[
            (Error::Io(std::io::ErrorKind::ConnectionRefused.into()), true),
            (Error::Io(std::io::ErrorKind::ConnectionReset.into()), true),
            (Error::Io(std::io::Error::new(std::io::ErrorKind::InvalidData, "bad certificate")), false),
            (Timeout.into(), true),
            (UnexpectedEof.into(), true),
            (MalformedSocksReply.into(), true),
            (UnexpectedStatus(status(503)).into(), true),
            (UnexpectedStatus(status(429)).into(), true),
            (UnexpectedStatus(status(500)).into(), true),
            (ProxyRefused(status(502)).into(), true),
            (SocksRefused(5).into(), true),
            (UnexpectedStatus(status(403)).into(), false),
            (UnexpectedStatus(status(404)).into(), false),
            (UnexpectedStatus(status(401)).into(), false),
            (UnexpectedStatus(status(200)).into(), false),
            (ProxyRefused(status(407)).into(), false),
            (SocksRefused(2).into(), false),
            (SocksAuthFailed.into(), false),
            (InvalidUrl.into(), false),
            (InvalidAcceptKey.into(), false),
            (TlsNotEnabled.into(), false),
        ];
        for (error, retried) in table {
            assert_eq!(is_retryable(error), *retried, "{error:?}");
        }
    }

    #[test]
    fn attempt_errors_say_what_comes_next() {
        let again = AttemptError {
            error: HandshakeError::Timeout.into(),
            attempt: 2,
            retry_in: Some(Duration::from_millis(1500)),
        };
        assert_eq!(again.to_string(), "connection attempt 2 failed, retrying in 1.5s");
        assert!(!again.is_final());
        let last = AttemptError { error: HandshakeError::InvalidUrl.into(), attempt: 1, retry_in: None };
        assert_eq!(last.to_string(), "connection attempt 1 failed, giving up");
        assert!(last.is_final());
        assert!(std::error::Error::source(&last).is_some());
    }
}
