//! The node's edges, tried as a hostile or careless client would: secrets
//! kept out of metrics, the framework's refusals in the API's envelope,
//! slow and abusive clients bounded, an egress policy for checks, and
//! values that would be stored and then be unusable refused.

use picket_testkit::api::{Api, scrape};
use picket_testkit::db;
use picket_testkit::farm::Farm;
use picket_testkit::net::client;
use picket_testkit::node::spawn_node;
use picket_testkit::{TOKEN, WAIT, eventually};
use serde_json::{Value, json};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_labels_carry_no_credentials_or_query_strings() {
    let t = db::sqlite().await;
    let farm = Farm::start().await.unwrap();
    let node = spawn_node(&t.url, "n1", &[]).await;
    let api = Api::new(node.addr);
    let url = farm
        .url("m")
        .replacen("http://", "http://scraper:hunter2@", 1)
        + "?token=s3cret#frag";
    api.create_monitor(json!({"name": "creds", "type": "http", "url": url, "interval": 1}))
        .await;
    let base = format!("http://{}", node.addr);
    let text = eventually(WAIT, "the monitor's series", || async {
        let t = scrape(&base).await;
        t.contains("monitor_name=\"creds\"").then_some(t)
    })
    .await;
    assert!(
        !text.contains("hunter2") && !text.contains("scraper"),
        "{text}"
    );
    assert!(!text.contains("s3cret") && !text.contains("frag"), "{text}");
    let want = format!("monitor_url=\"{}\"", farm.url("m"));
    assert!(text.contains(&want), "{want} in {text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_can_require_a_token_or_an_api_key_as_the_basic_password() {
    let t = db::sqlite().await;
    let node = spawn_node(&t.url, "n1", &["--metrics-token", "metrics-secret"]).await;
    let url = format!("http://{}/metrics", node.addr);
    let http = client();
    let status = |r: reqwest::Response| r.status().as_u16();

    let r = http.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers().contains_key("www-authenticate"));
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["ok"], false, "{body}");

    let bearer = http.get(&url).bearer_auth("metrics-secret").send().await;
    assert_eq!(status(bearer.unwrap()), 200);
    let wrong = http.get(&url).bearer_auth("nope").send().await;
    assert_eq!(status(wrong.unwrap()), 401);
    // Uptime Kuma's form: any user name, an API key as the password.
    let (_, key) =
        t.db.create_api_key("prometheus", picket_shared::auth::Scope::Read)
            .await
            .unwrap();
    let basic = http.get(&url).basic_auth("", Some(&key)).send().await;
    let basic = basic.unwrap();
    assert_eq!(basic.status(), 200);
    assert!(basic.text().await.unwrap().contains("picket_"));
    let bad = http
        .get(&url)
        .basic_auth("x", Some("pk1_wrong"))
        .send()
        .await;
    assert_eq!(status(bad.unwrap()), 401);

    // Without the setting, metrics stay open (Prometheus's default).
    let open = spawn_node(&t.url, "n2", &[]).await;
    let r = http
        .get(format!("http://{}/metrics", open.addr))
        .send()
        .await;
    assert_eq!(status(r.unwrap()), 200);
}

/// The framework's own refusals come in the envelope, naming what was wrong.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_refusal_is_in_the_envelope_naming_the_field() {
    let t = db::sqlite().await;
    let node = spawn_node(&t.url, "n1", &[]).await;
    let api = Api::new(node.addr);
    let id = api
        .create_monitor(json!({"name": "p", "type": "push", "interval": 60}))
        .await;
    let cases: [(&str, String, u16, &str); 5] = [
        ("DELETE", "/api/v1/status".into(), 405, "method"),
        ("PATCH", format!("/api/v1/monitors/{id}"), 405, "method"),
        ("GET", "/api/v1/nodes/%FF%FE".into(), 400, "path"),
        (
            "GET",
            format!("/api/v1/monitors/{id}/heartbeats?period=1&period=2"),
            400,
            "query",
        ),
        ("GET", "/api/v1/no-such-route".into(), 404, ""),
    ];
    for (method, path, want, field) in cases {
        let (status, v) = api.send(method, &path, None).await;
        assert_eq!(status, want, "{method} {path}: {v}");
        assert_eq!(v["ok"], false, "{method} {path}: {v}");
        assert!(v["msg"].as_str().is_some_and(|m| !m.is_empty()), "{v}");
        if !field.is_empty() {
            assert_eq!(v["errors"][0]["field"], field, "{method} {path}: {v}");
        }
    }
    let r = client()
        .delete(format!("http://{}/api/v1/status", node.addr))
        .send()
        .await
        .unwrap();
    assert!(r.headers()["allow"].to_str().unwrap().contains("GET"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn values_that_would_be_unusable_are_refused_and_nothing_is_stored() {
    let t = db::sqlite().await;
    let node = spawn_node(&t.url, "n1", &[]).await;
    let api = Api::new(node.addr);
    let http = json!({"name": "a", "type": "http", "url": "http://127.0.0.1:9/", "interval": 60});
    let with = |k: &str, v: Value| {
        let mut b = http.clone();
        b[k] = v;
        b
    };
    let cases = [
        (with("timeout", json!(0.0004)), "timeout"),
        (with("name", json!("n".repeat(256))), "name"),
        (
            with("url", json!(format!("http://x.test/{}", "u".repeat(2100)))),
            "url",
        ),
        (
            with("headers", json!({"X-A": "v\r\nX-Injected: 1"})),
            "headers",
        ),
        (with("pushToken", json!("abcdefghijkl")), "pushToken"),
        (
            json!({"name": "p", "type": "port", "hostname": "http://db.internal", "port": 5432}),
            "hostname",
        ),
        (
            json!({"name": "p", "type": "ping", "hostname": "exa mple"}),
            "hostname",
        ),
        (
            json!({"name": "p", "type": "push", "pushToken": "short"}),
            "pushToken",
        ),
    ];
    for (body, field) in cases {
        let (status, v) = api.post("/api/v1/monitors", &body).await;
        assert_eq!(status, 400, "{v}");
        assert_eq!(v["errors"][0]["field"], field, "{v}");
    }
    // An update is held to the same rules, and leaves the monitor as it was.
    let id = api.create_monitor(http.clone()).await;
    let (status, v) = api
        .put(
            &format!("/api/v1/monitors/{id}"),
            &json!({"timeout": 0.0004}),
        )
        .await;
    assert_eq!(
        (status, v["errors"][0]["field"].clone()),
        (400, json!("timeout"))
    );
    let (_, v) = api.get(&format!("/api/v1/monitors/{id}")).await;
    assert_eq!(v["data"]["timeout"], 48.0, "{v}");
    let (_, list) = api.get("/api/v1/monitors").await;
    assert_eq!(
        list["data"].as_array().unwrap().len(),
        1,
        "nothing half-written"
    );

    // A node's host is host:port, nothing else.
    for host in ["http://n9:80", "n9", "n9:0", "n\u{0}9:80"] {
        let (status, v) = api
            .post("/api/v1/nodes", &json!({"node_id": "n9", "host": host}))
            .await;
        assert_eq!(
            (status, v["errors"][0]["field"].clone()),
            (400, json!("host")),
            "{host:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_authentication_is_rate_limited_per_client() {
    let t = db::sqlite().await;
    let node = spawn_node(&t.url, "n1", &[]).await;
    let api = Api::new(node.addr);
    let mut bad = api.clone();
    bad.token = Some("pk99_guess".into());
    for _ in 0..10 {
        assert_eq!(bad.get("/api/v1/monitors").await.0, 401);
    }
    let r = client()
        .get(format!("http://{}/api/v1/monitors", node.addr))
        .bearer_auth("pk98_another-guess")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    let wait: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["ok"], false);
    // The address is held back, whatever key it tries now.
    assert_eq!(api.get("/api/v1/monitors").await.0, 429);
    // A client the balancer says is someone else is not.
    let other = client()
        .get(format!("http://{}/api/v1/monitors", node.addr))
        .bearer_auth(TOKEN)
        .header("X-Real-IP", "192.0.2.7")
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 200);

    // Guessing push tokens counts the same way.
    let node2 = spawn_node(&t.url, "n2", &[]).await;
    let push = |tok: String| {
        let url = format!("http://{}/api/push/{tok}", node2.addr);
        async move { client().get(url).send().await.unwrap().status().as_u16() }
    };
    for i in 0..10 {
        assert_eq!(push(format!("guess{i:08}")).await, 404);
    }
    assert_eq!(push("guess-eleven".into()).await, 429);
}

/// A client that trickles its request head is cut off; a node holds no
/// more connections than it is allowed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_are_cut_off_and_connections_are_capped() {
    let t = db::sqlite().await;
    let node = spawn_node(&t.url, "n1", &["--header-timeout-secs", "1"]).await;
    let mut s = TcpStream::connect(node.addr).await.unwrap();
    s.write_all(b"GET /api/v1/status HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let closed = tokio::time::timeout(WAIT, async {
        // A byte now and then keeps an idle timeout at bay; not the deadline.
        let mut ticks = tokio::time::interval(Duration::from_millis(300));
        loop {
            tokio::select! {
                n = s.read_buf(&mut buf) => break n,
                _ = ticks.tick() => { let _ = s.write_all(b"X-Slow: 1\r\n").await; }
            }
        }
    })
    .await;
    assert!(
        matches!(closed, Ok(Ok(_))),
        "the trickling connection was not closed"
    );

    let capped = spawn_node(&t.url, "n2", &["--max-connections", "2"]).await;
    let idle1 = TcpStream::connect(capped.addr).await.unwrap();
    let idle2 = TcpStream::connect(capped.addr).await.unwrap();
    let url = format!("http://{}/api/v1/status", capped.addr);
    let quick = reqwest::Client::builder()
        .timeout(Duration::from_millis(700))
        .build()
        .unwrap();
    assert!(
        quick.get(&url).send().await.is_err(),
        "a third connection was served past the cap of two"
    );
    drop((idle1, idle2));
    let r = eventually(WAIT, "served once a connection closed", || async {
        quick.get(&url).send().await.ok()
    })
    .await;
    assert_eq!(r.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checks_cannot_reach_what_the_egress_policy_denies() {
    let t = db::sqlite().await;
    let farm = Farm::start().await.unwrap();
    // The farm listens on 127.0.0.1; deny it, so a name resolving there is refused.
    let node = spawn_node(&t.url, "n1", &["--deny-targets", "127.0.0.1/32,::1/128"]).await;
    let api = Api::new(node.addr);

    let (status, v) = api
        .post(
            "/api/v1/monitors",
            &json!({"name": "m", "type": "http", "url": farm.url("x"), "interval": 60}),
        )
        .await;
    assert_eq!(
        (status, v["errors"][0]["field"].clone()),
        (400, json!("url")),
        "{v}"
    );

    let by_name = farm.url("x").replace("127.0.0.1", "localhost");
    let id = api
        .create_monitor(json!({"name": "named", "type": "http", "url": by_name, "interval": 1}))
        .await;
    let port = api
        .create_monitor(
            json!({"name": "tcp", "type": "port", "hostname": "localhost",
            "port": farm.addr.port(), "interval": 1}),
        )
        .await;
    for id in [id, port] {
        let beat = eventually(WAIT, "a beat", || async {
            api.heartbeats(id).await.first().cloned()
        })
        .await;
        assert_eq!(beat["status"], 0, "{beat}");
        assert!(
            beat["msg"].as_str().unwrap().contains("egress policy"),
            "{beat}"
        );
    }
    assert_eq!(farm.hit_count("x"), 0, "the target was never reached");

    // The default denies the cloud metadata addresses and nothing else.
    let open = spawn_node(&t.url, "n2", &[]).await;
    let api = Api::new(open.addr);
    let (status, v) = api
        .post(
            "/api/v1/monitors",
            &json!({"name": "meta", "type": "http", "url": "http://169.254.169.254/latest/meta-data/"}),
        )
        .await;
    assert_eq!(status, 400, "{v}");
    assert!(
        v["errors"][0]["msg"]
            .as_str()
            .unwrap()
            .contains("PICKET_DENY_TARGETS")
    );
}

/// Keys carry scopes: `read` looks, `write` also changes monitors, `admin`
/// also manages nodes and keys. Made and revoked through the API.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_keys_have_scopes() {
    let t = db::sqlite().await;
    let node = spawn_node(&t.url, "n1", &[]).await;
    let admin = Api::new(node.addr);
    let mut keys = Vec::new();
    for scope in ["read", "write", "admin"] {
        let (status, v) = admin
            .post(
                "/api/v1/api-keys",
                &json!({"name": format!("{scope} key"), "scope": scope}),
            )
            .await;
        assert_eq!(status, 201, "{v}");
        assert_eq!(v["data"]["scope"], scope);
        let mut api = admin.clone();
        api.token = Some(v["data"]["token"].as_str().unwrap().to_owned());
        keys.push((v["data"]["id"].as_i64().unwrap(), api));
    }
    let monitor = json!({"name": "m", "type": "push", "interval": 60});
    let node_body = json!({"node_id": "n9", "host": "n9:3001"});
    let (read, write, adm) = (&keys[0].1, &keys[1].1, &keys[2].1);

    assert_eq!(read.get("/api/v1/monitors").await.0, 200);
    let (status, v) = read.post("/api/v1/monitors", &monitor).await;
    assert_eq!(status, 403, "{v}");
    assert!(v["msg"].as_str().unwrap().contains("needs write"), "{v}");
    assert_eq!(write.post("/api/v1/monitors", &monitor).await.0, 201);
    assert_eq!(write.post("/api/v1/nodes", &node_body).await.0, 403);
    assert_eq!(write.get("/api/v1/api-keys").await.0, 403);
    assert_eq!(adm.post("/api/v1/nodes", &node_body).await.0, 201);

    // The list shows scopes, never a secret.
    let (status, list) = adm.get("/api/v1/api-keys").await;
    assert_eq!(status, 200);
    assert_eq!(list["data"].as_array().unwrap().len(), 3);
    assert!(!list.to_string().contains(write.token.as_deref().unwrap()));
    assert!(
        list["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|k| k.get("token").is_none())
    );

    let (status, v) = admin
        .post("/api/v1/api-keys", &json!({"name": "x", "scope": "root"}))
        .await;
    assert_eq!(
        (status, v["errors"][0]["field"].clone()),
        (400, json!("scope"))
    );

    // Revoked: it opens nothing.
    let (wid, _) = &keys[1];
    let (status, _) = admin
        .send("DELETE", &format!("/api/v1/api-keys/{wid}"), None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(write.get("/api/v1/monitors").await.0, 401);
}
