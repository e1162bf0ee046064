//! The create and edit form of a monitor: the fields of the chosen kind
//! only (the kind is picked first, by links, so it works without a script),
//! under Uptime Kuma's field names, sent through the same validation and
//! write as the JSON API. On error every bad field shows its message next to
//! it, the values typed are kept, and nothing is saved.

use super::layout::{self, Nav};
use super::monitor::load;
use super::{PageResult, Viewer, check_csrf, see_other};
use crate::api::AppState;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use maud::{Markup, html};
use picket_shared::db::{Channel, DbError, MonitorRecord, Session};
use picket_shared::model::Node;
use picket_shared::monitor::{DnsRecordType, FieldError, JsonOp, MonitorFields, MonitorType};
use serde::Deserialize;
use serde_json::{Map, Value, json};

/// How a form value becomes the JSON the API takes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Input {
    Text,
    LongText,
    Int,
    Float,
    /// A checkbox: present means true.
    Check,
    /// A comma-separated list (`accepted_statuscodes`).
    List,
    /// One of the given options.
    Choice(&'static [&'static str]),
}

const HTTP_KINDS: &[MonitorType] = &[
    MonitorType::Http,
    MonitorType::Keyword,
    MonitorType::JsonQuery,
];
const HOST_KINDS: &[MonitorType] = &[MonitorType::Port, MonitorType::Ping, MonitorType::Dns];

const METHODS: &[&str] = &["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];

/// One field of the form: its Kuma name, how it is typed, its label and
/// hint, and the kinds that have it (`None`: every kind).
struct Field {
    name: &'static str,
    input: Input,
    label: &'static str,
    hint: &'static str,
    kinds: Option<&'static [MonitorType]>,
}

const fn field(
    name: &'static str,
    input: Input,
    label: &'static str,
    hint: &'static str,
    kinds: Option<&'static [MonitorType]>,
) -> Field {
    Field {
        name,
        input,
        label,
        hint,
        kinds,
    }
}

fn json_ops() -> &'static [&'static str] {
    static OPS: std::sync::OnceLock<Vec<&'static str>> = std::sync::OnceLock::new();
    OPS.get_or_init(|| JsonOp::ALL.iter().map(|o| o.as_str()).collect())
}

fn dns_types() -> &'static [&'static str] {
    static TYPES: std::sync::OnceLock<Vec<&'static str>> = std::sync::OnceLock::new();
    TYPES.get_or_init(|| DnsRecordType::ALL.iter().map(|t| t.as_str()).collect())
}

/// The fields, in the order shown. Choices that come from the monitor
/// module are filled in by [`fields`].
fn fields() -> Vec<Field> {
    use Input::*;
    use MonitorType as T;
    vec![
        field("name", Text, "Friendly name", "", None),
        field("url", Text, "URL", "http:// or https://", Some(HTTP_KINDS)),
        field(
            "keyword",
            Text,
            "Keyword",
            "The response body must contain it (case-sensitive).",
            Some(&[T::Keyword]),
        ),
        field(
            "invertKeyword",
            Check,
            "Invert keyword: DOWN when the keyword is present",
            "",
            Some(&[T::Keyword]),
        ),
        field(
            "jsonPath",
            Text,
            "JSON query",
            "A JSONPath, e.g. $.status",
            Some(&[T::JsonQuery]),
        ),
        field(
            "jsonPathOperator",
            Choice(json_ops()),
            "Condition",
            "",
            Some(&[T::JsonQuery]),
        ),
        field(
            "expectedValue",
            Text,
            "Expected value",
            "",
            Some(&[T::JsonQuery]),
        ),
        field(
            "hostname",
            Text,
            "Hostname",
            "A host name or an IP address.",
            Some(HOST_KINDS),
        ),
        field("port", Int, "Port", "", Some(&[T::Port, T::Dns])),
        field(
            "dns_resolve_server",
            Text,
            "Resolver",
            "The DNS server to ask, e.g. 1.1.1.1",
            Some(&[T::Dns]),
        ),
        field(
            "dns_resolve_type",
            Choice(dns_types()),
            "Record type",
            "",
            Some(&[T::Dns]),
        ),
        field(
            "packet_count",
            Int,
            "Packets",
            "Echo requests per check; UP when any is answered.",
            Some(&[T::Ping]),
        ),
        field(
            "pushToken",
            Text,
            "Push token",
            "Leave empty for a new random one; the job calls /api/push/<token>.",
            Some(&[T::Push]),
        ),
        field("interval", Int, "Check every (seconds)", "", None),
        field(
            "retryInterval",
            Int,
            "Retry every (seconds)",
            "While a failing check is being retried.",
            None,
        ),
        field(
            "maxretries",
            Int,
            "Retries",
            "Failed checks in a row before the monitor is DOWN.",
            None,
        ),
        field(
            "timeout",
            Float,
            "Timeout (seconds)",
            "Empty: 80 % of the interval.",
            Some(&[T::Http, T::Keyword, T::JsonQuery, T::Port, T::Ping, T::Dns]),
        ),
        field("upThreshold", Int, "UP checks to end an outage", "", None),
        field(
            "resendInterval",
            Int,
            "Remind every N down checks",
            "0: never.",
            None,
        ),
        field("method", Choice(METHODS), "Method", "", Some(HTTP_KINDS)),
        field(
            "accepted_statuscodes",
            List,
            "Accepted status codes",
            "Comma-separated: 200-299, 301",
            Some(HTTP_KINDS),
        ),
        field("maxredirects", Int, "Max redirects", "", Some(HTTP_KINDS)),
        field(
            "headers",
            LongText,
            "Headers (JSON)",
            "{\"Authorization\": \"Bearer …\"}",
            Some(HTTP_KINDS),
        ),
        field("body", LongText, "Body", "", Some(HTTP_KINDS)),
        field(
            "ignoreTls",
            Check,
            "Ignore TLS/SSL errors",
            "",
            Some(HTTP_KINDS),
        ),
        field(
            "expiryNotification",
            Int,
            "Certificate expiry warning (days)",
            "DOWN when the certificate expires sooner; 0: off.",
            Some(HTTP_KINDS),
        ),
        field("description", LongText, "Description", "", None),
        field(
            "tags",
            Text,
            "Tags",
            "Comma-separated, with an optional value: team, env:prod. Tags are made with the API (POST /api/v1/tags).",
            None,
        ),
    ]
}

impl Field {
    fn applies(&self, kind: MonitorType) -> bool {
        self.kinds.is_none_or(|k| k.contains(&kind))
    }
}

/// The form's values as the JSON the API takes, only the fields of `kind`;
/// values that are not numbers where numbers go are reported by name.
fn to_json(form: &[(String, String)], kind: MonitorType) -> (Map<String, Value>, Vec<FieldError>) {
    let get = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.trim());
    let mut out = Map::new();
    let mut errors = Vec::new();
    out.insert("type".into(), json!(kind.as_str()));
    for f in fields().iter().filter(|f| f.applies(kind)) {
        let raw = get(f.name);
        let v = match (f.input, raw) {
            (Input::Check, v) => json!(v.is_some()),
            // Emptied, the description is cleared; other empty fields take
            // the stored value or the default.
            (_, Some("")) if f.name == "description" => json!(""),
            (_, Some(t)) if f.name == "tags" => tags_json(t),
            (_, None | Some("")) if f.name == "tags" => json!([]),
            (_, None | Some("")) => continue,
            (Input::Int, Some(s)) => match s.parse::<i64>() {
                Ok(n) => json!(n),
                Err(_) => {
                    errors.push(FieldError::new(f.name, "must be a whole number"));
                    continue;
                }
            },
            (Input::Float, Some(s)) => match s.parse::<f64>() {
                Ok(n) if n.is_finite() => json!(n),
                _ => {
                    errors.push(FieldError::new(f.name, "must be a number"));
                    continue;
                }
            },
            (Input::List, Some(s)) => json!(
                s.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .collect::<Vec<_>>()
            ),
            (_, Some(s)) => json!(s),
        };
        out.insert(f.name.into(), v);
    }
    if let Some(home) = get("node_id").filter(|v| !v.is_empty()) {
        out.insert("node_id".into(), json!(home));
    }
    let channels: Vec<i64> = form
        .iter()
        .filter(|(k, _)| k == "notification")
        .filter_map(|(_, v)| v.parse().ok())
        .collect();
    out.insert("notificationIDList".into(), json!(channels));
    (out, errors)
}

/// `team, env:prod` as the API's `tags`.
fn tags_json(text: &str) -> Value {
    let tags: Vec<Value> = text
        .split(',')
        .filter_map(picket_shared::db::Filter::tag_of)
        .map(|(name, value)| json!({"name": name, "value": value.unwrap_or_default()}))
        .collect();
    json!(tags)
}

/// A monitor's tags as the form shows them: `team, env:prod`.
fn tags_text(tags: &[picket_shared::db::MonitorTag]) -> String {
    tags.iter()
        .map(|t| {
            if t.value.is_empty() {
                t.name.clone()
            } else {
                format!("{}:{}", t.name, t.value)
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

async fn stored_tags(st: &AppState, rec: &MonitorRecord) -> Result<String, super::PageError> {
    let tags = st.0.db.monitor_tags(Some(&[rec.id])).await?;
    Ok(tags_text(tags.get(&rec.id).map_or(&[][..], Vec::as_slice)))
}

/// What the form shows: stored or typed values by Kuma name.
struct Values {
    map: Map<String, Value>,
    channels: Vec<i64>,
}

impl Values {
    fn from_fields(f: &MonitorFields, channels: Vec<i64>) -> Values {
        let map = match serde_json::to_value(f) {
            Ok(Value::Object(m)) => m,
            _ => Map::new(),
        };
        Values { map, channels }
    }

    fn text(&self, name: &str) -> String {
        match self.map.get(name) {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(s)) => s.clone(),
            Some(Value::Array(a)) => a
                .iter()
                .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
                .collect::<Vec<_>>()
                .join(", "),
            Some(v @ Value::Object(_)) => serde_json::to_string_pretty(v).unwrap_or_default(),
            Some(v) => v.to_string(),
        }
    }

    fn checked(&self, name: &str) -> bool {
        self.map.get(name).and_then(Value::as_bool).unwrap_or(false)
    }
}

struct FormPage<'a> {
    session: &'a Session,
    /// `None` for a new monitor.
    id: Option<picket_shared::MonitorId>,
    kind: MonitorType,
    values: Values,
    errors: Vec<FieldError>,
    nodes: Vec<Node>,
    channels: Vec<Channel>,
}

fn render(p: &FormPage<'_>) -> Markup {
    let (title, action, base) = match p.id {
        Some(id) => (
            "Edit monitor".to_owned(),
            format!("/monitors/{id}/edit"),
            format!("/monitors/{id}/edit?type="),
        ),
        None => (
            "New monitor".to_owned(),
            "/monitors/new".to_owned(),
            "/monitors/new?type=".to_owned(),
        ),
    };
    let known: Vec<&str> = fields()
        .iter()
        .map(|f| f.name)
        .chain(["node_id", "notificationIDList"])
        .collect();
    let others: Vec<&FieldError> = p
        .errors
        .iter()
        .filter(|e| !known.contains(&e.field.as_str()))
        .collect();
    let home = p.values.text("node_id");
    let body = html! {
        h1 { (title) }
        @if !p.errors.is_empty() {
            div.alert.error role="alert" {
                "Nothing was saved: " (p.errors.len()) " field" @if p.errors.len() > 1 { "s need" } @else { " needs" } " attention."
                @for e in &others { div { (e.field) ": " (e.msg) } }
            }
        }
        nav.tabs aria-label="Monitor type" {
            @for t in MonitorType::ALL {
                a href={ (base) (t.as_str()) } aria-current=[(*t == p.kind).then_some("page")] { (t.as_str()) }
            }
        }
        form.panel method="post" action=(action) novalidate {
            input type="hidden" name="csrf" value=(p.session.csrf);
            input type="hidden" name="type" value=(p.kind.as_str());
            div.grid2 {
                @for f in fields().iter().filter(|f| f.applies(p.kind)) {
                    div style=(if matches!(f.input, Input::LongText) || f.name == "name" || f.name == "url" { "grid-column:1/-1" } else { "" }) {
                        (input(f, &p.values, &p.errors))
                    }
                }
                div {
                    label for="node_id" { "Home node" }
                    select #node_id name="node_id" {
                        option value="" { "Least loaded (automatic)" }
                        @for n in &p.nodes {
                            option value=(n.node_id) selected[home == n.node_id.as_str()] { (n.node_name) " (" (n.node_id) ")" }
                        }
                    }
                    (layout::field_error(&p.errors, "node_id"))
                }
            }
            fieldset {
                legend { "Notifications" }
                @if p.channels.is_empty() {
                    p.muted { "No channels yet. " a href="/channels/new" { "Add one" } " to be told when this monitor goes down." }
                }
                @for c in &p.channels {
                    label.check {
                        input type="checkbox" name="notification" value=(c.id) checked[p.values.channels.contains(&c.id)];
                        (c.name) " " span.muted { "(" (c.kind) ")" }
                    }
                }
                (layout::field_error(&p.errors, "notificationIDList"))
            }
            div.row {
                button.primary type="submit" { "Save" }
                a.button href=(p.id.map_or_else(|| "/".to_owned(), |id| format!("/monitors/{id}"))) { "Cancel" }
            }
        }
    };
    layout::page(
        &title,
        p.session,
        if p.id.is_none() {
            Nav::NewMonitor
        } else {
            Nav::None
        },
        body,
    )
}

fn input(f: &Field, v: &Values, errors: &[FieldError]) -> Markup {
    let invalid = errors.iter().any(|e| e.field == f.name).then_some("true");
    let described = invalid.map(|_| format!("err-{}", f.name));
    let value = v.text(f.name);
    html! {
        @match f.input {
            Input::Check => {
                label.check {
                    input type="checkbox" name=(f.name) id=(f.name) checked[v.checked(f.name)] aria-invalid=[invalid];
                    (f.label)
                }
            }
            Input::LongText => {
                label for=(f.name) { (f.label) }
                textarea id=(f.name) name=(f.name) placeholder=(f.hint) aria-invalid=[invalid] aria-describedby=[described] { (value) }
            }
            Input::Choice(options) => {
                label for=(f.name) { (f.label) }
                select id=(f.name) name=(f.name) aria-invalid=[invalid] {
                    @for o in options { option value=(o) selected[value == *o] { (o) } }
                }
            }
            _ => {
                label for=(f.name) { (f.label) }
                input type="text"
                    inputmode=[matches!(f.input, Input::Int | Input::Float).then_some("decimal")]
                    id=(f.name) name=(f.name) value=(value) aria-invalid=[invalid] aria-describedby=[described];
                @if !f.hint.is_empty() { div.hint { (f.hint) } }
            }
        }
        (layout::field_error(errors, f.name))
    }
}

#[derive(Deserialize, Default)]
pub struct NewQuery {
    #[serde(default, rename = "type")]
    kind: String,
    #[serde(default)]
    clone: String,
}

async fn page_parts(st: &AppState) -> Result<(Vec<Node>, Vec<Channel>), super::PageError> {
    Ok((st.0.db.nodes().await?, st.0.db.channels().await?))
}

pub async fn new_page(
    State(st): State<AppState>,
    Viewer(session): Viewer,
    Query(q): Query<NewQuery>,
) -> PageResult {
    let (nodes, channels) = page_parts(&st).await?;
    let mut values = match q.clone.parse::<i64>() {
        Ok(_) => {
            let rec = load(&st, &q.clone).await?;
            let linked =
                st.0.db
                    .monitor_channels(Some(rec.id))
                    .await?
                    .remove(&rec.id)
                    .unwrap_or_default();
            let mut v = Values::from_fields(&rec.fields, linked);
            v.map
                .insert("tags".into(), json!(stored_tags(&st, &rec).await?));
            let name = v.text("name");
            v.map.insert("name".into(), json!(format!("{name} (copy)")));
            v.map.remove("pushToken");
            v
        }
        Err(_) => {
            let defaults: Vec<i64> = channels
                .iter()
                .filter(|c| c.is_default)
                .map(|c| c.id)
                .collect();
            Values::from_fields(
                &MonitorFields {
                    interval: Some(60),
                    retry_interval: Some(60),
                    maxretries: Some(0),
                    up_threshold: Some(1),
                    resend_interval: Some(0),
                    method: Some("GET".into()),
                    accepted_statuscodes: Some(vec!["200-299".into()]),
                    maxredirects: Some(10),
                    packet_count: Some(1),
                    dns_resolve_server: Some("1.1.1.1".into()),
                    port: None,
                    ..Default::default()
                },
                defaults,
            )
        }
    };
    let kind = MonitorType::parse(&q.kind)
        .or_else(|| {
            values
                .map
                .get("type")
                .and_then(Value::as_str)
                .and_then(MonitorType::parse)
        })
        .unwrap_or(MonitorType::Http);
    values.map.insert("type".into(), json!(kind.as_str()));
    let page = FormPage {
        session: &session,
        id: None,
        kind,
        values,
        errors: Vec::new(),
        nodes,
        channels,
    };
    Ok(render(&page).into_response())
}

/// A submitted form: the fields, the chosen kind and the CSRF token.
fn submitted(form: &[(String, String)]) -> (MonitorType, Option<&str>) {
    let get = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    (
        get("type")
            .and_then(MonitorType::parse)
            .unwrap_or(MonitorType::Http),
        get("csrf"),
    )
}

/// The typed values, to show again after an error.
fn typed(json: &Map<String, Value>, form: &[(String, String)]) -> Values {
    let mut map = json.clone();
    // Numbers that did not parse are shown as typed.
    for (k, v) in form {
        map.entry(k.clone()).or_insert_with(|| json!(v));
    }
    // Tags as typed, not as the list they became.
    if let Some((_, t)) = form.iter().find(|(k, _)| k == "tags") {
        map.insert("tags".into(), json!(t));
    }
    let channels = json
        .get("notificationIDList")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_i64).collect())
        .unwrap_or_default();
    Values { map, channels }
}

pub async fn create(
    State(st): State<AppState>,
    Viewer(session): Viewer,
    Form(form): Form<Vec<(String, String)>>,
) -> PageResult {
    save(&st, &session, None, &form).await
}

/// Validates a submitted form and stores it (`old`: the monitor edited):
/// the stored monitor, or every field at fault with nothing stored.
async fn store(
    st: &AppState,
    old: Option<&MonitorRecord>,
    json: &Map<String, Value>,
) -> Result<Result<MonitorRecord, Vec<FieldError>>, super::PageError> {
    let given = match MonitorFields::from_json(Value::Object(json.clone())) {
        Ok(f) => f,
        Err(e) => return Ok(Err(vec![e])),
    };
    let fields = match old {
        Some(rec) => {
            let mut merged = rec.fields.clone();
            merged.overlay(given);
            merged
        }
        None => given,
    };
    let valid = match fields.validate(&st.0.limits) {
        Ok(v) => v,
        Err(es) => return Ok(Err(es)),
    };
    let denied = valid.spec.denied_targets(&st.0.egress);
    if !denied.is_empty() {
        return Ok(Err(denied));
    }
    let saved = match old {
        Some(rec) => st.0.db.update_monitor(rec.id, &valid).await,
        None => st.0.db.create_monitor(&valid).await,
    };
    match saved {
        Ok(rec) => Ok(Ok(rec)),
        Err(DbError::Rejected { field, msg }) => Ok(Err(vec![FieldError::new(field, msg)])),
        Err(e) => Err(e.into()),
    }
}

/// Create or update from the form: to the monitor's page, or the form again
/// with the errors at their fields and the values as typed.
async fn save(
    st: &AppState,
    session: &Session,
    old: Option<MonitorRecord>,
    form: &[(String, String)],
) -> PageResult {
    let (kind, csrf) = submitted(form);
    check_csrf(session, csrf)?;
    let (json, mut errors) = to_json(form, kind);
    if errors.is_empty() {
        match store(st, old.as_ref(), &json).await? {
            Ok(rec) => {
                tracing::info!(monitor = %rec.id, home = %rec.default_node_id, "monitor saved");
                return Ok(see_other(&format!("/monitors/{}", rec.id)));
            }
            Err(es) => errors = es,
        }
    }
    let (nodes, channels) = page_parts(st).await?;
    let page = FormPage {
        session,
        id: old.map(|r| r.id),
        kind,
        values: typed(&json, form),
        errors,
        nodes,
        channels,
    };
    Ok((StatusCode::BAD_REQUEST, render(&page)).into_response())
}

pub async fn edit_page(
    State(st): State<AppState>,
    Viewer(session): Viewer,
    Path(raw): Path<String>,
    Query(q): Query<NewQuery>,
) -> PageResult {
    let rec = load(&st, &raw).await?;
    let (nodes, channels) = page_parts(&st).await?;
    let linked =
        st.0.db
            .monitor_channels(Some(rec.id))
            .await?
            .remove(&rec.id)
            .unwrap_or_default();
    let mut values = Values::from_fields(&rec.fields, linked);
    values
        .map
        .insert("tags".into(), json!(stored_tags(&st, &rec).await?));
    let kind = MonitorType::parse(&q.kind)
        .or_else(|| rec.fields.kind.as_deref().and_then(MonitorType::parse))
        .unwrap_or(MonitorType::Http);
    let page = FormPage {
        session: &session,
        id: Some(rec.id),
        kind,
        values,
        errors: Vec::new(),
        nodes,
        channels,
    };
    Ok(render(&page).into_response())
}

pub async fn update(
    State(st): State<AppState>,
    Viewer(session): Viewer,
    Path(raw): Path<String>,
    Form(form): Form<Vec<(String, String)>>,
) -> PageResult {
    let rec = load(&st, &raw).await?;
    save(&st, &session, Some(rec), &form).await
}
