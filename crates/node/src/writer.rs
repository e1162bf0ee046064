//! The heartbeat writer: checks push results into a bounded in-memory buffer;
//! one loop writes them in multi-row batches every `flush` (or sooner when a
//! batch is full). While the DB is unreachable results stay buffered; past the
//! bound the oldest are dropped and counted, never silently.

use crate::metrics::Metrics;
use picket_shared::db::Db;
use picket_shared::model::Heartbeat;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

#[derive(Clone)]
pub struct Writer {
    inner: Arc<Inner>,
}

struct Inner {
    /// Results not yet written, oldest first.
    buf: Mutex<VecDeque<Heartbeat>>,
    /// Wakes the flush loop early when a full batch is waiting.
    full: Notify,
    cap: usize,
    batch: usize,
    metrics: Arc<Metrics>,
}

/// What one flush did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Flushed {
    pub written: u64,
    pub rejected: u64,
}

impl Writer {
    pub fn new(cap: usize, batch: usize, metrics: Arc<Metrics>) -> Self {
        Self {
            inner: Arc::new(Inner {
                buf: Mutex::new(VecDeque::new()),
                full: Notify::new(),
                cap,
                batch,
                metrics,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Heartbeat>> {
        self.inner.buf.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a result. Never blocks a check.
    pub fn push(&self, hb: Heartbeat) {
        let len = {
            let mut buf = self.lock();
            buf.push_back(hb);
            self.trim(&mut buf);
            buf.len()
        };
        self.inner.metrics.hb_buffered.set(len as i64);
        if len >= self.inner.batch {
            self.inner.full.notify_one();
        }
    }

    fn trim(&self, buf: &mut VecDeque<Heartbeat>) {
        let over = buf.len().saturating_sub(self.inner.cap);
        if over > 0 {
            buf.drain(..over);
            self.inner.metrics.hb_dropped.inc_by(over as u64);
        }
    }

    pub fn buffered(&self) -> usize {
        self.lock().len()
    }

    /// Writes up to one batch. On a DB error the batch goes back to the front
    /// of the buffer (order kept) and the error is returned.
    pub async fn flush_once(&self, db: &Db) -> Result<Flushed, picket_shared::db::DbError> {
        let batch: Vec<Heartbeat> = {
            let mut buf = self.lock();
            let n = buf.len().min(self.inner.batch);
            buf.drain(..n).collect()
        };
        if batch.is_empty() {
            return Ok(Flushed::default());
        }
        let m = &self.inner.metrics;
        let started = Instant::now();
        match db.insert_heartbeats(&batch).await {
            Ok(written) => {
                m.hb_write_seconds.observe(started.elapsed().as_secs_f64());
                m.hb_batches.inc();
                m.hb_batch_size.observe(batch.len() as f64);
                m.hb_written.inc_by(written);
                let rejected = batch.len() as u64 - written;
                m.hb_rejected.inc_by(rejected);
                m.hb_buffered.set(self.buffered() as i64);
                Ok(Flushed { written, rejected })
            }
            Err(e) => {
                m.hb_write_errors.inc();
                let mut buf = self.lock();
                for hb in batch.into_iter().rev() {
                    buf.push_front(hb);
                }
                self.trim(&mut buf);
                m.hb_buffered.set(buf.len() as i64);
                Err(e)
            }
        }
    }

    /// Writes everything buffered, stopping at the first error.
    pub async fn flush_all(&self, db: &Db) -> Result<u64, picket_shared::db::DbError> {
        let mut total = 0;
        while self.buffered() > 0 {
            total += self.flush_once(db).await?.written;
        }
        Ok(total)
    }

    /// The flush loop: every `every` (or when a batch is full) write what is
    /// buffered; back off while the DB fails. Returns when `shutdown` resolves,
    /// after a last flush bounded by `drain_for`.
    pub async fn run(
        self,
        db: Db,
        every: Duration,
        shutdown: impl std::future::Future<Output = ()>,
        drain_for: Duration,
    ) {
        tokio::pin!(shutdown);
        let mut backoff = every;
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                _ = tokio::time::sleep(backoff) => {},
                _ = self.inner.full.notified() => {},
            }
            match self.flush_all(&db).await {
                Ok(_) => backoff = every,
                Err(e) => {
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    tracing::warn!(cause = %e, buffered = self.buffered(), "heartbeat write failed; keeping results in memory");
                }
            }
        }
        match tokio::time::timeout(drain_for, self.flush_all(&db)).await {
            Ok(Ok(n)) => tracing::info!(written = n, "heartbeats flushed"),
            Ok(Err(e)) => {
                tracing::error!(cause = %e, lost = self.buffered(), "final heartbeat flush failed")
            }
            Err(_) => tracing::error!(lost = self.buffered(), "final heartbeat flush timed out"),
        }
    }
}
