//! Uptime aggregates, certificate facts and retention against real SQLite and
//! MariaDB databases, checked against hand-computed expectations.

use picket_shared::db::aggregate;
use picket_shared::model::{Heartbeat, Status, TlsInfo, WindowStats};
use picket_shared::monitor::ValidMonitor;
use picket_shared::{MonitorId, NodeId};
use picket_testkit::db::{REFUSED_MSG, allow_heartbeats, backends, refuse_heartbeats};

const MIN: i64 = 60_000;
const HOUR: i64 = 60 * MIN;
const DAY: i64 = 24 * HOUR;

fn tls(days_remaining: i64, valid: bool, not_after: i64, checked_at: i64) -> TlsInfo {
    TlsInfo {
        days_remaining,
        valid,
        not_after,
        checked_at,
    }
}

fn monitor(name: &str, node: &str) -> ValidMonitor {
    monitor_at(name, node, "http://127.0.0.1:1/")
}

fn monitor_at(name: &str, node: &str, url: &str) -> ValidMonitor {
    picket_testkit::monitors::http(name, Some(node), url)
}

fn beat(m: MonitorId, node: &str, time: i64, status: Status, ping: Option<f64>) -> Heartbeat {
    Heartbeat {
        monitor_id: m,
        node_id: NodeId::from(node),
        status,
        time,
        ping,
        msg: String::new(),
        important: false,
        duration: 0,
        retries: 0,
    }
}

fn w(up: i64, down: i64, ping_sum: f64, ping_count: i64) -> WindowStats {
    WindowStats {
        up,
        down,
        ping_sum,
        ping_count,
    }
}

#[test]
fn beats_fold_into_buckets() {
    let m = MonitorId(1);
    let t0 = 100 * DAY;
    let beats = [
        beat(m, "a", t0 + 1_000, Status::Up, Some(10.0)),
        beat(m, "a", t0 + 59_999, Status::Pending, None),
        beat(m, "a", t0 + MIN, Status::Maintenance, None),
        beat(m, "a", t0 + MIN + 1, Status::Up, None),
    ];
    let rows = aggregate(&beats, MIN);
    let got: Vec<_> = rows.iter().map(|r| (r.ts, r.stats)).collect();
    assert_eq!(got, [(t0, w(1, 1, 10.0, 1)), (t0 + MIN, w(2, 0, 0.0, 0))]);
    assert_eq!(aggregate(&beats, DAY).len(), 1);
}

#[tokio::test]
async fn uptime_comes_from_the_aggregates_and_matches_a_hand_count() {
    for t in backends().await {
        let db = &t.db;
        let n = NodeId::from("a");
        db.register_node(&n, "a", "127.0.0.1:1").await.unwrap();
        let m = db.create_monitor(&monitor("m", "a")).await.unwrap().id;
        let other = db.create_monitor(&monitor("o", "a")).await.unwrap().id;
        // Noon, so the 24 h, 7 d and 30 d windows cut through whole buckets
        // where it matters below.
        let now = 20_000 * DAY + 12 * HOUR;
        let beats = [
            beat(m, "a", now - 10 * MIN, Status::Up, Some(100.0)),
            beat(m, "a", now - 10 * MIN + 10_000, Status::Up, Some(200.0)),
            beat(m, "a", now - 2 * HOUR, Status::Down, None),
            beat(m, "a", now - 3 * DAY, Status::Up, Some(50.0)),
            beat(m, "a", now - 3 * DAY, Status::Pending, None),
            beat(m, "a", now - 20 * DAY, Status::Down, None),
            beat(m, "a", now - 20 * DAY, Status::Up, Some(10.0)),
            beat(m, "a", now - 40 * DAY, Status::Up, Some(1.0)),
            beat(other, "a", now - MIN, Status::Down, None),
        ];
        // Written in two batches so the second adds to existing buckets.
        assert_eq!(db.insert_heartbeats(&beats[..1]).await.unwrap(), 1);
        assert_eq!(db.insert_heartbeats(&beats[1..]).await.unwrap(), 8);
        // A beat from a node that does not own the monitor is refused, and
        // not counted either.
        let stray = beat(m, "b", now - MIN, Status::Down, None);
        assert_eq!(db.insert_heartbeats(&[stray]).await.unwrap(), 0);

        let all = db.uptime(now, None).await.unwrap();
        let u = all[&m];
        // 24 h: UP 100, UP 200, DOWN.
        assert_eq!(u.day, w(2, 1, 300.0, 2), "{}", t.label);
        // 7 d adds 3 days ago: UP 50, PENDING (counts as down).
        assert_eq!(u.week, w(3, 2, 350.0, 3), "{}", t.label);
        // 30 d adds 20 days ago: DOWN, UP 10; 40 days ago is outside.
        assert_eq!(u.month, w(4, 3, 360.0, 4), "{}", t.label);
        assert_eq!(u.day.uptime(), Some(2.0 / 3.0));
        assert_eq!(u.week.avg_ping(), Some(350.0 / 3.0));
        assert_eq!(u.month.uptime(), Some(4.0 / 7.0));
        assert_eq!(all[&other].day, w(0, 1, 0.0, 0), "{}", t.label);
        let one = db.uptime(now, Some(m)).await.unwrap();
        assert_eq!(one.len(), 1);
        assert_eq!(one[&m], u);
        // The dashboard's 24 h figure (minutes at the window's edge, then
        // hours) is the same, on the hour and off it.
        let edge = db.create_monitor(&monitor("e", "a")).await.unwrap().id;
        db.insert_heartbeats(&[
            beat(edge, "a", now - DAY + 30 * MIN, Status::Up, Some(5.0)),
            beat(edge, "a", now - DAY + 65 * MIN, Status::Down, None),
            beat(edge, "a", now - 5 * MIN, Status::Up, Some(7.0)),
        ])
        .await
        .unwrap();
        for later in [0, 17 * MIN + 3_000, 50 * MIN] {
            let at = now + later;
            let full = db.uptime(at, None).await.unwrap();
            let day = db.day_uptime_of(at, &[m, other, edge]).await.unwrap();
            for id in [m, other, edge] {
                assert_eq!(day[&id], full[&id].day, "{} {id} +{later}", t.label);
            }
        }
        assert_eq!(
            db.day_uptime_of(now + 50 * MIN, &[edge]).await.unwrap()[&edge],
            w(1, 1, 7.0, 1),
            "{}: the beat 24 h 20 min back is out",
            t.label
        );

        // Retention: raw beats older than 7 days go; the figures stay.
        let deleted = db.prune(now, 7 * DAY).await.unwrap();
        assert_eq!(deleted, 3, "{}: 20 d ×2 and 40 d", t.label);
        assert_eq!(db.uptime(now, Some(m)).await.unwrap()[&m], u, "{}", t.label);
        let left = db.heartbeats(m, 0, 100).await.unwrap();
        assert_eq!(left.len(), 5, "{}", t.label);
        assert!(left.iter().all(|h| h.time >= now - 7 * DAY));

        // Deleting the monitor deletes its figures.
        db.delete_monitor(m).await.unwrap();
        assert!(!db.uptime(now, None).await.unwrap().contains_key(&m));
    }
}

#[tokio::test]
async fn certificate_facts_are_upserted_per_monitor() {
    for t in backends().await {
        let db = &t.db;
        db.register_node(&NodeId::from("a"), "a", "127.0.0.1:1")
            .await
            .unwrap();
        let m = db.create_monitor(&monitor("m", "a")).await.unwrap().id;
        let url = "http://127.0.0.1:1/";
        db.save_tls_info(m, url, &tls(30, true, 5_000, 1_000), &NodeId::from("a"))
            .await
            .unwrap();
        db.save_tls_info(m, url, &tls(-2, false, 4_000, 2_000), &NodeId::from("a"))
            .await
            .unwrap();
        // A check of a URL the monitor no longer has records nothing.
        db.save_tls_info(
            m,
            "https://old.test/",
            &tls(99, true, 9_000, 3_000),
            &NodeId::from("a"),
        )
        .await
        .unwrap();
        let all = db.tls_infos().await.unwrap();
        assert_eq!(all.len(), 1, "{}", t.label);
        let i = all[&m];
        assert_eq!(
            (i.days_remaining, i.valid, i.not_after, i.checked_at),
            (-2, false, 4_000, 2_000),
            "{}",
            t.label
        );
        assert_eq!(db.tls_info(m).await.unwrap(), Some(i));
        assert_eq!(db.tls_info(MonitorId(m.0 + 100)).await.unwrap(), None);

        // An edit that keeps the target keeps the facts; a new target drops them.
        db.update_monitor(m, &monitor("renamed", "a"))
            .await
            .unwrap();
        assert_eq!(db.tls_info(m).await.unwrap(), Some(i), "{}", t.label);
        let moved = monitor_at("renamed", "a", "http://127.0.0.1:2/");
        db.update_monitor(m, &moved).await.unwrap();
        assert_eq!(db.tls_info(m).await.unwrap(), None, "{}", t.label);
        // A check of the old URL still in flight cannot bring them back.
        db.save_tls_info(m, url, &tls(30, true, 5_000, 4_000), &NodeId::from("a"))
            .await
            .unwrap();
        assert_eq!(db.tls_info(m).await.unwrap(), None, "{}", t.label);
    }
}

#[tokio::test]
async fn a_batch_that_fails_part_way_writes_nothing_and_its_retry_writes_it_once() {
    for t in backends().await {
        let db = &t.db;
        let n = NodeId::from("a");
        db.register_node(&n, "a", "127.0.0.1:1").await.unwrap();
        let m = db.create_monitor(&monitor("m", "a")).await.unwrap().id;
        let now = 20_000 * DAY + 12 * HOUR;
        // Several insert statements' worth of rows; one near the end is
        // refused by the database itself (a trigger), as a failing write would be.
        let mut beats: Vec<Heartbeat> = (0..450)
            .map(|i| beat(m, "a", now - 450_000 + i * 1_000, Status::Up, Some(1.0)))
            .collect();
        beats[440].msg = REFUSED_MSG.into();
        refuse_heartbeats(db).await;
        assert!(db.insert_heartbeats(&beats).await.is_err(), "{}", t.label);
        assert!(
            db.heartbeats(m, 0, 1000).await.unwrap().is_empty(),
            "{}: the first statements' rows stayed",
            t.label
        );
        assert!(
            !db.uptime(now, None).await.unwrap().contains_key(&m),
            "{}: the aggregates counted a failed batch",
            t.label
        );

        allow_heartbeats(db).await;
        assert_eq!(db.insert_heartbeats(&beats).await.unwrap(), 450);
        assert_eq!(db.heartbeats(m, 0, 1000).await.unwrap().len(), 450);
        assert_eq!(
            db.uptime(now, Some(m)).await.unwrap()[&m].day,
            w(450, 0, 450.0, 450),
            "{}",
            t.label
        );
    }
}

#[tokio::test]
async fn a_batch_under_a_recorded_number_is_not_written_again_on_retry() {
    use picket_shared::db::BatchKey;
    for t in backends().await {
        let db = &t.db;
        let n = NodeId::from("a");
        db.register_node(&n, "a", "127.0.0.1:1").await.unwrap();
        let m = db.create_monitor(&monitor("m", "a")).await.unwrap().id;
        let now = 20_000 * DAY + 12 * HOUR;
        let beats: Vec<Heartbeat> = (0..3)
            .map(|i| beat(m, "a", now - 10_000 + i * 1_000, Status::Up, Some(2.0)))
            .collect();
        let rows = || async { db.heartbeats(m, 0, 100).await.unwrap().len() };
        let key = BatchKey { node: &n, seq: 41 };
        assert_eq!(
            db.insert_heartbeat_batch(key, &beats, false).await.unwrap(),
            3
        );
        // The same batch again, as after a write whose outcome was not seen.
        assert_eq!(
            db.insert_heartbeat_batch(key, &beats, true).await.unwrap(),
            3
        );
        assert_eq!(rows().await, 3, "{}", t.label);
        assert_eq!(
            db.uptime(now, Some(m)).await.unwrap()[&m].day,
            w(3, 0, 6.0, 3)
        );
        // A retry under a number not recorded (the attempt did not commit)
        // writes the batch.
        let next = BatchKey { node: &n, seq: 42 };
        assert_eq!(
            db.insert_heartbeat_batch(next, &beats[..1], true)
                .await
                .unwrap(),
            1
        );
        assert_eq!(rows().await, 4, "{}", t.label);
        // Another node's numbers are its own.
        let b = NodeId::from("b");
        db.register_node(&b, "b", "127.0.0.1:2").await.unwrap();
        let other = BatchKey { node: &b, seq: 42 };
        assert_eq!(
            db.insert_heartbeat_batch(other, &[], true).await.unwrap(),
            0
        );
        assert_eq!(
            db.insert_heartbeat_batch(next, &beats[..1], true)
                .await
                .unwrap(),
            1
        );
        assert_eq!(rows().await, 4, "{}", t.label);
    }
}
