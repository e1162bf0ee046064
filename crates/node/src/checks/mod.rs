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

use picket_shared::egress::EgressPolicy;
use picket_shared::monitor::MonitorKind;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
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
    /// Which addresses checks may connect to, asked after DNS.
    egress: Arc<EgressPolicy>,
    clients: Mutex<HashMap<(u32, bool), reqwest::Client>>,
    /// One ICMP socket per address family, shared by every ping monitor (each
    /// raw socket sees every reply, so one per check would not scale).
    pingers: Mutex<HashMap<bool, surge_ping::Client>>,
}

impl CheckContext {
    /// `User-Agent: Picket/<version> (node <id>)` tells a target which node checked it.
    pub fn new(node_id: &str, egress: EgressPolicy) -> Self {
        Self {
            user_agent: format!("Picket/{} (node {node_id})", picket_shared::VERSION),
            egress: Arc::new(egress),
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
        // Names go through the egress policy in the resolver; a redirect to
        // a literal address is checked here (reqwest does not resolve those).
        let egress = self.egress.clone();
        let policy = reqwest::redirect::Policy::custom(move |attempt| {
            if let Some(Err(e)) = attempt.url().host_str().map(|h| egress.check_literal(h)) {
                attempt.error(e)
            } else if attempt.previous().len() > max_redirects as usize {
                if max_redirects == 0 {
                    attempt.stop()
                } else {
                    attempt.error("too many redirects")
                }
            } else {
                attempt.follow()
            }
        });
        let c = reqwest::Client::builder()
            .user_agent(&self.user_agent)
            .redirect(policy)
            .dns_resolver(PolicyResolver(self.egress.clone()))
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

impl CheckContext {
    /// The addresses of `host:port` a check may connect to, resolved now,
    /// or why there is none.
    pub async fn permitted(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, String> {
        permitted(&self.egress, host, port).await
    }

    /// `Err` when `host` is an address the policy denies (a literal is not
    /// resolved, so it is checked as it stands).
    pub fn check_literal(&self, host: &str) -> Result<(), String> {
        self.egress.check_literal(host)
    }
}

async fn permitted(
    egress: &EgressPolicy,
    host: &str,
    port: u16,
) -> Result<Vec<SocketAddr>, String> {
    let bare = picket_shared::addr::unbracket(host);
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((bare, port))
        .await
        .map_err(|e| format!("{host}: {e}"))?
        .collect();
    if addrs.is_empty() {
        return Err(format!("{host}: no address"));
    }
    egress.filter(addrs, |a| a.ip())
}

/// reqwest's resolver for checks: the system's answer, less what the egress
/// policy denies (all denied: the request fails with the policy's reason).
struct PolicyResolver(Arc<EgressPolicy>);

impl reqwest::dns::Resolve for PolicyResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let egress = self.0.clone();
        Box::pin(async move {
            let addrs = permitted(&egress, name.as_str(), 0).await.map_err(
                |e| -> Box<dyn std::error::Error + Send + Sync> {
                    Box::new(std::io::Error::other(e))
                },
            )?;
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// Runs one check of `kind`, bounded by `timeout`.
pub async fn run(kind: &MonitorKind, timeout: Duration, ctx: &CheckContext) -> Outcome {
    let started = Instant::now();
    let fut = async {
        match kind {
            MonitorKind::Http(spec) => http::check(spec, ctx).await,
            MonitorKind::Port { hostname, port } => tcp::check(hostname, *port, ctx).await,
            MonitorKind::Dns(spec) => match ctx.egress.check(spec.server) {
                Ok(()) => dns::check(spec, timeout).await,
                Err(e) => Outcome::down(e),
            },
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
