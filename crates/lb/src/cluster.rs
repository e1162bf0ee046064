//! The cluster service: health checks, failover, recovery and rebalancing.
//!
//! Every balancer runs it; each pass first takes or renews the leader lease in
//! the database, and only the holder probes nodes and moves monitors. The
//! decisions are pure functions ([`plan_round`], [`plan_ownership`], and those
//! in `picket_shared::placement`/`health`); [`ClusterService::run_once`] does
//! the I/O around them. Ownership passes are level-triggered: each one sends
//! home what can go home and re-assigns whatever has no online owner, so a
//! crash half-way is repaired by the next pass.
//!
//! A rebalance asked of a balancer that is not the leader is handed to the
//! leader through the database (`cluster_request`): the leader polls for such
//! requests, runs them like its own, and writes the result, which the asked
//! balancer returns to its client.

use crate::control::DbSlot;
use crate::state::Shared;
use async_trait::async_trait;
use picket_shared::db::Db;
use picket_shared::db::{ClusterEvent, ClusterMove, Fence, RequestState};
use picket_shared::health::{self, Probe, Thresholds, Transition};
use picket_shared::model::{Node, NodeHealth, NodeStatus};
use picket_shared::placement::{self, Ownership};
use picket_shared::{MonitorId, NodeId, now_ms};
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use rand::Rng;
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// Name of the leader lease row.
pub const LEADER_LEASE: &str = "picket-lb-leader";
/// Cluster events shown in the status endpoints.
pub const EVENTS_SHOWN: i64 = 100;
/// How long a balancer that is not the leader waits for the leader to carry
/// out a request it handed over (less than the admin endpoints' own timeout).
pub const HANDOVER_WAIT: Duration = Duration::from_secs(50);
/// How often the leader looks for handed-over requests, and the asker for
/// their outcome.
const HANDOVER_POLL: Duration = Duration::from_millis(200);

// ---- pure decisions -------------------------------------------------------

/// What one health round decided for one node.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeDecision {
    pub node: NodeId,
    pub health: NodeHealth,
    pub transition: Option<Transition>,
}

/// What one health round decided.
#[derive(Debug, Clone, PartialEq)]
pub struct RoundPlan {
    pub decisions: Vec<NodeDecision>,
    /// Too many online nodes failed at once: nodes are not taken offline and
    /// no monitor is re-assigned this round.
    pub panic: bool,
    /// Online nodes whose probe failed this round.
    pub failing: usize,
    /// Nodes considered (all but `leaving` ones).
    pub total: usize,
}

/// Folds this round's probes into each node's counters. A `leaving` node is
/// never brought back by probes (it re-registers itself when it restarts), and
/// during a panic no node is taken offline.
pub fn plan_round(
    probes: &[(Node, Probe)],
    t: Thresholds,
    panic_ratio: f64,
    now: i64,
) -> RoundPlan {
    let total = probes
        .iter()
        .filter(|(n, _)| n.status != NodeStatus::Leaving)
        .count();
    let failing = probes
        .iter()
        .filter(|(n, p)| n.status == NodeStatus::Online && matches!(p, Probe::Fail { .. }))
        .count();
    let panic = health::is_panic(total, failing, panic_ratio);
    let decisions = probes
        .iter()
        .map(|(n, p)| {
            let (h, tr) = health::observe(n.status, &n.health, p, t, now);
            let transition = match (n.status, tr) {
                (NodeStatus::Leaving, Some(Transition::CameOnline)) => None,
                (_, Some(Transition::WentOffline)) if panic => None,
                (_, tr) => tr,
            };
            NodeDecision {
                node: n.node_id.clone(),
                health: h,
                transition,
            }
        })
        .collect();
    RoundPlan {
        decisions,
        panic,
        failing,
        total,
    }
}

/// Ownership moves for the current membership: first every monitor whose home
/// is online and that runs elsewhere goes home (recovery), then every monitor
/// without an online owner is water-filled onto the online nodes (failover).
/// Returns `(recovery, failover)`; failover is empty when no node is online.
pub fn plan_ownership(
    monitors: &[Ownership],
    online: &BTreeSet<NodeId>,
) -> (Vec<ClusterMove>, Vec<ClusterMove>) {
    let mut after: Vec<Ownership> = monitors.to_vec();
    let mut recovery = Vec::new();
    for node in online {
        let home: BTreeSet<MonitorId> =
            placement::plan_recovery(node, &after).into_iter().collect();
        for m in after.iter_mut().filter(|m| home.contains(&m.monitor)) {
            if let Some(from) = m.assign_node.take() {
                recovery.push(ClusterMove::Recover {
                    monitor: m.monitor,
                    from,
                });
            }
        }
    }
    let mut load: BTreeMap<NodeId, usize> = online.iter().map(|n| (n.clone(), 0)).collect();
    for m in &after {
        if let Some(c) = load.get_mut(m.owner()) {
            *c += 1;
        }
    }
    let orphans = placement::orphans(&after, &load);
    let owner_of: BTreeMap<MonitorId, &NodeId> =
        after.iter().map(|m| (m.monitor, m.owner())).collect();
    let failover = placement::plan_failover(&orphans, &load)
        .into_iter()
        .map(|mv| ClusterMove::Assign {
            monitor: mv.monitor,
            from: owner_of[&mv.monitor].clone(),
            to: mv.to,
        })
        .collect();
    (recovery, failover)
}

/// Re-homing moves: the fewest that level the online nodes (`all` = false), or
/// every monitor dealt evenly (`all` = true, no-op moves left out).
pub fn plan_rebalance(
    monitors: &[Ownership],
    online: &BTreeSet<NodeId>,
    all: bool,
) -> Vec<ClusterMove> {
    let owner_of: BTreeMap<MonitorId, &Ownership> =
        monitors.iter().map(|m| (m.monitor, m)).collect();
    let moves = if all {
        let ids: Vec<MonitorId> = monitors.iter().map(|m| m.monitor).collect();
        let nodes: Vec<NodeId> = online.iter().cloned().collect();
        placement::plan_rebalance_all(&ids, &nodes)
    } else {
        let mut owned: BTreeMap<NodeId, Vec<MonitorId>> =
            online.iter().map(|n| (n.clone(), Vec::new())).collect();
        for m in monitors {
            if let Some(v) = owned.get_mut(m.owner()) {
                v.push(m.monitor);
            }
        }
        placement::plan_rebalance(&owned)
    };
    moves
        .into_iter()
        .filter_map(|mv| {
            let m = owner_of[&mv.monitor];
            let noop = m.default_node == mv.to && m.assign_node.is_none();
            (!noop).then(|| ClusterMove::Home {
                monitor: mv.monitor,
                from: m.owner().clone(),
                to: mv.to,
            })
        })
        .collect()
}

/// Owned active monitors per online node (for reports).
pub fn counts(monitors: &[Ownership], online: &BTreeSet<NodeId>) -> BTreeMap<NodeId, usize> {
    let mut c: BTreeMap<NodeId, usize> = online.iter().map(|n| (n.clone(), 0)).collect();
    for m in monitors {
        if let Some(n) = c.get_mut(m.owner()) {
            *n += 1;
        }
    }
    c
}

/// Applies `moves` to `monitors` in memory (for before/after reports).
pub fn applied(monitors: &[Ownership], moves: &[ClusterMove]) -> Vec<Ownership> {
    let mut out = monitors.to_vec();
    let by_id: BTreeMap<MonitorId, &ClusterMove> = moves
        .iter()
        .map(|m| match m {
            ClusterMove::Assign { monitor, .. }
            | ClusterMove::Home { monitor, .. }
            | ClusterMove::Recover { monitor, .. } => (*monitor, m),
        })
        .collect();
    for o in &mut out {
        match by_id.get(&o.monitor) {
            Some(ClusterMove::Assign { to, .. }) => {
                o.assign_node = (to != &o.default_node).then(|| to.clone());
            }
            Some(ClusterMove::Home { to, .. }) => {
                o.default_node = to.clone();
                o.assign_node = None;
            }
            Some(ClusterMove::Recover { .. }) => o.assign_node = None,
            None => {}
        }
    }
    out
}

// ---- shared reports -------------------------------------------------------

/// What the cluster service last saw, for the status endpoints.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ClusterReport {
    /// This balancer holds the leader lease.
    pub leader: bool,
    pub leader_id: Option<String>,
    pub lease_expires_at: Option<i64>,
    pub rounds: u64,
    pub last_round_at: Option<i64>,
    pub last_round_ms: Option<u64>,
    pub last_error: Option<String>,
    /// Failover frozen by the panic threshold in the last round.
    pub panic: bool,
    pub failing: usize,
    pub total: usize,
    /// Newest first.
    pub events: Vec<ClusterEvent>,
}

/// The running or last rebalance.
#[derive(Debug, Default)]
pub struct RebalanceState {
    /// Set while a rebalance runs (a second request gets 409).
    pub running: AtomicBool,
    pub last: std::sync::Mutex<Option<Value>>,
}

/// Holds `RebalanceState::running` for one rebalance.
pub struct RunningGuard<'a>(&'a AtomicBool);

impl<'a> RunningGuard<'a> {
    /// `None` when one is already running.
    pub fn try_start(flag: &'a AtomicBool) -> Option<RunningGuard<'a>> {
        flag.compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .ok()
            .map(|_| RunningGuard(flag))
    }
}

impl Drop for RunningGuard<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

/// Requests from the request path to the cluster service.
#[derive(Debug)]
pub enum ClusterCommand {
    /// Run a round now; reply with its summary.
    Round { reply: oneshot::Sender<Value> },
    /// Rebalance (minimum moves, or `all`); reply with the report or an HTTP
    /// status and message.
    Rebalance {
        all: bool,
        reply: oneshot::Sender<Result<Value, (u16, String)>>,
    },
}

/// Why this balancer did not carry out a rebalance itself.
#[derive(Debug)]
enum Refused {
    /// Another balancer holds the leader lease.
    NotLeader,
    /// An HTTP status and a message for the client.
    Status(u16, String),
}

impl Refused {
    fn into_status(self) -> (u16, String) {
        match self {
            Refused::NotLeader => (503, "this balancer lost the leader lease".into()),
            Refused::Status(code, msg) => (code, msg),
        }
    }
}

// ---- the service ------------------------------------------------------------

/// The background service.
pub struct ClusterService {
    pub shared: Arc<Shared>,
}

struct Ctx {
    shared: Arc<Shared>,
    db: DbSlot,
    http: reqwest::Client,
    leader: bool,
    /// Node ids seen in earlier rounds (to notice joins for auto-rebalance).
    known: Option<BTreeSet<NodeId>>,
}

#[async_trait]
impl BackgroundService for ClusterService {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let Some(mut rx) = self
            .shared
            .cluster_rx
            .lock()
            .ok()
            .and_then(|mut r| r.take())
        else {
            tracing::error!("cluster service started twice");
            return;
        };
        let cfg = &self.shared.cfg;
        let http = reqwest::Client::builder()
            .timeout(cfg.hc_timeout())
            .connect_timeout(cfg.hc_timeout())
            .no_proxy()
            .pool_max_idle_per_host(1)
            .build()
            .expect("HTTP client");
        let mut ctx = Ctx {
            shared: self.shared.clone(),
            db: DbSlot::new(&cfg.database_url, cfg.db_pool),
            http,
            leader: false,
            known: None,
        };
        let mut next = tokio::time::Instant::now();
        let mut handed_over = tokio::time::interval(HANDOVER_POLL);
        handed_over.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                _ = shutdown.changed() => break,
                Some(cmd) = rx.recv() => match cmd {
                    ClusterCommand::Round { reply } => {
                        let s = ctx.run_once().await;
                        let _ = reply.send(s);
                    }
                    ClusterCommand::Rebalance { all, reply } => match ctx.rebalance(all).await {
                        Err(Refused::NotLeader) => ctx.hand_over(all, reply).await,
                        r => {
                            let _ = reply.send(r.map_err(Refused::into_status));
                        }
                    },
                },
                _ = handed_over.tick(), if ctx.leader => ctx.serve_handed_over().await,
                _ = tokio::time::sleep_until(next) => {
                    ctx.run_once().await;
                    next = tokio::time::Instant::now() + jittered(cfg.hc_interval());
                }
            }
        }
        if ctx.leader
            && let Ok(db) = ctx.db.get().await
        {
            let _ = db.release_lease(LEADER_LEASE, &self.shared.lb_id).await;
            tracing::info!("leader lease released");
        }
    }
}

/// `d` ± 10 %, so balancers and rounds do not fall into lock-step.
fn jittered(d: Duration) -> Duration {
    let f = rand::rng().random_range(0.9..1.1);
    d.mul_f64(f)
}

impl Ctx {
    /// One pass: lease, then (leader only) probes, transitions and moves.
    async fn run_once(&mut self) -> Value {
        let started = Instant::now();
        let now = now_ms();
        let r = self.round(now).await;
        let mut report = (**self.shared.cluster.load()).clone();
        report.rounds += 1;
        report.last_round_at = Some(now);
        report.last_round_ms = Some(started.elapsed().as_millis() as u64);
        report.leader = self.leader;
        self.shared.metrics.leader.set(i64::from(self.leader));
        self.shared
            .metrics
            .health_round
            .observe(started.elapsed().as_secs_f64());
        let summary = match r {
            Ok(s) => {
                report.last_error = None;
                s
            }
            Err(e) => {
                tracing::warn!(cause = %e, "cluster round failed");
                report.last_error = Some(e.clone());
                json!({"ok": false, "msg": e})
            }
        };
        if let Ok(db) = self.db.get().await {
            if let Ok(Some(l)) = db.lease(LEADER_LEASE).await {
                report.leader_id = (l.expires_at > now).then_some(l.holder);
                report.lease_expires_at = Some(l.expires_at);
            }
            match db.recent_events(EVENTS_SHOWN).await {
                Ok(ev) => report.events = ev,
                Err(e) => tracing::debug!(cause = %e, "reading cluster events failed"),
            }
        }
        if let Some(p) = summary.get("panic").and_then(Value::as_bool) {
            report.panic = p;
            report.failing = summary["failing"].as_u64().unwrap_or(0) as usize;
            report.total = summary["total"].as_u64().unwrap_or(0) as usize;
        }
        self.shared.cluster.store(Arc::new(report));
        summary
    }

    async fn round(&mut self, now: i64) -> Result<Value, String> {
        let shared = self.shared.clone();
        let cfg = &shared.cfg;
        let db = self.db.get().await?.clone();
        let ttl = cfg.lease_ttl().as_millis() as i64;
        let leader = db
            .acquire_lease(LEADER_LEASE, &shared.lb_id, ttl, now)
            .await
            .map_err(|e| e.to_string())?;
        if leader != self.leader {
            self.leader = leader;
            if leader {
                tracing::info!(lb = %shared.lb_id, "acquired the leader lease");
                let _ = db
                    .record_event(
                        now,
                        "leader",
                        None,
                        0,
                        &format!("{} became the leader", shared.lb_id),
                    )
                    .await;
            } else {
                tracing::warn!(lb = %shared.lb_id, "lost the leader lease");
            }
        }
        if !leader {
            return Ok(json!({"ok": true, "leader": false}));
        }

        // Probe every node.
        let nodes = db.nodes().await.map_err(|e| e.to_string())?;
        let probes = self.probe_all(&nodes).await;
        let plan = plan_round(&probes, cfg.thresholds(), cfg.panic_threshold, now);
        let m = &shared.metrics;
        m.panic.set(i64::from(plan.panic));
        let mut statuses: BTreeMap<NodeId, NodeStatus> = nodes
            .iter()
            .map(|n| (n.node_id.clone(), n.status))
            .collect();
        let mut changed = false;
        let mut came_online = false;
        for (d, (_, probe)) in plan.decisions.iter().zip(&probes) {
            let result = if matches!(probe, Probe::Pass { .. }) {
                "pass"
            } else {
                "fail"
            };
            m.health_checks
                .with_label_values(&[d.node.as_str(), result])
                .inc();
            db.save_node_health(&d.node, &d.health)
                .await
                .map_err(|e| e.to_string())?;
            let Some(tr) = d.transition else { continue };
            let (status, kind) = match tr {
                Transition::WentOffline => (NodeStatus::Offline, "node_offline"),
                Transition::CameOnline => (NodeStatus::Online, "node_online"),
            };
            db.set_node_status(&d.node, status)
                .await
                .map_err(|e| e.to_string())?;
            statuses.insert(d.node.clone(), status);
            changed = true;
            came_online |= status == NodeStatus::Online;
            let detail = match tr {
                Transition::WentOffline => format!(
                    "{} consecutive failed checks; last: {}",
                    d.health.fails,
                    d.health.last_error.as_deref().unwrap_or("?")
                ),
                Transition::CameOnline => format!("{} consecutive passed checks", d.health.passes),
            };
            tracing::warn!(node = %d.node, event = kind, %detail, "node status changed");
            let _ = db.record_event(now, kind, Some(&d.node), 0, &detail).await;
        }
        if plan.panic {
            let detail = format!(
                "{} of {} nodes failed in one round; failover frozen",
                plan.failing, plan.total
            );
            tracing::error!(%detail, "panic threshold reached");
            if !shared.cluster.load().panic {
                let _ = db.record_event(now, "panic", None, 0, &detail).await;
            }
        }
        if changed {
            self.refresh_view();
        }

        // Membership → ownership.
        let online: BTreeSet<NodeId> = statuses
            .iter()
            .filter(|(_, s)| **s == NodeStatus::Online)
            .map(|(n, _)| n.clone())
            .collect();
        let joined = match &self.known {
            Some(k) => online.iter().any(|n| !k.contains(n)),
            None => false,
        };
        self.known = Some(statuses.keys().cloned().collect());
        let monitors = db.ownership(true).await.map_err(|e| e.to_string())?;
        let (recovery, failover) = plan_ownership(&monitors, &online);
        let fence = Fence {
            lease: LEADER_LEASE,
            holder: &shared.lb_id,
            now: now_ms(),
        };
        let recovered = self.apply("recovery", &db, &recovery, fence, now).await?;
        let failed_over = if plan.panic {
            0
        } else {
            self.apply("failover", &db, &failover, fence, now).await?
        };
        if recovered + failed_over > 0 {
            self.refresh_view();
        }
        let mut rebalanced = Value::Null;
        if cfg.auto_rebalance && (came_online || joined) {
            rebalanced = match self.rebalance(false).await {
                Ok(v) => v,
                Err(e) => json!({"error": e.into_status().1}),
            };
        }
        Ok(json!({
            "ok": true,
            "leader": true,
            "panic": plan.panic,
            "failing": plan.failing,
            "total": plan.total,
            "nodes": plan.decisions.iter().map(|d| json!({
                "node_id": d.node,
                "ok": d.health.last_ok,
                "latency_ms": d.health.last_ms,
                "error": d.health.last_error,
                "consecutive_failures": d.health.fails,
                "consecutive_successes": d.health.passes,
                "transition": d.transition.map(|t| format!("{t:?}")),
            })).collect::<Vec<_>>(),
            "recovered": recovered,
            "failed_over": failed_over,
            "frozen": if plan.panic { failover.len() } else { 0 },
            "auto_rebalance": rebalanced,
        }))
    }

    /// Applies moves in batches (each one transaction, fenced by the lease) and
    /// records one event per source node.
    async fn apply(
        &self,
        kind: &str,
        db: &picket_shared::db::Db,
        moves: &[ClusterMove],
        fence: Fence<'_>,
        now: i64,
    ) -> Result<u64, String> {
        if moves.is_empty() {
            return Ok(0);
        }
        let mut n = 0;
        for chunk in moves.chunks(self.shared.cfg.recovery_batch) {
            n += db
                .apply_moves(chunk, Some(fence))
                .await
                .map_err(|e| e.to_string())?;
        }
        self.shared
            .metrics
            .moves
            .with_label_values(&[kind])
            .inc_by(n);
        let mut by_node: BTreeMap<&NodeId, (usize, BTreeMap<&NodeId, usize>)> = BTreeMap::new();
        for m in moves {
            match m {
                ClusterMove::Assign { from, to, .. } | ClusterMove::Home { from, to, .. } => {
                    let e = by_node.entry(from).or_default();
                    e.0 += 1;
                    *e.1.entry(to).or_default() += 1;
                }
                ClusterMove::Recover { from, .. } => by_node.entry(from).or_default().0 += 1,
            }
        }
        for (from, (count, to)) in by_node {
            let (node, detail) = if kind == "recovery" {
                // Recovery is reported against the node that got its monitors back.
                (None, format!("{count} monitors returned home from {from}"))
            } else {
                let spread: Vec<String> = to.iter().map(|(n, c)| format!("{n}: {c}")).collect();
                (
                    Some(from),
                    format!(
                        "{count} monitors of {from} re-assigned ({})",
                        spread.join(", ")
                    ),
                )
            };
            tracing::info!(kind, %detail, "ownership moved");
            let _ = db
                .record_event(now, kind, node, count as u64, &detail)
                .await;
        }
        Ok(n)
    }

    /// Rebalances now, if this balancer is the leader.
    async fn rebalance(&mut self, all: bool) -> Result<Value, Refused> {
        let failed = |e: String| Refused::Status(503, e);
        let started = Instant::now();
        let now = now_ms();
        let shared = self.shared.clone();
        let db = self.db.get().await.map_err(failed)?.clone();
        let ttl = shared.cfg.lease_ttl().as_millis() as i64;
        let leader = db
            .acquire_lease(LEADER_LEASE, &shared.lb_id, ttl, now)
            .await
            .map_err(|e| failed(e.to_string()))?;
        self.leader = leader;
        if !leader {
            return Err(Refused::NotLeader);
        }
        let nodes = db.nodes().await.map_err(|e| failed(e.to_string()))?;
        let online: BTreeSet<NodeId> = nodes
            .iter()
            .filter(|n| n.status == NodeStatus::Online)
            .map(|n| n.node_id.clone())
            .collect();
        if online.is_empty() {
            return Err(Refused::Status(
                409,
                "no online node to rebalance onto".into(),
            ));
        }
        let monitors = db
            .ownership(true)
            .await
            .map_err(|e| failed(e.to_string()))?;
        let moves = plan_rebalance(&monitors, &online, all);
        let before = counts(&monitors, &online);
        let after = counts(&applied(&monitors, &moves), &online);
        let fence = Fence {
            lease: LEADER_LEASE,
            holder: &shared.lb_id,
            now: now_ms(),
        };
        let kind = if all { "rebalance_all" } else { "rebalance" };
        let moved = self
            .apply(kind, &db, &moves, fence, now)
            .await
            .map_err(failed)?;
        self.refresh_view();
        let report = json!({
            "ok": true,
            "kind": kind,
            "by": shared.lb_id,
            "started_at": now,
            "duration_ms": started.elapsed().as_millis() as u64,
            "planned": moves.len(),
            "moved": moved,
            "before": before,
            "after": after,
        });
        if let Ok(mut l) = shared.rebalance.last.lock() {
            *l = Some(report.clone());
        }
        Ok(report)
    }

    /// Hands a rebalance to the leader through the database and replies when
    /// its outcome is there (or after [`HANDOVER_WAIT`]), without holding up
    /// this service's own rounds meanwhile.
    async fn hand_over(&mut self, all: bool, reply: oneshot::Sender<Result<Value, (u16, String)>>) {
        let db = match self.db.get().await {
            Ok(db) => db.clone(),
            Err(e) => {
                let _ = reply.send(Err((503, e)));
                return;
            }
        };
        let shared = self.shared.clone();
        tokio::spawn(async move {
            let kind = if all { "rebalance_all" } else { "rebalance" };
            let r = await_leader(&db, kind, &shared.lb_id, HANDOVER_WAIT).await;
            if let Ok(v) = &r
                && let Ok(mut l) = shared.rebalance.last.lock()
            {
                *l = Some(v.clone());
            }
            let _ = reply.send(r);
        });
    }

    /// Leader: carries out the requests other balancers handed over, oldest
    /// first, each claimed before it runs so that it runs once. Marked as the
    /// running rebalance, like one asked of this balancer directly; while
    /// such a one is waiting, this pass leaves them for the next.
    async fn serve_handed_over(&mut self) {
        let Ok(db) = self.db.get().await.cloned() else {
            return;
        };
        let shared = self.shared.clone();
        let max_age = HANDOVER_WAIT.as_millis() as i64;
        let pending = match db.pending_cluster_requests(now_ms(), max_age).await {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(cause = %e, "could not read handed-over requests");
                return;
            }
        };
        if pending.is_empty() {
            return;
        }
        let Some(_running) = RunningGuard::try_start(&shared.rebalance.running) else {
            return;
        };
        for req in pending {
            if !db
                .claim_cluster_request(req.id, &shared.lb_id)
                .await
                .unwrap_or(false)
            {
                continue;
            }
            tracing::info!(id = req.id, kind = %req.kind, from = %req.requested_by, "running a handed-over request");
            let outcome = match req.kind.as_str() {
                "rebalance" => self.rebalance(false).await,
                "rebalance_all" => self.rebalance(true).await,
                other => Err(Refused::Status(
                    400,
                    format!("unknown request kind '{other}'"),
                )),
            };
            let (status, body) = match outcome {
                Ok(v) => (200, v),
                Err(e) => {
                    let (code, msg) = e.into_status();
                    (code, json!({"ok": false, "msg": msg}))
                }
            };
            if let Err(e) = db
                .finish_cluster_request(req.id, status, &body.to_string(), now_ms())
                .await
            {
                tracing::warn!(id = req.id, cause = %e, "could not record a handed-over request's outcome");
            }
        }
    }

    /// Probes every node's `/api/v1/health` at the address in the node view.
    /// Nodes the view does not know yet (just registered, or the balancer just
    /// started) are left out of this round rather than counted as failing.
    async fn probe_all(&self, nodes: &[Node]) -> Vec<(Node, Probe)> {
        let view = self.shared.view.load_full();
        let mut set = tokio::task::JoinSet::new();
        let known: Vec<Node> = nodes
            .iter()
            .filter(|n| view.node(n.node_id.as_str()).is_some())
            .cloned()
            .collect();
        for (i, n) in known.iter().enumerate() {
            let addr = view
                .node(n.node_id.as_str())
                .map(|e| e.addr.clone())
                .expect("filtered above");
            let http = self.http.clone();
            set.spawn(async move {
                let t = Instant::now();
                let r = match addr {
                    Err(e) => Err(e),
                    Ok(a) => match http.get(format!("http://{a}/api/v1/health")).send().await {
                        Ok(r) if r.status() == 200 => Ok(()),
                        Ok(r) => Err(format!("HTTP {}", r.status().as_u16())),
                        Err(e) if e.is_timeout() => Err("timeout".into()),
                        Err(e) if e.is_connect() => Err("connection refused".into()),
                        Err(e) => Err(e.to_string()),
                    },
                };
                let latency_ms = t.elapsed().as_millis() as i64;
                let p = match r {
                    Ok(()) => Probe::Pass { latency_ms },
                    Err(error) => Probe::Fail { error, latency_ms },
                };
                (i, p)
            });
        }
        let mut out: Vec<Option<Probe>> = vec![None; known.len()];
        while let Some(Ok((i, p))) = set.join_next().await {
            out[i] = Some(p);
        }
        known
            .into_iter()
            .zip(out)
            .map(|(n, p)| {
                (
                    n,
                    p.unwrap_or(Probe::Fail {
                        error: "probe task failed".into(),
                        latency_ms: 0,
                    }),
                )
            })
            .collect()
    }

    /// Asks the control service to rebuild the node view (without waiting).
    fn refresh_view(&self) {
        let (tx, _rx) = oneshot::channel();
        let _ = self
            .shared
            .commands
            .try_send(crate::state::Command::Refresh { reply: tx });
    }
}

/// Queues `kind` for the leader and waits for its outcome: the leader's
/// report, or its error status and message. A request nobody claimed within
/// `wait` is withdrawn, so it cannot run after the client was told it failed.
async fn await_leader(
    db: &Db,
    kind: &str,
    by: &str,
    wait: Duration,
) -> Result<Value, (u16, String)> {
    let failed = |e: picket_shared::db::DbError| (503, e.to_string());
    let id = db
        .request_cluster_action(kind, by, now_ms())
        .await
        .map_err(failed)?;
    let deadline = Instant::now() + wait;
    loop {
        tokio::time::sleep(HANDOVER_POLL).await;
        let state = db.cluster_request_state(id).await.map_err(failed)?;
        if let Some(RequestState::Done { status, result, .. }) = state {
            let body: Value = serde_json::from_str(&result).unwrap_or(Value::Null);
            return if status == 200 {
                Ok(body)
            } else {
                let msg = body["msg"]
                    .as_str()
                    .unwrap_or("the leader refused")
                    .to_owned();
                Err((status, msg))
            };
        }
        if Instant::now() < deadline {
            continue;
        }
        return Err(match state {
            Some(RequestState::Running { by }) => (
                503,
                format!("the leader ({by}) is still running it; see /lb/rebalancing-status"),
            ),
            _ if db
                .abandon_cluster_request(id, now_ms())
                .await
                .unwrap_or(false) =>
            {
                let leader = match db.lease(LEADER_LEASE).await {
                    Ok(Some(l)) => l.holder,
                    _ => "unknown".into(),
                };
                (
                    503,
                    format!(
                        "the leader ({leader}) did not take the request within {} s; nothing was changed",
                        wait.as_secs_f64()
                    ),
                )
            }
            _ => (
                503,
                "the leader took the request late; see /lb/rebalancing-status".into(),
            ),
        });
    }
}

/// Sends a command to the cluster service and waits for the reply.
pub async fn ask<T>(
    tx: &mpsc::Sender<ClusterCommand>,
    make: impl FnOnce(oneshot::Sender<T>) -> ClusterCommand,
    timeout: Duration,
) -> Option<T> {
    let (reply, rx) = oneshot::channel();
    tx.send(make(reply)).await.ok()?;
    tokio::time::timeout(timeout, rx).await.ok()?.ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Thresholds = Thresholds { fall: 3, rise: 3 };

    fn node(id: &str, status: NodeStatus, fails: u32, passes: u32) -> Node {
        Node {
            node_id: NodeId::from(id),
            node_name: id.into(),
            host: format!("{id}:3001"),
            status,
            last_seen: 0,
            health: NodeHealth {
                fails,
                passes,
                ..Default::default()
            },
            created_at: 0,
            modified_at: 0,
        }
    }
    fn pass() -> Probe {
        Probe::Pass { latency_ms: 1 }
    }
    fn fail() -> Probe {
        Probe::Fail {
            error: "timeout".into(),
            latency_ms: 2000,
        }
    }
    fn own(m: i64, home: &str, assign: Option<&str>) -> Ownership {
        Ownership {
            monitor: MonitorId(m),
            default_node: NodeId::from(home),
            assign_node: assign.map(NodeId::from),
        }
    }
    fn set(ids: &[&str]) -> BTreeSet<NodeId> {
        ids.iter().map(|i| NodeId::from(*i)).collect()
    }

    #[test]
    fn third_strike_takes_a_node_offline() {
        use NodeStatus::Online;
        let probes = vec![
            (node("a", Online, 2, 0), fail()),
            (node("b", Online, 0, 9), pass()),
            (node("c", Online, 0, 9), pass()),
        ];
        let p = plan_round(&probes, T, 0.5, 0);
        assert!(!p.panic);
        assert_eq!(p.decisions[0].transition, Some(Transition::WentOffline));
        assert_eq!(p.decisions[0].health.fails, 3);
        assert_eq!(p.decisions[1].transition, None);
    }

    #[test]
    fn panic_threshold_freezes_offline_transitions() {
        use NodeStatus::Online;
        let probes = vec![
            (node("a", Online, 2, 0), fail()),
            (node("b", Online, 2, 0), fail()),
            (node("c", Online, 0, 9), pass()),
        ];
        let p = plan_round(&probes, T, 0.5, 0);
        assert!(p.panic);
        assert_eq!((p.failing, p.total), (2, 3));
        assert!(p.decisions.iter().all(|d| d.transition.is_none()));
        // Counters still move, so the nodes go offline once the panic ends.
        assert_eq!(p.decisions[0].health.fails, 3);
        // Disabled threshold: both go.
        let p = plan_round(&probes, T, 0.0, 0);
        assert!(!p.panic);
        assert_eq!(
            p.decisions
                .iter()
                .filter(|d| d.transition.is_some())
                .count(),
            2
        );
    }

    #[test]
    fn already_offline_nodes_do_not_count_towards_a_panic() {
        use NodeStatus::*;
        let probes = vec![
            (node("a", Offline, 30, 0), fail()),
            (node("b", Online, 2, 0), fail()),
            (node("c", Online, 0, 9), pass()),
            (node("d", Online, 0, 9), pass()),
        ];
        let p = plan_round(&probes, T, 0.5, 0);
        assert!(!p.panic, "one newly failing node of four");
        assert_eq!(p.decisions[1].transition, Some(Transition::WentOffline));
    }

    #[test]
    fn leaving_nodes_are_not_brought_back_by_probes() {
        use NodeStatus::*;
        let probes = vec![
            (node("a", Leaving, 0, 5), pass()),
            (node("b", Offline, 0, 2), pass()),
        ];
        let p = plan_round(&probes, T, 0.5, 0);
        assert_eq!(p.decisions[0].transition, None);
        assert_eq!(p.decisions[1].transition, Some(Transition::CameOnline));
    }

    #[test]
    fn failover_fill_is_even_for_uneven_loads() {
        // a died with 9 monitors; b owns 1, c owns 5, d owns 2.
        let mut ms: Vec<Ownership> = (0..9).map(|i| own(i, "a", None)).collect();
        ms.push(own(100, "b", None));
        ms.extend((200..205).map(|i| own(i, "c", None)));
        ms.extend((300..302).map(|i| own(i, "d", None)));
        let online = set(&["b", "c", "d"]);
        let (recovery, failover) = plan_ownership(&ms, &online);
        assert!(recovery.is_empty());
        assert_eq!(failover.len(), 9);
        let after = counts(&applied(&ms, &failover), &online);
        // 17 monitors over 3 nodes: 6/6/5, and c (5) gets at most one.
        let v: Vec<usize> = after.values().copied().collect();
        assert!(
            v.iter().max().unwrap() - v.iter().min().unwrap() <= 1,
            "{after:?}"
        );
        assert!(
            failover
                .iter()
                .all(|m| matches!(m, ClusterMove::Assign { from, .. } if from.as_str() == "a"))
        );
    }

    #[test]
    fn recovery_returns_exactly_the_nodes_own_monitors() {
        let ms = vec![
            own(1, "a", Some("b")), // comes home
            own(2, "a", None),
            own(3, "b", Some("a")), // b's, runs on a: stays (b is offline)
            own(4, "a", Some("c")), // comes home
            own(5, "c", None),
        ];
        let (recovery, failover) = plan_ownership(&ms, &set(&["a", "c"]));
        assert_eq!(
            recovery,
            vec![
                ClusterMove::Recover {
                    monitor: MonitorId(1),
                    from: NodeId::from("b")
                },
                ClusterMove::Recover {
                    monitor: MonitorId(4),
                    from: NodeId::from("c")
                },
            ]
        );
        assert!(failover.is_empty(), "{failover:?}");
    }

    #[test]
    fn monitors_assigned_to_a_dead_survivor_move_again() {
        // a is dead; its monitor had gone to b, which died too.
        let ms = vec![own(1, "a", Some("b")), own(2, "c", None)];
        let (recovery, failover) = plan_ownership(&ms, &set(&["c"]));
        assert!(recovery.is_empty());
        assert_eq!(
            failover,
            vec![ClusterMove::Assign {
                monitor: MonitorId(1),
                from: NodeId::from("b"),
                to: NodeId::from("c")
            }]
        );
    }

    #[test]
    fn nothing_moves_when_no_node_is_online() {
        let ms = vec![own(1, "a", None), own(2, "b", None)];
        let (r, f) = plan_ownership(&ms, &BTreeSet::new());
        assert!(r.is_empty() && f.is_empty());
    }

    #[test]
    fn rebalance_moves_the_minimum_and_all_deals_evenly() {
        // d joined empty; a 6, b 3, c 3: 12 over 4 = 3 each → a gives 3.
        let mut ms: Vec<Ownership> = (0..6).map(|i| own(i, "a", None)).collect();
        ms.extend((10..13).map(|i| own(i, "b", None)));
        ms.extend((20..23).map(|i| own(i, "c", None)));
        let online = set(&["a", "b", "c", "d"]);
        let moves = plan_rebalance(&ms, &online, false);
        assert_eq!(moves.len(), 3);
        let after = counts(&applied(&ms, &moves), &online);
        assert!(after.values().all(|&c| c == 3), "{after:?}");
        let all = plan_rebalance(&ms, &online, true);
        let after = counts(&applied(&ms, &all), &online);
        assert!(after.values().all(|&c| c == 3), "{after:?}");
        assert!(plan_rebalance(&applied(&ms, &moves), &online, false).is_empty());
    }

    #[test]
    fn only_one_rebalance_runs_at_a_time() {
        let flag = AtomicBool::new(false);
        let g = RunningGuard::try_start(&flag).unwrap();
        assert!(RunningGuard::try_start(&flag).is_none());
        drop(g);
        assert!(RunningGuard::try_start(&flag).is_some());
    }

    #[tokio::test]
    async fn a_handed_over_request_gets_the_leaders_outcome() {
        let t = picket_shared::testing::sqlite().await;
        let db = t.db.clone();
        // A stand-in leader: claims each request as it comes and answers it.
        let answers = [
            (200, json!({"ok": true, "by": "lb-1", "moved": 3})),
            (409, json!({"ok": false, "msg": "no online node"})),
        ];
        let leader = tokio::spawn(async move {
            for (status, body) in answers {
                let req = loop {
                    let pending = db.pending_cluster_requests(now_ms(), 60_000).await.unwrap();
                    if let Some(r) = pending.into_iter().next() {
                        break r;
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                };
                assert_eq!(req.requested_by, "lb-2");
                assert!(db.claim_cluster_request(req.id, "lb-1").await.unwrap());
                db.finish_cluster_request(req.id, status, &body.to_string(), now_ms())
                    .await
                    .unwrap();
            }
        });
        let wait = Duration::from_secs(10);
        let ok = await_leader(&t.db, "rebalance", "lb-2", wait)
            .await
            .unwrap();
        assert_eq!((&ok["by"], &ok["moved"]), (&json!("lb-1"), &json!(3)));
        let refused = await_leader(&t.db, "rebalance_all", "lb-2", wait).await;
        assert_eq!(refused, Err((409, "no online node".to_owned())));
        leader.await.unwrap();
    }

    #[tokio::test]
    async fn a_request_no_leader_takes_is_withdrawn_and_never_runs_late() {
        let t = picket_shared::testing::sqlite().await;
        let now = now_ms();
        t.db.acquire_lease(LEADER_LEASE, "lb-gone", 3_600_000, now)
            .await
            .unwrap();
        let (code, msg) = await_leader(&t.db, "rebalance", "lb-2", Duration::from_millis(500))
            .await
            .unwrap_err();
        assert_eq!(code, 503);
        assert!(
            msg.contains("lb-gone") && msg.contains("nothing was changed"),
            "{msg}"
        );
        // A leader that turns up later finds nothing to run.
        assert!(
            t.db.pending_cluster_requests(now_ms(), 60_000)
                .await
                .unwrap()
                .is_empty()
        );
    }
}
