//! The heartbeat writer: checks push results into a bounded in-memory buffer;
//! one loop writes them in multi-row batches every `flush` (or sooner when a
//! batch is full). While the DB is unreachable results stay buffered; past the
//! bound the oldest are dropped and counted, never silently.
//!
//! Each batch carries a sequence number. A batch whose write failed is kept
//! aside and retried as it was, under the same number, before anything else:
//! if the failure came after the database committed it (a connection cut
//! around COMMIT), the database recognises the number and the batch is not
//! written twice.

use crate::metrics::Metrics;
use picket_shared::NodeId;
use picket_shared::db::{BatchKey, Db};
use picket_shared::model::Heartbeat;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// Deadlock victims in a row that are retried at once, before backing off.
const DEADLOCK_RETRIES: u32 = 3;

#[derive(Clone)]
pub struct Writer {
    inner: Arc<Inner>,
}

struct Inner {
    state: Mutex<State>,
    /// Wakes the flush loop early when a full batch is waiting.
    full: Notify,
    cap: usize,
    batch: usize,
    node: NodeId,
    /// The next batch's sequence number.
    seq: AtomicI64,
    metrics: Arc<Metrics>,
}

#[derive(Default)]
struct State {
    /// Results not yet written, oldest first.
    buf: VecDeque<Heartbeat>,
    /// A batch whose last write failed, perhaps after it committed: it is
    /// written next, as it was and under the same number.
    in_doubt: Option<(i64, Vec<Heartbeat>)>,
}

impl State {
    fn len(&self) -> usize {
        self.buf.len() + self.in_doubt.as_ref().map_or(0, |(_, b)| b.len())
    }
}

/// What one flush did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Flushed {
    pub written: u64,
    pub rejected: u64,
}

impl Writer {
    /// `node`'s writer. Sequence numbers start at the current time in
    /// microseconds, so a restarted node never reuses one of its earlier
    /// process's numbers (it would need a million batches a second to).
    pub fn new(cap: usize, batch: usize, node: NodeId, metrics: Arc<Metrics>) -> Self {
        Self {
            inner: Arc::new(Inner {
                state: Mutex::new(State::default()),
                full: Notify::new(),
                cap,
                batch,
                node,
                seq: AtomicI64::new(picket_shared::now_ms().saturating_mul(1000)),
                metrics,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a result. Never blocks a check.
    pub fn push(&self, hb: Heartbeat) {
        let len = {
            let mut st = self.lock();
            st.buf.push_back(hb);
            self.trim(&mut st);
            st.len()
        };
        self.inner.metrics.hb_buffered.set(len as i64);
        if len >= self.inner.batch {
            self.inner.full.notify_one();
        }
    }

    /// Drops the oldest queued results past the bound (never the batch in
    /// doubt, which may already be written).
    fn trim(&self, st: &mut State) {
        let over = st.len().saturating_sub(self.inner.cap).min(st.buf.len());
        if over > 0 {
            st.buf.drain(..over);
            self.inner.metrics.hb_dropped.inc_by(over as u64);
        }
    }

    /// Results not yet known to be written, the batch in doubt included.
    pub fn buffered(&self) -> usize {
        self.lock().len()
    }

    /// The sequence number of the batch whose last write failed, if any.
    pub fn in_doubt(&self) -> Option<i64> {
        self.lock().in_doubt.as_ref().map(|(seq, _)| *seq)
    }

    /// Writes up to one batch: the batch in doubt if there is one, else the
    /// oldest queued results. On a DB error the batch is kept in doubt and
    /// the error is returned.
    pub async fn flush_once(&self, db: &Db) -> Result<Flushed, picket_shared::db::DbError> {
        let (seq, batch, retry) = {
            let mut st = self.lock();
            match st.in_doubt.take() {
                Some((seq, batch)) => (seq, batch, true),
                None => {
                    let n = st.buf.len().min(self.inner.batch);
                    let batch: Vec<Heartbeat> = st.buf.drain(..n).collect();
                    (self.inner.seq.fetch_add(1, Ordering::Relaxed), batch, false)
                }
            }
        };
        if batch.is_empty() {
            return Ok(Flushed::default());
        }
        let m = &self.inner.metrics;
        let started = Instant::now();
        let key = BatchKey {
            node: &self.inner.node,
            seq,
        };
        match db.insert_heartbeat_batch(key, &batch, retry).await {
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
                let mut st = self.lock();
                st.in_doubt = Some((seq, batch));
                m.hb_buffered.set(st.len() as i64);
                Err(e)
            }
        }
    }

    /// Writes everything buffered, including what arrives meanwhile, stopping
    /// at the first error (the final drain).
    pub async fn flush_all(&self, db: &Db) -> Result<u64, picket_shared::db::DbError> {
        let mut total = 0;
        while self.buffered() > 0 {
            total += self.flush_once(db).await?.written;
        }
        Ok(total)
    }

    /// Writes what is buffered now, in full batches and one remainder, but
    /// not what arrives meanwhile: that waits for the next tick or a full
    /// batch, so a steady stream is written in large batches rather than
    /// chased in small ones. Stops at the first error.
    pub async fn flush_due(&self, db: &Db) -> Result<u64, picket_shared::db::DbError> {
        let mut due = self.buffered();
        let mut total = 0;
        while due > 0 {
            let f = self.flush_once(db).await?;
            let taken = (f.written + f.rejected) as usize;
            if taken == 0 {
                break;
            }
            total += f.written;
            due = due.saturating_sub(taken);
        }
        Ok(total)
    }

    /// The flush loop: every `every` (or when a batch is full) write what is
    /// due; back off while the DB fails, retrying deadlock victims at once.
    /// Returns when `shutdown` resolves, after a last flush of everything,
    /// bounded by `drain_for`.
    pub async fn run(
        self,
        db: Db,
        every: Duration,
        shutdown: impl std::future::Future<Output = ()>,
        drain_for: Duration,
    ) {
        tokio::pin!(shutdown);
        let mut backoff = every;
        let mut failing = false;
        let mut deadlocks = 0;
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                _ = tokio::time::sleep(backoff) => {},
                // While writes fail the buffer stays full, and every new
                // result would wake the loop: only the backoff does then.
                _ = self.inner.full.notified(), if !failing => {},
            }
            match self.flush_due(&db).await {
                Ok(_) => {
                    backoff = every;
                    failing = false;
                    deadlocks = 0;
                }
                // Chosen as a deadlock victim (the ownership join's shared
                // locks against a monitor update): rolled back, so retried
                // at once, a few times, before it counts as failing.
                Err(e) if e.is_deadlock() && deadlocks < DEADLOCK_RETRIES => {
                    deadlocks += 1;
                    backoff = Duration::from_millis(10);
                    failing = true;
                    tracing::debug!(cause = %e, "heartbeat batch was a deadlock victim; retrying");
                }
                Err(e) => {
                    deadlocks = 0;
                    backoff = (backoff.max(every) * 2).min(Duration::from_secs(5));
                    failing = true;
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
