//! The request path: Pingora's `ProxyHttp` over the node view. It reads only
//! the `ArcSwap` snapshot (no database, no DNS); local endpoints are answered
//! in `request_filter`.

use crate::local::{self, Reply, Route};
use crate::metrics::status_class;
use crate::report::RunningGuard;
use crate::state::{ClusterCommand, Shared, ask};
use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use http::{HeaderName, HeaderValue};
use picket_shared::NodeId;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::prelude::HttpPeer;
use pingora::proxy::{FailToProxy, ProxyHttp, Session};
use pingora::{Error, ErrorType, Result};
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Instant;

/// How long an admin request waits for a round or a rebalance.
const ROUND_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");

/// The proxy.
pub struct Lb {
    pub shared: Arc<Shared>,
}

/// Counts a request as in flight to a node for as long as it lives.
pub struct Inflight(Arc<AtomicI64>);

impl Inflight {
    fn new(c: Arc<AtomicI64>) -> Inflight {
        c.fetch_add(1, Ordering::Relaxed);
        Inflight(c)
    }
}

impl Drop for Inflight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Per-request state.
#[derive(Default)]
pub struct Ctx {
    /// The node the request is (being) proxied to.
    node: Option<NodeId>,
    /// Nodes whose connection failed for this request.
    tried: Vec<NodeId>,
    /// Pinned node from the cookie.
    pinned: Option<String>,
    inflight: Option<Inflight>,
    /// When the current node was picked (for the upstream latency histogram).
    picked_at: Option<Instant>,
    /// Answered locally: not counted as proxied.
    local: bool,
}

impl Lb {
    async fn write(&self, session: &mut Session, r: Reply) -> Result<()> {
        let mut resp = ResponseHeader::build(r.status, Some(4 + r.headers.len()))?;
        resp.insert_header("content-type", r.content_type)?;
        resp.insert_header("content-length", r.body.len().to_string())?;
        resp.insert_header("cache-control", "no-store")?;
        for (k, v) in r.headers {
            resp.append_header(k, v)?;
        }
        let head_only = session.req_header().method == http::Method::HEAD;
        session
            .write_response_header(Box::new(resp), head_only)
            .await?;
        if !head_only {
            session.write_response_body(Some(r.body), true).await?;
        }
        Ok(())
    }

    /// Reads a request body up to `MAX_ADMIN_BODY`; 413 past it.
    async fn read_body(session: &mut Session) -> Result<Result<Bytes, Reply>> {
        let too_big = || Reply::error(413, format!("body over {} bytes", local::MAX_ADMIN_BODY));
        let declared = session
            .req_header()
            .headers
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        if declared.is_some_and(|n| n > local::MAX_ADMIN_BODY) {
            return Ok(Err(too_big()));
        }
        let mut buf = BytesMut::new();
        while let Some(chunk) = session.read_request_body().await? {
            if buf.len() + chunk.len() > local::MAX_ADMIN_BODY {
                return Ok(Err(too_big()));
            }
            buf.extend_from_slice(&chunk);
        }
        Ok(Ok(buf.freeze()))
    }

    async fn admin(&self, session: &Session) -> Option<Reply> {
        let headers = &session.req_header().headers;
        let h = headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        let by_session = || {
            let cookie = headers
                .get_all(http::header::COOKIE)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(';'))
                .filter_map(|pair| pair.trim().split_once('='))
                .find(|(k, _)| *k == "picket_session")
                .map(|(_, v)| v.trim());
            let csrf = headers.get("x-csrf-token").and_then(|v| v.to_str().ok());
            local::session_authorized(&self.shared, cookie, csrf)
        };
        if local::authorized(&self.shared, h).await || (h.is_none() && by_session().await) {
            None
        } else {
            Some(
                Reply::error(401, "admin token required: Authorization: Bearer <token>")
                    .with_header("www-authenticate", "Bearer".into()),
            )
        }
    }

    /// Answers a local endpoint.
    async fn serve_local(&self, session: &mut Session, route: Route, ctx: &Ctx) -> Result<Reply> {
        let s = &self.shared;
        let v = s.view.load_full();
        let now = local::now();
        Ok(match route {
            Route::Health => Reply::json(200, json!({"status": "ok", "ok": true})),
            Route::Ping => Reply::json(200, json!({"ok": true, "msg": "pong", "time": now})),
            Route::LbHealth => Reply::json(200, local::lb_health(&v)),
            Route::Capacity => Reply::json(200, local::capacity(&v, s.cfg.capacity_per_node)),
            Route::NodeStatus => Reply::json(200, local::node_status(&v)),
            Route::LoadBalancerStatus => Reply::json(200, local::load_balancer_status(s, &v, now)),
            Route::SystemStatus => Reply::json(200, local::system_status(s, &v, now)),
            Route::HealthStatus => Reply::json(200, local::health_status(s, &v)),
            Route::AvailableNodes => Reply::json(200, local::available_nodes(&v)),
            Route::FixedNodeStatus => {
                Reply::json(200, local::fixed_node_status(&v, ctx.pinned.as_deref()))
            }
            Route::FixedNode(node) => local::fixed_node(&v, &node, 3600),
            Route::ClearFixedNode => local::clear_fixed_node(),
            Route::SetFixedNode => match Self::read_body(session).await? {
                Ok(body) => local::set_fixed_node(&v, &body, now),
                Err(r) => r,
            },
            Route::Metrics => {
                s.metrics.snapshot_age_ms.set(v.age_ms(now).unwrap_or(-1));
                Reply {
                    status: 200,
                    body: Bytes::from(s.metrics.render()),
                    content_type: "text/plain; version=0.0.4",
                    headers: Vec::new(),
                }
            }
            Route::UpdateLoads => {
                if let Some(r) = self.admin(session).await {
                    return Ok(r);
                }
                if local::refresh_now(s).await {
                    Reply::json(
                        200,
                        json!({"ok": true, "nodes": local::lb_health(&s.view.load())["nodes"]}),
                    )
                } else {
                    Reply::error(503, "the node view could not be refreshed")
                }
            }
            Route::RebalancingStatus => Reply::json(200, local::rebalancing_status(s)),
            Route::TriggerHealthCheck => {
                if let Some(r) = self.admin(session).await {
                    return Ok(r);
                }
                let tx = &s.cluster_commands;
                match ask(tx, |reply| ClusterCommand::Round { reply }, ROUND_TIMEOUT).await {
                    Some(r) => Reply::json(200, local::round_json(&r)),
                    None => Reply::error(503, "the health check round did not finish"),
                }
            }
            Route::TriggerRebalancing | Route::ForceRebalanceAll => {
                if let Some(r) = self.admin(session).await {
                    return Ok(r);
                }
                let Some(_running) = RunningGuard::try_start(&s.rebalance.running) else {
                    return Ok(Reply::error(409, "a rebalance is already running"));
                };
                let all = route == Route::ForceRebalanceAll;
                let tx = &s.cluster_commands;
                match ask(
                    tx,
                    |reply| ClusterCommand::Rebalance { all, reply },
                    ROUND_TIMEOUT,
                )
                .await
                {
                    Some(Ok(r)) => Reply::json(200, local::rebalance_json(&r)),
                    Some(Err(e)) => Reply::error(e.http_status(), e.to_string()),
                    None => Reply::error(503, "the rebalance did not finish in time"),
                }
            }
            Route::NotFound => Reply::error(
                404,
                format!(
                    "no such balancer endpoint: {}",
                    session.req_header().uri.path()
                ),
            ),
            Route::MethodNotAllowed(allow) => {
                Reply::error(405, "method not allowed").with_header("allow", allow.into())
            }
        })
    }
}

/// The client's IP as a header value (one allocation, shared by the headers).
fn client_ip(session: &Session) -> Option<HeaderValue> {
    let ip = session.client_addr()?.as_inet()?.ip().to_string();
    HeaderValue::try_from(ip).ok()
}

#[async_trait]
impl ProxyHttp for Lb {
    type CTX = Ctx;

    fn new_ctx(&self) -> Ctx {
        Ctx::default()
    }

    async fn request_filter(&self, session: &mut Session, ctx: &mut Ctx) -> Result<bool> {
        let cookies: Vec<&str> = session
            .req_header()
            .headers
            .get_all(http::header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        ctx.pinned = local::pinned_node(&cookies);
        if let Some(why) = local::framing_problem(&session.req_header().headers) {
            // The node and the balancer could read this request's length
            // differently (request smuggling): refuse it and close.
            session.set_keepalive(None);
            let reply = Reply::error(400, why).with_header("connection", "close".into());
            self.write(session, reply).await?;
            return Ok(true);
        }
        // A client may send its next request before reading this answer
        // (RFC 9112 §9.3.2): answer each in turn rather than drop the rest.
        session.set_pipelining_enabled(true);
        let req = session.req_header();
        let Some(route) = local::route(req.method.as_str(), req.uri.path()) else {
            return Ok(false);
        };
        ctx.local = true;
        self.shared.metrics.local_requests.inc();
        let reply = self.serve_local(session, route, ctx).await?;
        self.write(session, reply).await?;
        Ok(true)
    }

    async fn upstream_peer(&self, _session: &mut Session, ctx: &mut Ctx) -> Result<Box<HttpPeer>> {
        let view = self.shared.view.load();
        let Some(node) = view.pick(ctx.pinned.as_deref(), &ctx.tried) else {
            let msg = if ctx.tried.is_empty() {
                "no online node"
            } else {
                "no online node accepted the connection"
            };
            return Err(Error::explain(ErrorType::HTTPStatus(503), msg));
        };
        let addr = *node.addr.as_ref().expect("routable nodes are resolved");
        ctx.node = Some(node.node_id.clone());
        ctx.inflight = Some(Inflight::new(node.inflight.clone()));
        ctx.picked_at = Some(Instant::now());
        let mut peer = HttpPeer::new(addr, false, String::new());
        peer.options.connection_timeout = Some(self.shared.cfg.connect_timeout());
        peer.options.total_connection_timeout = Some(self.shared.cfg.connect_timeout());
        Ok(Box::new(peer))
    }

    fn fail_to_connect(
        &self,
        _session: &mut Session,
        _peer: &HttpPeer,
        ctx: &mut Ctx,
        mut e: Box<Error>,
    ) -> Box<Error> {
        // Nothing reached the node, so any method may go to the next one.
        if let Some(node) = ctx.node.take() {
            tracing::warn!(node = %node, cause = %e, "connect failed; trying the next node");
            self.shared
                .metrics
                .connect_retries
                .with_label_values(&[node.as_str()])
                .inc();
            ctx.tried.push(node);
        }
        ctx.inflight = None;
        e.set_retry(true);
        e
    }

    async fn upstream_request_filter(
        &self,
        session: &mut Session,
        req: &mut RequestHeader,
        _ctx: &mut Ctx,
    ) -> Result<()> {
        if let Some(ip) = client_ip(session) {
            // Append to a chain the client sent, as proxies do.
            let chained = req
                .headers
                .get(&X_FORWARDED_FOR)
                .and_then(|v| v.to_str().ok())
                .filter(|prev| !prev.trim().is_empty())
                .map(|prev| format!("{prev}, {}", ip.to_str().unwrap_or_default()));
            match chained {
                Some(xff) => req.insert_header("x-forwarded-for", xff)?,
                None => req.insert_header("x-forwarded-for", ip.clone())?,
            }
            req.insert_header("x-real-ip", ip)?;
        }
        if !req.headers.contains_key(&X_FORWARDED_PROTO) {
            req.insert_header("x-forwarded-proto", "http")?;
        }
        Ok(())
    }

    async fn upstream_response_filter(
        &self,
        _session: &mut Session,
        resp: &mut ResponseHeader,
        ctx: &mut Ctx,
    ) -> Result<()> {
        if let Some(node) = &ctx.node {
            resp.insert_header("x-routed-to", node.as_str())?;
            if let Some(t) = ctx.picked_at {
                self.shared
                    .metrics
                    .upstream_latency
                    .with_label_values(&[node.as_str()])
                    .observe(t.elapsed().as_secs_f64());
            }
        }
        Ok(())
    }

    async fn fail_to_proxy(&self, session: &mut Session, e: &Error, ctx: &mut Ctx) -> FailToProxy {
        let code = match e.etype() {
            ErrorType::HTTPStatus(c) => *c,
            _ => match e.esource() {
                pingora::ErrorSource::Upstream => 502,
                pingora::ErrorSource::Downstream => match e.etype() {
                    ErrorType::WriteError | ErrorType::ReadError | ErrorType::ConnectionClosed => 0,
                    _ => 400,
                },
                _ => 500,
            },
        };
        if code > 0 && session.response_written().is_none() {
            let msg = e
                .context
                .as_ref()
                .map(|c| c.as_str().to_owned())
                .unwrap_or_else(|| e.etype().as_str().to_owned());
            let mut r = Reply::error(code, msg);
            if let Some(n) = &ctx.node {
                r = r.with_header("x-routed-to", n.to_string());
            }
            if let Err(w) = self.write(session, r).await {
                tracing::debug!(cause = %w, "could not write the error response");
            }
        }
        FailToProxy {
            error_code: code,
            can_reuse_downstream: false,
        }
    }

    async fn logging(&self, session: &mut Session, _e: Option<&Error>, ctx: &mut Ctx) {
        ctx.inflight = None;
        if ctx.local {
            return;
        }
        let node = ctx.node.as_ref().map(NodeId::as_str).unwrap_or("none");
        let class = session
            .response_written()
            .map(|r| status_class(r.status.as_u16()))
            .unwrap_or("error");
        self.shared
            .metrics
            .requests
            .with_label_values(&[node, class])
            .inc();
    }
}
