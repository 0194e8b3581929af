//! The HTTP/3 connection around the request streams (RFC 9114 §6.2): our
//! control stream with our SETTINGS (and the GOAWAY a server sends when it
//! shuts down), the peer's unidirectional streams (its control stream,
//! read for its SETTINGS and GOAWAY; QPACK streams, drained; others,
//! stopped), and the guard that closes the QUIC connection when the last
//! user of it is gone.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::{Buf, BytesMut};
use tokio::sync::{oneshot, watch};

use super::frame::{self, get_frame_header, get_varint, parse_goaway, parse_settings, settings_frame};
use crate::Role;

/// The most bytes of the peer's SETTINGS frame we read.
const MAX_SETTINGS: u64 = 4096;

/// What the peer's SETTINGS said.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct PeerSettings {
    /// SETTINGS_ENABLE_CONNECT_PROTOCOL = 1 (RFC 9220 §3).
    pub(crate) extended_connect: bool,
}

/// The peer's GOAWAY (RFC 9114 §5.2): the lowest identifier it named so
/// far, or none yet.
#[derive(Debug)]
pub(crate) struct PeerGoaway(AtomicU64);

impl PeerGoaway {
    const NONE: u64 = u64::MAX;

    fn new() -> Self {
        PeerGoaway(AtomicU64::new(Self::NONE))
    }

    /// Whether the peer sent a GOAWAY.
    pub(crate) fn received(&self) -> bool {
        self.0.load(Ordering::Acquire) != Self::NONE
    }

    /// Takes the identifier of a GOAWAY; an error code when it is one a
    /// GOAWAY from this peer may not carry: from a server
    /// (`from_server`), a stream that is not a client-initiated
    /// bidirectional one, or a larger identifier than an earlier GOAWAY's
    /// (§5.2, §7.2.6: H3_ID_ERROR).
    fn record(&self, id: u64, from_server: bool) -> Result<(), u32> {
        let earlier = self.0.load(Ordering::Acquire);
        if (from_server && id % 4 != 0) || (earlier != Self::NONE && id > earlier) {
            return Err(frame::H3_ID_ERROR);
        }
        // The peer's control stream has one reader: no race to lose.
        self.0.store(id, Ordering::Release);
        Ok(())
    }
}

/// Our side of our control stream, past the SETTINGS it opens with.
#[derive(Debug)]
pub(crate) struct Control {
    goaway: Option<oneshot::Sender<u64>>,
}

impl Control {
    /// Sends a GOAWAY naming `id` (RFC 9114 §5.2), once: later calls do
    /// nothing.
    pub(crate) fn send_goaway(&mut self, id: u64) {
        if let Some(tx) = self.goaway.take() {
            let _ = tx.send(id);
        }
    }
}

/// What [`start`] gives its caller: the peer's SETTINGS once they are in
/// (`None` before), the peer's GOAWAY, and our control stream.
pub(crate) struct Started {
    pub(crate) settings: watch::Receiver<Option<PeerSettings>>,
    pub(crate) goaway: Arc<PeerGoaway>,
    pub(crate) control: Control,
}

/// Closes the QUIC connection (H3_NO_ERROR) when dropped: every handle to
/// the HTTP/3 connection and every stream on it holds one, in an `Arc`.
/// (quinn closes a connection only once every handle is gone, and our own
/// control streams hold handles, so it needs telling.)
#[derive(Debug)]
pub(crate) struct ConnGuard {
    pub(crate) quic: quinn::Connection,
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        self.quic.close(frame::H3_NO_ERROR.into(), b"");
    }
}

/// How long a finished stream may keep its connection open for its last
/// bytes to be acknowledged.
const LINGER: std::time::Duration = std::time::Duration::from_secs(5);

/// Keeps the connection (`guard`) open until the peer has acknowledged
/// everything sent on `send` (finished by the caller) or stopped it, for
/// at most [`LINGER`]: closing a QUIC connection discards what is not yet
/// delivered, such as a close frame and the FIN behind it.
pub(crate) fn linger(send: &quinn::SendStream, guard: Arc<ConnGuard>) {
    let stopped = send.stopped();
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        runtime.spawn(async move {
            let _ = tokio::time::timeout(LINGER, stopped).await;
            drop(guard);
        });
    }
}

/// Starts HTTP/3 on `quic`, as `role`: opens our control stream with
/// `settings`, and spawns the tasks that keep it (sending the GOAWAY of
/// [`Control::send_goaway`]) and that read the peer's unidirectional
/// streams.
pub(crate) async fn start(quic: &quinn::Connection, settings: &[(u64, u64)], role: Role) -> io::Result<Started> {
    let mut control = quic.open_uni().await.map_err(io::Error::other)?;
    let mut preface = vec![frame::CONTROL_STREAM as u8];
    preface.extend(settings_frame(settings));
    control.write_all(&preface).await.map_err(io::Error::other)?;
    let (goaway_tx, goaway_rx) = oneshot::channel();
    let closed = quic.clone();
    tokio::spawn(async move {
        if let Ok(id) = goaway_rx.await {
            let _ = control.write_all(&frame::goaway_frame(id)).await;
        }
        // Our control stream lives as long as the connection (closing it
        // is an error, RFC 9114 §6.2.1).
        closed.closed().await;
        drop(control);
    });
    let (tx, rx) = watch::channel(None);
    let goaway = Arc::new(PeerGoaway::new());
    let peer = PeerStreams { settings: Arc::new(tx), goaway: goaway.clone(), is_server: role == Role::Client };
    let quic = quic.clone();
    tokio::spawn(async move {
        while let Ok(recv) = quic.accept_uni().await {
            let (quic, peer) = (quic.clone(), peer.clone());
            tokio::spawn(async move {
                // A stream that ends because the connection did is no
                // error of the peer's.
                if let Err(code) = read_uni(recv, &peer).await {
                    if quic.close_reason().is_none() {
                        quic.close(code.into(), b"");
                    }
                }
            });
        }
    });
    Ok(Started { settings: rx, goaway, control: Control { goaway: Some(goaway_tx) } })
}

/// Where the peer's control stream reports to.
#[derive(Clone)]
struct PeerStreams {
    settings: Arc<watch::Sender<Option<PeerSettings>>>,
    goaway: Arc<PeerGoaway>,
    /// Whether the peer is the server (we are the client).
    is_server: bool,
}

/// Reads one of the peer's unidirectional streams by its type; an error
/// code to close the connection with when the peer broke the rules.
async fn read_uni(mut recv: quinn::RecvStream, peer: &PeerStreams) -> Result<(), u32> {
    let mut buf = BytesMut::new();
    let kind = loop {
        if let Some((kind, used)) = get_varint(&buf) {
            buf.advance(used);
            break kind;
        }
        if !read_more(&mut recv, &mut buf).await? {
            return Ok(());
        }
    };
    match kind {
        frame::CONTROL_STREAM => read_control(recv, buf, peer).await,
        frame::QPACK_ENCODER_STREAM | frame::QPACK_DECODER_STREAM => {
            // With a table capacity of 0 there is nothing to act on.
            while read_more(&mut recv, &mut buf).await? {
                buf.clear();
            }
            Ok(())
        }
        _ => {
            // Push streams (we never allow pushes) and unknown types (§6.2).
            let _ = recv.stop(frame::H3_STREAM_CREATION_ERROR.into());
            Ok(())
        }
    }
}

/// Reads more of `recv` into `buf`: `false` at its end.
async fn read_more(recv: &mut quinn::RecvStream, buf: &mut BytesMut) -> Result<bool, u32> {
    match recv.read_chunk(4096, true).await {
        Ok(Some(chunk)) => {
            buf.extend_from_slice(&chunk.bytes);
            Ok(true)
        }
        Ok(None) => Ok(false),
        // The connection is gone, or the stream was reset.
        Err(_) => Ok(false),
    }
}

/// The most bytes of a GOAWAY payload: one variable-length integer.
const MAX_GOAWAY: u64 = 8;

/// The peer's control stream: SETTINGS first (RFC 9114 §6.2.1), then
/// GOAWAY, recorded, and frames we skip (MAX_PUSH_ID, unknown types). It
/// must not end.
async fn read_control(mut recv: quinn::RecvStream, mut buf: BytesMut, peer: &PeerStreams) -> Result<(), u32> {
    let mut first = true;
    loop {
        let Some(header) = get_frame_header(&buf) else {
            if !read_more(&mut recv, &mut buf).await? {
                return Err(frame::H3_CLOSED_CRITICAL_STREAM);
            }
            continue;
        };
        if first {
            if header.kind != frame::SETTINGS {
                return Err(0x10a); // H3_MISSING_SETTINGS
            }
        } else if matches!(header.kind, frame::DATA | frame::HEADERS | frame::SETTINGS) {
            return Err(frame::H3_FRAME_UNEXPECTED);
        }
        match header.kind {
            frame::SETTINGS => {
                let payload = read_whole(&mut recv, &mut buf, &header, MAX_SETTINGS, frame::H3_SETTINGS_ERROR).await?;
                let pairs = parse_settings(&payload).ok_or(frame::H3_SETTINGS_ERROR)?;
                let extended_connect =
                    pairs.iter().any(|&(id, value)| id == frame::SETTINGS_ENABLE_CONNECT_PROTOCOL && value == 1);
                peer.settings.send_replace(Some(PeerSettings { extended_connect }));
                first = false;
            }
            frame::GOAWAY => {
                let payload = read_whole(&mut recv, &mut buf, &header, MAX_GOAWAY, frame::H3_FRAME_ERROR).await?;
                let id = parse_goaway(&payload).ok_or(frame::H3_FRAME_ERROR)?;
                peer.goaway.record(id, peer.is_server)?;
            }
            _ => skip(&mut recv, &mut buf, header.size as u64 + header.len).await?,
        }
    }
}

/// Takes the frame of `header` off `buf`, reading `recv` for the rest of
/// it, and answers its payload: `too_large` when that is over `max` bytes.
async fn read_whole(
    recv: &mut quinn::RecvStream,
    buf: &mut BytesMut,
    header: &frame::FrameHeader,
    max: u64,
    too_large: u32,
) -> Result<BytesMut, u32> {
    if header.len > max {
        return Err(too_large);
    }
    let end = header.size + header.len as usize;
    while buf.len() < end {
        if !read_more(recv, buf).await? {
            return Err(frame::H3_CLOSED_CRITICAL_STREAM);
        }
    }
    let mut frame = buf.split_to(end);
    Ok(frame.split_off(header.size))
}

/// Drops the next `len` bytes of the stream, those in `buf` first, then
/// read from `recv` in pieces.
async fn skip(recv: &mut quinn::RecvStream, buf: &mut BytesMut, len: u64) -> Result<(), u32> {
    let mut left = len;
    loop {
        let n = left.min(buf.len() as u64);
        buf.advance(n as usize);
        left -= n;
        if left == 0 {
            return Ok(());
        }
        if !read_more(recv, buf).await? {
            return Err(frame::H3_CLOSED_CRITICAL_STREAM);
        }
    }
}

/// Waits for the peer's SETTINGS; `None` if the connection ended first.
pub(crate) async fn peer_settings(rx: &mut watch::Receiver<Option<PeerSettings>>) -> Option<PeerSettings> {
    rx.wait_for(Option::is_some).await.ok().and_then(|s| *s)
}

/// Fails when `quic` closed: an I/O error of kind `ConnectionReset`.
pub(crate) fn lost(err: quinn::ConnectionError) -> io::Error {
    io::Error::new(io::ErrorKind::ConnectionReset, err)
}
