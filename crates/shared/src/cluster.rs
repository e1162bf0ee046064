//! Cluster coordination in the database, for the balancers: the leader lease,
//! ownership moves fenced by that lease, and the failover/recovery/rebalance
//! history (`cluster_event`).
//!
//! Moves are conditional on the monitor's owner being what the plan assumed, so
//! applying a stale or half-applied plan again is harmless: rows that changed in
//! between are skipped, and the next (level-triggered) pass plans afresh.

use crate::db::{Backend, Db, DbError, Result};
use crate::ids::{MonitorId, NodeId};
use serde::Serialize;
use sqlx::Row;

/// A lease row: who holds it, until when (epoch ms).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Lease {
    pub holder: String,
    pub expires_at: i64,
}

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

/// One entry of the cluster history.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClusterEvent {
    pub id: i64,
    /// Epoch ms.
    pub time: i64,
    /// `node_offline`, `node_online`, `failover`, `recovery`, `rebalance`,
    /// `rebalance_all`, `panic`, `leader`.
    pub kind: String,
    pub node_id: Option<String>,
    /// Monitors moved by this event.
    pub moved: i64,
    pub detail: String,
}

/// Events kept in the table; older ones are pruned when new ones are written.
const EVENTS_KEPT: i64 = 1000;

impl Db {
    /// Takes or renews lease `name` for `holder` until `now + ttl_ms`, when it
    /// is free, expired, or already `holder`'s. Returns whether `holder` holds
    /// it afterwards. Works with one conditional UPDATE on both backends (the
    /// final SELECT avoids relying on MySQL's changed-rows count).
    pub async fn acquire_lease(
        &self,
        name: &str,
        holder: &str,
        ttl_ms: i64,
        now: i64,
    ) -> Result<bool> {
        let until = now + ttl_ms;
        let insert = match self.backend() {
            Backend::Sqlite => {
                "INSERT OR IGNORE INTO lease (name, holder, expires_at) VALUES (?, ?, ?)"
            }
            Backend::MySql => {
                "INSERT IGNORE INTO lease (name, holder, expires_at) VALUES (?, ?, ?)"
            }
        };
        sqlx::query(insert)
            .bind(name)
            .bind(holder)
            .bind(until)
            .execute(self.pool())
            .await?;
        sqlx::query(
            "UPDATE lease SET holder = ?, expires_at = ? \
             WHERE name = ? AND (holder = ? OR expires_at <= ?)",
        )
        .bind(holder)
        .bind(until)
        .bind(name)
        .bind(holder)
        .bind(now)
        .execute(self.pool())
        .await?;
        Ok(self
            .lease(name)
            .await?
            .is_some_and(|l| l.holder == holder && l.expires_at == until))
    }

    /// Gives lease `name` up at once if `holder` has it (a clean shutdown), so
    /// another balancer need not wait for it to expire.
    pub async fn release_lease(&self, name: &str, holder: &str) -> Result<()> {
        sqlx::query("UPDATE lease SET expires_at = 0 WHERE name = ? AND holder = ?")
            .bind(name)
            .bind(holder)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    pub async fn lease(&self, name: &str) -> Result<Option<Lease>> {
        let row = sqlx::query("SELECT holder, expires_at FROM lease WHERE name = ?")
            .bind(name)
            .fetch_optional(self.pool())
            .await?;
        row.map(|r| {
            Ok(Lease {
                holder: r.try_get("holder")?,
                expires_at: r.try_get("expires_at")?,
            })
        })
        .transpose()
    }

    /// Applies moves in one transaction with one revision bump, only while
    /// `fence` still holds: a balancer that lost the lease mid-pass changes
    /// nothing (`DbError::Rejected` on field `lease`). Each move applies only if
    /// the monitor's owner is still the one it expects. Returns rows changed.
    pub async fn apply_fenced_moves(&self, moves: &[ClusterMove], fence: Fence<'_>) -> Result<u64> {
        if moves.is_empty() {
            return Ok(0);
        }
        let mut tx = self.pool().begin().await?;
        let r: Result<u64> = async {
            let c: &mut sqlx::AnyConnection = &mut tx;
            // The revision bump first: it takes the write lock, which orders
            // this transaction against every other ownership change.
            sqlx::query("UPDATE revision SET rev = rev + 1 WHERE id = 1")
                .execute(&mut *c)
                .await?;
            let rev: i64 = sqlx::query("SELECT rev FROM revision WHERE id = 1")
                .fetch_one(&mut *c)
                .await?
                .try_get("rev")?;
            let lease = sqlx::query("SELECT holder, expires_at FROM lease WHERE name = ?")
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
            if !held {
                return Err(DbError::Rejected {
                    field: "lease",
                    msg: format!("'{}' does not hold lease '{}'", fence.holder, fence.lease),
                });
            }
            let mut n = 0;
            for m in moves {
                let q = match m {
                    ClusterMove::Assign { monitor, from, to } => sqlx::query(
                        "UPDATE monitor SET assign_node = CASE WHEN default_node_id = ? THEN NULL ELSE ? END, \
                         rev = ? WHERE id = ? AND owner = ?",
                    )
                    .bind(to.as_str())
                    .bind(to.as_str())
                    .bind(rev)
                    .bind(monitor.0)
                    .bind(from.as_str()),
                    ClusterMove::Home { monitor, from, to } => sqlx::query(
                        "UPDATE monitor SET default_node_id = ?, assign_node = NULL, rev = ? \
                         WHERE id = ? AND owner = ?",
                    )
                    .bind(to.as_str())
                    .bind(rev)
                    .bind(monitor.0)
                    .bind(from.as_str()),
                    ClusterMove::Recover { monitor, from } => sqlx::query(
                        "UPDATE monitor SET assign_node = NULL, rev = ? WHERE id = ? AND assign_node = ?",
                    )
                    .bind(rev)
                    .bind(monitor.0)
                    .bind(from.as_str()),
                };
                n += q.execute(&mut *c).await?.rows_affected();
            }
            Ok(n)
        }
        .await;
        match r {
            Ok(n) => {
                tx.commit().await?;
                Ok(n)
            }
            Err(e) => {
                let _ = tx.rollback().await;
                Err(e)
            }
        }
    }

    /// Appends to the cluster history (and prunes it to the last entries).
    pub async fn record_event(
        &self,
        time: i64,
        kind: &str,
        node: Option<&NodeId>,
        moved: u64,
        detail: &str,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO cluster_event (time, kind, node_id, moved, detail) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(time)
        .bind(kind)
        .bind(node.map(|n| n.as_str().to_owned()))
        .bind(moved as i64)
        .bind(detail)
        .execute(self.pool())
        .await?;
        let max: Option<i64> = sqlx::query("SELECT MAX(id) AS m FROM cluster_event")
            .fetch_one(self.pool())
            .await?
            .try_get("m")?;
        if let Some(max) = max.filter(|m| *m > EVENTS_KEPT) {
            sqlx::query("DELETE FROM cluster_event WHERE id <= ?")
                .bind(max - EVENTS_KEPT)
                .execute(self.pool())
                .await?;
        }
        Ok(())
    }

    /// The latest `limit` events, newest first.
    pub async fn recent_events(&self, limit: i64) -> Result<Vec<ClusterEvent>> {
        let rows = sqlx::query(
            "SELECT id, time, kind, node_id, moved, detail FROM cluster_event \
             ORDER BY id DESC LIMIT ?",
        )
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ClusterEvent {
                    id: r.try_get("id")?,
                    time: r.try_get("time")?,
                    kind: r.try_get("kind")?,
                    node_id: r.try_get("node_id")?,
                    moved: r.try_get("moved")?,
                    detail: r.try_get("detail")?,
                })
            })
            .collect()
    }
}
