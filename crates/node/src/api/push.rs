//! `GET|POST /api/push/{token}?status=up|down&msg=&ping=`: the public endpoint
//! push monitors report to. Any node accepts a push; the heartbeat is written
//! in the name of the monitor's current owner, so the ownership-conditional
//! insert keeps it (and the owner's overdue rule sees it).

use super::{ApiError, ApiResult, AppState, guard, ok};
use crate::beat;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use picket_shared::model::{Heartbeat, Status};
use picket_shared::monitor::MonitorType;
use picket_shared::now_ms;
use serde::Deserialize;
use serde_json::json;

#[derive(Deserialize)]
pub struct PushQuery {
    status: Option<String>,
    msg: Option<String>,
    ping: Option<String>,
}

/// Longest `msg` kept from a push.
const MAX_MSG: usize = 1024;

/// A push as the query gave it, validated.
#[derive(Debug, PartialEq)]
pub struct Push {
    pub status: Status,
    pub msg: String,
    pub ping: Option<f64>,
}

/// Parses the query: `status` up (default) or down, `msg` (default "OK"),
/// `ping` in ms (optional, ≥ 0).
pub fn parse(q: &PushQuery) -> Result<Push, ApiError> {
    let status = match q.status.as_deref().map(str::trim) {
        None | Some("") | Some("up") => Status::Up,
        Some("down") => Status::Down,
        Some(other) => {
            return Err(ApiError::field(
                StatusCode::BAD_REQUEST,
                "status",
                format!("must be up or down, not '{other}'"),
            ));
        }
    };
    let ping = match q.ping.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(p) => Some(
            p.parse::<f64>()
                .ok()
                .filter(|v| v.is_finite() && *v >= 0.0)
                .ok_or_else(|| {
                    ApiError::field(
                        StatusCode::BAD_REQUEST,
                        "ping",
                        "must be a non-negative number of milliseconds",
                    )
                })?,
        ),
    };
    let mut msg = q
        .msg
        .clone()
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| "OK".into());
    if msg.len() > MAX_MSG {
        let mut cut = MAX_MSG;
        while !msg.is_char_boundary(cut) {
            cut -= 1;
        }
        msg.truncate(cut);
    }
    Ok(Push { status, msg, ping })
}

pub async fn push(
    State(st): State<AppState>,
    Path(token): Path<String>,
    headers: axum::http::HeaderMap,
    ext: axum::http::Extensions,
    Query(q): Query<PushQuery>,
) -> ApiResult {
    let p = parse(&q)?;
    let db = &st.0.db;
    // Push URLs are public: guessing at tokens counts as failed
    // authentication, per client address.
    let now = now_ms();
    let keys = guard::attempt_keys(&guard::client_addr(&headers, guard::peer(&ext)), None);
    guard::refuse_if_locked(&st, &keys, now)?;
    // The owner can change between the read and the insert: then the insert
    // keeps nothing, and one more try with the new owner settles it.
    for _ in 0..3 {
        let rec = db
            .monitor_by_push_token(&token)
            .await?
            .filter(|r| r.fields.kind.as_deref() == Some(MonitorType::Push.as_str()))
            .ok_or_else(|| {
                guard::count_failure(&st, &keys, now);
                ApiError::new(StatusCode::NOT_FOUND, "no push monitor has this token")
            })?;
        if !rec.active() {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                format!("monitor {} is paused; the push was not recorded", rec.id),
            ));
        }
        let last = db.heartbeats(rec.id, 0, 1).await?.into_iter().next();
        let now = now_ms();
        let hb = Heartbeat {
            monitor_id: rec.id,
            node_id: rec.owner().clone(),
            status: p.status,
            time: now,
            ping: p.ping,
            msg: p.msg.clone(),
            important: beat::is_important(last.as_ref().map(|h| h.status), p.status),
            duration: last.as_ref().map_or(0, |h| (now - h.time + 500) / 1000),
            retries: 0,
        };
        if db.insert_heartbeats(std::slice::from_ref(&hb)).await? == 1 {
            return ok("", json!({"monitor_id": rec.id, "status": p.status}));
        }
    }
    Err(ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "the monitor kept changing owner; push again",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(status: Option<&str>, msg: Option<&str>, ping: Option<&str>) -> PushQuery {
        PushQuery {
            status: status.map(str::to_owned),
            msg: msg.map(str::to_owned),
            ping: ping.map(str::to_owned),
        }
    }

    #[test]
    fn query_table() {
        let p = parse(&q(None, None, None)).unwrap();
        assert_eq!(
            p,
            Push {
                status: Status::Up,
                msg: "OK".into(),
                ping: None
            }
        );
        let p = parse(&q(Some("down"), Some("disk full"), Some("12.5"))).unwrap();
        assert_eq!(
            p,
            Push {
                status: Status::Down,
                msg: "disk full".into(),
                ping: Some(12.5)
            }
        );
        for (query, field) in [
            (q(Some("sideways"), None, None), "status"),
            (q(None, None, Some("fast")), "ping"),
            (q(None, None, Some("-1")), "ping"),
        ] {
            let e = parse(&query).unwrap_err();
            assert_eq!(
                (e.status, e.errors[0].field.as_str()),
                (StatusCode::BAD_REQUEST, field)
            );
        }
        let long = "é".repeat(MAX_MSG);
        assert!(parse(&q(None, Some(&long), None)).unwrap().msg.len() <= MAX_MSG);
    }
}
