//! `http`, `keyword` and `json-query`: one request, and what the status and
//! body must satisfy.

use super::{Errors, MonitorFields, MonitorType, defaults, lengths};
use serde_json::Value;
use std::fmt;

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

/// The `http`, `keyword` and `json-query` fields.
pub(super) fn parse(f: &MonitorFields, ty: MonitorType, errs: &mut Errors) -> Option<HttpSpec> {
    let expect = parse_expect(f, ty, errs);
    let expiry_days = f.expiry_notification.unwrap_or(0);
    if !(0..=3650).contains(&expiry_days) {
        errs.push(
            "expiryNotification",
            "must be a number of days between 0 (off) and 3650",
        );
    }
    let url = errs
        .required(
            "url",
            &f.url,
            &format!(
                "for a{} {} monitor",
                if ty == MonitorType::Http { "n" } else { "" },
                ty.as_str()
            ),
        )
        .filter(|u| {
            let long = u.len() > lengths::URL;
            if long {
                errs.push("url", format!("must be at most {} bytes", lengths::URL));
            }
            !long
        })
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

    let method = f
        .method
        .as_deref()
        .unwrap_or(defaults::METHOD)
        .to_ascii_uppercase();
    if !METHODS.contains(&method.as_str()) {
        errs.push("method", format!("must be one of {}", METHODS.join(", ")));
    }

    let headers = match parse_headers(f.headers.as_ref()) {
        Ok(h) => h,
        Err(msg) => {
            errs.push("headers", msg);
            Vec::new()
        }
    };

    let codes = f
        .accepted_statuscodes
        .clone()
        .unwrap_or_else(|| vec![defaults::ACCEPTED_STATUS_CODES.into()]);
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

    errs.at_most("body", f.body.as_deref(), lengths::BODY);
    let max_redirects = f.maxredirects.unwrap_or(defaults::MAX_REDIRECTS);
    if !(0..=30).contains(&max_redirects) {
        errs.push("maxredirects", "must be between 0 and 30");
    }

    Some(HttpSpec {
        url: url?,
        method,
        headers,
        body: f.body.clone().filter(|b| !b.is_empty()),
        accepted,
        max_redirects: max_redirects.clamp(0, 30) as u32,
        ignore_tls: f.ignore_tls.unwrap_or(false),
        expect: expect?,
        expiry_days: expiry_days.clamp(0, 3650) as u32,
    })
}

fn parse_expect(f: &MonitorFields, ty: MonitorType, errs: &mut Errors) -> Option<BodyExpect> {
    match ty {
        MonitorType::Keyword => {
            let keyword = errs.required("keyword", &f.keyword, "for a keyword monitor")?;
            if keyword.is_empty() {
                errs.push("keyword", "must not be empty");
                return None;
            }
            errs.at_most("keyword", Some(keyword), lengths::MATCH);
            Some(BodyExpect::Keyword {
                keyword: keyword.clone(),
                invert: f.invert_keyword.unwrap_or(false),
            })
        }
        MonitorType::JsonQuery => {
            errs.at_most("jsonPath", f.json_path.as_deref(), lengths::MATCH);
            errs.at_most("expectedValue", f.expected_value.as_deref(), lengths::MATCH);
            let path = errs
                .required("jsonPath", &f.json_path, "for a json-query monitor")
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
            let op = match f.json_path_operator.as_deref() {
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
                &f.expected_value,
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
    if map.len() > lengths::HEADER_COUNT {
        return Err(format!(
            "must have at most {} headers",
            lengths::HEADER_COUNT
        ));
    }
    let headers: Vec<(String, String)> = map
        .into_iter()
        .map(|(k, v)| {
            let v = match v {
                Value::String(s) => s,
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                _ => return Err(format!("header '{}' must have a string value", excerpt(&k))),
            };
            if !http_token(&k) {
                Err(format!("'{}' is not a valid header name", excerpt(&k)))
            } else if !field_value(&v) {
                Err(format!(
                    "header '{}' has a value with a line break or control character",
                    excerpt(&k)
                ))
            } else {
                Ok((k, v))
            }
        })
        .collect::<Result<_, _>>()?;
    let size: usize = headers.iter().map(|(k, v)| k.len() + v.len()).sum();
    if size > lengths::HEADERS {
        return Err(format!(
            "must be at most {} bytes of names and values together",
            lengths::HEADERS
        ));
    }
    Ok(headers)
}

fn excerpt(s: &str) -> String {
    crate::addr::excerpt(s, 64)
}

/// An RFC 9110 field value: visible characters, spaces and tabs (and
/// non-ASCII text), never CR, LF, NUL or another control character.
fn field_value(v: &str) -> bool {
    v.chars().all(|c| c == '\t' || !c.is_control())
}

fn http_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

pub(super) fn write(h: &HttpSpec, f: &mut MonitorFields) {
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
