//! What a notification is about: the monitor, the beat that caused it and
//! what it announces. Built once per delivery, rendered by every provider.

use picket_shared::db::{MonitorRecord, OutboxRow};
use picket_shared::model::Status;
use picket_shared::notify::EventKind;
use serde_json::{Value, json};

pub use chrono_tz::Tz;

/// Events a digest's text names one per line; the rest are counted (chat
/// services refuse messages of many kilobytes). The webhook's `events`
/// array carries them all.
pub const DIGEST_LINES: usize = 50;

/// One event for one channel.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Carried by every request (`X-Picket-Event-Id`, `eventId`) so a
    /// receiver can drop the one repeat a crash mid-send can cause.
    pub event_id: String,
    pub kind: EventKind,
    pub monitor_id: i64,
    pub monitor_name: String,
    /// Kuma's type name (`http`, `port`, …).
    pub monitor_type: String,
    /// The URL, or `host:port`, or the host the monitor checks.
    pub target: Option<String>,
    pub status: Status,
    /// The check's message (`200 - OK`, `timeout`, …).
    pub msg: String,
    /// Epoch ms of the beat.
    pub time: i64,
    pub ping: Option<f64>,
    /// The node that ran the check.
    pub node: String,
    /// A link to the monitor's page, when `PICKET_PUBLIC_URL` is set.
    pub link: Option<String>,
    /// A digest's events (empty for a single event).
    pub digest: Vec<Event>,
    /// The time zone the channel reads times in (its `timezone` setting;
    /// UTC when it has none).
    pub tz: Tz,
    /// The monitor's settings under Uptime Kuma's names (Kuma's
    /// `monitorJSON`; an empty object for a digest or a test).
    pub monitor: Value,
}

impl Event {
    pub fn new(row: &OutboxRow, monitor: &MonitorRecord, public_url: Option<&str>) -> Event {
        let f = &monitor.fields;
        let target = monitor.target();
        Event {
            event_id: row.event_id.clone(),
            kind: row.kind,
            monitor_id: monitor.id.0,
            monitor_name: f.name.clone().unwrap_or_default(),
            monitor_type: f.kind.clone().unwrap_or_default(),
            target,
            status: row.status,
            msg: row.msg.clone(),
            time: row.beat_time,
            ping: row.ping,
            node: row.node_id.to_string(),
            link: public_url
                .map(|u| format!("{}/monitors/{}", u.trim_end_matches('/'), monitor.id)),
            digest: Vec::new(),
            tz: Tz::UTC,
            monitor: monitor_json(monitor),
        }
    }

    /// The event with its times read in `tz` (a digest's events too).
    pub fn in_zone(mut self, tz: Tz) -> Event {
        self.tz = tz;
        self.digest = self.digest.into_iter().map(|e| e.in_zone(tz)).collect();
        self
    }

    /// One message for many events, when a channel is past its rate:
    /// "17 monitors DOWN, 2 UP", then a line per event with its link.
    pub fn digest(events: Vec<Event>, public_url: Option<&str>) -> Event {
        let ups = events.iter().filter(|e| e.kind == EventKind::Up).count();
        let downs = events.len() - ups;
        let count = |n: usize, what: &str| match n {
            1 => format!("1 monitor {what}"),
            n => format!("{n} monitors {what}"),
        };
        let title = match (downs, ups) {
            (0, u) => count(u, "UP"),
            (d, 0) => count(d, "DOWN"),
            (d, u) => format!("{}, {u} UP", count(d, "DOWN")),
        };
        let mut lines: Vec<String> = events
            .iter()
            .take(DIGEST_LINES)
            .map(|e| {
                let mut line = format!("{} — {}: {}", e.monitor_name, e.status_word(), e.msg);
                if let Some(l) = &e.link {
                    line.push_str(&format!(" ({l})"));
                }
                line
            })
            .collect();
        if events.len() > DIGEST_LINES {
            lines.push(format!("… and {} more", events.len() - DIGEST_LINES));
        }
        let msg = lines.join("\n");
        let first = events.first();
        Event {
            event_id: format!("digest-{}", first.map_or("", |e| e.event_id.as_str())),
            kind: if downs > 0 {
                EventKind::Down
            } else {
                EventKind::Up
            },
            monitor_id: 0,
            monitor_name: title,
            monitor_type: "digest".into(),
            target: None,
            status: if downs > 0 { Status::Down } else { Status::Up },
            msg,
            time: events.iter().map(|e| e.time).max().unwrap_or(0),
            ping: None,
            node: "-".into(),
            link: public_url.map(str::to_owned),
            tz: first.map_or(Tz::UTC, |e| e.tz),
            digest: events,
            monitor: json!({}),
        }
    }

    /// `DOWN`, `UP` (a reminder says it is still DOWN).
    pub fn status_word(&self) -> &'static str {
        match self.kind {
            EventKind::Up => "UP",
            EventKind::Down => "DOWN",
            EventKind::Reminder => "still DOWN",
            EventKind::TlsExpiry => "expiring",
        }
    }

    /// Kuma's one-line message: `[name] [🔴 Down] msg` (a digest: its
    /// summary, then a line per event).
    pub fn kuma_msg(&self) -> String {
        if !self.digest.is_empty() {
            return format!("[Picket] {}\n{}", self.monitor_name, self.msg);
        }
        let badge = match self.kind {
            EventKind::Up => "✅ Up",
            EventKind::Down => "🔴 Down",
            EventKind::Reminder => "🔴 Still down",
            EventKind::TlsExpiry => "🔒 Certificate",
        };
        format!("[{}] [{badge}] {}", self.monitor_name, self.msg)
    }

    /// A short title: `name is DOWN` (a digest: its summary).
    pub fn title(&self) -> String {
        if !self.digest.is_empty() {
            return self.monitor_name.clone();
        }
        if self.kind == EventKind::TlsExpiry {
            return format!("{}: the TLS certificate is expiring", self.monitor_name);
        }
        format!("{} is {}", self.monitor_name, self.status_word())
    }

    /// The beat's time for people, in the channel's time zone:
    /// `2026-12-01 13:30:45 CET`.
    pub fn time_text(&self) -> String {
        self.local().format("%Y-%m-%d %H:%M:%S %Z").to_string()
    }

    /// The beat's time in the channel's time zone.
    pub fn local(&self) -> chrono::DateTime<Tz> {
        utc(self.time).with_timezone(&self.tz)
    }

    /// The beat's time for machines: RFC 3339 in UTC.
    pub fn utc_text(&self) -> String {
        rfc3339(self.time)
    }

    /// The body lines every text message carries: status and message, the
    /// target, the time and node, the link.
    pub fn lines(&self) -> Vec<String> {
        if !self.digest.is_empty() {
            let mut v = vec![self.monitor_name.clone(), self.msg.clone()];
            v.extend(self.link.clone());
            return v;
        }
        let mut v = vec![format!("{}: {}", self.title(), self.msg)];
        if let Some(t) = &self.target {
            v.push(format!("Target: {t}"));
        }
        v.push(format!(
            "Time: {} (checked by {})",
            self.time_text(),
            self.node
        ));
        if let Some(l) = &self.link {
            v.push(l.clone());
        }
        v
    }

    /// A test message, as `POST /api/v1/notifications/{id}/test` sends.
    pub fn test(now: i64, public_url: Option<&str>) -> Event {
        Event {
            event_id: format!("test-{now}"),
            kind: EventKind::Up,
            monitor_id: 0,
            monitor_name: "Picket test".into(),
            monitor_type: "http".into(),
            target: None,
            status: Status::Up,
            msg: "This is a test message from Picket.".into(),
            time: now,
            ping: None,
            node: "-".into(),
            link: public_url.map(str::to_owned),
            digest: Vec::new(),
            tz: Tz::UTC,
            monitor: json!({}),
        }
    }
}

/// Kuma's `monitorJSON`: the monitor's settings under Kuma's names, with
/// the fields Kuma has and Picket does not as `null` (so a template that
/// names them renders them empty, as in Kuma). Like Kuma's (which it builds
/// without "sensitive data"), it leaves out what may hold credentials: the
/// request's headers and body, and the push token.
pub fn monitor_json(m: &MonitorRecord) -> Value {
    let mut v = serde_json::to_value(&m.fields).unwrap_or_else(|_| json!({}));
    if let Some(o) = v.as_object_mut() {
        o.insert("id".into(), json!(m.id.0));
        o.insert("active".into(), json!(m.active()));
        for key in SENSITIVE {
            o.remove(*key);
        }
        for key in KUMA_ONLY {
            o.entry(*key).or_insert(Value::Null);
        }
    }
    v
}

/// Monitor settings a message never carries.
const SENSITIVE: &[&str] = &["headers", "body", "pushToken"];

/// Fields of Kuma's `monitorJSON` that Picket's monitor has no value for.
const KUMA_ONLY: &[&str] = &[
    "pathName",
    "parent",
    "childrenIDs",
    "weight",
    "forceInactive",
    "packetSize",
    "dns_last_result",
    "docker_container",
    "docker_host",
    "proxyId",
    "tags",
    "maintenance",
    "mqttTopic",
    "mqttSuccessMessage",
    "databaseQuery",
    "authMethod",
    "grpcUrl",
    "grpcServiceName",
    "game",
    "httpBodyEncoding",
    "kafkaProducerTopic",
    "screenshot",
];

/// Epoch ms as a UTC time (the epoch itself for one out of range).
pub fn utc(ms: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// Epoch ms as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn rfc3339(ms: i64) -> String {
    utc(ms).format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

#[doc(hidden)]
/// The events the providers' tests render (also used by this crate's
/// integration tests, and the sample a template is checked against when a
/// channel is saved).
pub mod fixture_events {
    use super::*;
    use picket_shared::model::Status;
    use picket_shared::notify::EventKind;

    pub fn down() -> Event {
        Event {
            event_id: "e1".into(),
            kind: EventKind::Down,
            monitor_id: 7,
            monitor_name: "shop".into(),
            monitor_type: "http".into(),
            target: Some("https://shop.test/".into()),
            status: Status::Down,
            msg: "500 - Internal Server Error".into(),
            time: 1_796_128_245_000,
            ping: None,
            node: "n1".into(),
            link: Some("https://picket.test/monitors/7".into()),
            digest: Vec::new(),
            tz: crate::event::Tz::UTC,
            monitor: serde_json::json!({"id": 7, "name": "shop", "type": "http",
                "url": "https://shop.test/", "hostname": null, "active": true}),
        }
    }

    pub fn up() -> Event {
        Event {
            kind: EventKind::Up,
            status: Status::Up,
            msg: "200 - OK".into(),
            ping: Some(12.0),
            ..down()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_digest_names_every_monitor() {
        use crate::event::fixture_events as fixture;
        let mut other = fixture::up();
        other.monitor_name = "api".into();
        let d = Event::digest(
            vec![fixture::down(), fixture::down(), other],
            Some("https://p.test"),
        );
        assert_eq!(d.title(), "2 monitors DOWN, 1 UP");
        let lines: Vec<&str> = d.msg.lines().collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(
            lines[0],
            "shop — DOWN: 500 - Internal Server Error (https://picket.test/monitors/7)"
        );
        assert_eq!(
            lines[2],
            "api — UP: 200 - OK (https://picket.test/monitors/7)"
        );
        assert_eq!(d.event_id, "digest-e1");
        let many = Event::digest((0..120).map(|_| fixture::down()).collect(), None);
        assert_eq!(many.title(), "120 monitors DOWN");
        assert_eq!(many.msg.lines().count(), DIGEST_LINES + 1);
        assert_eq!(many.msg.lines().last(), Some("… and 70 more"));
        assert_eq!(many.digest.len(), 120);
    }

    #[test]
    fn times_read_in_the_channels_zone() {
        use crate::event::fixture_events as fixture;
        // 2026-12-01 12:30:45 UTC.
        let e = fixture::down();
        assert_eq!(e.time_text(), "2026-12-01 12:30:45 UTC");
        let berlin = e.clone().in_zone("Europe/Berlin".parse().unwrap());
        assert_eq!(berlin.time_text(), "2026-12-01 13:30:45 CET");
        assert_eq!(berlin.utc_text(), "2026-12-01T12:30:45Z");
        // Summer time: New York is 4 hours behind in July.
        let mut july = e.in_zone("America/New_York".parse().unwrap());
        july.time = 1_783_081_800_000; // 2026-07-03 12:30:00 UTC
        assert_eq!(july.time_text(), "2026-07-03 08:30:00 EDT");
        let d = Event::digest(vec![fixture::down()], None).in_zone(Tz::Asia__Tokyo);
        assert_eq!(d.digest[0].time_text(), "2026-12-01 21:30:45 JST");
    }

    #[test]
    fn monitor_json_leaves_out_what_may_hold_credentials() {
        use picket_shared::monitor::MonitorFields;
        let m = MonitorRecord {
            id: picket_shared::MonitorId(7),
            fields: MonitorFields {
                name: Some("shop".into()),
                url: Some("https://shop.test/".into()),
                headers: Some(json!({"Authorization": "Bearer s3cret"})),
                body: Some("password=s3cret".into()),
                push_token: Some("s3cret-token".into()),
                ..Default::default()
            },
            default_node_id: "n1".into(),
            assign_node: None,
            rev: 1,
            created_at: 0,
            modified_at: 0,
        };
        let v = monitor_json(&m);
        assert_eq!(
            (&v["id"], &v["name"], &v["active"]),
            (&json!(7), &json!("shop"), &json!(true))
        );
        assert!(!v.to_string().contains("s3cret"), "{v}");
        assert!(
            v.as_object().unwrap().contains_key("pathName"),
            "Kuma's fields, as null"
        );
    }

    #[test]
    fn times_are_rfc3339_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_796_128_245_000), "2026-12-01T12:30:45Z");
    }
}
