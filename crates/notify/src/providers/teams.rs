//! `teams`: a Microsoft Teams incoming webhook or workflow, with an
//! Adaptive Card.

use super::{Spec, str_of};
use crate::event::Event;
use crate::send::Outgoing;
use picket_shared::notify::EventKind;
use serde_json::{Map, Value, json};

pub const SPEC: Spec = Spec {
    kind: "teams",
    required: &["webhookUrl"],
    urls: &["webhookUrl"],
    secrets: &["webhookUrl"],
    render: super::Render::Http(render),
    check: None,
};

pub fn render(e: &Event, cfg: &Map<String, Value>) -> Outgoing {
    let mut facts = vec![json!({"title": "Message", "value": e.msg})];
    if let Some(t) = &e.target {
        facts.push(json!({"title": "Target", "value": t}));
    }
    facts.push(json!({"title": "Time", "value": e.time_text()}));
    let mut card = json!({
        "type": "AdaptiveCard",
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "version": "1.4",
        "body": [
            {"type": "TextBlock", "size": "Large", "weight": "Bolder", "text": e.title(),
             "color": if e.kind == EventKind::Up { "Good" } else { "Attention" }},
            {"type": "FactSet", "facts": facts},
        ],
    });
    if let Some(l) = &e.link {
        card["actions"] = json!([{"type": "Action.OpenUrl", "title": "Open in Picket", "url": l}]);
    }
    let body = json!({"type": "message", "attachments": [
        {"contentType": "application/vnd.microsoft.card.adaptive", "content": card}
    ]});
    Outgoing::json(str_of(cfg, "webhookUrl").unwrap_or_default(), &body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::{cfg, fixture_events as fixture};

    #[test]
    fn an_adaptive_card() {
        let b = render(
            &fixture::down(),
            &cfg(json!({"webhookUrl": "https://teams.test/w"})),
        )
        .json_body();
        let card = &b["attachments"][0]["content"];
        assert_eq!(card["body"][0]["text"], "shop is DOWN");
        assert_eq!(card["body"][0]["color"], "Attention");
        assert_eq!(card["actions"][0]["url"], "https://picket.test/monitors/7");
    }
}
