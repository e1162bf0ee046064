//! Cluster coordination in the database, for the balancers: the leader lease,
//! the failover/recovery/rebalance history (`cluster_event`), and the admin
//! requests a balancer that is not the leader hands to the leader
//! (`cluster_request`). The lease fences the leader's moves
//! ([`super::ownership`]).

use super::{Db, Result};
use crate::ids::NodeId;
use serde::Serialize;
use sqlx::Row;

/// A lease row: who holds it, until when (epoch ms).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Lease {
    pub holder: String,
    pub expires_at: i64,
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

/// An admin request handed to the leader balancer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterRequest {
    pub id: i64,
    /// What to do, e.g. `rebalance` or `rebalance_all`.
    pub kind: String,
    /// The balancer that was asked and waits for the result.
    pub requested_by: String,
}

/// Where a handed-over request stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestState {
    Pending,
    Running {
        by: String,
    },
    /// Carried out by `by`: an HTTP status and a JSON body for the client.
    Done {
        by: String,
        status: u16,
        result: String,
    },
    /// Nobody claimed it before its asker stopped waiting; it will not run.
    Abandoned,
}

/// Finished and abandoned requests are pruned after a day.
const REQUESTS_KEPT_MS: i64 = 24 * 3600 * 1000;

/// The kinds of request a balancer leader carries out for others
/// (`cluster_request.kind`).
pub mod request_kind {
    /// Rebalance, moving only what the plan needs.
    pub const REBALANCE: &str = "rebalance";
    /// Rebalance every monitor.
    pub const REBALANCE_ALL: &str = "rebalance_all";
    /// Run a health-check round now.
    pub const HEALTH_CHECK: &str = "health_check";
}

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
        let insert = self
            .dialect()
            .insert_ignore("lease (name, holder, expires_at) VALUES (?, ?, ?)");
        self.query_built(insert)
            .bind(name)
            .bind(holder)
            .bind(until)
            .execute(&self.pool)
            .await?;
        self.query(
            "UPDATE lease SET holder = ?, expires_at = ? \
             WHERE name = ? AND (holder = ? OR expires_at <= ?)",
        )
        .bind(holder)
        .bind(until)
        .bind(name)
        .bind(holder)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(self
            .lease(name)
            .await?
            .is_some_and(|l| l.holder == holder && l.expires_at == until))
    }

    /// Gives lease `name` up at once if `holder` has it (a clean shutdown), so
    /// another balancer need not wait for it to expire.
    pub async fn release_lease(&self, name: &str, holder: &str) -> Result<()> {
        self.query("UPDATE lease SET expires_at = 0 WHERE name = ? AND holder = ?")
            .bind(name)
            .bind(holder)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn lease(&self, name: &str) -> Result<Option<Lease>> {
        let row = self
            .query("SELECT holder, expires_at FROM lease WHERE name = ?")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| {
            Ok(Lease {
                holder: r.try_get("holder")?,
                expires_at: r.try_get("expires_at")?,
            })
        })
        .transpose()
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
        self.query(
            "INSERT INTO cluster_event (time, kind, node_id, moved, detail) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(time)
        .bind(kind)
        .bind(node.map(|n| n.as_str().to_owned()))
        .bind(moved as i64)
        .bind(detail)
        .execute(&self.pool)
        .await?;
        let max: Option<i64> = self
            .query("SELECT MAX(id) AS m FROM cluster_event")
            .fetch_one(&self.pool)
            .await?
            .try_get("m")?;
        if let Some(max) = max.filter(|m| *m > EVENTS_KEPT) {
            self.query("DELETE FROM cluster_event WHERE id <= ?")
                .bind(max - EVENTS_KEPT)
                .execute(&self.pool)
                .await?;
        }
        Ok(())
    }

    /// The latest `limit` events, newest first.
    pub async fn recent_events(&self, limit: i64) -> Result<Vec<ClusterEvent>> {
        let rows = self
            .query(
                "SELECT id, time, kind, node_id, moved, detail FROM cluster_event \
             ORDER BY id DESC LIMIT ?",
            )
            .bind(limit)
            .fetch_all(&self.pool)
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

    /// Hands `kind` to the leader on behalf of balancer `by`; returns the
    /// request's id for [`Db::cluster_request_state`].
    pub async fn request_cluster_action(&self, kind: &str, by: &str, now: i64) -> Result<i64> {
        let mut c = self.pool.acquire().await?;
        self.query(
            "DELETE FROM cluster_request \
             WHERE requested_at < ? AND state IN ('done', 'abandoned')",
        )
        .bind(now - REQUESTS_KEPT_MS)
        .execute(&mut *c)
        .await?;
        self.query(
            "INSERT INTO cluster_request (kind, requested_by, requested_at, state) \
             VALUES (?, ?, ?, 'pending')",
        )
        .bind(kind)
        .bind(by)
        .bind(now)
        .execute(&mut *c)
        .await?;
        self.last_insert_id(&mut c).await
    }

    /// Pending requests, oldest first. Those pending since before
    /// `now - max_age_ms` are abandoned instead: their asker has stopped
    /// waiting, so running them now would surprise whoever sent them.
    pub async fn pending_cluster_requests(
        &self,
        now: i64,
        max_age_ms: i64,
    ) -> Result<Vec<ClusterRequest>> {
        self.query(
            "UPDATE cluster_request SET state = 'abandoned', finished_at = ? \
             WHERE state = 'pending' AND requested_at < ?",
        )
        .bind(now)
        .bind(now - max_age_ms)
        .execute(&self.pool)
        .await?;
        let rows = self
            .query(
                "SELECT id, kind, requested_by FROM cluster_request \
             WHERE state = 'pending' ORDER BY id LIMIT 16",
            )
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(ClusterRequest {
                    id: r.try_get("id")?,
                    kind: r.try_get("kind")?,
                    requested_by: r.try_get("requested_by")?,
                })
            })
            .collect()
    }

    /// Claims a pending request for balancer `by`. False when another
    /// balancer claimed it or its asker abandoned it first.
    pub async fn claim_cluster_request(&self, id: i64, by: &str) -> Result<bool> {
        let r = self
            .query(
                "UPDATE cluster_request SET state = 'running', taken_by = ? \
             WHERE id = ? AND state = 'pending'",
            )
            .bind(by)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Records the outcome of a claimed request.
    pub async fn finish_cluster_request(
        &self,
        id: i64,
        status: u16,
        result: &str,
        now: i64,
    ) -> Result<()> {
        self.query(
            "UPDATE cluster_request SET state = 'done', status = ?, result = ?, finished_at = ? \
             WHERE id = ? AND state = 'running'",
        )
        .bind(i64::from(status))
        .bind(result)
        .bind(now)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Withdraws a request nobody has claimed yet. False when it is already
    /// running or done (its outcome will still be written).
    pub async fn abandon_cluster_request(&self, id: i64, now: i64) -> Result<bool> {
        let r = self
            .query(
                "UPDATE cluster_request SET state = 'abandoned', finished_at = ? \
             WHERE id = ? AND state = 'pending'",
            )
            .bind(now)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() == 1)
    }

    pub async fn cluster_request_state(&self, id: i64) -> Result<Option<RequestState>> {
        let Some(r) = self
            .query("SELECT state, taken_by, status, result FROM cluster_request WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
        else {
            return Ok(None);
        };
        let state: String = r.try_get("state")?;
        let by: Option<String> = r.try_get("taken_by")?;
        Ok(Some(match state.as_str() {
            "pending" => RequestState::Pending,
            "running" => RequestState::Running {
                by: by.unwrap_or_default(),
            },
            "done" => {
                let status: Option<i64> = r.try_get("status")?;
                RequestState::Done {
                    by: by.unwrap_or_default(),
                    status: status.and_then(|s| u16::try_from(s).ok()).unwrap_or(500),
                    result: r
                        .try_get::<Option<String>, _>("result")?
                        .unwrap_or_default(),
                }
            }
            _ => RequestState::Abandoned,
        }))
    }
}
