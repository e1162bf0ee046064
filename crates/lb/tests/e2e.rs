//! End to end: a real `picket-lb` in front of three real `picket-node`
//! processes over one database, and a target server that records which node
//! checked which monitor (from the `User-Agent` the nodes send) and when.
//!
//! Needs the `picket-node` binary: `cargo test --workspace` builds it; with
//! `-p picket-lb` alone the test builds it first.

use picket_shared::NodeId;
use picket_shared::model::NodeStatus;
use picket_testkit::db::{backends, sqlite};
use picket_testkit::lb::*;
use picket_testkit::net::*;
use picket_testkit::{WAIT, eventually};
use serde_json::Value;
use std::time::{Duration, Instant};

use picket_testkit::cluster::*;

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
        eventually(
            WAIT,
            "every monitor of n1 checked by a survivor",
            || async {
                moved.iter().all(|m| {
                    c.target
                        .nodes_since(m, killed)
                        .iter()
                        .any(|n| n == "n2" || n == "n3")
                })
            },
        )
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
        eventually(WAIT, "every monitor of n1 checked by n1 again", || async {
            moved
                .iter()
                .all(|m| c.target.nodes_since(m, back).contains("n1"))
        })
        .await;
        let home = Instant::now();
        eventually(WAIT, "n1's monitors checked three more times", || async {
            moved.iter().all(|m| {
                c.target
                    .timeline()
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
                .timeline()
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
    eventually(WAIT, "n2's monitors checked by the others", || async {
        moved.iter().all(|m| {
            c.target
                .nodes_since(m, stopped)
                .iter()
                .any(|n| n == "n1" || n == "n3")
        })
    })
    .await;
    // Past the node's lease TTL, as seen by the database.
    eventually(WAIT, "n2's lease is stale", || async {
        let n = c.t.db.node(&NodeId::from("n2")).await.unwrap().unwrap();
        picket_shared::now_ms() - n.last_seen > (NODE_LEASE_SECS as i64 + 1) * 1000
    })
    .await;
    n2.signal("-CONT");
    let resumed = Instant::now();
    // Until the balancer has it online again, n2 must not check anything.
    eventually(WAIT, "n2 back online", || async {
        c.status("n2").await == NodeStatus::Online
    })
    .await;
    let online_at = Instant::now();
    let early: Vec<Hit> = c
        .target
        .timeline()
        .into_iter()
        .filter(|h| h.node == "n2" && h.at >= resumed && h.at < online_at)
        .collect();
    assert!(
        early.is_empty(),
        "n2 checked while fenced/offline: {early:?}"
    );
    // And then its monitors come home.
    eventually(WAIT, "n2 runs its own monitors again", || async {
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
    let r: Value =
        c.lb.post_admin("/api/trigger-rebalancing")
            .await
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
    eventually(WAIT, "n4 checks the monitors it was given", || async {
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
    eventually(
        WAIT,
        "every monitor of n1 checked by a survivor",
        || async {
            moved.iter().all(|m| {
                c.target
                    .nodes_since(m, killed)
                    .iter()
                    .any(|n| n == "n2" || n == "n3")
            })
        },
    )
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
