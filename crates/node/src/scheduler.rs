//! The scheduler: one lightweight task per owned monitor, each sleeping until
//! its next due time, taking a slot from a shared semaphore (bounded
//! concurrency), running its check with the monitor's timeout, and pushing the
//! heartbeat to the writer. Schedules are fixed-rate from the planned time, so
//! they do not drift by the check duration.

use crate::beat::{self, BeatState};
use crate::checks::{self, CheckContext};
use crate::metrics::Metrics;
use crate::writer::Writer;
use picket_shared::model::Heartbeat;
use picket_shared::monitor::MonitorSpec;
use picket_shared::{MonitorId, NodeId, now_ms};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// The node's lease as the scheduler sees it: checks run only while the last
/// successful renewal is younger than `ttl` (self-fencing).
pub struct Lease {
    origin: Instant,
    /// Milliseconds after `origin` of the last renewal (0 = never).
    renewed_ms: AtomicU64,
    ttl: Duration,
}

impl Lease {
    pub fn new(ttl: Duration) -> Self {
        Self {
            origin: Instant::now(),
            renewed_ms: AtomicU64::new(0),
            ttl,
        }
    }

    /// Records a renewal that started at `at`.
    pub fn renewed(&self, at: Instant) {
        let ms = at.saturating_duration_since(self.origin).as_millis() as u64 + 1;
        self.renewed_ms.fetch_max(ms, Ordering::Relaxed);
    }

    /// Whether the node may execute checks now.
    pub fn is_valid(&self) -> bool {
        let renewed = self.renewed_ms.load(Ordering::Relaxed);
        renewed > 0 && self.origin + Duration::from_millis(renewed - 1) + self.ttl > Instant::now()
    }
}

/// What `Scheduler::ensure` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ensured {
    Started,
    Restarted,
    Unchanged,
}

#[derive(Clone)]
pub struct Scheduler {
    inner: Arc<Inner>,
}

struct Inner {
    node_id: NodeId,
    ctx: CheckContext,
    /// Bounds the checks in flight at once.
    slots: Semaphore,
    writer: Writer,
    metrics: Arc<Metrics>,
    lease: Arc<Lease>,
    /// The monitors running now, with the spec each task was started with.
    running: Mutex<HashMap<MonitorId, Running>>,
}

struct Running {
    spec: Arc<MonitorSpec>,
    task: JoinHandle<()>,
}

impl Scheduler {
    pub fn new(
        node_id: NodeId,
        max_concurrent: usize,
        writer: Writer,
        metrics: Arc<Metrics>,
        lease: Arc<Lease>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                ctx: CheckContext::new(node_id.as_str()),
                node_id,
                slots: Semaphore::new(max_concurrent),
                writer,
                metrics,
                lease,
                running: Mutex::new(HashMap::new()),
            }),
        }
    }

    fn running(&self) -> std::sync::MutexGuard<'_, HashMap<MonitorId, Running>> {
        self.inner.running.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `spec` for monitor `id`, first check after `start_in`; restarts the
    /// task when the spec changed, leaves it alone when it did not.
    pub fn ensure(&self, id: MonitorId, spec: MonitorSpec, start_in: Duration) -> Ensured {
        let mut running = self.running();
        let outcome = match running.get(&id) {
            Some(r) if *r.spec == spec => return Ensured::Unchanged,
            Some(r) => {
                r.task.abort();
                Ensured::Restarted
            }
            None => Ensured::Started,
        };
        let spec = Arc::new(spec);
        let task = tokio::spawn(run_monitor(self.inner.clone(), id, spec.clone(), start_in));
        running.insert(id, Running { spec, task });
        self.inner.metrics.owned_monitors.set(running.len() as i64);
        outcome
    }

    /// Stops monitor `id` if it runs here. Returns whether it did.
    pub fn stop(&self, id: MonitorId) -> bool {
        let mut running = self.running();
        let stopped = running.remove(&id).map(|r| r.task.abort()).is_some();
        self.inner.metrics.owned_monitors.set(running.len() as i64);
        stopped
    }

    pub fn stop_all(&self) {
        let mut running = self.running();
        for (_, r) in running.drain() {
            r.task.abort();
        }
        self.inner.metrics.owned_monitors.set(0);
    }

    pub fn len(&self) -> usize {
        self.running().len()
    }

    pub fn contains(&self, id: MonitorId) -> bool {
        self.running().contains_key(&id)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn ids(&self) -> Vec<MonitorId> {
        let mut v: Vec<_> = self.running().keys().copied().collect();
        v.sort_unstable();
        v
    }
}

async fn run_monitor(inner: Arc<Inner>, id: MonitorId, spec: Arc<MonitorSpec>, start_in: Duration) {
    let ty = spec.kind.monitor_type().as_str();
    let timeout = Duration::from_millis(spec.timeout_ms.into());
    let mut state = BeatState::default();
    let mut last_beat_ms: Option<i64> = None;
    let mut due = Instant::now() + start_in;
    loop {
        tokio::time::sleep_until(due).await;
        let Ok(permit) = inner.slots.acquire().await else {
            return;
        };
        let started = Instant::now();
        inner
            .metrics
            .schedule_lag
            .observe(started.saturating_duration_since(due).as_secs_f64());

        let next_in = if inner.lease.is_valid() {
            // Boxed so the (large) check future lives only while it runs, not in
            // every idle task.
            let outcome = Box::pin(checks::run(&spec.kind, timeout, &inner.ctx)).await;
            drop(permit);
            let m = &inner.metrics;
            m.check_duration
                .with_label_values(&[ty])
                .observe(started.elapsed().as_secs_f64());
            m.checks
                .with_label_values(&[ty, if outcome.up { "up" } else { "down" }])
                .inc();
            let b = beat::decide(
                state,
                outcome.up,
                spec.max_retries,
                spec.interval_secs,
                spec.retry_interval_secs,
            );
            state = b.next;
            let now = now_ms();
            inner.writer.push(Heartbeat {
                monitor_id: id,
                node_id: inner.node_id.clone(),
                status: b.status,
                time: now,
                ping: outcome.ping_ms,
                msg: outcome.msg,
                important: b.important,
                duration: last_beat_ms.map_or(0, |t| (now - t + 500) / 1000),
                retries: b.next.retries,
            });
            last_beat_ms = Some(now);
            b.next_in_secs
        } else {
            drop(permit);
            inner
                .metrics
                .checks_skipped
                .with_label_values(&["fenced"])
                .inc();
            spec.interval_secs
        };
        due += Duration::from_secs(next_in.into());
        // After an overrun (or a pause), resume from now instead of bursting.
        let now = Instant::now();
        if due < now {
            due = now;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn lease_lapses_after_ttl_and_renewal_restores_it() {
        let lease = Lease::new(Duration::from_secs(15));
        assert!(!lease.is_valid(), "never renewed");
        lease.renewed(Instant::now());
        assert!(lease.is_valid());
        tokio::time::advance(Duration::from_secs(14)).await;
        assert!(lease.is_valid());
        tokio::time::advance(Duration::from_secs(2)).await;
        assert!(!lease.is_valid(), "16 s without renewal");
        lease.renewed(Instant::now());
        assert!(lease.is_valid());
    }
}
