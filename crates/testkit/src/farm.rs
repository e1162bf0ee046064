//! The target farm: a loopback HTTP server answering `/m/{id}` with a
//! configurable status, body and latency, and recording which node hit which
//! id and when (from the `User-Agent: Picket/<v> (node <id>)` nodes send).
//! `GET /counts` returns the hit counts per id and node as JSON, for scenarios
//! that run the farm in another process.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::oneshot;

/// How the farm answers one id.
#[derive(Debug, Clone)]
pub struct Behaviour {
    pub status: u16,
    pub body: String,
    pub delay: Duration,
}

impl Default for Behaviour {
    fn default() -> Self {
        Self {
            status: 200,
            body: "ok".into(),
            delay: Duration::ZERO,
        }
    }
}

impl Behaviour {
    pub fn status(status: u16) -> Self {
        Self {
            status,
            ..Self::default()
        }
    }
    pub fn slow(delay: Duration) -> Self {
        Self {
            delay,
            ..Self::default()
        }
    }
}

/// One request the farm saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    /// The id in the path (`/m/{id}`): the monitor that checked.
    pub monitor: String,
    /// The node id from the User-Agent ("" when absent).
    pub node: String,
    /// Epoch milliseconds on arrival.
    pub at_ms: i64,
    /// Arrival on this process's monotonic clock, for intervals.
    pub at: Instant,
}

#[derive(Default)]
struct FarmState {
    behaviours: Mutex<HashMap<String, Behaviour>>,
    hits: Mutex<HashMap<String, Vec<Hit>>>,
}

/// A running farm; stops when dropped.
pub struct Farm {
    pub addr: SocketAddr,
    state: Arc<FarmState>,
    _stop: oneshot::Sender<()>,
}

impl Farm {
    /// Starts a farm on 127.0.0.1 with an OS-assigned port.
    pub async fn start() -> anyhow::Result<Farm> {
        Self::start_on("127.0.0.1:0".parse()?).await
    }

    pub async fn start_on(addr: SocketAddr) -> anyhow::Result<Farm> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(FarmState::default());
        let app = Router::new()
            .route("/m/{id}", any(target))
            .route("/counts", get(counts))
            .with_state(state.clone());
        let (tx, rx) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await;
        });
        Ok(Farm {
            addr,
            state,
            _stop: tx,
        })
    }

    /// The URL a monitor should check for `id`.
    pub fn url(&self, id: &str) -> String {
        format!("http://{}/m/{id}", self.addr)
    }

    pub fn set(&self, id: &str, b: Behaviour) {
        lock(&self.state.behaviours).insert(id.to_owned(), b);
    }

    /// Every hit on `id` so far, oldest first.
    pub fn hits(&self, id: &str) -> Vec<Hit> {
        lock(&self.state.hits).get(id).cloned().unwrap_or_default()
    }

    pub fn hit_count(&self, id: &str) -> usize {
        lock(&self.state.hits).get(id).map_or(0, Vec::len)
    }

    /// How many distinct ids have been hit.
    pub fn ids_hit(&self) -> usize {
        lock(&self.state.hits).len()
    }

    /// Hits on every id.
    pub fn all_hits(&self) -> HashMap<String, Vec<Hit>> {
        lock(&self.state.hits).clone()
    }

    /// Every hit on every id, in order of arrival.
    pub fn timeline(&self) -> Vec<Hit> {
        let mut all: Vec<Hit> = lock(&self.state.hits).values().flatten().cloned().collect();
        all.sort_by_key(|h| h.at);
        all
    }

    /// The nodes that checked `id` at or after `since`.
    pub fn nodes_since(&self, id: &str, since: Instant) -> BTreeSet<String> {
        lock(&self.state.hits)
            .get(id)
            .into_iter()
            .flatten()
            .filter(|h| h.at >= since)
            .map(|h| h.node.clone())
            .collect()
    }

    pub fn clear(&self) {
        lock(&self.state.hits).clear();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The node id in `Picket/<version> (node <id>)`.
pub fn node_from_user_agent(ua: &str) -> Option<&str> {
    let start = ua.find("(node ")? + "(node ".len();
    let end = ua[start..].find(')')? + start;
    Some(&ua[start..end])
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

async fn target(
    State(st): State<Arc<FarmState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let node = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .and_then(node_from_user_agent)
        .unwrap_or("")
        .to_owned();
    lock(&st.hits).entry(id.clone()).or_default().push(Hit {
        monitor: id.clone(),
        node,
        at_ms: now_ms(),
        at: Instant::now(),
    });
    let b = lock(&st.behaviours).get(&id).cloned().unwrap_or_default();
    if !b.delay.is_zero() {
        tokio::time::sleep(b.delay).await;
    }
    let status = StatusCode::from_u16(b.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, b.body).into_response()
}

async fn counts(State(st): State<Arc<FarmState>>) -> Response {
    let hits = lock(&st.hits);
    let mut out: HashMap<&str, HashMap<&str, usize>> = HashMap::new();
    for (id, hs) in hits.iter() {
        let per = out.entry(id.as_str()).or_default();
        for h in hs {
            *per.entry(h.node.as_str()).or_default() += 1;
        }
    }
    axum::Json(out).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_agent_names_the_node() {
        assert_eq!(node_from_user_agent("Picket/0.1.0 (node n-1)"), Some("n-1"));
        assert_eq!(node_from_user_agent("curl/8"), None);
    }
}
