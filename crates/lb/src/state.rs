//! The state every part of one balancer shares: one `Arc<Shared>`.

use crate::config::LbConfig;
use crate::metrics::Metrics;
use crate::report::{ClusterError, ClusterReport, RebalanceReport, RebalanceState, RoundReport};
use crate::view::NodeView;
use arc_swap::ArcSwap;
use picket_shared::auth::Bootstrap;
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// A request from the request path to the control service, which owns the
/// database pool (the proxy's runtimes never touch it).
#[derive(Debug)]
pub enum Command {
    /// Is this an active admin API key?
    VerifyKey {
        token: String,
        reply: oneshot::Sender<bool>,
    },
    /// Does this dashboard session cookie open a live session whose CSRF
    /// token is `csrf`?
    VerifySession {
        token: String,
        csrf: String,
        reply: oneshot::Sender<bool>,
    },
    /// Rebuild the node view now (`POST /api/update-loads`).
    Refresh { reply: oneshot::Sender<()> },
}

/// A request from the request path to the cluster service.
#[derive(Debug)]
pub enum ClusterCommand {
    /// Run a round now; reply with what it did.
    Round {
        reply: oneshot::Sender<Result<RoundReport, ClusterError>>,
    },
    /// Rebalance (minimum moves, or `all`); reply with the report.
    Rebalance {
        all: bool,
        reply: oneshot::Sender<Result<RebalanceReport, ClusterError>>,
    },
}

/// Sends a command to a service and waits for the reply; `None` when the
/// service is gone or did not answer within `timeout`.
pub async fn ask<C, T>(
    tx: &mpsc::Sender<C>,
    make: impl FnOnce(oneshot::Sender<T>) -> C,
    timeout: Duration,
) -> Option<T> {
    let (reply, rx) = oneshot::channel();
    tx.send(make(reply)).await.ok()?;
    tokio::time::timeout(timeout, rx).await.ok()?.ok()
}

/// How long the request path waits for the control service.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(5);

/// State shared by the proxy and the background services.
pub struct Shared {
    pub cfg: LbConfig,
    /// Holder name for the leader lease and in reports.
    pub lb_id: String,
    /// The node view the request path routes by; replaced whole by the refresher.
    pub view: ArcSwap<NodeView>,
    pub metrics: Metrics,
    /// `PICKET_API_TOKEN`, hashed.
    pub bootstrap: Bootstrap,
    /// To the control service.
    pub commands: mpsc::Sender<Command>,
    /// The control service's end, taken once when it starts.
    pub(crate) commands_rx: Mutex<Option<mpsc::Receiver<Command>>>,
    /// Epoch ms the balancer started.
    pub started_at: i64,
    /// What the cluster service last saw (leader, panic, history).
    pub cluster: ArcSwap<ClusterReport>,
    /// The running or last rebalance.
    pub rebalance: RebalanceState,
    /// To the cluster service.
    pub cluster_commands: mpsc::Sender<ClusterCommand>,
    /// The cluster service's end, taken once when it starts.
    pub(crate) cluster_rx: Mutex<Option<mpsc::Receiver<ClusterCommand>>>,
}

impl Shared {
    pub fn new(cfg: LbConfig) -> Shared {
        let (tx, rx) = mpsc::channel(64);
        let (ctx, crx) = mpsc::channel(16);
        Shared {
            lb_id: cfg.lb_id(),
            bootstrap: Bootstrap::new(cfg.api_token.as_deref()),
            cfg,
            view: ArcSwap::from_pointee(NodeView::default()),
            metrics: Metrics::new(),
            commands: tx,
            commands_rx: Mutex::new(Some(rx)),
            started_at: picket_shared::now_ms(),
            cluster: ArcSwap::from_pointee(ClusterReport::default()),
            rebalance: RebalanceState::default(),
            cluster_commands: ctx,
            cluster_rx: Mutex::new(Some(crx)),
        }
    }
}
