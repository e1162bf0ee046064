//! `slack`: an incoming webhook, with blocks (a header, the facts, a link).

use super::{Spec, str_of};
use crate::event::Event;
use crate::send::Outgoing;
use serde_json::{Map, Value, json};

pub const SPEC: Spec = Spec {
    kind: "slack",
    required: &["slackwebhookURL"],
    urls: &["slackwebhookURL"],
    secrets: &["slackwebhookURL"],
    render: super::Render::Http(render),
    check: None,
};

/// The message as Slack-compatible webhooks take it (Mattermost and
/// Rocket.Chat accept the same `text`).
pub fn blocks(e: &Event) -> Value {
    let mut fields = vec![json!({"type": "mrkdwn", "text": format!("*Message*\n{}", e.msg)})];
    if let Some(t) = &e.target {
        fields.push(json!({"type": "mrkdwn", "text": format!("*Target*\n{t}")}));
    }
    fields.push(json!({"type": "mrkdwn", "text": format!("*Time*\n{}", e.time_text())}));
    let mut blocks = vec![
        json!({"type": "header", "text": {"type": "plain_text", "text": e.title()}}),
        json!({"type": "section", "fields": fields}),
    ];
    if let Some(l) = &e.link {
        blocks.push(json!({"type": "actions", "elements": [
            {"type": "button", "text": {"type": "plain_text", "text": "Open in Picket"}, "url": l}
        ]}));
    }
    Value::Array(blocks)
}

pub fn render(e: &Event, cfg: &Map<String, Value>) -> Outgoing {
    let mut body = json!({"text": e.kuma_msg(), "blocks": blocks(e), "eventId": e.event_id});
    for (key, field) in [
        ("slackchannel", "channel"),
        ("slackusername", "username"),
        ("slackiconemo", "icon_emoji"),
    ] {
        if let Some(v) = str_of(cfg, key) {
            body[field] = json!(v);
        }
    }
    Outgoing::json(str_of(cfg, "slackwebhookURL").unwrap_or_default(), &body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::{cfg, fixture_events as fixture};

    #[test]
    fn blocks_name_the_monitor_and_link_it() {
        let out = render(
            &fixture::down(),
            &cfg(json!({"slackwebhookURL": "https://hooks.slack.test/x", "slackchannel": "#ops"})),
        );
        let b = out.json_body();
        assert_eq!(out.url, "https://hooks.slack.test/x");
        assert_eq!(b["text"], "[shop] [🔴 Down] 500 - Internal Server Error");
        assert_eq!(b["channel"], "#ops");
        assert_eq!(b["blocks"][0]["text"]["text"], "shop is DOWN");
        assert_eq!(
            b["blocks"][2]["elements"][0]["url"],
            "https://picket.test/monitors/7"
        );
    }
}
