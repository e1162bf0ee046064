//! The dashboard in a real browser: headless Chromium (Debian's, driven
//! over WebDriver) against a real `picket-lb` in front of two real
//! `picket-node` processes. Setup, logout and login, a monitor created
//! through the form turns UP and then DOWN on the dashboard without a
//! reload, pause, an edit with a bad value shows the error at its field and
//! saves nothing, delete; logged out, pages send the browser to the login.
//! Screenshots (wide and phone) are saved under `target/screenshots/`.

use picket_testkit::browser::Browser;
use picket_testkit::farm::{Behaviour, Farm};
use picket_testkit::lb::spawn_lb;
use picket_testkit::net::{client, free_port};
use picket_testkit::node::NodeProc;
use picket_testkit::{TOKEN, WAIT, eventually};
use serde_json::Value;
use std::time::Duration;

const PASSWORD: &str = "Correct-Horse-Battery-9";

/// Long enough for a beat to be checked, written, read by the live tick
/// and drawn.
const LIVE: Duration = Duration::from_secs(30);

#[tokio::test]
async fn an_operator_runs_a_monitor_through_the_pages_and_sees_it_change_live() {
    let t = picket_testkit::db::sqlite().await;
    let farm = Farm::start().await.unwrap();
    let nodes = [
        NodeProc::start(&t.url, "n1", free_port()),
        NodeProc::start(&t.url, "n2", free_port()),
    ];
    for n in &nodes {
        n.ready().await;
    }
    let lb = spawn_lb(
        &t.url,
        &["--hc-interval-secs", "1", "--hc-timeout-ms", "500"],
    )
    .await;
    eventually(WAIT, "the balancer routes to both nodes", || async {
        lb.update_loads().await;
        let v = lb.get_json("/lb/health").await;
        v["nodes"]
            .as_array()
            .is_some_and(|n| n.iter().filter(|x| x["status"] == "online").count() == 2)
    })
    .await;
    let b = Browser::start(1280, 900).await;
    let url = |p: &str| lb.url(p);

    // First visit: the setup page, which wants the bootstrap token.
    b.open(&url("/")).await;
    assert_eq!(b.path().await, "/setup");
    b.fill("username", "admin").await;
    b.fill("password", PASSWORD).await;
    b.fill("confirm", PASSWORD).await;
    b.fill("token", "not-the-token").await;
    b.click("button[type=submit]").await;
    b.wait_text(".field-error", "bootstrap token", WAIT).await;
    b.fill("token", TOKEN).await;
    b.fill("password", PASSWORD).await;
    b.fill("confirm", PASSWORD).await;
    b.click("button[type=submit]").await;
    b.wait_text("h2", "No monitors yet", WAIT).await;
    assert_eq!(b.path().await, "/");

    // Log out and in again.
    b.click("header form button").await;
    b.wait_text("h1", "Log in", WAIT).await;
    b.fill("username", "admin").await;
    b.fill("password", "wrong password").await;
    b.click("button[type=submit]").await;
    b.wait_text(".alert", "Wrong username or password", WAIT)
        .await;
    b.fill("password", PASSWORD).await;
    b.click("button[type=submit]").await;
    b.wait_text("h1", "Dashboard", WAIT).await;

    // The keyboard: the first Tab lands on the skip link, Enter follows it.
    let body = b
        .client
        .find(picket_testkit::browser::Locator::Css("body"))
        .await
        .unwrap();
    let tab = char::from(picket_testkit::browser::Key::Tab).to_string();
    body.send_keys(&tab).await.unwrap();
    let focused = b.client.active_element().await.unwrap();
    assert_eq!(focused.text().await.unwrap(), "Skip to content");
    body.send_keys(&tab).await.unwrap();
    let next = b.client.active_element().await.unwrap();
    assert_eq!(next.attr("class").await.unwrap().as_deref(), Some("brand"));

    // A monitor through the form. Its target answers slowly at first, so the
    // dashboard shows it pending before its first beat arrives.
    farm.set("shop", Behaviour::slow(Duration::from_secs(5)));
    let r = client()
        .post(url("/api/v1/tags"))
        .bearer_auth(TOKEN)
        .body(r##"{"name": "team", "color": "#7c3aed"}"##)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    b.click("a.button.primary").await;
    b.wait_text("h1", "New monitor", WAIT).await;
    b.fill("name", "Shop <script>alert(1)</script>").await;
    b.fill("url", &farm.url("shop")).await;
    b.fill("interval", "10").await;
    b.fill("retryInterval", "10").await;
    b.fill("timeout", "8").await;
    b.fill("tags", "team:shop").await;
    b.click("form.panel button[type=submit]").await;
    let page = eventually(WAIT, "the monitor's page", || async {
        let p = b.path().await;
        p.strip_prefix("/monitors/")
            .and_then(|id| id.parse::<i64>().ok())
    })
    .await;
    assert_eq!(
        b.text("h1").await.as_deref(),
        Some("Shop <script>alert(1)</script>"),
        "the name is shown as text, not run"
    );

    b.open(&url("/")).await;
    let row = format!("tr[data-monitor='{page}'] .st");
    b.wait_text(
        &format!("tr[data-monitor='{page}'] .tag"),
        "team: shop",
        WAIT,
    )
    .await;
    let first = b.text(&row).await;
    assert!(
        first
            .as_ref()
            .is_some_and(|s| s.to_lowercase().contains("pending")),
        "before its first beat the monitor is pending: {first:?} in {:?}",
        b.text("main").await
    );
    // A marker in the page's memory: it survives only without a reload.
    b.client
        .execute("window.__picket_marker = 42; return 1;", vec![])
        .await
        .unwrap();
    b.wait_text(&row, "Up", LIVE).await;
    farm.set("shop", Behaviour::status(500));
    b.wait_text(&row, "Down", LIVE).await;
    let marker = b
        .client
        .execute("return window.__picket_marker || null;", vec![])
        .await
        .unwrap();
    assert_eq!(marker, Value::from(42), "the page changed without a reload");
    let down = b.text("[data-count='down'] b").await.unwrap();
    assert_eq!(down, "1", "the counts follow the live change");
    b.screenshot("dashboard-wide").await;

    // The monitor page, wide and on a phone.
    farm.set("shop", Behaviour::default());
    b.open(&url(&format!("/monitors/{page}"))).await;
    b.wait_text("h2", "Response time", WAIT).await;
    b.screenshot("monitor-wide").await;
    b.client.set_window_size(390, 844).await.unwrap();
    b.open(&url("/")).await;
    b.screenshot("dashboard-phone").await;
    b.open(&url(&format!("/monitors/{page}"))).await;
    b.screenshot("monitor-phone").await;
    b.client.set_window_size(1280, 900).await.unwrap();
    // The dark theme, as the toggle leaves it.
    b.client
        .execute(
            "localStorage.setItem('picket-theme', 'dark'); return 1;",
            vec![],
        )
        .await
        .unwrap();
    b.open(&url(&format!("/monitors/{page}"))).await;
    b.screenshot("monitor-dark").await;
    b.client
        .execute("localStorage.removeItem('picket-theme'); return 1;", vec![])
        .await
        .unwrap();

    // Pause.
    b.click("form[action$='/pause'] button").await;
    b.wait_text(".st", "Paused", WAIT).await;
    let api = |id: i64| {
        let u = url(&format!("/api/v1/monitors/{id}"));
        async move {
            let r = client().get(u).bearer_auth(TOKEN).send().await.unwrap();
            r.json::<Value>().await.unwrap()["data"].clone()
        }
    };
    assert_eq!(api(page).await["active"], false);

    // An edit with a bad value: the error is at its field, nothing is saved.
    b.click("a[href$='/edit']").await;
    b.wait_text("h1", "Edit monitor", WAIT).await;
    b.fill("name", "Renamed").await;
    b.fill("interval", "soon").await;
    b.click("form.panel button[type=submit]").await;
    b.wait_text("#err-interval", "whole number", WAIT).await;
    b.fill("interval", "0").await;
    b.click("form.panel button[type=submit]").await;
    // The answer to this submission, not the page before it: the message
    // under the field is the validation's now.
    let err = eventually(WAIT, "the interval's own error", || async {
        b.text("#err-interval")
            .await
            .filter(|t| !t.is_empty() && !t.contains("whole number"))
    })
    .await;
    assert!(err.contains("must be at least"), "{err}");
    let invalid = eventually(WAIT, "the field marked invalid", || async {
        match b
            .client
            .find(picket_testkit::browser::Locator::Css("#interval"))
            .await
        {
            Ok(el) => el.attr("aria-invalid").await.ok().flatten(),
            Err(_) => None,
        }
    })
    .await;
    assert_eq!(invalid, "true");
    let stored = api(page).await;
    assert_eq!(
        (stored["name"].as_str(), stored["interval"].as_i64()),
        (Some("Shop <script>alert(1)</script>"), Some(10)),
        "nothing saved"
    );

    // Delete, after the confirmation page.
    b.open(&url(&format!("/monitors/{page}"))).await;
    b.click("a.danger").await;
    b.wait_text("h1", "Delete", WAIT).await;
    b.click("form[action$='/delete'] button").await;
    b.wait_text("h2", "No monitors yet", WAIT).await;
    let r = client()
        .get(url(&format!("/api/v1/monitors/{page}")))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);

    // The cluster page: both nodes, and a balancer action from a plain
    // form, carried out by the leading balancer.
    b.click("a[href='/cluster']").await;
    b.wait_text("h1", "Cluster", WAIT).await;
    let table = b.text("table.list").await.unwrap();
    assert!(table.contains("n1") && table.contains("n2"), "{table}");
    b.click("form[action='/cluster/action'] button").await;
    let out = b.wait_text(".alert", "health-check round", WAIT).await;
    assert!(out.contains("2 of 2 nodes passed"), "{out}");
    b.screenshot("cluster-wide").await;
    b.open(&url("/channels/new?type=slack")).await;
    b.wait_text("h1", "New channel", WAIT).await;
    b.screenshot("channel-form-wide").await;

    // Logged out, every page sends the browser to the login.
    b.click("header form button").await;
    b.wait_text("h1", "Log in", WAIT).await;
    for p in ["/", "/monitors/new", "/account"] {
        b.open(&url(p)).await;
        assert!(b.path().await.starts_with("/login"), "{p}");
    }
    drop(nodes);
}
