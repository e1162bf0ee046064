//! Cluster harness: real `picket-node` and `picket-lb` processes over one
//! database, and a target that records which node checked which monitor.
//! Used by the end-to-end tests and the failover benchmark.

use super::*;
use axum::Router;
use axum::extract::{Path, Request};
use picket_shared::NodeId;
use picket_shared::model::NodeStatus;
use picket_shared::testing::TestDb;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Instant;

pub const FALL: u64 = 3;
pub const HC_SECS: u64 = 1;
pub const RECONCILE_MS: u64 = 200;
pub const NODE_LEASE_SECS: u64 = 3;

pub fn node_bin() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap();
    let bin = dir.join("picket-node");
    if !bin.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut args = vec!["build", "-p", "picket-node", "--bin", "picket-node"];
        if dir.ends_with("release") {
            args.push("--release");
        }
        let ok = Command::new(cargo).args(args).status().unwrap();
        assert!(ok.success(), "building picket-node");
    }
    bin
}

/// A `picket-node` process; SIGKILLed on drop.
pub struct NodeProc {
    pub id: String,
    pub port: u16,
    pub child: Child,
}

impl NodeProc {
    pub fn start(db_url: &str, id: &str, port: u16) -> NodeProc {
        let listen = format!("127.0.0.1:{port}");
        let child = Command::new(node_bin())
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("DATABASE_URL", db_url)
            .env("PICKET_NODE_ID", id)
            .env("PICKET_NODE_HOST", &listen)
            .env("PICKET_LISTEN", &listen)
            .env("PICKET_API_TOKEN", TOKEN)
            .env("PICKET_MIN_INTERVAL_SECS", "1")
            .env("PICKET_LEASE_TTL_SECS", NODE_LEASE_SECS.to_string())
            .env("PICKET_RECONCILE_MS", RECONCILE_MS.to_string())
            .env("PICKET_HEARTBEAT_FLUSH_MS", "100")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        NodeProc {
            id: id.into(),
            port,
            child,
        }
    }

    pub async fn ready(&self) {
        let url = format!("http://127.0.0.1:{}/api/v1/health", self.port);
        eventually(&format!("{} answers its health check", self.id), || async {
            client()
                .get(&url)
                .send()
                .await
                .is_ok_and(|r| r.status() == 200)
        })
        .await;
    }

    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
    }
}

impl Drop for NodeProc {
    fn drop(&mut self) {
        // A stopped process is woken so the kill is not left pending.
        let _ = Command::new("kill")
            .args(["-CONT", &self.child.id().to_string()])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One check as the target saw it.
#[derive(Debug, Clone)]
pub struct Hit {
    pub at: Instant,
    pub monitor: String,
    pub node: String,
}

/// The monitored target: `/m/{name}` records the hit and answers 200.
pub struct Target {
    pub base: String,
    pub hits: Arc<Mutex<Vec<Hit>>>,
}

impl Target {
    pub async fn start() -> Target {
        let hits: Arc<Mutex<Vec<Hit>>> = Arc::default();
        let h = hits.clone();
        let app = Router::new().route(
            "/m/{name}",
            axum::routing::get(move |Path(name): Path<String>, req: Request| {
                let h = h.clone();
                async move {
                    let ua = req
                        .headers()
                        .get("user-agent")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("");
                    let node = ua
                        .split("(node ")
                        .nth(1)
                        .and_then(|r| r.split(')').next())
                        .unwrap_or("?")
                        .to_owned();
                    h.lock().unwrap().push(Hit {
                        at: Instant::now(),
                        monitor: name,
                        node,
                    });
                    "ok"
                }
            }),
        );
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", l.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(l, app).await });
        Target { base, hits }
    }

    pub fn hits(&self) -> Vec<Hit> {
        self.hits.lock().unwrap().clone()
    }

    /// Nodes that checked `monitor` at or after `since`.
    pub fn nodes_since(&self, monitor: &str, since: Instant) -> BTreeSet<String> {
        self.hits()
            .into_iter()
            .filter(|h| h.monitor == monitor && h.at >= since)
            .map(|h| h.node)
            .collect()
    }
}

/// Fields drop in order: processes before the database they use.
pub struct Cluster {
    /// A `picket-lb` process started before `lb` (so it is the leader).
    pub first_lb: Option<LbProc>,
    pub nodes: Vec<NodeProc>,
    pub lb: LbHandle,
    pub target: Target,
    /// monitor name → home node
    pub homes: BTreeMap<String, String>,
    pub t: TestDb,
}

/// A `picket-lb` process; SIGKILLed on drop.
pub struct LbProc {
    pub url: String,
    pub child: Child,
}

impl LbProc {
    pub async fn start(db_url: &str, id: &str) -> LbProc {
        let port = free_port();
        let child = Command::new(env!("CARGO_BIN_EXE_picket-lb"))
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("DATABASE_URL", db_url)
            .env("PICKET_LB_LISTEN", format!("127.0.0.1:{port}"))
            .env("PICKET_LB_ID", id)
            .env("PICKET_API_TOKEN", TOKEN)
            .env("PICKET_HC_INTERVAL_SECS", HC_SECS.to_string())
            .env("PICKET_HC_TIMEOUT_MS", "500")
            .env("PICKET_LB_LEASE_TTL_SECS", "2")
            .env("PICKET_LB_REFRESH_MS", "100")
            .env("PICKET_LB_THREADS", "1")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let p = LbProc {
            url: format!("http://127.0.0.1:{port}"),
            child,
        };
        eventually(&format!("{id} is the leader"), || async {
            match client()
                .get(format!("{}/lb/health-status", p.url))
                .send()
                .await
            {
                Ok(r) => r.json::<Value>().await.is_ok_and(|j| j["leader"] == true),
                Err(_) => false,
            }
        })
        .await;
        p
    }
}

impl Drop for LbProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub async fn cluster(t: TestDb, per_node: usize) -> Cluster {
    cluster_with(t, per_node, false).await
}

pub async fn cluster_with(t: TestDb, per_node: usize, first_lb: bool) -> Cluster {
    cluster_full(t, per_node, first_lb, HC_SECS).await
}

/// Three nodes with `per_node` monitors each (interval 1 s), a balancer with
/// health checks every `hc_secs`, and every monitor checked once by its home.
pub async fn cluster_full(t: TestDb, per_node: usize, first_lb: bool, hc_secs: u64) -> Cluster {
    let target = Target::start().await;
    let mut nodes = Vec::new();
    for i in 1..=3 {
        nodes.push(NodeProc::start(&t.url, &format!("n{i}"), free_port()));
    }
    for n in &nodes {
        n.ready().await;
    }
    let first_lb = if first_lb {
        Some(LbProc::start(&t.url, "lb-first").await)
    } else {
        None
    };
    let lb = spawn_lb(
        &t.url,
        &[
            "--hc-interval-secs",
            &hc_secs.to_string(),
            "--hc-timeout-ms",
            "500",
            "--hc-fall",
            &FALL.to_string(),
            "--lease-ttl-secs",
            &(2 * hc_secs).to_string(),
        ],
    )
    .await;
    let mut homes = BTreeMap::new();
    for n in &nodes {
        for k in 0..per_node {
            let name = format!("{}-{k}", n.id);
            let body = json!({"name": name, "type": "http", "url": format!("{}/m/{name}", target.base),
                "interval": 1, "retryInterval": 1, "timeout": 0.8, "node_id": n.id});
            let r = client()
                .post(lb.url("/api/v1/monitors"))
                .bearer_auth(TOKEN)
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
            homes.insert(name, n.id.clone());
        }
    }
    let c = Cluster {
        first_lb,
        nodes,
        lb,
        target,
        homes,
        t,
    };
    let start = Instant::now();
    eventually("every monitor checked by its home node", || async {
        c.homes
            .iter()
            .all(|(m, home)| c.target.nodes_since(m, start).contains(home))
    })
    .await;
    c
}

impl Cluster {
    pub fn owned_by(&self, node: &str) -> Vec<String> {
        self.homes
            .iter()
            .filter(|(_, h)| *h == node)
            .map(|(m, _)| m.clone())
            .collect()
    }

    pub async fn status(&self, node: &str) -> NodeStatus {
        self.t
            .db
            .node(&NodeId::from(node))
            .await
            .unwrap()
            .unwrap()
            .status
    }

    /// Owner switches per monitor among hits at or after `since` (hits in
    /// time order; a switch is a hit by a different node than the previous).
    pub fn switches_since(&self, since: Instant) -> BTreeMap<String, usize> {
        let mut last: BTreeMap<String, String> = BTreeMap::new();
        let mut switches: BTreeMap<String, usize> = BTreeMap::new();
        let mut hits = self.target.hits();
        hits.sort_by_key(|h| h.at);
        for h in hits.into_iter().filter(|h| h.at >= since) {
            if let Some(prev) = last.insert(h.monitor.clone(), h.node.clone())
                && prev != h.node
            {
                *switches.entry(h.monitor).or_default() += 1;
            }
        }
        switches
    }
}
