//! `mattermost`: an incoming webhook (Slack-compatible), with an attachment.

use super::{Spec, str_of};
use crate::event::Event;
use crate::send::Outgoing;
use picket_shared::notify::EventKind;
use serde_json::{Map, Value, json};

pub const SPEC: Spec = Spec {
    kind: "mattermost",
    required: &["mattermostWebhookUrl"],
    urls: &["mattermostWebhookUrl", "mattermosticonurl"],
    secrets: &["mattermostWebhookUrl"],
    render: super::Render::Http(render),
    check: None,
};

pub fn render(e: &Event, cfg: &Map<String, Value>) -> Outgoing {
    let mut body = json!({
        "username": str_of(cfg, "mattermostusername").unwrap_or("Picket"),
        "text": e.kuma_msg(),
        "attachments": [{
            "fallback": e.kuma_msg(),
            "color": if e.kind == EventKind::Up { "#32CD32" } else { "#FF0000" },
            "title": e.title(),
            "title_link": e.link,
            "fields": [
                {"short": true, "title": "Target", "value": e.target.clone().unwrap_or_default()},
                {"short": true, "title": "Time", "value": e.time_text()},
                {"short": false, "title": "Message", "value": e.msg},
            ],
        }],
    });
    for (key, field) in [
        ("mattermostchannel", "channel"),
        ("mattermosticonemo", "icon_emoji"),
        ("mattermosticonurl", "icon_url"),
    ] {
        if let Some(v) = str_of(cfg, key) {
            body[field] = json!(v);
        }
    }
    Outgoing::json(
        str_of(cfg, "mattermostWebhookUrl").unwrap_or_default(),
        &body,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::{cfg, fixture_events as fixture};

    #[test]
    fn an_attachment_per_event() {
        let b = render(
            &fixture::down(),
            &cfg(json!({"mattermostWebhookUrl": "https://mm.test/hooks/x", "mattermostchannel": "ops"})),
        )
        .json_body();
        assert_eq!(b["channel"], "ops");
        assert_eq!(b["attachments"][0]["title"], "shop is DOWN");
        assert_eq!(b["attachments"][0]["color"], "#FF0000");
    }
}
