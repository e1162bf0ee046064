//! The balancer's reading of requests on the wire: pipelined requests are
//! all answered, in order; a request whose length could be read two ways
//! (a repeated or listed `Content-Length`) is refused, never forwarded.
//! (With `Transfer-Encoding` beside a `Content-Length`, Pingora drops the
//! length before any hook runs and frames by the chunks alone, as RFC 9112
//! §6.3 says, so the node reads the same framing.)

use picket_testkit::db::sqlite;
use picket_testkit::lb::*;
use picket_testkit::monitors::*;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Everything the balancer sends on one connection until it has `want`
/// responses (counted by status lines) or closes.
async fn exchange(lb: &LbHandle, raw: &str, want: usize) -> String {
    let mut s = TcpStream::connect(lb.addr).await.unwrap();
    s.write_all(raw.as_bytes()).await.unwrap();
    let mut got = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        let mut buf = [0u8; 4096];
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
            if String::from_utf8_lossy(&got).matches("HTTP/1.1 ").count() >= want {
                break;
            }
        }
    })
    .await;
    String::from_utf8_lossy(&got).into_owned()
}

#[tokio::test]
async fn pipelined_requests_are_all_answered_in_order() {
    let t = sqlite().await;
    let a = backend("a").await;
    register(&t.db, "a", &a.addr.to_string()).await;
    let lb = spawn_lb(&t.url, &[]).await;
    lb.update_loads().await;
    let two = "GET /first HTTP/1.1\r\nHost: x\r\n\r\nGET /lb/ping HTTP/1.1\r\nHost: x\r\n\r\nGET /third HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    let got = exchange(&lb, two, 3).await;
    assert_eq!(got.matches("HTTP/1.1 200").count(), 3, "{got}");
}

#[tokio::test]
async fn an_ambiguous_length_is_refused_not_forwarded() {
    let t = sqlite().await;
    let a = backend("a").await;
    register(&t.db, "a", &a.addr.to_string()).await;
    let lb = spawn_lb(&t.url, &[]).await;
    lb.update_loads().await;
    // The balancer's first health round probes the node: count from after it.
    lb.settled().await;
    let before = a.hits();
    for head in [
        "Content-Length: 5\r\nContent-Length: 5\r\n",
        "Content-Length: 5, 5\r\n",
    ] {
        let raw = format!("POST /api/v1/monitors HTTP/1.1\r\nHost: x\r\n{head}\r\nhello");
        let got = exchange(&lb, &raw, 1).await;
        assert!(got.starts_with("HTTP/1.1 400"), "{head:?}: {got}");
    }
    assert_eq!(a.hits(), before, "nothing reached the node");
}
