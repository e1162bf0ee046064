//! What the login steps share: the failed-login limiter's keys and its
//! answer, the one place password hashing runs, and where a login may
//! send the browser next.

use crate::api::AppState;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::Markup;

/// Runs argon2 off the async threads.
pub(super) async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f)
        .await
        .expect("password hashing does not panic")
}

/// Only a local path (`/…`, not `//host`) is followed after login.
pub(super) fn safe_next(next: &str) -> &str {
    if next.starts_with('/') && !next.starts_with("//") && !next.contains('\\') {
        next
    } else {
        "/"
    }
}

/// The limiter's keys for a login attempt: the account name and the
/// client's address.
pub(super) fn limiter_keys(username: &str, addr: &str) -> [String; 2] {
    [
        format!("account:{}", username.to_lowercase()),
        format!("addr:{addr}"),
    ]
}

/// The answer while any of `keys` is locked out (429 with Retry-After),
/// the page drawn by `page` around the message.
pub(super) fn refused(
    st: &AppState,
    keys: &[String],
    now: i64,
    page: impl FnOnce(&str) -> Markup,
) -> Option<Response> {
    let ms = {
        let limiter = st.0.logins.lock().expect("limiter lock");
        keys.iter().find_map(|k| limiter.check(k, now).err())
    }?;
    let minutes = (ms + 59_999) / 60_000;
    let msg = format!(
        "Too many failed logins. Try again in {minutes} minute{}.",
        if minutes == 1 { "" } else { "s" }
    );
    let mut r = (StatusCode::TOO_MANY_REQUESTS, page(&msg)).into_response();
    r.headers_mut()
        .insert(header::RETRY_AFTER, (ms / 1000 + 1).into());
    Some(r)
}

pub(super) fn count_failure(st: &AppState, keys: &[String], now: i64) {
    let mut limiter = st.0.logins.lock().expect("limiter lock");
    keys.iter().for_each(|k| limiter.fail(k, now));
}

pub(super) fn count_success(st: &AppState, keys: &[String]) {
    let mut limiter = st.0.logins.lock().expect("limiter lock");
    keys.iter().for_each(|k| limiter.succeed(k));
}
