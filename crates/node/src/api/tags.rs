//! `/api/v1/tags*`: tags (Uptime Kuma's `name` and `color`). A monitor takes
//! its tags on create and update (`tags: [{tag_id | name, value}]`).

use super::{ApiError, ApiResult, AppState, JsonBody, body_object, ok, parse_id, text_field};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use picket_shared::db::Tag;
use picket_shared::db::tags::{check_tag_color, check_tag_name};
use picket_shared::monitor::FieldError;
use serde_json::{Value, json};

/// The tag a body describes, `old` filling what it leaves out.
fn input(body: &Value, old: Option<&Tag>) -> Result<(String, String), ApiError> {
    let m = body_object(body)?;
    let mut errs = Vec::new();
    let text = |k: &str, errs: &mut Vec<FieldError>| text_field(m, k, errs);
    let name = text("name", &mut errs).or_else(|| old.map(|t| t.name.clone()));
    let color = text("color", &mut errs).or_else(|| old.map(|t| t.color.clone()));
    let name = match name {
        None => {
            errs.push(FieldError::new("name", "is required"));
            String::new()
        }
        Some(n) => {
            if let Err(e) = check_tag_name(&n) {
                errs.push(FieldError::new("name", e));
            }
            n
        }
    };
    let color = match color.as_deref().map(check_tag_color) {
        None => {
            errs.push(FieldError::new("color", "is required"));
            String::new()
        }
        Some(Err(e)) => {
            errs.push(FieldError::new("color", e));
            String::new()
        }
        Some(Ok(c)) => c,
    };
    if errs.is_empty() {
        Ok((name, color))
    } else {
        Err(ApiError::invalid(errs))
    }
}

async fn load(st: &AppState, raw: &str) -> Result<Tag, ApiError> {
    let id = parse_id(raw)?;
    st.0.db
        .tag(id)
        .await?
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("tag {id} not found")))
}

pub async fn list(State(st): State<AppState>) -> ApiResult {
    ok("", st.0.db.tags().await?)
}

pub async fn create(State(st): State<AppState>, JsonBody(body): JsonBody) -> ApiResult {
    let (name, color) = input(&body, None)?;
    let t = st.0.db.create_tag(&name, &color).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"ok": true, "msg": "Added Successfully.", "data": t})),
    )
        .into_response())
}

pub async fn get_one(State(st): State<AppState>, Path(raw): Path<String>) -> ApiResult {
    ok("", load(&st, &raw).await?)
}

pub async fn update(
    State(st): State<AppState>,
    Path(raw): Path<String>,
    JsonBody(body): JsonBody,
) -> ApiResult {
    let old = load(&st, &raw).await?;
    let (name, color) = input(&body, Some(&old))?;
    ok("Saved.", st.0.db.update_tag(old.id, &name, &color).await?)
}

pub async fn delete(State(st): State<AppState>, Path(raw): Path<String>) -> ApiResult {
    let id = parse_id(&raw)?;
    st.0.db.delete_tag(id).await?;
    ok("Deleted Successfully.", json!({"id": id}))
}
