//! Heartbeats: conditional multi-row inserts (a node that lost a monitor
//! cannot record results for it), node batches written at most once under
//! their sequence number, and reads.

use super::dialect::Set;
use super::stats::{STAT_TABLES, aggregate};
use super::{Db, Result};
use crate::ids::{MonitorId, NodeId};
use crate::model::{Heartbeat, Status};
use crate::notify::EventKind;
use sqlx::Row;
use sqlx::any::AnyRow;

/// Heartbeat rows per INSERT statement: SQLite allows at most 500 terms in a
/// compound SELECT, and 10 columns × 200 rows stays well under bind limits.
const HEARTBEAT_CHUNK: usize = 200;

/// Names one batch of one node's heartbeats across retries: the node's own
/// sequence number, increasing from batch to batch.
#[derive(Debug, Clone, Copy)]
pub struct BatchKey<'a> {
    pub node: &'a NodeId,
    pub seq: i64,
}

impl Db {
    /// Writes heartbeats with multi-row inserts, keeping only rows whose node is
    /// still the monitor's effective owner: a node that lost a monitor cannot
    /// record results for it, whatever it believes. The uptime aggregates
    /// (minute, hour, day) are updated in the same transaction under the same
    /// ownership condition, so they count exactly the rows written. Returns
    /// rows written.
    pub async fn insert_heartbeats(&self, beats: &[Heartbeat]) -> Result<u64> {
        let (written, events) = in_tx!(self, |c| self.write_heartbeats(c, beats).await)?;
        self.count_events(&events);
        Ok(written)
    }

    /// [`Db::insert_heartbeats`] for a node's batch, at most once per `key`.
    /// The batch and its sequence number commit together; with `retry` (an
    /// earlier attempt under this key may have committed unseen) a batch
    /// already recorded is not written again, and the row count recorded
    /// then is returned.
    pub async fn insert_heartbeat_batch(
        &self,
        key: BatchKey<'_>,
        beats: &[Heartbeat],
        retry: bool,
    ) -> Result<u64> {
        let record = format!(
            "INSERT INTO heartbeat_batch (node_id, seq, written) VALUES (?, ?, ?){}",
            self.dialect().upsert(
                "heartbeat_batch",
                &["node_id"],
                &[Set::New("seq"), Set::New("written")],
                &[]
            )
        );
        let (written, events) = in_tx!(self, |c| {
            if retry {
                let last = self
                    .query("SELECT seq, written FROM heartbeat_batch WHERE node_id = ?")
                    .bind(key.node.as_str())
                    .fetch_optional(&mut *c)
                    .await?;
                if let Some(r) = last
                    && r.try_get::<i64, _>("seq")? == key.seq
                {
                    return Ok((r.try_get::<i64, _>("written")? as u64, Vec::new()));
                }
            }
            let (written, events) = self.write_heartbeats(c, beats).await?;
            self.query_built(record)
                .bind(key.node.as_str())
                .bind(key.seq)
                .bind(written as i64)
                .execute(&mut *c)
                .await?;
            Ok((written, events))
        })?;
        self.count_events(&events);
        Ok(written)
    }

    /// The statements of a heartbeat write, inside the caller's
    /// transaction. Returns the rows written and the events queued.
    async fn write_heartbeats(
        &self,
        c: &mut sqlx::AnyConnection,
        beats: &[Heartbeat],
    ) -> Result<(u64, Vec<EventKind>)> {
        let mut written = 0;
        let mut events = Vec::new();
        for chunk in beats.chunks(HEARTBEAT_CHUNK) {
            let row =
                "SELECT ? AS m, ? AS n, ? AS s, ? AS t, ? AS p, ? AS g, ? AS i, ? AS d, ? AS r";
            let mut sql = String::with_capacity(64 + chunk.len() * 80);
            sql.push_str(
                "INSERT INTO heartbeat (monitor_id, node_id, status, time, ping, msg, important, duration, retries) \
                 SELECT v.m, v.n, v.s, v.t, v.p, v.g, v.i, v.d, v.r FROM (",
            );
            for i in 0..chunk.len() {
                if i > 0 {
                    sql.push_str(" UNION ALL ");
                }
                sql.push_str(row);
            }
            sql.push_str(") v JOIN monitor ON monitor.id = v.m AND monitor.owner = v.n");
            let mut q = self.query_built(sql);
            for b in chunk {
                q = q
                    .bind(b.monitor_id.0)
                    .bind(b.node_id.as_str())
                    .bind(b.status as i64)
                    .bind(b.time)
                    .bind(b.ping)
                    .bind(b.msg.as_str())
                    .bind(i64::from(b.important))
                    .bind(b.duration)
                    .bind(i64::from(b.retries));
            }
            let n = q.execute(&mut *c).await?.rows_affected();
            if n > 0 {
                // The owners the insert joined on: its join locked those
                // monitor rows (InnoDB) or the transaction holds the write
                // lock (SQLite), so they are the owners it kept beats for,
                // and the notification step judges exactly those beats.
                // Read after the insert so the transaction writes first (no
                // lock upgrade on SQLite).
                let owned = self.owners_in(c, chunk).await?;
                for (table, bucket) in STAT_TABLES {
                    self.add_stats(c, table, &aggregate(chunk, bucket)).await?;
                }
                let written: Vec<&Heartbeat> = chunk
                    .iter()
                    .filter(|b| {
                        owned
                            .get(&b.monitor_id)
                            .is_some_and(|o| o.owner == b.node_id)
                    })
                    .collect();
                self.keep_latest(c, &written).await?;
                events.extend(self.queue_alerts(c, &written, &owned).await?);
            }
            written += n;
        }
        Ok((written, events))
    }

    /// Heartbeats of a monitor since `since_ms`, newest first, at most `limit`.
    pub async fn heartbeats(
        &self,
        id: MonitorId,
        since_ms: i64,
        limit: i64,
    ) -> Result<Vec<Heartbeat>> {
        self.query_built(format!(
            "SELECT monitor_id, node_id, status, time, ping, msg, important, duration, retries \
             FROM heartbeat WHERE monitor_id = ? AND time >= ? ORDER BY time DESC, id DESC LIMIT {limit}"
        ))
        .bind(id.0)
        .bind(since_ms)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(heartbeat_from_row)
        .collect()
    }
}

pub(crate) fn heartbeat_from_row(r: &AnyRow) -> Result<Heartbeat> {
    let status: i64 = r.try_get("status")?;
    Ok(Heartbeat {
        monitor_id: MonitorId(r.try_get("monitor_id")?),
        node_id: NodeId(r.try_get("node_id")?),
        status: Status::try_from(status).unwrap_or(Status::Down),
        time: r.try_get("time")?,
        ping: r.try_get("ping")?,
        msg: r.try_get("msg")?,
        important: r.try_get::<i64, _>("important")? != 0,
        duration: r.try_get("duration")?,
        retries: r.try_get::<i64, _>("retries")? as u32,
    })
}
