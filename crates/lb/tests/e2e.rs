//! End to end: a real `picket-lb` in front of three real `picket-node`
//! processes over one database, and a target server that records which node
//! checked which monitor (from the `User-Agent` the nodes send) and when.
//!
//! Needs the `picket-node` binary: `cargo test --workspace` builds it; with
//! `-p picket-lb` alone the test builds it first.

mod common;

use axum::Router;
use axum::extract::{Path, Request};
use common::*;
use picket_shared::NodeId;
use picket_shared::model::NodeStatus;
use picket_shared::testing::{TestDb, backends, sqlite};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const FALL: u64 = 3;
const HC_SECS: u64 = 1;
const RECONCILE_MS: u64 = 200;
const NODE_LEASE_SECS: u64 = 3;

fn node_bin() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap();
    let bin = dir.join("picket-node");
    if !bin.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let ok = Command::new(cargo)
            .args(["build", "-p", "picket-node", "--bin", "picket-node"])
            .status()
            .unwrap();
        assert!(ok.success(), "building picket-node");
    }
    bin
}

/// A `picket-node` process; SIGKILLed on drop.
struct NodeProc {
    id: String,
    port: u16,
    child: Child,
}

impl NodeProc {
    fn start(db_url: &str, id: &str, port: u16) -> NodeProc {
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

    async fn ready(&self) {
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

    fn signal(&self, sig: &str) {
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
struct Hit {
    at: Instant,
    monitor: String,
    node: String,
}

/// The monitored target: `/m/{name}` records the hit and answers 200.
struct Target {
    base: String,
    hits: Arc<Mutex<Vec<Hit>>>,
}

impl Target {
    async fn start() -> Target {
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

    fn hits(&self) -> Vec<Hit> {
        self.hits.lock().unwrap().clone()
    }

    /// Nodes that checked `monitor` at or after `since`.
    fn nodes_since(&self, monitor: &str, since: Instant) -> BTreeSet<String> {
        self.hits()
            .into_iter()
            .filter(|h| h.monitor == monitor && h.at >= since)
            .map(|h| h.node)
            .collect()
    }
}

/// Fields drop in order: processes before the database they use.
struct Cluster {
    /// A `picket-lb` process started before `lb` (so it is the leader).
    first_lb: Option<LbProc>,
    nodes: Vec<NodeProc>,
    lb: LbHandle,
    target: Target,
    /// monitor name → home node
    homes: BTreeMap<String, String>,
    t: TestDb,
}

/// A `picket-lb` process; SIGKILLed on drop.
struct LbProc {
    url: String,
    child: Child,
}

impl LbProc {
    async fn start(db_url: &str, id: &str) -> LbProc {
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

async fn cluster(t: TestDb, per_node: usize) -> Cluster {
    cluster_with(t, per_node, false).await
}

async fn cluster_with(t: TestDb, per_node: usize, first_lb: bool) -> Cluster {
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
            &HC_SECS.to_string(),
            "--hc-timeout-ms",
            "500",
            "--hc-fall",
            &FALL.to_string(),
            "--lease-ttl-secs",
            "2",
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
    fn owned_by(&self, node: &str) -> Vec<String> {
        self.homes
            .iter()
            .filter(|(_, h)| *h == node)
            .map(|(m, _)| m.clone())
            .collect()
    }

    async fn status(&self, node: &str) -> NodeStatus {
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
    fn switches_since(&self, since: Instant) -> BTreeMap<String, usize> {
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

#[tokio::test]
async fn sigkill_a_node_its_monitors_move_once_and_come_home_after_restart() {
    for t in backends().await {
        let label = t.label;
        let mut c = cluster(t, 4).await;
        let moved = c.owned_by("n1");

        // SIGKILL n1.
        let killed = Instant::now();
        let mut n1 = c.nodes.remove(0);
        let _ = n1.child.kill();
        let _ = n1.child.wait();
        let bound = Duration::from_millis(FALL * HC_SECS * 1000 + RECONCILE_MS + 5000);
        eventually("every monitor of n1 checked by a survivor", || async {
            moved.iter().all(|m| {
                c.target
                    .nodes_since(m, killed)
                    .iter()
                    .any(|n| n == "n2" || n == "n3")
            })
        })
        .await;
        let took = killed.elapsed();
        eprintln!("{label}: failover took {took:?} (bound {bound:?})");
        assert!(
            took <= bound,
            "{label}: failover took {took:?}, bound {bound:?}"
        );
        assert_eq!(c.status("n1").await, NodeStatus::Offline);
        let counts = c.t.db.owner_counts().await.unwrap();
        let (a, b) = (counts[&NodeId::from("n2")], counts[&NodeId::from("n3")]);
        assert_eq!(a + b, 12, "{label}: {counts:?}");
        assert!(a.abs_diff(b) <= 1, "{label}: {counts:?}");
        // The balancer no longer routes to n1.
        for _ in 0..5 {
            let r = client()
                .get(c.lb.url("/api/v1/health"))
                .send()
                .await
                .unwrap();
            assert_ne!(r.headers()["x-routed-to"], "n1");
        }

        // Restart n1 on the same address: after `rise` passes its monitors
        // come home, and the survivors stop them.
        let back = Instant::now();
        let n1 = NodeProc::start(&c.t.url, "n1", n1.port);
        n1.ready().await;
        eventually("every monitor of n1 checked by n1 again", || async {
            moved
                .iter()
                .all(|m| c.target.nodes_since(m, back).contains("n1"))
        })
        .await;
        let home = Instant::now();
        eventually("n1's monitors checked three more times", || async {
            moved.iter().all(|m| {
                c.target
                    .hits()
                    .iter()
                    .filter(|h| &h.monitor == m && h.at >= home && h.node == "n1")
                    .count()
                    >= 3
            })
        })
        .await;
        // Survivors may finish a check already running at hand-over; after
        // their reconcile interval plus one check interval they are done.
        let quiet = home + Duration::from_millis(RECONCILE_MS + 1500);
        for m in &moved {
            let others: Vec<Hit> = c
                .target
                .hits()
                .into_iter()
                .filter(|h| &h.monitor == m && h.at >= quiet && h.node != "n1")
                .collect();
            assert!(
                others.is_empty(),
                "{label}: {m} still checked elsewhere: {others:?}"
            );
        }
        // Each monitor changed hands at most once per move: away, then back.
        let switches = c.switches_since(killed);
        for (m, n) in &switches {
            let limit = if moved.contains(m) { 2 } else { 0 };
            assert!(*n <= limit, "{label}: {m} switched {n} times: {switches:?}");
        }
        let kinds: Vec<String> = c.lb.get_json("/lb/health-status").await["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["kind"].as_str().unwrap().to_owned())
            .collect();
        for k in ["node_offline", "failover", "node_online", "recovery"] {
            assert!(
                kinds.iter().any(|x| x == k),
                "{label}: no {k} event in {kinds:?}"
            );
        }
        c.nodes.push(n1);
    }
}

#[tokio::test]
async fn a_stopped_node_does_not_run_monitors_that_moved_while_it_was_stopped() {
    let t = sqlite().await;
    let c = cluster(t, 3).await;
    let moved = c.owned_by("n2");
    let n2 = &c.nodes[1];
    n2.signal("-STOP");
    let stopped = Instant::now();
    eventually("n2's monitors checked by the others", || async {
        moved.iter().all(|m| {
            c.target
                .nodes_since(m, stopped)
                .iter()
                .any(|n| n == "n1" || n == "n3")
        })
    })
    .await;
    // Past the node's lease TTL, as seen by the database.
    eventually("n2's lease is stale", || async {
        let n = c.t.db.node(&NodeId::from("n2")).await.unwrap().unwrap();
        picket_shared::now_ms() - n.last_seen > (NODE_LEASE_SECS as i64 + 1) * 1000
    })
    .await;
    n2.signal("-CONT");
    let resumed = Instant::now();
    // Until the balancer has it online again, n2 must not check anything.
    eventually("n2 back online", || async {
        c.status("n2").await == NodeStatus::Online
    })
    .await;
    let online_at = Instant::now();
    let early: Vec<Hit> = c
        .target
        .hits()
        .into_iter()
        .filter(|h| h.node == "n2" && h.at >= resumed && h.at < online_at)
        .collect();
    assert!(
        early.is_empty(),
        "n2 checked while fenced/offline: {early:?}"
    );
    // And then its monitors come home.
    eventually("n2 runs its own monitors again", || async {
        moved
            .iter()
            .all(|m| c.target.nodes_since(m, online_at).contains("n2"))
    })
    .await;
}

#[tokio::test]
async fn a_fourth_node_and_a_rebalance_level_the_cluster_with_the_fewest_moves() {
    let t = sqlite().await;
    let mut c = cluster(t, 3).await;
    let n4 = NodeProc::start(&c.t.url, "n4", free_port());
    n4.ready().await;
    c.lb.update_loads().await;
    let r: Value = client()
        .post(c.lb.url("/api/trigger-rebalancing"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    // 9 monitors over 4 nodes: 3,2,2,2 → exactly two move to n4.
    assert_eq!(r["moved"], 2, "{r}");
    let counts = c.t.db.owner_counts().await.unwrap();
    let v: Vec<usize> = ["n1", "n2", "n3", "n4"]
        .iter()
        .map(|n| counts.get(&NodeId::from(*n)).copied().unwrap_or(0))
        .collect();
    assert!(
        v.iter().max().unwrap() - v.iter().min().unwrap() <= 1,
        "{v:?}"
    );
    let after = Instant::now();
    let to_n4: Vec<String> =
        c.t.db
            .monitors(Some(&NodeId::from("n4")))
            .await
            .unwrap()
            .into_iter()
            .map(|m| m.fields.name.unwrap())
            .collect();
    assert_eq!(to_n4.len(), 2);
    eventually("n4 checks the monitors it was given", || async {
        to_n4
            .iter()
            .all(|m| c.target.nodes_since(m, after).contains("n4"))
    })
    .await;
    c.nodes.push(n4);
}

#[tokio::test]
async fn when_the_leader_balancer_is_killed_the_other_performs_the_next_failover() {
    let t = sqlite().await;
    let mut c = cluster_with(t, 3, true).await;
    let st = c.lb.get_json("/lb/health-status").await;
    assert_eq!(st["leader"], false, "the process started first leads: {st}");
    assert_eq!(st["leader_id"], "lb-first");
    // SIGKILL the leader: it cannot release its lease.
    drop(c.first_lb.take());
    let moved = c.owned_by("n1");
    let mut n1 = c.nodes.remove(0);
    let killed = Instant::now();
    let _ = n1.child.kill();
    let _ = n1.child.wait();
    eventually("every monitor of n1 checked by a survivor", || async {
        moved.iter().all(|m| {
            c.target
                .nodes_since(m, killed)
                .iter()
                .any(|n| n == "n2" || n == "n3")
        })
    })
    .await;
    eprintln!(
        "failover with a leader hand-over took {:?}",
        killed.elapsed()
    );
    let st = c.lb.get_json("/lb/health-status").await;
    assert_eq!(st["leader"], true, "{st}");
    let failover = st["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "failover")
        .cloned();
    assert!(failover.is_some(), "{st}");
    assert_eq!(c.status("n1").await, NodeStatus::Offline);
}
