//! Uptime Kuma's message templates: Liquid (Kuma uses liquidjs), with the
//! variables Kuma gives them — `msg`, `monitorJSON`, `heartbeatJSON`,
//! `status` / `STATUS`, `name` / `NAME`, `hostnameOrURL` /
//! `HOSTNAME_OR_URL` — and Picket's `monitor`, `heartbeat`, `eventId` and
//! `link`, so an imported Kuma template means what it meant there.
//! Filters, conditionals and loops are Liquid's standard library, plus
//! liquidjs's `json` filter.

use crate::event::Event;
use crate::event::fixture_events;
use liquid_core::{Display_filter, Filter, FilterReflection, ParseFilter};
use serde_json::{Value, json};
use std::sync::OnceLock;

fn parser() -> &'static liquid::Parser {
    static PARSER: OnceLock<liquid::Parser> = OnceLock::new();
    PARSER.get_or_init(|| {
        liquid::ParserBuilder::with_stdlib()
            .filter(Json)
            .build()
            .expect("the standard library registers")
    })
}

/// `{{ monitorJSON | json }}`: the value as JSON (liquidjs has it; Kuma's
/// templates use it to embed objects).
#[derive(Clone, ParseFilter, FilterReflection)]
#[filter(name = "json", description = "The value as JSON.", parsed(JsonFilter))]
struct Json;

#[derive(Debug, Default, Display_filter)]
#[name = "json"]
struct JsonFilter;

impl Filter for JsonFilter {
    fn evaluate(
        &self,
        input: &dyn liquid_core::ValueView,
        _runtime: &dyn liquid_core::Runtime,
    ) -> liquid_core::Result<liquid_core::Value> {
        let text = serde_json::to_string(&input.to_value())
            .map_err(|e| liquid_core::Error::with_msg(e.to_string()))?;
        Ok(liquid_core::Value::scalar(text))
    }
}

/// Kuma's `heartbeatJSON` and `monitorJSON` for `e`.
pub fn kuma_json(e: &Event) -> (Value, Value) {
    let local = e.local();
    let heartbeat = json!({
        "monitorID": e.monitor_id,
        "status": e.status as i64,
        "time": crate::event::utc(e.time).format("%Y-%m-%d %H:%M:%S%.3f").to_string(),
        "msg": e.msg,
        "ping": e.ping,
        "important": true,
        "duration": 0,
        "timezone": e.tz.name(),
        "timezoneOffset": local.format("%:z").to_string(),
        "localDateTime": local.format("%Y-%m-%d %H:%M:%S").to_string(),
    });
    let mut monitor = e.monitor.clone();
    if let Some(o) = monitor.as_object_mut() {
        o.insert("id".into(), json!(e.monitor_id));
        o.insert("name".into(), json!(e.monitor_name));
        o.insert("type".into(), json!(e.monitor_type));
        o.entry("url").or_insert_with(|| json!(e.target));
    }
    (heartbeat, monitor)
}

/// What a template sees.
fn context(e: &Event) -> Value {
    let (heartbeat, monitor) = kuma_json(e);
    let status = match e.status {
        picket_shared::model::Status::Down => "🔴 Down",
        _ => "✅ Up",
    };
    let target = e.target.clone().unwrap_or_default();
    json!({
        "msg": e.kuma_msg(),
        "eventId": e.event_id,
        "link": e.link,
        "status": status, "STATUS": status,
        "name": e.monitor_name, "NAME": e.monitor_name,
        "hostnameOrURL": target, "HOSTNAME_OR_URL": target,
        "heartbeat": heartbeat, "heartbeatJSON": heartbeat,
        "monitor": monitor, "monitorJSON": monitor,
    })
}

/// Renders `template` for `e`; the error says what is wrong (a syntax
/// error, an unknown variable or filter).
pub fn render(template: &str, e: &Event) -> Result<String, String> {
    let tpl = parser().parse(template).map_err(|err| first_line(&err))?;
    let globals = liquid::model::to_object(&context(e)).map_err(|err| first_line(&err))?;
    tpl.render(&globals).map_err(|err| first_line(&err))
}

/// Checks a template before it is stored: it must parse and render for a
/// sample event (so a typo in a variable is refused now, not at 3 a.m.).
pub fn check(template: &str) -> Result<(), String> {
    render(template, &fixture_events::down()).map(drop)
}

/// Liquid's errors run over several lines (with a trace); the field error
/// carries them on one.
fn first_line(err: &dyn std::fmt::Display) -> String {
    err.to_string()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use fixture_events as fixture;

    #[test]
    fn kumas_variables_filters_and_conditionals() {
        let e = fixture::down();
        let t = "{% if heartbeatJSON.status == 0 %}DOWN{% else %}UP{% endif %} \
                 {{ monitorJSON.name | upcase }} {{ NAME }} {{ hostnameOrURL }} \
                 {{ msg | truncate: 12 }} [{{ monitorJSON.hostname }}]";
        assert_eq!(
            render(t, &e).unwrap(),
            "DOWN SHOP shop https://shop.test/ [shop] [🔴... []"
        );
        assert_eq!(
            render(
                "{{ STATUS }} {{heartbeatJSON.localDateTime}} {{heartbeatJSON.timezoneOffset}}",
                &e.clone().in_zone("Europe/Paris".parse().unwrap())
            )
            .unwrap(),
            "🔴 Down 2026-12-01 13:30:45 +01:00"
        );
        assert_eq!(
            serde_json::from_str::<Value>(&render("{{ monitorJSON | json }}", &e).unwrap())
                .unwrap()["name"],
            "shop",
            "objects embed as JSON"
        );
    }

    #[test]
    fn bad_templates_are_refused_with_the_reason() {
        let e = check("{{ monitorJSON.nmae }}").unwrap_err();
        assert!(e.contains("Unknown") || e.contains("nmae"), "{e}");
        let e = check("{% if msg %}never closed").unwrap_err();
        assert!(!e.is_empty() && !e.contains('\n'), "{e}");
        assert!(check("{{ msg }}").is_ok());
        assert!(check("{{ msg | nosuchfilter }}").is_err());
    }
}
