//! Notifications across a real cluster (a balancer and three `picket-node`
//! processes on one database): a node killed while its monitor is DOWN, and
//! a node killed while it is delivering. Each channel still gets each event
//! exactly once, except the one documented repeat after a kill mid-send,
//! which carries the same event id.

use picket_shared::db::Db;
use picket_testkit::cluster::*;
use picket_testkit::db::{backends, sqlite};
use picket_testkit::farm::Behaviour;
use picket_testkit::net::client;
use picket_testkit::receiver::{Answer, Receiver};
use picket_testkit::{TOKEN, WAIT, eventually};
use serde_json::{Value, json};
use sqlx::Row;
use std::time::Duration;

/// Creates a webhook channel through the balancer, linked to every monitor.
async fn webhook(c: &Cluster, rx: &Receiver) -> i64 {
    let r = client()
        .post(c.lb.url("/api/v1/notifications"))
        .bearer_auth(TOKEN)
        .json(
            &json!({"name": "hook", "type": "webhook", "applyExisting": true,
            "config": {"webhookURL": rx.url("/hook")}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    r.json::<Value>().await.unwrap()["id"].as_i64().unwrap()
}

/// `(kind, node that wrote the beat, state)` of every outbox row of a monitor.
async fn events_of(db: &Db, monitor: &str) -> Vec<(String, String, String)> {
    sqlx::query(
        "SELECT o.kind, o.node_id, o.state FROM notify_outbox o JOIN monitor m ON m.id = o.monitor_id \
         WHERE m.name = ? ORDER BY o.id",
    )
    .bind(monitor)
    .fetch_all(db.pool())
    .await
    .unwrap()
    .iter()
    .map(|r| (r.get("kind"), r.get("node_id"), r.get("state")))
    .collect()
}

/// The `msg` of every body the receiver accepted for `monitor`.
fn notices(rx: &Receiver, monitor: &str) -> Vec<String> {
    rx.accepted()
        .iter()
        .map(|r| r.json())
        .filter(|b| b["monitor"]["name"] == monitor)
        .map(|b| b["msg"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_owner_killed_while_down_raises_no_second_down_and_the_up_comes_from_the_survivor() {
    for t in backends().await {
        let label = t.label;
        let mut c = cluster(t, 1).await;
        let rx = Receiver::start().await;
        webhook(&c, &rx).await;
        let m = "n1-0";
        c.target.set(m, Behaviour::status(500));
        eventually(WAIT, "the DOWN notice", || async {
            !notices(&rx, m).is_empty()
        })
        .await;

        // n1 dies hard; a survivor takes the monitor over and sees it DOWN.
        let idx = c.nodes.iter().position(|n| n.id == "n1").unwrap();
        drop(c.nodes.remove(idx));
        eventually(
            Duration::from_secs(30),
            "a survivor records DOWN beats",
            || async {
                let n: i64 = sqlx::query(
                    "SELECT COUNT(*) AS n FROM heartbeat h JOIN monitor m ON m.id = h.monitor_id \
                 WHERE m.name = ? AND h.node_id <> 'n1' AND h.status = 0",
                )
                .bind(m)
                .fetch_one(c.t.db.pool())
                .await
                .unwrap()
                .get("n");
                n >= 2
            },
        )
        .await;
        c.target.set(m, Behaviour::status(200));
        eventually(WAIT, "the UP notice", || async {
            notices(&rx, m).len() >= 2
        })
        .await;

        let n = notices(&rx, m);
        assert_eq!(n.len(), 2, "{label}: {n:?}");
        assert!(
            n[0].contains("Down") && n[1].contains("Up"),
            "{label}: {n:?}"
        );
        let ev = events_of(&c.t.db, m).await;
        assert_eq!(ev.len(), 2, "{label}: {ev:?}");
        assert_eq!(
            (ev[0].0.as_str(), ev[0].1.as_str()),
            ("down", "n1"),
            "{label}"
        );
        assert_eq!(ev[1].0, "up");
        assert_ne!(ev[1].1, "n1", "{label}: the UP comes from the new owner");
        // The other monitors stayed up: nobody else was told anything.
        assert_eq!(rx.accepted().len(), 2, "{label}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_mid_delivery_leaves_it_to_another_with_the_same_event_id() {
    let mut c = cluster(sqlite().await, 1).await;
    let rx = Receiver::start().await;
    // The first delivery is held open by the receiver; later ones succeed.
    rx.answer([Answer::hang()]);
    webhook(&c, &rx).await;
    let m = "n2-0";
    c.target.set(m, Behaviour::status(500));
    eventually(WAIT, "the held delivery", || async {
        !rx.received().is_empty()
    })
    .await;
    let claimer: String = sqlx::query("SELECT claimed_by FROM notify_outbox")
        .fetch_one(c.t.db.pool())
        .await
        .unwrap()
        .get("claimed_by");
    let idx = c.nodes.iter().position(|n| n.id == claimer).unwrap();
    drop(c.nodes.remove(idx));

    // Its claim lapses; another node sends the same event again.
    eventually(
        Duration::from_secs(30),
        "the delivery, sent again",
        || async { !rx.accepted().is_empty() },
    )
    .await;
    let got = rx.received();
    assert_eq!(got.len(), 2, "held, then delivered: {got:?}");
    let ids: Vec<&str> = got
        .iter()
        .map(|r| r.header("x-picket-event-id").unwrap())
        .collect();
    assert_eq!(ids[0], ids[1], "a repeat carries the same event id");
    assert_eq!(got[1].json()["eventId"], ids[1]);
    let ev = events_of(&c.t.db, m).await;
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].2, "sent");
}
