//! Shared by the reach tests (`reach*.rs`, `reconnect.rs`): loopback echo
//! servers, an HTTP `CONNECT` proxy (over TCP or TLS), a SOCKS5 proxy
//! (`socks.rs`), self-signed certificates and TLS configurations
//! (`tls.rs`). Every server here binds 127.0.0.1 and serves until the test
//! ends; none of it is library code.

#![allow(dead_code)]

pub mod socks;
#[cfg(feature = "rustls")]
pub mod tls;

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use silverback::{Error, HandshakeError, MaybeTlsStream, Message, WebSocketStream};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// Fails the test instead of hanging.
pub async fn bounded<F: Future>(fut: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(20), fut).await.expect("test timed out")
}

/// The handshake error inside `result`.
pub fn handshake_error<T: std::fmt::Debug>(result: silverback::Result<T>) -> HandshakeError {
    match result {
        Err(Error::Handshake(e)) => e,
        other => panic!("expected a handshake error, got {other:?}"),
    }
}

/// An environment of `vars`, for `Connector::proxy_env`.
pub fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + Send + Sync + 'static {
    let vars: Vec<(String, String)> = vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    move |name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
}

/// Serves one WebSocket connection over `io`, echoing data messages.
pub async fn echo<S>(io: S)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let Ok(mut ws) = silverback::accept(io).await else {
        return;
    };
    while let Some(Ok(msg)) = ws.next().await {
        if (msg.is_text() || msg.is_binary()) && ws.send(msg).await.is_err() {
            break;
        }
    }
}

/// A `ws://` echo server on loopback, for any number of connections.
pub async fn plain_echo_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            tokio::spawn(echo(tcp));
        }
    });
    addr
}

/// Sends text and binary messages and expects them back, then closes.
pub async fn round_trip(mut ws: WebSocketStream<MaybeTlsStream>) {
    for text in ["hello", "", "ünïcödé"] {
        ws.send(Message::text(text)).await.unwrap();
        assert_eq!(ws.next().await.unwrap().unwrap().as_text(), Some(text));
    }
    let big = vec![7u8; 100_000];
    ws.send(Message::binary(big.clone())).await.unwrap();
    assert_eq!(&ws.next().await.unwrap().unwrap().into_data()[..], &big[..]);
    ws.close(None).await.unwrap();
}

/// How the test `CONNECT` proxy answers.
#[derive(Clone, Copy, Debug)]
pub enum Mode {
    /// 200, then relays to the backend.
    Open,
    /// Like `Open` when the request carries exactly this
    /// `Proxy-Authorization` value, 407 otherwise.
    Auth(&'static str),
    /// This status, with a short body.
    Refuse(u16),
    /// 200 followed at once by bytes no server sent.
    Trailing,
    /// Something that is not HTTP.
    Garbage,
    /// Half a status line, then it hangs up.
    Close,
    /// Reads the request and never answers.
    Silent,
}

/// A `CONNECT` proxy on loopback. It relays every tunnel to `backend`,
/// whatever host the request names (so tests can use names such as
/// `echo.test` that resolve nowhere), and reports each request head.
pub struct Proxy {
    /// `http://127.0.0.1:PORT`, or `https://` for a TLS proxy.
    pub url: String,
    /// The request heads, in order.
    pub heads: mpsc::UnboundedReceiver<String>,
}

impl Proxy {
    /// A plain `http://` proxy.
    pub async fn start(mode: Mode, backend: SocketAddr) -> Proxy {
        Proxy::spawn(mode, backend, None).await
    }

    /// An `https://` proxy: TLS with `acceptor`, then `CONNECT` inside.
    #[cfg(feature = "rustls")]
    pub async fn start_tls(mode: Mode, backend: SocketAddr, acceptor: silverback::tokio_rustls::TlsAcceptor) -> Proxy {
        Proxy::spawn(mode, backend, Some(acceptor)).await
    }

    #[cfg(feature = "rustls")]
    async fn spawn(mode: Mode, backend: SocketAddr, tls: Option<silverback::tokio_rustls::TlsAcceptor>) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let scheme = if tls.is_some() { "https" } else { "http" };
        let url = format!("{scheme}://{}", listener.local_addr().unwrap());
        let (tx, heads) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let (tls, tx) = (tls.clone(), tx.clone());
                tokio::spawn(async move {
                    match tls {
                        None => relay(client, mode, backend, tx).await,
                        Some(acceptor) => {
                            if let Ok(client) = acceptor.accept(client).await {
                                relay(client, mode, backend, tx).await;
                            }
                        }
                    }
                });
            }
        });
        Proxy { url, heads }
    }

    #[cfg(not(feature = "rustls"))]
    async fn spawn(mode: Mode, backend: SocketAddr, _: Option<std::convert::Infallible>) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (tx, heads) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(relay(client, mode, backend, tx.clone()));
            }
        });
        Proxy { url, heads }
    }

    /// The next request head the proxy received.
    pub async fn head(&mut self) -> String {
        self.heads.recv().await.expect("the proxy saw no request")
    }

    /// `host:port` of the proxy, without the scheme.
    pub fn authority(&self) -> &str {
        self.url.split_once("://").unwrap().1
    }
}

/// Serves one client of the test proxy.
async fn relay<S>(mut client: S, mode: Mode, backend: SocketAddr, heads: mpsc::UnboundedSender<String>)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        assert!(head.len() < 8192, "endless proxy request");
        match client.read_u8().await {
            Ok(byte) => head.push(byte),
            Err(_) => return,
        }
    }
    let head = String::from_utf8(head).unwrap();
    let authorized = match mode {
        Mode::Auth(expected) => head.contains(&format!("\r\nProxy-Authorization: {expected}\r\n")),
        _ => true,
    };
    let _ = heads.send(head);
    let answer: &[u8] = match mode {
        Mode::Silent => {
            tokio::time::sleep(Duration::from_secs(15)).await;
            return;
        }
        Mode::Refuse(403) => b"HTTP/1.1 403 Forbidden\r\nContent-Length: 4\r\n\r\nnope",
        Mode::Refuse(502) => b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n",
        Mode::Refuse(status) => panic!("no answer scripted for {status}"),
        Mode::Auth(_) if !authorized => {
            b"HTTP/1.1 407 Proxy Authentication Required\r\n\
              Proxy-Authenticate: Basic realm=\"test\"\r\nContent-Length: 0\r\n\r\n"
        }
        Mode::Garbage => b"SSH-2.0-OpenSSH_9.6\r\n\r\n",
        Mode::Trailing => b"HTTP/1.1 200 Connection established\r\n\r\nHTTP/1.1 101 ",
        Mode::Close => b"HTTP/1.1 200 Conn",
        Mode::Open | Mode::Auth(_) => b"HTTP/1.1 200 Connection established\r\n\r\n",
    };
    if client.write_all(answer).await.is_err() || !answer.ends_with(b"\r\n\r\n") || !answer.starts_with(b"HTTP/1.1 200")
    {
        let _ = client.shutdown().await;
        return;
    }
    let Ok(mut server) = TcpStream::connect(backend).await else {
        return;
    };
    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
}
