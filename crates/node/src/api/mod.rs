//! The node's REST API (axum): Uptime Kuma cluster-fork compatible envelope
//! `{ok, msg, data}`, errors `{ok: false, msg, errors: [{field, msg}]}`.
//! Errors are mapped to status codes in one place, [`ApiError`].

mod events;
pub mod guard;
pub(crate) mod keys;
mod monitors;
mod nodes;
pub(crate) mod notifications;
mod push;
mod tags;

use crate::metrics::Metrics;
use crate::scheduler::{Lease, Scheduler};
use crate::writer::Writer;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use picket_shared::auth::{Bootstrap, Scope, token_from_header};
use picket_shared::db::{Db, DbError};
use picket_shared::monitor::{FieldError, Limits};
use picket_shared::{NodeId, VERSION};
use serde::Serialize;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Largest request body accepted.
pub const MAX_BODY: usize = 1024 * 1024;

/// Everything a handler needs; cheap to clone.
#[derive(Clone)]
pub struct AppState(pub Arc<AppInner>);

pub struct AppInner {
    pub db: Db,
    pub node_id: NodeId,
    pub bootstrap: Bootstrap,
    pub limits: Limits,
    pub metrics: Arc<Metrics>,
    pub sched: Scheduler,
    pub lease: Arc<Lease>,
    pub writer: Writer,
    pub started: Instant,
    /// `PICKET_PUBLIC_URL`: where people reach the cluster (links in messages).
    pub public_url: Option<String>,
    /// Failed logins by account name and by client address.
    pub logins: std::sync::Mutex<picket_shared::accounts::LoginLimiter>,
    /// New beats for the dashboard's live updates.
    pub live: Arc<crate::live::Live>,
    /// Failed API authentications and unknown push tokens, by client
    /// address and key id ([`guard`]).
    pub auth_failures: std::sync::Mutex<picket_shared::accounts::LoginLimiter>,
    /// `PICKET_METRICS_TOKEN`: when set, `/metrics` wants it or an API key.
    pub metrics_token: Bootstrap,
    /// Which addresses checks may reach; a monitor naming a denied literal
    /// address is refused when saved.
    pub egress: picket_shared::egress::EgressPolicy,
}

/// The node's routes: the API's, with `pages` (the dashboard's, which are
/// built on this module and so are handed in rather than named here).
pub fn router(state: AppState, pages: Router<AppState>) -> Router {
    let protected = Router::new()
        .route(
            "/api/v1/monitors",
            get(monitors::list).post(monitors::create),
        )
        .route(
            "/api/v1/monitors/{id}",
            get(monitors::get_one)
                .put(monitors::update)
                .delete(monitors::delete),
        )
        .route(
            "/api/v1/monitors/{id}/heartbeats",
            get(monitors::heartbeats),
        )
        .route("/api/v1/nodes", get(nodes::list).post(nodes::create))
        .route(
            "/api/v1/nodes/{id}",
            get(nodes::get_one).put(nodes::update).delete(nodes::delete),
        )
        .route("/api/v1/nodes/{id}/monitors", get(nodes::monitors))
        .route(
            "/api/v1/notifications",
            get(notifications::list).post(notifications::create),
        )
        .route(
            "/api/v1/notifications/{id}",
            get(notifications::get_one)
                .put(notifications::update)
                .delete(notifications::delete),
        )
        .route(
            "/api/v1/notifications/{id}/test",
            axum::routing::post(notifications::test),
        )
        .route(
            "/api/v1/notifications/{id}/deliveries",
            get(notifications::deliveries),
        )
        .route("/api/v1/events", get(events::stream))
        .route("/api/v1/api-keys", get(keys::list).post(keys::create))
        .route("/api/v1/api-keys/{id}", axum::routing::delete(keys::revoke))
        .route("/api/v1/tags", get(tags::list).post(tags::create))
        .route(
            "/api/v1/tags/{id}",
            get(tags::get_one).put(tags::update).delete(tags::delete),
        )
        .route_layer(middleware::from_fn_with_state(state.clone(), require_key));
    Router::new()
        .route("/api/v1/status", get(status))
        .route("/api/v1/health", get(health))
        .route("/metrics", get(metrics))
        .route("/api/push/{token}", get(push::push).post(push::push))
        .merge(protected)
        .merge(pages)
        .fallback(not_found)
        .layer(middleware::from_fn(envelope_rejections))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .with_state(state)
}

/// The framework's own refusals (405, a path or query that does not
/// parse, a repeated query key, an unreadable form) come as plain text or
/// nothing; this puts them in the API's envelope, naming what was wrong.
async fn envelope_rejections(req: Request, next: Next) -> Response {
    let (method, path) = (req.method().clone(), req.uri().path().to_owned());
    let r = next.run(req).await;
    let plain = r
        .headers()
        .get(header::CONTENT_TYPE)
        .is_none_or(|v| v.as_bytes().starts_with(b"text/plain"));
    if !(r.status().is_client_error() || r.status().is_server_error()) || !plain {
        return r;
    }
    let (parts, body) = r.into_parts();
    let text = axum::body::to_bytes(body, 16 * 1024)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
        .unwrap_or_default();
    let (field, msg) = if parts.status == StatusCode::METHOD_NOT_ALLOWED {
        let allowed = parts
            .headers
            .get(header::ALLOW)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        (
            "method",
            format!("{method} is not allowed on {path} (allowed: {allowed})"),
        )
    } else if text.contains("query string") {
        ("query", text)
    } else if text.contains("form") || text.contains("body") || text.contains("length limit") {
        ("body", text)
    } else if text.to_ascii_lowercase().contains("path") || text.contains("URL") {
        ("path", text)
    } else {
        ("request", text)
    };
    let mut out = ApiError::field(parts.status, field, msg).into_response();
    for name in [header::ALLOW, header::RETRY_AFTER, header::WWW_AUTHENTICATE] {
        if let Some(v) = parts.headers.get(&name) {
            out.headers_mut().insert(name, v.clone());
        }
    }
    out
}

/// A failed request: status, message, and the fields at fault.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub msg: String,
    pub errors: Vec<FieldError>,
    /// `Retry-After`, seconds (429, 503).
    pub retry_after: Option<i64>,
}

impl ApiError {
    pub fn new(status: StatusCode, msg: impl Into<String>) -> Self {
        Self {
            status,
            msg: msg.into(),
            errors: Vec::new(),
            retry_after: None,
        }
    }
    pub fn field(status: StatusCode, field: &str, msg: impl Into<String>) -> Self {
        let msg = msg.into();
        Self {
            msg: format!("{field}: {msg}"),
            errors: vec![FieldError::new(field, msg)],
            ..Self::new(status, "")
        }
    }
    pub fn invalid(errors: Vec<FieldError>) -> Self {
        let names: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        Self {
            msg: format!("invalid fields: {}", names.join(", ")),
            errors,
            ..Self::new(StatusCode::BAD_REQUEST, "")
        }
    }
    /// The same error, telling the client when to try again.
    pub fn retry_after(mut self, secs: i64) -> Self {
        self.retry_after = Some(secs);
        self
    }
}

impl From<DbError> for ApiError {
    fn from(e: DbError) -> Self {
        match e {
            DbError::Unavailable(_) => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
            }
            DbError::NotFound(what) => {
                ApiError::new(StatusCode::NOT_FOUND, format!("{what} not found"))
            }
            DbError::Rejected { field, msg } => {
                ApiError::field(StatusCode::BAD_REQUEST, field, msg)
            }
            DbError::Conflict(msg) => ApiError::new(StatusCode::CONFLICT, msg),
            DbError::Other(_) | DbError::Config(_) => {
                tracing::error!(cause = %e, "request failed");
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut r = (
            self.status,
            Json(json!({"ok": false, "msg": self.msg, "errors": self.errors})),
        )
            .into_response();
        if let Some(secs) = self.retry_after {
            r.headers_mut()
                .insert(header::RETRY_AFTER, secs.max(1).into());
        }
        r
    }
}

pub type ApiResult = Result<Response, ApiError>;

/// `200 {ok: true, msg, data}`.
pub fn ok(msg: &str, data: impl Serialize) -> ApiResult {
    Ok(Json(json!({"ok": true, "msg": msg, "data": data})).into_response())
}

/// A JSON request body, at most [`MAX_BODY`] bytes, whatever its content type.
pub struct JsonBody(pub Value);

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = ApiError;
    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = Bytes::from_request(req, state).await.map_err(|r| {
            if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::field(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "body",
                    format!("exceeds {MAX_BODY} bytes"),
                )
            } else {
                ApiError::field(r.status(), "body", r.body_text())
            }
        })?;
        serde_json::from_slice(&bytes).map(JsonBody).map_err(|e| {
            ApiError::field(
                StatusCode::BAD_REQUEST,
                "body",
                format!("malformed JSON: {e}"),
            )
        })
    }
}

/// A request body's JSON object, or the error naming `body`.
pub fn body_object(body: &Value) -> Result<&serde_json::Map<String, Value>, ApiError> {
    body.as_object()
        .ok_or_else(|| ApiError::invalid(vec![FieldError::new("body", "must be a JSON object")]))
}

/// Field `k` of a body object as trimmed text (`None` when absent or
/// null); anything but a string is noted in `errs`.
pub fn text_field(
    m: &serde_json::Map<String, Value>,
    k: &str,
    errs: &mut Vec<FieldError>,
) -> Option<String> {
    match m.get(k) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.trim().to_owned()),
        Some(_) => {
            errs.push(FieldError::new(k, "must be a string"));
            None
        }
    }
}

/// The cookie that carries a dashboard session's token.
pub const SESSION_COOKIE: &str = "picket_session";
/// The header a session's writes carry its CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// Accepts the bootstrap token or an active API key, or a session cookie
/// (writes with the session's CSRF token in [`CSRF_HEADER`]); 401 or 403
/// otherwise.
async fn require_key(
    State(st): State<AppState>,
    req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(token_from_header)
        .filter(|t| !t.is_empty());
    if let Some(token) = token {
        let now = picket_shared::now_ms();
        let addr = guard::client_addr(req.headers(), guard::peer(req.extensions()));
        let keys = guard::attempt_keys(&addr, Some(token));
        guard::refuse_if_locked(&st, &keys, now)?;
        let scope = if st.0.bootstrap.matches(token) {
            Some(Scope::Admin)
        } else {
            st.0.db.api_key_scope(token).await?
        };
        let Some(scope) = scope else {
            guard::count_failure(&st, &keys, now);
            return Err(ApiError::new(StatusCode::UNAUTHORIZED, "invalid API key"));
        };
        let need = Scope::needed(req.method().as_str(), req.uri().path());
        if scope < need {
            return Err(ApiError::field(
                StatusCode::FORBIDDEN,
                "Authorization",
                format!(
                    "this key's scope is {scope}; {} {} needs {need}",
                    req.method(),
                    req.uri().path()
                ),
            ));
        }
        return Ok(next.run(req).await);
    }
    let Some(cookie) = cookie(req.headers(), SESSION_COOKIE) else {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "missing API key: send Authorization: Bearer <key>",
        ));
    };
    let Some(session) = st.0.db.session(cookie, picket_shared::now_ms()).await? else {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "the session has ended: log in again",
        ));
    };
    let safe = matches!(req.method().as_str(), "GET" | "HEAD" | "OPTIONS");
    let csrf = req
        .headers()
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !safe && !picket_shared::auth::ct_eq(csrf, &session.csrf) {
        return Err(ApiError::field(
            StatusCode::FORBIDDEN,
            "X-CSRF-Token",
            "a write with a session cookie must carry the session's CSRF token",
        ));
    }
    Ok(next.run(req).await)
}

/// The value of cookie `name` in a request's `Cookie` headers.
pub(crate) fn cookie<'a>(headers: &'a axum::http::HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty())
}

async fn status(State(st): State<AppState>) -> ApiResult {
    let s = &st.0;
    ok(
        "",
        json!({
            "node_id": s.node_id,
            "version": VERSION,
            "uptime_secs": s.started.elapsed().as_secs(),
            "running_monitors": s.sched.len(),
            "fenced": !s.lease.is_valid(),
            "buffered_heartbeats": s.writer.buffered(),
        }),
    )
}

/// 200 when the node can reach its database, 503 naming the failing check.
async fn health(State(st): State<AppState>) -> Response {
    let s = &st.0;
    let db = match tokio::time::timeout(Duration::from_secs(1), s.db.ping()).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("database did not answer within 1 s".to_owned()),
    };
    match db {
        Ok(()) => Json(json!({"ok": true, "msg": "healthy", "data": {
            "node_id": s.node_id, "checks": {"db": "ok"}, "fenced": !s.lease.is_valid()
        }}))
        .into_response(),
        Err(msg) => ApiError {
            msg: format!("unhealthy: {msg}"),
            errors: vec![FieldError::new("db", msg)],
            ..ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "")
        }
        .into_response(),
    }
}

async fn metrics(State(st): State<AppState>, headers: axum::http::HeaderMap) -> ApiResult {
    if !guard::metrics_allowed(&st, &st.0.metrics_token, &headers).await? {
        let mut r = ApiError::new(
            StatusCode::UNAUTHORIZED,
            "metrics need the metrics token or an API key (Bearer, or as the Basic password)",
        )
        .into_response();
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            axum::http::HeaderValue::from_static("Basic realm=\"picket metrics\""),
        );
        return Ok(r);
    }
    st.0.metrics.sync_events(st.0.db.events_created());
    Ok((
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        st.0.metrics.render(),
    )
        .into_response())
}

async fn not_found(req: Request) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        format!("no route for {} {}", req.method(), req.uri().path()),
    )
}

/// Parses a numeric path id, naming the field when it is not one.
pub fn parse_id(raw: &str) -> Result<i64, ApiError> {
    raw.parse().map_err(|_| {
        ApiError::field(
            StatusCode::BAD_REQUEST,
            "id",
            format!("'{raw}' is not a numeric id"),
        )
    })
}
