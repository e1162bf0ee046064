//! Two-factor sign-in (TOTP, RFC 6238) with recovery codes.
//!
//! Turning it on: `/account/2fa` shows a new secret (and its `otpauth://`
//! link for an authenticator app); a code from the app turns it on and
//! shows ten recovery codes, once. Logging in with it on: after the
//! password, the browser holds a waiting session (cookie `picket_2fa`,
//! five minutes) that opens nothing until `/login/2fa` gets a code or an
//! unused recovery code. A code is good once (the last accepted time step
//! is kept in the database, so two nodes cannot both take it), and wrong
//! codes count against the failed-login limiter like wrong passwords.

use super::layout::{self, Nav};
use super::{
    CsrfForm, PageError, PageResult, Viewer, check_csrf, client_addr, see_other, set_cookie,
};
use crate::api::{AppState, SESSION_COOKIE, cookie};
use axum::Form;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use picket_shared::accounts::{self, SESSION_MAX_MS};
use picket_shared::db::{Account, Session};
use picket_shared::{now_ms, totp};
use serde::Deserialize;
use std::net::SocketAddr;

/// The cookie of a login waiting for its second factor.
const PENDING_COOKIE: &str = "picket_2fa";

/// After a right password with two-factor on: a waiting session, and the
/// code page.
pub async fn begin(st: &AppState, account: i64, next: &str) -> PageResult {
    let s = st.0.db.create_pending_session(account).await?;
    let mut r = see_other(&format!("/login/2fa?next={}", super::encode(next)));
    r.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(
            st,
            PENDING_COOKIE,
            &s.token,
            picket_shared::db::accounts::PENDING_MS / 1000,
        ),
    );
    Ok(r)
}

fn code_markup(csrf: &str, next: &str, error: Option<&str>) -> Markup {
    layout::bare(
        "Two-factor code",
        html! {
            h1 { "Enter your code" }
            p.muted { "Open your authenticator app and type the six-digit code for Picket, or one of your recovery codes." }
            @if let Some(e) = error { div.alert.error role="alert" { (e) } }
            form method="post" action="/login/2fa" {
                input type="hidden" name="csrf" value=(csrf);
                input type="hidden" name="next" value=(next);
                label for="code" { "Code" }
                input #code type="text" name="code" inputmode="numeric" autocomplete="one-time-code" required autofocus;
                p { button.primary type="submit" { "Log in" } }
            }
            p { a href="/login" { "Start again" } }
        },
    )
}

#[derive(Deserialize, Default)]
pub struct NextQuery {
    next: Option<String>,
}

/// The waiting login of this request, if any.
async fn pending(
    st: &AppState,
    headers: &HeaderMap,
) -> Result<Option<(String, Account, String)>, PageError> {
    let Some(token) = cookie(headers, PENDING_COOKIE) else {
        return Ok(None);
    };
    Ok(st
        .0
        .db
        .pending_session(token, now_ms())
        .await?
        .map(|(a, csrf)| (token.to_owned(), a, csrf)))
}

pub async fn code_page(
    State(st): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<NextQuery>,
) -> PageResult {
    let Some((_, _, csrf)) = pending(&st, &headers).await? else {
        return Ok(see_other("/login"));
    };
    let next = super::login::safe_next(q.next.as_deref().unwrap_or("/"));
    Ok(code_markup(&csrf, next, None).into_response())
}

#[derive(Deserialize)]
pub struct CodeForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    code: String,
    #[serde(default)]
    next: String,
}

/// Whether `code` (six digits, or a recovery code) is good for `a` now;
/// a good one is used up.
async fn accept(st: &AppState, a: &Account, code: &str) -> Result<bool, PageError> {
    let now = now_ms();
    let digits = code.trim().replace(' ', "");
    if digits.len() == 6 && digits.bytes().all(|b| b.is_ascii_digit()) {
        let Some(secret) = a.twofa_secret.as_deref() else {
            return Ok(false);
        };
        return Ok(match totp::verify(secret, &digits, now, a.twofa_last) {
            Some(step) => st.0.db.accept_totp_step(a.id, step).await?,
            None => false,
        });
    }
    Ok(st.0.db.use_recovery_code(a.id, code, now).await?)
}

pub async fn code(
    State(st): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(f): Form<CodeForm>,
) -> PageResult {
    let Some((token, account, csrf)) = pending(&st, &headers).await? else {
        return Ok(see_other("/login"));
    };
    if !picket_shared::auth::ct_eq(&f.csrf, &csrf) {
        return Err(PageError::expired());
    }
    let next = super::login::safe_next(&f.next).to_owned();
    let now = now_ms();
    let keys = super::login::limiter_keys(&account.username, &client_addr(&headers, peer));
    if let Some(r) =
        super::login::refused(&st, &keys, now, |msg| code_markup(&csrf, &next, Some(msg)))
    {
        return Ok(r);
    }
    if !accept(&st, &account, &f.code).await? {
        super::login::count_failure(&st, &keys, now);
        tracing::info!(account = account.id, "wrong two-factor code");
        let body = code_markup(
            &csrf,
            &next,
            Some("That code is not right, or was used already."),
        );
        return Ok((StatusCode::UNAUTHORIZED, body).into_response());
    }
    if !st.0.db.verify_session(&token, now).await? {
        return Ok(see_other("/login"));
    }
    super::login::count_success(&st, &keys);
    tracing::info!(account = account.id, "login with two-factor");
    let mut r = see_other(&next);
    let h = r.headers_mut();
    h.append(
        header::SET_COOKIE,
        set_cookie(&st, SESSION_COOKIE, &token, SESSION_MAX_MS / 1000),
    );
    h.append(header::SET_COOKIE, set_cookie(&st, PENDING_COOKIE, "", 0));
    Ok(r)
}

/// Starts setup: a new secret, shown on `/account/2fa`.
pub async fn start(
    State(st): State<AppState>,
    Viewer(session): Viewer,
    Form(f): Form<CsrfForm>,
) -> PageResult {
    check_csrf(&session, Some(&f.csrf))?;
    let a = super::account::account_of(&st, &session).await?;
    if !a.twofa {
        st.0.db.start_two_factor(a.id, &totp::new_secret()).await?;
    }
    Ok(see_other("/account/2fa"))
}

fn setup_markup(session: &Session, secret: &str, error: Option<&str>) -> Markup {
    let uri = totp::otpauth_uri("Picket", &session.username, secret);
    let grouped: Vec<String> = secret
        .as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect();
    layout::page(
        "Two-factor setup",
        session,
        Nav::Account,
        html! {
            h1 { "Set up two-factor sign-in" }
            div.panel style="max-width:560px" {
                ol {
                    li { "In your authenticator app, add an account with this key (or open the link on your phone):"
                        div.key-once style="margin:8px 0" { (grouped.join(" ")) }
                        a href=(uri) { "Open in an authenticator app" }
                    }
                    li { "Type the six-digit code it shows." }
                }
                @if let Some(e) = error { div.alert.error role="alert" { (e) } }
                form method="post" action="/account/2fa/enable" {
                    input type="hidden" name="csrf" value=(session.csrf);
                    label for="code" { "Code" }
                    input #code type="text" name="code" inputmode="numeric" autocomplete="one-time-code" required autofocus;
                    p { button.primary type="submit" { "Turn on" } }
                }
            }
        },
    )
}

pub async fn setup_page(State(st): State<AppState>, Viewer(session): Viewer) -> PageResult {
    let a = super::account::account_of(&st, &session).await?;
    match (&a.twofa_secret, a.twofa) {
        (Some(secret), false) => Ok(no_store(
            setup_markup(&session, secret, None).into_response(),
        )),
        _ => Ok(see_other("/account")),
    }
}

fn no_store(mut r: Response) -> Response {
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    r
}

#[derive(Deserialize)]
pub struct EnableForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    code: String,
}

pub async fn enable(
    State(st): State<AppState>,
    Viewer(session): Viewer,
    Form(f): Form<EnableForm>,
) -> PageResult {
    check_csrf(&session, Some(&f.csrf))?;
    let a = super::account::account_of(&st, &session).await?;
    let (Some(secret), false) = (a.twofa_secret.as_deref(), a.twofa) else {
        return Ok(see_other("/account"));
    };
    let Some(step) = totp::verify(secret, &f.code, now_ms(), a.twofa_last) else {
        let body = setup_markup(
            &session,
            secret,
            Some(
                "That code is not right: check the key and the phone's clock, and try the next code.",
            ),
        );
        return Ok(no_store((StatusCode::BAD_REQUEST, body).into_response()));
    };
    let codes = totp::new_recovery_codes();
    st.0.db.enable_two_factor(a.id, step, &codes).await?;
    tracing::info!(account = a.id, "two-factor sign-in turned on");
    let body = layout::page(
        "Two-factor is on",
        &session,
        Nav::Account,
        html! {
            h1 { "Two-factor sign-in is on" }
            div.panel style="max-width:560px" {
                p { "Keep these recovery codes somewhere safe. Each logs you in once if you lose your phone. They are not shown again." }
                div.key-once { @for c in &codes { div { (c) } } }
                p { a.button href="/account" { "Done" } }
            }
        },
    );
    Ok(no_store(body.into_response()))
}

#[derive(Deserialize)]
pub struct DisableForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    code: String,
}

pub async fn disable(
    State(st): State<AppState>,
    Viewer(session): Viewer,
    Form(f): Form<DisableForm>,
) -> PageResult {
    check_csrf(&session, Some(&f.csrf))?;
    let a = super::account::account_of(&st, &session).await?;
    let (password, hash) = (f.password.clone(), a.password_hash.clone());
    let password_ok =
        super::login::blocking(move || accounts::verify_password(&password, &hash)).await;
    if !password_ok || !accept(&st, &a, &f.code).await? {
        let err = [("twofa", "The password or the code is not right.".to_owned())];
        return Ok(super::account::account_response(
            &st,
            &session,
            &err,
            false,
            StatusCode::BAD_REQUEST,
        )
        .await);
    }
    st.0.db.disable_two_factor(a.id).await?;
    tracing::info!(account = a.id, "two-factor sign-in turned off");
    Ok(see_other("/account"))
}
