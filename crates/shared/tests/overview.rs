//! What the dashboard reads, against real SQLite and MariaDB: the latest
//! beat kept by the heartbeat write (with when its status began), counts by
//! state, filtered and sorted pages, the last beats of a page's monitors,
//! and the beats after a cursor.

use picket_shared::db::{Filter, Sort, State};
use picket_shared::model::{Heartbeat, Status};
use picket_shared::{MonitorId, NodeId};
use picket_testkit::db::backends;
use picket_testkit::monitors::{http, valid};
use serde_json::json;

fn beat(m: MonitorId, node: &str, time: i64, status: Status, msg: &str) -> Heartbeat {
    Heartbeat {
        monitor_id: m,
        node_id: NodeId::from(node),
        status,
        time,
        ping: Some(time as f64 / 1000.0),
        msg: msg.into(),
        important: false,
        duration: 0,
        retries: 0,
    }
}

#[tokio::test]
async fn the_latest_beat_counts_pages_and_cursor_agree_with_what_was_written() {
    for t in backends().await {
        let (db, label) = (&t.db, t.label);
        for n in ["a", "b"] {
            db.register_node(&NodeId::from(n), n, "127.0.0.1:1")
                .await
                .unwrap();
        }
        let shop = db
            .create_monitor(&http("Shop 100%_off", Some("a"), "https://shop.test/"))
            .await
            .unwrap()
            .id;
        let api = db
            .create_monitor(&http("api", Some("b"), "https://api.test/v1"))
            .await
            .unwrap()
            .id;
        let port = db
            .create_monitor(&valid(json!({"name": "db port", "type": "port",
                "hostname": "db.test", "port": 5432, "node_id": "a"})))
            .await
            .unwrap()
            .id;
        let paused = db
            .create_monitor(&valid(json!({"name": "old", "type": "http",
                "url": "https://old.test/", "node_id": "b", "active": false})))
            .await
            .unwrap()
            .id;
        let start = db.last_beat_id().await.unwrap();

        // Shop: up, up, then down (the status began at 3000); a late,
        // older beat changes nothing.
        db.insert_heartbeats(&[
            beat(shop, "a", 1000, Status::Up, "ok"),
            beat(shop, "a", 2000, Status::Up, "ok"),
            beat(api, "b", 1500, Status::Up, "ok"),
        ])
        .await
        .unwrap();
        db.insert_heartbeats(&[beat(shop, "a", 3000, Status::Down, "refused")])
            .await
            .unwrap();
        db.insert_heartbeats(&[beat(shop, "a", 2500, Status::Up, "late")])
            .await
            .unwrap();
        db.insert_heartbeats(&[beat(shop, "a", 4000, Status::Down, "still refused")])
            .await
            .unwrap();
        // A beat from a node that does not own the monitor is not kept.
        db.insert_heartbeats(&[beat(api, "a", 9000, Status::Down, "stray")])
            .await
            .unwrap();

        let l = db.latest(shop).await.unwrap().unwrap();
        assert_eq!(
            (l.status, l.time, l.since, l.msg.as_str()),
            (Status::Down, 4000, 3000, "still refused"),
            "{label}"
        );
        let l = db.latest(api).await.unwrap().unwrap();
        assert_eq!((l.status, l.time), (Status::Up, 1500), "{label}");
        assert!(db.latest(port).await.unwrap().is_none(), "{label}");

        let counts = db.state_counts().await.unwrap();
        assert_eq!(counts[&State::Down], 1, "{label}");
        assert_eq!(counts[&State::Up], 1, "{label}");
        assert_eq!(counts[&State::Pending], 1, "{label}: no beat yet");
        assert_eq!(counts[&State::Paused], 1, "{label}");
        assert_eq!(counts[&State::Maintenance], 0, "{label}");

        let names = |p: &picket_shared::db::Page| -> Vec<String> {
            p.rows
                .iter()
                .map(|(r, _)| r.fields.name.clone().unwrap())
                .collect()
        };
        let all = db
            .monitor_page(&Filter::default(), Sort::Name, 0, 10)
            .await
            .unwrap();
        assert_eq!(all.total, 4);
        assert_eq!(
            names(&all),
            ["api", "db port", "old", "Shop 100%_off"],
            "{label}: by name, whatever the case"
        );
        let worst = db
            .monitor_page(&Filter::default(), Sort::Status, 0, 10)
            .await
            .unwrap();
        assert_eq!(
            names(&worst),
            ["Shop 100%_off", "db port", "api", "old"],
            "{label}"
        );
        let second = db
            .monitor_page(&Filter::default(), Sort::Name, 2, 2)
            .await
            .unwrap();
        assert_eq!(
            (second.total, names(&second)),
            (4, vec!["old".to_owned(), "Shop 100%_off".to_owned()])
        );

        let find = |f: Filter| async move { db.monitor_page(&f, Sort::Name, 0, 10).await.unwrap() };
        // The search matches name, URL or host, any case, wildcards literal.
        let p = find(Filter {
            search: Some("SHOP".into()),
            ..Default::default()
        })
        .await;
        assert_eq!(names(&p), ["Shop 100%_off"], "{label}");
        let p = find(Filter {
            search: Some("0%_".into()),
            ..Default::default()
        })
        .await;
        assert_eq!(names(&p), ["Shop 100%_off"], "{label}");
        let p = find(Filter {
            search: Some("_".into()),
            ..Default::default()
        })
        .await;
        assert_eq!(names(&p), ["Shop 100%_off"], "{label}: _ is not a wildcard");
        let p = find(Filter {
            search: Some("db.test".into()),
            ..Default::default()
        })
        .await;
        assert_eq!(names(&p), ["db port"], "{label}");
        let p = find(Filter {
            state: Some(State::Pending),
            ..Default::default()
        })
        .await;
        assert_eq!(names(&p), ["db port"], "{label}");
        let p = find(Filter {
            kind: Some("port".into()),
            ..Default::default()
        })
        .await;
        assert_eq!(names(&p), ["db port"], "{label}");
        let p = find(Filter {
            node: Some(NodeId::from("b")),
            ..Default::default()
        })
        .await;
        assert_eq!(
            (p.total, names(&p)),
            (2, vec!["api".to_owned(), "old".to_owned()]),
            "{label}"
        );
        let p = find(Filter {
            search: Some("'; DROP TABLE monitor; --".into()),
            ..Default::default()
        })
        .await;
        assert_eq!(p.total, 0, "{label}");
        let row = &all.rows[3];
        assert_eq!(
            row.1.as_ref().map(|l| l.status),
            Some(Status::Down),
            "{label}"
        );

        // The last beats of each monitor, oldest first.
        let recent = db
            .recent_beats(&[shop, api, port, paused], 3)
            .await
            .unwrap();
        let times: Vec<i64> = recent[&shop].iter().map(|b| b.time).collect();
        assert_eq!(times, [2500, 3000, 4000], "{label}");
        assert_eq!(recent[&api].len(), 1, "{label}");
        assert!(!recent.contains_key(&port), "{label}");

        // Only status changes, or everything, newest first.
        let (n, page) = db.beats_page(shop, false, 1, 2).await.unwrap();
        assert_eq!(
            (n, page.iter().map(|b| b.time).collect::<Vec<_>>()),
            (5, vec![3000, 2500]),
            "{label}"
        );

        // The cursor reads every beat written after it, in id order.
        let after = db.beats_after(start, 100).await.unwrap();
        assert_eq!(after.len(), 6, "{label}");
        assert!(after.windows(2).all(|w| w[0].id < w[1].id));
        assert_eq!(db.last_beat_id().await.unwrap(), after.last().unwrap().id);
        let tail = db.beats_after(after[3].id, 100).await.unwrap();
        assert_eq!(tail.len(), 2, "{label}");

        // Deleting a monitor deletes its latest beat.
        db.delete_monitor(shop).await.unwrap();
        assert!(db.latest(shop).await.unwrap().is_none(), "{label}");
        assert_eq!(db.state_counts().await.unwrap()[&State::Down], 0, "{label}");
    }
}
