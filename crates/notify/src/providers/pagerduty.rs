//! `PagerDuty` (Kuma's type name): Events API v2. DOWN triggers, UP
//! resolves (unless `pagerdutyAutoResolve` is `"0"`), one dedup key per
//! monitor so a reminder updates the same incident.

use super::{Spec, str_of};
use crate::event::Event;
use crate::send::Outgoing;
use picket_shared::notify::EventKind;
use serde_json::{Map, Value, json};

pub const SPEC: Spec = Spec {
    kind: "PagerDuty",
    required: &["pagerdutyIntegrationKey"],
    urls: &["pagerdutyIntegrationUrl"],
    secrets: &["pagerdutyIntegrationKey"],
    render: super::Render::Http(render),
    check: None,
};

/// One incident per monitor, and one per monitor's certificate.
fn dedup_key(e: &Event) -> String {
    match e.kind {
        EventKind::TlsExpiry => format!("picket-monitor-{}-tls", e.monitor_id),
        _ => format!("picket-monitor-{}", e.monitor_id),
    }
}

pub fn render(e: &Event, cfg: &Map<String, Value>) -> Outgoing {
    let url =
        str_of(cfg, "pagerdutyIntegrationUrl").unwrap_or("https://events.pagerduty.com/v2/enqueue");
    let resolve = e.kind == EventKind::Up && str_of(cfg, "pagerdutyAutoResolve") != Some("0");
    let mut body = json!({
        "routing_key": str_of(cfg, "pagerdutyIntegrationKey").unwrap_or_default(),
        "dedup_key": dedup_key(e),
        "event_action": if resolve { "resolve" } else { "trigger" },
        "payload": {
            "summary": format!("{}: {}", e.title(), e.msg),
            "source": e.target.clone().unwrap_or_else(|| e.monitor_name.clone()),
            "severity": str_of(cfg, "pagerdutyPriority").unwrap_or("critical"),
            "timestamp": e.utc_text(),
            "custom_details": {"monitor": e.monitor_name, "node": e.node, "eventId": e.event_id},
        },
    });
    if let Some(l) = &e.link {
        body["links"] = json!([{"href": l, "text": "Open in Picket"}]);
    }
    Outgoing::json(url, &body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::{cfg, fixture_events as fixture};

    #[test]
    fn trigger_then_resolve_under_one_dedup_key() {
        let c = cfg(json!({"pagerdutyIntegrationKey": "K"}));
        let t = render(&fixture::down(), &c).json_body();
        let r = render(&fixture::up(), &c).json_body();
        assert_eq!(
            (&t["event_action"], &r["event_action"]),
            (&json!("trigger"), &json!("resolve"))
        );
        assert_eq!(t["dedup_key"], r["dedup_key"]);
        assert_eq!(t["routing_key"], "K");
        let keep = cfg(json!({"pagerdutyIntegrationKey": "K", "pagerdutyAutoResolve": "0"}));
        assert_eq!(
            render(&fixture::up(), &keep).json_body()["event_action"],
            "trigger"
        );
    }
}
