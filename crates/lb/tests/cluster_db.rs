//! `picket_shared::cluster` (the balancers' lease, fenced moves and history)
//! against real SQLite and MariaDB databases.

use picket_shared::db::DbError;
use picket_shared::db::{ClusterMove, Fence};
use picket_shared::{MonitorId, NodeId};
use picket_testkit::db::backends;
use picket_testkit::monitors::{monitors_on, register};

const L: &str = "leader";

#[tokio::test]
async fn leader_lease_is_exclusive_until_it_expires_or_is_released() {
    for t in backends().await {
        let db = &t.db;
        let now = 1_000_000;
        assert!(
            db.acquire_lease(L, "lb1", 5000, now).await.unwrap(),
            "{}",
            t.label
        );
        assert!(!db.acquire_lease(L, "lb2", 5000, now + 1).await.unwrap());
        // The holder renews; the other still cannot take it.
        assert!(db.acquire_lease(L, "lb1", 5000, now + 3000).await.unwrap());
        assert!(!db.acquire_lease(L, "lb2", 5000, now + 7999).await.unwrap());
        // Expired: the other takes it, and the old holder has lost it.
        assert!(db.acquire_lease(L, "lb2", 5000, now + 8000).await.unwrap());
        assert!(!db.acquire_lease(L, "lb1", 5000, now + 8001).await.unwrap());
        assert_eq!(db.lease(L).await.unwrap().unwrap().holder, "lb2");
        // Released: free at once. Releasing someone else's lease does nothing.
        db.release_lease(L, "lb1").await.unwrap();
        assert!(!db.acquire_lease(L, "lb1", 5000, now + 8002).await.unwrap());
        db.release_lease(L, "lb2").await.unwrap();
        assert!(db.acquire_lease(L, "lb1", 5000, now + 8003).await.unwrap());
    }
}

#[tokio::test]
async fn fenced_moves_need_the_lease_and_the_expected_owner() {
    for t in backends().await {
        let db = &t.db;
        for n in ["a", "b", "c"] {
            register(db, n, "127.0.0.1:1").await;
        }
        monitors_on(db, "a", 2).await;
        let ids: Vec<MonitorId> = db
            .ownership(true)
            .await
            .unwrap()
            .iter()
            .map(|o| o.monitor)
            .collect();
        let (a, b, c) = (NodeId::from("a"), NodeId::from("b"), NodeId::from("c"));
        let assign = vec![
            ClusterMove::Assign {
                monitor: ids[0],
                from: a.clone(),
                to: b.clone(),
            },
            ClusterMove::Assign {
                monitor: ids[1],
                from: a.clone(),
                to: c.clone(),
            },
        ];
        let now = picket_shared::now_ms();
        assert!(db.acquire_lease(L, "lb1", 60_000, now).await.unwrap());
        let rev = db.revision().await.unwrap();

        // Not the holder: rejected, nothing changed.
        let wrong = Fence {
            lease: L,
            holder: "lb2",
            now,
        };
        match db.apply_moves(&assign, Some(wrong)).await {
            Err(DbError::Rejected { field: "lease", .. }) => {}
            other => panic!("{}: {other:?}", t.label),
        }
        assert!(
            db.ownership(true)
                .await
                .unwrap()
                .iter()
                .all(|o| o.assign_node.is_none())
        );

        let fence = Fence {
            lease: L,
            holder: "lb1",
            now,
        };
        assert_eq!(db.apply_moves(&assign, Some(fence)).await.unwrap(), 2);
        assert!(
            db.revision().await.unwrap() > rev,
            "moves bump the revision"
        );
        let own = db.ownership(true).await.unwrap();
        assert_eq!(own[0].owner(), &b);
        assert_eq!(own[1].owner(), &c);
        // The same (now stale) plan again changes nothing.
        assert_eq!(
            db.apply_moves(&assign, Some(fence)).await.unwrap(),
            0,
            "{}",
            t.label
        );

        // Recovery clears the assignment only if it is still the expected one.
        let back = vec![
            ClusterMove::Recover {
                monitor: ids[0],
                from: b.clone(),
            },
            ClusterMove::Recover {
                monitor: ids[1],
                from: b.clone(),
            }, // it is on c
        ];
        assert_eq!(db.apply_moves(&back, Some(fence)).await.unwrap(), 1);
        let own = db.ownership(true).await.unwrap();
        assert_eq!((own[0].assign_node.as_ref(), own[0].owner()), (None, &a));
        assert_eq!(own[1].owner(), &c);

        // Re-homing sets the home and clears the assignment.
        let home = vec![ClusterMove::Home {
            monitor: ids[1],
            from: c.clone(),
            to: c.clone(),
        }];
        assert_eq!(db.apply_moves(&home, Some(fence)).await.unwrap(), 1);
        let own = db.ownership(true).await.unwrap();
        assert_eq!(
            (&own[1].default_node, own[1].assign_node.as_ref()),
            (&c, None)
        );

        // An expired lease fences too.
        let late = Fence {
            lease: L,
            holder: "lb1",
            now: now + 61_000,
        };
        assert!(db.apply_moves(&assign, Some(late)).await.is_err());
    }
}

#[tokio::test]
async fn cluster_events_come_back_newest_first() {
    for t in backends().await {
        let db = &t.db;
        let n = NodeId::from("a");
        db.record_event(1, "node_offline", Some(&n), 0, "3 strikes")
            .await
            .unwrap();
        db.record_event(2, "failover", Some(&n), 7, "7 moved")
            .await
            .unwrap();
        db.record_event(3, "recovery", None, 7, "home")
            .await
            .unwrap();
        let ev = db.recent_events(2).await.unwrap();
        assert_eq!(ev.len(), 2, "{}", t.label);
        assert_eq!(ev[0].kind, "recovery");
        assert_eq!(ev[0].node_id, None);
        assert_eq!(ev[1].kind, "failover");
        assert_eq!(ev[1].moved, 7);
        assert_eq!(ev[1].node_id.as_deref(), Some("a"));
    }
}
