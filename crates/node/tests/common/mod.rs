//! Harness for node integration tests: in-process nodes on 127.0.0.1:0 over a
//! real database, a small API client, and a TCP proxy to cut a database off.

#![allow(dead_code)]

use picket_node::Node;
use picket_shared::config::{NodeConfig, parse_with_file};
use serde_json::Value;
use std::ffi::OsString;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex;
use tokio::task::JoinHandle;

pub const TOKEN: &str = "test-admin-token";

/// Starts a node named `id` on `db_url` with short intervals allowed.
pub async fn spawn_node(db_url: &str, id: &str, extra: &[&str]) -> Node {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let host = listener.local_addr().unwrap().to_string();
    let mut args: Vec<OsString> = [
        "picket-node",
        "--database-url",
        db_url,
        "--node-id",
        id,
        "--node-host",
        &host,
        "--api-token",
        TOKEN,
        "--min-interval-secs",
        "1",
        "--reconcile-ms",
        "200",
        "--heartbeat-flush-ms",
        "100",
    ]
    .iter()
    .map(OsString::from)
    .collect();
    args.extend(extra.iter().map(OsString::from));
    let cfg: NodeConfig = parse_with_file(args).unwrap();
    cfg.validate().unwrap();
    Node::start(cfg, listener).await.unwrap()
}

/// A JSON API client for one node.
#[derive(Clone)]
pub struct Api {
    pub base: String,
    pub http: reqwest::Client,
    pub token: Option<String>,
}

impl Api {
    pub fn new(addr: SocketAddr) -> Self {
        Self {
            base: format!("http://{addr}"),
            http: reqwest::Client::new(),
            token: Some(TOKEN.into()),
        }
    }

    pub fn without_token(&self) -> Self {
        Self {
            token: None,
            ..self.clone()
        }
    }

    pub async fn send(&self, method: &str, path: &str, body: Option<Vec<u8>>) -> (u16, Value) {
        let mut req = self
            .http
            .request(method.parse().unwrap(), format!("{}{path}", self.base));
        if let Some(t) = &self.token {
            req = req.header("Authorization", format!("Bearer {t}"));
        }
        if let Some(b) = body {
            req = req.header("content-type", "application/json").body(b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        let v = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, v)
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.send("GET", path, None).await
    }
    pub async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        self.send("POST", path, Some(body.to_string().into_bytes()))
            .await
    }
    pub async fn put(&self, path: &str, body: &Value) -> (u16, Value) {
        self.send("PUT", path, Some(body.to_string().into_bytes()))
            .await
    }

    /// Creates a monitor and returns its id, failing the test otherwise.
    pub async fn create_monitor(&self, body: Value) -> i64 {
        let (status, v) = self.post("/api/v1/monitors", &body).await;
        assert_eq!(status, 201, "create {body}: {v}");
        v["data"]["id"].as_i64().unwrap()
    }

    pub async fn heartbeats(&self, id: i64) -> Vec<Value> {
        let (status, v) = self.get(&format!("/api/v1/monitors/{id}/heartbeats")).await;
        assert_eq!(status, 200, "{v}");
        v["data"].as_array().cloned().unwrap_or_default()
    }
}

/// Polls `f` every 50 ms until it returns `Some`, or panics after `limit`.
pub async fn eventually<T, F, Fut>(limit: Duration, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out after {limit:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A closed TCP port on 127.0.0.1.
pub async fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap().port()
}

/// A TCP proxy in front of a database server that the test can cut: while cut,
/// every proxied connection is closed and new ones are dropped on accept.
pub struct Proxy {
    pub addr: SocketAddr,
    cut: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Proxy {
    pub async fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let cut = Arc::new(AtomicBool::new(false));
        let conns: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let (c, cs) = (cut.clone(), conns.clone());
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if c.load(Ordering::SeqCst) {
                    continue; // dropped: the client sees a closed connection
                }
                let task = tokio::spawn(async move {
                    if let Ok(mut out) = TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut out).await;
                    }
                });
                cs.lock().await.push(task);
            }
        });
        Proxy { addr, cut, conns }
    }

    pub async fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        for t in self.conns.lock().await.drain(..) {
            t.abort();
        }
    }

    pub fn restore(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }
}

/// Sum of a counter family's samples in a Prometheus text exposition.
pub fn metric_sum(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}
