//! `/account`: change the password (which ends the account's other
//! sessions) and the two-factor part (its state, the way to set it up or
//! turn it off; the steps themselves are in `twofa`).

use super::layout::{self, Nav};
use super::login::blocking;
use super::{PageError, PageResult, Viewer, check_csrf, see_other};
use crate::api::{AppState, SESSION_COOKIE, cookie};
use axum::Form;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use picket_shared::accounts;
use picket_shared::db::{Account, Session};
use serde::Deserialize;

/// The account page's two-factor part.
async fn section(st: &AppState, session: &Session) -> Result<Markup, PageError> {
    let a = account_of(st, session).await?;
    let left = if a.twofa {
        st.0.db.recovery_codes_left(a.id).await?
    } else {
        0
    };
    Ok(html! {
        div.panel style="max-width:480px;margin-top:16px" {
            h2 style="margin-top:0" { "Two-factor sign-in" }
            @if a.twofa {
                p { (layout::badge(picket_shared::db::State::Up)) " On. " (left) " recovery code" @if left != 1 { "s" } " left." }
                form method="post" action="/account/2fa/disable" {
                    input type="hidden" name="csrf" value=(session.csrf);
                    label for="off-password" { "Password" }
                    input #off-password type="password" name="password" autocomplete="current-password" required;
                    label for="off-code" { "A code from your app" }
                    input #off-code type="text" name="code" inputmode="numeric" autocomplete="one-time-code" required;
                    p { button.danger type="submit" { "Turn off" } }
                }
            } @else {
                p.muted { "Off. With it on, logging in also asks for a code from an authenticator app." }
                form method="post" action="/account/2fa/start" {
                    input type="hidden" name="csrf" value=(session.csrf);
                    button type="submit" { "Set up two-factor sign-in" }
                }
            }
        }
    })
}

pub(super) async fn account_of(st: &AppState, session: &Session) -> Result<Account, PageError> {
    st.0.db
        .account_by_name(&session.username)
        .await?
        .ok_or_else(|| PageError(StatusCode::NOT_FOUND, "account not found".into()))
}

fn account_markup(
    session: &picket_shared::db::Session,
    errors: &[(&str, String)],
    done: bool,
    twofa: Markup,
) -> Markup {
    let err = |field: &str| {
        html! { @for (_, m) in errors.iter().filter(|(k, _)| *k == field) { div.field-error { (m) } } }
    };
    layout::page(
        "Account",
        session,
        Nav::Account,
        html! {
            h1 { "Account" }
            p.muted { "Logged in as " strong { (session.username) } "." }
            div.panel style="max-width:480px" {
                h2 style="margin-top:0" { "Change password" }
                @if done { div.alert.ok role="status" { "Password changed. Your other sessions have been logged out." } }
                form method="post" action="/account/password" {
                    input type="hidden" name="csrf" value=(session.csrf);
                    label for="current" { "Current password" }
                    input #current type="password" name="current" autocomplete="current-password" required;
                    (err("current"))
                    label for="password" { "New password" }
                    input #password type="password" name="password" autocomplete="new-password" required;
                    (err("password"))
                    label for="confirm" { "Repeat the new password" }
                    input #confirm type="password" name="confirm" autocomplete="new-password" required;
                    (err("confirm"))
                    p { button.primary type="submit" { "Change password" } }
                }
            }
            @for (_, m) in errors.iter().filter(|(k, _)| *k == "twofa") {
                div.alert.error role="alert" style="max-width:480px;margin-top:16px" { (m) }
            }
            (twofa)
        },
    )
}

/// The account page with `errors`, answered with `status`.
pub(super) async fn account_response(
    st: &AppState,
    session: &picket_shared::db::Session,
    errors: &[(&str, String)],
    done: bool,
    status: StatusCode,
) -> Response {
    match section(st, session).await {
        Ok(twofa) => (status, account_markup(session, errors, done, twofa)).into_response(),
        Err(e) => e.into_response(),
    }
}

#[derive(Deserialize, Default)]
pub struct AccountQuery {
    changed: Option<String>,
}

pub async fn page(
    State(st): State<AppState>,
    Viewer(session): Viewer,
    Query(q): Query<AccountQuery>,
) -> PageResult {
    Ok(account_response(&st, &session, &[], q.changed.is_some(), StatusCode::OK).await)
}

#[derive(Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    current: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    confirm: String,
}

pub async fn change_password(
    State(st): State<AppState>,
    Viewer(session): Viewer,
    headers: HeaderMap,
    Form(f): Form<PasswordForm>,
) -> PageResult {
    check_csrf(&session, Some(&f.csrf))?;
    let account =
        st.0.db
            .account_by_name(&session.username)
            .await?
            .ok_or_else(|| PageError(StatusCode::NOT_FOUND, "account not found".into()))?;
    let mut errors = Vec::new();
    let (current, hash) = (f.current.clone(), account.password_hash.clone());
    if !blocking(move || accounts::verify_password(&current, &hash)).await {
        errors.push(("current", "is not your current password".to_owned()));
    }
    if let Err(m) = accounts::check_password(&session.username, &f.password) {
        errors.push(("password", m));
    } else if f.password != f.confirm {
        errors.push(("confirm", "does not match the new password".to_owned()));
    }
    if !errors.is_empty() {
        return Ok(account_response(&st, &session, &errors, false, StatusCode::BAD_REQUEST).await);
    }
    let password = f.password.clone();
    let hash = blocking(move || accounts::hash_password(&password)).await;
    let keep = cookie(&headers, SESSION_COOKIE);
    st.0.db.set_password(account.id, &hash, keep).await?;
    tracing::info!(account = account.id, "password changed");
    Ok(see_other("/account?changed=1"))
}
