//! `ntfy`: a JSON publish to `ntfyserverurl` (self-hosted or ntfy.sh) on
//! `ntfytopic`, with priority, and an access token or user and password.

use super::{Spec, int_of, str_of};
use crate::event::Event;
use crate::send::Outgoing;
use picket_shared::notify::EventKind;
use serde_json::{Map, Value, json};

pub const SPEC: Spec = Spec {
    kind: "ntfy",
    required: &["ntfyserverurl", "ntfytopic"],
    urls: &["ntfyserverurl"],
    secrets: &["ntfypassword", "ntfyaccesstoken"],
    render: super::Render::Http(render),
    check: None,
};

pub fn render(e: &Event, cfg: &Map<String, Value>) -> Outgoing {
    let mut body = json!({
        "topic": str_of(cfg, "ntfytopic").unwrap_or_default(),
        "title": e.title(),
        "message": e.lines().join("\n"),
        "priority": int_of(cfg, "ntfyPriority").unwrap_or(if e.kind == EventKind::Up { 3 } else { 5 }).clamp(1, 5),
        "tags": [if e.kind == EventKind::Up { "green_circle" } else { "red_circle" }],
    });
    if let Some(l) = &e.link {
        body["click"] = json!(l);
    }
    let out = Outgoing::json(str_of(cfg, "ntfyserverurl").unwrap_or_default(), &body);
    if let Some(t) = str_of(cfg, "ntfyaccesstoken") {
        out.header("Authorization", format!("Bearer {t}"))
    } else if let (Some(u), Some(p)) = (str_of(cfg, "ntfyusername"), str_of(cfg, "ntfypassword")) {
        out.header(
            "Authorization",
            format!("Basic {}", base64(&format!("{u}:{p}"))),
        )
    } else {
        out
    }
}

/// Standard base64 (RFC 4648) of `s`, for Basic auth.
pub fn base64(s: &str) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let b = s.as_bytes();
    let mut out = String::with_capacity(b.len().div_ceil(3) * 4);
    for c in b.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
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
    fn publish_with_priority_and_auth() {
        let out = render(
            &fixture::down(),
            &cfg(
                json!({"ntfyserverurl": "http://127.0.0.1:9", "ntfytopic": "ops",
                "ntfyusername": "u", "ntfypassword": "p"}),
            ),
        );
        let b = out.json_body();
        assert_eq!(
            (&b["topic"], &b["priority"], &b["title"]),
            (&json!("ops"), &json!(5), &json!("shop is DOWN"))
        );
        assert!(
            out.headers
                .contains(&("Authorization".into(), "Basic dTpw".into()))
        );
        assert_eq!(base64("hello"), "aGVsbG8=");
        let token = render(
            &fixture::up(),
            &cfg(
                json!({"ntfyserverurl": "http://h", "ntfytopic": "t", "ntfyaccesstoken": "tk", "ntfyPriority": "2"}),
            ),
        );
        assert!(
            token
                .headers
                .contains(&("Authorization".into(), "Bearer tk".into()))
        );
        assert_eq!(token.json_body()["priority"], 2);
    }
}
