//! The dashboard: server-rendered pages (maud, escaped by construction)
//! served by every node under `/`, so the balancer may send a browser to any
//! of them. Sessions live in the database, so a login on one node is a
//! login on all. The stylesheet and the small script are files of this
//! crate, embedded in the binary; every page works without the script
//! except live updates.
//!
//! Every form carries a CSRF token: the session's once logged in; before
//! that (login, setup) a double-submit token, the same random value in a
//! cookie and in the form.

mod account;
mod auth;
mod board;
mod channels;
mod cluster;
mod form;
mod keys;
mod layout;
mod login;
mod monitor;
mod twofa;

use crate::api::{AppState, SESSION_COOKIE, cookie};
use axum::Router;
use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use picket_shared::db::{DbError, Session};
use picket_shared::now_ms;

/// The cookie holding the double-submit CSRF token of the login and setup forms.
const PRE_CSRF_COOKIE: &str = "picket_csrf";

/// The pages' routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(board::page))
        .route("/setup", get(auth::setup_page).post(auth::setup))
        .route("/login", get(auth::login_page).post(auth::login))
        .route("/login/2fa", get(twofa::code_page).post(twofa::code))
        .route("/logout", post(auth::logout))
        .route("/account/2fa", get(twofa::setup_page))
        .route("/account/2fa/start", post(twofa::start))
        .route("/account/2fa/enable", post(twofa::enable))
        .route("/account/2fa/disable", post(twofa::disable))
        .route("/account", get(account::page))
        .route("/account/password", post(account::change_password))
        .route("/monitors/new", get(form::new_page).post(form::create))
        .route("/monitors/{id}", get(monitor::page))
        .route(
            "/monitors/{id}/edit",
            get(form::edit_page).post(form::update),
        )
        .route("/monitors/{id}/pause", post(monitor::pause))
        .route("/monitors/{id}/resume", post(monitor::resume))
        .route(
            "/monitors/{id}/delete",
            get(monitor::delete_page).post(monitor::delete),
        )
        .route("/cluster", get(cluster::page))
        .route("/cluster/action", post(cluster::action))
        .route("/channels", get(channels::list))
        .route(
            "/channels/new",
            get(channels::new_page).post(channels::create),
        )
        .route("/channels/{id}", get(channels::page))
        .route(
            "/channels/{id}/edit",
            get(channels::edit_page).post(channels::update),
        )
        .route("/channels/{id}/test", post(channels::test))
        .route(
            "/channels/{id}/delete",
            get(channels::delete_page).post(channels::delete),
        )
        .route("/keys", get(keys::page).post(keys::create))
        .route("/keys/{id}/revoke", post(keys::revoke))
        .route("/static/{file}", get(asset))
}

/// A page's failure: a database problem or a missing thing, shown as a page.
pub struct PageError(StatusCode, String);

impl From<DbError> for PageError {
    fn from(e: DbError) -> Self {
        match e {
            DbError::NotFound(what) => {
                PageError(StatusCode::NOT_FOUND, format!("{what} not found"))
            }
            DbError::Unavailable(_) => PageError(
                StatusCode::SERVICE_UNAVAILABLE,
                "The database cannot be reached just now; try again in a moment.".into(),
            ),
            other => {
                tracing::error!(cause = %other, "page failed");
                PageError(StatusCode::INTERNAL_SERVER_ERROR, other.to_string())
            }
        }
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let title = self.0.canonical_reason().unwrap_or("Error");
        let body = layout::bare(
            title,
            maud::html! {
                h1 { (title) }
                p { (self.1) }
                p { a href="/" { "Back to the dashboard" } }
            },
        );
        (self.0, body).into_response()
    }
}

pub type PageResult = Result<Response, PageError>;

/// Who is looking, as an extractor: the session of the request's cookie.
/// Without one, the request is answered by a redirect to `/setup` (before
/// there is any account) or to `/login`, which comes back to the page asked
/// for (to `/` after a form).
pub struct Viewer(pub Session);

impl FromRequestParts<AppState> for Viewer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, Response> {
        let back = if parts.method == axum::http::Method::GET {
            parts.uri.path_and_query().map_or("/", |p| p.as_str())
        } else {
            "/"
        };
        viewer(st, &parts.headers, back).await.map(Viewer)
    }
}

async fn viewer(st: &AppState, headers: &HeaderMap, path: &str) -> Result<Session, Response> {
    let session = match cookie(headers, SESSION_COOKIE) {
        Some(token) => match st.0.db.session(token, now_ms()).await {
            Ok(s) => s,
            Err(e) => return Err(PageError::from(e).into_response()),
        },
        None => None,
    };
    if let Some(s) = session {
        return Ok(s);
    }
    match st.0.db.account_count().await {
        Ok(0) => Err(Redirect::to("/setup").into_response()),
        Ok(_) => Err(Redirect::to(&format!("/login?next={}", encode(path))).into_response()),
        Err(e) => Err(PageError::from(e).into_response()),
    }
}

/// A form that carries only its CSRF token (a button: pause, delete, …).
#[derive(serde::Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    pub csrf: String,
}

/// A form's CSRF token must be the session's; otherwise the form is refused
/// (403) and nothing is done.
fn check_csrf(session: &Session, form_token: Option<&str>) -> Result<(), PageError> {
    if form_token.is_some_and(|t| picket_shared::auth::ct_eq(t, &session.csrf)) {
        Ok(())
    } else {
        Err(PageError::expired())
    }
}

impl PageError {
    /// A form whose CSRF token did not match.
    fn expired() -> PageError {
        PageError(
            StatusCode::FORBIDDEN,
            "This form has expired: its security token did not match. Go back, reload the page \
             and send it again."
                .into(),
        )
    }
}

/// Percent-encodes a query value.
pub fn encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// A `Set-Cookie` value with the flags every Picket cookie carries:
/// `HttpOnly`, `SameSite=Lax`, `Path=/`, and `Secure` when the public URL is
/// https. `max_age` 0 deletes it.
fn set_cookie(st: &AppState, name: &str, value: &str, max_age_secs: i64) -> HeaderValue {
    let secure =
        st.0.public_url
            .as_deref()
            .is_some_and(|u| u.starts_with("https://"));
    let v = format!(
        "{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age_secs}{}",
        if secure { "; Secure" } else { "" }
    );
    HeaderValue::from_str(&v).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// A redirect after a successful form (303: the browser follows with GET).
fn see_other(to: &str) -> Response {
    Redirect::to(to).into_response()
}

/// The embedded stylesheet and script, cached for a day (their URLs carry
/// the version, so an upgrade is fetched at once).
async fn asset(Path(file): Path<String>) -> Response {
    let (body, kind) = match file.as_str() {
        "app.css" => (
            include_str!("../../assets/app.css"),
            "text/css; charset=utf-8",
        ),
        "app.js" => (
            include_str!("../../assets/app.js"),
            "text/javascript; charset=utf-8",
        ),
        _ => return (StatusCode::NOT_FOUND, "no such file").into_response(),
    };
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        body,
    )
        .into_response()
}

use crate::api::guard::client_addr;

/// Epoch ms as an RFC 3339 instant, UTC (pages show it; the script turns it
/// into the reader's local time).
fn iso(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

/// Epoch ms as a time of day, UTC (a recent beat's tooltip).
fn clock(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%H:%M:%S UTC").to_string())
        .unwrap_or_default()
}

/// Epoch ms as text a person reads, UTC.
fn human(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_default()
}
