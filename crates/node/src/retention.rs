//! Retention: raw heartbeats older than `PICKET_HEARTBEAT_RETENTION_DAYS`
//! are deleted, and the uptime aggregates past their windows. Every node runs
//! the same idempotent pass; a second node's pass simply finds less to delete.

use picket_shared::db::{Db, DbError};
use picket_shared::now_ms;
use std::future::Future;
use std::time::Duration;

/// How often the pass runs.
pub const EVERY: Duration = Duration::from_secs(600);

/// One pass; returns the heartbeats deleted.
pub async fn prune_once(db: &Db, retention: Duration) -> Result<u64, DbError> {
    db.prune(now_ms(), retention.as_millis() as i64).await
}

/// Runs [`prune_once`] now and every [`EVERY`] until `shutdown` resolves.
pub async fn run(db: Db, retention: Duration, shutdown: impl Future<Output = ()>) {
    tokio::pin!(shutdown);
    loop {
        match prune_once(&db, retention).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(deleted = n, "pruned old heartbeats"),
            Err(e) => tracing::warn!(cause = %e, "pruning heartbeats failed"),
        }
        tokio::select! {
            _ = &mut shutdown => return,
            _ = tokio::time::sleep(EVERY) => {}
        }
    }
}
