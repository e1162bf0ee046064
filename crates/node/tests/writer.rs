//! The heartbeat writer against real SQLite and MariaDB databases: a batch
//! whose write failed is retried as it was, is not written twice when the
//! failed attempt had in fact committed, and is never the part the buffer
//! bound drops.

use picket_node::metrics::Metrics;
use picket_node::writer::{Flushed, Writer};
use picket_shared::db::{BatchKey, Db};
use picket_shared::model::{Heartbeat, Status};
use picket_shared::{MonitorId, NodeId, now_ms};
use picket_testkit::db::{REFUSED_MSG, allow_heartbeats, backends, refuse_heartbeats};
use std::sync::Arc;

async fn one_monitor(db: &Db, node: &NodeId) -> MonitorId {
    db.register_node(node, node.as_str(), "127.0.0.1:1")
        .await
        .unwrap();
    let m = picket_testkit::monitors::http("m", Some(node.as_str()), "http://127.0.0.1:1/");
    db.create_monitor(&m).await.unwrap().id
}

fn beats(m: MonitorId, node: &NodeId, n: usize, msg: &str) -> Vec<Heartbeat> {
    let t0 = now_ms() - 60_000;
    (0..n)
        .map(|i| Heartbeat {
            monitor_id: m,
            node_id: node.clone(),
            status: Status::Up,
            time: t0 + i as i64,
            ping: Some(1.0),
            msg: msg.to_owned(),
            important: false,
            duration: 0,
            retries: 0,
        })
        .collect()
}

fn writer(node: &NodeId, cap: usize, batch: usize) -> (Writer, Arc<Metrics>) {
    let metrics = Arc::new(Metrics::new(node.as_str()));
    (
        Writer::new(cap, batch, node.clone(), metrics.clone()),
        metrics,
    )
}

async fn rows(db: &Db, m: MonitorId) -> usize {
    db.heartbeats(m, 0, 10_000).await.unwrap().len()
}

/// Queues `batch` with its row `at` made one the database refuses, and has
/// the writer's attempt fail: the batch is then in doubt. Returns it as
/// queued.
async fn failed_batch(db: &Db, w: &Writer, mut batch: Vec<Heartbeat>, at: usize) -> Vec<Heartbeat> {
    batch[at].msg = REFUSED_MSG.into();
    for hb in batch.clone() {
        w.push(hb);
    }
    refuse_heartbeats(db).await;
    assert!(w.flush_once(db).await.is_err());
    assert!(w.in_doubt().is_some(), "the failed batch is kept in doubt");
    batch
}

#[tokio::test]
async fn a_batch_whose_failed_write_had_committed_is_not_written_again() {
    for t in backends().await {
        let db = &t.db;
        let node = NodeId::from("a");
        let m = one_monitor(db, &node).await;
        let (w, _) = writer(&node, 1000, 50);
        let batch = failed_batch(db, &w, beats(m, &node, 30, ""), 29).await;
        let seq = w.in_doubt().unwrap();
        assert_eq!(w.buffered(), 30, "{}", t.label);

        // As if that attempt had committed and only its reply was lost: the
        // same batch under the same number is in the database.
        allow_heartbeats(db).await;
        let key = BatchKey { node: &node, seq };
        db.insert_heartbeat_batch(key, &batch, false).await.unwrap();
        for hb in beats(m, &node, 5, "later") {
            w.push(hb);
        }
        assert_eq!(
            w.flush_once(db).await.unwrap(),
            Flushed {
                written: 30,
                rejected: 0
            },
            "{}",
            t.label
        );
        assert_eq!(w.in_doubt(), None);
        assert_eq!(w.flush_all(db).await.unwrap(), 5);
        assert_eq!(rows(db, m).await, 35, "{}: written twice", t.label);
        let day = db.uptime(now_ms(), Some(m)).await.unwrap()[&m].day;
        assert_eq!(day.up, 35, "{}: counted twice", t.label);
    }
}

#[tokio::test]
async fn a_batch_whose_write_failed_is_written_by_the_retry() {
    for t in backends().await {
        let db = &t.db;
        let node = NodeId::from("a");
        let m = one_monitor(db, &node).await;
        let (w, _) = writer(&node, 1000, 50);
        failed_batch(db, &w, beats(m, &node, 30, ""), 10).await;
        assert!(w.flush_once(db).await.is_err(), "still refused");
        assert_eq!(rows(db, m).await, 0, "{}", t.label);
        allow_heartbeats(db).await;
        assert_eq!(w.flush_all(db).await.unwrap(), 30, "{}", t.label);
        assert_eq!(rows(db, m).await, 30);
        assert_eq!(w.buffered(), 0);
    }
}

#[tokio::test]
async fn the_bound_drops_the_oldest_queued_results_never_the_batch_in_doubt() {
    for t in backends().await {
        let db = &t.db;
        let node = NodeId::from("a");
        let m = one_monitor(db, &node).await;
        let (w, metrics) = writer(&node, 40, 30);
        failed_batch(db, &w, beats(m, &node, 30, ""), 0).await;
        // 20 more while the database refuses: 10 fit beside the 30 in doubt.
        for hb in beats(m, &node, 20, "later") {
            w.push(hb);
        }
        assert_eq!(w.buffered(), 40);
        assert_eq!(metrics.hb_dropped.get(), 10, "{}", t.label);
        allow_heartbeats(db).await;
        assert_eq!(w.flush_all(db).await.unwrap(), 40, "{}", t.label);
        let kept = db.heartbeats(m, 0, 100).await.unwrap();
        assert_eq!(kept.len(), 40);
        // The in-doubt batch (msg "" and the refused one) all made it; of the
        // later ones, the newest 10.
        assert_eq!(kept.iter().filter(|h| h.msg == "later").count(), 10);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flush_writes_what_was_due_and_leaves_what_arrives_meanwhile() {
    // SQLite: another transaction holding the write lock keeps the flush's
    // batch in flight while more results arrive.
    let t = picket_testkit::db::sqlite().await;
    let db = t.db.clone();
    let node = NodeId::from("a");
    let m = one_monitor(&db, &node).await;
    let (w, metrics) = writer(&node, 10_000, 200);
    for hb in beats(m, &node, 50, "due") {
        w.push(hb);
    }
    let mut lock = db.pool().begin().await.unwrap();
    sqlx::query("UPDATE node SET node_name = node_name")
        .execute(&mut *lock)
        .await
        .unwrap();
    let flush = tokio::spawn({
        let (w, db) = (w.clone(), db.clone());
        async move { w.flush_due(&db).await }
    });
    // The batch has left the buffer once it is in flight.
    while w.buffered() > 0 {
        tokio::task::yield_now().await;
    }
    for hb in beats(m, &node, 300, "later") {
        w.push(hb);
    }
    lock.rollback().await.unwrap();
    assert_eq!(flush.await.unwrap().unwrap(), 50);
    assert_eq!(w.buffered(), 300, "the flush chased the later results");
    assert_eq!(metrics.hb_batches.get(), 1);
    // The next flush takes them in full batches.
    assert_eq!(w.flush_due(&db).await.unwrap(), 300);
    assert_eq!(metrics.hb_batches.get(), 3);
    assert_eq!(rows(&db, m).await, 350);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_writes_fail_new_results_do_not_cut_the_backoff_short() {
    let t = picket_testkit::db::sqlite().await;
    let db = t.db.clone();
    let node = NodeId::from("a");
    let m = one_monitor(&db, &node).await;
    let (w, metrics) = writer(&node, 100_000, 20);
    refuse_heartbeats(&db).await;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let run = tokio::spawn(w.clone().run(
        db.clone(),
        std::time::Duration::from_millis(250),
        async {
            let _ = stopped.await;
        },
        std::time::Duration::from_millis(100),
    ));
    // A result every 2 ms for 1.5 s, each refused; every push past a full
    // batch wakes the flush loop unless it is backing off.
    for hb in beats(m, &node, 750, REFUSED_MSG) {
        w.push(hb);
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    let attempts = metrics.hb_write_errors.get();
    let _ = stop.send(());
    run.await.unwrap();
    // Backoff 0.5 s, 1 s, 2 s after the first failure: 3 attempts in 1.5 s
    // (one more if the first came late); hundreds without the backoff.
    assert!((1..=5).contains(&attempts), "{attempts} write attempts");
    assert_eq!(rows(&db, m).await, 0);
}
