//! Endpoints the balancer answers itself: which paths they are ([`route`]),
//! the JSON they return (pure functions over the node view), and the small
//! amount of I/O around them (admin auth, bodies, commands to the control
//! service). Everything not routed here is proxied.

use crate::report::{ClusterError, LeaderRound, RebalanceReport, RoundReport};
use crate::state::{COMMAND_TIMEOUT, Command, Shared, ask};
use crate::view::NodeView;
use bytes::Bytes;
use picket_shared::auth::token_from_header;
use picket_shared::now_ms;
use serde_json::{Value, json};
use std::sync::Arc;

/// Name of the cookie that pins a browser to a node.
pub const FIXED_NODE_COOKIE: &str = "picket_node";
/// Largest body an admin endpoint reads.
pub const MAX_ADMIN_BODY: usize = 64 * 1024;
/// Pin lifetime when `set-fixed-node` names none, in seconds.
const DEFAULT_PIN_SECS: i64 = 3600;

/// A local endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Health,
    Ping,
    LbHealth,
    Capacity,
    NodeStatus,
    LoadBalancerStatus,
    SystemStatus,
    HealthStatus,
    RebalancingStatus,
    TriggerHealthCheck,
    TriggerRebalancing,
    ForceRebalanceAll,
    UpdateLoads,
    FixedNode(String),
    ClearFixedNode,
    SetFixedNode,
    FixedNodeStatus,
    AvailableNodes,
    Metrics,
    /// An `/lb/*` path nobody serves: 404 from the balancer, never proxied.
    NotFound,
    /// A known path with the wrong method.
    MethodNotAllowed(&'static str),
}

/// Which local endpoint `method path` is, or `None` to proxy it. Node API
/// paths (`/api/v1/*`, `/api/push/*`) are never local.
pub fn route(method: &str, path: &str) -> Option<Route> {
    use Route::*;
    let get = matches!(method, "GET" | "HEAD");
    let post = method == "POST";
    let path = if path.len() > 1 {
        path.trim_end_matches('/')
    } else {
        path
    };
    let (r, wants_post) = match path {
        "/health" => (Health, false),
        "/metrics" => (Metrics, false),
        "/lb/ping" => (Ping, false),
        "/lb/health" => (LbHealth, false),
        "/lb/capacity" => (Capacity, false),
        // The fork's README names the `/api/…` forms.
        "/lb/node-status" | "/api/node-status" => (NodeStatus, false),
        "/lb/load-balancer-status" | "/api/load-balancer-status" => (LoadBalancerStatus, false),
        "/lb/system-status" | "/api/system-status" => (SystemStatus, false),
        "/lb/health-status" | "/api/health-check-status" | "/api/fault-detection-status" => {
            (HealthStatus, false)
        }
        "/lb/rebalancing-status" | "/api/rebalancing-status" => (RebalancingStatus, false),
        "/lb/trigger-health-check" => (TriggerHealthCheck, true),
        "/api/trigger-rebalancing" => (TriggerRebalancing, true),
        "/api/force-rebalance-all" => (ForceRebalanceAll, true),
        "/api/update-loads" => (UpdateLoads, true),
        "/lb/clear-fixed-node" => (ClearFixedNode, false),
        "/lb/set-fixed-node" => (SetFixedNode, true),
        "/lb/fixed-node-status" => (FixedNodeStatus, false),
        "/lb/available-nodes" => (AvailableNodes, false),
        p if p.starts_with("/lb/fixed-node/") => {
            (FixedNode(p["/lb/fixed-node/".len()..].to_owned()), false)
        }
        p if p == "/lb" || p.starts_with("/lb/") => return Some(NotFound),
        _ => return None,
    };
    let ok = if wants_post {
        post
    } else {
        get || (post && r == ClearFixedNode)
    };
    if ok {
        Some(r)
    } else {
        Some(MethodNotAllowed(if wants_post {
            "POST"
        } else {
            "GET, HEAD"
        }))
    }
}

/// Why a request's framing is ambiguous (RFC 9112 §6.3): more than one
/// `Content-Length`, or a list or a non-number in one. Such a request is
/// refused, never forwarded. (`Transfer-Encoding` beside a length needs no
/// check here: Pingora drops the length and frames by the chunks.)
pub fn framing_problem(headers: &http::HeaderMap) -> Option<&'static str> {
    let mut lengths = headers.get_all(http::header::CONTENT_LENGTH).iter();
    let first = lengths.next()?;
    if lengths.next().is_some() {
        return Some("more than one Content-Length header");
    }
    let digits = first.as_bytes();
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return Some("Content-Length must be one decimal number");
    }
    None
}

/// A response to write: status, JSON (or text) body, extra headers.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub status: u16,
    pub body: Bytes,
    pub content_type: &'static str,
    pub headers: Vec<(&'static str, String)>,
}

impl Reply {
    pub fn json(status: u16, v: Value) -> Reply {
        Reply {
            status,
            body: Bytes::from(serde_json::to_vec(&v).unwrap_or_default()),
            content_type: "application/json",
            headers: Vec::new(),
        }
    }
    /// The node API's error envelope.
    pub fn error(status: u16, msg: impl Into<String>) -> Reply {
        Reply::json(status, json!({"ok": false, "msg": msg.into()}))
    }
    pub fn with_header(mut self, name: &'static str, value: String) -> Reply {
        self.headers.push((name, value));
        self
    }
}

// ---- pure JSON views ------------------------------------------------------

fn node_json(n: &crate::view::NodeEntry) -> Value {
    json!({
        "node_id": n.node_id,
        "node_name": n.node_name,
        "status": n.status.as_str(),
        "host": n.host,
        "address": n.addr.as_ref().ok().map(|a| a.to_string()),
        "resolve_error": n.addr.as_ref().err().map(ToString::to_string),
        "routable": n.routable(),
        "last_seen": n.last_seen,
        "monitor_count": n.monitor_count,
        "inflight": n.inflight(),
    })
}

/// `/lb/health`.
pub fn lb_health(v: &NodeView) -> Value {
    let nodes: Vec<Value> = v
        .nodes
        .iter()
        .map(|n| {
            json!({
                "node_id": n.node_id,
                "status": n.status.as_str(),
                "host": n.host,
                "last_seen": n.last_seen,
                "monitor_count": n.monitor_count,
                "routable": n.routable(),
            })
        })
        .collect();
    json!({
        "ok": true,
        "healthy": v.routable().next().is_some(),
        "online_nodes": v.routable().count(),
        "total_nodes": v.nodes.len(),
        "nodes": nodes,
    })
}

/// `/lb/capacity`.
pub fn capacity(v: &NodeView, limit: usize) -> Value {
    let nodes: Vec<Value> = v
        .nodes
        .iter()
        .map(|n| {
            let pct = (n.monitor_count as f64 * 1000.0 / limit as f64).round() / 10.0;
            json!({
                "node_id": n.node_id,
                "status": n.status.as_str(),
                "current_count": n.monitor_count,
                "usage_percent": pct,
                "available": limit.saturating_sub(n.monitor_count),
            })
        })
        .collect();
    let online = v.nodes.iter().filter(|n| n.routable()).count();
    let total: usize = v.nodes.iter().map(|n| n.monitor_count).sum();
    json!({
        "ok": true,
        "limit_per_node": limit,
        "total_monitors": total,
        "total_capacity": limit * online,
        "nodes": nodes,
    })
}

/// `/lb/node-status`.
pub fn node_status(v: &NodeView) -> Value {
    let nodes: Vec<Value> = v
        .nodes
        .iter()
        .map(|n| {
            let mut j = node_json(n);
            j["health"] = serde_json::to_value(&n.health).unwrap_or(Value::Null);
            j
        })
        .collect();
    json!({"ok": true, "nodes": nodes})
}

/// `/lb/load-balancer-status`.
pub fn load_balancer_status(s: &Shared, v: &NodeView, now: i64) -> Value {
    json!({
        "ok": true,
        "lb_id": s.lb_id,
        "version": picket_shared::VERSION,
        "strategy": "least-loaded",
        "listen": s.cfg.listen.to_string(),
        "uptime_ms": now - s.started_at,
        "routable_nodes": v.routable().map(|n| n.node_id.clone()).collect::<Vec<_>>(),
        "node_view": {
            "built_at": v.built_at,
            "db_read_at": v.db_read_at,
            "age_ms": v.age_ms(now),
            "db_error": v.db_error,
            "refresh_ms": s.cfg.refresh_ms,
        },
        "dns": {
            "servers": if s.cfg.dns_servers.is_empty() { json!("/etc/resolv.conf") } else { json!(s.cfg.dns_servers) },
            "ttl_cap_secs": s.cfg.dns_ttl_cap_secs,
            "unresolved": v.nodes.iter().filter(|n| n.addr.is_err()).map(|n| n.node_id.clone()).collect::<Vec<_>>(),
        },
        "fixed_node_cookie": FIXED_NODE_COOKIE,
    })
}

/// `/lb/health-status` (the checker's persisted counters per node, the
/// leader, the panic state and the failover/recovery history).
pub fn health_status(s: &Shared, v: &NodeView) -> Value {
    let c = s.cluster.load();
    let nodes: Vec<Value> = v
        .nodes
        .iter()
        .map(|n| {
            json!({
                "node_id": n.node_id,
                "status": n.status.as_str(),
                "consecutive_failures": n.health.fails,
                "consecutive_successes": n.health.passes,
                "last_check_at": n.health.last_at,
                "last_ok": n.health.last_ok,
                "last_latency_ms": n.health.last_ms,
                "last_error": n.health.last_error,
            })
        })
        .collect();
    json!({
        "ok": true,
        "config": {
            "interval_secs": s.cfg.hc_interval_secs,
            "timeout_ms": s.cfg.hc_timeout_ms,
            "fall": s.cfg.hc_fall,
            "rise": s.cfg.hc_rise,
            "panic_threshold": s.cfg.panic_threshold,
            "auto_rebalance": s.cfg.auto_rebalance,
        },
        "lb_id": s.lb_id,
        "leader": c.leader,
        "leader_id": c.leader_id,
        "lease_expires_at": c.lease_expires_at,
        "rounds": c.rounds,
        "last_round_at": c.last_round_at,
        "last_round_ms": c.last_round_ms,
        "last_error": c.last_error,
        "panic": {"active": c.panic, "failing": c.failing, "total": c.total},
        "nodes": nodes,
        "events": c.events,
    })
}

/// A rebalance's report as the rebalancing endpoints answer it.
pub fn rebalance_json(r: &RebalanceReport) -> Value {
    let mut v = json!({"ok": true});
    if let (Value::Object(m), Ok(Value::Object(r))) = (&mut v, serde_json::to_value(r)) {
        m.extend(r);
    }
    v
}

/// What `POST /lb/trigger-health-check` answers for the round it ran.
pub fn round_json(r: &Result<RoundReport, ClusterError>) -> Value {
    match r {
        Ok(RoundReport::Follower) => json!({"ok": true, "leader": false}),
        Ok(RoundReport::Leader(l)) => leader_round_json(l),
        Err(e) => json!({"ok": false, "msg": e.to_string()}),
    }
}

fn leader_round_json(l: &LeaderRound) -> Value {
    let nodes: Vec<Value> = l
        .nodes
        .iter()
        .map(|d| {
            json!({
                "node_id": d.node,
                "ok": d.health.last_ok,
                "latency_ms": d.health.last_ms,
                "error": d.health.last_error,
                "consecutive_failures": d.health.fails,
                "consecutive_successes": d.health.passes,
                "transition": d.transition.map(|t| format!("{t:?}")),
            })
        })
        .collect();
    let auto_rebalance = match &l.auto_rebalance {
        None => Value::Null,
        Some(Ok(r)) => rebalance_json(r),
        Some(Err(e)) => json!({"error": e}),
    };
    json!({
        "ok": true,
        "leader": true,
        "panic": l.panic,
        "failing": l.failing,
        "total": l.total,
        "nodes": nodes,
        "recovered": l.recovered,
        "failed_over": l.failed_over,
        "frozen": l.frozen,
        "auto_rebalance": auto_rebalance,
    })
}

/// `/lb/rebalancing-status`.
pub fn rebalancing_status(s: &Shared) -> Value {
    let last = s
        .rebalance
        .last
        .lock()
        .ok()
        .and_then(|l| l.as_ref().map(rebalance_json));
    json!({
        "ok": true,
        "running": s.rebalance.running.load(std::sync::atomic::Ordering::Acquire),
        "last": last,
        "auto_rebalance": s.cfg.auto_rebalance,
    })
}

/// `/lb/available-nodes`.
pub fn available_nodes(v: &NodeView) -> Value {
    let nodes: Vec<Value> = v
        .routable()
        .map(|n| json!({"node_id": n.node_id, "node_name": n.node_name, "monitor_count": n.monitor_count}))
        .collect();
    json!({"ok": true, "nodes": nodes})
}

/// The value of the pin cookie in a `Cookie` header, if any.
pub fn pinned_node(cookie_headers: &[&str]) -> Option<String> {
    cookie_headers
        .iter()
        .flat_map(|h| h.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == FIXED_NODE_COOKIE)
        .map(|(_, v)| v.trim_matches('"').to_owned())
        .filter(|v| !v.is_empty())
}

/// Node ids that can go into a cookie unquoted.
fn cookie_safe(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// Pins to `node` for `secs` when it is routable; 400 otherwise.
pub fn fixed_node(v: &NodeView, node: &str, secs: i64) -> Reply {
    if !cookie_safe(node) {
        return Reply::error(400, format!("'{node}' is not a valid node id"));
    }
    match v.node(node) {
        None => Reply::error(400, format!("unknown node '{node}'")),
        Some(n) if !n.routable() => Reply::error(
            400,
            format!("node '{node}' is {} and cannot be pinned", n.status.as_str()),
        ),
        Some(_) => Reply::json(
            200,
            json!({"ok": true, "msg": format!("pinned to {node}"), "node": node, "expires_in": secs}),
        )
        .with_header(
            "set-cookie",
            format!("{FIXED_NODE_COOKIE}={node}; Path=/; Max-Age={secs}; HttpOnly; SameSite=Lax"),
        ),
    }
}

/// `/lb/clear-fixed-node`.
pub fn clear_fixed_node() -> Reply {
    Reply::json(200, json!({"ok": true, "msg": "pin cleared"})).with_header(
        "set-cookie",
        format!("{FIXED_NODE_COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax"),
    )
}

/// `/lb/fixed-node-status` for the caller's cookie.
pub fn fixed_node_status(v: &NodeView, pinned: Option<&str>) -> Value {
    match pinned {
        None => json!({"ok": true, "fixed": false, "node": null}),
        Some(p) => {
            let n = v.node(p);
            json!({
                "ok": true,
                "fixed": true,
                "node": p,
                "known": n.is_some(),
                "status": n.map(|n| n.status.as_str()),
                "active": n.is_some_and(|n| n.routable()),
            })
        }
    }
}

/// `expires` of `set-fixed-node`: seconds from now, or an absolute epoch time
/// in seconds or milliseconds (as a browser-side caller may send). Returns the
/// pin's lifetime in seconds, at least one.
pub fn pin_seconds(expires: Option<i64>, now_ms: i64) -> Result<i64, String> {
    let secs = match expires {
        None => DEFAULT_PIN_SECS,
        Some(e) if e >= 1_000_000_000_000 => (e - now_ms) / 1000,
        Some(e) if e >= 1_000_000_000 => e - now_ms / 1000,
        Some(e) => e,
    };
    if secs < 1 {
        return Err("expires is in the past".into());
    }
    Ok(secs.min(365 * 24 * 3600))
}

/// Parses `set-fixed-node`'s body.
pub fn set_fixed_node(v: &NodeView, body: &[u8], now: i64) -> Reply {
    #[derive(serde::Deserialize)]
    struct Body {
        node: String,
        expires: Option<i64>,
    }
    let b: Body = match serde_json::from_slice(body) {
        Ok(b) => b,
        Err(e) => return Reply::error(400, format!("malformed JSON body: {e}")),
    };
    match pin_seconds(b.expires, now) {
        Ok(secs) => fixed_node(v, &b.node, secs),
        Err(e) => Reply::error(400, e),
    }
}

// ---- I/O helpers ----------------------------------------------------------

/// Whether the `Authorization` header carries the bootstrap token or an active
/// admin key (checked by the control service, which holds the database).
pub async fn authorized(s: &Arc<Shared>, authorization: Option<&str>) -> bool {
    let Some(h) = authorization else { return false };
    let token = token_from_header(h);
    if token.is_empty() {
        return false;
    }
    if s.bootstrap.matches(token) {
        return true;
    }
    if picket_shared::auth::split_token(token).is_none() {
        return false;
    }
    let token = token.to_owned();
    let verify = |reply| Command::VerifyKey { token, reply };
    ask(&s.commands, verify, COMMAND_TIMEOUT)
        .await
        .unwrap_or(false)
}

/// Whether a dashboard session (its cookie, and its CSRF token in the
/// `X-CSRF-Token` header, as the pages' script sends them) is live: the
/// dashboard's cluster page calls the admin endpoints this way.
pub async fn session_authorized(s: &Arc<Shared>, cookie: Option<&str>, csrf: Option<&str>) -> bool {
    let (Some(token), Some(csrf)) = (cookie, csrf) else {
        return false;
    };
    if token.is_empty() || csrf.is_empty() || token.len() > 256 || csrf.len() > 256 {
        return false;
    }
    let (token, csrf) = (token.to_owned(), csrf.to_owned());
    let verify = |reply| Command::VerifySession { token, csrf, reply };
    ask(&s.commands, verify, COMMAND_TIMEOUT)
        .await
        .unwrap_or(false)
}

/// Asks the control service to rebuild the view now and waits for it.
pub async fn refresh_now(s: &Arc<Shared>) -> bool {
    let refresh = |reply| Command::Refresh { reply };
    ask(&s.commands, refresh, COMMAND_TIMEOUT).await.is_some()
}

/// Everything together, for `/lb/system-status`.
pub fn system_status(s: &Shared, v: &NodeView, now: i64) -> Value {
    json!({
        "ok": true,
        "load_balancer": load_balancer_status(s, v, now),
        "nodes": node_status(v)["nodes"],
        "capacity": capacity(v, s.cfg.capacity_per_node),
        "health": health_status(s, v),
        "rebalancing": rebalancing_status(s),
    })
}

/// Current epoch ms (re-exported for the proxy).
pub fn now() -> i64 {
    now_ms()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::view::tests::entry;
    use picket_shared::model::NodeStatus::*;

    #[test]
    fn routes() {
        use Route::*;
        assert_eq!(route("GET", "/health"), Some(Health));
        assert_eq!(route("GET", "/lb/health/"), Some(LbHealth));
        assert_eq!(route("GET", "/api/health-check-status"), Some(HealthStatus));
        let framing = |pairs: &[(&'static str, &'static str)]| {
            let mut h = http::HeaderMap::new();
            for (k, v) in pairs {
                h.append(*k, http::HeaderValue::from_static(v));
            }
            framing_problem(&h)
        };
        assert_eq!(framing(&[]), None);
        assert_eq!(framing(&[("content-length", "5")]), None);
        assert!(framing(&[("content-length", "5"), ("content-length", "5")]).is_some());
        assert!(framing(&[("content-length", "5, 5")]).is_some());
        assert!(framing(&[("content-length", "-1")]).is_some());
        assert_eq!(route("GET", "/api/system-status"), Some(SystemStatus));
        assert_eq!(route("GET", "/api/node-status"), Some(NodeStatus));
        assert_eq!(
            route("GET", "/api/load-balancer-status"),
            Some(LoadBalancerStatus)
        );
        assert_eq!(
            route("GET", "/api/fault-detection-status"),
            Some(HealthStatus)
        );
        assert_eq!(
            route("GET", "/api/rebalancing-status"),
            Some(RebalancingStatus)
        );
        assert_eq!(
            route("POST", "/api/trigger-rebalancing"),
            Some(TriggerRebalancing)
        );
        assert_eq!(
            route("GET", "/api/trigger-rebalancing"),
            Some(MethodNotAllowed("POST"))
        );
        assert_eq!(
            route("GET", "/lb/fixed-node/n1"),
            Some(FixedNode("n1".into()))
        );
        assert_eq!(route("GET", "/lb/nope"), Some(NotFound));
        assert_eq!(route("GET", "/lb"), Some(NotFound));
        // The node API is proxied.
        assert_eq!(route("GET", "/api/v1/monitors"), None);
        assert_eq!(route("POST", "/api/push/abc"), None);
        assert_eq!(route("GET", "/"), None);
        assert_eq!(route("GET", "/lbx"), None);
    }

    #[test]
    fn pin_cookie_parsing() {
        assert_eq!(
            pinned_node(&["a=1; picket_node=n2; b=3"]).as_deref(),
            Some("n2")
        );
        assert_eq!(
            pinned_node(&["a=1", "picket_node=\"n3\""]).as_deref(),
            Some("n3")
        );
        assert_eq!(pinned_node(&["picket_node="]), None);
        assert_eq!(pinned_node(&[]), None);
    }

    #[test]
    fn pinning_refuses_unknown_and_offline_nodes() {
        let v = NodeView {
            nodes: vec![entry("a", Online, 0, 0), entry("b", Offline, 0, 0)],
            ..Default::default()
        };
        assert_eq!(fixed_node(&v, "a", 60).status, 200);
        assert!(
            fixed_node(&v, "a", 60).headers[0]
                .1
                .contains("picket_node=a; Path=/; Max-Age=60")
        );
        assert_eq!(fixed_node(&v, "b", 60).status, 400);
        assert_eq!(fixed_node(&v, "zz", 60).status, 400);
        assert_eq!(fixed_node(&v, "a;b", 60).status, 400);
        assert_eq!(set_fixed_node(&v, b"{nope", 0).status, 400);
        assert_eq!(
            set_fixed_node(&v, br#"{"node":"a","expires":120}"#, 0).status,
            200
        );
    }

    #[test]
    fn pin_lifetimes() {
        let now = 1_700_000_000_000;
        assert_eq!(pin_seconds(None, now), Ok(3600));
        assert_eq!(pin_seconds(Some(60), now), Ok(60));
        assert_eq!(pin_seconds(Some(1_700_000_100), now), Ok(100));
        assert_eq!(pin_seconds(Some(now + 5_000), now), Ok(5));
        assert!(pin_seconds(Some(0), now).is_err());
        assert!(pin_seconds(Some(1_600_000_000), now).is_err());
    }

    #[test]
    fn capacity_shape() {
        let v = NodeView {
            nodes: vec![entry("a", Online, 250, 0), entry("b", Offline, 0, 0)],
            ..Default::default()
        };
        let c = capacity(&v, 1000);
        assert_eq!(c["limit_per_node"], 1000);
        assert_eq!(c["nodes"][0]["current_count"], 250);
        assert_eq!(c["nodes"][0]["usage_percent"], 25.0);
        assert_eq!(c["total_capacity"], 1000);
    }
}
