//! `/api/v1/api-keys`: API keys with their scopes (admin only). A new
//! key's token is in the answer to its creation and nowhere else; only its
//! hash is stored.

use super::{ApiError, ApiResult, AppState, JsonBody, body_object, ok, parse_id, text_field};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use picket_shared::auth::Scope;
use picket_shared::db::ApiKey;
use picket_shared::monitor::FieldError;
use serde_json::{Value, json};

/// Longest key name.
pub const NAME_MAX: usize = 100;

fn key_json(k: &ApiKey) -> Value {
    json!({"id": k.id, "name": k.name, "scope": k.scope.as_str(), "active": k.active,
        "created_at": k.created_at, "expires_at": k.expires_at})
}

pub async fn list(State(st): State<AppState>) -> ApiResult {
    let keys = st.0.db.api_keys().await?;
    ok("", keys.iter().map(key_json).collect::<Vec<_>>())
}

/// `{name, scope}` (scope `read`, `write` or `admin`; default `read`, the
/// least a key may do).
pub async fn create(State(st): State<AppState>, JsonBody(body): JsonBody) -> ApiResult {
    let m = body_object(&body)?;
    let mut errs = Vec::new();
    let name = text_field(m, "name", &mut errs).unwrap_or_default();
    if name.is_empty() {
        errs.push(FieldError::new("name", "is required"));
    } else if name.chars().count() > NAME_MAX || name.chars().any(char::is_control) {
        errs.push(FieldError::new(
            "name",
            format!("must be at most {NAME_MAX} characters, without control characters"),
        ));
    }
    let scope = match text_field(m, "scope", &mut errs) {
        None => Some(Scope::Read),
        Some(s) => Scope::parse(&s).or_else(|| {
            errs.push(FieldError::new("scope", "must be read, write or admin"));
            None
        }),
    };
    let (Some(scope), true) = (scope, errs.is_empty()) else {
        return Err(ApiError::invalid(errs));
    };
    let (id, token) = st.0.db.create_api_key(&name, scope).await?;
    tracing::info!(key = id, %scope, "API key created");
    Ok((
        StatusCode::CREATED,
        [(axum::http::header::CACHE_CONTROL, "no-store")],
        Json(json!({"ok": true, "msg": "Key created: the token is shown only this once.",
            "data": {"id": id, "name": name, "scope": scope.as_str(), "active": true, "token": token}})),
    )
        .into_response())
}

pub async fn revoke(State(st): State<AppState>, Path(raw): Path<String>) -> ApiResult {
    let id = parse_id(&raw)?;
    st.0.db.revoke_api_key(id).await?;
    tracing::info!(key = id, "API key revoked");
    ok("Revoked.", json!({"id": id}))
}
