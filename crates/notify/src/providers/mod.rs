//! Providers: one file each, Uptime Kuma's type names and setting names.
//! Each has a pure `render(event, config) -> Outgoing` and names its
//! required and secret settings; [`validate`] checks a channel's settings
//! before they are stored, and [`masked`] hides the secrets for display.

pub mod discord;
pub mod google_chat;
pub mod gotify;
pub mod matrix;
pub mod mattermost;
pub mod ntfy;
pub mod opsgenie;
pub mod pagerduty;
pub mod pushover;
pub mod rocket_chat;
pub mod slack;
pub mod smtp;
pub mod teams;
pub mod telegram;
pub mod webhook;

use crate::event::{Event, Tz};
use crate::send::{Mail, Outgoing, Request};
use picket_shared::monitor::FieldError;
use serde_json::{Map, Value};

/// What every provider declares about its settings.
pub struct Spec {
    /// Kuma's type name.
    pub kind: &'static str,
    /// Settings that must be present (non-empty strings).
    pub required: &'static [&'static str],
    /// Settings that are URLs (checked as http(s) URLs when present).
    pub urls: &'static [&'static str],
    /// Settings never shown in full (tokens, passwords, webhook URLs).
    pub secrets: &'static [&'static str],
    pub render: Render,
    /// Checks of the provider's own, beyond required settings and URLs.
    pub check: Option<Check>,
}

/// A provider's own check of its settings.
pub type Check = fn(&Map<String, Value>) -> Vec<FieldError>;

/// How a provider's message goes out.
pub enum Render {
    Http(fn(&Event, &Map<String, Value>) -> Outgoing),
    Mail(fn(&Event, &Map<String, Value>) -> Mail),
}

/// Every provider this build has.
pub const ALL: &[&Spec] = &[
    &webhook::SPEC,
    &slack::SPEC,
    &discord::SPEC,
    &telegram::SPEC,
    &teams::SPEC,
    &ntfy::SPEC,
    &gotify::SPEC,
    &pushover::SPEC,
    &mattermost::SPEC,
    &google_chat::SPEC,
    &pagerduty::SPEC,
    &smtp::SPEC,
    &matrix::SPEC,
    &rocket_chat::SPEC,
    &opsgenie::SPEC,
];

pub fn spec(kind: &str) -> Option<&'static Spec> {
    ALL.iter().copied().find(|s| s.kind == kind)
}

/// Renders `event` for a channel of provider `kind`.
pub fn render(kind: &str, config: &Value, event: &Event) -> Option<Request> {
    let s = spec(kind)?;
    let empty = Map::new();
    let cfg = config.as_object().unwrap_or(&empty);
    let zoned;
    let event = match zone(cfg) {
        Some(tz) if tz != event.tz => {
            zoned = event.clone().in_zone(tz);
            &zoned
        }
        _ => event,
    };
    Some(match s.render {
        Render::Http(f) => Request::Http(f(event, cfg)),
        Render::Mail(f) => Request::Mail(Box::new(f(event, cfg))),
    })
}

/// Checks a channel's provider and settings; every bad field is named
/// (`type`, or `config.<setting>`).
pub fn validate(kind: &str, config: &Value) -> Result<(), Vec<FieldError>> {
    let Some(s) = spec(kind) else {
        let known: Vec<&str> = ALL.iter().map(|s| s.kind).collect();
        return Err(vec![FieldError::new(
            "type",
            format!(
                "unknown provider '{kind}' (supported: {})",
                known.join(", ")
            ),
        )]);
    };
    let Some(cfg) = config.as_object() else {
        return Err(vec![FieldError::new("config", "must be a JSON object")]);
    };
    let mut errs = Vec::new();
    for key in s.required {
        if str_of(cfg, key).is_none() {
            errs.push(FieldError::new(format!("config.{key}"), "is required"));
        }
    }
    for key in s.urls {
        if let Some(u) = str_of(cfg, key) {
            match url::Url::parse(u) {
                Ok(p) if matches!(p.scheme(), "http" | "https") && p.host().is_some() => {}
                _ => errs.push(FieldError::new(
                    format!("config.{key}"),
                    "must be an http:// or https:// URL",
                )),
            }
        }
    }
    if cfg.get("timezone").is_some_and(|v| !v.is_null()) && zone(cfg).is_none() {
        errs.push(FieldError::new(
            "config.timezone",
            "must be an IANA time zone name, such as Europe/Berlin or UTC",
        ));
    }
    if let Some(check) = s.check {
        errs.extend(check(cfg));
    }
    if errs.is_empty() { Ok(()) } else { Err(errs) }
}

/// The channel's time zone (`timezone`, an IANA name), if it names one.
pub fn zone(cfg: &Map<String, Value>) -> Option<Tz> {
    str_of(cfg, "timezone")?.parse().ok()
}

/// Each of `keys` that is set must be a template that renders
/// ([`crate::template::check`]).
pub fn check_templates(cfg: &Map<String, Value>, keys: &[&str]) -> Vec<FieldError> {
    keys.iter()
        .filter_map(|key| {
            let t = str_of(cfg, key)?;
            let err = crate::template::check(t).err()?;
            Some(FieldError::new(format!("config.{key}"), err))
        })
        .collect()
}

/// What a masked secret starts with; a value sent back unchanged in this
/// form keeps the stored secret.
pub const MASK: &str = "********";

/// The settings with every secret hidden (its last four characters kept
/// when it is long enough to spare them).
pub fn masked(kind: &str, config: &Value) -> Value {
    let mut out = config.clone();
    if let (Some(s), Some(obj)) = (spec(kind), out.as_object_mut()) {
        for key in s.secrets {
            if let Some(Value::String(v)) = obj.get_mut(*key) {
                let n = v.chars().count();
                let tail: String = if n >= 16 {
                    v.chars().skip(n - 4).collect()
                } else {
                    String::new()
                };
                *v = format!("{MASK}{tail}");
            }
        }
    }
    out
}

/// `new` settings for an update, with every secret still in its masked form
/// taken from the stored `old` ones.
pub fn unmasked(kind: &str, new: &Value, old: &Value) -> Value {
    let mut out = new.clone();
    if let (Some(s), Some(obj)) = (spec(kind), out.as_object_mut()) {
        for key in s.secrets {
            let keep = matches!(obj.get(*key), Some(Value::String(v)) if v.starts_with(MASK));
            if keep && let Some(v) = old.get(*key) {
                obj.insert((*key).to_owned(), v.clone());
            }
        }
    }
    out
}

/// A non-empty string setting.
pub fn str_of<'a>(cfg: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    cfg.get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// A setting that may be a number or a numeric string (Kuma stores both).
pub fn int_of(cfg: &Map<String, Value>, key: &str) -> Option<i64> {
    match cfg.get(key)? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A boolean setting (`true`, or Kuma's `"true"`).
pub fn flag_of(cfg: &Map<String, Value>, key: &str) -> bool {
    match cfg.get(key) {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s == "true",
        _ => false,
    }
}

/// Settings from a JSON literal (tests).
#[cfg(test)]
pub fn cfg(v: Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap_or_default()
}

#[doc(hidden)]
pub use crate::event::fixture_events;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn bad_settings_are_named() {
        assert_eq!(
            validate("smoke-signal", &json!({})).unwrap_err()[0].field,
            "type"
        );
        let e = validate("slack", &json!({"slackwebhookURL": "not a url"})).unwrap_err();
        assert_eq!(e[0].field, "config.slackwebhookURL");
        let e = validate("telegram", &json!({})).unwrap_err();
        let fields: Vec<&str> = e.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(fields, ["config.telegramBotToken", "config.telegramChatID"]);
        assert!(validate("webhook", &json!({"webhookURL": "http://127.0.0.1:9/h"})).is_ok());
        let e = validate(
            "ntfy",
            &json!({"ntfyserverurl": "http://h.test", "ntfytopic": "t", "timezone": "Mars/Olympus"}),
        );
        assert_eq!(e.unwrap_err()[0].field, "config.timezone");
    }

    #[test]
    fn a_channel_reads_times_in_its_zone() {
        let cfg = json!({"webhookURL": "http://h.test/", "timezone": "Asia/Kolkata"});
        let Some(Request::Http(out)) = render("webhook", &cfg, &fixture_events::down()) else {
            panic!("webhook renders a request");
        };
        let b = out.json_body();
        assert_eq!(b["heartbeat"]["timezone"], "Asia/Kolkata");
        assert_eq!(b["heartbeat"]["timezoneOffset"], "+05:30");
        assert_eq!(b["heartbeat"]["localDateTime"], "2026-12-01 18:00:45");
        assert_eq!(b["heartbeat"]["time"], "2026-12-01 12:30:45.000");
    }

    #[test]
    fn secrets_are_masked_and_kept_on_update() {
        let stored = json!({"telegramBotToken": "123456:ABCDEFGHIJKLMNOP", "telegramChatID": "42"});
        let shown = masked("telegram", &stored);
        assert_eq!(shown["telegramBotToken"], "********MNOP");
        assert_eq!(shown["telegramChatID"], "42");
        // Sent back as shown: the stored secret stays; a new one replaces it.
        assert_eq!(unmasked("telegram", &shown, &stored), stored);
        let changed = json!({"telegramBotToken": "new", "telegramChatID": "42"});
        assert_eq!(
            unmasked("telegram", &changed, &stored)["telegramBotToken"],
            "new"
        );
    }
}
