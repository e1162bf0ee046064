//! `pushover`: the Messages API (`pushoverServerUrl` overrides the public
//! server, for tests).

use super::{Spec, int_of, str_of};
use crate::event::Event;
use crate::send::Outgoing;
use serde_json::{Map, Value, json};

pub const SPEC: Spec = Spec {
    kind: "pushover",
    required: &["pushoveruserkey", "pushoverapptoken"],
    urls: &["pushoverServerUrl"],
    secrets: &["pushoveruserkey", "pushoverapptoken"],
    render: super::Render::Http(render),
    check: None,
};

pub fn render(e: &Event, cfg: &Map<String, Value>) -> Outgoing {
    let server = str_of(cfg, "pushoverServerUrl").unwrap_or("https://api.pushover.net");
    let mut body = json!({
        "token": str_of(cfg, "pushoverapptoken").unwrap_or_default(),
        "user": str_of(cfg, "pushoveruserkey").unwrap_or_default(),
        "title": e.title(),
        "message": e.lines().join("\n"),
        "timestamp": e.time / 1000,
    });
    if let Some(p) = int_of(cfg, "pushoverpriority") {
        body["priority"] = json!(p.clamp(-2, 2));
    }
    for (key, field) in [("pushoversounds", "sound"), ("pushoverdevice", "device")] {
        if let Some(v) = str_of(cfg, key) {
            body[field] = json!(v);
        }
    }
    if let Some(l) = &e.link {
        body["url"] = json!(l);
    }
    Outgoing::json(
        format!("{}/1/messages.json", server.trim_end_matches('/')),
        &body,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::{cfg, fixture_events as fixture};

    #[test]
    fn messages_api() {
        let out = render(
            &fixture::down(),
            &cfg(json!({"pushoveruserkey": "u", "pushoverapptoken": "a", "pushoverpriority": "1"})),
        );
        assert_eq!(out.url, "https://api.pushover.net/1/messages.json");
        let b = out.json_body();
        assert_eq!(
            (&b["user"], &b["token"], &b["priority"]),
            (&json!("u"), &json!("a"), &json!(1))
        );
    }
}
