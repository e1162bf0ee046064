//! Pruning: raw heartbeats past their retention, aggregates past the
//! windows they serve, sessions that can no longer open.

use super::{DAY_MS, Db, Result};

/// How long each aggregate table keeps its buckets: a little past the window
/// it serves (24 h, 7 d, 30 d), the per-day one for a year and more.
const STAT_KEEP: [(&str, i64); 3] = [
    ("stat_minute", 2 * DAY_MS),
    ("stat_hour", 35 * DAY_MS),
    ("stat_day", 400 * DAY_MS),
];

/// Heartbeats deleted per statement, so no statement holds locks for long.
const PRUNE_BATCH: u64 = 5000;

impl Db {
    /// Deletes raw heartbeats older than `heartbeat_retention_ms` (in batches)
    /// aggregates past their windows and dead sessions. Returns the
    /// heartbeats deleted.
    pub async fn prune(&self, now_ms: i64, heartbeat_retention_ms: i64) -> Result<u64> {
        let mut deleted = 0;
        loop {
            // The double derived table lets MySQL take a LIMIT inside IN.
            let n = self
                .query_built(format!(
                    "DELETE FROM heartbeat WHERE id IN (SELECT id FROM \
                     (SELECT id FROM heartbeat WHERE time < ? ORDER BY id LIMIT {PRUNE_BATCH}) x)"
                ))
                .bind(now_ms - heartbeat_retention_ms)
                .execute(&self.pool)
                .await?
                .rows_affected();
            deleted += n;
            if n < PRUNE_BATCH {
                break;
            }
        }
        for (table, keep) in STAT_KEEP {
            self.query_built(format!("DELETE FROM {table} WHERE ts < ?"))
                .bind(now_ms - keep)
                .execute(&self.pool)
                .await?;
        }
        self.prune_sessions(now_ms).await?;
        Ok(deleted)
    }
}
