//! The control loop: renews the node's lease and reconciles the set of running
//! monitors with the database by following the revision counter. One tick
//! costs one indexed read of the `revision` row when nothing changed, however
//! many monitors there are.

use crate::metrics::Metrics;
use crate::scheduler::{Ensured, Lease, Scheduler, Start};
use picket_shared::db::{Db, DbError, MonitorRecord};
use picket_shared::monitor::MonitorSpec;
use picket_shared::{NodeId, now_ms};
use rand::Rng;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// Counts from one reconcile pass.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Reconciled {
    pub started: usize,
    pub restarted: usize,
    pub stopped: usize,
}

/// Who this node is, as registered in the `node` table.
#[derive(Debug, Clone)]
pub struct Identity {
    pub id: NodeId,
    pub name: String,
    pub host: String,
}

pub struct Control {
    db: Db,
    me: Identity,
    sched: Scheduler,
    lease: Arc<Lease>,
    metrics: Arc<Metrics>,
    /// Revision the running set reflects.
    rev: i64,
    renew_every: Duration,
    next_renew: Instant,
}

impl Control {
    pub fn new(
        db: Db,
        me: Identity,
        sched: Scheduler,
        lease: Arc<Lease>,
        metrics: Arc<Metrics>,
        lease_ttl: Duration,
    ) -> Self {
        Self {
            db,
            me,
            sched,
            lease,
            metrics,
            rev: 0,
            // Five renewals per TTL: a couple of slow ones do not fence the node.
            renew_every: lease_ttl / 5,
            next_renew: Instant::now(),
        }
    }

    /// Renews the lease, loads every monitor this node owns and starts them
    /// all at once (no serial stagger). Returns how many were started.
    ///
    /// Each monitor gets a random phase within its interval, so the steady
    /// state is spread evenly. The first round is compressed into what is left
    /// of 90 % of the interval since `started` (the node starting: opening the
    /// database and loading the rows count against it), so every monitor is
    /// checked within one interval of the node starting, however many there
    /// are; the second check follows one interval after the phase.
    pub async fn initial_load(&mut self, started: Instant) -> Result<usize, DbError> {
        let t0 = Instant::now();
        self.db.renew_lease(&self.me.id, now_ms()).await?;
        let rev = self.db.revision().await?;
        let owned = self.db.monitors(Some(&self.me.id)).await?;
        // Renewed and loaded: the tasks may check from their first due time.
        self.lease.renewed(t0);
        self.next_renew = t0 + self.renew_every;
        let since_start = started.elapsed();
        let mut rng = rand::rng();
        let mut n = 0;
        for rec in &owned {
            let start = |spec: &MonitorSpec| {
                let interval = Duration::from_secs(spec.interval_secs.into());
                let phase = interval.mul_f64(rng.random::<f64>());
                Start {
                    first: first_check(phase, interval, since_start),
                    phase,
                }
            };
            if self.apply(rec, start) == Some(Ensured::Started) {
                n += 1;
            }
        }
        self.rev = rev;
        Ok(n)
    }

    /// Starts, restarts or stops one monitor according to its row; `start`
    /// says when a started one is first checked.
    fn apply(
        &self,
        rec: &MonitorRecord,
        start: impl FnOnce(&MonitorSpec) -> Start,
    ) -> Option<Ensured> {
        if rec.owner() != &self.me.id || !rec.active() {
            self.sched.stop(rec.id);
            return None;
        }
        match rec.spec() {
            Ok(spec) => {
                let start = start(&spec);
                Some(self.sched.ensure(rec.id, spec, start))
            }
            Err(errs) => {
                let why: Vec<String> = errs.iter().map(ToString::to_string).collect();
                tracing::warn!(monitor = %rec.id, errors = %why.join("; "), "cannot run monitor");
                self.sched.stop(rec.id);
                None
            }
        }
    }

    /// Applies every change since the last pass.
    pub async fn reconcile_once(&mut self) -> Result<Reconciled, DbError> {
        let changes = self.db.changes_since(self.rev).await?;
        let mut out = Reconciled::default();
        let mut rng = rand::rng();
        for rec in &changes.changed {
            let was = self.sched.contains(rec.id);
            // Spread a burst of moved-in monitors over a second.
            let jitter = Duration::from_millis(rng.random_range(0..1000));
            match self.apply(rec, |_| Start::after(jitter)) {
                Some(Ensured::Started) => out.started += 1,
                Some(Ensured::Restarted) => out.restarted += 1,
                Some(Ensured::Unchanged) => {}
                None if was => out.stopped += 1,
                None => {}
            }
        }
        for id in &changes.deleted {
            if self.sched.stop(*id) {
                out.stopped += 1;
            }
        }
        self.rev = changes.rev;
        if out != Reconciled::default() {
            tracing::info!(
                started = out.started,
                restarted = out.restarted,
                stopped = out.stopped,
                running = self.sched.len(),
                rev = self.rev,
                "reconciled"
            );
        }
        Ok(out)
    }

    /// One tick: renew the lease when due, reconcile, and only when both
    /// succeeded count the lease as renewed — so a node coming back from a
    /// partition learns what moved away before it runs anything again.
    pub async fn tick(&mut self) -> Result<Reconciled, DbError> {
        let t0 = Instant::now();
        let renew_due = t0 >= self.next_renew;
        let limit = self.renew_every.max(Duration::from_millis(500));
        let result = async {
            if renew_due {
                let renewed =
                    tokio::time::timeout(limit, self.db.renew_lease(&self.me.id, now_ms()))
                        .await
                        .map_err(|_| DbError::Unavailable(sqlx::Error::PoolTimedOut))??;
                if !renewed {
                    tracing::warn!(node = %self.me.id, "node row missing; registering again");
                    self.db
                        .register_node(&self.me.id, &self.me.name, &self.me.host)
                        .await?;
                }
            }
            tokio::time::timeout(limit, self.reconcile_once())
                .await
                .map_err(|_| DbError::Unavailable(sqlx::Error::PoolTimedOut))?
        }
        .await;
        let was_fenced = !self.lease.is_valid();
        match &result {
            Ok(_) if renew_due => {
                self.lease.renewed(t0);
                self.next_renew = t0 + self.renew_every;
            }
            Ok(_) => {}
            Err(e) => {
                self.metrics.reconcile_errors.inc();
                tracing::warn!(cause = %e, "lease renewal / reconcile failed");
            }
        }
        let fenced = !self.lease.is_valid();
        if fenced != was_fenced {
            if fenced {
                tracing::error!(node = %self.me.id, "lease lapsed: pausing all checks until the database is reachable");
            } else {
                tracing::info!(node = %self.me.id, "lease renewed: checks resume");
            }
        }
        self.metrics.fenced.set(i64::from(fenced));
        result
    }

    /// Ticks every `every` until `shutdown`.
    pub async fn run(mut self, every: Duration, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        let mut ticker = tokio::time::interval(every);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = &mut shutdown => return,
                _ = ticker.tick() => { let _ = self.tick().await; }
            }
        }
    }
}

/// When a monitor with `phase` in its `interval` is first checked, at a node
/// that started `since_start` ago: its phase scaled into what is left of 90 %
/// of the interval, so the round ends within one interval of the start and
/// keeps the phases' order and spread.
fn first_check(phase: Duration, interval: Duration, since_start: Duration) -> Duration {
    let window = interval.mul_f64(0.9).saturating_sub(since_start);
    phase.mul_f64(window.as_secs_f64() / interval.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_start_up_round_ends_within_the_interval_counted_from_the_start() {
        let s = Duration::from_secs;
        let ms = Duration::from_millis;
        // 2 s spent starting: phases 0..20 s map onto 0..16 s.
        assert_eq!(first_check(s(0), s(20), s(2)), s(0));
        assert_eq!(first_check(s(10), s(20), s(2)), s(8));
        assert_eq!(
            first_check(ms(19_999), s(20), s(2)),
            Duration::from_micros(15_999_200)
        );
        for p in [0, 5_000, 12_345, 19_999] {
            let first = first_check(ms(p), s(20), s(2));
            assert!(
                s(2) + first < s(18),
                "phase {p} ms: first check at {first:?}"
            );
            assert!(first <= ms(p), "never later than its phase");
        }
        // Starting took longer than 90 % of the interval: everything at once.
        assert_eq!(first_check(s(15), s(20), s(19)), s(0));
    }
}
