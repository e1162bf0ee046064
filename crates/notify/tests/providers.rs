//! Every HTTP provider against a receiver the test starts, speaking the
//! provider's API where the provider's settings point (each one's base URL
//! is configurable): the DOWN, UP, reminder, TLS-expiry and digest messages arrive with
//! the method, path, headers and body the provider's API expects.

use picket_notify::Event;
use picket_notify::providers::{self, fixture_events};
use picket_notify::send;
use picket_shared::notify::EventKind;
use picket_testkit::receiver::{Received, Receiver};
use serde_json::{Value, json};

/// (provider, settings pointing at `base`, method, path, a check of the body)
type Case = (
    &'static str,
    Value,
    &'static str,
    &'static str,
    fn(&Received, &Event),
);

fn cases(base: &str) -> Vec<Case> {
    let u = |p: &str| format!("{base}{p}");
    vec![
        (
            "webhook",
            json!({"webhookURL": u("/hook")}),
            "POST",
            "/hook",
            |r, e| {
                assert_eq!(r.json()["eventId"], e.event_id.as_str());
            },
        ),
        (
            "slack",
            json!({"slackwebhookURL": u("/services/T/B/X")}),
            "POST",
            "/services/T/B/X",
            |r, e| {
                assert_eq!(r.json()["blocks"][0]["text"]["text"], e.title());
            },
        ),
        (
            "discord",
            json!({"discordWebhookUrl": u("/api/webhooks/1/x")}),
            "POST",
            "/api/webhooks/1/x",
            |r, e| {
                assert_eq!(r.json()["embeds"][0]["title"], e.title());
            },
        ),
        (
            "telegram",
            json!({"telegramBotToken": "1:T", "telegramChatID": "42", "telegramServerUrl": base}),
            "POST",
            "/bot1:T/sendMessage",
            |r, e| {
                assert_eq!(r.json()["chat_id"], "42");
                assert!(r.json()["text"].as_str().unwrap().starts_with(&e.title()));
            },
        ),
        (
            "teams",
            json!({"webhookUrl": u("/workflows/x")}),
            "POST",
            "/workflows/x",
            |r, e| {
                assert_eq!(
                    r.json()["attachments"][0]["content"]["body"][0]["text"],
                    e.title()
                );
            },
        ),
        (
            "ntfy",
            json!({"ntfyserverurl": base, "ntfytopic": "ops", "ntfyaccesstoken": "tk"}),
            "POST",
            "/",
            |r, e| {
                assert_eq!(r.header("authorization"), Some("Bearer tk"));
                assert_eq!(
                    (&r.json()["topic"], &r.json()["title"]),
                    (&json!("ops"), &json!(e.title()))
                );
            },
        ),
        (
            "gotify",
            json!({"gotifyserverurl": base, "gotifyapplicationToken": "A"}),
            "POST",
            "/message",
            |r, e| {
                assert_eq!(r.header("x-gotify-key"), Some("A"));
                assert_eq!(r.json()["title"], e.title());
            },
        ),
        (
            "pushover",
            json!({"pushoveruserkey": "U", "pushoverapptoken": "A", "pushoverServerUrl": base}),
            "POST",
            "/1/messages.json",
            |r, e| {
                assert_eq!(
                    (&r.json()["user"], &r.json()["title"]),
                    (&json!("U"), &json!(e.title()))
                );
            },
        ),
        (
            "mattermost",
            json!({"mattermostWebhookUrl": u("/hooks/m")}),
            "POST",
            "/hooks/m",
            |r, e| {
                assert_eq!(r.json()["attachments"][0]["title"], e.title());
            },
        ),
        (
            "GoogleChat",
            json!({"googleChatWebhookURL": u("/v1/spaces/s/messages")}),
            "POST",
            "/v1/spaces/s/messages",
            |r, e| {
                assert!(r.json()["text"].as_str().unwrap().contains(&e.title()));
            },
        ),
        (
            "PagerDuty",
            json!({"pagerdutyIntegrationKey": "K", "pagerdutyIntegrationUrl": u("/v2/enqueue")}),
            "POST",
            "/v2/enqueue",
            |r, e| {
                let want = if e.kind == EventKind::Up {
                    "resolve"
                } else {
                    "trigger"
                };
                assert_eq!(r.json()["event_action"], want);
            },
        ),
        (
            "matrix",
            json!({"homeserverUrl": base, "internalRoomId": "!r:m", "accessToken": "T"}),
            "PUT",
            "/_matrix/client/v3/rooms/%21r%3Am/send/m.room.message/",
            |r, e| {
                assert_eq!(r.header("authorization"), Some("Bearer T"));
                assert!(r.json()["body"].as_str().unwrap().starts_with(&e.title()));
            },
        ),
        (
            "rocket.chat",
            json!({"rocketwebhookURL": u("/hooks/r")}),
            "POST",
            "/hooks/r",
            |r, e| {
                assert_eq!(r.json()["attachments"][0]["title"], e.title());
            },
        ),
        (
            "Opsgenie",
            json!({"opsgenieApiKey": "K", "opsgenieServerUrl": base}),
            "POST",
            "/v2/alerts",
            |r, e| {
                assert_eq!(r.header("authorization"), Some("GenieKey K"));
                if e.kind != EventKind::Up {
                    assert_eq!(r.json()["message"], e.title());
                }
            },
        ),
    ]
}

/// The five messages every provider must carry.
fn events() -> Vec<Event> {
    let down = fixture_events::down();
    let up = fixture_events::up();
    let reminder = Event {
        kind: EventKind::Reminder,
        ..fixture_events::down()
    };
    let tls = Event {
        kind: EventKind::TlsExpiry,
        status: picket_shared::model::Status::Up,
        msg: "Certificate expires in 6 days (within 7 days)".into(),
        ..fixture_events::down()
    };
    let digest = Event::digest(vec![fixture_events::down(), fixture_events::up()], None);
    vec![down, up, reminder, tls, digest]
}

#[tokio::test]
async fn every_provider_speaks_its_api() {
    let rx = Receiver::start().await;
    let base = rx.url("");
    let http = send::client();
    let cases = cases(&base);
    for kind in providers::ALL
        .iter()
        .map(|s| s.kind)
        .filter(|k| *k != "smtp")
    {
        assert!(
            cases.iter().any(|c| c.0 == kind),
            "provider {kind} has no case here"
        );
    }
    let mut seen = 0;
    for (kind, cfg, method, path, check) in &cases {
        assert!(providers::validate(kind, cfg).is_ok(), "{kind}: {cfg}");
        for e in events() {
            let req = providers::render(kind, cfg, &e).unwrap();
            send::deliver(&http, &req, &e.event_id)
                .await
                .unwrap_or_else(|err| panic!("{kind}: {err}"));
            let got = rx.received();
            let r = &got[seen];
            seen += 1;
            assert_eq!(r.method, *method, "{kind}");
            // Opsgenie closes an alert on UP at its own path.
            if !(*kind == "Opsgenie" && e.kind == EventKind::Up) {
                assert!(r.path.starts_with(path), "{kind}: {} vs {path}", r.path);
            }
            assert_eq!(
                r.header("x-picket-event-id"),
                Some(e.event_id.as_str()),
                "{kind}"
            );
            check(r, &e);
        }
    }
}
