//! Monitor configuration: the flat, Uptime-Kuma-named representation used by the
//! API and the DB (`MonitorFields`), and the typed, validated form the scheduler
//! runs (`MonitorSpec` / `MonitorKind`). Parsing happens once, here, and reports
//! every bad field by name; [`MonitorFields::validate`] gives the one canonical
//! form that is stored ([`ValidMonitor`]). Defaults and bounds are defined
//! once ([`defaults`], [`Limits`]) and used by the API, the DB layer and the
//! scheduler alike.
//!
//! One file per kind where kinds differ: each parses its own fields and
//! writes them back to the flat form.

mod dns;
mod http;
mod ping;
mod port;
mod push;
#[cfg(test)]
mod tests;

pub use dns::{DnsRecordType, DnsSpec};
pub use http::{BodyExpect, HttpSpec, JsonOp, StatusRange};
pub use ping::MAX_PING_COUNT;
pub use push::{check_push_token, new_push_token};

use crate::ids::NodeId;
use crate::notify::AlertRules;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;

/// Uptime Kuma's defaults for fields a request leaves out. The stored form
/// always carries a value, so nothing downstream re-derives these.
pub mod defaults {
    /// `interval`, seconds.
    pub const INTERVAL_SECS: i64 = 60;
    /// `timeout` is this share of the interval (48 s for 60 s).
    pub const TIMEOUT_SHARE: f64 = 0.8;
    /// `maxretries`.
    pub const MAX_RETRIES: i64 = 0;
    /// `maxredirects`.
    pub const MAX_REDIRECTS: i64 = 10;
    /// `method`.
    pub const METHOD: &str = "GET";
    /// `accepted_statuscodes`.
    pub const ACCEPTED_STATUS_CODES: &str = "200-299";
    /// `dns_resolve_server` (Kuma's default resolver).
    pub const DNS_SERVER: [u8; 4] = [1, 1, 1, 1];
    /// The DNS resolver's `port`.
    pub const DNS_PORT: u16 = 53;
    /// `packet_count` of a ping.
    pub const PING_COUNT: i64 = 1;
}

/// The longest text each field takes, in bytes (names in characters).
pub mod lengths {
    /// `name`, characters.
    pub const NAME: usize = 255;
    /// `description`.
    pub const DESCRIPTION: usize = 10 * 1024;
    /// `url`.
    pub const URL: usize = 2 * 1024;
    /// `keyword`, `expectedValue` and `jsonPath`.
    pub const MATCH: usize = 1024;
    /// `body` (a request body an HTTP monitor sends).
    pub const BODY: usize = 64 * 1024;
    /// All header names and values together.
    pub const HEADERS: usize = 8 * 1024;
    /// Headers a monitor may send.
    pub const HEADER_COUNT: usize = 50;
}

/// Shortest `timeout`, milliseconds (after rounding to whole milliseconds,
/// as it is stored).
pub const MIN_TIMEOUT_MS: u32 = 100;

/// Limits the API applies to new and changed monitors.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Smallest accepted `interval` / `retryInterval` in seconds.
    pub min_interval_secs: i64,
}

impl Limits {
    /// Largest accepted interval: one day, as Uptime Kuma.
    pub const MAX_INTERVAL_SECS: i64 = 24 * 3600;

    /// What rows already in the DB are held to: they were validated when written,
    /// and a later, stricter `min_interval` must not make a node drop them.
    pub const STORED: Limits = Limits {
        min_interval_secs: 1,
    };
}

/// One invalid input field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub field: String,
    pub msg: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, msg: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            msg: msg.into(),
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.msg)
    }
}

/// A monitor as the API shows and accepts it, and as the DB stores it: one flat
/// record with Uptime Kuma's field names. Every field is optional so the same type
/// serves create (defaults applied in [`MonitorFields::parse`]) and partial update
/// ([`MonitorFields::overlay`]). Unknown fields are ignored, as Kuma clients send many.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MonitorFields {
    pub name: Option<String>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub url: Option<String>,
    pub hostname: Option<String>,
    pub port: Option<i64>,
    pub method: Option<String>,
    /// A JSON object of header names to values (or a string holding one, as Kuma sends).
    pub headers: Option<Value>,
    pub body: Option<String>,
    pub interval: Option<i64>,
    #[serde(rename = "retryInterval", alias = "retry_interval")]
    pub retry_interval: Option<i64>,
    #[serde(alias = "maxRetries", alias = "max_retries")]
    pub maxretries: Option<i64>,
    /// Seconds (fractions allowed), as Uptime Kuma.
    pub timeout: Option<f64>,
    #[serde(alias = "acceptedStatuscodes", alias = "accepted_status_codes")]
    pub accepted_statuscodes: Option<Vec<String>>,
    #[serde(alias = "max_redirects")]
    pub maxredirects: Option<i64>,
    #[serde(rename = "ignoreTls", alias = "ignore_tls")]
    pub ignore_tls: Option<bool>,
    pub keyword: Option<String>,
    #[serde(rename = "invertKeyword", alias = "invert_keyword")]
    pub invert_keyword: Option<bool>,
    #[serde(rename = "jsonPath", alias = "json_path")]
    pub json_path: Option<String>,
    #[serde(rename = "jsonPathOperator", alias = "json_path_operator")]
    pub json_path_operator: Option<String>,
    #[serde(rename = "expectedValue", alias = "expected_value")]
    pub expected_value: Option<String>,
    #[serde(alias = "dnsResolveServer")]
    pub dns_resolve_server: Option<String>,
    #[serde(alias = "dnsResolveType")]
    pub dns_resolve_type: Option<String>,
    #[serde(alias = "packet_count", alias = "ping_count")]
    pub packet_count: Option<i64>,
    #[serde(rename = "pushToken", alias = "push_token")]
    pub push_token: Option<String>,
    /// Days before certificate expiry below which the monitor is DOWN (0 =
    /// off). Uptime Kuma sends a boolean here: `true` means
    /// [`EXPIRY_NOTIFICATION_DEFAULT_DAYS`], `false` 0.
    #[serde(
        rename = "expiryNotification",
        alias = "expiry_notification",
        deserialize_with = "days_or_bool"
    )]
    pub expiry_notification: Option<i64>,
    pub active: Option<bool>,
    pub description: Option<String>,
    /// A reminder every this many further DOWN beats while DOWN; 0 = never.
    #[serde(rename = "resendInterval", alias = "resend_interval")]
    pub resend_interval: Option<i64>,
    /// A reminder every this many minutes while DOWN; 0 = off.
    #[serde(rename = "resendMinutes", alias = "resend_minutes")]
    pub resend_minutes: Option<i64>,
    /// UP beats in a row that end an outage (default 1).
    #[serde(rename = "upThreshold", alias = "up_threshold")]
    pub up_threshold: Option<i64>,
    /// The channels to notify: Kuma's `{"3": true}` or a list of ids. Input
    /// only; the read model shows the links.
    #[serde(
        rename = "notificationIDList",
        alias = "notification_id_list",
        skip_serializing
    )]
    pub notification_id_list: Option<Value>,
    /// The tags to put on it: `[{"tag_id": 1, "value": "eu"}]` or by
    /// `name` (Kuma's shape). Input only; the read model shows the tags.
    #[serde(skip_serializing)]
    pub tags: Option<Value>,
    /// The monitor's home node (`default_node_id`).
    #[serde(alias = "nodeId")]
    pub node_id: Option<String>,
}

/// What `expiryNotification: true` (Uptime Kuma's boolean form) means, in days.
pub const EXPIRY_NOTIFICATION_DEFAULT_DAYS: i64 = 14;

/// Accepts a number of days, a boolean (Kuma's form) or null.
fn days_or_bool<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum DaysOrBool {
        Days(i64),
        Flag(bool),
    }
    Ok(
        match Option::<DaysOrBool>::deserialize(d)
            .map_err(|_| serde::de::Error::custom("must be a number of days or a boolean"))?
        {
            None => None,
            Some(DaysOrBool::Days(n)) => Some(n),
            Some(DaysOrBool::Flag(true)) => Some(EXPIRY_NOTIFICATION_DEFAULT_DAYS),
            Some(DaysOrBool::Flag(false)) => Some(0),
        },
    )
}

/// The monitor types this build can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MonitorType {
    Http,
    Keyword,
    JsonQuery,
    Port,
    Ping,
    Dns,
    Push,
}

impl MonitorType {
    pub const ALL: &'static [MonitorType] = &[
        MonitorType::Http,
        MonitorType::Keyword,
        MonitorType::JsonQuery,
        MonitorType::Port,
        MonitorType::Ping,
        MonitorType::Dns,
        MonitorType::Push,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MonitorType::Http => "http",
            MonitorType::Keyword => "keyword",
            MonitorType::JsonQuery => "json-query",
            MonitorType::Port => "port",
            MonitorType::Ping => "ping",
            MonitorType::Dns => "dns",
            MonitorType::Push => "push",
        }
    }

    /// Uptime Kuma's type names, plus `tcp` as an alias of `port`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "tcp" => Some(MonitorType::Port),
            _ => Self::ALL.iter().copied().find(|t| t.as_str() == s),
        }
    }
}

/// The typed check a monitor performs. Each variant has its own file here
/// (parsing and the flat form) and its check in the node crate.
#[derive(Debug, Clone, PartialEq)]
pub enum MonitorKind {
    /// `http`, `keyword` and `json-query` (they differ in [`HttpSpec::expect`]).
    Http(HttpSpec),
    Port {
        hostname: String,
        port: u16,
    },
    Dns(DnsSpec),
    /// ICMP echo: `count` packets, UP when any is answered.
    Ping {
        hostname: String,
        count: u32,
    },
    /// Passive: results arrive on `/api/push/{token}`; the owner only notices
    /// when they stop.
    Push,
}

impl MonitorKind {
    pub fn monitor_type(&self) -> MonitorType {
        match self {
            MonitorKind::Http(h) => match h.expect {
                BodyExpect::None => MonitorType::Http,
                BodyExpect::Keyword { .. } => MonitorType::Keyword,
                BodyExpect::Json { .. } => MonitorType::JsonQuery,
            },
            MonitorKind::Port { .. } => MonitorType::Port,
            MonitorKind::Dns(_) => MonitorType::Dns,
            MonitorKind::Ping { .. } => MonitorType::Ping,
            MonitorKind::Push => MonitorType::Push,
        }
    }
}

/// A validated monitor configuration: what a node needs to run it.
#[derive(Debug, Clone, PartialEq)]
pub struct MonitorSpec {
    pub name: String,
    pub kind: MonitorKind,
    pub interval_secs: u32,
    pub retry_interval_secs: u32,
    pub max_retries: u32,
    pub timeout_ms: u32,
    pub active: bool,
    pub description: Option<String>,
    /// When its beats notify (`upThreshold`, `resendInterval`, `resendMinutes`).
    pub alerts: AlertRules,
}

/// A monitor that passed validation, in the one form that is stored: the
/// typed spec plus where it lives and its push token.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidMonitor {
    pub spec: MonitorSpec,
    /// The home the request asked for; `None` lets placement choose.
    pub node_id: Option<NodeId>,
    /// Given by the request, or generated for a new push monitor.
    pub push_token: Option<String>,
    /// The channels to link (`notificationIDList`); `None` when the request
    /// did not say (a new monitor then gets the default channels).
    pub notifications: Option<Vec<i64>>,
    /// The tags to put on it, replacing its tags; `None` keeps them.
    pub tags: Option<Vec<TagRef>>,
}

/// A tag to put on a monitor: by id or by name, with a value ("" for none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagRef {
    pub id: Option<i64>,
    pub name: Option<String>,
    pub value: String,
}

/// Longest tag value.
pub const TAG_VALUE_MAX: usize = 255;

fn parse_tags(v: &Value) -> Result<Vec<TagRef>, String> {
    let bad = || {
        "must be a list like [{\"tag_id\": 1, \"value\": \"eu\"}] or [{\"name\": \"team\"}]"
            .to_owned()
    };
    let Value::Array(items) = v else {
        return Err(bad());
    };
    let mut out: Vec<TagRef> = Vec::new();
    for item in items {
        let Value::Object(m) = item else {
            return Err(bad());
        };
        let id = match m.get("tag_id").or_else(|| m.get("id")) {
            None | Some(Value::Null) => None,
            Some(x) => Some(x.as_i64().filter(|i| *i > 0).ok_or_else(bad)?),
        };
        let name = match m.get("name") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if !s.trim().is_empty() => Some(s.trim().to_owned()),
            Some(_) => return Err(bad()),
        };
        if id.is_none() && name.is_none() {
            return Err(bad());
        }
        let value = match m.get("value") {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(s)) => s.trim().to_owned(),
            Some(Value::Number(n)) => n.to_string(),
            Some(_) => return Err("a tag's value must be text".into()),
        };
        if value.chars().count() > TAG_VALUE_MAX || value.chars().any(char::is_control) {
            return Err(format!(
                "a tag's value must be at most {TAG_VALUE_MAX} characters, without control characters"
            ));
        }
        let t = TagRef { id, name, value };
        if !out.contains(&t) {
            out.push(t);
        }
    }
    Ok(out)
}

impl ValidMonitor {
    /// The canonical flat form, as stored and shown.
    pub fn fields(&self) -> MonitorFields {
        let mut f = self.spec.to_fields();
        f.node_id = self.node_id.as_ref().map(|n| n.as_str().to_owned());
        f.push_token = self.push_token.clone();
        f
    }
}

/// Collects field errors while parsing, so one response names every bad field.
#[derive(Default)]
pub(crate) struct Errors(Vec<FieldError>);

impl Errors {
    fn push(&mut self, field: &str, msg: impl Into<String>) {
        self.0.push(FieldError::new(field, msg));
    }
    /// Notes `field` when `v` is longer than `max` bytes.
    fn at_most(&mut self, field: &str, v: Option<&str>, max: usize) {
        if v.is_some_and(|v| v.len() > max) {
            self.push(field, format!("must be at most {max} bytes"));
        }
    }
    fn required<'a, T>(&mut self, field: &str, v: &'a Option<T>, why: &str) -> Option<&'a T> {
        if v.is_none() {
            self.push(field, format!("is required {why}"));
        }
        v.as_ref()
    }
}

impl MonitorFields {
    /// Parses a JSON request body, naming the field when a value has the wrong type.
    pub fn from_json(v: Value) -> Result<Self, FieldError> {
        if !v.is_object() {
            return Err(FieldError::new("body", "must be a JSON object"));
        }
        serde_path_to_error::deserialize(v).map_err(|e| {
            let path = e.path().to_string();
            let field = if path == "." { "body".into() } else { path };
            FieldError::new(field, e.into_inner().to_string())
        })
    }

    /// Copies every field `other` sets over `self` (a partial update).
    pub fn overlay(&mut self, other: MonitorFields) {
        let other_token = other.push_token.clone();
        macro_rules! take {
            ($($f:ident),*) => { $( if other.$f.is_some() { self.$f = other.$f; } )* };
        }
        take!(
            name,
            kind,
            url,
            hostname,
            port,
            method,
            headers,
            body,
            interval,
            retry_interval,
            maxretries,
            timeout,
            accepted_statuscodes,
            maxredirects,
            ignore_tls,
            keyword,
            invert_keyword,
            json_path,
            json_path_operator,
            expected_value,
            dns_resolve_server,
            dns_resolve_type,
            packet_count,
            push_token,
            expiry_notification,
            active,
            description,
            resend_interval,
            resend_minutes,
            up_threshold,
            notification_id_list,
            tags,
            node_id
        );
        // A push monitor changed to another kind leaves its token behind,
        // unless the update gives one (which validation then refuses).
        if other_token.is_none()
            && self.kind.as_deref().and_then(MonitorType::parse) != Some(MonitorType::Push)
        {
            self.push_token = None;
        }
    }

    /// Validates the fields into the one stored form: the parsed spec, the
    /// requested home, and the push token (a push monitor without one gets a
    /// fresh one).
    pub fn validate(&self, limits: &Limits) -> Result<ValidMonitor, Vec<FieldError>> {
        let spec = self.parse(limits)?;
        let push_token = match (&spec.kind, &self.push_token) {
            (MonitorKind::Push, None) => Some(new_push_token()),
            (_, t) => t.clone(),
        };
        let notifications = match &self.notification_id_list {
            None | Some(Value::Null) => None,
            Some(v) => Some(
                parse_channel_ids(v)
                    .map_err(|msg| vec![FieldError::new("notificationIDList", msg)])?,
            ),
        };
        let tags = match &self.tags {
            None | Some(Value::Null) => None,
            Some(v) => Some(parse_tags(v).map_err(|msg| vec![FieldError::new("tags", msg)])?),
        };
        Ok(ValidMonitor {
            spec,
            node_id: self.node_id.clone().map(NodeId),
            push_token,
            notifications,
            tags,
        })
    }

    /// Validates the fields and applies Uptime Kuma's defaults. On error, returns
    /// every invalid field (not just the first).
    pub fn parse(&self, limits: &Limits) -> Result<MonitorSpec, Vec<FieldError>> {
        let mut errs = Errors::default();

        let name = match self.name.as_deref().map(str::trim) {
            None | Some("") => {
                errs.push("name", "is required");
                String::new()
            }
            Some(n) if n.chars().count() > lengths::NAME => {
                errs.push(
                    "name",
                    format!("must be at most {} characters", lengths::NAME),
                );
                String::new()
            }
            Some(n) if n.chars().any(char::is_control) => {
                errs.push("name", "must not contain control characters");
                String::new()
            }
            Some(n) => n.to_owned(),
        };

        let kind_name = self.kind.as_deref().unwrap_or("");
        let ty = match MonitorType::parse(kind_name) {
            Some(t) => Some(t),
            None if kind_name.is_empty() => {
                errs.push("type", "is required");
                None
            }
            None => {
                let known: Vec<_> = MonitorType::ALL.iter().map(|t| t.as_str()).collect();
                errs.push(
                    "type",
                    format!(
                        "unknown type '{kind_name}' (supported: {}, tcp)",
                        known.join(", ")
                    ),
                );
                None
            }
        };

        let interval = self.interval.unwrap_or(defaults::INTERVAL_SECS);
        let interval_ok = check_interval(&mut errs, "interval", interval, limits);
        let retry_interval = self.retry_interval.unwrap_or(interval);
        if self.retry_interval.is_some() {
            check_interval(&mut errs, "retryInterval", retry_interval, limits);
        }

        let max_retries = self.maxretries.unwrap_or(defaults::MAX_RETRIES);
        if !(0..=1000).contains(&max_retries) {
            errs.push("maxretries", "must be between 0 and 1000");
        }

        // Kuma's default timeout is 80 % of the interval (48 s for 60 s).
        let timeout_secs = self
            .timeout
            .unwrap_or(interval as f64 * defaults::TIMEOUT_SHARE);
        if self.timeout.is_none() && !interval_ok {
            // The default follows the interval, which is already reported.
        } else if !timeout_secs.is_finite()
            || ((timeout_secs * 1000.0).round() as u32) < MIN_TIMEOUT_MS
        {
            // Checked as stored (whole milliseconds), so what passes here
            // is what the node runs.
            errs.push(
                "timeout",
                format!(
                    "must be at least {} seconds",
                    f64::from(MIN_TIMEOUT_MS) / 1000.0
                ),
            );
        } else if interval_ok && (timeout_secs * 1000.0).round() >= interval as f64 * 1000.0 {
            errs.push(
                "timeout",
                format!("must be less than the interval ({interval} s)"),
            );
        }
        errs.at_most(
            "description",
            self.description.as_deref(),
            lengths::DESCRIPTION,
        );
        if ty.is_some_and(|t| t != MonitorType::Push) && self.push_token.is_some() {
            errs.push("pushToken", "only a push monitor takes a push token");
        }

        let bounded = |errs: &mut Errors, field: &str, v: Option<i64>, d: i64, lo: i64, hi: i64| {
            let v = v.unwrap_or(d);
            if !(lo..=hi).contains(&v) {
                errs.push(field, format!("must be between {lo} and {hi}"));
            }
            v.clamp(lo, hi) as u32
        };
        let alerts = AlertRules {
            up_threshold: bounded(&mut errs, "upThreshold", self.up_threshold, 1, 1, 100),
            resend_interval: bounded(
                &mut errs,
                "resendInterval",
                self.resend_interval,
                0,
                0,
                10_000,
            ),
            resend_minutes: bounded(
                &mut errs,
                "resendMinutes",
                self.resend_minutes,
                0,
                0,
                7 * 24 * 60,
            ),
        };

        let kind = ty.and_then(|ty| match ty {
            MonitorType::Http | MonitorType::Keyword | MonitorType::JsonQuery => {
                http::parse(self, ty, &mut errs).map(MonitorKind::Http)
            }
            MonitorType::Dns => dns::parse(self, &mut errs).map(MonitorKind::Dns),
            MonitorType::Ping => ping::parse(self, &mut errs),
            MonitorType::Push => push::parse(self, &mut errs),
            MonitorType::Port => port::parse(self, &mut errs),
        });

        if !errs.0.is_empty() {
            return Err(errs.0);
        }
        Ok(MonitorSpec {
            name,
            kind: kind.expect("no errors means the kind parsed"),
            interval_secs: interval as u32,
            retry_interval_secs: retry_interval as u32,
            max_retries: max_retries as u32,
            timeout_ms: (timeout_secs * 1000.0).round() as u32,
            active: self.active.unwrap_or(true),
            description: self.description.clone(),
            alerts,
        })
    }
}

/// Kuma's `notificationIDList`: `{"3": true, "4": false}` (the ids set to
/// true), or a list of ids.
fn parse_channel_ids(v: &Value) -> Result<Vec<i64>, String> {
    let bad = || "must be a list of notification ids or an object like {\"3\": true}".to_owned();
    let mut ids: Vec<i64> = match v {
        Value::Array(a) => a
            .iter()
            .map(|x| x.as_i64().filter(|i| *i > 0).ok_or_else(bad))
            .collect::<Result<_, _>>()?,
        Value::Object(m) => {
            let mut ids = Vec::new();
            for (k, on) in m {
                let id: i64 = k.parse().ok().filter(|i| *i > 0).ok_or_else(bad)?;
                match on {
                    Value::Bool(true) => ids.push(id),
                    Value::Bool(false) | Value::Null => {}
                    _ => return Err(bad()),
                }
            }
            ids
        }
        _ => return Err(bad()),
    };
    ids.sort_unstable();
    ids.dedup();
    Ok(ids)
}

/// A trimmed `hostname`, required for `what`: a host name (RFC 1123; with
/// `underscores`, `_` too, as DNS names have) or an IP literal.
fn required_host(
    f: &MonitorFields,
    errs: &mut Errors,
    what: &str,
    underscores: bool,
) -> Option<String> {
    let hostname = errs
        .required("hostname", &f.hostname, &format!("for {what}"))
        .map(|h| h.trim().to_owned())?;
    match crate::addr::check_hostname(&hostname, underscores) {
        Ok(()) => Some(hostname),
        Err(msg) => {
            errs.push("hostname", msg);
            None
        }
    }
}

fn check_interval(errs: &mut Errors, field: &str, v: i64, limits: &Limits) -> bool {
    if v < limits.min_interval_secs {
        errs.push(
            field,
            format!("must be at least {} seconds", limits.min_interval_secs),
        );
        false
    } else if v > Limits::MAX_INTERVAL_SECS {
        errs.push(
            field,
            format!("must be at most {} seconds", Limits::MAX_INTERVAL_SECS),
        );
        false
    } else {
        true
    }
}

impl MonitorSpec {
    /// The fields whose literal address the egress policy denies: a check
    /// could never reach it, so it is refused when saved (names are checked
    /// by the node after DNS, on every check).
    pub fn denied_targets(&self, policy: &crate::egress::EgressPolicy) -> Vec<FieldError> {
        let (field, host) = match &self.kind {
            MonitorKind::Http(h) => ("url", h.url.host_str().unwrap_or_default().to_owned()),
            MonitorKind::Port { hostname, .. } | MonitorKind::Ping { hostname, .. } => {
                ("hostname", hostname.clone())
            }
            MonitorKind::Dns(d) => ("dns_resolve_server", d.server.to_string()),
            MonitorKind::Push => return Vec::new(),
        };
        match policy.check_literal(&host) {
            Ok(()) => Vec::new(),
            Err(msg) => vec![FieldError::new(field, msg)],
        }
    }

    /// The flat form of this spec, for storing and showing. Identity and
    /// ownership fields (`node_id`, `pushToken`) are left to the caller.
    pub fn to_fields(&self) -> MonitorFields {
        let mut f = MonitorFields {
            name: Some(self.name.clone()),
            kind: Some(self.kind.monitor_type().as_str().to_owned()),
            interval: Some(self.interval_secs.into()),
            retry_interval: Some(self.retry_interval_secs.into()),
            maxretries: Some(self.max_retries.into()),
            timeout: Some(f64::from(self.timeout_ms) / 1000.0),
            active: Some(self.active),
            description: self.description.clone(),
            resend_interval: Some(self.alerts.resend_interval.into()),
            resend_minutes: Some(self.alerts.resend_minutes.into()),
            up_threshold: Some(self.alerts.up_threshold.into()),
            ..Default::default()
        };
        match &self.kind {
            MonitorKind::Http(h) => http::write(h, &mut f),
            MonitorKind::Port { hostname, port } => port::write(hostname, *port, &mut f),
            MonitorKind::Dns(d) => dns::write(d, &mut f),
            MonitorKind::Ping { hostname, count } => ping::write(hostname, *count, &mut f),
            MonitorKind::Push => {}
        }
        f
    }
}
