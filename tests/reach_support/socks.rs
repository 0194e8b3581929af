//! A small SOCKS5 proxy (RFC 1928, RFC 1929) on loopback for the tests,
//! written from the RFCs: it relays every `CONNECT` to one backend,
//! whatever address the request names, and reports that address as it
//! arrived (`name:port` for a name, `ip:port` for an address). Scripted
//! modes answer wrongly on purpose.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// How the test SOCKS5 proxy answers.
#[derive(Clone, Copy, Debug)]
pub enum SocksMode {
    /// Succeeds and relays; with `Some((user, password))`, only for
    /// exactly those credentials (method 2), else without authentication.
    Open(Option<(&'static str, &'static str)>),
    /// Answers the connect request with this reply code.
    Fail(u8),
    /// Succeeds with a bound address of type 5, which does not exist.
    BadAddressType,
    /// Answers the greeting with HTTP.
    Garbage,
    /// Chooses a method, reads the request, hangs up.
    Close,
    /// Reads the greeting and never answers.
    Silent,
}

/// A SOCKS5 proxy on loopback; `targets` reports each requested address.
pub struct Socks {
    /// `127.0.0.1:PORT`.
    pub addr: SocketAddr,
    /// The requested destinations, in order.
    pub targets: mpsc::UnboundedReceiver<String>,
}

impl Socks {
    /// Starts the proxy.
    pub async fn start(mode: SocksMode, backend: SocketAddr) -> Socks {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, targets) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let tx = tx.clone();
                tokio::spawn(async move {
                    let _ = serve(client, mode, backend, tx).await;
                });
            }
        });
        Socks { addr, targets }
    }

    /// `scheme://[userinfo@]127.0.0.1:PORT`.
    pub fn url(&self, scheme: &str, userinfo: Option<&str>) -> String {
        match userinfo {
            Some(userinfo) => format!("{scheme}://{userinfo}@{}", self.addr),
            None => format!("{scheme}://{}", self.addr),
        }
    }

    /// The next destination a client asked for.
    pub async fn target(&mut self) -> String {
        self.targets.recv().await.expect("the socks proxy saw no request")
    }
}

/// Reads a length-prefixed string (RFC 1928 §5 names, RFC 1929 fields).
async fn read_short(client: &mut TcpStream) -> std::io::Result<String> {
    let len = client.read_u8().await?;
    let mut buf = vec![0; usize::from(len)];
    client.read_exact(&mut buf).await?;
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

/// Serves one client.
async fn serve(
    mut client: TcpStream,
    mode: SocksMode,
    backend: SocketAddr,
    targets: mpsc::UnboundedSender<String>,
) -> std::io::Result<()> {
    // Greeting: VER NMETHODS METHODS (RFC 1928 §3).
    let mut greeting = [0; 2];
    client.read_exact(&mut greeting).await?;
    assert_eq!(greeting[0], 5, "not a SOCKS5 greeting");
    let mut methods = vec![0; usize::from(greeting[1])];
    client.read_exact(&mut methods).await?;
    match mode {
        SocksMode::Silent => {
            tokio::time::sleep(Duration::from_secs(15)).await;
            return Ok(());
        }
        SocksMode::Garbage => return client.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").await,
        _ => {}
    }
    let wanted = match mode {
        SocksMode::Open(Some(_)) => 2,
        _ => 0,
    };
    if !methods.contains(&wanted) {
        return client.write_all(&[5, 0xff]).await;
    }
    client.write_all(&[5, wanted]).await?;
    if let SocksMode::Open(Some((user, password))) = mode {
        // RFC 1929 §2: VER ULEN UNAME PLEN PASSWD; status 0 is success.
        assert_eq!(client.read_u8().await?, 1, "not a RFC 1929 request");
        let (got_user, got_password) = (read_short(&mut client).await?, read_short(&mut client).await?);
        let ok = got_user == user && got_password == password;
        client.write_all(&[1, if ok { 0 } else { 1 }]).await?;
        if !ok {
            return Ok(());
        }
    }
    // Request: VER CMD RSV ATYP DST.ADDR DST.PORT (RFC 1928 §4).
    let mut request = [0; 4];
    client.read_exact(&mut request).await?;
    assert_eq!(&request[..3], &[5, 1, 0], "not a SOCKS5 CONNECT");
    let host = match request[3] {
        1 => IpAddr::from(Ipv4Addr::from(client.read_u32().await?)).to_string(),
        4 => format!("[{}]", Ipv6Addr::from(client.read_u128().await?)),
        3 => read_short(&mut client).await?,
        other => panic!("address type {other}"),
    };
    let port = client.read_u16().await?;
    let _ = targets.send(format!("{host}:{port}"));
    // Reply: VER REP RSV ATYP BND.ADDR BND.PORT (RFC 1928 §6).
    let reply: &[u8] = match mode {
        SocksMode::Fail(code) => return client.write_all(&[5, code, 0, 1, 0, 0, 0, 0, 0, 0]).await,
        SocksMode::BadAddressType => &[5, 0, 0, 5, 0, 0, 0, 0, 0, 0],
        SocksMode::Close => return Ok(()),
        _ => &[5, 0, 0, 1, 127, 0, 0, 1, 0, 0],
    };
    client.write_all(reply).await?;
    let mut server = TcpStream::connect(backend).await?;
    tokio::io::copy_bidirectional(&mut client, &mut server).await.map(drop)
}
