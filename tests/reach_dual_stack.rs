//! Dual-stack connect: `localhost` resolving to both `::1` and `127.0.0.1`
//! with a server on only one of them; `connect` must try both (RFC 8305)
//! and reach it either way. Where this machine's `localhost` does not
//! resolve to both families, the test says so and passes (the race itself
//! is unit-tested with explicit addresses in `src/handshake/dial.rs`).

mod reach_support;

use std::net::{IpAddr, SocketAddr};

use reach_support::{bounded, echo, round_trip};
use silverback::Connector;
use tokio::net::TcpListener;

#[tokio::test]
async fn localhost_reaches_a_server_on_either_family_alone() {
    bounded(async {
        let resolved: Vec<SocketAddr> = tokio::net::lookup_host(("localhost", 1)).await.unwrap().collect();
        let v4 = resolved.iter().any(|a| a.ip() == IpAddr::from([127, 0, 0, 1]));
        let v6 = resolved.iter().any(|a| a.ip() == IpAddr::from(std::net::Ipv6Addr::LOCALHOST));
        if !(v4 && v6) {
            eprintln!("skipped: localhost resolves to {resolved:?} here, not to both ::1 and 127.0.0.1");
            return;
        }
        for (listening, other) in [("::1", "127.0.0.1"), ("127.0.0.1", "::1")] {
            let listener = TcpListener::bind((listening, 0)).await.unwrap();
            let port = listener.local_addr().unwrap().port();
            // The same port on the other family must be free, so that the
            // attempt there is refused.
            if std::net::TcpListener::bind((other, port)).is_err() {
                eprintln!("skipped one case: port {port} is taken on {other}");
                continue;
            }
            tokio::spawn(async move {
                while let Ok((tcp, _)) = listener.accept().await {
                    tokio::spawn(echo(tcp));
                }
            });
            let (ws, _) = Connector::new().no_proxy().connect(&format!("ws://localhost:{port}/")).await.unwrap();
            let peer = ws.peer_addr().unwrap();
            assert_eq!(peer.ip(), listening.parse::<IpAddr>().unwrap());
            round_trip(ws).await;
        }
    })
    .await;
}
