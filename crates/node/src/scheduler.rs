//! The scheduler: one lightweight task per owned monitor, each sleeping until
//! its next due time, taking a slot from a shared semaphore (bounded
//! concurrency), running its check with the monitor's timeout, and pushing the
//! heartbeat to the writer. Schedules are fixed-rate from the planned time, so
//! they do not drift by the check duration.

use crate::beat::{self, BeatState};
use crate::checks::{self, CheckContext, Outcome, push};
use crate::metrics::{Metrics, MonitorLabels};
use crate::writer::Writer;
use picket_shared::addr::url_without_secrets;
use picket_shared::db::Db;
use picket_shared::model::{Heartbeat, Status, TlsInfo};
use picket_shared::monitor::{MonitorKind, MonitorSpec};
use picket_shared::{MonitorId, NodeId, now_ms};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
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

/// When a monitor that starts running is first checked, counted from now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Start {
    /// Delay of the first check.
    pub first: Duration,
    /// Delay of the point its fixed-rate schedule counts from: the second check
    /// is due one interval after it. The node's start-up round pulls first
    /// checks ahead of their phases without changing the steady-state spread.
    pub phase: Duration,
}

impl Start {
    /// First check after `d`, and the schedule counts from it.
    pub fn after(d: Duration) -> Self {
        Self { first: d, phase: d }
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
    /// The database, for what checks read or record besides heartbeats (push
    /// monitors read their latest beat; certificate facts are saved). Set once
    /// by [`Scheduler::attach_db`]; without it push monitors are skipped.
    db: OnceLock<Db>,
}

struct Running {
    spec: Arc<MonitorSpec>,
    task: JoinHandle<()>,
    /// The monitor's Prometheus label values, to drop its series when it stops.
    labels: MonitorLabels,
}

/// Uptime Kuma's per-monitor labels for `spec`, exported by `node`.
pub fn monitor_labels(id: MonitorId, spec: &MonitorSpec, node: &NodeId) -> MonitorLabels {
    // Whoever reads metrics must not read the targets' credentials or query
    // strings (tokens often travel there).
    let (url, hostname, port) = match &spec.kind {
        MonitorKind::Http(h) => (url_without_secrets(&h.url), "", String::new()),
        MonitorKind::Port { hostname, port } => {
            (String::new(), hostname.as_str(), port.to_string())
        }
        MonitorKind::Dns(d) => (String::new(), d.hostname.as_str(), d.port.to_string()),
        MonitorKind::Ping { hostname, .. } => (String::new(), hostname.as_str(), String::new()),
        MonitorKind::Push => (String::new(), "", String::new()),
    };
    let id_text = id.0.to_string();
    let values = [
        id_text.as_str(),
        spec.name.as_str(),
        spec.kind.monitor_type().as_str(),
        url.as_str(),
        hostname,
        port.as_str(),
    ];
    MonitorLabels::new(id, values, node.as_str())
}

impl Scheduler {
    pub fn new(
        node_id: NodeId,
        max_concurrent: usize,
        writer: Writer,
        metrics: Arc<Metrics>,
        lease: Arc<Lease>,
        egress: picket_shared::egress::EgressPolicy,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                ctx: CheckContext::new(node_id.as_str(), egress),
                node_id,
                slots: Semaphore::new(max_concurrent),
                writer,
                metrics,
                lease,
                running: Mutex::new(HashMap::new()),
                db: OnceLock::new(),
            }),
        }
    }

    /// Gives checks the database (see `Inner::db`). Later calls are ignored.
    pub fn attach_db(&self, db: Db) {
        let _ = self.inner.db.set(db);
    }

    fn running(&self) -> std::sync::MutexGuard<'_, HashMap<MonitorId, Running>> {
        self.inner.running.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `spec` for monitor `id`, scheduled by `start`; restarts the task
    /// when the spec changed, leaves it alone when it did not.
    pub fn ensure(&self, id: MonitorId, spec: MonitorSpec, start: Start) -> Ensured {
        let mut running = self.running();
        let outcome = match running.get(&id) {
            Some(r) if *r.spec == spec => return Ensured::Unchanged,
            Some(r) => {
                r.task.abort();
                Ensured::Restarted
            }
            None => Ensured::Started,
        };
        let labels = monitor_labels(id, &spec, &self.inner.node_id);
        self.inner.metrics.monitors.register(&labels);
        let spec = Arc::new(spec);
        let task = tokio::spawn(run_monitor(
            self.inner.clone(),
            id,
            spec.clone(),
            labels.clone(),
            start,
        ));
        running.insert(id, Running { spec, task, labels });
        self.inner.metrics.owned_monitors.set(running.len() as i64);
        outcome
    }

    /// Stops monitor `id` if it runs here. Returns whether it did.
    pub fn stop(&self, id: MonitorId) -> bool {
        let mut running = self.running();
        let stopped = running
            .remove(&id)
            .map(|r| {
                r.task.abort();
                self.inner.metrics.monitors.forget(&r.labels);
            })
            .is_some();
        self.inner.metrics.owned_monitors.set(running.len() as i64);
        stopped
    }

    pub fn stop_all(&self) {
        let mut running = self.running();
        for (_, r) in running.drain() {
            r.task.abort();
            self.inner.metrics.monitors.forget(&r.labels);
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
}

async fn run_monitor(
    inner: Arc<Inner>,
    id: MonitorId,
    spec: Arc<MonitorSpec>,
    labels: MonitorLabels,
    start: Start,
) {
    let timeout = Duration::from_millis(spec.timeout_ms.into());
    let mut state = BeatState::default();
    let mut last_beat_ms: Option<i64> = None;
    let watching_since = now_ms();
    let now = Instant::now();
    let mut due = now + start.first;
    // The planned time the next interval counts from.
    let mut anchor = now + start.phase;
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

        let next_in = if !inner.lease.is_valid() {
            drop(permit);
            inner
                .metrics
                .checks_skipped
                .with_label_values(&["fenced"])
                .inc();
            spec.interval_secs
        } else {
            let outcome = if spec.kind == MonitorKind::Push {
                let verdict =
                    push_verdict(&inner, id, &spec, &labels, &mut state, watching_since).await;
                drop(permit);
                verdict
            } else {
                // Boxed so the (large) check future lives only while it runs, not in
                // every idle task.
                let o = Box::pin(checks::run(&spec.kind, timeout, &inner.ctx)).await;
                drop(permit);
                Ok(o)
            };
            match outcome {
                Ok(outcome) => record(
                    &inner,
                    id,
                    &spec,
                    &labels,
                    &mut state,
                    &mut last_beat_ms,
                    started,
                    outcome,
                ),
                Err(wait_secs) => wait_secs,
            }
        };
        anchor += Duration::from_secs(next_in.into());
        // After an overrun (or a pause), resume from now instead of bursting.
        anchor = anchor.max(Instant::now());
        due = anchor;
    }
}

/// Turns one check result into a heartbeat (Kuma's retry rules), metrics and
/// saved certificate facts. Returns the seconds until the next check.
#[allow(clippy::too_many_arguments)]
fn record(
    inner: &Arc<Inner>,
    id: MonitorId,
    spec: &MonitorSpec,
    labels: &MonitorLabels,
    state: &mut BeatState,
    last_beat_ms: &mut Option<i64>,
    started: Instant,
    outcome: Outcome,
) -> u32 {
    let ty = spec.kind.monitor_type().as_str();
    let m = &inner.metrics;
    m.check_duration
        .with_label_values(&[ty])
        .observe(started.elapsed().as_secs_f64());
    m.checks
        .with_label_values(&[ty, if outcome.up { "up" } else { "down" }])
        .inc();
    let b = beat::decide(
        *state,
        outcome.up,
        spec.max_retries,
        spec.interval_secs,
        spec.retry_interval_secs,
    );
    *state = b.next;
    let now = now_ms();
    let cert = outcome.cert.as_ref().map(|c| (c.days_remaining, c.valid));
    m.monitors.observe(labels, b.status, outcome.ping_ms, cert);
    if let (Some(c), Some(db), MonitorKind::Http(h)) = (outcome.cert, inner.db.get(), &spec.kind) {
        let db = db.clone();
        let url = h.url.to_string();
        let node = inner.node_id.clone();
        tokio::spawn(async move {
            let info = TlsInfo {
                days_remaining: c.days_remaining,
                valid: c.valid,
                not_after: c.not_after_ms,
                checked_at: now,
            };
            let r = db.save_tls_info(id, &url, &info, &node).await;
            if let Err(e) = r {
                tracing::warn!(monitor = %id, cause = %e, "could not save certificate info");
            }
        });
    }
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
    *last_beat_ms = Some(now);
    b.next_in_secs
}

/// One due time of a push monitor: reads its latest heartbeat and applies
/// [`push::evaluate`]. `Ok(outcome)`: record this (DOWN) result. `Err(secs)`:
/// pushes are arriving; nothing to record, look again in `secs`.
async fn push_verdict(
    inner: &Inner,
    id: MonitorId,
    spec: &MonitorSpec,
    labels: &MonitorLabels,
    state: &mut BeatState,
    watching_since: i64,
) -> Result<Outcome, u32> {
    let Some(db) = inner.db.get() else {
        return Err(spec.interval_secs);
    };
    let latest = match db.heartbeats(id, 0, 1).await {
        Ok(v) => v.into_iter().next(),
        Err(e) => {
            tracing::warn!(monitor = %id, cause = %e, "push monitor: cannot read heartbeats");
            return Err(spec.interval_secs.min(5));
        }
    };
    if let Some(h) = &latest {
        // A push since our last beat resets the retry count.
        if state.last != Some(h.status) || h.status == Status::Up {
            *state = BeatState {
                last: Some(h.status),
                retries: if h.status == Status::Up {
                    0
                } else {
                    state.retries
                },
            };
        }
    }
    let now = now_ms();
    match push::evaluate(
        latest.as_ref().map(|h| h.time),
        watching_since,
        now,
        spec.interval_secs,
    ) {
        push::Verdict::Fresh => {
            if let Some(h) = &latest {
                inner
                    .metrics
                    .monitors
                    .observe(labels, h.status, h.ping, None);
            }
            let reference = latest.map_or(watching_since, |h| h.time.max(watching_since));
            let window = i64::from(spec.interval_secs) * 1000 + push::grace_ms(spec.interval_secs);
            let left_ms = (reference + window - now).max(0);
            Err(((left_ms + 999) / 1000).clamp(1, i64::from(spec.interval_secs)) as u32)
        }
        push::Verdict::Overdue(msg) => Ok(Outcome::down(msg)),
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
