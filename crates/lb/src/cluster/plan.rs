//! The leader's decisions, pure: a round's probes folded into node
//! transitions ([`plan_round`]), ownership for the current membership
//! ([`plan_ownership`]: recovery, then failover water-fill), and rebalancing
//! ([`plan_rebalance`]). Plain data in, moves out; no I/O.

use crate::report::NodeRound;
use picket_shared::db::ClusterMove;
use picket_shared::health::{self, Probe, Thresholds, Transition};
use picket_shared::model::{Node, NodeStatus};
use picket_shared::placement::{self, Ownership};
use picket_shared::{MonitorId, NodeId};
use std::collections::{BTreeMap, BTreeSet};

/// What one health round decided.
#[derive(Debug, Clone, PartialEq)]
pub struct RoundPlan {
    pub decisions: Vec<NodeRound>,
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
            NodeRound {
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
    let by_id: BTreeMap<MonitorId, &ClusterMove> = moves.iter().map(|m| (m.monitor(), m)).collect();
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

#[cfg(test)]
mod tests {
    use super::*;
    use picket_shared::model::NodeHealth;

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
}
