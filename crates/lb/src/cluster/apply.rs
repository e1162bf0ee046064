//! Applying the leader's moves: in batches, each one transaction fenced by
//! the leader lease, with one history entry per source node.

use super::Ctx;
use crate::report::ClusterError;
use picket_shared::NodeId;
use picket_shared::db::{ClusterMove, Db, Fence};
use std::collections::BTreeMap;

impl Ctx {
    /// Applies moves in batches (each one transaction, fenced by the lease) and
    /// records one event per source node.
    pub(super) async fn apply(
        &self,
        kind: &str,
        db: &Db,
        moves: &[ClusterMove],
        fence: Fence<'_>,
        now: i64,
    ) -> Result<u64, ClusterError> {
        if moves.is_empty() {
            return Ok(0);
        }
        let mut n = 0;
        for chunk in moves.chunks(self.shared.cfg.recovery_batch) {
            n += db.apply_moves(chunk, Some(fence)).await?;
        }
        self.shared
            .metrics
            .moves
            .with_label_values(&[kind])
            .inc_by(n);
        let mut by_node: BTreeMap<&NodeId, (usize, BTreeMap<&NodeId, usize>)> = BTreeMap::new();
        for m in moves {
            match m {
                ClusterMove::Assign { from, to, .. } | ClusterMove::Home { from, to, .. } => {
                    let e = by_node.entry(from).or_default();
                    e.0 += 1;
                    *e.1.entry(to).or_default() += 1;
                }
                ClusterMove::Recover { from, .. } => by_node.entry(from).or_default().0 += 1,
            }
        }
        for (from, (count, to)) in by_node {
            let (node, detail) = if kind == "recovery" {
                // Recovery is reported against the node that got its monitors back.
                (None, format!("{count} monitors returned home from {from}"))
            } else {
                let spread: Vec<String> = to.iter().map(|(n, c)| format!("{n}: {c}")).collect();
                (
                    Some(from),
                    format!(
                        "{count} monitors of {from} re-assigned ({})",
                        spread.join(", ")
                    ),
                )
            };
            tracing::info!(kind, %detail, "ownership moved");
            let _ = db
                .record_event(now, kind, node, count as u64, &detail)
                .await;
        }
        Ok(n)
    }
}
