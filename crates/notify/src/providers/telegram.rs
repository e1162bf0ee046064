//! `telegram`: the Bot API's `sendMessage` (chat id, optional thread id,
//! optionally silent). The server is `telegramServerUrl` (default the
//! public Bot API), for self-hosted Bot API servers and tests.

use super::{Spec, flag_of, int_of, str_of};
use crate::event::Event;
use crate::send::Outgoing;
use serde_json::{Map, Value, json};

pub const SPEC: Spec = Spec {
    kind: "telegram",
    required: &["telegramBotToken", "telegramChatID"],
    urls: &["telegramServerUrl"],
    secrets: &["telegramBotToken"],
    render: super::Render::Http(render),
    check: None,
};

pub fn render(e: &Event, cfg: &Map<String, Value>) -> Outgoing {
    let server = str_of(cfg, "telegramServerUrl").unwrap_or("https://api.telegram.org");
    let token = str_of(cfg, "telegramBotToken").unwrap_or_default();
    let mut body = json!({
        "chat_id": str_of(cfg, "telegramChatID").unwrap_or_default(),
        "text": e.lines().join("\n"),
        "disable_notification": flag_of(cfg, "telegramSendSilently"),
        "link_preview_options": {"is_disabled": true},
    });
    if let Some(t) = int_of(cfg, "telegramMessageThreadID") {
        body["message_thread_id"] = json!(t);
    }
    Outgoing::json(
        format!("{}/bot{token}/sendMessage", server.trim_end_matches('/')),
        &body,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::{cfg, fixture_events as fixture};

    #[test]
    fn send_message_to_the_chat_and_thread() {
        let out = render(
            &fixture::down(),
            &cfg(
                json!({"telegramBotToken": "123:abc", "telegramChatID": "-100",
                "telegramMessageThreadID": "9", "telegramSendSilently": true,
                "telegramServerUrl": "http://127.0.0.1:9/"}),
            ),
        );
        assert_eq!(out.url, "http://127.0.0.1:9/bot123:abc/sendMessage");
        let b = out.json_body();
        assert_eq!(
            (&b["chat_id"], &b["message_thread_id"]),
            (&json!("-100"), &json!(9))
        );
        assert_eq!(b["disable_notification"], true);
        let text = b["text"].as_str().unwrap();
        assert!(
            text.starts_with(
                "shop is DOWN: 500 - Internal Server Error\nTarget: https://shop.test/"
            ),
            "{text}"
        );
        assert!(
            text.contains("Time: 2026-12-01 12:30:45 UTC (checked by n1)"),
            "{text}"
        );
    }
}
