//! The server side: [`Upgrader::accept_h3`] serves the extended CONNECT
//! requests of one QUIC connection, and [`Http3Acceptor`] hands out their
//! WebSockets.

use std::net::SocketAddr;
use std::sync::{Arc, Weak};

use bytes::BytesMut;
use http::{HeaderName, HeaderValue, Method, Uri, Version};
use tokio::sync::{mpsc, Notify};

use super::conn::{self, ConnGuard};
use super::frame::{self, put_frame_header};
use super::io::{write_error, FrameReader, H3Io};
use super::{qpack, H3WebSocket};
use crate::connection::trace::trace_event;
use crate::error::{Error, Result};
use crate::handshake::extensions;
use crate::handshake::head::{deadline_after, within};
use crate::handshake::policy::Refused;
use crate::handshake::request::ConnectProtocol;
use crate::handshake::response::{accept_response, refusal_response};
use crate::{HandshakeError, Request, Role, Upgrader};

/// How many decided requests wait for [`Http3Acceptor::accept`] before
/// the streams behind them wait too.
const QUEUE: usize = 16;

impl Upgrader {
    /// Serves WebSockets over HTTP/3 (RFC 9220) on an accepted QUIC
    /// connection (quinn, ALPN `h3`): announces extended CONNECT in its
    /// SETTINGS, then decides on each request stream as
    /// [`Upgrader::accept`] does (the checks of RFC 8441 §4 and §5 as RFC
    /// 9220 takes them, origin, [`Upgrader::check_request`], subprotocol,
    /// permessage-deflate, [`Upgrader::shutdown`]), answers `200` or the
    /// refusal, and hands the WebSockets to [`Http3Acceptor::accept`]. See
    /// the [module docs](crate::http3).
    ///
    /// [`Upgrader::max_head_size`] bounds each request's field section (and
    /// is announced as `SETTINGS_MAX_FIELD_SECTION_SIZE`); a larger one is
    /// refused with 431. [`Upgrader::handshake_timeout`] bounds reading and
    /// answering each request. [`Upgrader::max_headers`] does not apply.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when the control stream cannot be opened (the
    /// connection is gone).
    pub async fn accept_h3(&self, quic: quinn::Connection) -> Result<Http3Acceptor> {
        let settings = [
            (frame::SETTINGS_ENABLE_CONNECT_PROTOCOL, 1),
            (frame::SETTINGS_MAX_FIELD_SECTION_SIZE, self.get_max_head_size() as u64),
        ];
        let started = conn::start(&quic, &settings, Role::Server).await?;
        let guard = Arc::new(ConnGuard { quic: quic.clone() });
        let (tx, rx) = mpsc::channel(QUEUE);
        let going_away = Arc::new(Notify::new());
        let requests = Requests { upgrader: self.clone(), quic, control: started.control, tx: Some(tx) };
        tokio::spawn(requests.run(Arc::downgrade(&guard), going_away.clone()));
        Ok(Http3Acceptor { rx, guard, going_away })
    }

    /// Reads, decides on and answers one request stream.
    async fn answer(
        &self,
        mut send: quinn::SendStream,
        recv: quinn::RecvStream,
        guard: Arc<ConnGuard>,
    ) -> Result<(H3WebSocket, Request)> {
        let deadline = deadline_after(self.get_handshake_timeout());
        let mut reader = FrameReader::new(recv);
        let max = self.get_max_head_size();
        let Some(block) = within(deadline, Box::pin(reader.read_headers(max))).await?? else {
            let refused = Refused::Error(HandshakeError::RequestHeadTooLarge);
            return Err(refuse(&mut send, refused, deadline, guard).await);
        };
        let request = match to_request(&block, max) {
            Ok(request) => request,
            Err(err @ HandshakeError::RequestHeadTooLarge) => {
                return Err(refuse(&mut send, Refused::Error(err), deadline, guard).await)
            }
            Err(err) => {
                // RFC 9114 §4.1.2: a malformed request is a stream error
                // of type H3_MESSAGE_ERROR.
                let _ = send.reset(frame::H3_MESSAGE_ERROR.into());
                let _ = reader.recv.stop(frame::H3_MESSAGE_ERROR.into());
                return Err(err.into());
            }
        };
        let decided = self.check_settings().map_err(Refused::from).and_then(|()| {
            let answer = self.decide(&request)?;
            let response =
                accept_response(None, answer.subprotocol, answer.extensions.as_deref(), self.extra_headers())?;
            Ok((response, answer.agreed, answer.subprotocol.map(str::to_owned)))
        });
        let (response, agreed, subprotocol) = match decided {
            Ok(decided) => decided,
            Err(refused) => return Err(refuse(&mut send, refused, deadline, guard).await),
        };
        within(deadline, Box::pin(send_response(&mut send, &response))).await??;
        let io = H3Io::new(reader, send, guard);
        let mut ws = extensions::into_stream(io, Role::Server, self.conn_config(), BytesMut::new(), agreed);
        ws.trace_subprotocol(subprotocol.as_deref());
        self.register(&mut ws);
        Ok((ws, request))
    }
}

/// The loop that takes the request streams of one connection.
struct Requests {
    upgrader: Upgrader,
    quic: quinn::Connection,
    control: conn::Control,
    /// Where decided requests go; `None` once gone away.
    tx: Option<mpsc::Sender<Result<(H3WebSocket, Request)>>>,
}

impl Requests {
    /// Takes each request stream onto a task of its own that answers it,
    /// until the connection ends or the last strong `guard` is gone (this
    /// loop holds it weakly: the connection closes once the acceptor and
    /// every stream answered or upgraded on it are gone). Pending streams
    /// are bounded by QUIC's stream limit (quinn's default, 100 at a
    /// time). After [`Http3Acceptor::graceful_shutdown`], or once the
    /// upgrader's [`Shutdown`](crate::Shutdown) is triggered, it sends
    /// GOAWAY and rejects the streams past it.
    async fn run(mut self, weak: Weak<ConnGuard>, going_away: Arc<Notify>) {
        let shutdown = self.upgrader.get_shutdown().cloned();
        let triggered = async {
            match &shutdown {
                Some(shutdown) => shutdown.triggered().await,
                None => std::future::pending().await,
            }
        };
        tokio::pin!(triggered);
        // The first client-initiated bidirectional stream not taken yet.
        let mut next = 0u64;
        loop {
            let accepted = tokio::select! {
                accepted = self.quic.accept_bi() => accepted,
                () = going_away.notified(), if self.tx.is_some() => {
                    self.go_away(next);
                    continue;
                }
                () = &mut triggered, if self.tx.is_some() => {
                    self.go_away(next);
                    continue;
                }
            };
            let Ok((mut send, mut recv)) = accepted else { break };
            let Some(guard) = weak.upgrade() else { break };
            let Some(tx) = &self.tx else {
                // RFC 9114 §5.2: a request past the GOAWAY is rejected, and
                // the client may retry it elsewhere.
                let _ = send.reset(frame::H3_REQUEST_REJECTED.into());
                let _ = recv.stop(frame::H3_REQUEST_REJECTED.into());
                continue;
            };
            next = u64::from(send.id()) + 4;
            let (upgrader, tx) = (self.upgrader.clone(), tx.clone());
            tokio::spawn(async move {
                let decided = upgrader.answer(send, recv, guard).await;
                let _ = tx.send(decided).await;
            });
        }
    }

    /// Sends GOAWAY naming `next` and takes no more requests:
    /// [`Http3Acceptor::accept`] ends once those before it are answered.
    fn go_away(&mut self, next: u64) {
        self.control.send_goaway(next);
        self.tx = None;
        trace_event!(tracing::Level::DEBUG, stream = next, "http/3 GOAWAY sent");
    }
}

/// Answers a refused request on its stream with the refusal's status,
/// fields and body, ends the stream, and gives the error to report.
async fn refuse(
    send: &mut quinn::SendStream,
    refused: Refused,
    deadline: Option<tokio::time::Instant>,
    guard: Arc<ConnGuard>,
) -> Error {
    let error = refused.error();
    trace_event!(tracing::Level::INFO, status = error.status().map(|s| s.as_u16()), reason = %error, "handshake refused");
    let response = refusal_response(refused, Version::HTTP_3);
    let _ = within(deadline, Box::pin(send_response(send, &response))).await;
    let _ = send.finish();
    conn::linger(send, guard);
    Error::Handshake(error)
}

/// Writes `response` on the stream: its HEADERS, and its body, if any, in a
/// DATA frame.
async fn send_response(send: &mut quinn::SendStream, response: &http::Response<String>) -> std::io::Result<()> {
    let status = response.status();
    let fields = std::iter::once((&b":status"[..], status.as_str().as_bytes()))
        .chain(response.headers().iter().map(|(name, value)| (name.as_str().as_bytes(), value.as_bytes())));
    let block = qpack::encode(fields);
    let mut out = Vec::with_capacity(block.len() + response.body().len() + 16);
    put_frame_header(&mut out, frame::HEADERS, block.len() as u64);
    out.extend_from_slice(&block);
    if !response.body().is_empty() {
        put_frame_header(&mut out, frame::DATA, response.body().len() as u64);
        out.extend_from_slice(response.body().as_bytes());
    }
    send.write_all(&out).await.map_err(write_error)
}

/// The request of a decoded field section (RFC 9114 §4.3.1): the
/// pseudo-header fields first, each once, the others lowercase, with
/// `:protocol` carried as the handshake's [`ConnectProtocol`].
fn to_request(block: &[u8], max_size: usize) -> std::result::Result<Request, HandshakeError> {
    let fields = qpack::decode(block, max_size).map_err(|err| match err {
        qpack::QpackError::TooLarge => HandshakeError::RequestHeadTooLarge,
        _ => HandshakeError::MalformedRequest,
    })?;
    let mut request = Request::new(());
    *request.version_mut() = Version::HTTP_3;
    let (mut method, mut scheme, mut authority, mut path, mut protocol) = (None, None, None, None, None);
    let mut regular = false;
    for (name, value) in fields {
        if let Some(pseudo) = name.strip_prefix(b":") {
            let slot = match pseudo {
                b"method" => &mut method,
                b"scheme" => &mut scheme,
                b"authority" => &mut authority,
                b"path" => &mut path,
                b"protocol" => &mut protocol,
                _ => return Err(HandshakeError::MalformedRequest),
            };
            if regular || slot.is_some() {
                return Err(HandshakeError::MalformedRequest);
            }
            *slot = Some(String::from_utf8(value).map_err(|_| HandshakeError::MalformedRequest)?);
            continue;
        }
        regular = true;
        if name.iter().any(u8::is_ascii_uppercase) {
            return Err(HandshakeError::MalformedRequest);
        }
        let name = HeaderName::from_bytes(&name).map_err(|_| HandshakeError::MalformedRequest)?;
        let value = HeaderValue::from_bytes(&value).map_err(|_| HandshakeError::MalformedRequest)?;
        request.headers_mut().append(name, value);
    }
    let method = method.ok_or(HandshakeError::MalformedRequest)?;
    *request.method_mut() = Method::from_bytes(method.as_bytes()).map_err(|_| HandshakeError::MalformedRequest)?;
    let mut uri = Uri::builder();
    if let Some(scheme) = &scheme {
        uri = uri.scheme(scheme.as_str());
    }
    if let Some(authority) = &authority {
        uri = uri.authority(authority.as_str());
    }
    if let Some(path) = &path {
        uri = uri.path_and_query(path.as_str());
    }
    *request.uri_mut() = uri.build().map_err(|_| HandshakeError::MalformedRequest)?;
    if let Some(protocol) = protocol {
        request.extensions_mut().insert(ConnectProtocol(protocol));
    }
    Ok(request)
}

/// The WebSockets of one HTTP/3 connection, from [`Upgrader::accept_h3`].
///
/// Each request stream is read and answered on a task of its own, so a
/// slow client holds up none of the others. Dropping the acceptor sends
/// GOAWAY and rejects new streams, as
/// [`Http3Acceptor::graceful_shutdown`] and the upgrader's
/// [`Shutdown`](crate::Shutdown) do; the connection closes once the
/// WebSockets already handed out are gone too.
#[derive(Debug)]
pub struct Http3Acceptor {
    rx: mpsc::Receiver<Result<(H3WebSocket, Request)>>,
    guard: Arc<ConnGuard>,
    going_away: Arc<Notify>,
}

impl Http3Acceptor {
    /// The next WebSocket with its request (for its path, query and
    /// fields), or the refusal of a request that was answered with an
    /// error status (an [`Error::Handshake`]: keep calling, other streams
    /// carry on), or an [`Error::Io`] for a stream that failed; `None` once
    /// the connection is closed, or gone away
    /// ([`Http3Acceptor::graceful_shutdown`]) with every request before
    /// the GOAWAY answered.
    ///
    /// # Cancellation safety
    ///
    /// Cancel safe: a WebSocket not yet returned stays queued.
    pub async fn accept(&mut self) -> Option<Result<(H3WebSocket, Request)>> {
        self.rx.recv().await
    }

    /// The client's address.
    #[must_use]
    pub fn remote_address(&self) -> SocketAddr {
        self.guard.quic.remote_address()
    }

    /// The QUIC connection.
    #[must_use]
    pub fn connection(&self) -> &quinn::Connection {
        &self.guard.quic
    }

    /// Shuts the connection down gracefully (RFC 9114 §5.2): sends GOAWAY
    /// naming the first request stream not taken yet, and rejects any
    /// later one (`H3_REQUEST_REJECTED`, which a client may retry on
    /// another connection). The WebSockets already open carry on until
    /// either side closes them: close them with 1001 through a
    /// [`Shutdown`](crate::Shutdown), which also sends this GOAWAY when it
    /// is triggered. [`Http3Acceptor::accept`] returns `None` once the
    /// requests before the GOAWAY are answered, and the connection closes
    /// when the acceptor and those WebSockets are gone.
    pub fn graceful_shutdown(&self) {
        self.going_away.notify_one();
    }

    /// Closes the whole connection at once (QUIC `CONNECTION_CLOSE` with
    /// `H3_NO_ERROR`), its WebSockets included, which then fail with
    /// `ConnectionReset`. Close each WebSocket first for clean closes.
    pub fn close(&self) {
        self.guard.quic.close(frame::H3_NO_ERROR.into(), b"");
    }
}

impl Drop for Http3Acceptor {
    /// Goes away as [`Http3Acceptor::graceful_shutdown`] does; the task
    /// taking streams keeps rejecting them until the connection closes.
    fn drop(&mut self) {
        self.going_away.notify_one();
    }
}
