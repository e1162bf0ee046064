//! Ownership moves. Every move names the owner it expects to replace and
//! applies only while that is still the monitor's owner, so a stale or
//! half-applied plan applied again is harmless: rows that changed in between
//! are skipped, and the next (level-triggered) pass plans afresh.
//!
//! The leader balancer's moves are also fenced by its lease ([`Fence`]): a
//! balancer that lost the lease mid-pass changes nothing. A node moves
//! monitors only through the same conditional path, without a fence, and only
//! in two ways: a leaving node gives away monitors it owns (`from` = itself),
//! and a node back after a graceful leave sends its own monitors home
//! ([`Db::recover_node`]). Neither can move a monitor someone else moved
//! first, so a race with the leader neither loses nor doubles one.

use super::{Db, DbError, Result};
use crate::ids::{MonitorId, NodeId};
use crate::placement::Ownership;
use sqlx::Row;

/// The lease a write must still hold at commit time.
#[derive(Debug, Clone, Copy)]
pub struct Fence<'a> {
    pub lease: &'a str,
    pub holder: &'a str,
    /// Epoch ms; the lease must expire after this.
    pub now: i64,
}

/// One ownership change with the owner it expects to replace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClusterMove {
    /// Failover: run `monitor` on `to` for now (`assign_node`); `to` being the
    /// monitor's home clears the assignment instead.
    Assign {
        monitor: MonitorId,
        from: NodeId,
        to: NodeId,
    },
    /// Rebalance: make `to` the monitor's home and clear any assignment.
    Home {
        monitor: MonitorId,
        from: NodeId,
        to: NodeId,
    },
    /// Recovery: clear `assign_node` (currently `from`), sending it home.
    Recover { monitor: MonitorId, from: NodeId },
}

impl ClusterMove {
    pub fn monitor(&self) -> MonitorId {
        match self {
            ClusterMove::Assign { monitor, .. }
            | ClusterMove::Home { monitor, .. }
            | ClusterMove::Recover { monitor, .. } => *monitor,
        }
    }
}

impl Db {
    /// Every monitor's ownership columns (for failover and rebalancing plans).
    pub async fn ownership(&self, active_only: bool) -> Result<Vec<Ownership>> {
        let sql = if active_only {
            "SELECT id, default_node_id, assign_node FROM monitor WHERE active = 1 ORDER BY id"
        } else {
            "SELECT id, default_node_id, assign_node FROM monitor ORDER BY id"
        };
        self.query(sql)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| {
                Ok(Ownership {
                    monitor: MonitorId(r.try_get("id")?),
                    default_node: NodeId(r.try_get("default_node_id")?),
                    assign_node: r.try_get::<Option<String>, _>("assign_node")?.map(NodeId),
                })
            })
            .collect()
    }

    /// Applies moves in one transaction with one revision bump. Each move
    /// applies only if the monitor's owner is still the one it expects. With
    /// a `fence` (the leader balancer), nothing applies unless the lease is
    /// still held at that point (`DbError::Rejected` on field `lease`).
    /// Returns rows changed.
    pub async fn apply_moves(
        &self,
        moves: &[ClusterMove],
        fence: Option<Fence<'_>>,
    ) -> Result<u64> {
        if moves.is_empty() {
            return Ok(0);
        }
        in_tx!(self, |c| {
            // The revision bump first: it takes the write lock, which orders
            // this transaction against every other ownership change.
            let rev = self.bump_rev(c).await?;
            if let Some(fence) = fence {
                self.require_lease(c, fence).await?;
            }
            let mut n = 0;
            for m in moves {
                let q = match m {
                    ClusterMove::Assign { monitor, from, to } => self
                        .query(
                            "UPDATE monitor SET assign_node = CASE WHEN default_node_id = ? THEN NULL ELSE ? END, \
                             rev = ? WHERE id = ? AND owner = ?",
                        )
                        .bind(to.as_str())
                        .bind(to.as_str())
                        .bind(rev)
                        .bind(monitor.0)
                        .bind(from.as_str()),
                    ClusterMove::Home { monitor, from, to } => self
                        .query(
                            "UPDATE monitor SET default_node_id = ?, assign_node = NULL, rev = ? \
                             WHERE id = ? AND owner = ?",
                        )
                        .bind(to.as_str())
                        .bind(rev)
                        .bind(monitor.0)
                        .bind(from.as_str()),
                    ClusterMove::Recover { monitor, from } => self
                        .query(
                            "UPDATE monitor SET assign_node = NULL, rev = ? WHERE id = ? AND assign_node = ?",
                        )
                        .bind(rev)
                        .bind(monitor.0)
                        .bind(from.as_str()),
                };
                n += q.execute(&mut *c).await?.rows_affected();
            }
            Ok(n)
        })
    }

    /// `DbError::Rejected` on `lease` unless `fence` still holds, read inside
    /// the caller's transaction.
    async fn require_lease(&self, c: &mut sqlx::AnyConnection, fence: Fence<'_>) -> Result<()> {
        let lease = self
            .query("SELECT holder, expires_at FROM lease WHERE name = ?")
            .bind(fence.lease)
            .fetch_optional(&mut *c)
            .await?;
        let held = match lease {
            Some(r) => {
                let holder: String = r.try_get("holder")?;
                let until: i64 = r.try_get("expires_at")?;
                holder == fence.holder && until > fence.now
            }
            None => false,
        };
        if held {
            Ok(())
        } else {
            Err(DbError::Rejected {
                field: "lease",
                msg: format!("'{}' does not hold lease '{}'", fence.holder, fence.lease),
            })
        }
    }

    /// Sends a node's temporarily moved monitors home (`assign_node = NULL`),
    /// in batches of `batch`, each move conditional on the assignment it read.
    /// Returns how many went home.
    pub async fn recover_node(&self, node: &NodeId, batch: usize) -> Result<u64> {
        let mut total = 0;
        loop {
            // Read first, so no revision is spent when nothing is away.
            let moves: Vec<ClusterMove> = self
                .query_built(format!(
                    "SELECT id, assign_node FROM monitor WHERE default_node_id = ? \
                     AND assign_node IS NOT NULL AND assign_node <> default_node_id LIMIT {batch}"
                ))
                .bind(node.as_str())
                .fetch_all(&self.pool)
                .await?
                .iter()
                .map(|r| {
                    Ok(ClusterMove::Recover {
                        monitor: MonitorId(r.try_get("id")?),
                        from: NodeId(r.try_get("assign_node")?),
                    })
                })
                .collect::<Result<_>>()?;
            if moves.is_empty() {
                return Ok(total);
            }
            let n = self.apply_moves(&moves, None).await?;
            total += n;
            if n == 0 {
                return Ok(total);
            }
        }
    }
}
