//! A real node (in-process, on 127.0.0.1:0) over real SQLite and MariaDB,
//! checking a local target farm.

use picket_shared::db::ClusterMove;
use picket_shared::{MonitorId, NodeId, now_ms};
use picket_testkit::api::{Api, metric_sum, scrape};
use picket_testkit::db::{self, backends};
use picket_testkit::farm::{Behaviour, Farm};
use picket_testkit::monitors;
use picket_testkit::net::{Proxy, closed_port};
use picket_testkit::node::spawn_node;
use picket_testkit::{WAIT, eventually};
use serde_json::{Value, json};
use std::time::Duration;

async fn latest(api: &Api, id: i64) -> Option<Value> {
    api.heartbeats(id).await.first().cloned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_carry_the_status_of_each_target() {
    for t in backends().await {
        let farm = Farm::start().await.unwrap();
        farm.set("fail", Behaviour::status(500));
        farm.set("slow", Behaviour::slow(Duration::from_secs(3)));
        let node = spawn_node(&t.url, "n1", &[]).await;
        let api = Api::new(node.addr);
        let http = |name: &str, extra: Value| {
            let mut v = json!({"name": name, "type": "http", "url": farm.url(name), "interval": 1});
            v.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            v
        };
        let up = api.create_monitor(http("up", json!({}))).await;
        let fail = api.create_monitor(http("fail", json!({}))).await;
        let slow = api
            .create_monitor(http("slow", json!({"interval": 2, "timeout": 0.5})))
            .await;
        let open = api
            .create_monitor(
                json!({"name": "open", "type": "port", "hostname": "127.0.0.1",
                "port": farm.addr.port(), "interval": 1}),
            )
            .await;
        let closed = api
            .create_monitor(
                json!({"name": "closed", "type": "tcp", "hostname": "127.0.0.1",
                "port": closed_port().await, "interval": 1}),
            )
            .await;

        let cases = [
            (up, 1, "200 - OK"),
            (fail, 0, "500 - Internal Server Error"),
            (slow, 0, "timeout"),
            (open, 1, "is open"),
            (closed, 0, "refused"),
        ];
        for (id, status, msg) in cases {
            let hb = eventually(WAIT, "a heartbeat", || latest(&api, id)).await;
            assert_eq!(hb["status"], status, "{}: monitor {id}: {hb}", t.label);
            assert!(
                hb["msg"].as_str().unwrap().contains(msg),
                "{}: {hb}",
                t.label
            );
            assert_eq!(hb["node_id"], "n1");
            // The list is newest first; with a 1 s interval a later beat may
            // already be there, so look at the oldest.
            let first = api.heartbeats(id).await.last().cloned().unwrap();
            assert_eq!(first["important"], true, "the first beat is important");
        }
        assert!(latest(&api, up).await.unwrap()["ping"].as_f64().unwrap() > 0.0);
        // The target can tell which node checked it.
        assert!(
            farm.hits("up").iter().all(|h| h.node == "n1"),
            "{:?}",
            farm.hits("up")
        );
        node.stop().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_are_pending_until_retries_run_out() {
    let t = db::sqlite().await;
    let farm = Farm::start().await.unwrap();
    farm.set("flaky", Behaviour::status(503));
    let node = spawn_node(&t.url, "n1", &[]).await;
    let api = Api::new(node.addr);
    let id = api
        .create_monitor(
            json!({"name": "flaky", "type": "http", "url": farm.url("flaky"),
            "interval": 1, "retryInterval": 1, "maxretries": 2}),
        )
        .await;
    let beats = eventually(WAIT, "three heartbeats", || async {
        let b = api.heartbeats(id).await;
        (b.len() >= 3).then_some(b)
    })
    .await;
    let mut first3: Vec<_> = beats.iter().rev().take(3).collect();
    first3.truncate(3);
    let statuses: Vec<_> = first3
        .iter()
        .map(|b| b["status"].as_i64().unwrap())
        .collect();
    let important: Vec<_> = first3
        .iter()
        .map(|b| b["important"].as_bool().unwrap())
        .collect();
    assert_eq!(statuses, [2, 2, 0], "pending, pending, down");
    assert_eq!(important, [true, false, true]);
    node.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_monitor_moved_to_another_node_stops_here_within_two_seconds() {
    for t in backends().await {
        let farm = Farm::start().await.unwrap();
        let node = spawn_node(&t.url, "n1", &[]).await;
        let n2 = NodeId::from("n2");
        t.db.register_node(&n2, "n2", "127.0.0.1:9").await.unwrap();
        let api = Api::new(node.addr);
        let id = api
            .create_monitor(json!({"name": "m", "type": "http", "url": farm.url("m"), "interval": 1, "node_id": "n1"}))
            .await;
        eventually(WAIT, "checks by n1", || async {
            (farm.hit_count("m") >= 2).then_some(())
        })
        .await;

        let moved = ClusterMove::Assign {
            monitor: MonitorId(id),
            from: NodeId::from("n1"),
            to: n2.clone(),
        };
        assert_eq!(t.db.apply_moves(&[moved], None).await.unwrap(), 1);
        // The scheduler says when it has stopped the task (no fixed sleep),
        // within the reconcile bound of 2 s plus a second of slack.
        let bound = Duration::from_secs(3);
        eventually(bound, "n1 stops the moved monitor", || async {
            let (_, status) = api.get("/api/v1/status").await;
            status["data"]["running_monitors"] == 0
        })
        .await;

        // Moved back, it runs here again.
        let back = ClusterMove::Assign {
            monitor: MonitorId(id),
            from: n2.clone(),
            to: NodeId::from("n1"),
        };
        assert_eq!(t.db.apply_moves(&[back], None).await.unwrap(), 1);
        let again = now_ms();
        eventually(WAIT, "checks resume", || async {
            farm.hits("m").iter().any(|h| h.at_ms > again).then_some(())
        })
        .await;
        node.stop().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monitors_without_node_id_go_to_the_least_loaded_node_and_run_only_there() {
    for t in backends().await {
        let farm = Farm::start().await.unwrap();
        let n1 = spawn_node(&t.url, "n1", &[]).await;
        let n2 = spawn_node(&t.url, "n2", &[]).await;
        let api = Api::new(n1.addr);
        let mut homes = Vec::new();
        for name in ["a", "b", "c"] {
            let (status, v) = api
                .post(
                    "/api/v1/monitors",
                    &json!({"name": name, "type": "http", "url": farm.url(name), "interval": 1}),
                )
                .await;
            assert_eq!(status, 201, "{v}");
            homes.push(v["data"]["node_id"].as_str().unwrap().to_owned());
        }
        assert_eq!(homes, ["n1", "n2", "n1"], "{}", t.label);
        eventually(WAIT, "every monitor checked", || async {
            ["a", "b", "c"]
                .iter()
                .all(|m| farm.hit_count(m) >= 2)
                .then_some(())
        })
        .await;
        for (name, home) in ["a", "b", "c"].iter().zip(&homes) {
            let nodes: Vec<_> = farm.hits(name).into_iter().map(|h| h.node).collect();
            assert!(
                nodes.iter().all(|n| n == home),
                "{}: {name} checked by {nodes:?}",
                t.label
            );
        }
        let (_, nodes) = api.get("/api/v1/nodes").await;
        let counts: Vec<_> = nodes["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| {
                (
                    n["node_id"].as_str().unwrap().to_owned(),
                    n["monitor_count"].as_i64().unwrap(),
                )
            })
            .collect();
        assert_eq!(counts, [("n1".to_owned(), 2), ("n2".to_owned(), 1)]);
        n1.stop().await.unwrap();
        n2.stop().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_starting_node_checks_every_monitor_it_loads_and_skips_none_as_fenced() {
    for t in backends().await {
        let farm = Farm::start().await.unwrap();
        t.db.create_node(&NodeId::from("n1"), "n1", "127.0.0.1:1")
            .await
            .unwrap();
        // Interval 1 s: the start-up window (90 % of the interval, less the
        // time the node took to start) is about nothing, so every first check
        // is due at once, as the node starts them.
        let names: Vec<String> = (0..300).map(|i| format!("m{i}")).collect();
        for name in &names {
            let m = monitors::valid(json!({
                "name": name, "type": "http", "url": farm.url(name),
                "interval": 1, "timeout": 0.8, "node_id": "n1"
            }));
            t.db.create_monitor(&m).await.unwrap();
        }
        let node = spawn_node(&t.url, "n1", &[]).await;
        eventually(WAIT, "every monitor checked", || async {
            names.iter().all(|n| farm.hit_count(n) >= 1).then_some(())
        })
        .await;
        let text = scrape(&format!("http://{}", node.addr)).await;
        assert_eq!(
            metric_sum(&text, "picket_checks_skipped_total"),
            0.0,
            "{}: no first check may find the lease not yet renewed",
            t.label
        );
        node.stop().await.unwrap();
    }
}

/// Counts heartbeat rows, straight from the database.
async fn heartbeat_rows(db: &picket_shared::db::Db) -> f64 {
    sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM heartbeat")
        .fetch_one(db.pool())
        .await
        .unwrap() as f64
}

/// What became of the checks a node executed, read after it drained and stopped.
struct Accounting {
    /// Heartbeat rows in the database.
    rows: f64,
    /// Checks the node executed.
    executed: f64,
    write_errors: f64,
    dropped: f64,
}

/// Waits until the node's buffer is empty, stops it (final flush), and counts.
async fn drain_and_stop(
    api: &Api,
    node: picket_node::Node,
    db: &picket_shared::db::Db,
) -> Accounting {
    eventually(WAIT, "the buffer drained", || async {
        let (_, s) = api.get("/api/v1/status").await;
        (s["data"]["buffered_heartbeats"] == 0).then_some(())
    })
    .await;
    let metrics = node.metrics.clone();
    node.stop().await.unwrap();
    let text = metrics.render();
    Accounting {
        rows: heartbeat_rows(db).await,
        executed: metric_sum(&text, "picket_checks_total"),
        write_errors: metric_sum(&text, "picket_heartbeat_write_errors_total"),
        dropped: metric_sum(&text, "picket_heartbeats_dropped_total"),
    }
}

async fn create_three(api: &Api, farm: &Farm) {
    for name in ["x", "y", "z"] {
        api.create_monitor(
            json!({"name": name, "type": "http", "url": farm.url(name), "interval": 1}),
        )
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_outage_loses_no_heartbeat() {
    let Some(t) = db::mysql().await else {
        return;
    };
    let proxy = Proxy::start("127.0.0.1:3306".parse().unwrap()).await;
    let url = t.url.replace("127.0.0.1:3306", &proxy.addr.to_string());
    let farm = Farm::start().await.unwrap();
    let node = spawn_node(&url, "n1", &[]).await;
    let api = Api::new(node.addr);
    create_three(&api, &farm).await;
    eventually(WAIT, "heartbeats written", || async {
        (heartbeat_rows(&t.db).await >= 3.0).then_some(())
    })
    .await;

    proxy.cut().await;
    // While the database is unreachable the API says so, and writes nothing.
    let (status, v) = api
        .post(
            "/api/v1/monitors",
            &json!({"name": "late", "type": "http", "url": farm.url("late"), "interval": 1}),
        )
        .await;
    assert_eq!(status, 503, "{v}");
    assert_eq!(v["ok"], false);
    let (status, _) = api.get("/api/v1/health").await;
    assert_eq!(status, 503);
    eventually(WAIT, "results buffered in memory", || async {
        let (_, s) = api.get("/api/v1/status").await;
        (s["data"]["buffered_heartbeats"].as_u64().unwrap() >= 6).then_some(())
    })
    .await;

    proxy.restore();
    let acc = drain_and_stop(&api, node, &t.db).await;
    assert!(acc.write_errors > 0.0, "the outage was felt");
    assert_eq!(acc.dropped, 0.0);
    // Nothing is lost. Writes are at-least-once: a batch whose COMMIT went
    // through just as the connection was cut is written again on retry, so at
    // most that one in-flight batch (a handful of rows here) may appear twice.
    let (rows, executed) = (acc.rows, acc.executed);
    assert!(
        rows >= executed,
        "lost heartbeats: {rows} rows for {executed} checks"
    );
    assert!(
        rows - executed <= 3.0,
        "more duplicates than one batch: {rows} rows for {executed} checks"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_lock_outage_loses_no_heartbeat() {
    use sqlx::Executor;
    let t = db::sqlite().await;
    let farm = Farm::start().await.unwrap();
    let node = spawn_node(&t.url, "n1", &["--lease-ttl-secs", "60"]).await;
    let api = Api::new(node.addr);
    create_three(&api, &farm).await;
    eventually(WAIT, "heartbeats written", || async {
        (heartbeat_rows(&t.db).await >= 3.0).then_some(())
    })
    .await;

    // Another process holding the write lock longer than the busy timeout.
    let mut locker = t.db.pool().acquire().await.unwrap();
    locker.execute("BEGIN EXCLUSIVE").await.unwrap();
    // Past the busy timeout a write fails: the node's metrics say when.
    eventually(WAIT, "a write refused by the lock", || async {
        metric_sum(
            &node.metrics.render(),
            "picket_heartbeat_write_errors_total",
        ) > 0.0
    })
    .await;
    let (_, s) = api.get("/api/v1/status").await;
    assert!(
        s["data"]["buffered_heartbeats"].as_u64().unwrap() > 0,
        "{s}"
    );
    locker.execute("COMMIT").await.unwrap();
    drop(locker);

    let acc = drain_and_stop(&api, node, &t.db).await;
    assert!(acc.write_errors > 0.0, "the lock was felt");
    assert_eq!(acc.dropped, 0.0);
    assert_eq!(acc.rows, acc.executed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_rejected_by_field_and_writes_nothing() {
    let t = db::sqlite().await;
    let node = spawn_node(&t.url, "n1", &["--min-interval-secs", "20"]).await;
    let api = Api::new(node.addr);
    let ok_body =
        json!({"name": "ok", "type": "http", "url": "http://127.0.0.1:1/", "interval": 20});
    let with = |extra: Value| {
        let mut v = ok_body.clone();
        for (k, val) in extra.as_object().unwrap() {
            if val.is_null() {
                v.as_object_mut().unwrap().remove(k);
            } else {
                v[k] = val.clone();
            }
        }
        v.to_string().into_bytes()
    };
    let cases: Vec<(&str, Vec<u8>, u16, &[&str])> = vec![
        ("malformed JSON", b"{\"name\": ".to_vec(), 400, &["body"]),
        ("not an object", b"[1]".to_vec(), 400, &["body"]),
        (
            "unknown type",
            with(json!({"type": "gopher"})),
            400,
            &["type"],
        ),
        (
            "http without url",
            with(json!({"url": null})),
            400,
            &["url"],
        ),
        (
            "tcp without hostname and port",
            with(json!({"type": "port", "url": null})),
            400,
            &["hostname", "port"],
        ),
        (
            "interval too small",
            with(json!({"interval": 19})),
            400,
            &["interval"],
        ),
        (
            "interval over a day",
            with(json!({"interval": 86401})),
            400,
            &["interval"],
        ),
        (
            "timeout not below interval",
            with(json!({"timeout": 20})),
            400,
            &["timeout"],
        ),
        ("bad URL", with(json!({"url": "http//nope"})), 400, &["url"]),
        (
            "bad status range",
            with(json!({"accepted_statuscodes": ["200-2xx"]})),
            400,
            &["accepted_statuscodes"],
        ),
        (
            "wrong JSON type",
            with(json!({"interval": "often"})),
            400,
            &["interval"],
        ),
        (
            "unknown node",
            with(json!({"node_id": "ghost"})),
            400,
            &["node_id"],
        ),
        (
            "several at once",
            with(json!({"name": null, "url": null, "interval": 5})),
            400,
            &["name", "url", "interval"],
        ),
        (
            "body over 1 MiB",
            with(json!({"description": "x".repeat(1024 * 1024)})),
            413,
            &["body"],
        ),
    ];
    for (what, body, status, fields) in cases {
        let (got, v) = api.send("POST", "/api/v1/monitors", Some(body)).await;
        assert_eq!(got, status, "{what}: {v}");
        assert_eq!(v["ok"], false, "{what}");
        let named: Vec<_> = v["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["field"].as_str().unwrap())
            .collect();
        for f in fields {
            assert!(named.contains(f), "{what}: {f} not named in {v}");
        }
    }
    assert!(
        t.db.monitors(None).await.unwrap().is_empty(),
        "nothing was written"
    );
    assert_eq!(t.db.revision().await.unwrap(), 0, "no revision was spent");

    // Unknown and malformed ids.
    assert_eq!(api.get("/api/v1/monitors/999").await.0, 404);
    assert_eq!(
        api.send("DELETE", "/api/v1/monitors/999", None).await.0,
        404
    );
    assert_eq!(
        api.put("/api/v1/monitors/999", &json!({"interval": 30}))
            .await
            .0,
        404
    );
    let (status, v) = api.get("/api/v1/monitors/abc").await;
    assert_eq!(
        (status, v["errors"][0]["field"].as_str()),
        (400, Some("id"))
    );
    assert_eq!(api.get("/api/v1/nodes/ghost").await.0, 404);

    // A bad update leaves the monitor as it was.
    let id = api.create_monitor(ok_body.clone()).await;
    let (status, v) = api
        .put(&format!("/api/v1/monitors/{id}"), &json!({"interval": 5}))
        .await;
    assert_eq!(status, 400, "{v}");
    let (_, m) = api.get(&format!("/api/v1/monitors/{id}")).await;
    assert_eq!(m["data"]["interval"], 20);
    // A good partial update changes only what it names (camelCase or snake_case).
    let (status, v) = api
        .put(
            &format!("/api/v1/monitors/{id}"),
            &json!({"retry_interval": 30}),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        (
            v["data"]["retryInterval"].as_i64(),
            v["data"]["name"].as_str()
        ),
        (Some(30), Some("ok"))
    );
    node.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_keys_are_enforced() {
    for t in backends().await {
        let node = spawn_node(&t.url, "n1", &[]).await;
        let api = Api::new(node.addr);
        let anon = api.without_token();
        for path in [
            "/api/v1/monitors",
            "/api/v1/nodes",
            "/api/v1/nodes/n1/monitors",
        ] {
            let (status, v) = anon.get(path).await;
            assert_eq!(status, 401, "{path}: {v}");
            assert_eq!(v["ok"], false);
        }
        let wrong = Api {
            token: Some("pk1_deadbeef".into()),
            ..api.clone()
        };
        assert_eq!(wrong.get("/api/v1/monitors").await.0, 401);
        assert_eq!(api.get("/api/v1/monitors").await.0, 200, "bootstrap token");
        for path in ["/api/v1/status", "/api/v1/health", "/metrics"] {
            assert_eq!(anon.get(path).await.0, 200, "{path} is public");
        }

        // A key made with the CLI works, as `Bearer` or bare.
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_picket-node"))
            .args(["create-api-key", "--name", "ci"])
            .env("DATABASE_URL", &t.url)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let key = String::from_utf8(out.stdout).unwrap().trim().to_owned();
        let keyed = Api {
            token: Some(key.clone()),
            ..api.clone()
        };
        assert_eq!(keyed.get("/api/v1/monitors").await.0, 200, "{}", t.label);
        let bare = reqwest::Client::new()
            .get(format!("{}/api/v1/nodes", api.base))
            .header("Authorization", &key)
            .send()
            .await
            .unwrap();
        assert_eq!(bare.status(), 200);
        node.stop().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_cookie_opens_the_api_and_its_writes_need_the_csrf_token() {
    for t in backends().await {
        let node = spawn_node(&t.url, "n1", &[]).await;
        let base = format!("http://{}", node.addr);
        let hash = picket_shared::accounts::hash_password("Correct-Horse-9");
        let id =
            t.db.create_first_account("admin", &hash)
                .await
                .unwrap()
                .unwrap();
        let s = t.db.create_session(id).await.unwrap();
        let http = reqwest::Client::new();
        let cookie = format!("theme=dark; picket_session={}", s.token);
        let monitor =
            json!({"name": "m", "type": "http", "url": "http://127.0.0.1:1/", "interval": 20});

        let r = http
            .get(format!("{base}/api/v1/monitors"))
            .header("Cookie", &cookie);
        assert_eq!(r.send().await.unwrap().status(), 200, "{}: a read", t.label);
        let r = http
            .post(format!("{base}/api/v1/monitors"))
            .header("Cookie", &cookie);
        let r = r.json(&monitor).send().await.unwrap();
        assert_eq!(r.status(), 403, "{}: a write without the token", t.label);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["errors"][0]["field"], "X-CSRF-Token", "{v}");
        let r = http
            .post(format!("{base}/api/v1/monitors"))
            .header("Cookie", &cookie);
        let r = r
            .header("X-CSRF-Token", "not-it")
            .json(&monitor)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "{}: a wrong token", t.label);
        let (_, list) = Api::new(node.addr).get("/api/v1/monitors").await;
        assert!(
            list["data"].as_array().unwrap().is_empty(),
            "nothing written: {list}"
        );
        let r = http
            .post(format!("{base}/api/v1/monitors"))
            .header("Cookie", &cookie);
        let r = r
            .header("X-CSRF-Token", &s.csrf)
            .json(&monitor)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "{}: with the token", t.label);

        // Logged out (or forged), the cookie opens nothing.
        t.db.end_session(&s.token).await.unwrap();
        for c in [cookie.as_str(), "picket_session=forged"] {
            let r = http
                .get(format!("{base}/api/v1/monitors"))
                .header("Cookie", c);
            assert_eq!(r.send().await.unwrap().status(), 401, "{}: {c}", t.label);
        }
        node.stop().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_leaves_hands_its_monitors_over_and_takes_them_back_on_return() {
    for t in backends().await {
        let farm = Farm::start().await.unwrap();
        let n1 = spawn_node(&t.url, "n1", &[]).await;
        let n2 = spawn_node(&t.url, "n2", &[]).await;
        let api = Api::new(n2.addr);
        for name in ["p", "q"] {
            api.create_monitor(json!({"name": name, "type": "http", "url": farm.url(name),
                "interval": 1, "timeout": 0.8, "node_id": "n1"}))
                .await;
        }
        eventually(WAIT, "n1 checking", || async {
            farm.hits("p").iter().any(|h| h.node == "n1").then_some(())
        })
        .await;

        n1.stop().await.unwrap();
        let node = t.db.node(&NodeId::from("n1")).await.unwrap().unwrap();
        assert_eq!(
            node.status,
            picket_shared::model::NodeStatus::Leaving,
            "{}",
            t.label
        );
        let owners: Vec<_> =
            t.db.monitors(None)
                .await
                .unwrap()
                .iter()
                .map(|m| m.owner().to_string())
                .collect();
        assert_eq!(owners, ["n2", "n2"], "{}: handed over at once", t.label);
        let left = now_ms();
        eventually(WAIT, "n2 checking the handed-over monitors", || async {
            ["p", "q"]
                .iter()
                .all(|m| {
                    farm.hits(m)
                        .iter()
                        .any(|h| h.node == "n2" && h.at_ms > left)
                })
                .then_some(())
        })
        .await;

        // Back again: online at once, and its monitors come home.
        let n1 = spawn_node(&t.url, "n1", &[]).await;
        let owners: Vec<_> =
            t.db.monitors(None)
                .await
                .unwrap()
                .iter()
                .map(|m| m.owner().to_string())
                .collect();
        assert_eq!(owners, ["n1", "n1"], "{}", t.label);
        n1.stop().await.unwrap();
        n2.stop().await.unwrap();
    }
}

#[tokio::test]
async fn a_leaving_node_cannot_move_a_monitor_the_leader_moved_first() {
    // The race: a node plans its leave, the leader fails one of its monitors
    // over before the plan is applied. The leader's move must stand: the
    // leaving node may move only what it still owns.
    for t in backends().await {
        let db = &t.db;
        let (n1, n2, n3) = (NodeId::from("n1"), NodeId::from("n2"), NodeId::from("n3"));
        for n in [&n1, &n2, &n3] {
            db.register_node(n, n.as_str(), "127.0.0.1:1")
                .await
                .unwrap();
        }
        let on = |node: &str, name: &str| monitors::http(name, Some(node), "http://127.0.0.1:1/");
        let m = db.create_monitor(&on("n1", "m")).await.unwrap().id;
        // n2 already runs one, so the leave plan sends m to n3.
        db.create_monitor(&on("n2", "other")).await.unwrap();

        let plan = picket_node::plan_leave(db, &n1).await.unwrap();
        assert_eq!(
            plan,
            vec![ClusterMove::Assign {
                monitor: m,
                from: n1.clone(),
                to: n3.clone()
            }],
            "{}",
            t.label
        );
        // Meanwhile the leader fails m over to n2.
        let now = now_ms();
        assert!(db.acquire_lease("leader", "lb", 10_000, now).await.unwrap());
        let fence = picket_shared::db::Fence {
            lease: "leader",
            holder: "lb",
            now,
        };
        let failover = ClusterMove::Assign {
            monitor: m,
            from: n1.clone(),
            to: n2.clone(),
        };
        assert_eq!(db.apply_moves(&[failover], Some(fence)).await.unwrap(), 1);

        // The leaving node's stale plan changes nothing: m stays with n2,
        // owned once, not moved on to n3.
        assert_eq!(db.apply_moves(&plan, None).await.unwrap(), 0, "{}", t.label);
        let owner = db.monitor(m).await.unwrap().unwrap().owner().clone();
        assert_eq!(owner, n2, "{}", t.label);
    }
}
