//! `/api/v1/monitors*`: create, read, update, delete, and heartbeats.

use super::{ApiError, ApiResult, AppState, JsonBody, ok, parse_id};
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use picket_shared::db::{Filter, MonitorRecord};
use picket_shared::model::Uptime;
use picket_shared::monitor::{MonitorFields, ValidMonitor};
use picket_shared::read::{MonitorView, MonitorViews};
use picket_shared::{MonitorId, NodeId, now_ms};
use serde::Deserialize;
use serde_json::{Value, json};

/// A monitor as the API shows it: Kuma's fields plus identity and ownership.
pub fn monitor_json(rec: &MonitorRecord) -> Value {
    let mut v = serde_json::to_value(&rec.fields).unwrap_or_else(|_| json!({}));
    if let Value::Object(m) = &mut v {
        m.insert("id".into(), json!(rec.id));
        m.insert("assign_node".into(), json!(rec.assign_node));
        m.insert("owner".into(), json!(rec.owner()));
        m.insert("created_at".into(), json!(rec.created_at));
        m.insert("modified_at".into(), json!(rec.modified_at));
    }
    v
}

/// Validates `fields` into the one form that is stored.
fn validate(st: &AppState, fields: &MonitorFields) -> Result<ValidMonitor, ApiError> {
    let valid = fields.validate(&st.0.limits).map_err(ApiError::invalid)?;
    let denied = valid.spec.denied_targets(&st.0.egress);
    if denied.is_empty() {
        Ok(valid)
    } else {
        Err(ApiError::invalid(denied))
    }
}

fn fields_from(body: Value) -> Result<MonitorFields, ApiError> {
    MonitorFields::from_json(body).map_err(|e| ApiError::invalid(vec![e]))
}

#[derive(Deserialize)]
pub struct ListQuery {
    /// Only monitors whose effective owner is this node.
    owner: Option<String>,
    /// Only monitors with this tag: `name` or `name:value`.
    tag: Option<String>,
}

/// Uptime Kuma's three windows as `{"24h", "7d", "30d"}`: the fraction of
/// beats up, and the mean response time (ms) of UP beats; null without data.
pub fn uptime_json(u: &Uptime) -> (Value, Value) {
    let windows = [("24h", u.day), ("7d", u.week), ("30d", u.month)];
    let mut up = serde_json::Map::new();
    let mut ping = serde_json::Map::new();
    for (k, w) in windows {
        up.insert(k.into(), json!(w.uptime()));
        ping.insert(k.into(), json!(w.avg_ping()));
    }
    (Value::Object(up), Value::Object(ping))
}

/// A monitor's read model as the API shows it: the record, the uptime
/// figures and the certificate facts.
pub fn view_json(v: &MonitorView) -> Value {
    let mut j = monitor_json(&v.record);
    let (up, ping) = uptime_json(&v.uptime);
    j["uptime"] = up;
    j["avg_response_ms"] = ping;
    j["tls_info"] = json!(v.tls);
    j["notificationIDList"] = channels_json(&v.channels);
    j["tags"] = json!(v.tags);
    j
}

/// A monitor's channels in Kuma's shape, `{"3": true}`.
fn channels_json(ids: &[i64]) -> Value {
    Value::Object(ids.iter().map(|id| (id.to_string(), json!(true))).collect())
}

pub async fn list(State(st): State<AppState>, Query(q): Query<ListQuery>) -> ApiResult {
    let owner = q.owner.map(NodeId);
    let tag = q.tag.as_deref().and_then(Filter::tag_of);
    let views = MonitorViews::new(&st.0.db, now_ms())
        .all(owner.as_ref())
        .await?;
    let tagged = |v: &&MonitorView| match &tag {
        None => true,
        Some((name, value)) => v
            .tags
            .iter()
            .any(|t| &t.name == name && value.as_ref().is_none_or(|want| &t.value == want)),
    };
    ok(
        "",
        views
            .iter()
            .filter(tagged)
            .map(view_json)
            .collect::<Vec<_>>(),
    )
}

pub async fn create(State(st): State<AppState>, JsonBody(body): JsonBody) -> ApiResult {
    let fields = fields_from(body)?;
    let valid = validate(&st, &fields)?;
    let rec = st.0.db.create_monitor(&valid).await?;
    tracing::info!(monitor = %rec.id, home = %rec.default_node_id, "monitor created");
    let data = shown(&st, rec).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"ok": true, "msg": "Added Successfully.", "monitorID": data["id"], "data": data})),
    )
        .into_response())
}

async fn load(st: &AppState, raw: &str) -> Result<MonitorRecord, ApiError> {
    let id = MonitorId(parse_id(raw)?);
    st.0.db.monitor(id).await?.ok_or_else(|| not_found(id))
}

/// A monitor just written, as reads show it (with its channels).
async fn shown(st: &AppState, rec: MonitorRecord) -> Result<Value, ApiError> {
    let channels = st.0.db.monitor_channels(Some(rec.id)).await?;
    let tags = st.0.db.monitor_tags(Some(&[rec.id])).await?;
    let mut j = monitor_json(&rec);
    j["notificationIDList"] = channels_json(channels.get(&rec.id).map_or(&[], Vec::as_slice));
    j["tags"] = json!(tags.get(&rec.id).map_or(&[][..], Vec::as_slice));
    Ok(j)
}

fn not_found(id: MonitorId) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, format!("monitor {id} not found"))
}

pub async fn get_one(State(st): State<AppState>, Path(raw): Path<String>) -> ApiResult {
    let id = MonitorId(parse_id(&raw)?);
    let view = MonitorViews::new(&st.0.db, now_ms())
        .one(id, 1)
        .await?
        .ok_or_else(|| not_found(id))?;
    let mut v = view_json(&view);
    v["last_heartbeat"] = json!(view.recent.first());
    ok("", v)
}

/// Partial update: given fields replace stored ones; the result is validated whole.
pub async fn update(
    State(st): State<AppState>,
    Path(raw): Path<String>,
    JsonBody(body): JsonBody,
) -> ApiResult {
    let patch = fields_from(body)?;
    let rec = load(&st, &raw).await?;
    let mut merged = rec.fields.clone();
    merged.overlay(patch);
    let valid = validate(&st, &merged)?;
    let rec = st.0.db.update_monitor(rec.id, &valid).await?;
    ok("Saved.", shown(&st, rec).await?)
}

pub async fn delete(State(st): State<AppState>, Path(raw): Path<String>) -> ApiResult {
    let id = MonitorId(parse_id(&raw)?);
    st.0.db.delete_monitor(id).await?;
    tracing::info!(monitor = %id, "monitor deleted");
    ok("Deleted Successfully.", json!({"id": id}))
}

#[derive(Deserialize)]
pub struct HeartbeatQuery {
    /// Hours back from now (Uptime Kuma's `period`).
    period: Option<String>,
}

/// Most rows one heartbeats call returns.
const HEARTBEAT_LIMIT: i64 = 10_000;

pub async fn heartbeats(
    State(st): State<AppState>,
    Path(raw): Path<String>,
    Query(q): Query<HeartbeatQuery>,
) -> ApiResult {
    let hours: f64 = match q.period.as_deref() {
        None => 24.0,
        Some(p) => p
            .parse()
            .ok()
            .filter(|h: &f64| h.is_finite() && *h > 0.0 && *h <= 24.0 * 90.0)
            .ok_or_else(|| {
                ApiError::field(
                    StatusCode::BAD_REQUEST,
                    "period",
                    "must be a number of hours between 0 and 2160",
                )
            })?,
    };
    let rec = load(&st, &raw).await?;
    let since = now_ms() - (hours * 3_600_000.0) as i64;
    let beats = st.0.db.heartbeats(rec.id, since, HEARTBEAT_LIMIT).await?;
    ok("", beats)
}
