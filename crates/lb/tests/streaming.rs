//! Long-lived responses pass through the balancer unbuffered: a WebSocket
//! echo after an Upgrade, and server-sent events delivered as they are sent.

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use base64::Engine;
use picket_testkit::db::sqlite;
use picket_testkit::lb::*;
use picket_testkit::monitors::*;
use picket_testkit::net::*;
use sha1::{Digest, Sha1};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const WS_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

fn accept_key(key: &str) -> String {
    let mut h = Sha1::new();
    h.update(key.as_bytes());
    h.update(WS_GUID.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(h.finalize())
}

async fn read_head(s: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(
            s.read(&mut b).await.unwrap(),
            1,
            "connection closed in headers"
        );
        head.push(b[0]);
    }
    String::from_utf8(head).unwrap()
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim())
}

/// Reads one frame (payload < 64 KiB); returns opcode and unmasked payload.
async fn read_frame(s: &mut TcpStream) -> (u8, Vec<u8>) {
    let mut h = [0u8; 2];
    s.read_exact(&mut h).await.unwrap();
    let opcode = h[0] & 0x0f;
    let masked = h[1] & 0x80 != 0;
    let mut len = (h[1] & 0x7f) as usize;
    if len == 126 {
        let mut l = [0u8; 2];
        s.read_exact(&mut l).await.unwrap();
        len = u16::from_be_bytes(l) as usize;
    }
    let mut mask = [0u8; 4];
    if masked {
        s.read_exact(&mut mask).await.unwrap();
    }
    let mut payload = vec![0u8; len];
    s.read_exact(&mut payload).await.unwrap();
    if masked {
        for (i, b) in payload.iter_mut().enumerate() {
            *b ^= mask[i % 4];
        }
    }
    (opcode, payload)
}

fn frame(opcode: u8, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    let mut f = vec![0x80 | opcode];
    let m = if mask.is_some() { 0x80 } else { 0 };
    if payload.len() < 126 {
        f.push(m | payload.len() as u8);
    } else {
        f.push(m | 126);
        f.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    }
    match mask {
        Some(k) => {
            f.extend_from_slice(&k);
            f.extend(payload.iter().enumerate().map(|(i, b)| b ^ k[i % 4]));
        }
        None => f.extend_from_slice(payload),
    }
    f
}

/// A minimal RFC 6455 echo server (one connection at a time is enough here).
async fn ws_echo_server() -> std::net::SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let head = read_head(&mut s).await;
                let key = header(&head, "sec-websocket-key").unwrap().to_owned();
                let resp = format!(
                    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n\r\n",
                    accept_key(&key)
                );
                s.write_all(resp.as_bytes()).await.unwrap();
                loop {
                    let (op, payload) = read_frame(&mut s).await;
                    s.write_all(&frame(op, &payload, None)).await.unwrap();
                    if op == 8 {
                        return;
                    }
                }
            });
        }
    });
    addr
}

#[tokio::test]
async fn websocket_echo_through_the_balancer() {
    let t = sqlite().await;
    let ws = ws_echo_server().await;
    register(&t.db, "ws", &ws.to_string()).await;
    let lb = spawn_lb(&t.url, &[]).await;
    lb.update_loads().await;

    let mut s = TcpStream::connect(lb.addr).await.unwrap();
    let key = "dGhlIHNhbXBsZSBub25jZQ==";
    let req = format!(
        "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n",
        lb.addr
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let head = tokio::time::timeout(Duration::from_secs(10), read_head(&mut s))
        .await
        .expect("upgrade response");
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert_eq!(
        header(&head, "sec-websocket-accept"),
        Some("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
    );
    assert_eq!(header(&head, "x-routed-to"), Some("ws"));

    for msg in ["hello", "through pingora", &"x".repeat(300)] {
        s.write_all(&frame(1, msg.as_bytes(), Some([1, 2, 3, 4])))
            .await
            .unwrap();
        let (op, payload) = tokio::time::timeout(Duration::from_secs(10), read_frame(&mut s))
            .await
            .expect("echo");
        assert_eq!(op, 1);
        assert_eq!(String::from_utf8(payload).unwrap(), msg);
    }
    s.write_all(&frame(8, &[0x03, 0xe8], Some([9, 9, 9, 9])))
        .await
        .unwrap();
    let (op, _) = read_frame(&mut s).await;
    assert_eq!(op, 8);
}

#[tokio::test]
async fn server_sent_events_are_not_buffered() {
    let t = sqlite().await;
    let (release_tx, release_rx) = tokio::sync::oneshot::channel::<()>();
    let release_rx = std::sync::Arc::new(std::sync::Mutex::new(Some(release_rx)));
    let app = Router::new().route(
        "/events",
        get(move || {
            let rx = release_rx.lock().unwrap().take();
            async move {
                // First event now; the second only after the test saw the first.
                let stream = futures::stream::unfold((0, rx), |(i, rx)| async move {
                    match i {
                        0 => Some((Ok::<_, std::io::Error>("data: one\n\n".to_owned()), (1, rx))),
                        1 => {
                            if let Some(rx) = rx {
                                let _ = rx.await;
                            }
                            Some((Ok("data: two\n\n".to_owned()), (2, None)))
                        }
                        _ => None,
                    }
                });
                (
                    [("content-type", "text/event-stream")],
                    Body::from_stream(stream),
                )
            }
        }),
    );
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await });
    register(&t.db, "sse", &addr.to_string()).await;
    let lb = spawn_lb(&t.url, &[]).await;
    lb.update_loads().await;

    let mut r = client().get(lb.url("/events")).send().await.unwrap();
    assert_eq!(r.headers()["x-routed-to"], "sse");
    let first = tokio::time::timeout(Duration::from_secs(10), r.chunk())
        .await
        .expect("the first event arrives while the stream is still open")
        .unwrap()
        .unwrap();
    assert_eq!(&first[..], b"data: one\n\n");
    release_tx.send(()).unwrap();
    let mut rest = Vec::new();
    while let Some(c) = r.chunk().await.unwrap() {
        rest.extend_from_slice(&c);
    }
    assert_eq!(rest, b"data: two\n\n");
}
