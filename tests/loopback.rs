//! Real TCP loopback: a server task using `silverback::accept` that echoes,
//! many concurrent `silverback::connect` clients, and clean closing
//! handshakes observed from both ends.

mod common;

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use silverback::{CloseCode, CloseFrame, Message};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use common::within;

/// How a server-side connection ended.
#[derive(Debug, PartialEq)]
struct ServerEnd {
    echoed: usize,
    close: Option<CloseFrame>,
}

/// Binds a loopback listener and echoes on every accepted connection;
/// reports how each connection ended.
async fn echo_server() -> (u16, mpsc::UnboundedReceiver<Result<ServerEnd, String>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else { return };
            tcp.set_nodelay(true).unwrap();
            let tx = tx.clone();
            tokio::spawn(async move {
                let result = async {
                    let mut ws = silverback::accept(tcp).await.map_err(|e| format!("accept: {e:?}"))?;
                    let (mut echoed, mut close) = (0, None);
                    while let Some(msg) = ws.next().await {
                        match msg.map_err(|e| format!("read: {e:?}"))? {
                            Message::Close(frame) => close = Some(frame),
                            msg @ (Message::Text(_) | Message::Binary(_)) => {
                                ws.send(msg).await.map_err(|e| format!("send: {e:?}"))?;
                                echoed += 1;
                            }
                            _ => {}
                        }
                    }
                    let close = close.ok_or("stream ended without a close frame")?;
                    Ok(ServerEnd { echoed, close })
                }
                .await;
                let _ = tx.send(result);
            });
        }
    });
    (port, rx)
}

fn message(client: usize, i: usize) -> Message {
    if i % 3 == 0 {
        Message::binary(vec![(client + i) as u8; i * 97])
    } else {
        Message::text(format!("client {client} message {i} {}", "x".repeat(i * 13)))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_concurrent_clients_get_their_echoes() {
    const CLIENTS: usize = 20;
    const MESSAGES: usize = 50;
    let (port, mut ends) = echo_server().await;
    let url = format!("ws://127.0.0.1:{port}/echo");
    let mut clients = Vec::new();
    for c in 0..CLIENTS {
        let url = url.clone();
        clients.push(tokio::spawn(async move {
            let (mut ws, response) = silverback::connect(&url).await.expect("connect");
            assert_eq!(response.status(), 101);
            for i in 0..MESSAGES {
                let msg = message(c, i);
                ws.send(msg.clone()).await.expect("send");
                let back = ws.next().await.expect("open").expect("echo");
                assert_eq!(back, msg, "client {c} message {i}");
            }
            // Pipelined too: everything out, then everything back.
            for i in 0..MESSAGES {
                ws.feed(message(c, i)).await.expect("feed");
            }
            ws.flush().await.expect("flush");
            for i in 0..MESSAGES {
                assert_eq!(ws.next().await.expect("open").expect("echo"), message(c, i));
            }
            ws.close(None).await.expect("clean close");
            assert!(ws.next().await.is_none());
        }));
    }
    for client in clients {
        tokio::time::timeout(Duration::from_secs(60), client).await.expect("client hung").expect("client panicked");
    }
    for _ in 0..CLIENTS {
        let end = within("server end", ends.recv()).await.expect("a report").expect("clean server end");
        assert_eq!(end, ServerEnd { echoed: 2 * MESSAGES, close: None });
    }
}

#[tokio::test]
async fn client_close_is_clean_on_both_ends() {
    let (port, mut ends) = echo_server().await;
    let (mut ws, _) =
        within("connect", silverback::connect(&format!("ws://127.0.0.1:{port}/"))).await.expect("connect");
    ws.send(Message::text("hello")).await.unwrap();
    assert_eq!(within("echo", ws.next()).await.unwrap().unwrap(), Message::text("hello"));
    let frame = CloseFrame::new(CloseCode::GOING_AWAY, "done here");
    within("close", ws.close(Some(frame.clone()))).await.expect("clean close");
    assert!(ws.next().await.is_none());
    assert!(matches!(ws.send(Message::text("late")).await, Err(silverback::Error::Closed)));
    let end = within("server end", ends.recv()).await.expect("a report").expect("clean server end");
    assert_eq!(end, ServerEnd { echoed: 1, close: Some(frame) });
}

#[tokio::test]
async fn split_client_over_tcp_reads_and_writes_concurrently() {
    let (port, mut ends) = echo_server().await;
    let (ws, _) = within("connect", silverback::connect(&format!("ws://127.0.0.1:{port}/"))).await.expect("connect");
    let (mut read, mut write) = ws.split();
    const N: usize = 2000;
    let reader = tokio::spawn(async move {
        let mut n = 0;
        while let Some(msg) = read.next().await {
            match msg.expect("read") {
                Message::Text(t) => {
                    assert_eq!(t.as_str(), format!("{n}"));
                    n += 1;
                }
                Message::Close(frame) => assert_eq!(frame, Some(CloseFrame::normal())),
                other => panic!("unexpected {other:?}"),
            }
        }
        n
    });
    for i in 0..N {
        write.send(Message::text(format!("{i}"))).await.expect("send");
    }
    write.send_close(Some(CloseFrame::normal())).await.expect("close");
    let n = tokio::time::timeout(Duration::from_secs(60), reader).await.expect("reader hung").unwrap();
    assert_eq!(n, N);
    let end = within("server end", ends.recv()).await.expect("a report").expect("clean server end");
    assert_eq!(end, ServerEnd { echoed: N, close: Some(CloseFrame::normal()) });
}

/// Both ends reach their transport: the peer address of each side is the
/// other's local address (the stream, and each half after a split).
#[tokio::test]
async fn each_end_knows_its_peer_address() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server_addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (tcp, from) = listener.accept().await.unwrap();
        let ws = silverback::accept(tcp).await.unwrap();
        assert_eq!(ws.peer_addr().unwrap(), from);
        let (read, write) = ws.split();
        assert_eq!(read.peer_addr().unwrap(), from);
        assert_eq!(write.peer_addr().unwrap(), from);
        from
    });
    let (ws, _) = silverback::connect(&format!("ws://{server_addr}/")).await.unwrap();
    assert_eq!(ws.peer_addr().unwrap(), server_addr);
    let local = ws.with_io(|io| io.tcp().local_addr()).unwrap();
    assert_eq!(within("server", server).await.unwrap(), local);
}
