//! The balancer in front of stand-in nodes registered in a real database
//! (SQLite, and MariaDB when reachable): routing, pinning, retries, local
//! endpoints, DNS following, and streaming pass-through.

use picket_shared::NodeId;
use picket_shared::model::NodeStatus;
use picket_testkit::api::scrape;
use picket_testkit::db::{backends, sqlite};
use picket_testkit::dns::*;
use picket_testkit::lb::*;
use picket_testkit::monitors::*;
use picket_testkit::net::*;
use picket_testkit::{WAIT, eventually};
use serde_json::json;
use std::collections::BTreeSet;
use std::net::Ipv4Addr;

#[tokio::test]
async fn least_loaded_pick_follows_monitor_counts() {
    for t in backends().await {
        let (a, b) = (backend("a").await, backend("b").await);
        register(&t.db, "a", &a.addr.to_string()).await;
        register(&t.db, "b", &b.addr.to_string()).await;
        monitors_on(&t.db, "a", 3).await;
        monitors_on(&t.db, "b", 1).await;
        let lb = spawn_lb(&t.url, &[]).await;
        lb.update_loads().await;
        for _ in 0..5 {
            assert_eq!(
                lb.routed("/x").await,
                ("b".into(), "b".into()),
                "{}",
                t.label
            );
        }
        monitors_on(&t.db, "b", 3).await; // b: 4, a: 3
        lb.update_loads().await;
        for _ in 0..5 {
            assert_eq!(lb.routed("/x").await.0, "a", "{}", t.label);
        }
        assert_eq!(b.hits(), 5);
        assert_eq!(a.hits(), 5);
    }
}

#[tokio::test]
async fn offline_and_leaving_nodes_never_receive_traffic() {
    for t in backends().await {
        let (a, b, c) = (backend("a").await, backend("b").await, backend("c").await);
        register(&t.db, "a", &a.addr.to_string()).await;
        register(&t.db, "b", &b.addr.to_string()).await;
        register(&t.db, "c", &c.addr.to_string()).await;
        monitors_on(&t.db, "c", 2).await; // a and b are emptier, but down
        t.db.set_node_status(&NodeId::from("a"), NodeStatus::Offline)
            .await
            .unwrap();
        t.db.set_node_status(&NodeId::from("b"), NodeStatus::Leaving)
            .await
            .unwrap();
        let lb = spawn_lb(&t.url, &[]).await;
        lb.update_loads().await;
        for _ in 0..10 {
            assert_eq!(lb.routed("/").await.0, "c", "{}", t.label);
        }
        assert_eq!((a.hits(), b.hits(), c.hits()), (0, 0, 10), "{}", t.label);
    }
}

#[tokio::test]
async fn sticky_cookie_pins_and_unpins() {
    let t = sqlite().await;
    let (a, b) = (backend("a").await, backend("b").await);
    register(&t.db, "a", &a.addr.to_string()).await;
    register(&t.db, "b", &b.addr.to_string()).await;
    monitors_on(&t.db, "a", 5).await; // least-loaded is b
    let lb = spawn_lb(&t.url, &[]).await;
    lb.update_loads().await;

    let r = client()
        .get(lb.url("/lb/fixed-node/a"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.starts_with("picket_node=a;"), "{cookie}");
    let pin = "picket_node=a";

    let routed = |cookie: Option<&'static str>| {
        let url = lb.url("/page");
        async move {
            let mut rq = client().get(url);
            if let Some(c) = cookie {
                rq = rq.header("cookie", c);
            }
            let r = rq.send().await.unwrap();
            r.headers()["x-routed-to"].to_str().unwrap().to_owned()
        }
    };
    for _ in 0..3 {
        assert_eq!(routed(Some(pin)).await, "a");
        assert_eq!(routed(None).await, "b");
    }
    let st: serde_json::Value = client()
        .get(lb.url("/lb/fixed-node-status"))
        .header("cookie", pin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(st["fixed"], true);
    assert_eq!(st["node"], "a");
    assert_eq!(st["active"], true);

    // The pin holds only while the node is online.
    t.db.set_node_status(&NodeId::from("a"), NodeStatus::Offline)
        .await
        .unwrap();
    lb.update_loads().await;
    assert_eq!(routed(Some(pin)).await, "b");

    // Unpin: the cookie is expired.
    let r = client()
        .get(lb.url("/lb/clear-fixed-node"))
        .send()
        .await
        .unwrap();
    assert!(
        r.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );

    // POST set-fixed-node: offline, unknown, malformed, oversize.
    let post = |body: Vec<u8>| {
        client()
            .post(lb.url("/lb/set-fixed-node"))
            .body(body)
            .send()
    };
    assert_eq!(
        post(br#"{"node":"a"}"#.to_vec()).await.unwrap().status(),
        400
    );
    assert_eq!(
        post(br#"{"node":"zz"}"#.to_vec()).await.unwrap().status(),
        400
    );
    assert_eq!(post(b"{not json".to_vec()).await.unwrap().status(), 400);
    assert_eq!(post(vec![b' '; 100_000]).await.unwrap().status(), 413);
    let r = post(br#"{"node":"b","expires":60}"#.to_vec())
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains("picket_node=b;")
    );
    assert!(
        r.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Max-Age=60")
    );
}

#[tokio::test]
async fn refused_connections_are_retried_on_the_next_node() {
    let t = sqlite().await;
    let b = backend("b").await;
    // `dead` is the least loaded but nothing listens on its port.
    let dead = free_port();
    register(&t.db, "dead", &format!("127.0.0.1:{dead}")).await;
    register(&t.db, "b", &b.addr.to_string()).await;
    monitors_on(&t.db, "b", 3).await;
    let lb = spawn_lb(&t.url, &[]).await;
    lb.update_loads().await;
    for _ in 0..3 {
        assert_eq!(lb.routed("/x").await.0, "b");
        // Any method: nothing was sent to the dead node.
        let r = client()
            .post(lb.url("/submit"))
            .body("payload")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["x-routed-to"], "b");
    }
    let metrics = scrape(&lb.url("")).await;
    assert!(
        metrics.contains("picket_lb_connect_retries_total{node=\"dead\"} 6"),
        "{metrics}"
    );
}

#[tokio::test]
async fn no_online_node_is_a_503_json() {
    for t in backends().await {
        let a = backend("a").await;
        register(&t.db, "a", &a.addr.to_string()).await;
        t.db.set_node_status(&NodeId::from("a"), NodeStatus::Offline)
            .await
            .unwrap();
        let lb = spawn_lb(&t.url, &[]).await;
        lb.update_loads().await;
        let r = client()
            .get(lb.url("/api/v1/monitors"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 503, "{}", t.label);
        let j: serde_json::Value = r.json().await.unwrap();
        assert_eq!(j["ok"], false);
        assert!(j["msg"].as_str().unwrap().contains("no online node"), "{j}");
        // Every node refusing is a 503 too.
        let dead = free_port();
        t.db.update_node(&NodeId::from("a"), None, Some(&format!("127.0.0.1:{dead}")))
            .await
            .unwrap();
        t.db.set_node_status(&NodeId::from("a"), NodeStatus::Online)
            .await
            .unwrap();
        lb.update_loads().await;
        let r = client().get(lb.url("/")).send().await.unwrap();
        assert_eq!(r.status(), 503, "{}", t.label);
        assert_eq!(a.hits(), 0);
    }
}

#[tokio::test]
async fn local_endpoints_answer_with_their_json_shapes() {
    for t in backends().await {
        let (a, b) = (backend("a").await, backend("b").await);
        register(&t.db, "a", &a.addr.to_string()).await;
        register(&t.db, "b", &b.addr.to_string()).await;
        monitors_on(&t.db, "a", 2).await;
        t.db.set_node_status(&NodeId::from("b"), NodeStatus::Offline)
            .await
            .unwrap();
        let lb = spawn_lb(&t.url, &["--capacity-per-node", "100"]).await;
        lb.update_loads().await;

        assert_eq!(lb.get_json("/health").await["status"], "ok");
        assert_eq!(lb.get_json("/lb/ping").await["msg"], "pong");
        let h = lb.get_json("/lb/health").await;
        assert_eq!(h["nodes"][0]["node_id"], "a");
        assert_eq!(h["nodes"][0]["status"], "online");
        assert_eq!(h["nodes"][0]["monitor_count"], 2);
        assert_eq!(h["nodes"][0]["host"], a.addr.to_string());
        assert!(h["nodes"][0]["last_seen"].as_i64().unwrap() > 0);
        assert_eq!(h["nodes"][1]["status"], "offline");

        let c = lb.get_json("/lb/capacity").await;
        assert_eq!(c["limit_per_node"], 100);
        assert_eq!(c["nodes"][0]["current_count"], 2);
        assert_eq!(c["nodes"][0]["usage_percent"], 2.0);

        let ns = lb.get_json("/lb/node-status").await;
        assert_eq!(ns["nodes"][0]["address"], a.addr.to_string());
        assert_eq!(ns["nodes"][0]["routable"], true);
        assert_eq!(ns["nodes"][1]["routable"], false);

        let lbs = lb.get_json("/lb/load-balancer-status").await;
        assert_eq!(lbs["strategy"], "least-loaded");
        assert_eq!(lbs["routable_nodes"], json!(["a"]));
        assert!(lbs["node_view"]["age_ms"].as_i64().unwrap() >= 0);
        assert!(lbs["node_view"]["db_error"].is_null());

        let sys = lb.get_json("/lb/system-status").await;
        for k in ["load_balancer", "nodes", "capacity", "health"] {
            assert!(!sys[k].is_null(), "system-status lacks {k}: {sys}");
        }
        let hs = lb.get_json("/api/health-check-status").await;
        assert_eq!(hs["config"]["fall"], 3);
        assert_eq!(
            lb.get_json("/lb/available-nodes").await["nodes"][0]["node_id"],
            "a"
        );

        // Unknown /lb/* is the balancer's 404, not the node's.
        let r = client().get(lb.url("/lb/nope")).send().await.unwrap();
        assert_eq!(r.status(), 404);
        assert!(r.headers().get("x-routed-to").is_none());
        assert_eq!(r.json::<serde_json::Value>().await.unwrap()["ok"], false);
        assert_eq!(a.hits(), 0, "{}", t.label);

        // Mutating endpoints: 401 without a token or with a wrong one, 200
        // with the bootstrap token or an admin key from the database.
        let url = lb.url("/api/update-loads");
        let r = client().post(&url).send().await.unwrap();
        assert_eq!(r.status(), 401);
        assert_eq!(r.json::<serde_json::Value>().await.unwrap()["ok"], false);
        let r = client()
            .post(&url)
            .bearer_auth("wrong")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
        let (_, key) =
            t.db.create_api_key("ops", picket_shared::auth::Scope::Admin)
                .await
                .unwrap();
        let r = client().post(&url).bearer_auth(&key).send().await.unwrap();
        assert_eq!(r.status(), 200, "{}", t.label);
        let r = client()
            .post(&url)
            .bearer_auth(format!("{key}x"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
        // A dashboard session opens it too, with its CSRF token in the header.
        let hash = picket_shared::accounts::hash_password("Correct-Horse-Battery-9");
        let account =
            t.db.create_first_account("admin", &hash)
                .await
                .unwrap()
                .unwrap();
        let s = t.db.create_session(account).await.unwrap();
        let cookie = format!("picket_session={}", s.token);
        for (csrf, want) in [
            (None, 401),
            (Some("forged"), 401),
            (Some(s.csrf.as_str()), 200),
        ] {
            let mut req = client().post(&url).header("cookie", &cookie);
            if let Some(c) = csrf {
                req = req.header("x-csrf-token", c);
            }
            assert_eq!(
                req.send().await.unwrap().status(),
                want,
                "{}: {csrf:?}",
                t.label
            );
        }
        t.db.end_session(&s.token).await.unwrap();
        let r = client()
            .post(&url)
            .header("cookie", &cookie)
            .header("x-csrf-token", &s.csrf)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{}: logged out", t.label);

        // Forwarding headers reach the node; X-Routed-To comes back.
        let r = client()
            .get(lb.url("/echo-headers"))
            .header("x-forwarded-for", "203.0.113.9")
            .send()
            .await
            .unwrap();
        assert_eq!(r.headers()["x-routed-to"], "a");
        let j: serde_json::Value = r.json().await.unwrap();
        assert_eq!(j["headers"]["x-forwarded-for"], "203.0.113.9, 127.0.0.1");
        assert_eq!(j["headers"]["x-real-ip"], "127.0.0.1");
        assert_eq!(j["headers"]["x-forwarded-proto"], "http");
        // Without a chain from the client, the chain starts with the client.
        let r = client().get(lb.url("/echo-headers")).send().await.unwrap();
        let j: serde_json::Value = r.json().await.unwrap();
        assert_eq!(j["headers"]["x-forwarded-for"], "127.0.0.1");
        assert_eq!(j["headers"]["x-real-ip"], "127.0.0.1");

        let m = scrape(&lb.url("")).await;
        for name in [
            "picket_lb_requests_total{class=\"2xx\",node=\"a\"}",
            "picket_lb_upstream_latency_seconds_bucket",
            "picket_lb_node_up{node=\"a\"} 1",
            "picket_lb_node_up{node=\"b\"} 0",
            "picket_lb_snapshot_age_ms",
        ] {
            assert!(m.contains(name), "metrics lack {name}:\n{m}");
        }
    }
}

#[tokio::test]
async fn a_renamed_address_is_followed_within_the_ttl_cap() {
    let t = sqlite().await;
    let dns = dns_server().await;
    // Two stand-ins for one node before and after a container restart: same
    // port, two loopback addresses.
    let old = backend("old").await;
    let port = old.addr.port();
    let new = backend_on("new", format!("127.0.0.2:{port}").parse().unwrap()).await;
    dns.set("node-x.test", Ipv4Addr::new(127, 0, 0, 1));
    register(&t.db, "x", &format!("node-x.test:{port}")).await;
    register(&t.db, "ghost", "ghost.test:3001").await; // never resolves
    let ns = dns.addr.to_string();
    let lb = spawn_lb(&t.url, &["--dns-servers", &ns, "--dns-ttl-cap-secs", "1"]).await;
    eventually(WAIT, "routed to the old address", || async {
        lb.update_loads().await;
        client()
            .get(lb.url("/"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
    })
    .await;
    assert_eq!(lb.routed("/").await, ("x".into(), "old".into()));

    // The name that does not resolve is the only unroutable node, and says so.
    let st = lb.get_json("/lb/node-status").await;
    let ghost = &st["nodes"][0];
    assert_eq!(ghost["node_id"], "ghost");
    assert_eq!(ghost["routable"], false);
    assert!(
        ghost["resolve_error"]
            .as_str()
            .unwrap()
            .contains("ghost.test"),
        "{ghost}"
    );
    assert_eq!(st["nodes"][1]["routable"], true);

    // The record's TTL is 600 s; the 1 s cap makes the balancer ask again.
    dns.set("node-x.test", Ipv4Addr::new(127, 0, 0, 2));
    eventually(WAIT, "routed to the new address", || async {
        let r = client().get(lb.url("/")).send().await.unwrap();
        r.text().await.unwrap() == "new"
    })
    .await;
    let (before_old, before_new) = (old.hits(), new.hits());
    for _ in 0..5 {
        assert_eq!(lb.routed("/").await.1, "new");
    }
    assert_eq!(old.hits(), before_old);
    assert_eq!(new.hits(), before_new + 5);
}

#[tokio::test]
async fn ip_literal_hosts_need_no_dns() {
    let t = sqlite().await;
    let dns = dns_server().await;
    let a = backend("a").await;
    register(&t.db, "a", &a.addr.to_string()).await;
    let ns = dns.addr.to_string();
    let lb = spawn_lb(&t.url, &["--dns-servers", &ns]).await;
    lb.update_loads().await;
    assert_eq!(lb.routed("/").await.0, "a");
    assert_eq!(dns.queries.load(std::sync::atomic::Ordering::SeqCst), 0);
}

#[tokio::test]
async fn database_outage_keeps_the_last_good_view() {
    let t = sqlite().await;
    let a = backend("a").await;
    register(&t.db, "a", &a.addr.to_string()).await;
    let lb = spawn_lb(&t.url, &[]).await;
    lb.update_loads().await;
    // Break the database under the balancer: drop the node table.
    sqlx::query("ALTER TABLE node RENAME TO node_gone")
        .execute(t.db.pool())
        .await
        .unwrap();
    eventually(WAIT, "the refresh error is reported", || async {
        !lb.get_json("/lb/load-balancer-status").await["node_view"]["db_error"].is_null()
    })
    .await;
    assert_eq!(lb.routed("/").await.0, "a");
    let names: BTreeSet<String> = lb.get_json("/lb/health").await["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["node_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, BTreeSet::from(["a".to_owned()]));
}
