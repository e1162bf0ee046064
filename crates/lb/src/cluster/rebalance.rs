//! Rebalancing on the leader: re-home the fewest monitors that level the
//! online nodes, or deal every monitor evenly.

use super::plan::{applied, counts, plan_rebalance};
use super::{Ctx, LEADER_LEASE};
use crate::report::{ClusterError, RebalanceReport};
use picket_shared::db::Fence;
use picket_shared::model::NodeStatus;
use picket_shared::{NodeId, now_ms};
use std::collections::BTreeSet;
use std::time::Instant;

impl Ctx {
    /// Rebalances now, if this balancer is the leader
    /// ([`ClusterError::NotLeader`] otherwise).
    pub(super) async fn rebalance(&mut self, all: bool) -> Result<RebalanceReport, ClusterError> {
        let started = Instant::now();
        let now = now_ms();
        let db = self.db.get().await?.clone();
        if !self.lead(&db, now).await? {
            return Err(ClusterError::NotLeader);
        }
        let online: BTreeSet<NodeId> = db
            .nodes()
            .await?
            .into_iter()
            .filter(|n| n.status == NodeStatus::Online)
            .map(|n| n.node_id)
            .collect();
        if online.is_empty() {
            return Err(ClusterError::NoOnlineNode);
        }
        let monitors = db.ownership(true).await?;
        let moves = plan_rebalance(&monitors, &online, all);
        let before = counts(&monitors, &online);
        let after = counts(&applied(&monitors, &moves), &online);
        let shared = self.shared.clone();
        let fence = Fence {
            lease: LEADER_LEASE,
            holder: &shared.lb_id,
            now: now_ms(),
        };
        let kind = if all { "rebalance_all" } else { "rebalance" };
        let moved = self.apply(kind, &db, &moves, fence, now).await?;
        self.refresh_view();
        let report = RebalanceReport {
            kind: kind.to_owned(),
            by: shared.lb_id.clone(),
            started_at: now,
            duration_ms: started.elapsed().as_millis() as u64,
            planned: moves.len(),
            moved,
            before,
            after,
        };
        shared.rebalance.record(&report);
        Ok(report)
    }
}
