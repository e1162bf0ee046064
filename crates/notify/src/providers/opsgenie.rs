//! `Opsgenie` (Kuma's type name): the Alert API. DOWN creates an alert whose
//! alias is the monitor (so reminders add to it), UP closes it.
//! `opsgenieRegion` `eu` picks the EU API; `opsgenieServerUrl` overrides
//! both (tests, proxies).

use super::{Spec, str_of};
use crate::event::Event;
use crate::send::Outgoing;
use picket_shared::notify::EventKind;
use serde_json::{Map, Value, json};

pub const SPEC: Spec = Spec {
    kind: "Opsgenie",
    required: &["opsgenieApiKey"],
    urls: &["opsgenieServerUrl"],
    secrets: &["opsgenieApiKey"],
    render: super::Render::Http(render),
    check: None,
};

pub fn render(e: &Event, cfg: &Map<String, Value>) -> Outgoing {
    let base = match (
        str_of(cfg, "opsgenieServerUrl"),
        str_of(cfg, "opsgenieRegion"),
    ) {
        (Some(u), _) => u.trim_end_matches('/').to_owned(),
        (None, Some("eu")) => "https://api.eu.opsgenie.com".to_owned(),
        (None, _) => "https://api.opsgenie.com".to_owned(),
    };
    let alias = match e.kind {
        EventKind::TlsExpiry => format!("picket-monitor-{}-tls", e.monitor_id),
        _ => format!("picket-monitor-{}", e.monitor_id),
    };
    let out = if e.kind == EventKind::Up {
        Outgoing::json(
            format!("{base}/v2/alerts/{alias}/close?identifierType=alias"),
            &json!({"source": "Picket", "note": e.lines().join("\n")}),
        )
    } else {
        Outgoing::json(
            format!("{base}/v2/alerts"),
            &json!({
                "message": e.title(),
                "alias": alias,
                "description": e.lines().join("\n"),
                "source": "Picket",
                "priority": str_of(cfg, "opsgeniePriority").map_or("P3".to_owned(), |p| {
                    if p.starts_with('P') { p.to_owned() } else { format!("P{p}") }
                }),
                "details": {"eventId": e.event_id, "node": e.node},
            }),
        )
    };
    out.header(
        "Authorization",
        format!(
            "GenieKey {}",
            str_of(cfg, "opsgenieApiKey").unwrap_or_default()
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::{cfg, fixture_events as fixture};

    #[test]
    fn create_on_down_close_on_up_by_alias() {
        let c =
            cfg(json!({"opsgenieApiKey": "K", "opsgenieRegion": "eu", "opsgeniePriority": "2"}));
        let open = render(&fixture::down(), &c);
        assert_eq!(open.url, "https://api.eu.opsgenie.com/v2/alerts");
        assert_eq!(open.json_body()["alias"], "picket-monitor-7");
        assert_eq!(open.json_body()["priority"], "P2");
        assert!(
            open.headers
                .contains(&("Authorization".into(), "GenieKey K".into()))
        );
        let close = render(&fixture::up(), &c);
        assert_eq!(
            close.url,
            "https://api.eu.opsgenie.com/v2/alerts/picket-monitor-7/close?identifierType=alias"
        );
    }
}
