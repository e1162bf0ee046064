//! What the cluster service reports and how it fails: typed values the
//! endpoints in [`crate::local`] turn into JSON. Depends on nothing else of
//! the balancer, so the shared state, the service and the endpoints can all
//! name these types without importing one another.

use picket_shared::NodeId;
use picket_shared::db::{ClusterEvent, DbError};
use picket_shared::health::Transition;
use picket_shared::model::NodeHealth;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};

/// Why the cluster service could not do what it was asked.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("{0}")]
    Db(#[from] DbError),
    /// Another balancer holds the leader lease.
    #[error("this balancer lost the leader lease")]
    NotLeader,
    #[error("no online node to rebalance onto")]
    NoOnlineNode,
    /// A handed-over request of a kind this balancer does not know.
    #[error("unknown request kind '{0}'")]
    UnknownRequest(String),
    /// The leader carried out a handed-over request and refused it.
    #[error("{msg}")]
    Leader { status: u16, msg: String },
    /// A request handed to the leader did not come back with an outcome.
    #[error("{0}")]
    HandOver(String),
}

impl ClusterError {
    /// The HTTP status a client gets for this error: the one mapping, used
    /// by the endpoints and by the leader answering handed-over requests.
    pub fn http_status(&self) -> u16 {
        match self {
            ClusterError::Db(_) | ClusterError::NotLeader | ClusterError::HandOver(_) => 503,
            ClusterError::NoOnlineNode => 409,
            ClusterError::UnknownRequest(_) => 400,
            ClusterError::Leader { status, .. } => *status,
        }
    }
}

/// One node in a round: its probe's outcome and the counters after it.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeRound {
    pub node: NodeId,
    pub health: NodeHealth,
    pub transition: Option<Transition>,
}

/// What one pass of the cluster service did.
#[derive(Debug, Clone, PartialEq)]
pub enum RoundReport {
    /// Another balancer leads; this one only renewed its view of the lease.
    Follower,
    Leader(LeaderRound),
}

/// What the leader's pass did.
#[derive(Debug, Clone, PartialEq)]
pub struct LeaderRound {
    /// Failover frozen by the panic threshold.
    pub panic: bool,
    pub failing: usize,
    pub total: usize,
    pub nodes: Vec<NodeRound>,
    pub recovered: u64,
    pub failed_over: u64,
    /// Failover moves planned but held back by the panic.
    pub frozen: usize,
    /// The automatic rebalance this pass ran, or why it could not.
    pub auto_rebalance: Option<Result<RebalanceReport, String>>,
}

/// The outcome of a rebalance, as the leader that ran it tells it (also
/// across balancers: a handed-over one comes back in this shape).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RebalanceReport {
    /// `rebalance` or `rebalance_all`.
    pub kind: String,
    /// The balancer that ran it.
    pub by: String,
    pub started_at: i64,
    pub duration_ms: u64,
    pub planned: usize,
    pub moved: u64,
    /// Owned monitors per online node before and after.
    pub before: BTreeMap<NodeId, usize>,
    pub after: BTreeMap<NodeId, usize>,
}

/// What the cluster service last saw, for the status endpoints.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ClusterReport {
    /// This balancer holds the leader lease.
    pub leader: bool,
    pub leader_id: Option<String>,
    pub lease_expires_at: Option<i64>,
    pub rounds: u64,
    pub last_round_at: Option<i64>,
    pub last_round_ms: Option<u64>,
    pub last_error: Option<String>,
    /// Failover frozen by the panic threshold in the last round.
    pub panic: bool,
    pub failing: usize,
    pub total: usize,
    /// Newest first.
    pub events: Vec<ClusterEvent>,
}

/// The running or last rebalance.
#[derive(Debug, Default)]
pub struct RebalanceState {
    /// Set while a rebalance runs (a second request gets 409).
    pub running: AtomicBool,
    pub last: std::sync::Mutex<Option<RebalanceReport>>,
}

impl RebalanceState {
    pub fn record(&self, r: &RebalanceReport) {
        if let Ok(mut l) = self.last.lock() {
            *l = Some(r.clone());
        }
    }
}

/// Holds `RebalanceState::running` for one rebalance.
pub struct RunningGuard<'a>(&'a AtomicBool);

impl<'a> RunningGuard<'a> {
    /// `None` when one is already running.
    pub fn try_start(flag: &'a AtomicBool) -> Option<RunningGuard<'a>> {
        flag.compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .ok()
            .map(|_| RunningGuard(flag))
    }
}

impl Drop for RunningGuard<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_one_rebalance_runs_at_a_time() {
        let flag = AtomicBool::new(false);
        let g = RunningGuard::try_start(&flag).unwrap();
        assert!(RunningGuard::try_start(&flag).is_none());
        drop(g);
        assert!(RunningGuard::try_start(&flag).is_some());
    }
}
