//! Test harness: an in-process balancer (`spawn_lb`), small HTTP backends that
//! stand in for nodes (`backend`), a minimal DNS responder, and polling helpers.
#![allow(dead_code)]

pub mod cluster;

use axum::Router;
use axum::extract::Request;
use axum::response::IntoResponse;
use picket_lb::config::LbConfig;
use picket_shared::NodeId;
use picket_shared::db::Db;
use picket_shared::monitor::MonitorFields;
use serde_json::{Value, json};
use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const TOKEN: &str = "test-admin-token";

/// A port that was free a moment ago (Pingora binds by address, not by a
/// listener we could hand it).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A balancer running in this process on its own thread; stopped on drop.
pub struct LbHandle {
    pub addr: SocketAddr,
    stop: tokio::sync::watch::Sender<bool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl LbHandle {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// A POST to an admin endpoint, with the admin token.
    pub async fn post_admin(&self, path: &str) -> reqwest::Response {
        client()
            .post(self.url(path))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap()
    }

    /// Rebuilds the node view now (so tests need not wait for the refresh tick).
    pub async fn update_loads(&self) {
        let r = self.post_admin("/api/update-loads").await;
        assert_eq!(r.status(), 200, "update-loads: {}", r.text().await.unwrap());
    }

    pub async fn get_json(&self, path: &str) -> Value {
        let r = client().get(self.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        r.json().await.unwrap()
    }

    /// `(X-Routed-To, body)` of a GET through the balancer.
    pub async fn routed(&self, path: &str) -> (String, String) {
        let r = client().get(self.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        let node = r
            .headers()
            .get("x-routed-to")
            .expect("X-Routed-To on a proxied response")
            .to_str()
            .unwrap()
            .to_owned();
        (node, r.text().await.unwrap())
    }
}

impl Drop for LbHandle {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Starts a balancer against `db_url` with short intervals; `extra` are more
/// flags. Returns once `/health` answers.
pub async fn spawn_lb(db_url: &str, extra: &[&str]) -> LbHandle {
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let lb_id = format!("lb-{port}");
    // Defaults for tests; a flag in `extra` replaces its default. The health
    // checker stays out of the way unless a test sets its pace.
    let defaults: [(&str, &str); 11] = [
        ("--listen", &listen),
        ("--database-url", db_url),
        ("--api-token", TOKEN),
        ("--refresh-ms", "100"),
        ("--threads", "1"),
        ("--grace-period-secs", "0"),
        ("--connect-timeout-ms", "500"),
        ("--lb-id", &lb_id),
        ("--hc-interval-secs", "3600"),
        ("--lease-ttl-secs", "7200"),
        ("--log-format", "text"),
    ];
    let mut args = vec!["picket-lb"];
    for (flag, value) in defaults {
        if !extra.contains(&flag) {
            args.extend_from_slice(&[flag, value]);
        }
    }
    args.extend_from_slice(extra);
    let cfg = LbConfig::from_args(args).expect("config");
    cfg.validate().expect("valid config");
    let (tx, rx) = tokio::sync::watch::channel(false);
    let thread = std::thread::spawn(move || {
        picket_lb::run(cfg, Box::new(picket_lb::ChannelShutdown(rx)));
    });
    let h = LbHandle {
        addr: listen.parse().unwrap(),
        stop: tx,
        thread: Some(thread),
    };
    eventually("balancer answers /health", || async {
        client()
            .get(h.url("/health"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
    })
    .await;
    h
}

impl LbHandle {
    /// Waits for the cluster service's first (automatic) round, so that the
    /// rounds a test triggers are the only ones after it.
    pub async fn settled(&self) {
        eventually("the first cluster round", || async {
            self.get_json("/lb/health-status").await["rounds"].as_u64() >= Some(1)
        })
        .await;
    }
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// Polls `f` until it returns true, failing the test after 15 s.
pub async fn eventually<F, Fut>(what: &str, f: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    eventually_for(Duration::from_secs(15), what, f).await
}

/// Polls `f` until it returns true, failing after `limit`.
pub async fn eventually_for<F, Fut>(limit: Duration, what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    loop {
        if f().await {
            return;
        }
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A stand-in node: answers every path with its name (and the headers it got,
/// as JSON, on `/echo-headers`), `/api/v1/health` with 200, and counts hits.
pub struct Backend {
    pub name: String,
    pub addr: SocketAddr,
    pub hits: Arc<AtomicUsize>,
    pub healthy: Arc<std::sync::atomic::AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Backend {
    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub async fn backend(name: &str) -> Backend {
    backend_on(name, "127.0.0.1:0".parse().unwrap()).await
}

pub async fn backend_on(name: &str, bind: SocketAddr) -> Backend {
    let listener = tokio::net::TcpListener::bind(bind).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let hits = Arc::new(AtomicUsize::new(0));
    let healthy = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let (n, h, ok) = (name.to_owned(), hits.clone(), healthy.clone());
    let app = Router::new().fallback(move |req: Request| {
        let (n, h, ok) = (n.clone(), h.clone(), ok.clone());
        async move {
            let path = req.uri().path().to_owned();
            if path == "/api/v1/health" {
                return if ok.load(Ordering::SeqCst) {
                    (axum::http::StatusCode::OK, "ok").into_response()
                } else {
                    (axum::http::StatusCode::SERVICE_UNAVAILABLE, "sick").into_response()
                };
            }
            h.fetch_add(1, Ordering::SeqCst);
            if path == "/echo-headers" {
                let headers: serde_json::Map<String, Value> = req
                    .headers()
                    .iter()
                    .map(|(k, v)| (k.to_string(), json!(v.to_str().unwrap_or(""))))
                    .collect();
                return axum::Json(json!({"node": n, "headers": headers})).into_response();
            }
            n.into_response()
        }
    });
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Backend {
        name: name.to_owned(),
        addr,
        hits,
        healthy,
        task,
    }
}

/// Registers a node row (online) for a backend.
pub async fn register(db: &Db, id: &str, host: &str) {
    db.register_node(&NodeId::from(id), id, host).await.unwrap();
}

/// Creates `n` active HTTP monitors homed on `node`.
pub async fn monitors_on(db: &Db, node: &str, n: usize) {
    for i in 0..n {
        let v = json!({"name": format!("{node}-{i}"), "type": "http",
            "url": "http://127.0.0.1:1/", "interval": 20, "node_id": node});
        let m = MonitorFields::from_json(v)
            .unwrap()
            .validate(&picket_shared::monitor::Limits::STORED)
            .unwrap();
        db.create_monitor(&m).await.unwrap();
    }
}

/// A minimal authoritative DNS responder on a loopback UDP port: answers A
/// queries for the names in its table with TTL 600 (as Docker's embedded DNS
/// does), NXDOMAIN for other names, and an empty answer for other types.
pub struct DnsServer {
    pub addr: SocketAddr,
    pub table: Arc<Mutex<Vec<(String, Ipv4Addr)>>>,
    pub queries: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl DnsServer {
    pub fn set(&self, name: &str, ip: Ipv4Addr) {
        let mut t = self.table.lock().unwrap();
        t.retain(|(n, _)| n != name);
        t.push((name.to_owned(), ip));
    }
}

pub async fn dns_server() -> DnsServer {
    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = sock.local_addr().unwrap();
    let table: Arc<Mutex<Vec<(String, Ipv4Addr)>>> = Arc::default();
    let queries = Arc::new(AtomicUsize::new(0));
    let (t, q) = (table.clone(), queries.clone());
    let task = tokio::spawn(async move {
        let mut buf = [0u8; 512];
        loop {
            let Ok((n, peer)) = sock.recv_from(&mut buf).await else {
                return;
            };
            q.fetch_add(1, Ordering::SeqCst);
            let resp = dns_answer(&buf[..n], &t.lock().unwrap());
            if let Some(resp) = resp {
                let _ = sock.send_to(&resp, peer).await;
            }
        }
    });
    DnsServer {
        addr,
        table,
        queries,
        task,
    }
}

/// Builds the response to one query (RFC 1035 wire format, one question).
fn dns_answer(q: &[u8], table: &[(String, Ipv4Addr)]) -> Option<Vec<u8>> {
    if q.len() < 12 {
        return None;
    }
    // Question: labels until the zero byte, then QTYPE and QCLASS.
    let mut i = 12;
    let mut labels = Vec::new();
    loop {
        let len = *q.get(i)? as usize;
        i += 1;
        if len == 0 {
            break;
        }
        labels.push(String::from_utf8_lossy(q.get(i..i + len)?).to_lowercase());
        i += len;
    }
    let qtype = u16::from_be_bytes([*q.get(i)?, *q.get(i + 1)?]);
    let question_end = i + 4;
    let name = labels.join(".");
    let found = table.iter().find(|(n, _)| *n == name).map(|(_, ip)| *ip);
    let mut r = Vec::with_capacity(64);
    r.extend_from_slice(&q[0..2]); // id
    let rcode = if found.is_some() { 0 } else { 3 }; // NOERROR / NXDOMAIN
    r.push(0x84 | (q[2] & 0x01)); // QR, AA, RD copied
    r.push(rcode);
    r.extend_from_slice(&[0, 1]); // QDCOUNT
    let answer = found.filter(|_| qtype == 1);
    r.extend_from_slice(&[0, u8::from(answer.is_some())]); // ANCOUNT
    r.extend_from_slice(&[0, 0, 0, 0]); // NSCOUNT, ARCOUNT
    r.extend_from_slice(q.get(12..question_end)?);
    if let Some(ip) = answer {
        r.extend_from_slice(&[0xc0, 12]); // name: pointer to the question
        r.extend_from_slice(&[0, 1, 0, 1]); // A, IN
        r.extend_from_slice(&600u32.to_be_bytes()); // TTL 600, like Docker
        r.extend_from_slice(&[0, 4]);
        r.extend_from_slice(&ip.octets());
    }
    Some(r)
}
