//! The data layer against real SQLite and MariaDB databases.

use picket_shared::db::{ClusterMove, DbError};
use picket_shared::model::{Heartbeat, NodeStatus, Status};
use picket_shared::monitor::ValidMonitor;
use picket_shared::{MonitorId, NodeId, now_ms};
use picket_testkit::db::backends;
use picket_testkit::monitors;

fn http(name: &str, node: Option<&str>) -> ValidMonitor {
    monitors::http(name, node, "http://127.0.0.1:1/")
}

fn beat(m: MonitorId, node: &str) -> Heartbeat {
    Heartbeat {
        monitor_id: m,
        node_id: NodeId::from(node),
        status: Status::Up,
        time: now_ms(),
        ping: Some(1.5),
        msg: "200 - OK".into(),
        important: false,
        duration: 20,
        retries: 0,
    }
}

#[tokio::test]
async fn monitors_go_to_the_least_loaded_online_node_and_follow_revisions() {
    for t in backends().await {
        let db = &t.db;
        let (a, b) = (NodeId::from("a"), NodeId::from("b"));
        db.register_node(&a, "a", "127.0.0.1:1").await.unwrap();
        db.register_node(&b, "b", "127.0.0.1:2").await.unwrap();
        let rev0 = db.revision().await.unwrap();

        let m1 = db.create_monitor(&http("m1", Some("a"))).await.unwrap();
        let m2 = db.create_monitor(&http("m2", None)).await.unwrap();
        assert_eq!(m2.default_node_id, b, "{}: b had fewer monitors", t.label);
        let m3 = db.create_monitor(&http("m3", None)).await.unwrap();
        assert_eq!(
            m3.default_node_id, a,
            "{}: tie goes to the lowest id",
            t.label
        );

        let ch = db.changes_since(rev0).await.unwrap();
        assert_eq!(ch.changed.len(), 3, "{}", t.label);
        let rev1 = ch.rev;
        assert!(db.changes_since(rev1).await.unwrap().changed.is_empty());

        // An ownership move is a change the owner's reconcile loop sees.
        let moved = ClusterMove::Assign {
            monitor: m1.id,
            from: a.clone(),
            to: b.clone(),
        };
        assert_eq!(db.apply_moves(&[moved], None).await.unwrap(), 1);
        let ch = db.changes_since(rev1).await.unwrap();
        assert_eq!(ch.changed.len(), 1);
        assert_eq!(ch.changed[0].owner(), &b);
        assert_eq!(db.monitors(Some(&b)).await.unwrap().len(), 2, "{}", t.label);

        db.delete_monitor(m2.id).await.unwrap();
        let ch = db.changes_since(ch.rev).await.unwrap();
        assert_eq!(ch.deleted, vec![m2.id], "{}", t.label);
        assert!(matches!(
            db.delete_monitor(m2.id).await,
            Err(DbError::NotFound(_))
        ));

        let counts = db.owner_counts().await.unwrap();
        assert_eq!(counts.get(&b), Some(&1), "{}: {counts:?}", t.label);
        assert_eq!(db.recover_node(&a, 10).await.unwrap(), 1);
        assert_eq!(db.monitor(m1.id).await.unwrap().unwrap().owner(), &a);
    }
}

#[tokio::test]
async fn unknown_home_node_is_rejected_and_nothing_is_written() {
    for t in backends().await {
        let db = &t.db;
        let before = db.revision().await.unwrap();
        let err = db
            .create_monitor(&http("x", Some("ghost")))
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                DbError::Rejected {
                    field: "node_id",
                    ..
                }
            ),
            "{}: {err}",
            t.label
        );
        assert_eq!(
            db.revision().await.unwrap(),
            before,
            "{}: rolled back",
            t.label
        );
        assert!(db.monitors(None).await.unwrap().is_empty());
        // No online node at all: a monitor without node_id cannot be placed.
        assert!(matches!(
            db.create_monitor(&http("y", None)).await,
            Err(DbError::Rejected {
                field: "node_id",
                ..
            })
        ));
    }
}

#[tokio::test]
async fn heartbeats_from_a_non_owner_are_refused_by_the_database() {
    for t in backends().await {
        let db = &t.db;
        let a = NodeId::from("a");
        db.register_node(&a, "a", "h:1").await.unwrap();
        db.register_node(&NodeId::from("b"), "b", "h:2")
            .await
            .unwrap();
        let m = db.create_monitor(&http("m", Some("a"))).await.unwrap();
        let beats: Vec<_> = (0..450)
            .map(|_| beat(m.id, "a"))
            .chain([beat(m.id, "b")])
            .collect();
        assert_eq!(
            db.insert_heartbeats(&beats).await.unwrap(),
            450,
            "{}",
            t.label
        );
        let got = db.heartbeats(m.id, 0, 1000).await.unwrap();
        assert_eq!(got.len(), 450);
        assert!(got.iter().all(|h| h.node_id == a && h.ping == Some(1.5)));
        assert_eq!(db.heartbeats(m.id, 0, 1).await.unwrap()[0].msg, "200 - OK");
    }
}

#[tokio::test]
async fn node_registration_keeps_offline_but_revives_leaving() {
    for t in backends().await {
        let db = &t.db;
        let a = NodeId::from("a");
        db.register_node(&a, "a", "h:1").await.unwrap();
        db.set_node_status(&a, NodeStatus::Offline).await.unwrap();
        db.register_node(&a, "a", "h:9").await.unwrap();
        let n = db.node(&a).await.unwrap().unwrap();
        assert_eq!(
            (n.status, n.host.as_str()),
            (NodeStatus::Offline, "h:9"),
            "{}",
            t.label
        );
        db.set_node_status(&a, NodeStatus::Leaving).await.unwrap();
        db.register_node(&a, "a", "h:9").await.unwrap();
        assert_eq!(
            db.node(&a).await.unwrap().unwrap().status,
            NodeStatus::Online
        );
        assert!(db.renew_lease(&a, 42).await.unwrap());
        assert_eq!(db.node(&a).await.unwrap().unwrap().last_seen, 42);
    }
}

#[tokio::test]
async fn api_keys_are_stored_hashed_and_verified() {
    for t in backends().await {
        let db = &t.db;
        let (id, token) = db
            .create_api_key("ci", picket_shared::auth::Scope::Admin)
            .await
            .unwrap();
        assert!(db.verify_api_key(&token).await.unwrap(), "{}", t.label);
        assert!(!db.verify_api_key(&format!("{token}x")).await.unwrap());
        assert!(
            !db.verify_api_key(&format!("pk{}_{}", id + 1, "00"))
                .await
                .unwrap()
        );
        let stored: String = sqlx::query_scalar("SELECT key_hash FROM api_key")
            .fetch_one(db.pool())
            .await
            .unwrap();
        assert!(!token.contains(&stored) && !stored.contains(token.split('_').nth(1).unwrap()));
    }
}

#[tokio::test]
async fn a_handed_over_request_is_claimed_once_and_an_abandoned_one_never_runs() {
    use picket_shared::db::RequestState;
    for t in backends().await {
        let db = &t.db;
        let now = now_ms();
        let r1 = db
            .request_cluster_action("rebalance", "lb-2", now)
            .await
            .unwrap();
        let r2 = db
            .request_cluster_action("rebalance_all", "lb-3", now + 1)
            .await
            .unwrap();
        assert_ne!(r1, r2);
        let pending = db.pending_cluster_requests(now + 2, 60_000).await.unwrap();
        let kinds: Vec<_> = pending.iter().map(|r| (r.id, r.kind.as_str())).collect();
        assert_eq!(
            kinds,
            [(r1, "rebalance"), (r2, "rebalance_all")],
            "{}",
            t.label
        );
        assert_eq!(pending[0].requested_by, "lb-2");

        // One claim wins; the loser and the asker see it running.
        assert!(db.claim_cluster_request(r1, "lb-1").await.unwrap());
        assert!(!db.claim_cluster_request(r1, "lb-9").await.unwrap());
        assert!(!db.abandon_cluster_request(r1, now).await.unwrap());
        assert_eq!(
            db.cluster_request_state(r1).await.unwrap(),
            Some(RequestState::Running { by: "lb-1".into() })
        );
        db.finish_cluster_request(r1, 200, r#"{"ok":true}"#, now + 3)
            .await
            .unwrap();
        assert_eq!(
            db.cluster_request_state(r1).await.unwrap(),
            Some(RequestState::Done {
                by: "lb-1".into(),
                status: 200,
                result: r#"{"ok":true}"#.into()
            }),
            "{}",
            t.label
        );

        // Withdrawn before anyone claimed it: it can no longer be claimed.
        assert!(db.abandon_cluster_request(r2, now + 4).await.unwrap());
        assert!(!db.claim_cluster_request(r2, "lb-1").await.unwrap());
        assert_eq!(
            db.cluster_request_state(r2).await.unwrap(),
            Some(RequestState::Abandoned)
        );

        // A request older than the asker's patience is abandoned, not served.
        let r3 = db
            .request_cluster_action("rebalance", "lb-2", now)
            .await
            .unwrap();
        let pending = db
            .pending_cluster_requests(now + 60_001, 60_000)
            .await
            .unwrap();
        assert!(pending.is_empty(), "{}: {pending:?}", t.label);
        assert_eq!(
            db.cluster_request_state(r3).await.unwrap(),
            Some(RequestState::Abandoned)
        );
        assert_eq!(db.cluster_request_state(r3 + 100).await.unwrap(), None);
    }
}

#[tokio::test]
async fn a_deadlock_victim_is_told_apart_from_other_errors() {
    // InnoDB only: SQLite has one writer at a time and no deadlocks.
    let Some(t) = picket_testkit::db::mysql().await else {
        return;
    };
    let db = &t.db;
    for n in ["a", "b"] {
        db.register_node(&NodeId::from(n), n, "127.0.0.1:1")
            .await
            .unwrap();
    }
    let update = "UPDATE node SET node_name = ? WHERE node_id = ?";
    let mut first = db.pool().begin().await.unwrap();
    let mut second = db.pool().begin().await.unwrap();
    sqlx::query(update)
        .bind("x")
        .bind("a")
        .execute(&mut *first)
        .await
        .unwrap();
    sqlx::query(update)
        .bind("y")
        .bind("b")
        .execute(&mut *second)
        .await
        .unwrap();
    // Each now wants the row the other holds.
    let crossing = tokio::spawn(async move {
        let r = sqlx::query(update)
            .bind("x")
            .bind("b")
            .execute(&mut *first)
            .await;
        (r.map(|_| ()), first)
    });
    let r2 = sqlx::query(update)
        .bind("y")
        .bind("a")
        .execute(&mut *second)
        .await
        .map(|_| ());
    let (r1, first) = crossing.await.unwrap();
    let errors: Vec<DbError> = [r1, r2]
        .into_iter()
        .filter_map(|r| r.err().map(DbError::from))
        .collect();
    assert_eq!(errors.len(), 1, "one victim: {errors:?}");
    assert!(errors[0].is_deadlock(), "{:?}", errors[0]);
    // Both end now: the victim's was rolled back by the server already.
    let _ = first.rollback().await;
    let _ = second.rollback().await;
    let other = DbError::from(
        sqlx::query("SELECT nothing FROM no_such_table")
            .execute(db.pool())
            .await
            .unwrap_err(),
    );
    assert!(!other.is_deadlock(), "{other:?}");
}

/// The SQLite file holds push tokens, target credentials and key hashes:
/// only its owner may read it (and so its WAL, which SQLite creates alike).
#[cfg(unix)]
#[tokio::test]
async fn a_sqlite_database_is_readable_by_its_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let t = picket_testkit::db::sqlite().await;
    let path = t
        .url
        .trim_start_matches("sqlite://")
        .split('?')
        .next()
        .unwrap()
        .to_owned();
    t.db.create_api_key("k", picket_shared::auth::Scope::Read)
        .await
        .unwrap();
    for suffix in ["", "-wal"] {
        let mode = std::fs::metadata(format!("{path}{suffix}"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{path}{suffix}: {mode:o}");
    }
}
