//! A whole cluster of real processes over one database: three
//! `picket-node`s, a balancer (and optionally a second, leading one), and the
//! farm as the target that records which node checked which monitor. Used by
//! the end-to-end tests and the failover benchmark.

use crate::db::TestDb;
use crate::farm::Farm;
pub use crate::farm::Hit;
pub use crate::lb::{HC_SECS, LbProc};
pub use crate::node::{NODE_LEASE_SECS, NodeProc, RECONCILE_MS};

use crate::lb::{LbHandle, spawn_lb};
use crate::net::{client, free_port};
use crate::{TOKEN, WAIT, eventually};
use picket_shared::NodeId;
use picket_shared::model::NodeStatus;
use serde_json::json;
use std::collections::BTreeMap;
use std::time::Instant;

/// Strikes before the balancer takes a node offline, in these tests.
pub const FALL: u64 = 3;

/// Fields drop in order: processes before the database they use.
pub struct Cluster {
    /// A `picket-lb` process started before `lb` (so it is the leader).
    pub first_lb: Option<LbProc>,
    pub nodes: Vec<NodeProc>,
    pub lb: LbHandle,
    pub target: Farm,
    /// monitor name → home node
    pub homes: BTreeMap<String, String>,
    pub t: TestDb,
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
    let target = Farm::start().await.expect("farm");
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
    // Monitors are created through the balancer: it must route already.
    eventually(WAIT, "the balancer routes to all three nodes", || async {
        lb.update_loads().await;
        let v = lb.get_json("/lb/health").await;
        v["nodes"]
            .as_array()
            .is_some_and(|n| n.iter().filter(|x| x["status"] == "online").count() == 3)
    })
    .await;
    let mut homes = BTreeMap::new();
    for n in &nodes {
        for k in 0..per_node {
            let name = format!("{}-{k}", n.id);
            let body = json!({"name": name, "type": "http", "url": target.url(&name),
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
    eventually(WAIT, "every monitor checked by its home node", || async {
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
        for h in self.target.timeline().into_iter().filter(|h| h.at >= since) {
            if let Some(prev) = last.insert(h.monitor.clone(), h.node.clone())
                && prev != h.node
            {
                *switches.entry(h.monitor).or_default() += 1;
            }
        }
        switches
    }
}
