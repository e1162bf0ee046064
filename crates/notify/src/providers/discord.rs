//! `discord`: a webhook with one embed, red for DOWN and green for UP.

use super::{Spec, str_of};
use crate::event::Event;
use crate::send::Outgoing;
use picket_shared::notify::EventKind;
use serde_json::{Map, Value, json};

pub const SPEC: Spec = Spec {
    kind: "discord",
    required: &["discordWebhookUrl"],
    urls: &["discordWebhookUrl"],
    secrets: &["discordWebhookUrl"],
    render: super::Render::Http(render),
    check: None,
};

pub fn render(e: &Event, cfg: &Map<String, Value>) -> Outgoing {
    let color = if e.kind == EventKind::Up {
        0x00ff00
    } else {
        0xff0000
    };
    let mut fields = vec![json!({"name": "Service Name", "value": e.monitor_name})];
    if let Some(t) = &e.target {
        fields.push(json!({"name": "Service URL", "value": t}));
    }
    fields.push(json!({"name": "Time", "value": e.time_text()}));
    fields.push(
        json!({"name": if e.kind == EventKind::Up { "Ping" } else { "Error" },
        "value": match (e.kind, e.ping) {
            (EventKind::Up, Some(p)) => format!("{p:.0} ms"),
            _ => e.msg.clone(),
        }}),
    );
    let mut embed = json!({"title": e.title(), "color": color, "fields": fields});
    if let Some(l) = &e.link {
        embed["url"] = json!(l);
    }
    let body = json!({
        "username": str_of(cfg, "discordUsername").unwrap_or("Picket"),
        "content": e.kuma_msg(),
        "embeds": [embed],
    });
    Outgoing::json(str_of(cfg, "discordWebhookUrl").unwrap_or_default(), &body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::{cfg, fixture_events as fixture};

    #[test]
    fn an_embed_per_event() {
        let c = cfg(json!({"discordWebhookUrl": "https://discord.test/api/webhooks/1/x"}));
        let down = render(&fixture::down(), &c).json_body();
        assert_eq!(down["embeds"][0]["color"], 0xff0000);
        assert_eq!(
            down["embeds"][0]["fields"][3]["value"],
            "500 - Internal Server Error"
        );
        let up = render(&fixture::up(), &c).json_body();
        assert_eq!(up["embeds"][0]["title"], "shop is UP");
        assert_eq!(up["embeds"][0]["fields"][3]["value"], "12 ms");
    }
}
