//! Email against a real SMTP server started by the test (aiosmtpd): plain
//! with AUTH, required STARTTLS, implicit TLS; text and HTML parts, several
//! recipients, CC and BCC, the event id header; an untrusted certificate
//! refused.

use picket_notify::providers::{self, fixture_events};
use picket_notify::send::{self, SendError};
use picket_testkit::smtp::{Mode, SmtpServer};
use serde_json::{Value, json};

fn config(port: u16, extra: Value) -> Value {
    let mut c = json!({"smtpHost": "127.0.0.1", "smtpPort": port, "smtpFrom": "Picket <picket@x.test>",
        "smtpTo": "ops@x.test, oncall@x.test", "smtpCC": "lead@x.test", "smtpBCC": "audit@x.test",
        "smtpIgnoreTLSError": true});
    for (k, v) in extra.as_object().unwrap() {
        c[k] = v.clone();
    }
    c
}

async fn send_down(cfg: &Value) -> Result<String, SendError> {
    assert!(providers::validate("smtp", cfg).is_ok(), "{cfg}");
    let event = fixture_events::down();
    let req = providers::render("smtp", cfg, &event).unwrap();
    send::deliver(&send::client(), &req, &event.event_id).await
}

#[tokio::test]
async fn plain_smtp_with_auth_delivers_text_and_html_to_every_recipient() {
    let server = SmtpServer::start(Mode::Plain, Some(("picket", "s3cret")));
    let cfg = config(
        server.port,
        json!({"smtpSecurity": "none", "smtpUsername": "picket", "smtpPassword": "s3cret"}),
    );
    send_down(&cfg).await.unwrap();
    let got = server.received(1).await;
    assert_eq!(got.len(), 1);
    let m = &got[0];
    assert_eq!(m["from"], "picket@x.test");
    let mut to: Vec<&str> = m["to"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    to.sort();
    assert_eq!(
        to,
        ["audit@x.test", "lead@x.test", "oncall@x.test", "ops@x.test"]
    );
    assert_eq!(
        (m["auth"].as_bool(), m["tls"].as_bool()),
        (Some(true), Some(false))
    );
    let data = m["data"].as_str().unwrap();
    assert!(data.contains("Subject: [Picket] shop is DOWN"), "{data}");
    assert!(data.contains("X-Picket-Event-Id: e1"), "{data}");
    assert!(
        data.contains("Content-Type: text/plain") && data.contains("Content-Type: text/html"),
        "{data}"
    );
    assert!(
        data.contains("Cc: lead@x.test") && !data.contains("audit@x.test"),
        "BCC stays hidden: {data}"
    );
}

#[tokio::test]
async fn starttls_and_implicit_tls_are_encrypted() {
    let starttls = SmtpServer::start(Mode::StartTls, None);
    send_down(&config(starttls.port, json!({"smtpSecurity": "starttls"})))
        .await
        .unwrap();
    assert_eq!(starttls.received(1).await[0]["tls"], true);

    let tls = SmtpServer::start(Mode::Tls, None);
    send_down(&config(tls.port, json!({"smtpSecure": true})))
        .await
        .unwrap();
    assert_eq!(tls.received(1).await[0]["tls"], true);
}

#[tokio::test]
async fn an_untrusted_certificate_fails_the_delivery() {
    let tls = SmtpServer::start(Mode::Tls, None);
    let strict = config(
        tls.port,
        json!({"smtpSecure": true, "smtpIgnoreTLSError": false}),
    );
    let e = send_down(&strict).await.unwrap_err();
    assert!(
        matches!(e, SendError::Retry { .. }),
        "a TLS failure may be passing: {e:?}"
    );
    assert!(tls.messages().is_empty());
}
