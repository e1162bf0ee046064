//! What stands between an anonymous client and the node: who the client is
//! (its address), how many failed attempts it may make (bad API keys,
//! unknown push tokens), and the optional credentials `/metrics` asks for.

use super::{ApiError, AppState};
use axum::http::{HeaderMap, StatusCode, header};
use picket_shared::accounts::LoginLimiter;
use picket_shared::auth::{self, Bootstrap};
use std::net::SocketAddr;

/// Failed authentications (bad API keys, unknown push tokens) a client
/// address, or one key id, may have per window before it gets 429.
pub const AUTH_FAILURES: u32 = 10;
/// The window of [`AUTH_FAILURES`], ms.
pub const AUTH_WINDOW_MS: i64 = 60_000;

/// A limiter with the API's allowance.
pub fn auth_limiter() -> std::sync::Mutex<LoginLimiter> {
    std::sync::Mutex::new(LoginLimiter::new(AUTH_FAILURES, AUTH_WINDOW_MS))
}

/// The client's address: `X-Real-IP` as the balancer sets it from the
/// connection it accepted, else the peer.
pub fn client_addr(headers: &HeaderMap, peer: SocketAddr) -> String {
    headers
        .get("x-real-ip")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty() && v.len() <= 64)
        .map_or_else(|| peer.ip().to_string(), str::to_owned)
}

/// The peer of a request, as the server recorded it (absent only when a
/// router is driven without a socket).
pub fn peer(ext: &axum::http::Extensions) -> SocketAddr {
    ext.get::<axum::extract::ConnectInfo<SocketAddr>>()
        .map_or(SocketAddr::from(([0, 0, 0, 0], 0)), |c| c.0)
}

/// The limiter keys of one attempt: the client address, and the key id
/// when the token names one (`pk<id>_…`), so one key guessed at from many
/// addresses is held back too.
pub fn attempt_keys(addr: &str, token: Option<&str>) -> Vec<String> {
    let mut keys = vec![format!("addr:{addr}")];
    if let Some((id, _)) = token.and_then(auth::split_token) {
        keys.push(format!("key:{id}"));
    }
    keys
}

/// 429 with `Retry-After` while any of `keys` has used up its failures.
pub fn refuse_if_locked(st: &AppState, keys: &[String], now: i64) -> Result<(), ApiError> {
    let wait = {
        let l = st.0.auth_failures.lock().expect("limiter lock");
        keys.iter().find_map(|k| l.check(k, now).err())
    };
    match wait {
        None => Ok(()),
        Some(ms) => Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "too many failed attempts from this client: try again in {} s",
                ms / 1000 + 1
            ),
        )
        .retry_after(ms / 1000 + 1)),
    }
}

/// Counts a failed attempt against each of `keys`.
pub fn count_failure(st: &AppState, keys: &[String], now: i64) {
    let mut l = st.0.auth_failures.lock().expect("limiter lock");
    keys.iter().for_each(|k| l.fail(k, now));
}

/// The password of a `Basic` `Authorization` value (Uptime Kuma's
/// `/metrics` takes an API key that way, with any user name).
pub fn basic_password(value: &str) -> Option<String> {
    use base64::Engine as _;
    let (scheme, b64) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    text.split_once(':').map(|(_, p)| p.to_owned())
}

/// Whether a request may read `/metrics`: always when no metrics token is
/// set (Prometheus's default, and Kuma's without auth); otherwise with the
/// metrics token or an API key, as `Bearer` or as a Basic password.
pub async fn metrics_allowed(
    st: &AppState,
    metrics_token: &Bootstrap,
    headers: &HeaderMap,
) -> Result<bool, ApiError> {
    if !metrics_token.is_set() {
        return Ok(true);
    }
    let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return Ok(false);
    };
    let secret = basic_password(value).unwrap_or_else(|| auth::token_from_header(value).to_owned());
    if secret.is_empty() {
        return Ok(false);
    }
    Ok(metrics_token.matches(&secret)
        || st.0.bootstrap.matches(&secret)
        || st.0.db.api_key_scope(&secret).await?.is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_passwords() {
        // "prometheus:pk1_abc"
        assert_eq!(
            basic_password("Basic cHJvbWV0aGV1czpwazFfYWJj").as_deref(),
            Some("pk1_abc")
        );
        // ":pw" (Kuma's form: no user name)
        assert_eq!(basic_password("basic OnB3").as_deref(), Some("pw"));
        assert_eq!(basic_password("Bearer abc"), None);
        assert_eq!(basic_password("Basic !!!"), None);
    }

    #[test]
    fn attempts_count_against_the_address_and_the_key_id() {
        assert_eq!(attempt_keys("10.0.0.1", None), ["addr:10.0.0.1"]);
        assert_eq!(
            attempt_keys("10.0.0.1", Some("pk7_xyz")),
            ["addr:10.0.0.1", "key:7"]
        );
    }
}
