//! Notifications through a real node: channels over the API (secrets
//! masked, bad input refused by field), and a target that goes down and
//! comes back reaching the channel exactly once each way, in order.

use picket_testkit::api::{Api, metric_value, scrape};
use picket_testkit::db::backends;
use picket_testkit::farm::{Behaviour, Farm};
use picket_testkit::node::spawn_node;
use picket_testkit::receiver::{Answer, Receiver};
use picket_testkit::{WAIT, eventually};
use serde_json::{Value, json};

/// The `msg` of every accepted webhook body, in order.
fn messages(rx: &Receiver) -> Vec<String> {
    rx.accepted()
        .iter()
        .map(|r| r.json()["msg"].as_str().unwrap_or_default().to_owned())
        .collect()
}

async fn beats(api: &Api, id: i64) -> Vec<Value> {
    api.heartbeats(id).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flip_reaches_the_channel_once_down_and_once_up_in_order() {
    for t in backends().await {
        let farm = Farm::start().await.unwrap();
        let rx = Receiver::start().await;
        let node = spawn_node(&t.url, "n1", &[]).await;
        let api = Api::new(node.addr);
        let (status, ch) = api
            .post(
                "/api/v1/notifications",
                &json!({"name": "ops hook", "type": "webhook", "isDefault": true,
                    "config": {"webhookURL": rx.url("/hook/secret-path-123")}}),
            )
            .await;
        assert_eq!(status, 201, "{ch}");
        let id = api
            .create_monitor(
                json!({"name": "shop", "type": "http", "url": farm.url("shop"), "interval": 1}),
            )
            .await;
        let (_, m) = api.get(&format!("/api/v1/monitors/{id}")).await;
        let ch_id = ch["id"].as_i64().unwrap();
        assert_eq!(
            m["data"]["notificationIDList"],
            json!({ch_id.to_string(): true}),
            "default channel linked"
        );

        eventually(WAIT, "UP beats", || async {
            beats(&api, id).await.iter().any(|b| b["status"] == 1)
        })
        .await;
        assert!(
            rx.received().is_empty(),
            "{}: a first UP announces nothing",
            t.label
        );

        farm.set("shop", Behaviour::status(500));
        eventually(WAIT, "the DOWN notice", || async {
            !rx.accepted().is_empty()
        })
        .await;
        farm.set("shop", Behaviour::status(200));
        eventually(WAIT, "the UP notice", || async { rx.accepted().len() >= 2 }).await;
        // Three more UP beats written after it: nothing more was sent.
        let n = beats(&api, id).await.len();
        eventually(WAIT, "more beats", || async {
            beats(&api, id).await.len() >= n + 3
        })
        .await;
        assert_eq!(
            messages(&rx),
            vec![
                "[shop] [🔴 Down] 500 - Internal Server Error (accepted: 200-299)".to_owned(),
                "[shop] [✅ Up] 200 - OK".to_owned()
            ],
            "{}",
            t.label
        );
        let got = rx.accepted();
        assert_eq!(got[0].path, "/hook/secret-path-123");
        assert_eq!(
            got[0].header("x-picket-event-id"),
            got[0].json()["eventId"].as_str()
        );
        assert_eq!(got[0].json()["heartbeat"]["monitorID"], id);

        // The deliveries endpoint tells the story.
        let (_, d) = api
            .get(&format!("/api/v1/notifications/{ch_id}/deliveries"))
            .await;
        let events: Vec<(&str, &str)> = d["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| (x["event"].as_str().unwrap(), x["status"].as_str().unwrap()))
            .collect();
        assert_eq!(events, [("up", "sent"), ("down", "sent")], "{}", t.label);

        // And so do the metrics: two events created, two webhook sends.
        let text = scrape(&format!("http://{}", node.addr)).await;
        for (series, n) in [
            (
                "picket_notification_events_total{kind=\"down\",node=\"n1\"}",
                1.0,
            ),
            (
                "picket_notification_events_total{kind=\"up\",node=\"n1\"}",
                1.0,
            ),
            (
                "picket_notification_deliveries_total{provider=\"webhook\",result=\"sent\",node=\"n1\"}",
                2.0,
            ),
        ] {
            assert_eq!(
                metric_value(&text, series),
                Some(n),
                "{}: {series}\n{text}",
                t.label
            );
        }
        node.stop().await.unwrap();
    }
}

#[tokio::test]
async fn channels_hide_their_secrets_and_refuse_bad_input_by_field() {
    let t = picket_testkit::db::sqlite().await;
    let rx = Receiver::start().await;
    let node = spawn_node(&t.url, "n1", &[]).await;
    let api = Api::new(node.addr);
    let body = json!({"name": "tg", "type": "telegram", "config": {
        "telegramBotToken": "123456:AAAAsecrettokenZZZZ", "telegramChatID": "-100",
        "telegramServerUrl": rx.url("")}});
    let (status, created) = api.post("/api/v1/notifications", &body).await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_i64().unwrap();
    let (_, shown) = api.get(&format!("/api/v1/notifications/{id}")).await;
    assert_eq!(shown["data"]["config"]["telegramBotToken"], "********ZZZZ");
    assert!(!shown.to_string().contains("secrettoken"), "{shown}");

    // Sent back as shown, the token is kept: the test message uses it.
    let (status, v) = api
        .put(
            &format!("/api/v1/notifications/{id}"),
            &json!({"name": "tg2", "config": shown["data"]["config"]}),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    let (status, v) = api
        .post(&format!("/api/v1/notifications/{id}/test"), &json!({}))
        .await;
    assert_eq!(status, 200, "{v}");
    let sent = rx.received();
    assert_eq!(sent[0].path, "/bot123456:AAAAsecrettokenZZZZ/sendMessage");
    assert_eq!(sent[0].json()["chat_id"], "-100");
    // A receiver error comes back as the test's answer.
    rx.answer([Answer::status(401)]);
    let (status, v) = api
        .post(&format!("/api/v1/notifications/{id}/test"), &json!({}))
        .await;
    assert_eq!(status, 502, "{v}");
    assert!(v["msg"].as_str().unwrap().contains("HTTP 401"), "{v}");

    let bad = [
        (
            json!({"name": "x", "type": "carrier-pigeon", "config": {}}),
            "type",
        ),
        (
            json!({"name": "x", "type": "slack", "config": {}}),
            "config.slackwebhookURL",
        ),
        (
            json!({"name": "x", "type": "slack", "config": {"slackwebhookURL": "ftp://x"}}),
            "config.slackwebhookURL",
        ),
        (
            json!({"type": "webhook", "config": {"webhookURL": "http://127.0.0.1:9/"}}),
            "name",
        ),
        (
            json!({"name": "x", "type": "webhook", "config": "nope"}),
            "config",
        ),
        (
            json!({"name": "x", "type": "webhook", "config": {"webhookURL": "http://127.0.0.1:9/",
                "timezone": "Atlantis/Capital"}}),
            "config.timezone",
        ),
        (
            json!({"name": "x", "type": "webhook", "config": {"webhookURL": "http://127.0.0.1:9/",
                "webhookContentType": "custom", "webhookCustomBody": "{{ monitorJSON.nmae }}"}}),
            "config.webhookCustomBody",
        ),
    ];
    for (body, field) in bad {
        let (status, v) = api.post("/api/v1/notifications", &body).await;
        assert_eq!(status, 400, "{body}: {v}");
        assert_eq!(v["errors"][0]["field"], field, "{body}: {v}");
    }
    let (status, v) = api
        .post(
            "/api/v1/monitors",
            &json!({"name": "m", "type": "http", "url": "http://127.0.0.1:1/",
            "interval": 20, "notificationIDList": {"999": true}}),
        )
        .await;
    assert_eq!(status, 400, "{v}");
    assert_eq!(v["errors"][0]["field"], "notificationIDList");
    let (status, v) = api
        .post(
            "/api/v1/monitors",
            &json!({"name": "m", "type": "http", "url": "http://127.0.0.1:1/",
            "interval": 20, "notificationIDList": "all"}),
        )
        .await;
    assert_eq!(status, 400, "{v}");
    // Nothing half-written: one channel, no monitor.
    let (_, list) = api.get("/api/v1/notifications").await;
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    let (_, monitors) = api.get("/api/v1/monitors").await;
    assert!(
        monitors["data"].as_array().unwrap().is_empty(),
        "{monitors}"
    );
    node.stop().await.unwrap();
}
