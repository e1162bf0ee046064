//! The cluster service: health checks, failover, recovery and rebalancing.
//!
//! Every balancer runs it; each pass first takes or renews the leader lease in
//! the database, and only the holder probes nodes and moves monitors. A pass
//! is a few steps ([`round`]): lead, probe, plan ([`plan`], pure), apply
//! ([`apply`], fenced by the lease), report. Ownership passes are
//! level-triggered: each one sends home what can go home and re-assigns
//! whatever has no online owner, so a crash half-way is repaired by the next
//! pass.
//!
//! A rebalance ([`rebalance`]) asked of a balancer that is not the leader is
//! handed to the leader through the database ([`handover`]): the leader polls
//! for such requests, runs them like its own, and writes the result, which
//! the asked balancer returns to its client.
//!
//! Results are typed ([`crate::report`]); the endpoints build the JSON.

pub mod apply;
pub mod handover;
pub mod plan;
pub mod rebalance;
pub mod round;

pub use plan::{RoundPlan, applied, counts, plan_ownership, plan_rebalance, plan_round};

use crate::db_slot::DbSlot;
use crate::report::ClusterError;
use crate::state::{ClusterCommand, Shared};
use async_trait::async_trait;
use picket_shared::NodeId;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use rand::Rng;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

/// Name of the leader lease row.
pub const LEADER_LEASE: &str = "picket-lb-leader";
/// Cluster events shown in the status endpoints.
pub const EVENTS_SHOWN: i64 = 100;
/// How long a balancer that is not the leader waits for the leader to carry
/// out a request it handed over (less than the admin endpoints' own timeout).
pub const HANDOVER_WAIT: Duration = Duration::from_secs(50);
/// How often the leader looks for handed-over requests, and the asker for
/// their outcome.
const HANDOVER_POLL: Duration = Duration::from_millis(200);

/// The background service.
pub struct ClusterService {
    pub shared: Arc<Shared>,
}

/// The service's own state between passes.
struct Ctx {
    shared: Arc<Shared>,
    db: DbSlot,
    http: reqwest::Client,
    leader: bool,
    /// Node ids seen in earlier rounds (to notice joins for auto-rebalance).
    known: Option<BTreeSet<NodeId>>,
}

#[async_trait]
impl BackgroundService for ClusterService {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let Some(mut rx) = self
            .shared
            .cluster_rx
            .lock()
            .ok()
            .and_then(|mut r| r.take())
        else {
            tracing::error!("cluster service started twice");
            return;
        };
        let cfg = &self.shared.cfg;
        let http = reqwest::Client::builder()
            .timeout(cfg.hc_timeout())
            .connect_timeout(cfg.hc_timeout())
            .no_proxy()
            .pool_max_idle_per_host(1)
            .build()
            .expect("HTTP client");
        let mut ctx = Ctx {
            shared: self.shared.clone(),
            db: DbSlot::new(&cfg.database_url, cfg.db_pool),
            http,
            leader: false,
            known: None,
        };
        let mut next = tokio::time::Instant::now();
        let mut handed_over = tokio::time::interval(HANDOVER_POLL);
        handed_over.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                _ = shutdown.changed() => break,
                Some(cmd) = rx.recv() => match cmd {
                    ClusterCommand::Round { reply } => {
                        let r = ctx.run_once().await;
                        let _ = reply.send(r);
                    }
                    ClusterCommand::Rebalance { all, reply } => match ctx.rebalance(all).await {
                        Err(ClusterError::NotLeader) => ctx.hand_over(all, reply).await,
                        r => {
                            let _ = reply.send(r);
                        }
                    },
                },
                _ = handed_over.tick(), if ctx.leader => ctx.serve_handed_over().await,
                _ = tokio::time::sleep_until(next) => {
                    let _ = ctx.run_once().await;
                    next = tokio::time::Instant::now() + jittered(cfg.hc_interval());
                }
            }
        }
        if ctx.leader
            && let Ok(db) = ctx.db.get().await
        {
            let _ = db.release_lease(LEADER_LEASE, &self.shared.lb_id).await;
            tracing::info!("leader lease released");
        }
    }
}

/// `d` ± 10 %, so balancers and rounds do not fall into lock-step.
fn jittered(d: Duration) -> Duration {
    let f = rand::rng().random_range(0.9..1.1);
    d.mul_f64(f)
}

impl Ctx {
    /// Asks the control service to rebuild the node view (without waiting).
    fn refresh_view(&self) {
        let (tx, _rx) = tokio::sync::oneshot::channel();
        let _ = self
            .shared
            .commands
            .try_send(crate::state::Command::Refresh { reply: tx });
    }
}
