//! `matrix`: the client-server API's send of an `m.room.message` to
//! `internalRoomId` on `homeserverUrl`, with an access token. The
//! transaction id is the event id, so a repeat is the same transaction.

use super::{Spec, str_of};
use crate::event::Event;
use crate::send::Outgoing;
use serde_json::{Map, Value, json};

pub const SPEC: Spec = Spec {
    kind: "matrix",
    required: &["homeserverUrl", "internalRoomId", "accessToken"],
    urls: &["homeserverUrl"],
    secrets: &["accessToken"],
    render: super::Render::Http(render),
    check: None,
};

/// Percent-encodes a path segment (room ids hold `!` and `:`).
fn segment(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

pub fn render(e: &Event, cfg: &Map<String, Value>) -> Outgoing {
    let server = str_of(cfg, "homeserverUrl")
        .unwrap_or_default()
        .trim_end_matches('/');
    let room = segment(str_of(cfg, "internalRoomId").unwrap_or_default());
    let url = format!(
        "{server}/_matrix/client/v3/rooms/{room}/send/m.room.message/{}",
        segment(&e.event_id)
    );
    let body = json!({"msgtype": "m.text", "body": e.lines().join("\n")});
    let mut out = Outgoing::json(url, &body).header(
        "Authorization",
        format!("Bearer {}", str_of(cfg, "accessToken").unwrap_or_default()),
    );
    out.method = "PUT";
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::{cfg, fixture_events as fixture};

    #[test]
    fn a_put_to_the_room_with_the_event_as_transaction() {
        let out = render(
            &fixture::down(),
            &cfg(
                json!({"homeserverUrl": "https://m.test/", "internalRoomId": "!abc:m.test", "accessToken": "t"}),
            ),
        );
        assert_eq!(out.method, "PUT");
        assert_eq!(
            out.url,
            "https://m.test/_matrix/client/v3/rooms/%21abc%3Am.test/send/m.room.message/e1"
        );
        assert!(
            out.headers
                .contains(&("Authorization".into(), "Bearer t".into()))
        );
        assert_eq!(out.json_body()["msgtype"], "m.text");
    }
}
