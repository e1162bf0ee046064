//! Micro-benchmarks of the pure decisions on hot or large paths:
//! `cargo bench -p picket-benches --bench micro`.

use criterion::{Criterion, criterion_group, criterion_main};
use picket_lb::view::{NodeEntry, NodeView};
use picket_node::beat::{self, BeatState};
use picket_shared::model::{NodeHealth, NodeStatus};
use picket_shared::monitor::{Limits, MonitorFields, MonitorKind};
use picket_shared::placement;
use picket_shared::{MonitorId, NodeId};
use std::collections::BTreeMap;
use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::AtomicI64;

const MONITORS: i64 = 100_000;
const NODES: usize = 50;

fn node(i: usize) -> NodeId {
    NodeId(format!("node{i:02}"))
}

fn placement_benches(c: &mut Criterion) {
    // Failover: one node of 50 dies with its 2,000 monitors; 49 uneven survivors.
    let survivors: BTreeMap<NodeId, usize> =
        (1..NODES).map(|i| (node(i), 1_000 + i * 37)).collect();
    let orphans: Vec<MonitorId> = (0..MONITORS / NODES as i64).map(MonitorId).collect();
    c.bench_function("plan_failover 2k orphans over 49 nodes", |b| {
        b.iter(|| placement::plan_failover(black_box(&orphans), black_box(&survivors)))
    });

    // Rebalance 100,000 monitors over 50 nodes, badly skewed (half on 5 nodes).
    let mut owned: BTreeMap<NodeId, Vec<MonitorId>> =
        (0..NODES).map(|i| (node(i), Vec::new())).collect();
    for m in 0..MONITORS {
        let n = if m % 2 == 0 {
            (m % 5) as usize
        } else {
            (m % NODES as i64) as usize
        };
        owned.get_mut(&node(n)).unwrap().push(MonitorId(m));
    }
    c.bench_function("plan_rebalance 100k monitors over 50 nodes", |b| {
        b.iter(|| placement::plan_rebalance(black_box(&owned)))
    });
    let all: Vec<MonitorId> = (0..MONITORS).map(MonitorId).collect();
    let nodes: Vec<NodeId> = (0..NODES).map(node).collect();
    c.bench_function("plan_rebalance_all 100k monitors over 50 nodes", |b| {
        b.iter(|| placement::plan_rebalance_all(black_box(&all), black_box(&nodes)))
    });
}

fn routing_benches(c: &mut Criterion) {
    let view = NodeView {
        nodes: (0..NODES)
            .map(|i| NodeEntry {
                node_id: node(i),
                node_name: node(i).0,
                host: format!("10.0.0.{i}:3001"),
                status: if i % 10 == 3 {
                    NodeStatus::Offline
                } else {
                    NodeStatus::Online
                },
                last_seen: 0,
                monitor_count: 2_000 + (i * 7919) % 50,
                addr: Ok(format!("10.0.0.{i}:3001").parse().unwrap()),
                health: NodeHealth::default(),
                inflight: Arc::new(AtomicI64::new((i % 3) as i64)),
            })
            .collect(),
        ..Default::default()
    };
    c.bench_function("route pick among 50 nodes", |b| {
        b.iter(|| black_box(&view).pick(None, &[]).map(|n| n.monitor_count))
    });
    c.bench_function("route pick pinned", |b| {
        b.iter(|| {
            black_box(&view)
                .pick(Some("node17"), &[])
                .map(|n| n.monitor_count)
        })
    });
}

fn evaluation_benches(c: &mut Criterion) {
    let fields = MonitorFields::from_json(serde_json::json!({
        "name": "web", "type": "http", "url": "https://example.com/health",
        "accepted_statuscodes": ["200-299", "301", "404"], "interval": 20, "maxretries": 2
    }))
    .unwrap();
    let spec = fields.parse(&Limits::STORED).unwrap();
    let MonitorKind::Http(http) = &spec.kind else {
        unreachable!()
    };
    c.bench_function("http status acceptance + retry decision", |b| {
        let mut st = BeatState::default();
        let mut code = 200u16;
        b.iter(|| {
            code = if code == 200 { 503 } else { 200 };
            let up = http.accepts(black_box(code));
            let beat = beat::decide(st, up, 2, 20, 20);
            st = beat.next;
            beat.important
        })
    });
    c.bench_function("monitor validation (parse)", |b| {
        b.iter(|| black_box(&fields).parse(&Limits::STORED))
    });
}

criterion_group!(
    benches,
    placement_benches,
    routing_benches,
    evaluation_benches
);
criterion_main!(benches);
