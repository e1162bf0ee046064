//! One pass of the cluster service, in its steps: take or renew the lease
//! ([`Ctx::lead`]), probe every node ([`Ctx::probe_all`]), plan the round
//! ([`plan_round`], pure), record health and membership changes
//! ([`Ctx::record_health`]), move ownership ([`Ctx::move_ownership`]), and
//! report ([`Ctx::run_once`]).

use super::plan::{RoundPlan, plan_ownership, plan_round};
use super::{Ctx, EVENTS_SHOWN, LEADER_LEASE};
use crate::dns::DnsError;
use crate::report::{ClusterError, LeaderRound, RoundReport};
use picket_shared::db::{Db, Fence};
use picket_shared::health::{Probe, Transition};
use picket_shared::model::{Node, NodeStatus};
use picket_shared::{NodeId, now_ms};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Instant;

/// Node statuses after a round's transitions.
struct Membership {
    statuses: BTreeMap<NodeId, NodeStatus>,
    /// Some node came online this round.
    came_online: bool,
}

/// What the ownership step moved.
struct Moved {
    recovered: u64,
    failed_over: u64,
    /// Failover moves held back by a panic.
    frozen: usize,
}

impl Ctx {
    /// One pass: lease, then (leader only) probes, transitions and moves;
    /// publishes what it saw for the status endpoints.
    pub(super) async fn run_once(&mut self) -> Result<RoundReport, ClusterError> {
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
        match &r {
            Ok(RoundReport::Leader(l)) => {
                report.last_error = None;
                report.panic = l.panic;
                report.failing = l.failing;
                report.total = l.total;
            }
            Ok(RoundReport::Follower) => report.last_error = None,
            Err(e) => {
                tracing::warn!(cause = %e, "cluster round failed");
                report.last_error = Some(e.to_string());
            }
        }
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
        self.shared.cluster.store(Arc::new(report));
        r
    }

    async fn round(&mut self, now: i64) -> Result<RoundReport, ClusterError> {
        let db = self.db.get().await?.clone();
        if !self.lead(&db, now).await? {
            return Ok(RoundReport::Follower);
        }
        let shared = self.shared.clone();
        let cfg = &shared.cfg;
        let nodes = db.nodes().await?;
        let probes = self.probe_all(&nodes).await;
        let plan = plan_round(&probes, cfg.thresholds(), cfg.panic_threshold, now);
        let membership = self.record_health(&db, &nodes, &probes, &plan, now).await?;
        let joined = self.note_members(&membership);
        let moved = self.move_ownership(&db, &plan, &membership, now).await?;
        let auto_rebalance = if cfg.auto_rebalance && (membership.came_online || joined) {
            Some(self.rebalance(false).await.map_err(|e| e.to_string()))
        } else {
            None
        };
        Ok(RoundReport::Leader(LeaderRound {
            panic: plan.panic,
            failing: plan.failing,
            total: plan.total,
            nodes: plan.decisions,
            recovered: moved.recovered,
            failed_over: moved.failed_over,
            frozen: moved.frozen,
            auto_rebalance,
        }))
    }

    /// Takes or renews the leader lease; says whether this balancer leads.
    pub(super) async fn lead(&mut self, db: &Db, now: i64) -> Result<bool, ClusterError> {
        let shared = &self.shared;
        let ttl = shared.cfg.lease_ttl().as_millis() as i64;
        let leader = db
            .acquire_lease(LEADER_LEASE, &shared.lb_id, ttl, now)
            .await?;
        if leader != self.leader {
            self.leader = leader;
            if leader {
                tracing::info!(lb = %shared.lb_id, "acquired the leader lease");
                let detail = format!("{} became the leader", shared.lb_id);
                let _ = db.record_event(now, "leader", None, 0, &detail).await;
            } else {
                tracing::warn!(lb = %shared.lb_id, "lost the leader lease");
            }
        }
        Ok(leader)
    }

    /// Saves every node's counters, applies the round's transitions (status
    /// and history), and records a panic once.
    async fn record_health(
        &self,
        db: &Db,
        nodes: &[Node],
        probes: &[(Node, Probe)],
        plan: &RoundPlan,
        now: i64,
    ) -> Result<Membership, ClusterError> {
        let m = &self.shared.metrics;
        m.panic.set(i64::from(plan.panic));
        let mut statuses: BTreeMap<NodeId, NodeStatus> = nodes
            .iter()
            .map(|n| (n.node_id.clone(), n.status))
            .collect();
        let mut changed = false;
        let mut came_online = false;
        for (d, (_, probe)) in plan.decisions.iter().zip(probes) {
            let result = if matches!(probe, Probe::Pass { .. }) {
                "pass"
            } else {
                "fail"
            };
            m.health_checks
                .with_label_values(&[d.node.as_str(), result])
                .inc();
            db.save_node_health(&d.node, &d.health).await?;
            let Some(tr) = d.transition else { continue };
            let (status, kind, detail) = match tr {
                Transition::WentOffline => (
                    NodeStatus::Offline,
                    "node_offline",
                    format!(
                        "{} consecutive failed checks; last: {}",
                        d.health.fails,
                        d.health.last_error.as_deref().unwrap_or("?")
                    ),
                ),
                Transition::CameOnline => (
                    NodeStatus::Online,
                    "node_online",
                    format!("{} consecutive passed checks", d.health.passes),
                ),
            };
            db.set_node_status(&d.node, status).await?;
            statuses.insert(d.node.clone(), status);
            changed = true;
            came_online |= status == NodeStatus::Online;
            tracing::warn!(node = %d.node, event = kind, %detail, "node status changed");
            let _ = db.record_event(now, kind, Some(&d.node), 0, &detail).await;
        }
        if plan.panic {
            let detail = format!(
                "{} of {} nodes failed in one round; failover frozen",
                plan.failing, plan.total
            );
            tracing::error!(%detail, "panic threshold reached");
            if !self.shared.cluster.load().panic {
                let _ = db.record_event(now, "panic", None, 0, &detail).await;
            }
        }
        if changed {
            self.refresh_view();
        }
        Ok(Membership {
            statuses,
            came_online,
        })
    }

    /// Remembers this round's members; says whether an online node is new
    /// since the last round (a join, for auto-rebalance).
    fn note_members(&mut self, membership: &Membership) -> bool {
        let joined = match &self.known {
            Some(k) => online(membership).iter().any(|n| !k.contains(n)),
            None => false,
        };
        self.known = Some(membership.statuses.keys().cloned().collect());
        joined
    }

    /// Sends home what can go home, then (unless the round panicked) fails
    /// over what has no online owner.
    async fn move_ownership(
        &self,
        db: &Db,
        plan: &RoundPlan,
        membership: &Membership,
        now: i64,
    ) -> Result<Moved, ClusterError> {
        let monitors = db.ownership(true).await?;
        let (recovery, failover) = plan_ownership(&monitors, &online(membership));
        let fence = Fence {
            lease: LEADER_LEASE,
            holder: &self.shared.lb_id,
            now: now_ms(),
        };
        let recovered = self.apply("recovery", db, &recovery, fence, now).await?;
        let failed_over = if plan.panic {
            0
        } else {
            self.apply("failover", db, &failover, fence, now).await?
        };
        if recovered + failed_over > 0 {
            self.refresh_view();
        }
        Ok(Moved {
            recovered,
            failed_over,
            frozen: if plan.panic { failover.len() } else { 0 },
        })
    }

    /// Probes every node's `/api/v1/health` at the address in the node view.
    /// Nodes the view does not know yet (just registered, or the balancer just
    /// started) are left out of this round rather than counted as failing.
    pub(super) async fn probe_all(&self, nodes: &[Node]) -> Vec<(Node, Probe)> {
        let view = self.shared.view.load_full();
        let mut set = tokio::task::JoinSet::new();
        let known: Vec<(Node, Result<std::net::SocketAddr, DnsError>)> = nodes
            .iter()
            .filter_map(|n| {
                let entry = view.node(n.node_id.as_str())?;
                Some((n.clone(), entry.addr.clone()))
            })
            .collect();
        for (i, (_, addr)) in known.iter().enumerate() {
            let addr = addr.clone();
            let http = self.http.clone();
            set.spawn(async move {
                let t = Instant::now();
                let r = match addr {
                    Err(e) => Err(e.to_string()),
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
            .map(|((n, _), p)| {
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
}

fn online(membership: &Membership) -> BTreeSet<NodeId> {
    membership
        .statuses
        .iter()
        .filter(|(_, s)| **s == NodeStatus::Online)
        .map(|(n, _)| n.clone())
        .collect()
}
