//! `GoogleChat` (Kuma's type name): a Chat space webhook, plain text.

use super::{Spec, str_of};
use crate::event::Event;
use crate::send::Outgoing;
use serde_json::{Map, Value, json};

pub const SPEC: Spec = Spec {
    kind: "GoogleChat",
    required: &["googleChatWebhookURL"],
    urls: &["googleChatWebhookURL"],
    secrets: &["googleChatWebhookURL"],
    render: super::Render::Http(render),
    check: None,
};

pub fn render(e: &Event, cfg: &Map<String, Value>) -> Outgoing {
    let mut lines = e.lines();
    lines[0] = format!("*{}*: {}", e.title(), e.msg);
    Outgoing::json(
        str_of(cfg, "googleChatWebhookURL").unwrap_or_default(),
        &json!({"text": lines.join("\n")}),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::{cfg, fixture_events as fixture};

    #[test]
    fn text_with_the_title_in_bold() {
        let b = render(
            &fixture::up(),
            &cfg(json!({"googleChatWebhookURL": "https://chat.test/v1/x"})),
        )
        .json_body();
        assert!(
            b["text"]
                .as_str()
                .unwrap()
                .starts_with("*shop is UP*: 200 - OK\n")
        );
    }
}
