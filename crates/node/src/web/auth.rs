//! First-start setup, login (its first step) and logout.
//!
//! `/setup` exists only while there is no account; with `PICKET_API_TOKEN`
//! set it also asks for that token, so a fresh deployment on a public
//! address cannot be claimed by a stranger. A failed login answers the same
//! for an unknown name and a wrong password (and costs the same time), and
//! failures are limited per account name and per client address.

use super::layout;
use super::login::{blocking, count_failure, count_success, limiter_keys, refused, safe_next};
use super::{
    CsrfForm, PRE_CSRF_COOKIE, PageError, PageResult, Viewer, check_csrf, client_addr, see_other,
    set_cookie,
};
use crate::api::{AppState, SESSION_COOKIE, cookie};
use axum::Form;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use picket_shared::accounts::{self, SESSION_MAX_MS};
use picket_shared::auth::{ct_eq, generate_secret};
use picket_shared::now_ms;
use serde::Deserialize;
use std::net::SocketAddr;

/// The double-submit token of a form shown before login: the cookie's when
/// the browser has one, else a new one (set with the page).
fn pre_token(headers: &HeaderMap) -> (String, bool) {
    match cookie(headers, PRE_CSRF_COOKIE) {
        Some(t) if t.len() >= 32 && t.len() <= 128 => (t.to_owned(), false),
        _ => (generate_secret(), true),
    }
}

/// Answers `body` and sets the double-submit cookie when it is new.
fn with_pre_token(
    st: &AppState,
    status: StatusCode,
    token: &str,
    fresh: bool,
    body: Markup,
) -> Response {
    let mut r = (status, body).into_response();
    if fresh {
        r.headers_mut().append(
            header::SET_COOKIE,
            set_cookie(st, PRE_CSRF_COOKIE, token, 3600),
        );
    }
    r
}

/// Whether a pre-login form's token matches its cookie.
fn pre_token_ok(headers: &HeaderMap, form: &str) -> bool {
    cookie(headers, PRE_CSRF_COOKIE).is_some_and(|c| !form.is_empty() && ct_eq(c, form))
}

#[derive(Deserialize, Default)]
pub struct SetupForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    confirm: String,
    #[serde(default)]
    token: String,
}

fn setup_markup(st: &AppState, csrf: &str, f: &SetupForm, errors: &[(&str, String)]) -> Markup {
    let err = |field: &str| {
        html! { @for (_, m) in errors.iter().filter(|(k, _)| *k == field) { div.field-error { (m) } } }
    };
    let invalid = |field: &str| errors.iter().any(|(k, _)| *k == field).then_some("true");
    layout::bare(
        "Set up",
        html! {
            h1 { "Welcome to Picket" }
            p.muted { "Create the administrator account. This page disappears once it exists." }
            form method="post" action="/setup" novalidate {
                input type="hidden" name="csrf" value=(csrf);
                @if st.0.bootstrap.is_set() {
                    label for="token" { "Bootstrap token" }
                    input #token type="password" name="token" autocomplete="off" required aria-invalid=[invalid("token")];
                    div.hint { "The value of PICKET_API_TOKEN this cluster was started with." }
                    (err("token"))
                }
                label for="username" { "Username" }
                input #username type="text" name="username" value=(f.username) autocomplete="username" required autofocus aria-invalid=[invalid("username")];
                (err("username"))
                label for="password" { "Password" }
                input #password type="password" name="password" autocomplete="new-password" required aria-invalid=[invalid("password")];
                div.hint { "At least 10 characters mixing three of lower case, upper case, digits and symbols, or 16 of any kind." }
                (err("password"))
                label for="confirm" { "Repeat the password" }
                input #confirm type="password" name="confirm" autocomplete="new-password" required aria-invalid=[invalid("confirm")];
                (err("confirm"))
                p { button.primary type="submit" { "Create account" } }
            }
        },
    )
}

pub async fn setup_page(State(st): State<AppState>, headers: HeaderMap) -> PageResult {
    if st.0.db.account_count().await? > 0 {
        return Ok(see_other("/login"));
    }
    let (token, fresh) = pre_token(&headers);
    let body = setup_markup(&st, &token, &SetupForm::default(), &[]);
    Ok(with_pre_token(&st, StatusCode::OK, &token, fresh, body))
}

pub async fn setup(
    State(st): State<AppState>,
    headers: HeaderMap,
    Form(f): Form<SetupForm>,
) -> PageResult {
    if st.0.db.account_count().await? > 0 {
        return Ok(see_other("/login"));
    }
    if !pre_token_ok(&headers, &f.csrf) {
        return Err(PageError::expired());
    }
    let mut errors = Vec::new();
    if st.0.bootstrap.is_set() && !st.0.bootstrap.matches(&f.token) {
        errors.push(("token", "is not this cluster's bootstrap token".to_owned()));
    }
    if let Err(m) = accounts::check_username(&f.username) {
        errors.push(("username", m));
    }
    if let Err(m) = accounts::check_password(&f.username, &f.password) {
        errors.push(("password", m));
    } else if f.password != f.confirm {
        errors.push(("confirm", "does not match the password".to_owned()));
    }
    if !errors.is_empty() {
        let body = setup_markup(&st, &f.csrf, &f, &errors);
        return Ok((StatusCode::BAD_REQUEST, body).into_response());
    }
    let password = f.password.clone();
    let hash = blocking(move || accounts::hash_password(&password)).await;
    let Some(id) = st.0.db.create_first_account(&f.username, &hash).await? else {
        // Someone else finished setup first.
        return Ok(see_other("/login"));
    };
    tracing::info!(account = id, username = %f.username, "administrator account created");
    start_session(&st, id, "/").await
}

/// Opens a session for `account` and sends the browser to `to`.
async fn start_session(st: &AppState, account: i64, to: &str) -> PageResult {
    let s = st.0.db.create_session(account).await?;
    let mut r = see_other(to);
    let h = r.headers_mut();
    h.append(
        header::SET_COOKIE,
        set_cookie(st, SESSION_COOKIE, &s.token, SESSION_MAX_MS / 1000),
    );
    h.append(header::SET_COOKIE, set_cookie(st, PRE_CSRF_COOKIE, "", 0));
    Ok(r)
}

#[derive(Deserialize, Default)]
pub struct LoginQuery {
    next: Option<String>,
}

#[derive(Deserialize, Default)]
pub struct LoginForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    next: String,
}

fn login_markup(csrf: &str, username: &str, next: &str, error: Option<&str>) -> Markup {
    layout::bare(
        "Log in",
        html! {
            h1 { "Log in" }
            @if let Some(e) = error { div.alert.error role="alert" { (e) } }
            form method="post" action="/login" {
                input type="hidden" name="csrf" value=(csrf);
                input type="hidden" name="next" value=(next);
                label for="username" { "Username" }
                input #username type="text" name="username" value=(username) autocomplete="username" required autofocus;
                label for="password" { "Password" }
                input #password type="password" name="password" autocomplete="current-password" required;
                p { button.primary type="submit" { "Log in" } }
            }
        },
    )
}

pub async fn login_page(
    State(st): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<LoginQuery>,
) -> PageResult {
    if st.0.db.account_count().await? == 0 {
        return Ok(see_other("/setup"));
    }
    let (token, fresh) = pre_token(&headers);
    let next = safe_next(q.next.as_deref().unwrap_or("/"));
    let body = login_markup(&token, "", next, None);
    Ok(with_pre_token(&st, StatusCode::OK, &token, fresh, body))
}

/// What a failed login answers, whatever failed.
const LOGIN_FAILED: &str = "Wrong username or password.";

pub async fn login(
    State(st): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(f): Form<LoginForm>,
) -> PageResult {
    if !pre_token_ok(&headers, &f.csrf) {
        return Err(PageError::expired());
    }
    let next = safe_next(&f.next).to_owned();
    let now = now_ms();
    let keys = limiter_keys(&f.username, &client_addr(&headers, peer));
    if let Some(r) = refused(&st, &keys, now, |msg| {
        login_markup(&f.csrf, &f.username, &next, Some(msg))
    }) {
        return Ok(r);
    }
    let account = st.0.db.account_by_name(&f.username).await?;
    let hash = account.as_ref().filter(|a| a.active).map_or_else(
        || accounts::decoy_hash().to_owned(),
        |a| a.password_hash.clone(),
    );
    let password = f.password.clone();
    let matches = blocking(move || accounts::verify_password(&password, &hash)).await;
    match account.filter(|a| a.active && matches) {
        // The password was right; the limiter clears once the code is too.
        Some(a) if a.twofa => super::twofa::begin(&st, a.id, &next).await,
        Some(a) => {
            count_success(&st, &keys);
            tracing::info!(account = a.id, "login");
            start_session(&st, a.id, &next).await
        }
        None => {
            count_failure(&st, &keys, now);
            tracing::info!(username = %f.username, "failed login");
            let body = login_markup(&f.csrf, &f.username, &next, Some(LOGIN_FAILED));
            Ok((StatusCode::UNAUTHORIZED, body).into_response())
        }
    }
}

pub async fn logout(
    State(st): State<AppState>,
    Viewer(session): Viewer,
    headers: HeaderMap,
    Form(f): Form<CsrfForm>,
) -> PageResult {
    check_csrf(&session, Some(&f.csrf))?;
    if let Some(token) = cookie(&headers, SESSION_COOKIE) {
        st.0.db.end_session(token).await?;
    }
    let mut r = see_other("/login");
    r.headers_mut()
        .append(header::SET_COOKIE, set_cookie(&st, SESSION_COOKIE, "", 0));
    Ok(r)
}
