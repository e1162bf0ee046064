//! Check execution. Each monitor kind has its own file with an async `check`
//! doing the I/O and a pure `evaluate` turning the raw result into an [`Outcome`].

pub mod dns;
pub mod http;
pub mod json_query;
pub mod keyword;
pub mod ping;
pub mod push;
pub mod tcp;
pub mod tls;

use picket_shared::monitor::MonitorKind;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Most body bytes a `keyword` / `json-query` check reads: a target answering
/// with a huge body costs at most this much memory per check. Here, not in
/// `http`, so the body rules need nothing of the request that fetched it.
pub const BODY_CAP: usize = 1024 * 1024;

/// A check's verdict before retry semantics are applied.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub up: bool,
    pub msg: String,
    /// Response time in ms, when the check measured one.
    pub ping_ms: Option<f64>,
    /// The server certificate's expiry facts (https only).
    pub cert: Option<tls::CertInfo>,
}

impl Outcome {
    pub fn up(msg: impl Into<String>, ping_ms: Option<f64>) -> Self {
        Self {
            up: true,
            msg: msg.into(),
            ping_ms,
            cert: None,
        }
    }
    pub fn down(msg: impl Into<String>) -> Self {
        Self {
            up: false,
            msg: msg.into(),
            ping_ms: None,
            cert: None,
        }
    }
}

/// Shared resources for checks: HTTP clients (pooled, so keep-alive connections
/// are reused across checks) keyed by the settings a client fixes.
pub struct CheckContext {
    user_agent: String,
    clients: Mutex<HashMap<(u32, bool), reqwest::Client>>,
    /// One ICMP socket per address family, shared by every ping monitor (each
    /// raw socket sees every reply, so one per check would not scale).
    pingers: Mutex<HashMap<bool, surge_ping::Client>>,
}

impl CheckContext {
    /// `User-Agent: Picket/<version> (node <id>)` tells a target which node checked it.
    pub fn new(node_id: &str) -> Self {
        Self {
            user_agent: format!("Picket/{} (node {node_id})", picket_shared::VERSION),
            clients: Mutex::new(HashMap::new()),
            pingers: Mutex::new(HashMap::new()),
        }
    }

    /// The ICMP client for `kind`, opened on first use (and retried on the
    /// next check when the kernel refused it).
    fn ping_client(&self, kind: surge_ping::ICMP) -> std::io::Result<surge_ping::Client> {
        let v6 = kind == surge_ping::ICMP::V6;
        let mut pingers = self.pingers.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = pingers.get(&v6) {
            return Ok(c.clone());
        }
        let c = surge_ping::Client::new(&surge_ping::Config::builder().kind(kind).build())?;
        pingers.insert(v6, c.clone());
        Ok(c)
    }

    /// The client for a redirect limit and TLS policy, built on first use.
    fn http_client(
        &self,
        max_redirects: u32,
        ignore_tls: bool,
    ) -> reqwest::Result<reqwest::Client> {
        let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = clients.get(&(max_redirects, ignore_tls)) {
            return Ok(c.clone());
        }
        let policy = if max_redirects == 0 {
            reqwest::redirect::Policy::none()
        } else {
            reqwest::redirect::Policy::limited(max_redirects as usize)
        };
        let c = reqwest::Client::builder()
            .user_agent(&self.user_agent)
            .redirect(policy)
            .tls_danger_accept_invalid_certs(ignore_tls)
            // One idle keep-alive connection per target is what a monitor
            // reuses; more per host only pins memory after a burst.
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_max_idle_per_host(8)
            .tcp_nodelay(true)
            .tls_info(true)
            .no_proxy()
            .build()?;
        clients.insert((max_redirects, ignore_tls), c.clone());
        Ok(c)
    }
}

/// Runs one check of `kind`, bounded by `timeout`.
pub async fn run(kind: &MonitorKind, timeout: Duration, ctx: &CheckContext) -> Outcome {
    let started = Instant::now();
    let fut = async {
        match kind {
            MonitorKind::Http(spec) => http::check(spec, ctx).await,
            MonitorKind::Port { hostname, port } => tcp::check(hostname, *port).await,
            MonitorKind::Dns(spec) => dns::check(spec, timeout).await,
            MonitorKind::Ping { hostname, count } => {
                ping::check(hostname, *count, timeout, ctx).await
            }
            // The scheduler handles push monitors itself (they need the DB).
            MonitorKind::Push => Outcome::down("push monitors are not actively checked"),
        }
    };
    match tokio::time::timeout(timeout, fut).await {
        Ok(o) => o,
        Err(_) => Outcome::down(format!(
            "timeout after {:.1} s",
            started.elapsed().as_secs_f64().max(timeout.as_secs_f64())
        )),
    }
}

fn elapsed_ms(since: Instant) -> f64 {
    (since.elapsed().as_secs_f64() * 1000.0 * 1000.0).round() / 1000.0
}
