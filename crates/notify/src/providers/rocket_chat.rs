//! `rocket.chat`: an incoming webhook with an attachment.

use super::{Spec, str_of};
use crate::event::Event;
use crate::send::Outgoing;
use picket_shared::notify::EventKind;
use serde_json::{Map, Value, json};

pub const SPEC: Spec = Spec {
    kind: "rocket.chat",
    required: &["rocketwebhookURL"],
    urls: &["rocketwebhookURL"],
    secrets: &["rocketwebhookURL"],
    render: super::Render::Http(render),
    check: None,
};

pub fn render(e: &Event, cfg: &Map<String, Value>) -> Outgoing {
    let mut body = json!({
        "text": e.kuma_msg(),
        "attachments": [{
            "title": e.title(),
            "title_link": e.link,
            "text": e.lines()[1..].join("\n"),
            "color": if e.kind == EventKind::Up { "#32CD32" } else { "#FF0000" },
        }],
    });
    for (key, field) in [
        ("rocketchannel", "channel"),
        ("rocketusername", "alias"),
        ("rocketiconemo", "emoji"),
    ] {
        if let Some(v) = str_of(cfg, key) {
            body[field] = json!(v);
        }
    }
    Outgoing::json(str_of(cfg, "rocketwebhookURL").unwrap_or_default(), &body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::{cfg, fixture_events as fixture};

    #[test]
    fn text_and_an_attachment() {
        let b = render(
            &fixture::up(),
            &cfg(json!({"rocketwebhookURL": "https://rc.test/hooks/x", "rocketchannel": "#ops"})),
        )
        .json_body();
        assert_eq!(b["text"], "[shop] [✅ Up] 200 - OK");
        assert_eq!(b["channel"], "#ops");
        assert_eq!(b["attachments"][0]["title"], "shop is UP");
    }
}
