//! `webhook`: Uptime Kuma's JSON body `{heartbeat, monitor, msg}` (plus
//! `eventId`), or Kuma's form-data (`data` = that JSON), or a custom body
//! from a template (`{{msg}}`, `{{monitor.name}}`, `{{heartbeat.status}}`,
//! Kuma's `monitorJSON` / `heartbeatJSON` spellings too), with optional
//! extra headers (`webhookAdditionalHeaders`, a JSON object).

use super::{Spec, str_of};
use crate::event::Event;
use crate::send::Outgoing;
use crate::template::{self, kuma_json};
use picket_shared::monitor::FieldError;
use serde_json::{Map, Value, json};

pub const SPEC: Spec = Spec {
    kind: "webhook",
    required: &["webhookURL"],
    urls: &["webhookURL"],
    secrets: &["webhookURL"],
    render: super::Render::Http(render),
    check: Some(check),
};

/// A custom body must be a template that renders.
fn check(cfg: &Map<String, Value>) -> Vec<FieldError> {
    super::check_templates(cfg, &["webhookCustomBody"])
}

pub fn render(e: &Event, cfg: &Map<String, Value>) -> Outgoing {
    let url = str_of(cfg, "webhookURL").unwrap_or_default();
    let (heartbeat, monitor) = kuma_json(e);
    let body = if e.digest.is_empty() {
        json!({"heartbeat": heartbeat, "monitor": monitor, "msg": e.kuma_msg(), "eventId": e.event_id})
    } else {
        // A digest: one body, an `events` array of Kuma's bodies.
        let events: Vec<Value> = e
            .digest
            .iter()
            .map(|d| {
                let (h, m) = kuma_json(d);
                json!({"heartbeat": h, "monitor": m, "msg": d.kuma_msg(), "eventId": d.event_id})
            })
            .collect();
        json!({"msg": e.kuma_msg(), "eventId": e.event_id, "events": events})
    };
    let mut out = match str_of(cfg, "webhookContentType") {
        Some("form-data") => {
            let boundary = "picket-form-boundary";
            let form = format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"data\"\r\n\r\n{body}\r\n--{boundary}--\r\n"
            );
            Outgoing {
                method: "POST",
                url: url.to_owned(),
                headers: vec![(
                    "Content-Type".into(),
                    format!("multipart/form-data; boundary={boundary}"),
                )],
                body: form.into_bytes(),
            }
        }
        Some("custom") => {
            let tpl = str_of(cfg, "webhookCustomBody").unwrap_or("{{msg}}");
            // The template was checked when it was stored; should it still
            // fail, the message goes out plain rather than not at all.
            let text = template::render(tpl, e).unwrap_or_else(|err| {
                format!("{}\n(the channel's template failed: {err})", e.kuma_msg())
            });
            let json_body = serde_json::from_str::<Value>(&text).is_ok();
            Outgoing {
                method: "POST",
                url: url.to_owned(),
                headers: vec![(
                    "Content-Type".into(),
                    if json_body {
                        "application/json"
                    } else {
                        "text/plain"
                    }
                    .into(),
                )],
                body: text.into_bytes(),
            }
        }
        _ => Outgoing::json(url, &body),
    };
    if let Some(extra) = str_of(cfg, "webhookAdditionalHeaders")
        .and_then(|h| serde_json::from_str::<Map<String, Value>>(h).ok())
    {
        for (k, v) in extra {
            if let Some(v) = v.as_str() {
                out = out.header(&k, v);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::{cfg, fixture_events as fixture};

    #[test]
    fn kumas_body_with_the_event_id() {
        let out = render(
            &fixture::down(),
            &cfg(json!({"webhookURL": "http://127.0.0.1:9/hook"})),
        );
        assert_eq!(
            (out.method, out.url.as_str()),
            ("POST", "http://127.0.0.1:9/hook")
        );
        let b = out.json_body();
        assert_eq!(b["msg"], "[shop] [🔴 Down] 500 - Internal Server Error");
        assert_eq!(b["heartbeat"]["status"], 0);
        assert_eq!(b["heartbeat"]["monitorID"], 7);
        assert_eq!(b["monitor"]["name"], "shop");
        assert_eq!(b["eventId"], "e1");
    }

    #[test]
    fn a_digest_is_one_body_with_an_events_array() {
        let d = Event::digest(vec![fixture::down(), fixture::up()], None);
        let b = render(&d, &cfg(json!({"webhookURL": "http://h.test/"}))).json_body();
        assert_eq!(b["events"].as_array().unwrap().len(), 2);
        assert_eq!(b["events"][1]["msg"], "[shop] [✅ Up] 200 - OK");
        assert!(
            b["msg"]
                .as_str()
                .unwrap()
                .starts_with("[Picket] 1 monitor DOWN, 1 UP\n")
        );
    }

    #[test]
    fn custom_templates_and_headers() {
        let c = cfg(json!({
            "webhookURL": "http://127.0.0.1:9/hook",
            "webhookContentType": "custom",
            "webhookCustomBody": "{\"text\": \"{{monitorJSON.name}} is {% if heartbeat.status == 1 %}up{% else %}down{% endif %}: {{msg}}\"}",
            "webhookAdditionalHeaders": "{\"X-Token\": \"t\"}",
        }));
        let out = render(&fixture::up(), &c);
        assert_eq!(
            out.json_body()["text"],
            "shop is up: [shop] [✅ Up] 200 - OK"
        );
        assert!(out.headers.contains(&("X-Token".into(), "t".into())));
        let bad = json!({"webhookURL": "http://h.test/", "webhookCustomBody": "{{ msg | nope }}"});
        let e = super::super::validate("webhook", &bad).unwrap_err();
        assert_eq!(e[0].field, "config.webhookCustomBody");
    }

    #[test]
    fn form_data_carries_the_json_in_data() {
        let c = cfg(json!({"webhookURL": "http://h.test/", "webhookContentType": "form-data"}));
        let out = render(&fixture::down(), &c);
        let body = String::from_utf8(out.body).unwrap();
        assert!(
            body.contains("name=\"data\"") && body.contains("\"eventId\":\"e1\""),
            "{body}"
        );
    }
}
