//! Monitor configuration: the flat, Uptime-Kuma-named representation used by the
//! API and the DB (`MonitorFields`), and the typed, validated form the scheduler
//! runs (`MonitorSpec` / `MonitorKind`). Parsing happens once, here, and reports
//! every bad field by name.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;

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

/// How a `json-query` monitor compares the selected value with `expectedValue`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Contains,
}

impl JsonOp {
    pub const ALL: &'static [JsonOp] = &[
        JsonOp::Eq,
        JsonOp::Ne,
        JsonOp::Lt,
        JsonOp::Le,
        JsonOp::Gt,
        JsonOp::Ge,
        JsonOp::Contains,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            JsonOp::Eq => "==",
            JsonOp::Ne => "!=",
            JsonOp::Lt => "<",
            JsonOp::Le => "<=",
            JsonOp::Gt => ">",
            JsonOp::Ge => ">=",
            JsonOp::Contains => "contains",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|o| o.as_str() == s.trim())
    }
}

/// What an HTTP-based monitor requires of the response body, beyond the status.
#[derive(Debug, Clone, PartialEq)]
pub enum BodyExpect {
    /// `http`: the status code alone decides.
    None,
    /// `keyword`: the body contains `keyword` (case-sensitive), or with
    /// `invert` does not.
    Keyword { keyword: String, invert: bool },
    /// `json-query`: the RFC 9535 JSONPath `path` (already validated) selects a
    /// value that compares to `expected` with `op`.
    Json {
        path: String,
        op: JsonOp,
        expected: String,
    },
}

/// DNS record types a `dns` monitor may query.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DnsRecordType {
    A,
    Aaaa,
    Cname,
    Mx,
    Ns,
    Txt,
    Srv,
    Caa,
    Ptr,
}

impl DnsRecordType {
    pub const ALL: &'static [DnsRecordType] = &[
        DnsRecordType::A,
        DnsRecordType::Aaaa,
        DnsRecordType::Cname,
        DnsRecordType::Mx,
        DnsRecordType::Ns,
        DnsRecordType::Txt,
        DnsRecordType::Srv,
        DnsRecordType::Caa,
        DnsRecordType::Ptr,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DnsRecordType::A => "A",
            DnsRecordType::Aaaa => "AAAA",
            DnsRecordType::Cname => "CNAME",
            DnsRecordType::Mx => "MX",
            DnsRecordType::Ns => "NS",
            DnsRecordType::Txt => "TXT",
            DnsRecordType::Srv => "SRV",
            DnsRecordType::Caa => "CAA",
            DnsRecordType::Ptr => "PTR",
        }
    }

    /// Case-insensitive, as Kuma clients send either.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL
            .iter()
            .copied()
            .find(|t| t.as_str().eq_ignore_ascii_case(s.trim()))
    }
}

/// What a `dns` monitor asks and of whom.
#[derive(Debug, Clone, PartialEq)]
pub struct DnsSpec {
    /// The name to resolve.
    pub hostname: String,
    /// The resolver asked (`dns_resolve_server`, Kuma's default 1.1.1.1).
    pub server: std::net::IpAddr,
    /// The resolver's port (`port`, default 53).
    pub port: u16,
    pub record_type: DnsRecordType,
    /// When set, UP also requires an answer equal to this (case-insensitive,
    /// trailing dot ignored).
    pub expected: Option<String>,
}

/// HTTP methods a monitor may use.
const METHODS: &[&str] = &["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];

/// An inclusive range of accepted HTTP status codes (`"200-299"` or `"204"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusRange {
    pub lo: u16,
    pub hi: u16,
}

impl StatusRange {
    /// Parses one Kuma status-code entry: `"200"` or `"200-299"`, codes 100..=599.
    pub fn parse(s: &str) -> Result<Self, String> {
        let code = |t: &str| -> Result<u16, String> {
            let n: u16 = t
                .trim()
                .parse()
                .map_err(|_| format!("'{s}' is not a status code or range like 200-299"))?;
            if (100..=599).contains(&n) {
                Ok(n)
            } else {
                Err(format!("status code {n} is outside 100-599"))
            }
        };
        let (lo, hi) = match s.split_once('-') {
            Some((a, b)) => (code(a)?, code(b)?),
            None => {
                let c = code(s)?;
                (c, c)
            }
        };
        if lo > hi {
            return Err(format!("range '{s}' runs backwards"));
        }
        Ok(StatusRange { lo, hi })
    }

    pub fn contains(&self, code: u16) -> bool {
        (self.lo..=self.hi).contains(&code)
    }
}

impl fmt::Display for StatusRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.lo == self.hi {
            write!(f, "{}", self.lo)
        } else {
            write!(f, "{}-{}", self.lo, self.hi)
        }
    }
}

/// What an HTTP monitor requests and which statuses it accepts.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpSpec {
    pub url: url::Url,
    pub method: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<String>,
    pub accepted: Vec<StatusRange>,
    pub max_redirects: u32,
    pub ignore_tls: bool,
    /// What the body must satisfy (`keyword`, `json-query`).
    pub expect: BodyExpect,
    /// `expiryNotification`: for https, DOWN when the certificate expires in
    /// fewer than this many days (0 = off).
    pub expiry_days: u32,
}

impl HttpSpec {
    pub fn accepts(&self, code: u16) -> bool {
        self.accepted.iter().any(|r| r.contains(code))
    }
}

/// The typed check a monitor performs. Each variant's check lives in its own file
/// in the node crate.
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

/// Largest `packet_count` a ping monitor may send per check.
pub const MAX_PING_COUNT: i64 = 100;

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
}

/// Collects field errors while parsing, so one response names every bad field.
#[derive(Default)]
struct Errors(Vec<FieldError>);

impl Errors {
    fn push(&mut self, field: &str, msg: impl Into<String>) {
        self.0.push(FieldError::new(field, msg));
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
            node_id
        );
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
            Some(n) if n.chars().count() > 255 => {
                errs.push("name", "must be at most 255 characters");
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

        let interval = self.interval.unwrap_or(60);
        let interval_ok = check_interval(&mut errs, "interval", interval, limits);
        let retry_interval = self.retry_interval.unwrap_or(interval);
        if self.retry_interval.is_some() {
            check_interval(&mut errs, "retryInterval", retry_interval, limits);
        }

        let max_retries = self.maxretries.unwrap_or(0);
        if !(0..=1000).contains(&max_retries) {
            errs.push("maxretries", "must be between 0 and 1000");
        }

        // Kuma's default timeout is 80 % of the interval (48 s for 60 s).
        let timeout_secs = self.timeout.unwrap_or(interval as f64 * 0.8);
        if self.timeout.is_none() && !interval_ok {
            // The default follows the interval, which is already reported.
        } else if !timeout_secs.is_finite() || timeout_secs <= 0.0 {
            errs.push("timeout", "must be a positive number of seconds");
        } else if interval_ok && timeout_secs >= interval as f64 {
            errs.push(
                "timeout",
                format!("must be less than the interval ({interval} s)"),
            );
        }

        let kind = ty.and_then(|ty| match ty {
            MonitorType::Http | MonitorType::Keyword | MonitorType::JsonQuery => {
                self.parse_http(ty, &mut errs).map(MonitorKind::Http)
            }
            MonitorType::Dns => self.parse_dns(&mut errs).map(MonitorKind::Dns),
            MonitorType::Ping => {
                let hostname = self.required_host(&mut errs, "a ping monitor");
                let count = self.packet_count.unwrap_or(1);
                if !(1..=MAX_PING_COUNT).contains(&count) {
                    errs.push(
                        "packet_count",
                        format!("must be between 1 and {MAX_PING_COUNT}"),
                    );
                }
                Some(MonitorKind::Ping {
                    hostname: hostname?,
                    count: count.clamp(1, MAX_PING_COUNT) as u32,
                })
            }
            MonitorType::Push => {
                if let Some(Err(msg)) = self.push_token.as_deref().map(check_push_token) {
                    errs.push("pushToken", msg);
                }
                Some(MonitorKind::Push)
            }
            MonitorType::Port => {
                let hostname = errs
                    .required("hostname", &self.hostname, "for a port monitor")
                    .map(|h| h.trim().to_owned());
                if hostname.as_deref() == Some("") {
                    errs.push("hostname", "must not be empty");
                }
                let port = errs
                    .required("port", &self.port, "for a port monitor")
                    .and_then(|&p| match u16::try_from(p) {
                        Ok(p) if p > 0 => Some(p),
                        _ => {
                            errs.push("port", "must be between 1 and 65535");
                            None
                        }
                    });
                Some(MonitorKind::Port {
                    hostname: hostname?,
                    port: port?,
                })
            }
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
        })
    }

    fn required_host(&self, errs: &mut Errors, what: &str) -> Option<String> {
        let hostname = errs
            .required("hostname", &self.hostname, &format!("for {what}"))
            .map(|h| h.trim().to_owned());
        match hostname {
            Some(h) if h.is_empty() => {
                errs.push("hostname", "must not be empty");
                None
            }
            other => other,
        }
    }

    fn parse_dns(&self, errs: &mut Errors) -> Option<DnsSpec> {
        let hostname = self.required_host(errs, "a dns monitor");
        let record_type = match self.dns_resolve_type.as_deref() {
            None => Some(DnsRecordType::A),
            Some(t) => DnsRecordType::parse(t).or_else(|| {
                let known: Vec<_> = DnsRecordType::ALL.iter().map(|t| t.as_str()).collect();
                errs.push(
                    "dns_resolve_type",
                    format!(
                        "unknown record type '{t}' (supported: {})",
                        known.join(", ")
                    ),
                );
                None
            }),
        };
        let server = match self.dns_resolve_server.as_deref().map(str::trim) {
            None | Some("") => Some(std::net::IpAddr::from([1, 1, 1, 1])),
            Some(s) => s.parse().ok().or_else(|| {
                errs.push("dns_resolve_server", format!("'{s}' is not an IP address"));
                None
            }),
        };
        let port = match self.port {
            None => Some(53),
            Some(p) => match u16::try_from(p) {
                Ok(p) if p > 0 => Some(p),
                _ => {
                    errs.push("port", "must be between 1 and 65535");
                    None
                }
            },
        };
        Some(DnsSpec {
            hostname: hostname?,
            server: server?,
            port: port?,
            record_type: record_type?,
            expected: self
                .expected_value
                .as_deref()
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_owned),
        })
    }

    fn parse_expect(&self, ty: MonitorType, errs: &mut Errors) -> Option<BodyExpect> {
        match ty {
            MonitorType::Keyword => {
                let keyword = errs.required("keyword", &self.keyword, "for a keyword monitor")?;
                if keyword.is_empty() {
                    errs.push("keyword", "must not be empty");
                    return None;
                }
                Some(BodyExpect::Keyword {
                    keyword: keyword.clone(),
                    invert: self.invert_keyword.unwrap_or(false),
                })
            }
            MonitorType::JsonQuery => {
                let path = errs
                    .required("jsonPath", &self.json_path, "for a json-query monitor")
                    .map(|p| p.trim().to_owned());
                let path = path.and_then(|p| match serde_json_path::JsonPath::parse(&p) {
                    Ok(_) => Some(p),
                    Err(e) => {
                        errs.push(
                            "jsonPath",
                            format!("is not an RFC 9535 JSONPath expression: {e}"),
                        );
                        None
                    }
                });
                let op = match self.json_path_operator.as_deref() {
                    None => Some(JsonOp::Eq),
                    Some(o) => JsonOp::parse(o).or_else(|| {
                        let known: Vec<_> = JsonOp::ALL.iter().map(|o| o.as_str()).collect();
                        errs.push(
                            "jsonPathOperator",
                            format!("must be one of {}", known.join(", ")),
                        );
                        None
                    }),
                };
                let expected = errs.required(
                    "expectedValue",
                    &self.expected_value,
                    "for a json-query monitor",
                );
                Some(BodyExpect::Json {
                    path: path?,
                    op: op?,
                    expected: expected?.clone(),
                })
            }
            _ => Some(BodyExpect::None),
        }
    }

    fn parse_http(&self, ty: MonitorType, errs: &mut Errors) -> Option<HttpSpec> {
        let expect = self.parse_expect(ty, errs);
        let expiry_days = self.expiry_notification.unwrap_or(0);
        if !(0..=3650).contains(&expiry_days) {
            errs.push(
                "expiryNotification",
                "must be a number of days between 0 (off) and 3650",
            );
        }
        let url = errs
            .required(
                "url",
                &self.url,
                &format!(
                    "for a{} {} monitor",
                    if ty == MonitorType::Http { "n" } else { "" },
                    ty.as_str()
                ),
            )
            .and_then(|u| match url::Url::parse(u.trim()) {
                Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Some(u),
                Ok(_) => {
                    errs.push("url", "must be an http:// or https:// URL with a host");
                    None
                }
                Err(e) => {
                    errs.push("url", format!("is not a valid URL: {e}"));
                    None
                }
            });

        let method = self.method.as_deref().unwrap_or("GET").to_ascii_uppercase();
        if !METHODS.contains(&method.as_str()) {
            errs.push("method", format!("must be one of {}", METHODS.join(", ")));
        }

        let headers = match parse_headers(self.headers.as_ref()) {
            Ok(h) => h,
            Err(msg) => {
                errs.push("headers", msg);
                Vec::new()
            }
        };

        let codes = self
            .accepted_statuscodes
            .clone()
            .unwrap_or_else(|| vec!["200-299".into()]);
        if codes.is_empty() {
            errs.push(
                "accepted_statuscodes",
                "must list at least one code or range",
            );
        }
        let mut accepted = Vec::with_capacity(codes.len());
        for c in &codes {
            match StatusRange::parse(c) {
                Ok(r) => accepted.push(r),
                Err(msg) => errs.push("accepted_statuscodes", msg),
            }
        }

        let max_redirects = self.maxredirects.unwrap_or(10);
        if !(0..=30).contains(&max_redirects) {
            errs.push("maxredirects", "must be between 0 and 30");
        }

        Some(HttpSpec {
            url: url?,
            method,
            headers,
            body: self.body.clone().filter(|b| !b.is_empty()),
            accepted,
            max_redirects: max_redirects.clamp(0, 30) as u32,
            ignore_tls: self.ignore_tls.unwrap_or(false),
            expect: expect?,
            expiry_days: expiry_days.clamp(0, 3650) as u32,
        })
    }
}

/// Push tokens travel in URLs: 1–255 characters of `A-Z a-z 0-9 - _`.
pub fn check_push_token(t: &str) -> Result<(), String> {
    if t.is_empty() || t.len() > 255 {
        return Err("must be 1 to 255 characters".into());
    }
    if !t
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err("may contain only letters, digits, '-' and '_'".into());
    }
    Ok(())
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

/// Headers come as a JSON object, or (Kuma's form) a string holding one.
fn parse_headers(v: Option<&Value>) -> Result<Vec<(String, String)>, String> {
    let obj = match v {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::String(s)) if s.trim().is_empty() => return Ok(Vec::new()),
        Some(Value::String(s)) => {
            serde_json::from_str::<Value>(s).map_err(|e| format!("is not a JSON object: {e}"))?
        }
        Some(other) => other.clone(),
    };
    let Value::Object(map) = obj else {
        return Err("must be a JSON object of header names to values".into());
    };
    map.into_iter()
        .map(|(k, v)| {
            let v = match v {
                Value::String(s) => s,
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                _ => return Err(format!("header '{k}' must have a string value")),
            };
            if http_token(&k) {
                Ok((k, v))
            } else {
                Err(format!("'{k}' is not a valid header name"))
            }
        })
        .collect()
}

fn http_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

impl MonitorSpec {
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
            ..Default::default()
        };
        match &self.kind {
            MonitorKind::Http(h) => {
                f.url = Some(h.url.to_string());
                f.method = Some(h.method.clone());
                if !h.headers.is_empty() {
                    let map: serde_json::Map<String, Value> = h
                        .headers
                        .iter()
                        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                        .collect();
                    f.headers = Some(Value::Object(map));
                }
                f.body = h.body.clone();
                f.accepted_statuscodes = Some(h.accepted.iter().map(|r| r.to_string()).collect());
                f.maxredirects = Some(h.max_redirects.into());
                f.ignore_tls = Some(h.ignore_tls);
                if h.expiry_days > 0 {
                    f.expiry_notification = Some(h.expiry_days.into());
                }
                match &h.expect {
                    BodyExpect::None => {}
                    BodyExpect::Keyword { keyword, invert } => {
                        f.keyword = Some(keyword.clone());
                        f.invert_keyword = Some(*invert);
                    }
                    BodyExpect::Json { path, op, expected } => {
                        f.json_path = Some(path.clone());
                        f.json_path_operator = Some(op.as_str().to_owned());
                        f.expected_value = Some(expected.clone());
                    }
                }
            }
            MonitorKind::Port { hostname, port } => {
                f.hostname = Some(hostname.clone());
                f.port = Some((*port).into());
            }
            MonitorKind::Dns(d) => {
                f.hostname = Some(d.hostname.clone());
                f.port = Some(d.port.into());
                f.dns_resolve_server = Some(d.server.to_string());
                f.dns_resolve_type = Some(d.record_type.as_str().to_owned());
                f.expected_value = d.expected.clone();
            }
            MonitorKind::Ping { hostname, count } => {
                f.hostname = Some(hostname.clone());
                f.packet_count = Some((*count).into());
            }
            MonitorKind::Push => {}
        }
        f
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const LIMITS: Limits = Limits {
        min_interval_secs: 20,
    };

    fn parse(v: Value) -> Result<MonitorSpec, Vec<FieldError>> {
        MonitorFields::from_json(v)
            .map_err(|e| vec![e])?
            .parse(&LIMITS)
    }

    fn fields_of(r: Result<MonitorSpec, Vec<FieldError>>) -> Vec<String> {
        r.unwrap_err().into_iter().map(|e| e.field).collect()
    }

    #[test]
    fn status_ranges_parse() {
        let check = |s: &str, want: Result<(u16, u16), ()>| {
            let got = StatusRange::parse(s).map(|r| (r.lo, r.hi)).map_err(|_| ());
            assert_eq!(got, want, "{s}");
        };
        check("200-299", Ok((200, 299)));
        check("204", Ok((204, 204)));
        check(" 300 - 399 ", Ok((300, 399)));
        check("299-200", Err(()));
        check("99", Err(()));
        check("600", Err(()));
        check("2xx", Err(()));
        check("200-", Err(()));
        check("", Err(()));
    }

    #[test]
    fn status_range_contains_bounds() {
        let r = StatusRange::parse("200-299").unwrap();
        assert!(r.contains(200) && r.contains(299));
        assert!(!r.contains(199) && !r.contains(300));
    }

    #[test]
    fn http_defaults_follow_kuma() {
        let spec = parse(json!({"name": "a", "type": "http", "url": "http://x.test/"})).unwrap();
        assert_eq!(spec.interval_secs, 60);
        assert_eq!(spec.retry_interval_secs, 60);
        assert_eq!(spec.timeout_ms, 48_000);
        assert!(spec.active);
        let MonitorKind::Http(h) = spec.kind else {
            panic!("http")
        };
        assert_eq!(h.method, "GET");
        assert!(h.accepts(200) && h.accepts(299) && !h.accepts(300));
        assert_eq!(h.max_redirects, 10);
    }

    #[test]
    fn camel_and_snake_case_both_accepted() {
        let a = parse(json!({"name":"a","type":"http","url":"http://x.test/","retryInterval":30,"interval":40}))
            .unwrap();
        let b = parse(json!({"name":"a","type":"http","url":"http://x.test/","retry_interval":30,"interval":40}))
            .unwrap();
        assert_eq!(a.retry_interval_secs, 30);
        assert_eq!(a, b);
    }

    #[test]
    fn tcp_is_an_alias_of_port() {
        let spec =
            parse(json!({"name":"db","type":"tcp","hostname":"db.test","port":5432})).unwrap();
        assert_eq!(
            spec.kind,
            MonitorKind::Port {
                hostname: "db.test".into(),
                port: 5432
            }
        );
    }

    #[test]
    fn every_bad_field_is_named() {
        let r = parse(json!({
            "type": "http", "url": "ftp://x", "interval": 5, "timeout": 0,
            "accepted_statuscodes": ["200-299", "abc"], "method": "FETCH"
        }));
        let fields = fields_of(r);
        for f in [
            "name",
            "url",
            "interval",
            "timeout",
            "accepted_statuscodes",
            "method",
        ] {
            assert!(fields.contains(&f.to_string()), "{f} missing in {fields:?}");
        }
    }

    #[test]
    fn missing_fields_for_type() {
        assert_eq!(fields_of(parse(json!({"name":"a","type":"http"}))), ["url"]);
        assert_eq!(
            fields_of(parse(json!({"name":"a","type":"port"}))),
            ["hostname", "port"]
        );
        assert_eq!(
            fields_of(parse(
                json!({"name":"a","type":"port","hostname":"h","port":70000})
            )),
            ["port"]
        );
    }

    #[test]
    fn interval_and_timeout_bounds() {
        let base = |extra: Value| {
            let mut v = json!({"name":"a","type":"http","url":"http://x.test/"});
            v.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            parse(v)
        };
        assert_eq!(fields_of(base(json!({"interval": 19}))), ["interval"]);
        assert_eq!(fields_of(base(json!({"interval": 86401}))), ["interval"]);
        assert_eq!(
            fields_of(base(json!({"interval": 30, "timeout": 30}))),
            ["timeout"]
        );
        assert!(base(json!({"interval": 30, "timeout": 29.5})).is_ok());
        assert_eq!(
            fields_of(base(json!({"retryInterval": 1}))),
            ["retryInterval"]
        );
    }

    #[test]
    fn unknown_type_and_wrong_json_types_are_named() {
        assert_eq!(
            fields_of(parse(json!({"name":"a","type":"smtp"}))),
            ["type"]
        );
        assert_eq!(
            fields_of(parse(json!({"name":"a","type":"http","interval":"soon"}))),
            ["interval"]
        );
        assert_eq!(fields_of(parse(json!([1, 2]))), ["body"]);
    }

    #[test]
    fn headers_as_object_or_kuma_string() {
        let a =
            parse(json!({"name":"a","type":"http","url":"http://x.test/","headers":{"X-A":"1"}}))
                .unwrap();
        let b = parse(
            json!({"name":"a","type":"http","url":"http://x.test/","headers":"{\"X-A\":\"1\"}"}),
        )
        .unwrap();
        assert_eq!(a, b);
        assert_eq!(
            fields_of(parse(
                json!({"name":"a","type":"http","url":"http://x.test/","headers":"nope"})
            )),
            ["headers"]
        );
        assert_eq!(
            fields_of(parse(
                json!({"name":"a","type":"http","url":"http://x.test/","headers":{"bad name":"1"}})
            )),
            ["headers"]
        );
    }

    #[test]
    fn to_fields_round_trips() {
        let spec = parse(json!({
            "name":"a","type":"http","url":"http://x.test/p","method":"post","body":"{}",
            "headers":{"X-A":"1"},"accepted_statuscodes":["200-299","301"],"interval":30,
            "retryInterval":20,"maxretries":2,"timeout":10
        }))
        .unwrap();
        assert_eq!(spec.to_fields().parse(&LIMITS).unwrap(), spec);
    }

    #[test]
    fn overlay_replaces_only_given_fields() {
        let mut f = parse(json!({"name":"a","type":"http","url":"http://x.test/"}))
            .unwrap()
            .to_fields();
        f.overlay(MonitorFields::from_json(json!({"interval": 90})).unwrap());
        let spec = f.parse(&LIMITS).unwrap();
        assert_eq!(spec.interval_secs, 90);
        assert_eq!(spec.name, "a");
    }

    #[test]
    fn every_kuma_type_name_parses() {
        for t in MonitorType::ALL {
            assert_eq!(MonitorType::parse(t.as_str()), Some(*t));
        }
        assert_eq!(MonitorType::parse("tcp"), Some(MonitorType::Port));
        assert_eq!(MonitorType::parse("json"), None);
    }

    #[test]
    fn new_kinds_parse_with_kuma_defaults() {
        let k = parse(json!({"name":"a","type":"keyword","url":"http://x.test/","keyword":"up"}))
            .unwrap();
        assert_eq!(k.kind.monitor_type(), MonitorType::Keyword);
        let j = parse(
            json!({"name":"a","type":"json-query","url":"http://x.test/",
            "jsonPath":"$.a","expectedValue":"1"}),
        )
        .unwrap();
        let MonitorKind::Http(h) = &j.kind else {
            panic!()
        };
        assert_eq!(
            h.expect,
            BodyExpect::Json {
                path: "$.a".into(),
                op: JsonOp::Eq,
                expected: "1".into()
            }
        );
        let d = parse(json!({"name":"a","type":"dns","hostname":"x.test"})).unwrap();
        let MonitorKind::Dns(d) = d.kind else {
            panic!()
        };
        assert_eq!((d.port, d.record_type), (53, DnsRecordType::A));
        assert_eq!(d.server.to_string(), "1.1.1.1");
        let p = parse(json!({"name":"a","type":"ping","hostname":"127.0.0.1"})).unwrap();
        assert_eq!(
            p.kind,
            MonitorKind::Ping {
                hostname: "127.0.0.1".into(),
                count: 1
            }
        );
        let p = parse(json!({"name":"a","type":"push","interval":60})).unwrap();
        assert_eq!(p.kind, MonitorKind::Push);
    }

    #[test]
    fn bad_input_of_the_new_kinds_is_named() {
        let cases = [
            (
                json!({"name":"a","type":"keyword","url":"http://x.test/"}),
                "keyword",
            ),
            (
                json!({"name":"a","type":"keyword","url":"http://x.test/","keyword":""}),
                "keyword",
            ),
            (
                json!({"name":"a","type":"json-query","url":"http://x.test/","jsonPath":"$[","expectedValue":"1"}),
                "jsonPath",
            ),
            (
                json!({"name":"a","type":"json-query","url":"http://x.test/","jsonPath":"a.b","expectedValue":"1"}),
                "jsonPath",
            ),
            (
                json!({"name":"a","type":"json-query","url":"http://x.test/","jsonPath":"$.a"}),
                "expectedValue",
            ),
            (
                json!({"name":"a","type":"json-query","url":"http://x.test/","jsonPath":"$.a","expectedValue":"1","jsonPathOperator":"=~"}),
                "jsonPathOperator",
            ),
            (
                json!({"name":"a","type":"dns","hostname":"x.test","dns_resolve_type":"HINFO"}),
                "dns_resolve_type",
            ),
            (
                json!({"name":"a","type":"dns","hostname":"x.test","dns_resolve_server":"dns.test"}),
                "dns_resolve_server",
            ),
            (json!({"name":"a","type":"dns"}), "hostname"),
            (
                json!({"name":"a","type":"ping","hostname":"h","packet_count":0}),
                "packet_count",
            ),
            (
                json!({"name":"a","type":"ping","hostname":"h","packet_count":-3}),
                "packet_count",
            ),
            (
                json!({"name":"a","type":"ping","hostname":"h","packet_count":101}),
                "packet_count",
            ),
            (json!({"name":"a","type":"push","interval":5}), "interval"),
            (
                json!({"name":"a","type":"push","pushToken":"a b"}),
                "pushToken",
            ),
            (
                json!({"name":"a","type":"http","url":"https://x.test/","expiryNotification":-1}),
                "expiryNotification",
            ),
        ];
        for (body, field) in cases {
            assert_eq!(fields_of(parse(body.clone())), [field], "{body}");
        }
    }

    #[test]
    fn new_kinds_round_trip_through_fields() {
        let bodies = [
            json!({"name":"a","type":"keyword","url":"http://x.test/","keyword":"up","invertKeyword":true}),
            json!({"name":"a","type":"json-query","url":"http://x.test/","jsonPath":"$.a[0]","jsonPathOperator":">=","expectedValue":"2"}),
            json!({"name":"a","type":"dns","hostname":"x.test","dns_resolve_server":"127.0.0.1","port":5353,"dns_resolve_type":"mx","expectedValue":"10 mx.test."}),
            json!({"name":"a","type":"ping","hostname":"127.0.0.1","packet_count":3}),
            json!({"name":"a","type":"push","interval":30}),
            json!({"name":"a","type":"http","url":"https://x.test/","expiryNotification":14}),
        ];
        for b in bodies {
            let spec = parse(b.clone()).unwrap();
            assert_eq!(spec.to_fields().parse(&LIMITS).unwrap(), spec, "{b}");
        }
    }

    #[test]
    fn expiry_notification_takes_days_or_kumas_boolean() {
        let days = |v: Value| {
            let spec = parse(
                json!({"name":"a","type":"http","url":"https://x.test/","expiryNotification": v}),
            );
            match spec.map(|s| s.kind) {
                Ok(MonitorKind::Http(h)) => Ok(h.expiry_days),
                Ok(_) => unreachable!(),
                Err(e) => Err(e[0].field.clone()),
            }
        };
        assert_eq!(days(json!(7)), Ok(7));
        assert_eq!(days(json!(true)), Ok(14));
        assert_eq!(days(json!(false)), Ok(0));
        assert_eq!(days(json!(null)), Ok(0));
        assert_eq!(days(json!("soon")), Err("expiryNotification".into()));
    }
}
