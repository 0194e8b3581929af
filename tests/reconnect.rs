//! `Reconnect`: a fresh connection after each drop, backoff between failed
//! attempts with each error reported, `Retry-After` honoured for 429 and
//! 503, no retry after a 403 (exactly one attempt), giving up, and a
//! cancelled `next` that keeps its schedule. Loopback only.

mod reach_support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use http::StatusCode;
use reach_support::{bounded, echo};
use silverback::{Backoff, Connector, Error, HandshakeError, Message};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// A backoff quick enough for tests, without jitter.
fn quick() -> Backoff {
    Backoff::new().initial(Duration::from_millis(20)).max(Duration::from_millis(100)).jitter(0.0)
}

/// A port on loopback that nothing listens on (yet).
async fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap().port()
}

/// A server on `listener` that answers the `n`-th request (from 0) with
/// `answers(n)`, or upgrades and echoes when that is `None`; counts requests.
fn scripted(listener: TcpListener, answers: fn(usize) -> Option<&'static str>) -> Arc<AtomicUsize> {
    let count = Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            let n = seen.fetch_add(1, Ordering::SeqCst);
            match answers(n) {
                None => {
                    tokio::spawn(echo(tcp));
                }
                Some(answer) => {
                    tokio::spawn(async move {
                        let mut head = Vec::new();
                        while !head.ends_with(b"\r\n\r\n") {
                            let Ok(byte) = tcp.read_u8().await else { return };
                            head.push(byte);
                        }
                        let _ = tcp.write_all(answer.as_bytes()).await;
                    });
                }
            }
        }
    });
    count
}

#[tokio::test]
async fn a_fresh_connection_after_each_drop() {
    bounded(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("ws://{}/", listener.local_addr().unwrap());
        // The server closes each connection after one echo.
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut ws = silverback::accept(tcp).await.unwrap();
                    if let Some(Ok(msg)) = ws.next().await {
                        let _ = ws.send(msg).await;
                    }
                    let _ = ws.close(None).await;
                });
            }
        });
        let mut connections = Connector::new().no_proxy().reconnect(&url).backoff(quick());
        assert_eq!(connections.url(), url);
        for i in 0..3 {
            let (mut ws, response) = connections.next().await.unwrap().unwrap();
            assert_eq!(response.status(), 101);
            ws.send(Message::text(format!("round {i}"))).await.unwrap();
            assert_eq!(ws.next().await.unwrap().unwrap().as_text(), Some(format!("round {i}").as_str()));
            // Read until the server's close ends the connection.
            while let Some(Ok(_)) = ws.next().await {}
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 3);
    })
    .await;
}

#[tokio::test]
async fn refused_attempts_are_reported_then_retried_until_the_server_is_back() {
    bounded(async {
        let port = free_port().await;
        let mut connections = Connector::new().no_proxy().reconnect(format!("ws://127.0.0.1:{port}/")).backoff(quick());
        for attempt in 1..=3 {
            let failed = connections.next().await.unwrap().unwrap_err();
            assert!(matches!(failed.error(), Error::Io(_)), "{failed:?}");
            assert_eq!(failed.attempt(), attempt);
            // 20 ms, 40 ms, 80 ms: the ceilings, without jitter.
            assert_eq!(failed.retry_in(), Some(Duration::from_millis(20 << (attempt - 1))));
            assert!(!failed.is_final());
        }
        let listener = TcpListener::bind(("127.0.0.1", port)).await.unwrap();
        scripted(listener, |_| None);
        let (ws, _) = connections.next().await.unwrap().unwrap();
        reach_support::round_trip(ws).await;
    })
    .await;
}

#[tokio::test]
async fn a_403_refusal_is_final_after_exactly_one_attempt() {
    bounded(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("ws://{}/", listener.local_addr().unwrap());
        let requests = scripted(listener, |_| Some("HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n"));
        let mut connections = Connector::new().no_proxy().reconnect(url).backoff(quick());
        let failed = connections.next().await.unwrap().unwrap_err();
        assert!(matches!(failed.error(), Error::Handshake(HandshakeError::UnexpectedStatus(StatusCode::FORBIDDEN))));
        assert!(failed.is_final());
        assert_eq!(failed.to_string(), "connection attempt 1 failed, giving up");
        assert!(connections.next().await.is_none());
        assert!(connections.next().await.is_none());
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(requests.load(Ordering::SeqCst), 1, "a 403 was retried");
    })
    .await;
}

#[tokio::test]
async fn retry_after_is_honoured_for_429_and_503() {
    bounded(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("ws://{}/", listener.local_addr().unwrap());
        scripted(listener, |n| match n {
            0 => Some("HTTP/1.1 429 Too Many Requests\r\nRetry-After: 1\r\nContent-Length: 0\r\n\r\n"),
            1 => Some("HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Length: 0\r\n\r\n"),
            _ => None,
        });
        // The backoff alone would wait 20 ms.
        let mut connections = Connector::new().no_proxy().reconnect(url).backoff(quick());
        for status in [StatusCode::TOO_MANY_REQUESTS, StatusCode::SERVICE_UNAVAILABLE] {
            let failed = connections.next().await.unwrap().unwrap_err();
            assert!(matches!(failed.error(), Error::Handshake(HandshakeError::UnexpectedStatus(s)) if *s == status));
            assert_eq!(failed.retry_in(), Some(Duration::from_secs(1)), "{status}");
        }
        let started = Instant::now();
        let (ws, _) = connections.next().await.unwrap().unwrap();
        assert!(started.elapsed() >= Duration::from_millis(950), "{:?}", started.elapsed());
        reach_support::round_trip(ws).await;
    })
    .await;
}

#[tokio::test]
async fn the_backoff_gives_up_after_max_attempts() {
    bounded(async {
        let port = free_port().await;
        let mut connections =
            Connector::new().no_proxy().reconnect(format!("ws://127.0.0.1:{port}/")).backoff(quick().max_attempts(3));
        let mut finals = Vec::new();
        while let Some(attempt) = connections.next().await {
            finals.push(attempt.unwrap_err().is_final());
        }
        assert_eq!(finals, [false, false, true]);
    })
    .await;
}

#[tokio::test]
async fn a_cancelled_next_keeps_its_schedule() {
    bounded(async {
        let port = free_port().await;
        let backoff = Backoff::new().initial(Duration::from_secs(1)).jitter(0.0);
        let mut connections = Connector::new().no_proxy().reconnect(format!("ws://127.0.0.1:{port}/")).backoff(backoff);
        let failed = connections.next().await.unwrap().unwrap_err();
        let failed_at = Instant::now();
        assert_eq!(failed.retry_in(), Some(Duration::from_secs(1)));
        // Cancel halfway through the wait.
        assert!(tokio::time::timeout(Duration::from_millis(500), connections.next()).await.is_err());
        let second = connections.next().await.unwrap().unwrap_err();
        let elapsed = failed_at.elapsed();
        assert_eq!(second.attempt(), 2);
        // The same instant as before (about 1 s after the failure), not a
        // fresh wait started by the second call (1.5 s).
        assert!(elapsed >= Duration::from_millis(950) && elapsed < Duration::from_millis(1450), "{elapsed:?}");
    })
    .await;
}

#[tokio::test]
async fn a_server_that_drops_at_once_is_not_hammered() {
    bounded(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("ws://{}/", listener.local_addr().unwrap());
        let requests = scripted(listener, |_| None);
        let mut connections = Connector::new().no_proxy().reconnect(url).backoff(quick());
        let started = Instant::now();
        for _ in 0..4 {
            let (ws, _) = connections.next().await.unwrap().unwrap();
            drop(ws);
        }
        // Four connections, three waits of 20, 40 and 80 ms between them.
        assert!(started.elapsed() >= Duration::from_millis(140), "{:?}", started.elapsed());
        assert_eq!(requests.load(Ordering::SeqCst), 4);
    })
    .await;
}
