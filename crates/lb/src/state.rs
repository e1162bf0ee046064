//! The state every part of one balancer shares: one `Arc<Shared>`.

use crate::config::LbConfig;
use crate::metrics::Metrics;
use crate::view::NodeView;
use arc_swap::ArcSwap;
use picket_shared::auth::Bootstrap;
use std::sync::Mutex;
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
    /// Rebuild the node view now (`POST /api/update-loads`).
    Refresh { reply: oneshot::Sender<()> },
}

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
}

impl Shared {
    pub fn new(cfg: LbConfig) -> Shared {
        let (tx, rx) = mpsc::channel(64);
        Shared {
            lb_id: cfg.lb_id(),
            bootstrap: Bootstrap::new(cfg.api_token.as_deref()),
            cfg,
            view: ArcSwap::from_pointee(NodeView::default()),
            metrics: Metrics::new(),
            commands: tx,
            commands_rx: Mutex::new(Some(rx)),
            started_at: picket_shared::now_ms(),
        }
    }
}
