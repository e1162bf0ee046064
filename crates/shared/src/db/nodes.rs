//! Nodes: registration, the node lease (`last_seen`), the health checker's
//! counters and status, and owned-monitor counts.

use super::dialect::Set;
use super::{Db, DbError, Result};
use crate::ids::NodeId;
use crate::model::{Node, NodeHealth, NodeStatus};
use crate::now_ms;
use sqlx::Row;
use sqlx::any::AnyRow;
use std::collections::BTreeMap;

const NODE_COLS: &str = "node_id, node_name, host, status, last_seen, hc_fails, hc_passes, \
    hc_last_at, hc_last_ok, hc_last_ms, hc_last_error, created_at, modified_at";

impl Db {
    /// Registers a node at start-up. A new node is `online`; a known one keeps
    /// `offline` (the balancer's health checker brings it back after `rise`
    /// passes) but a `leaving` one is online again at once.
    pub async fn register_node(&self, id: &NodeId, name: &str, host: &str) -> Result<()> {
        let now = now_ms();
        let sql = format!(
            "INSERT INTO node (node_id, node_name, host, status, last_seen, created_at, modified_at) \
             VALUES (?, ?, ?, 'online', ?, ?, ?){}",
            self.dialect().upsert(
                "node",
                &["node_id"],
                &[
                    Set::New("node_name"),
                    Set::New("host"),
                    Set::New("last_seen"),
                    Set::New("modified_at"),
                ],
                &[
                    "status = CASE WHEN node.status = 'offline' THEN 'offline' ELSE 'online' END"
                        .into()
                ],
            )
        );
        self.query_built(sql)
            .bind(id.as_str())
            .bind(name)
            .bind(host)
            .bind(now)
            .bind(now)
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Creates a node row through the API (`online`, never seen yet).
    pub async fn create_node(&self, id: &NodeId, name: &str, host: &str) -> Result<Node> {
        let now = now_ms();
        let r = self
            .query(
                "INSERT INTO node (node_id, node_name, host, status, last_seen, created_at, modified_at) \
                 VALUES (?, ?, ?, 'online', 0, ?, ?)",
            )
            .bind(id.as_str())
            .bind(name)
            .bind(host)
            .bind(now)
            .bind(now)
            .execute(&self.pool)
            .await;
        match r {
            Ok(_) => {}
            Err(sqlx::Error::Database(d)) if d.is_unique_violation() => {
                return Err(DbError::Rejected {
                    field: "node_id",
                    msg: format!("node '{id}' already exists"),
                });
            }
            Err(e) => return Err(e.into()),
        }
        self.node(id)
            .await?
            .ok_or_else(|| DbError::NotFound(format!("node {id}")))
    }

    /// Renews a node's lease. Returns false when the row is gone.
    pub async fn renew_lease(&self, id: &NodeId, now: i64) -> Result<bool> {
        let r = self
            .query("UPDATE node SET last_seen = ? WHERE node_id = ?")
            .bind(now)
            .bind(id.as_str())
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() > 0)
    }

    pub async fn nodes(&self) -> Result<Vec<Node>> {
        let rows = self
            .query_built(format!("SELECT {NODE_COLS} FROM node ORDER BY node_id"))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(node_from_row).collect()
    }

    pub async fn node(&self, id: &NodeId) -> Result<Option<Node>> {
        let row = self
            .query_built(format!("SELECT {NODE_COLS} FROM node WHERE node_id = ?"))
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(node_from_row).transpose()
    }

    /// Updates a node's name and/or host.
    pub async fn update_node(
        &self,
        id: &NodeId,
        name: Option<&str>,
        host: Option<&str>,
    ) -> Result<Node> {
        let r = self
            .query(
                "UPDATE node SET node_name = COALESCE(?, node_name), host = COALESCE(?, host), \
                 modified_at = ? WHERE node_id = ?",
            )
            .bind(name)
            .bind(host)
            .bind(now_ms())
            .bind(id.as_str())
            .execute(&self.pool)
            .await?;
        if r.rows_affected() == 0 {
            return Err(DbError::NotFound(format!("node {id}")));
        }
        self.node(id)
            .await?
            .ok_or_else(|| DbError::NotFound(format!("node {id}")))
    }

    /// Deletes a node that is home to no monitor and runs none.
    pub async fn delete_node(&self, id: &NodeId) -> Result<()> {
        in_tx!(self, |c| {
            let r = self
                .query("DELETE FROM node WHERE node_id = ?")
                .bind(id.as_str())
                .execute(&mut *c)
                .await?;
            if r.rows_affected() == 0 {
                return Err(DbError::NotFound(format!("node {id}")));
            }
            let n: i64 = self
                .query(
                    "SELECT COUNT(*) AS n FROM monitor WHERE default_node_id = ? OR assign_node = ?",
                )
                .bind(id.as_str())
                .bind(id.as_str())
                .fetch_one(&mut *c)
                .await?
                .try_get("n")?;
            if n > 0 {
                return Err(DbError::Rejected {
                    field: "node_id",
                    msg: format!(
                        "node '{id}' still has {n} monitors; rebalance or move them first"
                    ),
                });
            }
            Ok(())
        })
    }

    /// Sets a node's status (the balancer's health checker, or a node leaving).
    pub async fn set_node_status(&self, id: &NodeId, status: NodeStatus) -> Result<()> {
        self.query("UPDATE node SET status = ?, modified_at = ? WHERE node_id = ?")
            .bind(status.as_str())
            .bind(now_ms())
            .bind(id.as_str())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Persists the health checker's counters for a node.
    pub async fn save_node_health(&self, id: &NodeId, h: &NodeHealth) -> Result<()> {
        self.query(
            "UPDATE node SET hc_fails = ?, hc_passes = ?, hc_last_at = ?, hc_last_ok = ?, \
             hc_last_ms = ?, hc_last_error = ? WHERE node_id = ?",
        )
        .bind(i64::from(h.fails))
        .bind(i64::from(h.passes))
        .bind(h.last_at)
        .bind(h.last_ok.map(i64::from))
        .bind(h.last_ms)
        .bind(h.last_error.as_deref())
        .bind(id.as_str())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Owned active monitors per node (effective owner), for every node with any.
    pub async fn owner_counts(&self) -> Result<BTreeMap<NodeId, usize>> {
        let mut c = self.pool.acquire().await?;
        self.owner_counts_in(&mut c).await
    }

    pub(crate) async fn owner_counts_in(
        &self,
        c: &mut sqlx::AnyConnection,
    ) -> Result<BTreeMap<NodeId, usize>> {
        let rows = self
            .query("SELECT owner, COUNT(*) AS n FROM monitor WHERE active = 1 GROUP BY owner")
            .fetch_all(&mut *c)
            .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    NodeId(r.try_get("owner")?),
                    r.try_get::<i64, _>("n")? as usize,
                ))
            })
            .collect()
    }

    /// The ids of the online nodes, inside the caller's transaction.
    pub(crate) async fn online_nodes_in(&self, c: &mut sqlx::AnyConnection) -> Result<Vec<NodeId>> {
        self.query("SELECT node_id FROM node WHERE status = 'online'")
            .fetch_all(&mut *c)
            .await?
            .iter()
            .map(|r| Ok(NodeId(r.try_get("node_id")?)))
            .collect()
    }

    /// `DbError::Rejected` on `node_id` unless node `id` exists.
    pub(crate) async fn require_node(&self, c: &mut sqlx::AnyConnection, id: &str) -> Result<()> {
        let known = self
            .query("SELECT node_id FROM node WHERE node_id = ?")
            .bind(id)
            .fetch_optional(&mut *c)
            .await?;
        match known {
            Some(_) => Ok(()),
            None => Err(DbError::Rejected {
                field: "node_id",
                msg: format!("unknown node '{id}'"),
            }),
        }
    }
}

fn node_from_row(r: &AnyRow) -> Result<Node> {
    let status: String = r.try_get("status")?;
    Ok(Node {
        node_id: NodeId(r.try_get("node_id")?),
        node_name: r.try_get("node_name")?,
        host: r.try_get("host")?,
        status: NodeStatus::parse(&status).unwrap_or(NodeStatus::Offline),
        last_seen: r.try_get("last_seen")?,
        health: NodeHealth {
            fails: r.try_get::<i64, _>("hc_fails")? as u32,
            passes: r.try_get::<i64, _>("hc_passes")? as u32,
            last_at: r.try_get("hc_last_at")?,
            last_ok: r.try_get::<Option<i64>, _>("hc_last_ok")?.map(|v| v != 0),
            last_ms: r.try_get("hc_last_ms")?,
            last_error: r.try_get("hc_last_error")?,
        },
        created_at: r.try_get("created_at")?,
        modified_at: r.try_get("modified_at")?,
    })
}
