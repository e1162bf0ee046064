//! The dashboard's pages over HTTP against a real node and database: what
//! users typed is escaped, every form needs its CSRF token, a failed login
//! says the same whatever failed and is rate limited, and with 10,000
//! monitors the dashboard counts, pages and filters right.

use picket_shared::model::{Heartbeat, Status};
use picket_shared::{MonitorId, NodeId};
use picket_testkit::db::{backends, sqlite};
use picket_testkit::monitors;
use picket_testkit::node::spawn_node;
use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};
use serde_json::json;

const PASSWORD: &str = "Correct-Horse-Battery-9";

const FORM: &str = "application/x-www-form-urlencoded";

/// A form body, as a browser sends it.
fn form_body(pairs: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// A session for a new admin account: its cookie header and CSRF token.
async fn logged_in(db: &picket_shared::db::Db) -> (String, String) {
    let hash = picket_shared::accounts::hash_password(PASSWORD);
    let id = db
        .create_first_account("admin", &hash)
        .await
        .unwrap()
        .unwrap();
    let s = db.create_session(id).await.unwrap();
    (format!("picket_session={}", s.token), s.csrf)
}

async fn get(base: &str, path: &str, cookie: &str) -> (StatusCode, String) {
    let r = http()
        .get(format!("{base}{path}"))
        .header(COOKIE, cookie)
        .send()
        .await
        .unwrap();
    (r.status(), r.text().await.unwrap())
}

async fn post(base: &str, path: &str, cookie: &str, form: &[(&str, &str)]) -> reqwest::Response {
    http()
        .post(format!("{base}{path}"))
        .header(COOKIE, cookie)
        .header(CONTENT_TYPE, FORM)
        .body(form_body(form))
        .send()
        .await
        .unwrap()
}

/// The double-submit token a pre-login page sets, and its cookie.
async fn pre_login(base: &str, path: &str) -> (String, String) {
    let r = http().get(format!("{base}{path}")).send().await.unwrap();
    let cookie = r
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("picket_csrf="))
        .expect("a CSRF cookie")
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let token = cookie.trim_start_matches("picket_csrf=").to_owned();
    (cookie, token)
}

#[tokio::test]
async fn what_users_typed_is_shown_as_text() {
    let t = sqlite().await;
    let node = spawn_node(&t.url, "n1", &[]).await;
    let base = format!("http://{}", node.addr);
    let (cookie, _) = logged_in(&t.db).await;
    monitors::register(&t.db, "elsewhere", "127.0.0.1:1").await;
    let evil = "<script>alert(1)</script>";
    let channel =
        t.db.create_channel(&picket_shared::db::ChannelInput {
            name: format!("ops {evil}"),
            kind: "webhook".into(),
            config: json!({"webhookURL": "http://127.0.0.1:1/"}),
            is_default: false,
            active: true,
            rate_per_minute: 10,
            apply_existing: false,
        })
        .await
        .unwrap();
    let m =
        t.db.create_monitor(&monitors::valid(json!({
            "name": format!("shop {evil}"), "type": "keyword",
            "url": "https://shop.test/?q=\"><img src=x onerror=alert(2)>",
            "keyword": "\" onfocus=\"alert(3)", "description": format!("about {evil}"),
            "interval": 60, "node_id": "elsewhere", "notificationIDList": [channel.id],
        })))
        .await
        .unwrap();
    for path in [
        "/".to_owned(),
        format!("/monitors/{}", m.id),
        format!("/monitors/{}/edit", m.id),
        format!("/monitors/{}/delete", m.id),
        format!("/monitors/new?clone={}", m.id),
        format!("/?q={}", urlencode(evil)),
    ] {
        let (status, body) = get(&base, &path, &cookie).await;
        assert_eq!(status, 200, "{path}");
        assert!(!body.contains(evil), "{path}: raw markup in\n{body}");
        assert!(!body.contains("<img src=x"), "{path}");
        assert!(
            !body.contains("\" onfocus=\"alert"),
            "{path}: out of an attribute"
        );
    }
    let (_, page) = get(&base, &format!("/monitors/{}", m.id), &cookie).await;
    assert!(
        page.contains("shop &lt;script&gt;alert(1)&lt;/script&gt;"),
        "{page}"
    );
    assert!(page.contains("about &lt;script&gt;"), "the description");
    assert!(page.contains("ops &lt;script&gt;"), "the channel's name");
    let (_, form) = get(&base, &format!("/monitors/{}/edit", m.id), &cookie).await;
    assert!(
        form.contains("value=\"&quot; onfocus=&quot;alert(3)\""),
        "{form}"
    );
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test]
async fn every_form_needs_its_csrf_token_and_a_refused_one_changes_nothing() {
    for t in backends().await {
        let node = spawn_node(&t.url, "n1", &[]).await;
        let base = format!("http://{}", node.addr);
        let (cookie, csrf) = logged_in(&t.db).await;
        monitors::register(&t.db, "elsewhere", "127.0.0.1:1").await;
        let m =
            t.db.create_monitor(&monitors::http(
                "keep",
                Some("elsewhere"),
                "https://a.test/",
            ))
            .await
            .unwrap();
        let new = [
            ("type", "http"),
            ("name", "x"),
            ("url", "https://b.test/"),
            ("interval", "60"),
        ];
        let del = format!("/monitors/{}/delete", m.id);
        let pause = format!("/monitors/{}/pause", m.id);
        for token in [None, Some("forged")] {
            let mut form = new.to_vec();
            if let Some(tk) = token {
                form.push(("csrf", tk));
            }
            let csrf_only: Vec<(&str, &str)> = token.map(|tk| ("csrf", tk)).into_iter().collect();
            for (path, f) in [
                ("/monitors/new", &form[..]),
                (&del[..], &csrf_only[..]),
                (&pause[..], &csrf_only[..]),
                ("/logout", &csrf_only[..]),
            ] {
                let r = post(&base, path, &cookie, f).await;
                assert_eq!(r.status(), 403, "{}: {path} with {token:?}", t.label);
            }
        }
        let all = t.db.monitors(None).await.unwrap();
        assert_eq!(all.len(), 1, "{}: nothing created or deleted", t.label);
        assert!(all[0].active(), "{}: not paused", t.label);
        let (status, _) = get(&base, "/", &cookie).await;
        assert_eq!(status, 200, "{}: still logged in", t.label);

        // With the session's token, the same forms work.
        let mut form = new.to_vec();
        form.push(("csrf", &csrf));
        let r = post(&base, "/monitors/new", &cookie, &form).await;
        assert_eq!(r.status(), 303, "{}", t.label);
        assert!(
            r.headers()[LOCATION]
                .to_str()
                .unwrap()
                .starts_with("/monitors/")
        );
        let r = post(&base, &del, &cookie, &[("csrf", &csrf)]).await;
        assert_eq!(r.status(), 303, "{}", t.label);
        assert!(t.db.monitor(m.id).await.unwrap().is_none(), "{}", t.label);

        // Before login, the login form's token is a double-submit cookie.
        let r = post(
            &base,
            "/login",
            "",
            &[("csrf", "x"), ("username", "admin"), ("password", PASSWORD)],
        )
        .await;
        assert_eq!(r.status(), 403, "{}: no cookie", t.label);
        let (pre, token) = pre_login(&base, "/login").await;
        let r = post(
            &base,
            "/login",
            &pre,
            &[
                ("csrf", "other"),
                ("username", "admin"),
                ("password", PASSWORD),
            ],
        )
        .await;
        assert_eq!(
            r.status(),
            403,
            "{}: a token that is not the cookie's",
            t.label
        );
        let r = post(
            &base,
            "/login",
            &pre,
            &[
                ("csrf", &token),
                ("username", "admin"),
                ("password", PASSWORD),
            ],
        )
        .await;
        assert_eq!(r.status(), 303, "{}", t.label);
        let set: Vec<&str> = r
            .headers()
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        let session = set
            .iter()
            .find(|c| c.starts_with("picket_session="))
            .expect("a session cookie");
        assert!(
            session.contains("HttpOnly")
                && session.contains("SameSite=Lax")
                && !session.contains("Secure"),
            "{session}"
        );
    }
}

#[tokio::test]
async fn a_failed_login_says_the_same_whatever_failed_and_repeated_ones_are_refused() {
    let t = sqlite().await;
    let node = spawn_node(
        &t.url,
        "n1",
        &["--public-url", "https://status.example.test"],
    )
    .await;
    let base = format!("http://{}", node.addr);
    logged_in(&t.db).await;
    let (pre, token) = pre_login(&base, "/login").await;
    let login = |user: &'static str, password: &'static str, addr: &'static str| {
        let (pre, token, base) = (pre.clone(), token.clone(), base.clone());
        async move {
            http()
                .post(format!("{base}/login"))
                .header(COOKIE, pre)
                .header("X-Real-IP", addr)
                .header(CONTENT_TYPE, FORM)
                .body(form_body(&[
                    ("csrf", token.as_str()),
                    ("username", user),
                    ("password", password),
                ]))
                .send()
                .await
                .unwrap()
        }
    };
    let alert = |body: &str| -> String {
        let start = body.find("role=\"alert\">").expect("an alert") + 13;
        body[start..start + body[start..].find('<').unwrap()].to_owned()
    };
    let unknown = login("nobody", PASSWORD, "10.0.0.1").await;
    let wrong = login("admin", "Wrong-Password-1", "10.0.0.1").await;
    assert_eq!(unknown.status(), 401);
    assert_eq!(wrong.status(), 401);
    let (a, b) = (
        alert(&unknown.text().await.unwrap()),
        alert(&wrong.text().await.unwrap()),
    );
    assert_eq!(a, b);
    assert_eq!(a, "Wrong username or password.");

    // Five failures for one account: even its right password waits.
    for _ in 0..4 {
        assert_eq!(
            login("admin", "Wrong-Password-1", "10.0.0.2")
                .await
                .status(),
            401
        );
    }
    let r = login("admin", PASSWORD, "10.0.0.3").await;
    assert_eq!(r.status(), 429, "the account is locked for a while");
    assert!(r.headers().contains_key("retry-after"));
    assert!(r.text().await.unwrap().contains("Too many failed logins"));

    // Five failures from one address, whatever names they try, lock that
    // address; another address is not affected by it.
    let t2 = sqlite().await;
    let node2 = spawn_node(&t2.url, "n1", &[]).await;
    let base2 = format!("http://{}", node2.addr);
    logged_in(&t2.db).await;
    let (pre2, token2) = pre_login(&base2, "/login").await;
    let login2 = |user: String, password: &'static str, addr: &'static str| {
        let (pre, token, base) = (pre2.clone(), token2.clone(), base2.clone());
        async move {
            http()
                .post(format!("{base}/login"))
                .header(COOKIE, pre)
                .header("X-Real-IP", addr)
                .header(CONTENT_TYPE, FORM)
                .body(form_body(&[
                    ("csrf", token.as_str()),
                    ("username", &user),
                    ("password", password),
                ]))
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    for i in 0..5 {
        assert_eq!(
            login2(format!("guess{i}"), "Wrong-Password-1", "10.9.9.9").await,
            401
        );
    }
    assert_eq!(login2("admin".into(), PASSWORD, "10.9.9.9").await, 429);
    assert_eq!(login2("admin".into(), PASSWORD, "10.8.8.8").await, 303);

    // With an https public URL every cookie is Secure.
    let r = http().get(format!("{base}/login")).send().await.unwrap();
    let set = r.headers()[SET_COOKIE].to_str().unwrap().to_owned();
    assert!(set.contains("; Secure"), "{set}");
    let r = http().get(format!("{base2}/login")).send().await.unwrap();
    let set = r.headers()[SET_COOKIE].to_str().unwrap().to_owned();
    assert!(!set.contains("Secure"), "plain http: {set}");
}

#[tokio::test]
async fn ten_thousand_monitors_count_page_and_filter_right() {
    let t = sqlite().await;
    monitors::register(&t.db, "ghost", "127.0.0.1:1").await;
    monitors::bulk(&t.db, "ghost", "svc", 10_000).await;
    let node = spawn_node(&t.url, "n1", &[]).await;
    let base = format!("http://{}", node.addr);
    let (cookie, _) = logged_in(&t.db).await;
    // One beat each: by index, every fourth active monitor down.
    let all = t.db.monitors(None).await.unwrap();
    let beats: Vec<Heartbeat> = all
        .iter()
        .enumerate()
        .map(|(i, m)| Heartbeat {
            monitor_id: m.id,
            node_id: NodeId::from("ghost"),
            status: if i % 4 == 0 { Status::Down } else { Status::Up },
            time: picket_shared::now_ms(),
            ping: Some(12.0),
            msg: "seeded".into(),
            important: true,
            duration: 0,
            retries: 0,
        })
        .collect();
    for chunk in beats.chunks(1_000) {
        t.db.insert_heartbeats(chunk).await.unwrap();
    }
    // By index: paused every 10th (i % 10 == 9), down where i % 4 == 0.
    let paused = (0..10_000).filter(|i| i % 10 == 9).count();
    let down = (0..10_000).filter(|i| i % 10 != 9 && i % 4 == 0).count();
    let up = 10_000 - paused - down;

    let (status, body) = get(&base, "/", &cookie).await;
    assert_eq!(status, 200);
    let count = |body: &str, state: &str| -> usize {
        let at = body.find(&format!("data-count=\"{state}\"")).unwrap();
        let b = at + body[at..].find("<b>").unwrap() + 3;
        body[b..b + body[b..].find('<').unwrap()].parse().unwrap()
    };
    assert_eq!(count(&body, "down"), down);
    assert_eq!(count(&body, "up"), up);
    assert_eq!(count(&body, "paused"), paused);
    assert_eq!(count(&body, "pending"), 0);
    let rows = |body: &str| body.matches("<tr data-monitor=").count();
    assert_eq!(rows(&body), 50, "one page, not the fleet");
    assert!(body.contains("Page 1 of 200"));
    assert!(
        body.contains("svc-00000") && !body.contains("svc-00050"),
        "sorted by name"
    );

    let (_, last) = get(&base, "/?page=200", &cookie).await;
    assert_eq!(rows(&last), 50);
    assert!(last.contains("svc-09999") && last.contains("Page 200 of 200"));
    let (_, beyond) = get(&base, "/?page=201", &cookie).await;
    assert!(beyond.contains("No monitor matches"));

    let (_, downs) = get(&base, "/?status=down&sort=name", &cookie).await;
    assert!(
        downs.contains(&format!("{down} of 10000 monitors match")),
        "{}",
        &downs[..200.min(downs.len())]
    );
    assert_eq!(rows(&downs), 50);
    assert_eq!(
        downs.matches("st st-down").count(),
        50 + 1,
        "every row down (and its count)"
    );
    let (_, ports) = get(&base, "/?type=port&q=svc-0999", &cookie).await;
    // svc-09990..svc-09999 whose index % 3 == 2: 9992, 9995, 9998.
    assert!(
        ports.contains("3 of 10000 monitors match"),
        "type and search together"
    );
    for name in ["svc-09992", "svc-09995", "svc-09998"] {
        assert!(ports.contains(name), "{name}");
    }
    let (_, next) = get(&base, "/?status=up&page=2", &cookie).await;
    assert!(
        next.contains("href=\"/?status=up&amp;page=3\""),
        "the pager keeps the filter"
    );

    // A monitor page among them.
    let (status, page) = get(
        &base,
        &format!("/monitors/{}", MonitorId(all[0].id.0)),
        &cookie,
    )
    .await;
    assert_eq!(status, 200);
    assert!(page.contains("svc-00000") && page.contains("seeded") && page.contains("st st-down"));
}

#[tokio::test]
async fn an_api_key_is_shown_once_works_and_stops_when_revoked() {
    for t in backends().await {
        let node = spawn_node(&t.url, "n1", &[]).await;
        let base = format!("http://{}", node.addr);
        let (cookie, csrf) = logged_in(&t.db).await;
        let r = post(&base, "/keys", &cookie, &[("csrf", &csrf), ("name", "")]).await;
        assert_eq!(r.status(), 400, "{}: a name is required", t.label);
        assert!(r.text().await.unwrap().contains("id=\"err-name\""));
        let r = post(
            &base,
            "/keys",
            &cookie,
            &[("csrf", "forged"), ("name", "x")],
        )
        .await;
        assert_eq!(r.status(), 403, "{}", t.label);
        assert!(t.db.api_keys().await.unwrap().is_empty(), "{}", t.label);

        let r = post(
            &base,
            "/keys",
            &cookie,
            &[("csrf", &csrf), ("name", "deploy <b>")],
        )
        .await;
        assert_eq!(r.status(), 200, "{}", t.label);
        assert_eq!(r.headers()["cache-control"], "no-store");
        let body = r.text().await.unwrap();
        let at = body.find("class=\"key-once\">").expect("the token, once") + 17;
        let token = body[at..at + body[at..].find('<').unwrap()].to_owned();
        assert!(body.contains("deploy &lt;b&gt;"), "{}: escaped", t.label);
        let api = |token: String| {
            let base = base.clone();
            async move {
                http()
                    .get(format!("{base}/api/v1/monitors"))
                    .bearer_auth(token)
                    .send()
                    .await
                    .unwrap()
                    .status()
            }
        };
        assert_eq!(
            api(token.clone()).await,
            200,
            "{}: the key opens the API",
            t.label
        );
        let (_, list) = get(&base, "/keys", &cookie).await;
        assert!(!list.contains(&token), "{}: never shown again", t.label);
        assert!(list.contains("deploy &lt;b&gt;") && list.contains("active"));

        let id = t.db.api_keys().await.unwrap()[0].id;
        let r = post(
            &base,
            &format!("/keys/{id}/revoke"),
            &cookie,
            &[("csrf", &csrf)],
        )
        .await;
        assert_eq!(r.status(), 303, "{}", t.label);
        assert_eq!(api(token).await, 401, "{}: revoked", t.label);
        let (_, list) = get(&base, "/keys", &cookie).await;
        assert!(list.contains("revoked"), "{}", t.label);
        let r = post(&base, "/keys/999/revoke", &cookie, &[("csrf", &csrf)]).await;
        assert_eq!(r.status(), 404, "{}", t.label);
    }
}

#[tokio::test]
async fn the_cluster_page_shows_nodes_and_history() {
    let t = sqlite().await;
    let node = spawn_node(&t.url, "n1", &[]).await;
    let base = format!("http://{}", node.addr);
    let (cookie, _) = logged_in(&t.db).await;
    monitors::register(&t.db, "n2", "10.0.0.2:3001").await;
    t.db.create_monitor(&monitors::http("a", Some("n1"), "https://a.test/"))
        .await
        .unwrap();
    t.db.record_event(
        picket_shared::now_ms(),
        "failover",
        Some(&NodeId::from("n2")),
        3,
        "n2 <offline> after 3 strikes",
    )
    .await
    .unwrap();
    let (status, body) = get(&base, "/cluster", &cookie).await;
    assert_eq!(status, 200);
    assert!(
        body.contains("10.0.0.2:3001") && body.contains("✓ Online"),
        "{body}"
    );
    assert!(body.contains("failover") && body.contains("n2 &lt;offline&gt; after 3 strikes"));
    assert!(body.contains("action=\"/cluster/action\""));
    let (cookie2, csrf) = (
        cookie.clone(),
        t.db.session(
            cookie.trim_start_matches("picket_session="),
            picket_shared::now_ms(),
        )
        .await
        .unwrap()
        .unwrap()
        .csrf,
    );
    let r = post(
        &base,
        "/cluster/action",
        &cookie2,
        &[("csrf", &csrf), ("what", "reboot")],
    )
    .await;
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("There is no action"));
    let r = post(
        &base,
        "/cluster/action",
        &cookie2,
        &[("csrf", "forged"), ("what", "rebalance")],
    )
    .await;
    assert_eq!(r.status(), 403);
}

#[tokio::test]
async fn a_channel_is_made_tested_and_kept_secret_through_its_pages() {
    for t in backends().await {
        let node = spawn_node(&t.url, "n1", &[]).await;
        let base = format!("http://{}", node.addr);
        let (cookie, csrf) = logged_in(&t.db).await;
        let rx = picket_testkit::receiver::Receiver::start().await;
        let hook = rx.url("/hook?secret=s3cr3t-value-123456");

        // Bad input: every error at its field, nothing saved.
        let r = post(
            &base,
            "/channels/new",
            &cookie,
            &[
                ("csrf", &csrf),
                ("type", "webhook"),
                ("name", ""),
                ("config.webhookURL", "not a url"),
                ("extra", "[1]"),
                ("active", "on"),
            ],
        )
        .await;
        assert_eq!(r.status(), 400, "{}", t.label);
        let body = r.text().await.unwrap();
        assert!(
            body.contains("id=\"err-config\""),
            "{}: the JSON settings",
            t.label
        );
        let r = post(
            &base,
            "/channels/new",
            &cookie,
            &[
                ("csrf", &csrf),
                ("type", "webhook"),
                ("name", ""),
                ("config.webhookURL", "not a url"),
                ("active", "on"),
            ],
        )
        .await;
        let body = r.text().await.unwrap();
        assert!(
            body.contains("id=\"err-name\"") && body.contains("id=\"err-config.webhookURL\""),
            "{}: {body}",
            t.label
        );
        assert!(t.db.channels().await.unwrap().is_empty(), "{}", t.label);

        let r = post(
            &base,
            "/channels/new",
            &cookie,
            &[
                ("csrf", &csrf),
                ("type", "webhook"),
                ("name", "ops <i>"),
                ("config.webhookURL", &hook),
                ("extra", "{\"webhookContentType\": \"json\"}"),
                ("active", "on"),
                ("ratePerMinute", "5"),
            ],
        )
        .await;
        assert_eq!(r.status(), 303, "{}", t.label);
        let c = t.db.channels().await.unwrap().remove(0);
        assert_eq!(
            (c.name.as_str(), c.rate_per_minute, c.active),
            ("ops <i>", 5, true),
            "{}",
            t.label
        );
        assert_eq!(c.config["webhookURL"], hook.as_str());

        // The edit form never holds the secret; saving it unchanged keeps it.
        let (_, form) = get(&base, &format!("/channels/{}/edit", c.id), &cookie).await;
        assert!(!form.contains("s3cr3t-value"), "{}: masked", t.label);
        let attr = "name=\"config.webhookURL\" value=\"";
        let at = form.find(attr).unwrap() + attr.len();
        let masked = form[at..at + form[at..].find('"').unwrap()].to_owned();
        let r = post(
            &base,
            &format!("/channels/{}/edit", c.id),
            &cookie,
            &[
                ("csrf", &csrf),
                ("type", "webhook"),
                ("name", "ops"),
                ("config.webhookURL", &masked),
                ("active", "on"),
                ("ratePerMinute", "5"),
            ],
        )
        .await;
        assert_eq!(r.status(), 303, "{}", t.label);
        let c = t.db.channel(c.id).await.unwrap().unwrap();
        assert_eq!(
            (c.name.as_str(), c.config["webhookURL"].as_str()),
            ("ops", Some(hook.as_str())),
            "{}",
            t.label
        );

        // A test reaches the receiver and the page says so.
        let r = post(
            &base,
            &format!("/channels/{}/test", c.id),
            &cookie,
            &[("csrf", &csrf)],
        )
        .await;
        assert_eq!(r.status(), 200);
        assert!(
            r.text().await.unwrap().contains("Test sent to ops"),
            "{}",
            t.label
        );
        assert_eq!(rx.received().len(), 1, "{}", t.label);
        let (status, page) = get(&base, &format!("/channels/{}", c.id), &cookie).await;
        assert_eq!(status, 200);
        assert!(page.contains("Recent deliveries"));

        // Delete after its confirmation page.
        let (_, confirm) = get(&base, &format!("/channels/{}/delete", c.id), &cookie).await;
        assert!(confirm.contains("Delete ops?"));
        let r = post(
            &base,
            &format!("/channels/{}/delete", c.id),
            &cookie,
            &[("csrf", "forged")],
        )
        .await;
        assert_eq!(r.status(), 403);
        let r = post(
            &base,
            &format!("/channels/{}/delete", c.id),
            &cookie,
            &[("csrf", &csrf)],
        )
        .await;
        assert_eq!(r.status(), 303);
        assert!(t.db.channels().await.unwrap().is_empty(), "{}", t.label);
    }
}

#[tokio::test]
async fn two_factor_sign_in_takes_a_code_once_or_a_recovery_code_once() {
    use picket_shared::totp;
    for t in backends().await {
        let node = spawn_node(&t.url, "n1", &[]).await;
        let base = format!("http://{}", node.addr);
        let (cookie, csrf) = logged_in(&t.db).await;
        let code_for = |secret: &str, ahead: i64| {
            let key = totp::unbase32(secret).unwrap();
            format!(
                "{:06}",
                totp::code_at(&key, totp::step_of(picket_shared::now_ms()) + ahead)
            )
        };

        // Setup: a secret, then a code from it turns it on and shows ten
        // recovery codes once.
        let r = post(&base, "/account/2fa/start", &cookie, &[("csrf", &csrf)]).await;
        assert_eq!(r.status(), 303, "{}", t.label);
        let secret =
            t.db.account_by_name("admin")
                .await
                .unwrap()
                .unwrap()
                .twofa_secret
                .unwrap();
        let (_, setup) = get(&base, "/account/2fa", &cookie).await;
        assert!(
            setup.contains(&format!("secret={secret}")),
            "{}: the otpauth link",
            t.label
        );
        let r = post(
            &base,
            "/account/2fa/enable",
            &cookie,
            &[("csrf", &csrf), ("code", "000000")],
        )
        .await;
        assert_eq!(r.status(), 400, "{}: a wrong code", t.label);
        let r = post(
            &base,
            "/account/2fa/enable",
            &cookie,
            &[("csrf", &csrf), ("code", &code_for(&secret, 0))],
        )
        .await;
        assert_eq!(r.status(), 200, "{}", t.label);
        let page = r.text().await.unwrap();
        let at = page.find("class=\"key-once\">").unwrap();
        let codes: Vec<String> = page[at..]
            .split("<div>")
            .skip(1)
            .take(totp::RECOVERY_CODES)
            .map(|c| c[..c.find('<').unwrap()].to_owned())
            .collect();
        assert_eq!(codes.len(), 10, "{}", t.label);
        assert!(t.db.account_by_name("admin").await.unwrap().unwrap().twofa);

        // A login: the password opens only the code page.
        let login = || async {
            let (pre, token) = pre_login(&base, "/login").await;
            let r = post(
                &base,
                "/login",
                &pre,
                &[
                    ("csrf", &token),
                    ("username", "admin"),
                    ("password", PASSWORD),
                ],
            )
            .await;
            assert_eq!(r.status(), 303);
            assert!(
                r.headers()[LOCATION]
                    .to_str()
                    .unwrap()
                    .starts_with("/login/2fa")
            );
            let set: Vec<String> = r
                .headers()
                .get_all(SET_COOKIE)
                .iter()
                .map(|v| v.to_str().unwrap().to_owned())
                .collect();
            assert!(
                !set.iter().any(|c| c.starts_with("picket_session=")),
                "no session yet"
            );
            let pending = set
                .iter()
                .find(|c| c.starts_with("picket_2fa="))
                .unwrap()
                .split(';')
                .next()
                .unwrap()
                .to_owned();
            let (status, page) = get(&base, "/login/2fa", &pending).await;
            assert_eq!(status, 200);
            let at = page.find("name=\"csrf\" value=\"").unwrap() + 19;
            let form_csrf = page[at..at + 64].to_owned();
            (pending, form_csrf)
        };
        let (pending, form_csrf) = login().await;
        let waiting = pending.replace("picket_2fa=", "picket_session=");
        let (status, _) = get(&base, "/", &waiting).await;
        assert_eq!(status, 303, "{}: a waiting session opens nothing", t.label);
        let r = post(
            &base,
            "/login/2fa",
            &pending,
            &[("csrf", &form_csrf), ("code", "123456"), ("next", "/")],
        )
        .await;
        assert_eq!(r.status(), 401, "{}: a wrong code", t.label);
        // One step ahead: within the allowed drift, and after the step the
        // setup code used.
        let fresh = code_for(&secret, 1);
        let r = post(
            &base,
            "/login/2fa",
            &pending,
            &[("csrf", &form_csrf), ("code", &fresh), ("next", "/")],
        )
        .await;
        assert_eq!(r.status(), 303, "{}: a fresh code", t.label);
        let session = r
            .headers()
            .get_all(SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .find(|c| c.starts_with("picket_session="))
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_owned();
        assert_eq!(
            get(&base, "/", &session).await.0,
            200,
            "{}: logged in",
            t.label
        );

        // The same code does not open a second login.
        let (pending, form_csrf) = login().await;
        let r = post(
            &base,
            "/login/2fa",
            &pending,
            &[("csrf", &form_csrf), ("code", &fresh), ("next", "/")],
        )
        .await;
        assert_eq!(r.status(), 401, "{}: a code is good once", t.label);
        // A recovery code is, once.
        let r = post(
            &base,
            "/login/2fa",
            &pending,
            &[
                ("csrf", &form_csrf),
                ("code", &codes[0].to_uppercase()),
                ("next", "/"),
            ],
        )
        .await;
        assert_eq!(r.status(), 303, "{}: a recovery code", t.label);
        let (pending, form_csrf) = login().await;
        let r = post(
            &base,
            "/login/2fa",
            &pending,
            &[("csrf", &form_csrf), ("code", &codes[0]), ("next", "/")],
        )
        .await;
        assert_eq!(r.status(), 401, "{}: used up", t.label);
        assert_eq!(t.db.recovery_codes_left(1).await.unwrap(), 9);

        // Turning it off takes the password and a code.
        let r = post(
            &base,
            "/account/2fa/disable",
            &cookie,
            &[("csrf", &csrf), ("password", "nope"), ("code", &codes[1])],
        )
        .await;
        assert_eq!(r.status(), 400, "{}", t.label);
        let r = post(
            &base,
            "/account/2fa/disable",
            &cookie,
            &[("csrf", &csrf), ("password", PASSWORD), ("code", &codes[2])],
        )
        .await;
        assert_eq!(r.status(), 303, "{}", t.label);
        assert!(!t.db.account_by_name("admin").await.unwrap().unwrap().twofa);
    }
}

/// Reads an event stream until `want` events of kind `beat` or `reset`
/// have arrived (or 10 s pass): their `(event, id, data)`.
async fn events(
    r: &mut reqwest::Response,
    want: usize,
) -> Vec<(String, String, serde_json::Value)> {
    let mut buf = String::new();
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while out.len() < want {
        let chunk = tokio::time::timeout_at(deadline, r.chunk()).await;
        let Ok(Ok(Some(c))) = chunk else { break };
        buf.push_str(&String::from_utf8_lossy(&c));
        while let Some(end) = buf.find("\n\n") {
            let ev: String = buf.drain(..end + 2).collect();
            let field = |name: &str| {
                ev.lines()
                    .find_map(|l| {
                        l.strip_prefix(&format!("{name}: "))
                            .or_else(|| l.strip_prefix(&format!("{name}:")))
                    })
                    .unwrap_or("")
                    .to_owned()
            };
            let kind = field("event");
            if kind.is_empty() {
                continue;
            }
            let data = serde_json::from_str(&field("data")).unwrap_or_default();
            out.push((kind, field("id"), data));
        }
    }
    out
}

#[tokio::test]
async fn the_event_stream_sends_new_beats_of_the_monitors_asked_for_and_resumes() {
    let t = sqlite().await;
    monitors::register(&t.db, "ghost", "127.0.0.1:1").await;
    let a =
        t.db.create_monitor(&monitors::http("a", Some("ghost"), "https://a.test/"))
            .await
            .unwrap()
            .id;
    let b =
        t.db.create_monitor(&monitors::http("b", Some("ghost"), "https://b.test/"))
            .await
            .unwrap()
            .id;
    let node = spawn_node(&t.url, "n1", &[]).await;
    let base = format!("http://{}", node.addr);
    let (cookie, _) = logged_in(&t.db).await;
    let beat = |m: MonitorId, status: Status, msg: &str| Heartbeat {
        monitor_id: m,
        node_id: NodeId::from("ghost"),
        status,
        time: picket_shared::now_ms(),
        ping: Some(5.0),
        msg: msg.into(),
        important: false,
        duration: 0,
        retries: 0,
    };
    let stream = |query: String, last: Option<String>| {
        let (base, cookie) = (base.clone(), cookie.clone());
        async move {
            let mut req = http()
                .get(format!("{base}/api/v1/events{query}"))
                .header(COOKIE, cookie);
            if let Some(l) = last {
                req = req.header("Last-Event-ID", l);
            }
            req.send().await.unwrap()
        }
    };
    for bad in ["?monitors=1,x", "?monitors=-"] {
        let r = stream(bad.into(), None).await;
        assert_eq!(r.status(), 400, "{bad}");
        let v: serde_json::Value = r.json().await.unwrap();
        assert_eq!(v["errors"][0]["field"], "monitors");
    }
    let r = http()
        .get(format!("{base}/api/v1/events"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "not without a session or a key");

    let mut only_a = stream(format!("?monitors={}", a.0), None).await;
    assert_eq!(only_a.status(), 200);
    assert!(
        only_a.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    // Let the stream's first tick pass, then write: b's beat is not for it.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    t.db.insert_heartbeats(&[beat(b, Status::Up, "b up"), beat(a, Status::Down, "a down")])
        .await
        .unwrap();
    let got = events(&mut only_a, 1).await;
    assert_eq!(got.len(), 1, "{got:?}");
    let (kind, id, data) = &got[0];
    assert_eq!(kind, "beat");
    assert_eq!(
        (
            data["monitorID"].as_i64(),
            data["status"].as_i64(),
            data["msg"].as_str()
        ),
        (Some(a.0), Some(0), Some("a down"))
    );

    // A reconnect with the last id it saw gets what came after, from memory.
    t.db.insert_heartbeats(&[beat(a, Status::Up, "a back")])
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    drop(only_a);
    let mut again = stream(format!("?monitors={}", a.0), Some(id.clone())).await;
    let got = events(&mut again, 1).await;
    assert_eq!(
        got.first().map(|e| e.2["msg"].clone()),
        Some(json!("a back")),
        "{got:?}"
    );
    assert!(got[0].1.parse::<i64>().unwrap() > id.parse::<i64>().unwrap());
}

#[tokio::test]
async fn the_dashboard_filters_by_tag_and_shows_tags_as_text() {
    let t = sqlite().await;
    let node = spawn_node(&t.url, "n1", &[]).await;
    let base = format!("http://{}", node.addr);
    let (cookie, csrf) = logged_in(&t.db).await;
    monitors::register(&t.db, "elsewhere", "127.0.0.1:1").await;
    t.db.create_tag("<b>team", "#aabbcc").await.unwrap();
    t.db.create_tag("env", "#112233").await.unwrap();
    let tagged = |name: &str, tags: serde_json::Value| {
        monitors::valid(
            json!({"name": name, "type": "http", "url": "https://x.test/",
            "interval": 60, "node_id": "elsewhere", "tags": tags}),
        )
    };
    let a =
        t.db.create_monitor(&tagged(
            "alpha",
            json!([{"name": "<b>team", "value": "ops"}]),
        ))
        .await
        .unwrap();
    t.db.create_monitor(&tagged("beta", json!([{"name": "env", "value": "prod"}])))
        .await
        .unwrap();
    let (_, body) = get(&base, &format!("/?tag={}", urlencode("<b>team")), &cookie).await;
    assert!(body.contains("1 of 2 monitors match"), "{body}");
    assert!(body.contains("alpha") && !body.contains(">beta<"));
    assert!(
        body.contains("&lt;b&gt;team: ops") && !body.contains("<b>team"),
        "escaped chip"
    );
    let (_, body) = get(&base, "/?tag=env:prod", &cookie).await;
    assert!(body.contains("1 of 2 monitors match") && body.contains("beta"));
    let (_, body) = get(&base, "/?tag=env:dev", &cookie).await;
    assert!(body.contains("No monitor matches"));

    // The form shows and replaces the tags.
    let (_, form) = get(&base, &format!("/monitors/{}/edit", a.id), &cookie).await;
    assert!(form.contains("value=\"&lt;b&gt;team:ops\""), "{form}");
    let r = post(
        &base,
        &format!("/monitors/{}/edit", a.id),
        &cookie,
        &[
            ("csrf", &csrf),
            ("type", "http"),
            ("name", "alpha"),
            ("url", "https://x.test/"),
            ("interval", "60"),
            ("tags", "env:stage, nope"),
        ],
    )
    .await;
    assert_eq!(r.status(), 400, "an unknown tag");
    assert!(r.text().await.unwrap().contains("id=\"err-tags\""));
    let r = post(
        &base,
        &format!("/monitors/{}/edit", a.id),
        &cookie,
        &[
            ("csrf", &csrf),
            ("type", "http"),
            ("name", "alpha"),
            ("url", "https://x.test/"),
            ("interval", "60"),
            ("tags", "env:stage"),
        ],
    )
    .await;
    assert_eq!(r.status(), 303);
    let tags = t.db.monitor_tags(Some(&[a.id])).await.unwrap();
    let got: Vec<(&str, &str)> = tags[&a.id]
        .iter()
        .map(|t| (t.name.as_str(), t.value.as_str()))
        .collect();
    assert_eq!(got, [("env", "stage")]);
}

#[tokio::test]
async fn a_password_change_checks_the_old_one_and_ends_the_other_sessions() {
    let t = sqlite().await;
    let node = spawn_node(&t.url, "n1", &[]).await;
    let base = format!("http://{}", node.addr);
    let (cookie, csrf) = logged_in(&t.db).await;
    let other = t.db.create_session(1).await.unwrap();
    let other_cookie = format!("picket_session={}", other.token);
    let change = |current: &'static str, new: &'static str, confirm: &'static str| {
        let (base, cookie, csrf) = (base.clone(), cookie.clone(), csrf.clone());
        async move {
            post(
                &base,
                "/account/password",
                &cookie,
                &[
                    ("csrf", &csrf),
                    ("current", current),
                    ("password", new),
                    ("confirm", confirm),
                ],
            )
            .await
        }
    };
    for (current, new, confirm, field) in [
        (
            "wrong",
            "Another-Strong-Pass-7",
            "Another-Strong-Pass-7",
            "current",
        ),
        (PASSWORD, "short", "short", "password"),
        (
            PASSWORD,
            "Another-Strong-Pass-7",
            "Another-Strong-Pass-8",
            "confirm",
        ),
    ] {
        let r = change(current, new, confirm).await;
        assert_eq!(r.status(), 400, "{field}");
        let body = r.text().await.unwrap();
        let at = body.find(&format!("name=\"{field}\"")).expect("the field");
        assert!(
            body[at..]
                .split("<label")
                .next()
                .unwrap()
                .contains("field-error"),
            "{field}: its error beside it"
        );
    }
    assert_eq!(
        get(&base, "/", &other_cookie).await.0,
        200,
        "nothing changed yet"
    );
    let r = change(PASSWORD, "Another-Strong-Pass-7", "Another-Strong-Pass-7").await;
    assert_eq!(r.status(), 303);
    assert_eq!(get(&base, "/", &cookie).await.0, 200, "this session stays");
    assert_eq!(
        get(&base, "/", &other_cookie).await.0,
        303,
        "the other one ended"
    );
    let a = t.db.account_by_name("admin").await.unwrap().unwrap();
    assert!(picket_shared::accounts::verify_password(
        "Another-Strong-Pass-7",
        &a.password_hash
    ));
}
