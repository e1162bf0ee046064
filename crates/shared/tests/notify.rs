//! Notification events in the data layer, on real SQLite and MariaDB: created
//! with the beat that causes them, under its ownership condition, once; and
//! the outbox's claims, order and fenced marks.

use picket_shared::db::{BatchKey, ChannelInput, ClusterMove, Db, OutboxRow};
use picket_shared::model::{Heartbeat, Status};
use picket_shared::notify::EventKind;
use picket_shared::{MonitorId, NodeId};
use picket_testkit::db::backends;
use picket_testkit::monitors;
use serde_json::json;

fn channel(name: &str, is_default: bool) -> ChannelInput {
    ChannelInput {
        name: name.into(),
        kind: "webhook".into(),
        config: json!({"webhookURL": "http://127.0.0.1:9/hook"}),
        is_default,
        active: true,
        rate_per_minute: 10,
        apply_existing: false,
    }
}

fn beat(m: MonitorId, node: &str, t: i64, status: Status) -> Heartbeat {
    Heartbeat {
        monitor_id: m,
        node_id: NodeId::from(node),
        status,
        time: t,
        ping: None,
        msg: format!("{status:?} at {t}"),
        important: false,
        duration: 0,
        retries: 0,
    }
}

/// Every outbox row: (monitor, channel, kind, node), in order.
async fn outbox(db: &Db) -> Vec<(i64, i64, String, String)> {
    use sqlx::Row;
    sqlx::query("SELECT monitor_id, notification_id, kind, node_id FROM notify_outbox ORDER BY id")
        .fetch_all(db.pool())
        .await
        .unwrap()
        .iter()
        .map(|r| {
            (
                r.get::<i64, _>("monitor_id"),
                r.get::<i64, _>("notification_id"),
                r.get::<String, _>("kind"),
                r.get::<String, _>("node_id"),
            )
        })
        .collect()
}

/// Monitor `m` on node a, and a channel linked to it (to every monitor).
async fn linked_monitor(db: &Db) -> MonitorId {
    let m = db
        .create_monitor(&monitors::http("m", Some("a"), "http://127.0.0.1:1/"))
        .await
        .unwrap()
        .id;
    let mut ch = channel("ops", false);
    ch.apply_existing = true;
    db.create_channel(&ch).await.unwrap();
    m
}

async fn two_nodes(db: &Db) {
    for n in ["a", "b"] {
        db.register_node(&NodeId::from(n), n, "127.0.0.1:1")
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn an_important_beat_queues_one_row_per_linked_active_channel() {
    for t in backends().await {
        let db = &t.db;
        two_nodes(db).await;
        let default = db.create_channel(&channel("ops", true)).await.unwrap();
        let quiet = db.create_channel(&channel("quiet", false)).await.unwrap();
        let mut off = channel("off", true);
        off.active = false;
        let off = db.create_channel(&off).await.unwrap();
        // New monitors get the default channels (active or not); the
        // inactive one queues nothing.
        let m = db
            .create_monitor(&monitors::http("m", Some("a"), "http://127.0.0.1:1/"))
            .await
            .unwrap()
            .id;
        let linked = db.monitor_channels(Some(m)).await.unwrap();
        assert_eq!(linked[&m], vec![default.id, off.id], "{}", t.label);

        let beats = [
            beat(m, "a", 1_000, Status::Up),
            beat(m, "a", 2_000, Status::Down),
            beat(m, "a", 3_000, Status::Down),
            beat(m, "a", 4_000, Status::Up),
        ];
        assert_eq!(db.insert_heartbeats(&beats).await.unwrap(), 4);
        let rows = outbox(db).await;
        let d = default.id;
        assert_eq!(
            rows,
            vec![
                (m.0, d, "down".into(), "a".into()),
                (m.0, d, "up".into(), "a".into())
            ],
            "{}",
            t.label
        );
        assert!(rows.iter().all(|r| r.1 != quiet.id && r.1 != off.id));
    }
}

#[tokio::test]
async fn a_fenced_node_and_a_retried_batch_create_no_event() {
    for t in backends().await {
        let db = &t.db;
        two_nodes(db).await;
        let m = linked_monitor(db).await;

        // b does not own m: its DOWN is refused and announces nothing.
        assert_eq!(
            db.insert_heartbeats(&[beat(m, "b", 1_000, Status::Down)])
                .await
                .unwrap(),
            0
        );
        assert!(outbox(db).await.is_empty(), "{}", t.label);

        // a's batch, retried under the same number after it committed
        // unseen: one DOWN, not two.
        let a = NodeId::from("a");
        let key = BatchKey { node: &a, seq: 1 };
        let batch = [beat(m, "a", 2_000, Status::Down)];
        assert_eq!(
            db.insert_heartbeat_batch(key, &batch, false).await.unwrap(),
            1
        );
        assert_eq!(
            db.insert_heartbeat_batch(key, &batch, true).await.unwrap(),
            1
        );
        assert_eq!(outbox(db).await.len(), 1, "{}", t.label);
        // The events-created count agrees: one DOWN, nothing for the fenced
        // beat or the retry.
        let created: Vec<(&str, u64)> = db
            .events_created()
            .iter()
            .map(|(k, n)| (k.as_str(), *n))
            .collect();
        assert_eq!(
            created,
            [("down", 1), ("up", 0), ("reminder", 0), ("tls_expiry", 0)],
            "{}",
            t.label
        );
    }
}

#[tokio::test]
async fn a_moved_monitor_does_not_announce_its_state_again() {
    for t in backends().await {
        let db = &t.db;
        two_nodes(db).await;
        let m = linked_monitor(db).await;
        db.insert_heartbeats(&[beat(m, "a", 1_000, Status::Down)])
            .await
            .unwrap();
        let moved = ClusterMove::Assign {
            monitor: m,
            from: NodeId::from("a"),
            to: NodeId::from("b"),
        };
        assert_eq!(db.apply_moves(&[moved], None).await.unwrap(), 1);
        // The new owner sees it DOWN too: nothing new; then UP from b.
        db.insert_heartbeats(&[beat(m, "b", 2_000, Status::Down)])
            .await
            .unwrap();
        db.insert_heartbeats(&[beat(m, "b", 3_000, Status::Up)])
            .await
            .unwrap();
        let kinds: Vec<(String, String)> =
            outbox(db).await.into_iter().map(|r| (r.2, r.3)).collect();
        assert_eq!(
            kinds,
            vec![("down".into(), "a".into()), ("up".into(), "b".into())],
            "{}",
            t.label
        );
    }
}

#[tokio::test]
async fn deliveries_are_claimed_once_in_order_and_marked_only_under_the_claim() {
    for t in backends().await {
        let db = &t.db;
        two_nodes(db).await;
        let m = linked_monitor(db).await;
        let beats = [
            beat(m, "a", 1_000, Status::Down),
            beat(m, "a", 2_000, Status::Up),
        ];
        db.insert_heartbeats(&beats).await.unwrap();
        let (w1, w2) = (NodeId::from("a"), NodeId::from("b"));
        let now = picket_shared::now_ms();

        // Only the DOWN is due: the UP waits for it. One worker gets it.
        let got: Vec<OutboxRow> = db.claim_deliveries(&w1, now, 60_000, 10).await.unwrap();
        assert_eq!(got.len(), 1, "{}", t.label);
        assert_eq!(got[0].kind, EventKind::Down);
        assert!(
            db.claim_deliveries(&w2, now, 60_000, 10)
                .await
                .unwrap()
                .is_empty()
        );

        // The claim lapses (the worker died mid-send): another takes the
        // same row, with the same event id; the first one's mark is refused.
        let later = now + 61_000;
        let again = db.claim_deliveries(&w2, later, 60_000, 10).await.unwrap();
        assert_eq!(again.len(), 1);
        assert_eq!(
            (again[0].id, &again[0].event_id),
            (got[0].id, &got[0].event_id)
        );
        assert_eq!(again[0].attempts, 2);
        assert!(
            !db.mark_sent(&got[0], &w1, later).await.unwrap(),
            "{}",
            t.label
        );
        assert!(db.mark_sent(&again[0], &w2, later).await.unwrap());

        // Now the UP is due.
        let up = db.claim_deliveries(&w1, later, 60_000, 10).await.unwrap();
        assert_eq!(up.len(), 1);
        assert_eq!(up[0].kind, EventKind::Up);
        // A retry puts it back for later; failing it ends it.
        assert!(
            db.mark_unsent(&up[0], &w1, "HTTP 503", Some(later + 5_000))
                .await
                .unwrap()
        );
        assert!(
            db.claim_deliveries(&w1, later + 1_000, 60_000, 10)
                .await
                .unwrap()
                .is_empty()
        );
        let retry = db
            .claim_deliveries(&w1, later + 5_000, 60_000, 10)
            .await
            .unwrap();
        assert_eq!(retry.len(), 1);
        assert!(
            db.mark_unsent(&retry[0], &w1, "HTTP 404", None)
                .await
                .unwrap()
        );
        let listed = db.deliveries(up[0].channel_id, 10).await.unwrap();
        let states: Vec<(&str, &str, i64)> = listed
            .iter()
            .map(|d| (d.event.as_str(), d.status.as_str(), d.attempts))
            .collect();
        assert_eq!(
            states,
            vec![("up", "failed", 2), ("down", "sent", 2)],
            "{}",
            t.label
        );
        assert_eq!(listed[0].last_error.as_deref(), Some("HTTP 404"));
        assert_eq!(db.outbox_depth().await.unwrap().0, 0);
    }
}

#[tokio::test]
async fn a_certificate_is_announced_once_at_each_threshold() {
    use picket_shared::model::TlsInfo;
    for t in backends().await {
        let db = &t.db;
        two_nodes(db).await;
        let url = "https://shop.test/";
        let m = db
            .create_monitor(&monitors::valid(
                json!({"name": "shop", "type": "http", "url": url,
                "interval": 20, "expiryNotification": 14, "node_id": "a"}),
            ))
            .await
            .unwrap()
            .id;
        let mut ch = channel("ops", false);
        ch.apply_existing = true;
        db.create_channel(&ch).await.unwrap();
        let a = NodeId::from("a");
        let check = |days: i64, not_after: i64| TlsInfo {
            days_remaining: days,
            valid: true,
            not_after,
            checked_at: 1_000,
        };
        let mut said = Vec::new();
        for (days, cert) in [
            (30, 1),
            (20, 1),
            (20, 1),
            (13, 1),
            (12, 1),
            (6, 1),
            (60, 2),
            (19, 2),
        ] {
            said.push(
                db.save_tls_info(m, url, &check(days, cert), &a)
                    .await
                    .unwrap(),
            );
        }
        assert_eq!(
            said,
            [false, true, false, true, false, true, false, true],
            "{}",
            t.label
        );
        let rows = outbox(db).await;
        assert_eq!(rows.len(), 4, "{}", t.label);
        assert!(
            rows.iter().all(|r| r.2 == "tls_expiry" && r.3 == "a"),
            "{rows:?}"
        );
        // A monitor without expiryNotification is never announced.
        let quiet = db
            .create_monitor(&monitors::http("quiet", Some("a"), url))
            .await
            .unwrap()
            .id;
        assert!(
            !db.save_tls_info(quiet, url, &check(3, 9), &a)
                .await
                .unwrap()
        );
    }
}
