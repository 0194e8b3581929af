//! Shared helpers for the integration tests: a scripted raw-byte peer that
//! writes exact frames (masked like a client, or unmasked like a server) and
//! parses the frames the library sends back, duplex-backed connection pairs,
//! and a transport wrapper that counts successful writes.

#![allow(dead_code)]

#[cfg(unix)]
pub mod process;
pub mod rlimit;

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::BytesMut;
use silverback::{Config, Role, WebSocketStream};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, DuplexStream, ReadBuf};

/// How long any single step of a test may take before it is reported as a
/// hang. Generous: it only bounds failures, it is never asserted as a timing.
pub const STEP: Duration = Duration::from_secs(10);

/// The client key of RFC 6455 §1.3, the one [`UPGRADE_REQUEST`] sends.
pub const WS_KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
/// The server's answer to [`WS_KEY`] (RFC 6455 §1.3).
pub const WS_ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

/// A valid upgrade request, with the key [`WS_KEY`]; tests edit it with
/// [`edit_request`] and [`request_with_fields`].
pub const UPGRADE_REQUEST: &str = "GET /chat?room=1 HTTP/1.1\r\n\
    Host: server.example.com\r\n\
    Upgrade: websocket\r\n\
    Connection: Upgrade\r\n\
    Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
    Sec-WebSocket-Version: 13\r\n\r\n";

/// [`UPGRADE_REQUEST`] with its first `from` (which must be there) replaced
/// by `to`.
pub fn edit_request(from: &str, to: &str) -> String {
    assert!(UPGRADE_REQUEST.contains(from), "{from}");
    UPGRADE_REQUEST.replacen(from, to, 1)
}

/// [`UPGRADE_REQUEST`] with `fields` (each ending in CRLF) added before the
/// blank line that ends it.
pub fn request_with_fields(fields: &str) -> String {
    edit_request("\r\n\r\n", &format!("\r\n{fields}\r\n"))
}

/// The masking key the raw peer uses.
pub const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// Opcodes as wire nibbles.
pub mod op {
    /// Continuation.
    pub const CONT: u8 = 0x0;
    /// Text.
    pub const TEXT: u8 = 0x1;
    /// Binary.
    pub const BINARY: u8 = 0x2;
    /// Close.
    pub const CLOSE: u8 = 0x8;
    /// Ping.
    pub const PING: u8 = 0x9;
    /// Pong.
    pub const PONG: u8 = 0xA;
}

/// Encodes a frame header with the shortest length form.
fn header(fin: bool, rsv: u8, opcode: u8, mask: Option<[u8; 4]>, len: usize) -> Vec<u8> {
    let mut out = vec![u8::from(fin) << 7 | (rsv & 7) << 4 | (opcode & 0x0F)];
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    match len {
        0..=125 => out.push(mask_bit | len as u8),
        126..=0xFFFF => {
            out.push(mask_bit | 126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            out.push(mask_bit | 127);
            out.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
    if let Some(key) = mask {
        out.extend_from_slice(&key);
    }
    out
}

/// The length of the header `client_frame` writes for a payload of `len`.
pub fn client_header_len(len: usize) -> usize {
    header(true, 0, 0, Some(KEY), len).len()
}

/// A frame as a client sends it: masked with [`KEY`].
pub fn client_frame(fin: bool, rsv: u8, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = header(fin, rsv, opcode, Some(KEY), payload.len());
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ KEY[i % 4]));
    out
}

/// A final, masked frame with no reserved bits.
pub fn client_msg(opcode: u8, payload: &[u8]) -> Vec<u8> {
    client_frame(true, 0, opcode, payload)
}

/// A frame as a server sends it: unmasked.
pub fn server_frame(fin: bool, rsv: u8, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = header(fin, rsv, opcode, None, payload.len());
    out.extend_from_slice(payload);
    out
}

/// A close payload: the code in network order, then the reason.
pub fn close_payload(code: u16, reason: &str) -> Vec<u8> {
    let mut out = code.to_be_bytes().to_vec();
    out.extend_from_slice(reason.as_bytes());
    out
}

/// The exact bytes of an unmasked close frame with `code` and no reason, as
/// a server-role library sends it.
pub fn server_close_bytes(code: u16) -> Vec<u8> {
    server_frame(true, 0, op::CLOSE, &code.to_be_bytes())
}

/// One frame as read off the wire by the raw peer, payload unmasked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawFrame {
    /// FIN bit.
    pub fin: bool,
    /// RSV bits.
    pub rsv: u8,
    /// Opcode nibble.
    pub opcode: u8,
    /// Whether the frame was masked.
    pub masked: bool,
    /// Unmasked payload.
    pub payload: Vec<u8>,
}

impl RawFrame {
    /// The close code of a close frame, if it carries one.
    pub fn close_code(&self) -> Option<u16> {
        assert_eq!(self.opcode, op::CLOSE, "not a close frame: {self:?}");
        (self.payload.len() >= 2).then(|| u16::from_be_bytes([self.payload[0], self.payload[1]]))
    }
}

/// Reads one frame, or `None` on a clean EOF before its first byte. Panics on
/// a hang (after [`STEP`]) or an EOF inside a frame.
pub async fn try_read_frame<R: AsyncRead + Unpin>(r: &mut R) -> Option<RawFrame> {
    try_read_frame_within(r, STEP).await
}

/// [`try_read_frame`] with another bound than [`STEP`] (for tests on a
/// paused clock that wait longer).
pub async fn try_read_frame_within<R: AsyncRead + Unpin>(r: &mut R, limit: Duration) -> Option<RawFrame> {
    tokio::time::timeout(limit, async {
        let mut b0 = [0u8; 1];
        if r.read(&mut b0).await.expect("peer read") == 0 {
            return None;
        }
        let b1 = r.read_u8().await.expect("peer read");
        let len = match b1 & 0x7F {
            126 => u64::from(r.read_u16().await.expect("peer read")),
            127 => r.read_u64().await.expect("peer read"),
            n => u64::from(n),
        };
        let masked = b1 & 0x80 != 0;
        let mut key = [0u8; 4];
        if masked {
            r.read_exact(&mut key).await.expect("peer read");
        }
        let mut payload = vec![0u8; usize::try_from(len).expect("length fits")];
        r.read_exact(&mut payload).await.expect("peer read");
        if masked {
            for (i, b) in payload.iter_mut().enumerate() {
                *b ^= key[i % 4];
            }
        }
        Some(RawFrame { fin: b0[0] & 0x80 != 0, rsv: (b0[0] >> 4) & 7, opcode: b0[0] & 0x0F, masked, payload })
    })
    .await
    .expect("timed out reading a frame from the library")
}

/// Reads one frame; panics on EOF or a hang.
pub async fn read_frame<R: AsyncRead + Unpin>(r: &mut R) -> RawFrame {
    try_read_frame(r).await.expect("unexpected EOF while reading a frame")
}

/// Reads exactly `n` bytes; panics on EOF or a hang.
pub async fn read_bytes<R: AsyncRead + Unpin>(r: &mut R, n: usize) -> Vec<u8> {
    let mut out = vec![0u8; n];
    tokio::time::timeout(STEP, r.read_exact(&mut out))
        .await
        .expect("timed out reading bytes from the library")
        .expect("peer read");
    out
}

/// Asserts the library sends nothing more and ends its write side.
pub async fn expect_eof<R: AsyncRead + Unpin>(r: &mut R) {
    let mut rest = Vec::new();
    tokio::time::timeout(STEP, r.read_to_end(&mut rest)).await.expect("timed out waiting for EOF").expect("peer read");
    assert!(rest.is_empty(), "unexpected bytes before EOF: {rest:x?}");
}

/// A server-role library stream on one end of a duplex pipe and the raw
/// client-side end for the test to script.
pub fn server_and_raw_peer(config: Config, buf: usize) -> (WebSocketStream<DuplexStream>, DuplexStream) {
    let (a, b) = tokio::io::duplex(buf);
    (WebSocketStream::from_raw_parts(a, Role::Server, config, BytesMut::new()), b)
}

/// A client-role library stream on one end of a duplex pipe and the raw
/// server-side end.
pub fn client_and_raw_peer(config: Config, buf: usize) -> (WebSocketStream<DuplexStream>, DuplexStream) {
    let (a, b) = tokio::io::duplex(buf);
    (WebSocketStream::from_raw_parts(a, Role::Client, config, BytesMut::new()), b)
}

/// A connected (client, server) pair of library streams.
pub fn ws_pair(config: Config, buf: usize) -> (WebSocketStream<DuplexStream>, WebSocketStream<DuplexStream>) {
    let (a, b) = tokio::io::duplex(buf);
    (
        WebSocketStream::from_raw_parts(a, Role::Client, config, BytesMut::new()),
        WebSocketStream::from_raw_parts(b, Role::Server, config, BytesMut::new()),
    )
}

/// A transport wrapper counting the write calls that made progress
/// (`Ready(Ok(n))` with `n > 0`, plain or vectored).
#[derive(Debug)]
pub struct CountingIo<S> {
    inner: S,
    writes: Arc<AtomicUsize>,
}

impl<S> CountingIo<S> {
    /// Wraps `inner`; the returned counter is shared with the wrapper.
    pub fn new(inner: S) -> (Self, Arc<AtomicUsize>) {
        let writes = Arc::new(AtomicUsize::new(0));
        (CountingIo { inner, writes: writes.clone() }, writes)
    }

    fn count(&self, poll: &Poll<io::Result<usize>>) {
        if matches!(poll, Poll::Ready(Ok(n)) if *n > 0) {
            self.writes.fetch_add(1, Ordering::SeqCst);
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for CountingIo<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for CountingIo<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.count(&poll);
        poll
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.count(&poll);
        poll
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Runs `fut` with the [`STEP`] bound, panicking with `what` on a hang.
pub async fn within<F: std::future::Future>(what: &str, fut: F) -> F::Output {
    match tokio::time::timeout(STEP, fut).await {
        Ok(v) => v,
        Err(_) => panic!("timed out: {what}"),
    }
}

/// The environment variable that turns on the tests needing tools from
/// outside Rust (Python, Node, a browser); `scripts/conformance.sh` installs
/// those tools and sets it.
pub const CONFORMANCE_VAR: &str = "SILVERBACK_CONFORMANCE";

/// Whether a test that needs `what` (tools from outside Rust) runs: only
/// under `SILVERBACK_CONFORMANCE=1`, set by `scripts/conformance.sh`, so that
/// `cargo test` stays hermetic. Otherwise prints one line saying so and
/// answers `false`: the caller returns, and the test passes. When it answers
/// `true`, a missing tool is the caller's hard failure (a panic), never a
/// skip.
pub fn conformance_only(what: &str) -> bool {
    if std::env::var_os(CONFORMANCE_VAR).is_some_and(|v| v == "1") {
        return true;
    }
    eprintln!("skipped: {what}; bash scripts/conformance.sh runs it (with {CONFORMANCE_VAR}=1)");
    false
}

/// Environment variables that cargo sets for a test process to describe
/// this crate, not the build: left in for a nested `cargo build`, they
/// would make build scripts that watch one of them (ring's watches
/// `CARGO_MANIFEST_DIR`) rebuild, there and in the next `cargo test`.
const PER_CRATE_VARS: [&str; 7] = [
    "CARGO_PKG_",
    "CARGO_MANIFEST_",
    "CARGO_CRATE_",
    "CARGO_BIN_",
    "CARGO_PRIMARY_PACKAGE",
    "CARGO_TARGET_TMPDIR",
    "CARGO_RUSTC_CURRENT_DIR",
];

/// This test's profile directory (`<target>/debug`): the test binary is
/// `<target>/<profile>/deps/<test>-<hash>`.
pub fn profile_dir() -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let deps = exe.parent().expect("test binary lives in <target>/<profile>/deps");
    deps.parent().expect("test binary lives in <target>/<profile>/deps").to_path_buf()
}

/// The library features this test binary was built with.
fn enabled_features() -> Vec<&'static str> {
    let all = [
        ("deflate", cfg!(feature = "deflate")),
        ("json", cfg!(feature = "json")),
        ("rustls", cfg!(feature = "rustls")),
        ("rustls-webpki-roots", cfg!(feature = "rustls-webpki-roots")),
        ("rustls-native-roots", cfg!(feature = "rustls-native-roots")),
        ("native-tls", cfg!(feature = "native-tls")),
        ("socks", cfg!(feature = "socks")),
        ("hyper", cfg!(feature = "hyper")),
        ("axum", cfg!(feature = "axum")),
        ("tracing", cfg!(feature = "tracing")),
        ("http3", cfg!(feature = "http3")),
    ];
    all.into_iter().filter(|(_, on)| *on).map(|(name, _)| name).collect()
}

/// Builds example `name` into this test's target directory and profile,
/// with the features this test was built with (so the library already
/// built is reused; a no-op when it is up to date), and returns the path of
/// its executable. Panics with cargo's output when the build fails.
pub fn build_example(name: &str) -> std::path::PathBuf {
    use std::path::Path;

    let profile_dir = profile_dir();
    let profile_dir = profile_dir.as_path();
    let target_dir = profile_dir.parent().expect("<target>/<profile>");
    let profile = profile_dir.file_name().and_then(|n| n.to_str()).unwrap_or("debug");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = std::process::Command::new(cargo);
    cmd.args(["build", "--example", name, "--no-default-features"])
        .arg(format!("--features={}", enabled_features().join(",")))
        .arg("--manifest-path")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"))
        .arg("--target-dir")
        .arg(target_dir);
    match profile {
        "debug" => {}
        "release" => {
            cmd.arg("--release");
        }
        other => {
            cmd.args(["--profile", other]);
        }
    }
    for (key, _) in std::env::vars_os() {
        if key.to_str().is_some_and(|k| PER_CRATE_VARS.iter().any(|p| k.starts_with(p))) {
            cmd.env_remove(key);
        }
    }
    let out = cmd.output().expect("run cargo build");
    assert!(
        out.status.success(),
        "cargo build --example {name} failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    profile_dir.join("examples").join(name)
}

/// A self-signed certificate for `localhost` (rcgen on ring), in DER for
/// rustls and PEM for other programs.
#[cfg(feature = "rustls")]
pub struct LocalhostCert {
    pub cert: silverback::rustls::pki_types::CertificateDer<'static>,
    pub key: silverback::rustls::pki_types::PrivateKeyDer<'static>,
    pub cert_pem: String,
    pub key_pem: String,
}

#[cfg(feature = "rustls")]
impl LocalhostCert {
    pub fn generate() -> Self {
        use silverback::rustls::pki_types::PrivatePkcs8KeyDer;
        let rcgen::CertifiedKey { cert, key_pair } =
            rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        LocalhostCert {
            cert: cert.der().clone(),
            key: PrivatePkcs8KeyDer::from(key_pair.serialize_der()).into(),
            cert_pem: cert.pem(),
            key_pem: key_pair.serialize_pem(),
        }
    }

    /// The certificate of `files`, read back from its PEM files.
    pub fn of(files: &process::SelfSigned) -> Self {
        use silverback::rustls::pki_types::pem::PemObject;
        use silverback::rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let cert_pem = std::fs::read_to_string(&files.cert_pem).unwrap();
        let key_pem = std::fs::read_to_string(&files.key_pem).unwrap();
        LocalhostCert {
            cert: CertificateDer::from_pem_slice(cert_pem.as_bytes()).unwrap(),
            key: PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).unwrap(),
            cert_pem,
            key_pem,
        }
    }

    /// A server configuration (ring; TLS 1.3 only when `tls13_only`, as
    /// QUIC needs) serving the certificate with these ALPN protocols.
    pub fn server(&self, tls13_only: bool, alpn: &[&[u8]]) -> silverback::rustls::ServerConfig {
        use silverback::rustls::{self, ServerConfig};
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let builder = ServerConfig::builder_with_provider(provider);
        let builder = if tls13_only {
            builder.with_protocol_versions(&[&rustls::version::TLS13]).unwrap()
        } else {
            builder.with_safe_default_protocol_versions().unwrap()
        };
        let mut config =
            builder.with_no_client_auth().with_single_cert(vec![self.cert.clone()], self.key.clone_key()).unwrap();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        config
    }

    /// A client configuration (ring) trusting only this certificate.
    pub fn client(&self) -> std::sync::Arc<silverback::rustls::ClientConfig> {
        use silverback::rustls::{self, ClientConfig, RootCertStore};
        let mut roots = RootCertStore::empty();
        roots.add(self.cert.clone()).unwrap();
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        std::sync::Arc::new(config)
    }
}

/// Echoes `ws`'s text and binary messages until it ends or fails (`/sink`
/// holds it 30 s without reading instead): the read error, if one ended it.
pub async fn echo_or_sink<S>(ws: &mut WebSocketStream<S>, path: &str) -> Option<silverback::Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    use futures_util::{SinkExt, StreamExt};
    if path == "/sink" {
        tokio::time::sleep(Duration::from_secs(30)).await;
        return None;
    }
    while let Some(msg) = ws.next().await {
        match msg {
            Ok(msg) if msg.is_text() || msg.is_binary() => {
                if ws.send(msg).await.is_err() {
                    return None;
                }
            }
            Ok(_) => {}
            Err(err) => return Some(err),
        }
    }
    None
}
