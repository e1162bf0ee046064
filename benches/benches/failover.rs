//! Failover timing with real processes: three `picket-node`s (4 monitors
//! each, interval 1 s) behind a balancer on SQLite; SIGKILL n1, measure until
//! the last of its monitors is checked by a survivor, restart it, let its
//! monitors come home; repeat. At `hc_interval` 1 s and 5 s (fall = rise = 3).
//!
//! `cargo bench -p picket-benches --bench failover [-- RUNS]` (default 5 runs each).
//! Prints a Markdown table for BENCHMARKS.md.

use picket_testkit::cluster::*;
use picket_testkit::eventually;
use std::time::{Duration, Instant};

/// Long enough for `rise` rounds at a 5 s interval.
const LIMIT: Duration = Duration::from_secs(90);

struct Run {
    failover: Duration,
    longest_gap: Duration,
    dup_failover: usize,
    dup_recovery: usize,
}

async fn one_run(c: &mut Cluster) -> Run {
    let moved = c.owned_by("n1");
    let idx = c.nodes.iter().position(|n| n.id == "n1").unwrap();
    let mut n1 = c.nodes.remove(idx);
    let port = n1.port;
    let before = Instant::now() - Duration::from_secs(3);
    let killed = Instant::now();
    let _ = n1.child.kill();
    let _ = n1.child.wait();
    drop(n1);
    eventually(LIMIT, "survivors check every moved monitor", || async {
        moved
            .iter()
            .all(|m| c.target.nodes_since(m, killed).iter().any(|n| n != "n1"))
    })
    .await;
    let hits = c.target.timeline();
    let first_survivor = |m: &str| {
        hits.iter()
            .filter(|h| h.monitor == m && h.at >= killed && h.node != "n1")
            .map(|h| h.at)
            .min()
            .unwrap()
    };
    let done = moved.iter().map(|m| first_survivor(m)).max().unwrap();
    let failover = done - killed;
    let mut longest_gap = Duration::ZERO;
    let mut dup_failover = 0;
    for m in &moved {
        let mut ts: Vec<&picket_testkit::farm::Hit> = hits
            .iter()
            .filter(|h| &h.monitor == m && h.at >= before && h.at <= done)
            .collect();
        ts.sort_by_key(|h| h.at);
        for w in ts.windows(2) {
            longest_gap = longest_gap.max(w[1].at - w[0].at);
            // Two different nodes within one interval: a duplicate execution.
            if w[0].node != w[1].node && w[1].at - w[0].at < Duration::from_millis(900) {
                dup_failover += 1;
            }
        }
    }

    // Bring n1 back and wait until its monitors are home and steady.
    let back = Instant::now();
    let n1 = NodeProc::start(&c.t.url, "n1", port);
    n1.ready().await;
    c.nodes.push(n1);
    eventually(LIMIT, "n1 checks its monitors again", || async {
        moved
            .iter()
            .all(|m| c.target.nodes_since(m, back).contains("n1"))
    })
    .await;
    let home = Instant::now();
    eventually(LIMIT, "steady after the return", || async {
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
    // Hand-over duplicates: checks by the interim owner after n1's first one.
    let hits = c.target.timeline();
    let mut dup_recovery = 0;
    for m in &moved {
        let first_n1 = hits
            .iter()
            .filter(|h| &h.monitor == m && h.at >= back && h.node == "n1")
            .map(|h| h.at)
            .min()
            .unwrap();
        dup_recovery += hits
            .iter()
            .filter(|h| &h.monitor == m && h.at > first_n1 && h.node != "n1")
            .count();
    }
    Run {
        failover,
        longest_gap,
        dup_failover,
        dup_recovery,
    }
}

fn ms(d: Duration) -> String {
    format!("{:.0}", d.as_secs_f64() * 1000.0)
}

fn main() {
    let runs: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(5);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        println!("| hc_interval | runs | failover p50 ms | failover max ms | longest gap max ms | duplicates at failover | duplicates at return (total) |");
        println!("| --- | --- | --- | --- | --- | --- | --- |");
        for hc in [1u64, 5] {
            let t = picket_testkit::db::sqlite().await;
            let mut c = cluster_full(t, 4, false, hc).await;
            let mut rs = Vec::new();
            for i in 0..runs {
                let r = one_run(&mut c).await;
                eprintln!(
                    "hc {hc}s run {i}: failover {} ms, longest gap {} ms, dup {} / {}",
                    ms(r.failover),
                    ms(r.longest_gap),
                    r.dup_failover,
                    r.dup_recovery
                );
                rs.push(r);
            }
            let mut f: Vec<Duration> = rs.iter().map(|r| r.failover).collect();
            f.sort();
            println!(
                "| {hc} s | {runs} | {} | {} | {} | {} | {} |",
                ms(f[f.len() / 2]),
                ms(*f.last().unwrap()),
                ms(rs.iter().map(|r| r.longest_gap).max().unwrap()),
                rs.iter().map(|r| r.dup_failover).sum::<usize>(),
                rs.iter().map(|r| r.dup_recovery).sum::<usize>(),
            );
        }
    });
}
