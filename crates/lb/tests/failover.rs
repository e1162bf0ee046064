//! The health checker, failover, recovery, rebalancing and the leader lease,
//! with stand-in nodes whose health the test switches. Rounds are driven with
//! `POST /lb/trigger-health-check`, so no test waits for a timer.

use picket_shared::NodeId;
use picket_shared::db::{ClusterMove, Db};
use picket_shared::model::NodeStatus;
use picket_testkit::db::{backends, sqlite};
use picket_testkit::lb::*;
use picket_testkit::monitors::*;
use picket_testkit::net::*;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

async fn round(lb: &LbHandle) -> Value {
    let r = lb.post_admin("/lb/trigger-health-check").await;
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

/// Owned active monitors per node (effective owner).
async fn owned(db: &Db) -> BTreeMap<String, usize> {
    db.owner_counts()
        .await
        .unwrap()
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
}

async fn status(db: &Db, id: &str) -> NodeStatus {
    db.node(&NodeId::from(id)).await.unwrap().unwrap().status
}

async fn three_nodes(db: &Db) -> (Backend, Backend, Backend) {
    let (a, b, c) = (backend("a").await, backend("b").await, backend("c").await);
    register(db, "a", &a.addr.to_string()).await;
    register(db, "b", &b.addr.to_string()).await;
    register(db, "c", &c.addr.to_string()).await;
    (a, b, c)
}

const PACE: [&str; 8] = [
    "--hc-interval-secs",
    "3600",
    "--lease-ttl-secs",
    "7200",
    "--hc-rise",
    "2",
    "--hc-timeout-ms",
    "1000",
];

#[tokio::test]
async fn three_strikes_fail_over_evenly_and_recovery_brings_monitors_home() {
    for t in backends().await {
        let (a, _b, _c) = three_nodes(&t.db).await;
        monitors_on(&t.db, "a", 6).await;
        monitors_on(&t.db, "b", 3).await;
        monitors_on(&t.db, "c", 0).await;
        let lb = spawn_lb(&t.url, &PACE).await;
        lb.update_loads().await;
        lb.settled().await;
        lb.settled().await;
        let r = round(&lb).await;
        assert_eq!(r["leader"], true, "{}: {r}", t.label);

        a.healthy.store(false, Ordering::SeqCst);
        for strike in 1..=2 {
            let r = round(&lb).await;
            assert_eq!(
                status(&t.db, "a").await,
                NodeStatus::Online,
                "after strike {strike}"
            );
            assert_eq!(r["failed_over"], 0);
        }
        let r = round(&lb).await;
        assert_eq!(
            status(&t.db, "a").await,
            NodeStatus::Offline,
            "{}: {r}",
            t.label
        );
        assert_eq!(r["failed_over"], 6, "{r}");
        // 9 monitors over b and c: 5/4 (c, the emptier, got 5 of a's 6... or
        // 4 + 1); either way within one.
        let o = owned(&t.db).await;
        assert_eq!(o.get("a"), None, "{o:?}");
        assert_eq!(o["b"] + o["c"], 9);
        assert!(o["b"].abs_diff(o["c"]) <= 1, "{o:?}");
        // Out of routing at once.
        for _ in 0..5 {
            assert_ne!(lb.routed("/").await.0, "a");
        }
        let hs = lb.get_json("/lb/health-status").await;
        let na = &hs["nodes"][0];
        assert_eq!(na["node_id"], "a");
        assert_eq!(na["consecutive_failures"], 3);
        assert_eq!(na["last_ok"], false);
        let kinds: Vec<&str> = hs["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["kind"].as_str().unwrap())
            .collect();
        assert!(
            kinds.contains(&"node_offline") && kinds.contains(&"failover"),
            "{kinds:?}"
        );

        // A further round moves nothing (level-triggered, already settled).
        assert_eq!(round(&lb).await["failed_over"], 0);

        // Back: `rise` (2) passes, then its six monitors go home.
        a.healthy.store(true, Ordering::SeqCst);
        round(&lb).await;
        assert_eq!(status(&t.db, "a").await, NodeStatus::Offline);
        let r = round(&lb).await;
        assert_eq!(status(&t.db, "a").await, NodeStatus::Online, "{r}");
        assert_eq!(r["recovered"], 6, "{r}");
        let o = owned(&t.db).await;
        assert_eq!((o["a"], o["b"]), (6, 3), "{}: {o:?}", t.label);
        assert!(
            t.db.ownership(true)
                .await
                .unwrap()
                .iter()
                .all(|m| m.assign_node.is_none())
        );
    }
}

#[tokio::test]
async fn recovery_is_level_triggered_for_a_node_that_came_back_by_itself() {
    // A node that left gracefully and restarted marks itself online: no
    // transition for the checker to see, but its monitors must still go home.
    let t = sqlite().await;
    let (_a, _b, _c) = three_nodes(&t.db).await;
    monitors_on(&t.db, "a", 4).await;
    let lb = spawn_lb(&t.url, &PACE).await;
    lb.update_loads().await;
    lb.settled().await;
    t.db.set_node_status(&NodeId::from("a"), NodeStatus::Leaving)
        .await
        .unwrap();
    let r = round(&lb).await;
    assert_eq!(
        r["failed_over"], 4,
        "a leaving node's monitors move at once: {r}"
    );
    assert_eq!(
        status(&t.db, "a").await,
        NodeStatus::Leaving,
        "probes do not revive it"
    );
    round(&lb).await;
    assert_eq!(status(&t.db, "a").await, NodeStatus::Leaving);
    // It restarts and registers itself online.
    register(&t.db, "a", &_a.addr.to_string()).await;
    let r = round(&lb).await;
    assert_eq!(r["recovered"], 4, "{r}");
    assert_eq!(owned(&t.db).await["a"], 4);
}

#[tokio::test]
async fn panic_threshold_freezes_failover() {
    let t = sqlite().await;
    let (a, b, _c) = three_nodes(&t.db).await;
    monitors_on(&t.db, "a", 2).await;
    monitors_on(&t.db, "b", 2).await;
    let lb = spawn_lb(&t.url, &PACE).await;
    lb.update_loads().await;
    lb.settled().await;
    round(&lb).await;
    a.healthy.store(false, Ordering::SeqCst);
    b.healthy.store(false, Ordering::SeqCst);
    for _ in 0..4 {
        let r = round(&lb).await;
        assert_eq!(r["panic"], true, "{r}");
        assert_eq!(r["failed_over"], 0);
    }
    assert_eq!(status(&t.db, "a").await, NodeStatus::Online);
    assert_eq!(status(&t.db, "b").await, NodeStatus::Online);
    assert_eq!(owned(&t.db).await.get("c"), None);
    let hs = lb.get_json("/lb/health-status").await;
    assert_eq!(hs["panic"]["active"], true);
    assert_eq!(hs["panic"]["failing"], 2);
    assert!(
        hs["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "panic")
    );
    // One recovers: no longer a panic, and the other (already past `fall`)
    // goes offline and fails over now.
    a.healthy.store(true, Ordering::SeqCst);
    let r = round(&lb).await;
    assert_eq!(r["panic"], false, "{r}");
    assert_eq!(status(&t.db, "b").await, NodeStatus::Offline);
    assert_eq!(r["failed_over"], 2);
}

#[tokio::test]
async fn rebalancing_moves_the_minimum_and_force_all_deals_evenly() {
    for t in backends().await {
        let (_a, _b, _c) = three_nodes(&t.db).await;
        monitors_on(&t.db, "a", 6).await;
        monitors_on(&t.db, "b", 3).await;
        monitors_on(&t.db, "c", 3).await;
        let d = backend("d").await;
        register(&t.db, "d", &d.addr.to_string()).await;
        let lb = spawn_lb(&t.url, &PACE).await;
        lb.update_loads().await;
        lb.settled().await;
        lb.settled().await;
        round(&lb).await;
        let url = lb.url("/api/trigger-rebalancing");
        assert_eq!(client().post(&url).send().await.unwrap().status(), 401);
        let r: Value = lb
            .post_admin("/api/trigger-rebalancing")
            .await
            .json()
            .await
            .unwrap();
        // 12 over 4 = 3 each: a gives exactly 3, to d.
        assert_eq!(r["moved"], 3, "{}: {r}", t.label);
        assert_eq!(r["before"]["a"], 6);
        assert_eq!(r["after"]["d"], 3);
        let o = owned(&t.db).await;
        assert!(o.values().all(|&n| n == 3), "{o:?}");
        let st = lb.get_json("/api/rebalancing-status").await;
        assert_eq!(st["running"], false);
        assert_eq!(st["last"]["moved"], 3);
        // Balanced already: nothing to move.
        let r: Value = lb
            .post_admin("/api/trigger-rebalancing")
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(r["moved"], 0, "{r}");
        // Force-all re-homes everything evenly (dealt in id order).
        let r: Value = lb
            .post_admin("/api/force-rebalance-all")
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(r["kind"], "rebalance_all");
        let o = owned(&t.db).await;
        assert!(o.values().all(|&n| n == 3), "{o:?}");
    }
}

#[tokio::test]
async fn strike_counters_survive_a_balancer_restart() {
    let t = sqlite().await;
    let (a, _b, _c) = three_nodes(&t.db).await;
    monitors_on(&t.db, "a", 1).await;
    a.healthy.store(false, Ordering::SeqCst);
    // The restarted balancer keeps its identity, so it takes its own leader
    // lease back at once (a stop with no grace period may not release it).
    let mut flags = PACE.to_vec();
    flags.extend(["--lb-id", "lb-restarted"]);
    {
        let lb = spawn_lb(&t.url, &flags).await;
        lb.update_loads().await;
        lb.settled().await;
        lb.settled().await;
        // The first round may or may not have probed before the view was
        // built; count strikes from the database instead of rounds.
        while t
            .db
            .node(&NodeId::from("a"))
            .await
            .unwrap()
            .unwrap()
            .health
            .fails
            < 2
        {
            round(&lb).await;
        }
    }
    assert_eq!(status(&t.db, "a").await, NodeStatus::Online);
    let lb = spawn_lb(&t.url, &flags).await;
    lb.update_loads().await;
    lb.settled().await;
    let r = round(&lb).await;
    assert_eq!(status(&t.db, "a").await, NodeStatus::Offline, "{r}");
}

#[tokio::test]
async fn only_the_leader_acts_and_another_takes_over_when_it_stops() {
    let t = sqlite().await;
    let (a, _b, _c) = three_nodes(&t.db).await;
    monitors_on(&t.db, "a", 3).await;
    // A grace period, so that the stopping leader gets to release its lease.
    let pace: Vec<&str> = PACE
        .iter()
        .copied()
        .chain(["--grace-period-secs", "1"])
        .collect();
    let lb1 = spawn_lb(&t.url, &pace).await;
    let lb2 = spawn_lb(&t.url, &pace).await;
    lb1.update_loads().await;
    lb2.update_loads().await;
    lb1.settled().await;
    lb2.settled().await;
    let (r1, r2) = (round(&lb1).await, round(&lb2).await);
    assert_ne!(r1["leader"], r2["leader"], "exactly one leader: {r1} {r2}");
    let (leader, follower) = if r1["leader"] == true {
        (lb1, lb2)
    } else {
        (lb2, lb1)
    };
    // Both proxy and both answer the status endpoints.
    assert_eq!(follower.routed("/").await.1.len(), 1);
    let fs = follower.get_json("/lb/health-status").await;
    assert_eq!(fs["leader"], false);
    assert!(fs["leader_id"].is_string());
    // The follower does not fail over, whatever its rounds see.
    a.healthy.store(false, Ordering::SeqCst);
    for _ in 0..4 {
        assert_eq!(round(&follower).await["leader"], false);
    }
    assert_eq!(status(&t.db, "a").await, NodeStatus::Online);
    // The leader stops (releasing its lease); the follower's next round takes
    // over and performs the failover.
    drop(leader);
    let mut moved = 0;
    for _ in 0..3 {
        let r = round(&follower).await;
        assert_eq!(r["leader"], true, "{r}");
        moved += r["failed_over"].as_u64().unwrap();
    }
    assert_eq!(status(&t.db, "a").await, NodeStatus::Offline);
    assert_eq!(moved, 3);
}

#[tokio::test]
async fn a_rebalance_sent_to_a_follower_is_carried_out_by_the_leader() {
    for t in backends().await {
        let (_a, _b, _c) = three_nodes(&t.db).await;
        monitors_on(&t.db, "a", 6).await;
        let lb1 = spawn_lb(&t.url, &PACE).await;
        let lb2 = spawn_lb(&t.url, &PACE).await;
        for lb in [&lb1, &lb2] {
            lb.update_loads().await;
            lb.settled().await;
        }
        let (r1, r2) = (round(&lb1).await, round(&lb2).await);
        assert_ne!(r1["leader"], r2["leader"], "{}: {r1} {r2}", t.label);
        let follower = if r1["leader"] == true { &lb2 } else { &lb1 };
        let leader_id = follower.get_json("/lb/health-status").await["leader_id"].clone();
        assert!(leader_id.is_string(), "{leader_id}");

        let r = follower.post_admin("/api/trigger-rebalancing").await;
        assert_eq!(r.status(), 200, "{}", t.label);
        let j: Value = r.json().await.unwrap();
        assert_eq!(j["by"], leader_id, "{j}");
        assert_eq!(j["kind"], "rebalance");
        assert_eq!(j["moved"], 4, "{j}");
        let o = owned(&t.db).await;
        assert!(o.values().all(|&n| n == 2), "{}: {o:?}", t.label);
        let st = follower.get_json("/lb/rebalancing-status").await;
        assert_eq!(st["last"]["by"], leader_id, "{st}");

        let r = follower.post_admin("/api/force-rebalance-all").await;
        assert_eq!(r.status(), 200);
        let j: Value = r.json().await.unwrap();
        assert_eq!(
            (&j["kind"], &j["by"]),
            (&"rebalance_all".into(), &leader_id)
        );

        // The leader's refusal comes back with its status and message.
        for n in ["a", "b", "c"] {
            t.db.set_node_status(&NodeId::from(n), NodeStatus::Offline)
                .await
                .unwrap();
        }
        let r = follower.post_admin("/api/trigger-rebalancing").await;
        assert_eq!(r.status(), 409, "{}", t.label);
        let j: Value = r.json().await.unwrap();
        assert_eq!(j["ok"], false);
        assert!(j["msg"].as_str().unwrap().contains("no online node"), "{j}");
    }
}

#[tokio::test]
async fn auto_rebalance_levels_the_cluster_when_a_node_joins() {
    let t = sqlite().await;
    let (_a, _b, _c) = three_nodes(&t.db).await;
    monitors_on(&t.db, "a", 4).await;
    monitors_on(&t.db, "b", 4).await;
    monitors_on(&t.db, "c", 4).await;
    let pace: Vec<&str> = PACE
        .iter()
        .copied()
        .chain(["--auto-rebalance", "true"])
        .collect();
    let lb = spawn_lb(&t.url, &pace).await;
    lb.update_loads().await;
    lb.settled().await;
    assert_eq!(
        round(&lb).await["auto_rebalance"],
        Value::Null,
        "no join yet"
    );
    let d = backend("d").await;
    register(&t.db, "d", &d.addr.to_string()).await;
    lb.update_loads().await;
    let r = round(&lb).await;
    assert_eq!(r["auto_rebalance"]["moved"], 3, "{r}");
    let o = owned(&t.db).await;
    assert!(o.values().all(|&n| n == 3), "{o:?}");
}

#[tokio::test]
async fn a_half_applied_failover_is_completed_by_the_next_pass() {
    // As if a balancer died after the first batch: a is offline, two of its
    // four monitors were re-assigned, two still point at it.
    let t = sqlite().await;
    let (a, _b, _c) = three_nodes(&t.db).await;
    a.healthy.store(false, Ordering::SeqCst);
    monitors_on(&t.db, "a", 4).await;
    t.db.set_node_status(&NodeId::from("a"), NodeStatus::Offline)
        .await
        .unwrap();
    let ids: Vec<_> =
        t.db.ownership(true)
            .await
            .unwrap()
            .iter()
            .map(|o| o.monitor)
            .collect();
    let half = [0, 1].map(|i| ClusterMove::Assign {
        monitor: ids[i],
        from: NodeId::from("a"),
        to: NodeId::from("b"),
    });
    assert_eq!(t.db.apply_moves(&half, None).await.unwrap(), 2);
    let lb = spawn_lb(&t.url, &PACE).await;
    lb.update_loads().await;
    lb.settled().await;
    round(&lb).await;
    // Every monitor has an online owner, and the fill evened out b and c.
    let o = owned(&t.db).await;
    assert_eq!(o.get("a"), None, "{o:?}");
    assert_eq!((o["b"], o["c"]), (2, 2), "{o:?}");
    assert_eq!(status(&t.db, "a").await, NodeStatus::Offline);
    let hs = lb.get_json("/lb/health-status").await;
    assert!(
        hs["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "failover"),
        "{hs}"
    );
}
