//! `gotify`: `POST /message` with the application token.

use super::{Spec, int_of, str_of};
use crate::event::Event;
use crate::send::Outgoing;
use serde_json::{Map, Value, json};

pub const SPEC: Spec = Spec {
    kind: "gotify",
    required: &["gotifyserverurl", "gotifyapplicationToken"],
    urls: &["gotifyserverurl"],
    secrets: &["gotifyapplicationToken"],
    render: super::Render::Http(render),
    check: None,
};

pub fn render(e: &Event, cfg: &Map<String, Value>) -> Outgoing {
    let server = str_of(cfg, "gotifyserverurl")
        .unwrap_or_default()
        .trim_end_matches('/');
    let body = json!({
        "title": e.title(),
        "message": e.lines().join("\n"),
        "priority": int_of(cfg, "gotifyPriority").unwrap_or(8),
    });
    Outgoing::json(format!("{server}/message"), &body).header(
        "X-Gotify-Key",
        str_of(cfg, "gotifyapplicationToken").unwrap_or_default(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::{cfg, fixture_events as fixture};

    #[test]
    fn message_with_the_app_token() {
        let out = render(
            &fixture::down(),
            &cfg(
                json!({"gotifyserverurl": "http://g.test/", "gotifyapplicationToken": "A1", "gotifyPriority": 5}),
            ),
        );
        assert_eq!(out.url, "http://g.test/message");
        assert!(out.headers.contains(&("X-Gotify-Key".into(), "A1".into())));
        assert_eq!(out.json_body()["priority"], 5);
    }
}
