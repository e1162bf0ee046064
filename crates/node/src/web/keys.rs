//! `/keys`: API keys for scripts and other tools. A new key's token is
//! shown once, on the page that created it; only its hash is stored. A key
//! can be revoked; revoked keys stay listed as such.

use super::layout::{self, Nav};
use super::{CsrfForm, PageError, PageResult, Viewer, check_csrf, human, iso, see_other};
use crate::api::AppState;
use axum::Form;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use maud::{Markup, html};
use picket_shared::db::Session;
use serde::Deserialize;

use crate::api::keys::NAME_MAX;

fn render(
    session: &Session,
    keys: &[picket_shared::db::ApiKey],
    created: Option<(&str, &str)>,
    error: Option<&str>,
) -> Markup {
    layout::page(
        "API keys",
        session,
        Nav::Keys,
        html! {
            h1 { "API keys" }
            p.muted { "A key lets a script or another tool use the API: send it as " code { "Authorization: Bearer <key>" } "." }
            @if let Some((name, token)) = created {
                div.alert.ok role="status" {
                    p style="margin-top:0" { "Key " strong { (name) } " created. Copy it now: it is not shown again." }
                    div.key-once { (token) }
                }
            }
            div.panel style="max-width:560px;margin-bottom:16px" {
                form method="post" action="/keys" {
                    input type="hidden" name="csrf" value=(session.csrf);
                    label for="name" { "New key's name" }
                    input #name type="text" name="name" maxlength=(NAME_MAX) required aria-invalid=[error.map(|_| "true")];
                    @if let Some(e) = error { div.field-error id="err-name" { (e) } }
                    div.hint { "What uses it, e.g. \"deploy pipeline\"." }
                    label for="scope" { "What it may do" }
                    select #scope name="scope" {
                        option value="read" { "read: look only" }
                        option value="write" { "write: also change monitors, channels and tags" }
                        option value="admin" selected { "admin: everything, also nodes and keys" }
                    }
                    p { button.primary type="submit" { "Create key" } }
                }
            }
            @if keys.is_empty() {
                p.muted { "No keys yet." }
            } @else {
                table.list {
                    thead { tr { th { "Name" } th { "Scope" } th { "Created" } th { "State" } th {} } }
                    tbody {
                        @for k in keys {
                            tr {
                                td { (k.name) }
                                td { (k.scope.as_str()) }
                                td.num { time datetime=(iso(k.created_at)) { (human(k.created_at)) } }
                                td { @if k.active { "active" } @else { span.muted { "revoked" } } }
                                td {
                                    @if k.active {
                                        form method="post" action={ "/keys/" (k.id) "/revoke" } style="margin:0" {
                                            input type="hidden" name="csrf" value=(session.csrf);
                                            button.danger type="submit" { "Revoke" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        },
    )
}

pub async fn page(State(st): State<AppState>, Viewer(session): Viewer) -> PageResult {
    let keys = st.0.db.api_keys().await?;
    Ok(render(&session, &keys, None, None).into_response())
}

#[derive(Deserialize)]
pub struct KeyForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    scope: String,
}

pub async fn create(
    State(st): State<AppState>,
    Viewer(session): Viewer,
    Form(f): Form<KeyForm>,
) -> PageResult {
    check_csrf(&session, Some(&f.csrf))?;
    let name = f.name.trim();
    // A form from before scopes existed sends none: what keys were then.
    let scope = match f.scope.as_str() {
        "" => Some(picket_shared::auth::Scope::Admin),
        s => picket_shared::auth::Scope::parse(s),
    };
    let error = if name.is_empty() {
        Some("is required".to_owned())
    } else if name.chars().count() > NAME_MAX || name.chars().any(char::is_control) {
        Some(format!(
            "must be at most {NAME_MAX} characters, without control characters"
        ))
    } else if scope.is_none() {
        Some("the scope must be read, write or admin".to_owned())
    } else {
        None
    };
    let (Some(scope), None) = (scope, &error) else {
        let e = error.unwrap_or_default();
        let keys = st.0.db.api_keys().await?;
        let body = render(&session, &keys, None, Some(&e));
        return Ok((StatusCode::BAD_REQUEST, body).into_response());
    };
    let (id, token) = st.0.db.create_api_key(name, scope).await?;
    tracing::info!(key = id, by = %session.username, "API key created");
    let keys = st.0.db.api_keys().await?;
    let mut r = render(&session, &keys, Some((name, &token)), None).into_response();
    // The token is on this page only: no cache keeps it.
    r.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    Ok(r)
}

pub async fn revoke(
    State(st): State<AppState>,
    Viewer(session): Viewer,
    Path(raw): Path<String>,
    Form(f): Form<CsrfForm>,
) -> PageResult {
    check_csrf(&session, Some(&f.csrf))?;
    let id: i64 = raw
        .parse()
        .map_err(|_| PageError(StatusCode::NOT_FOUND, format!("no key '{raw}'")))?;
    st.0.db.revoke_api_key(id).await?;
    tracing::info!(key = id, by = %session.username, "API key revoked");
    Ok(see_other("/keys"))
}
