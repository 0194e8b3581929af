//! Graceful shutdown ([`Shutdown`]): a trigger closes every registered
//! connection with 1001 and [`Shutdown::drained`] resolves once their
//! closing handshakes are over; an upgrader refuses handshakes after the
//! trigger with 503; registrations leave with their connections. Last, the
//! `echo_server` example drains on SIGTERM and on SIGINT (Ctrl-C) and exits
//! with status 0.
// Raising the open-files limit and sending signals need `libc`.
#![allow(unsafe_code)]
#![cfg(unix)]

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{client_msg, close_payload, op, read_frame, server_and_raw_peer, within, ws_pair, UPGRADE_REQUEST};
use futures_util::{SinkExt, StreamExt, TryStreamExt};
use silverback::{CloseCode, Config, Error, Message, Shutdown, Upgrader};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

const CONNS: usize = 1000;

/// An echo server whose upgrader registers every connection with
/// `shutdown`; stops accepting once it is triggered. Half the connections
/// are served split (a reader forwarding to the writer), half unsplit.
/// Resolves to the number of connections that ended in an error.
async fn serve(listener: TcpListener, upgrader: Arc<Upgrader>, shutdown: Shutdown) -> usize {
    let mut tasks = JoinSet::new();
    let mut n = 0usize;
    loop {
        let tcp = tokio::select! {
            accepted = listener.accept() => accepted.expect("accept").0,
            () = shutdown.triggered() => break,
        };
        let upgrader = upgrader.clone();
        n += 1;
        let split = n % 2 == 0;
        tasks.spawn(async move {
            let ws = upgrader.accept(tcp).await?;
            if split {
                let (read, write) = ws.split();
                read.try_filter(|m| std::future::ready(m.is_text() || m.is_binary())).forward(write).await
            } else {
                let mut ws = ws;
                while let Some(msg) = ws.next().await {
                    let msg = msg?;
                    if msg.is_text() || msg.is_binary() {
                        ws.send(msg).await?;
                    }
                }
                Ok::<_, Error>(())
            }
        });
    }
    let mut errors = 0;
    while let Some(result) = tasks.join_next().await {
        if let Err(e) = result.expect("server task") {
            eprintln!("server connection: {e}");
            errors += 1;
        }
    }
    errors
}

/// A client that checks one echo, then reads until the stream ends;
/// answers the close code it received (the library echoes the close).
async fn client(addr: SocketAddr, id: usize, ready: tokio::sync::mpsc::Sender<()>) -> Result<Option<u16>, String> {
    let (mut ws, _) = silverback::connect(&format!("ws://{addr}/")).await.map_err(|e| format!("connect: {e}"))?;
    let text = format!("hello from {id}");
    ws.send(Message::text(text.clone())).await.map_err(|e| format!("send: {e}"))?;
    match ws.next().await {
        Some(Ok(Message::Text(echo))) if echo == text.as_str() => {}
        other => return Err(format!("expected the echo, got {other:?}")),
    }
    ready.send(()).await.map_err(|_| "test gone")?;
    let mut code = None;
    while let Some(msg) = ws.next().await {
        match msg.map_err(|e| format!("receive: {e}"))? {
            Message::Close(frame) => code = Some(frame.map_or(0, |f| u16::from(f.code))),
            other => return Err(format!("unexpected {other:?}")),
        }
    }
    Ok(code)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_connections_close_with_1001_and_drain_within_the_close_timeout() {
    common::rlimit::raise_open_files_limit(2 * CONNS as u64 + 200);
    let close_timeout = Duration::from_secs(20);
    let shutdown = Shutdown::new();
    let upgrader = Arc::new(Upgrader::new().config(Config::default().close_timeout(close_timeout)).shutdown(&shutdown));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(serve(listener, upgrader.clone(), shutdown.clone()));

    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel(CONNS);
    let mut clients = JoinSet::new();
    for id in 0..CONNS {
        clients.spawn(client(addr, id, ready_tx.clone()));
    }
    within("every client connected and echoed", async {
        for _ in 0..CONNS {
            ready_rx.recv().await.expect("a client failed before its echo");
        }
    })
    .await;
    assert_eq!(shutdown.connections(), CONNS, "every accepted connection is registered");
    assert!(!shutdown.is_triggered());

    let start = Instant::now();
    shutdown.trigger();
    within("drained", shutdown.drained()).await;
    let drained_after = start.elapsed();
    let mut codes = Vec::new();
    while let Some(result) = within("clients end", clients.join_next()).await {
        codes.push(result.expect("client task").expect("client"));
    }
    let done_after = start.elapsed();
    assert_eq!(codes.len(), CONNS);
    assert!(codes.iter().all(|c| *c == Some(1001)), "every client sees 1001: {:?}", &codes[..10]);
    assert_eq!(within("server ends", server).await.unwrap(), 0, "no server connection ended in an error");
    assert_eq!(shutdown.connections(), 0);
    eprintln!("drained after {drained_after:?}, every client done after {done_after:?}");
    assert!(done_after < close_timeout / 4, "took {done_after:?}: the handshakes did not finish promptly");

    // The upgrader refuses handshakes from now on: 503.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let refused = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        upgrader.accept(tcp).await
    });
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(UPGRADE_REQUEST.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    within("503 response", tcp.read_to_end(&mut response)).await.unwrap();
    let response = String::from_utf8_lossy(&response);
    assert!(response.starts_with("HTTP/1.1 503 Service Unavailable\r\n"), "{response}");
    let err = within("refused handshake", refused).await.unwrap().unwrap_err();
    assert!(matches!(err, Error::Handshake(silverback::HandshakeError::Rejected(s)) if s == 503), "{err:?}");
    assert_eq!(shutdown.connections(), 0, "a refused handshake registers nothing");
}

#[tokio::test]
async fn a_connection_registered_after_the_trigger_is_closed_with_1001_at_once() {
    let shutdown = Shutdown::new();
    shutdown.trigger();
    within("triggered resolves at once", shutdown.triggered()).await;
    let (mut client, mut server) = ws_pair(Config::default(), 4096);
    shutdown.register(&mut server);
    assert_eq!(shutdown.connections(), 1);
    let server = tokio::spawn(async move {
        let mut seen = Vec::new();
        while let Some(msg) = server.next().await {
            seen.push(msg.expect("server read"));
        }
        seen
    });
    let close = within("client reads the close", client.next()).await.unwrap().unwrap();
    assert_eq!(close, Message::Close(Some(silverback::CloseFrame::new(CloseCode::GOING_AWAY, ""))));
    assert!(within("client ends", client.next()).await.is_none());
    let seen = within("server ends", server).await.unwrap();
    assert!(matches!(&seen[..], [Message::Close(Some(f))] if f.code == CloseCode::GOING_AWAY), "{seen:?}");
    within("drained", shutdown.drained()).await;
    assert_eq!(shutdown.connections(), 0);
}

#[tokio::test]
async fn the_server_sends_1001_while_its_task_sleeps_in_a_read() {
    // The reader is parked in `next()` when the trigger comes: the trigger
    // must wake it to write the close frame.
    let shutdown = Shutdown::new();
    let (mut server, mut peer) = server_and_raw_peer(Config::default(), 4096);
    shutdown.register(&mut server);
    let server = tokio::spawn(async move { server.next().await });
    tokio::time::sleep(Duration::from_millis(50)).await;
    shutdown.trigger();
    let close = read_frame(&mut peer).await;
    assert_eq!((close.opcode, close.close_code()), (op::CLOSE, Some(1001)));
    peer.write_all(&client_msg(op::CLOSE, &close_payload(1001, ""))).await.unwrap();
    let msg = within("server yields the peer's close", server).await.unwrap();
    assert!(matches!(&msg, Some(Ok(Message::Close(Some(f)))) if f.code == CloseCode::GOING_AWAY), "{msg:?}");
    within("drained", shutdown.drained()).await;
}

#[tokio::test]
async fn a_peer_that_never_answers_is_given_up_after_the_close_timeout() {
    let close_timeout = Duration::from_millis(300);
    let shutdown = Shutdown::new();
    let (mut server, mut peer) = server_and_raw_peer(Config::default().close_timeout(close_timeout), 4096);
    shutdown.register(&mut server);
    let reader = tokio::spawn(async move {
        let mut items = Vec::new();
        while let Some(item) = server.next().await {
            items.push(item);
        }
        items
    });
    let start = Instant::now();
    shutdown.trigger();
    let close = read_frame(&mut peer).await;
    assert_eq!(close.close_code(), Some(1001));
    // The peer keeps sending data but never its close.
    for _ in 0..3 {
        peer.write_all(&client_msg(op::TEXT, b"still here")).await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    within("drained", shutdown.drained()).await;
    let elapsed = start.elapsed();
    assert!(elapsed >= close_timeout, "gave up early: {elapsed:?}");
    assert!(elapsed < close_timeout * 4, "gave up late: {elapsed:?}");
    let items = within("reader ends", reader).await.unwrap();
    assert!(matches!(items.last(), Some(Err(Error::Timeout))), "{items:?}");
    assert!(items[..items.len() - 1].iter().all(|m| matches!(m, Ok(Message::Text(_)))), "{items:?}");
}

#[tokio::test]
async fn dropping_or_ending_connections_unregisters_them() {
    let shutdown = Shutdown::new();
    for round in 0..5 {
        let mut pairs = Vec::new();
        for _ in 0..200 {
            let (client, mut server) = ws_pair(Config::default(), 1024);
            shutdown.register(&mut server);
            pairs.push((client, server));
        }
        assert_eq!(shutdown.connections(), 200, "round {round}");
        drop(pairs);
        assert_eq!(shutdown.connections(), 0, "round {round}: dropped connections leave");
    }

    // Registering again replaces the registration; a split stream counts
    // as gone once its read half is dropped, whatever holds the write half.
    let (_client, mut server) = ws_pair(Config::default(), 1024);
    shutdown.register(&mut server);
    shutdown.register(&mut server);
    assert_eq!(shutdown.connections(), 1);
    let (read, write) = server.split();
    let control = write.control();
    drop(read);
    assert_eq!(shutdown.connections(), 0);
    drop((write, control));

    // A connection whose closing handshake is over leaves, even while the
    // application still holds it.
    let (mut client, server) = ws_pair(Config::default(), 1024);
    let (mut read, _write) = server.split();
    shutdown.register_reader(&mut read);
    let reader = tokio::spawn(async move {
        while read.next().await.is_some() {}
        read
    });
    within("client closes", client.close(None)).await.unwrap();
    let read = within("server reader ends", reader).await.unwrap();
    assert_eq!(shutdown.connections(), 0, "an ended connection leaves");
    drop(read);
    assert!(!shutdown.is_triggered());
}

/// A child process, killed if the test ends before it exits.
#[cfg(feature = "deflate")]
struct KillOnDrop(std::process::Child);

#[cfg(feature = "deflate")]
impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// An example server (`echo_server`, `chat`) started on a free port;
/// answers the address it listens on (its first line ends with
/// `scheme://ADDR`).
#[cfg(feature = "deflate")]
fn start_example(name: &str) -> (KillOnDrop, SocketAddr) {
    use std::io::BufRead;

    let exe = common::build_example(name);
    let mut child = std::process::Command::new(exe)
        .arg("127.0.0.1:0")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("start {name}: {e}"));
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).expect("the example's first line");
    let addr = line.trim().rsplit("://").next().and_then(|a| a.parse().ok());
    let addr = addr.unwrap_or_else(|| panic!("no address in {line:?}"));
    // The rest of its output goes to ours: a closed pipe would fail its
    // prints (the chat logs every client).
    let name = name.to_owned();
    std::thread::spawn(move || {
        for line in stdout.lines().map_while(Result::ok) {
            eprintln!("[{name}] {line}");
        }
    });
    (KillOnDrop(child), addr)
}

/// Connects `n` clients to example `name` at `path`, checks that each gets
/// its own message back (the echo, or the chat's broadcast), sends
/// `signal`, and checks that every client gets 1001 with a clean close and
/// the server exits 0.
#[cfg(feature = "deflate")]
async fn example_drains_on(name: &str, path: &str, signal: libc::c_int, n: usize) {
    let (mut child, addr) = start_example(name);
    let mut clients = Vec::new();
    for i in 0..n {
        let (mut ws, _) = within("connect", silverback::connect(&format!("ws://{addr}{path}"))).await.unwrap();
        let hello = Message::text(format!("hi {i}"));
        ws.send(hello.clone()).await.unwrap();
        // Skips the chat's broadcasts of the others' messages.
        while within("own message back", ws.next()).await.unwrap().unwrap() != hello {}
        clients.push(ws);
    }
    let pid = libc::pid_t::try_from(child.0.id()).unwrap();
    // SAFETY: `kill` with a valid signal number on our own child process.
    assert_eq!(unsafe { libc::kill(pid, signal) }, 0);
    for mut ws in clients {
        let msg = loop {
            match within("close from the server", ws.next()).await.unwrap().unwrap() {
                Message::Text(_) => {}
                other => break other,
            }
        };
        assert!(matches!(&msg, Message::Close(Some(f)) if f.code == CloseCode::GOING_AWAY), "{msg:?}");
        assert!(within("client stream ends", ws.next()).await.is_none(), "a clean close");
    }
    let status = within("the example exits", async {
        loop {
            if let Some(status) = child.0.try_wait().expect("wait for the example") {
                return status;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert_eq!(status.code(), Some(0), "{name}: {status:?}");
}

#[cfg(feature = "deflate")]
#[tokio::test]
async fn echo_server_closes_with_1001_and_exits_0_on_sigterm() {
    example_drains_on("echo_server", "/", libc::SIGTERM, 5).await;
}

#[cfg(feature = "deflate")]
#[tokio::test]
async fn echo_server_closes_with_1001_and_exits_0_on_ctrl_c() {
    example_drains_on("echo_server", "/", libc::SIGINT, 2).await;
}

#[cfg(feature = "deflate")]
#[tokio::test]
async fn chat_closes_with_1001_and_exits_0_on_sigterm() {
    example_drains_on("chat", "/ws", libc::SIGTERM, 5).await;
}
