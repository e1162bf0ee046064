//! The delivery worker against a real database and a receiver started by the
//! test: retries through 500 and 429 (`Retry-After` honoured), in order, with
//! the event id on every attempt; a refusal ends a delivery.

use picket_notify::worker::{Delivered, RetryPolicy, Worker};
use picket_shared::db::{ChannelInput, Db};
use picket_shared::model::{Heartbeat, Status};
use picket_shared::{MonitorId, NodeId, now_ms};
use picket_testkit::db::backends;
use picket_testkit::receiver::{Answer, Receiver};
use picket_testkit::{WAIT, eventually, monitors};
use serde_json::json;
use std::time::Duration;

async fn webhook_monitor(db: &Db, url: &str) -> MonitorId {
    db.register_node(&NodeId::from("a"), "a", "127.0.0.1:1")
        .await
        .unwrap();
    let m = db
        .create_monitor(&monitors::http("shop", Some("a"), "http://127.0.0.1:1/"))
        .await
        .unwrap()
        .id;
    db.create_channel(&ChannelInput {
        name: "hook".into(),
        kind: "webhook".into(),
        config: json!({"webhookURL": url}),
        is_default: false,
        active: true,
        rate_per_minute: 10,
        apply_existing: true,
    })
    .await
    .unwrap();
    m
}

fn beat(m: MonitorId, t: i64, status: Status) -> Heartbeat {
    Heartbeat {
        monitor_id: m,
        node_id: NodeId::from("a"),
        status,
        time: t,
        ping: None,
        msg: if status == Status::Up {
            "200 - OK"
        } else {
            "500 - Internal Server Error"
        }
        .into(),
        important: true,
        duration: 0,
        retries: 0,
    }
}

fn fast() -> RetryPolicy {
    RetryPolicy {
        first: Duration::from_millis(200),
        ..RetryPolicy::default()
    }
}

#[tokio::test]
async fn retries_through_500_and_429_then_delivers_in_order() {
    for t in backends().await {
        let rx = Receiver::start().await;
        rx.answer([
            Answer::status(500),
            Answer::status(429).with("retry-after", "1"),
        ]);
        let m = webhook_monitor(&t.db, &rx.url("/hook")).await;
        let now = now_ms();
        t.db.insert_heartbeats(&[
            beat(m, now - 2_000, Status::Down),
            beat(m, now - 1_000, Status::Up),
        ])
        .await
        .unwrap();
        let w = Worker::new(t.db.clone(), NodeId::from("a"), None, fast());
        let seen = std::sync::Mutex::new(Vec::new());
        eventually(WAIT, "both events delivered", || async {
            let pass = w.run_once(now_ms()).await.unwrap();
            seen.lock()
                .unwrap()
                .extend(pass.deliveries.into_iter().map(|(_, d)| d));
            rx.accepted().len() == 2
        })
        .await;
        let seen = seen.into_inner().unwrap();
        let got = rx.received();
        let statuses: Vec<u16> = got.iter().map(|r| r.status).collect();
        assert_eq!(statuses, [500, 429, 200, 200], "{}", t.label);
        let msgs: Vec<String> = got
            .iter()
            .map(|r| r.json()["msg"].as_str().unwrap().to_owned())
            .collect();
        assert!(
            msgs[..3]
                .iter()
                .all(|m| m == "[shop] [🔴 Down] 500 - Internal Server Error"),
            "{msgs:?}"
        );
        assert_eq!(
            msgs[3], "[shop] [✅ Up] 200 - OK",
            "{}: no UP before its DOWN",
            t.label
        );
        // One event id across the DOWN's three attempts, in header and body.
        let ids: Vec<&str> = got
            .iter()
            .map(|r| r.header("x-picket-event-id").unwrap())
            .collect();
        assert!(
            ids[0] == ids[1] && ids[1] == ids[2] && ids[2] != ids[3],
            "{ids:?}"
        );
        assert_eq!(got[2].json()["eventId"], ids[2]);
        assert_eq!(
            seen,
            [
                Delivered::Retry,
                Delivered::Retry,
                Delivered::Sent,
                Delivered::Sent
            ],
            "{}",
            t.label
        );
    }
}

#[tokio::test]
async fn retry_after_is_honoured_and_a_refusal_ends_the_delivery() {
    let t = picket_testkit::db::sqlite().await;
    let rx = Receiver::start().await;
    rx.answer([
        Answer::status(429).with("retry-after", "2"),
        Answer::status(404),
    ]);
    let m = webhook_monitor(&t.db, &rx.url("/hook")).await;
    t.db.insert_heartbeats(&[beat(m, now_ms(), Status::Down)])
        .await
        .unwrap();
    let w = Worker::new(t.db.clone(), NodeId::from("a"), None, fast());
    let start = now_ms();
    let pass = w.run_once(start).await.unwrap();
    assert_eq!(pass.deliveries[0].1, Delivered::Retry);
    // Not due again before the two seconds the receiver asked for.
    assert!(
        w.run_once(start + 1_500)
            .await
            .unwrap()
            .deliveries
            .is_empty()
    );
    let pass = w.run_once(start + 2_500).await.unwrap();
    assert_eq!(
        pass.deliveries[0].1,
        Delivered::Failed,
        "a 404 is not retried"
    );
    assert!(
        w.run_once(start + 60_000)
            .await
            .unwrap()
            .deliveries
            .is_empty()
    );
    let d = t.db.deliveries(1, 10).await.unwrap();
    assert_eq!((d[0].status.as_str(), d[0].attempts), ("failed", 2));
    assert!(d[0].last_error.as_deref().unwrap().starts_with("HTTP 404"));
}

#[tokio::test]
async fn three_hundred_monitors_down_at_once_are_a_handful_of_messages_naming_all() {
    for t in backends().await {
        let rx = Receiver::start().await;
        let db = &t.db;
        let first = webhook_monitor(db, &rx.url("/hook")).await;
        let mut ids = vec![first];
        for i in 1..300 {
            let m = monitors::http(&format!("m{i:03}"), Some("a"), "http://127.0.0.1:1/");
            ids.push(db.create_monitor(&m).await.unwrap().id);
        }
        // The channel was linked to the monitors that existed; link the rest.
        sqlx::query(
            "INSERT INTO monitor_notification (monitor_id, notification_id) \
             SELECT id, 1 FROM monitor WHERE id > 1",
        )
        .execute(db.pool())
        .await
        .unwrap();
        let now = now_ms();
        let beats: Vec<Heartbeat> = ids.iter().map(|m| beat(*m, now, Status::Down)).collect();
        db.insert_heartbeats(&beats).await.unwrap();

        // A minute of passes: ten one by one, the rest held for the digest.
        let w = Worker::new(db.clone(), NodeId::from("a"), None, fast());
        for k in 0..10 {
            w.run_once(now + k * 100).await.unwrap();
        }
        assert_eq!(rx.accepted().len(), 10, "{}: the rate", t.label);
        // The minute is over: one digest carries everything else.
        let after = now_ms() + 61_000;
        let pass = w.run_once(after).await.unwrap();
        assert_eq!(pass.deliveries.len(), 290, "{}", t.label);
        assert!(
            w.run_once(after + 1_000)
                .await
                .unwrap()
                .deliveries
                .is_empty()
        );
        let got = rx.accepted();
        assert_eq!(got.len(), 11, "{}: ten messages and one digest", t.label);
        let digest = got[10].json();
        assert!(
            digest["msg"]
                .as_str()
                .unwrap()
                .starts_with("[Picket] 290 monitors DOWN\n"),
            "{digest}"
        );
        // Together they name every monitor once.
        let mut named: Vec<String> = got[..10]
            .iter()
            .map(|r| r.json()["monitor"]["name"].as_str().unwrap().to_owned())
            .collect();
        named.extend(
            digest["events"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["monitor"]["name"].as_str().unwrap().to_owned()),
        );
        named.sort();
        named.dedup();
        assert_eq!(named.len(), 300, "{}", t.label);
        assert_eq!(db.outbox_depth().await.unwrap().0, 0);
    }
}
