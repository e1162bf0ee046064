//! `/api/v1/notifications*`: notification channels (Uptime Kuma's names),
//! a test send, and recent deliveries. Secrets in a channel's settings are
//! never returned in full; a masked value sent back on update keeps the
//! stored one.

use super::{ApiError, ApiResult, AppState, JsonBody, body_object, ok, parse_id, text_field};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use picket_notify::providers;
use picket_notify::{Event, send};
use picket_shared::db::{Channel, ChannelInput};
use picket_shared::monitor::FieldError;
use picket_shared::now_ms;
use serde_json::{Value, json};

/// Events a minute a new channel sends one by one before it folds the rest
/// into a digest.
const DEFAULT_RATE: u32 = 10;

/// A channel as the API shows it.
fn channel_json(c: &Channel) -> Value {
    json!({
        "id": c.id,
        "name": c.name,
        "type": c.kind,
        "config": providers::masked(&c.kind, &c.config),
        "isDefault": c.is_default,
        "active": c.active,
        "ratePerMinute": c.rate_per_minute,
        "created_at": c.created_at,
        "modified_at": c.modified_at,
    })
}

/// Parses and validates a channel body; `old` is the stored channel on
/// update. The dashboard's channel form goes through it too.
pub(crate) fn input(body: Value, old: Option<&Channel>) -> Result<ChannelInput, ApiError> {
    let m = body_object(&body)?;
    let mut errs = Vec::new();
    let text = |k: &str, errs: &mut Vec<FieldError>| text_field(m, k, errs);
    let flag = |k: &str, errs: &mut Vec<FieldError>| match m.get(k) {
        None | Some(Value::Null) => None,
        Some(Value::Bool(b)) => Some(*b),
        Some(_) => {
            errs.push(FieldError::new(k, "must be true or false"));
            None
        }
    };
    let name = text("name", &mut errs).or_else(|| old.map(|o| o.name.clone()));
    match name.as_deref() {
        None | Some("") => errs.push(FieldError::new("name", "is required")),
        Some(n) if n.chars().count() > 255 => {
            errs.push(FieldError::new("name", "must be at most 255 characters"))
        }
        _ => {}
    }
    let kind = text("type", &mut errs).or_else(|| old.map(|o| o.kind.clone()));
    let config = match (m.get("config"), old) {
        (Some(c), Some(o)) if o.kind == kind.clone().unwrap_or_default() => {
            providers::unmasked(&o.kind, c, &o.config)
        }
        (Some(c), _) => c.clone(),
        (None, Some(o)) => o.config.clone(),
        (None, None) => json!({}),
    };
    let is_default = flag("isDefault", &mut errs).or(old.map(|o| o.is_default));
    let active = flag("active", &mut errs).or(old.map(|o| o.active));
    let apply_existing = flag("applyExisting", &mut errs).unwrap_or(false);
    let rate = match m.get("ratePerMinute") {
        None | Some(Value::Null) => old.map_or(DEFAULT_RATE, |o| o.rate_per_minute),
        Some(v) => match v.as_u64().filter(|r| *r <= 10_000) {
            Some(r) => r as u32,
            None => {
                errs.push(FieldError::new(
                    "ratePerMinute",
                    "must be a whole number from 0 (no limit) to 10000",
                ));
                DEFAULT_RATE
            }
        },
    };
    match kind.as_deref() {
        None | Some("") => errs.push(FieldError::new("type", "is required")),
        Some(k) => {
            if let Err(e) = providers::validate(k, &config) {
                errs.extend(e);
            }
        }
    }
    if !errs.is_empty() {
        return Err(ApiError::invalid(errs));
    }
    Ok(ChannelInput {
        name: name.unwrap_or_default(),
        kind: kind.unwrap_or_default(),
        config,
        is_default: is_default.unwrap_or(false),
        active: active.unwrap_or(true),
        rate_per_minute: rate,
        apply_existing,
    })
}

async fn load(st: &AppState, raw: &str) -> Result<Channel, ApiError> {
    let id = parse_id(raw)?;
    st.0.db.channel(id).await?.ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            format!("notification {id} not found"),
        )
    })
}

pub async fn list(State(st): State<AppState>) -> ApiResult {
    let channels = st.0.db.channels().await?;
    ok("", channels.iter().map(channel_json).collect::<Vec<_>>())
}

pub async fn create(State(st): State<AppState>, JsonBody(body): JsonBody) -> ApiResult {
    let ch = input(body, None)?;
    let c = st.0.db.create_channel(&ch).await?;
    tracing::info!(notification = c.id, provider = %c.kind, "notification channel created");
    Ok((
        StatusCode::CREATED,
        Json(json!({"ok": true, "msg": "Saved.", "id": c.id, "data": channel_json(&c)})),
    )
        .into_response())
}

pub async fn get_one(State(st): State<AppState>, Path(raw): Path<String>) -> ApiResult {
    ok("", channel_json(&load(&st, &raw).await?))
}

pub async fn update(
    State(st): State<AppState>,
    Path(raw): Path<String>,
    JsonBody(body): JsonBody,
) -> ApiResult {
    let old = load(&st, &raw).await?;
    let ch = input(body, Some(&old))?;
    let c = st.0.db.update_channel(old.id, &ch).await?;
    ok("Saved.", channel_json(&c))
}

pub async fn delete(State(st): State<AppState>, Path(raw): Path<String>) -> ApiResult {
    let id = parse_id(&raw)?;
    st.0.db.delete_channel(id).await?;
    ok("Deleted.", json!({"id": id}))
}

/// Sends channel `c` a test message now: the receiver's answer, or why it
/// failed (the API's test and the dashboard's both).
pub(crate) async fn send_test(st: &AppState, c: &Channel) -> Result<String, ApiError> {
    let event = Event::test(now_ms(), st.0.public_url.as_deref());
    let out = providers::render(&c.kind, &c.config, &event).ok_or_else(|| {
        ApiError::field(
            StatusCode::BAD_REQUEST,
            "type",
            format!("unknown provider '{}'", c.kind),
        )
    })?;
    send::deliver(&send::client(), &out, &event.event_id)
        .await
        .map_err(|e| ApiError::new(StatusCode::BAD_GATEWAY, e.to_string()))
}

/// Sends a test message now and answers with the provider's result.
pub async fn test(State(st): State<AppState>, Path(raw): Path<String>) -> ApiResult {
    let c = load(&st, &raw).await?;
    let line = send_test(&st, &c).await?;
    ok("Sent Successfully.", json!({"result": line}))
}

/// Most deliveries one call lists.
pub(crate) const DELIVERIES_SHOWN: i64 = 100;

pub async fn deliveries(State(st): State<AppState>, Path(raw): Path<String>) -> ApiResult {
    let c = load(&st, &raw).await?;
    ok("", st.0.db.deliveries(c.id, DELIVERIES_SHOWN).await?)
}
