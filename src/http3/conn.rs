//! The HTTP/3 connection around the request streams (RFC 9114 §6.2): our
//! control stream with our SETTINGS, the peer's unidirectional streams
//! (its control stream, read for its SETTINGS; QPACK streams, drained;
//! others, stopped), and the guard that closes the QUIC connection when the
//! last user of it is gone.

use std::io;
use std::sync::Arc;

use bytes::{Buf, BytesMut};
use tokio::sync::watch;

use super::frame::{self, get_frame_header, get_varint, parse_settings, settings_frame};

/// The most bytes of the peer's SETTINGS frame we read.
const MAX_SETTINGS: u64 = 4096;

/// What the peer's SETTINGS said.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct PeerSettings {
    /// SETTINGS_ENABLE_CONNECT_PROTOCOL = 1 (RFC 9220 §3).
    pub(crate) extended_connect: bool,
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

/// Starts HTTP/3 on `quic`: opens our control stream with `settings`, and
/// spawns the task that reads the peer's unidirectional streams. The
/// receiver gets the peer's SETTINGS once they are in (`None` before).
pub(crate) async fn start(
    quic: &quinn::Connection,
    settings: &[(u64, u64)],
) -> io::Result<watch::Receiver<Option<PeerSettings>>> {
    let mut control = quic.open_uni().await.map_err(io::Error::other)?;
    let mut preface = vec![frame::CONTROL_STREAM as u8];
    preface.extend(settings_frame(settings));
    control.write_all(&preface).await.map_err(io::Error::other)?;
    let (tx, rx) = watch::channel(None);
    let quic = quic.clone();
    tokio::spawn(async move {
        // Our control stream lives as long as the connection (closing it
        // is an error, RFC 9114 §6.2.1).
        let _control = control;
        let tx = Arc::new(tx);
        while let Ok(recv) = quic.accept_uni().await {
            let (quic, tx) = (quic.clone(), tx.clone());
            tokio::spawn(async move {
                if let Err(code) = read_uni(recv, &tx).await {
                    quic.close(code.into(), b"");
                }
            });
        }
    });
    Ok(rx)
}

/// Reads one of the peer's unidirectional streams by its type; an error
/// code to close the connection with when the peer broke the rules.
async fn read_uni(mut recv: quinn::RecvStream, settings: &watch::Sender<Option<PeerSettings>>) -> Result<(), u32> {
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
        frame::CONTROL_STREAM => read_control(recv, buf, settings).await,
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

/// The peer's control stream: SETTINGS first (RFC 9114 §6.2.1), then
/// frames we skip (GOAWAY, MAX_PUSH_ID, unknown types). It must not end.
async fn read_control(
    mut recv: quinn::RecvStream,
    mut buf: BytesMut,
    settings: &watch::Sender<Option<PeerSettings>>,
) -> Result<(), u32> {
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
            if header.len > MAX_SETTINGS {
                return Err(frame::H3_SETTINGS_ERROR);
            }
        } else if matches!(header.kind, frame::DATA | frame::HEADERS | frame::SETTINGS) {
            return Err(frame::H3_FRAME_UNEXPECTED);
        }
        let end = header.size as u64 + header.len;
        if first {
            while (buf.len() as u64) < end {
                if !read_more(&mut recv, &mut buf).await? {
                    return Err(frame::H3_CLOSED_CRITICAL_STREAM);
                }
            }
            let pairs = parse_settings(&buf[header.size..end as usize]).ok_or(frame::H3_SETTINGS_ERROR)?;
            let extended_connect =
                pairs.iter().any(|&(id, value)| id == frame::SETTINGS_ENABLE_CONNECT_PROTOCOL && value == 1);
            settings.send_replace(Some(PeerSettings { extended_connect }));
            buf.advance(end as usize);
            first = false;
            continue;
        }
        // Skip the frame's payload, in pieces.
        let mut left = end;
        loop {
            let n = left.min(buf.len() as u64);
            buf.advance(n as usize);
            left -= n;
            if left == 0 {
                break;
            }
            if !read_more(&mut recv, &mut buf).await? {
                return Err(frame::H3_CLOSED_CRITICAL_STREAM);
            }
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
