//! Opening the TCP connection: every address a name resolves to, IPv6 and
//! IPv4, raced as RFC 8305 ("Happy Eyeballs v2") describes.
//!
//! The addresses are put in the order of RFC 8305 §4: alternating families,
//! starting with the family of the resolver's first answer (the system's
//! preference, RFC 6724). The first attempt starts at once; each next one
//! starts when the one before it fails, or after [`STAGGER`] without an
//! answer (§5), while the earlier ones keep going. The first connection
//! established wins and the others are dropped (closed). When every attempt
//! fails, the first error is reported: it comes from the preferred address.
//!
//! The caller bounds the whole with the handshake timeout; nothing here
//! waits on its own.

use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::pin;
use std::task::Poll;
use std::time::Duration;

use futures_util::stream::{FuturesUnordered, StreamExt};
use tokio::net::TcpStream;

/// How long an attempt runs alone before the next address is tried too:
/// RFC 8305 §5's recommended "Connection Attempt Delay".
pub(crate) const STAGGER: Duration = Duration::from_millis(250);

/// Connects to `host:port` (a name or an IP literal) and sets TCP_NODELAY.
///
/// # Cancellation safety
///
/// Cancel safe: dropping the future drops every attempt under way.
pub(crate) async fn dial(host: &str, port: u16) -> io::Result<TcpStream> {
    let addrs: Vec<SocketAddr> = match host.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => tokio::net::lookup_host((host, port)).await?.collect(),
    };
    let tcp = race(interleave(addrs), STAGGER, TcpStream::connect).await?;
    tcp.set_nodelay(true)?;
    Ok(tcp)
}

/// Orders `addrs` by alternating address families, starting with the
/// family of the first one, keeping the order within each family (RFC 8305
/// §4).
pub(crate) fn interleave(addrs: Vec<SocketAddr>) -> Vec<SocketAddr> {
    let Some(first) = addrs.first() else {
        return addrs;
    };
    let first_v6 = first.is_ipv6();
    let (mut preferred, mut other): (Vec<_>, Vec<_>) = addrs.into_iter().partition(|a| a.is_ipv6() == first_v6);
    let mut out = Vec::with_capacity(preferred.len() + other.len());
    preferred.reverse();
    other.reverse();
    loop {
        match (preferred.pop(), other.pop()) {
            (None, None) => return out,
            (a, b) => out.extend(a.into_iter().chain(b)),
        }
    }
}

/// Runs `connect` on each of `addrs` in order, starting the next one when
/// the last one started fails or after `stagger` without an answer; answers
/// the first success, or the first error when all failed.
pub(crate) async fn race<T, F, Fut>(addrs: Vec<SocketAddr>, stagger: Duration, connect: F) -> io::Result<T>
where
    F: Fn(SocketAddr) -> Fut,
    Fut: Future<Output = io::Result<T>>,
{
    let mut queue = addrs.into_iter();
    let Some(first) = queue.next() else {
        return Err(io::Error::new(io::ErrorKind::NotFound, "the host name resolved to no address"));
    };
    let mut running = FuturesUnordered::new();
    running.push(connect(first));
    let mut timer = pin!(tokio::time::sleep(stagger));
    let mut first_error: Option<io::Error> = None;
    std::future::poll_fn(|cx| loop {
        let mut failed = false;
        while let Poll::Ready(Some(result)) = running.poll_next_unpin(cx) {
            match result {
                Ok(io) => return Poll::Ready(Ok(io)),
                Err(e) => {
                    first_error.get_or_insert(e);
                    failed = true;
                }
            }
        }
        // The next address is due when an attempt failed, none is left
        // running, or the stagger ran out.
        if !(failed || running.is_empty() || timer.as_mut().poll(cx).is_ready()) {
            return Poll::Pending;
        }
        match queue.next() {
            Some(addr) => {
                running.push(connect(addr));
                timer.as_mut().reset(tokio::time::Instant::now() + stagger);
            }
            None if running.is_empty() => {
                let err = first_error.take().unwrap_or_else(|| io::Error::other("no connection attempt made"));
                return Poll::Ready(Err(err));
            }
            // Nothing left to start: the attempts under way will wake us.
            None => return Poll::Pending,
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tokio::net::TcpListener;

    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn interleaves_families_starting_with_the_first() {
        let (a6, b6, c6) = (addr("[2001:db8::1]:1"), addr("[2001:db8::2]:1"), addr("[2001:db8::3]:1"));
        let (a4, b4) = (addr("192.0.2.1:1"), addr("192.0.2.2:1"));
        assert_eq!(interleave(vec![a6, b6, c6, a4, b4]), vec![a6, a4, b6, b4, c6]);
        assert_eq!(interleave(vec![a4, b4, a6]), vec![a4, a6, b4]);
        assert_eq!(interleave(vec![a4, b4]), vec![a4, b4]);
        assert_eq!(interleave(vec![]), vec![]);
    }

    /// The address of a port on loopback that nothing listens on.
    async fn closed_port(ip: &str) -> SocketAddr {
        TcpListener::bind((ip, 0)).await.unwrap().local_addr().unwrap()
    }

    #[tokio::test]
    async fn a_refused_address_moves_on_at_once() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let open = listener.local_addr().unwrap();
        let closed = closed_port("127.0.0.1").await;
        let started = std::time::Instant::now();
        // A stagger far longer than the test: only the refusal moves on.
        let tcp = race(vec![closed, open], Duration::from_secs(30), TcpStream::connect).await.unwrap();
        assert_eq!(tcp.peer_addr().unwrap(), open);
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[tokio::test]
    async fn ipv6_and_ipv4_loopback_where_only_one_listens() {
        if std::net::TcpListener::bind("[::1]:0").is_err() {
            eprintln!("skipped: this machine has no IPv6 loopback");
            return;
        }
        for (listening, silent) in [("127.0.0.1", "::1"), ("::1", "127.0.0.1")] {
            let listener = TcpListener::bind((listening, 0)).await.unwrap();
            let port = listener.local_addr().unwrap().port();
            let other: IpAddr = silent.parse().unwrap();
            if std::net::TcpListener::bind((other, port)).is_err() {
                continue; // the other family's port is taken: no clean case
            }
            let addrs = interleave(vec![SocketAddr::new(other, port), listener.local_addr().unwrap()]);
            let tcp = race(addrs, STAGGER, TcpStream::connect).await.unwrap();
            assert_eq!(tcp.peer_addr().unwrap(), listener.local_addr().unwrap(), "{listening}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_stalled_address_is_raced_after_the_stagger() {
        let (slow, fast) = (addr("[2001:db8::1]:1"), addr("192.0.2.1:1"));
        let started = Arc::new(Mutex::new(Vec::new()));
        let log = started.clone();
        let t0 = tokio::time::Instant::now();
        let winner = race(vec![slow, fast], STAGGER, move |a| {
            log.lock().unwrap().push((a, t0.elapsed()));
            async move {
                if a == slow {
                    std::future::pending::<()>().await;
                }
                Ok(a)
            }
        })
        .await
        .unwrap();
        assert_eq!(winner, fast);
        assert_eq!(*started.lock().unwrap(), vec![(slow, Duration::ZERO), (fast, STAGGER)]);
    }

    #[tokio::test(start_paused = true)]
    async fn every_address_failing_reports_the_first_error() {
        let addrs = vec![addr("192.0.2.1:1"), addr("192.0.2.2:1"), addr("192.0.2.3:1")];
        let err = race(addrs, STAGGER, |a| async move {
            Err::<(), _>(io::Error::new(io::ErrorKind::ConnectionRefused, a.to_string()))
        })
        .await
        .unwrap_err();
        assert_eq!(err.to_string(), "192.0.2.1:1");
        let none = race(vec![], STAGGER, |_| async { Ok(()) }).await.unwrap_err();
        assert_eq!(none.kind(), io::ErrorKind::NotFound);
    }
}
