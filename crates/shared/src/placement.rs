//! Who owns which monitor: pure functions over plain data, no I/O.
//!
//! The balancer's failover loop and the node API load the current state, call one
//! of these, and apply the returned moves in a transaction.

use crate::ids::{MonitorId, NodeId};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};

/// One ownership change: `monitor` is to be run by `to`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Move {
    pub monitor: MonitorId,
    pub to: NodeId,
}

/// The online node with the fewest owned active monitors; ties go to the lowest
/// node id so the choice is deterministic.
pub fn least_loaded<'a>(load: impl IntoIterator<Item = (&'a NodeId, usize)>) -> Option<NodeId> {
    load.into_iter()
        .min_by(|(a_id, a), (b_id, b)| a.cmp(b).then_with(|| a_id.cmp(b_id)))
        .map(|(id, _)| id.clone())
}

/// Water-fills `orphans` onto `survivors` (node → monitors it owns now): each
/// orphan goes to the currently least-loaded survivor, so afterwards the survivors'
/// counts differ by at most one wherever the orphans were enough to level them.
/// Returns no moves when there is no survivor.
pub fn plan_failover(orphans: &[MonitorId], survivors: &BTreeMap<NodeId, usize>) -> Vec<Move> {
    let mut heap: BinaryHeap<Reverse<(usize, &NodeId)>> =
        survivors.iter().map(|(id, &n)| Reverse((n, id))).collect();
    let mut moves = Vec::with_capacity(orphans.len());
    for &monitor in orphans {
        let Some(Reverse((n, id))) = heap.pop() else {
            return Vec::new();
        };
        moves.push(Move {
            monitor,
            to: id.clone(),
        });
        heap.push(Reverse((n + 1, id)));
    }
    moves
}

/// The fewest moves that leave every node's count within one of every other's.
/// `owned` maps each online node to the monitors it owns (sorted ids are moved
/// from the end, so the result is deterministic).
pub fn plan_rebalance(owned: &BTreeMap<NodeId, Vec<MonitorId>>) -> Vec<Move> {
    let n = owned.len();
    if n < 2 {
        return Vec::new();
    }
    let total: usize = owned.values().map(Vec::len).sum();
    let (q, r) = (total / n, total % n);
    // The `r` nodes that own the most keep q + 1: that keeps the most in place.
    let mut order: Vec<(&NodeId, usize)> = owned.iter().map(|(id, m)| (id, m.len())).collect();
    order.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    let target: BTreeMap<&NodeId, usize> = order
        .iter()
        .enumerate()
        .map(|(i, (id, _))| (*id, if i < r { q + 1 } else { q }))
        .collect();

    let mut spare: Vec<MonitorId> = Vec::new();
    for (id, mons) in owned {
        let t = target[id];
        if mons.len() > t {
            let mut sorted = mons.clone();
            sorted.sort_unstable();
            spare.extend_from_slice(&sorted[t..]);
        }
    }
    let mut moves = Vec::with_capacity(spare.len());
    let mut spare = spare.into_iter();
    for (id, mons) in owned {
        for _ in mons.len()..target[id] {
            if let Some(monitor) = spare.next() {
                moves.push(Move {
                    monitor,
                    to: id.clone(),
                });
            }
        }
    }
    moves
}

/// Every monitor re-homed evenly: monitor ids in order, dealt round-robin over
/// the nodes in id order.
pub fn plan_rebalance_all(monitors: &[MonitorId], nodes: &[NodeId]) -> Vec<Move> {
    if nodes.is_empty() {
        return Vec::new();
    }
    let mut nodes = nodes.to_vec();
    nodes.sort();
    let mut monitors = monitors.to_vec();
    monitors.sort_unstable();
    monitors
        .into_iter()
        .enumerate()
        .map(|(i, monitor)| Move {
            monitor,
            to: nodes[i % nodes.len()].clone(),
        })
        .collect()
}

/// A monitor's ownership columns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ownership {
    pub monitor: MonitorId,
    pub default_node: NodeId,
    pub assign_node: Option<NodeId>,
}

impl Ownership {
    /// `COALESCE(assign_node, default_node_id)`.
    pub fn owner(&self) -> &NodeId {
        self.assign_node.as_ref().unwrap_or(&self.default_node)
    }
}

/// Monitors that go home when `node` is back: its own monitors that were
/// temporarily assigned elsewhere.
pub fn plan_recovery(node: &NodeId, monitors: &[Ownership]) -> Vec<MonitorId> {
    monitors
        .iter()
        .filter(|m| &m.default_node == node && m.assign_node.as_ref().is_some_and(|a| a != node))
        .map(|m| m.monitor)
        .collect()
}

/// Monitors whose effective owner is not online, i.e. that nobody runs.
pub fn orphans(monitors: &[Ownership], online: &BTreeMap<NodeId, usize>) -> Vec<MonitorId> {
    monitors
        .iter()
        .filter(|m| !online.contains_key(m.owner()))
        .map(|m| m.monitor)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(s: &str) -> NodeId {
        NodeId::from(s)
    }
    fn ids(r: std::ops::Range<i64>) -> Vec<MonitorId> {
        r.map(MonitorId).collect()
    }
    fn spread(counts: impl Iterator<Item = usize>) -> usize {
        let v: Vec<_> = counts.collect();
        v.iter().max().unwrap() - v.iter().min().unwrap()
    }

    #[test]
    fn least_loaded_picks_fewest_then_lowest_id() {
        let (a, b, c) = (node("a"), node("b"), node("c"));
        assert_eq!(least_loaded([(&a, 5), (&b, 2), (&c, 2)]), Some(b.clone()));
        assert_eq!(least_loaded([(&c, 0), (&a, 0)]), Some(a));
        assert_eq!(least_loaded(std::iter::empty()), None);
    }

    #[test]
    fn failover_fill_levels_uneven_survivors() {
        let survivors = BTreeMap::from([(node("a"), 10), (node("b"), 2), (node("c"), 5)]);
        let moves = plan_failover(&ids(0..20), &survivors);
        assert_eq!(moves.len(), 20);
        let mut after = survivors.clone();
        for m in &moves {
            *after.get_mut(&m.to).unwrap() += 1;
        }
        // 17 + 20 = 37 over 3 nodes: 12/12/13 — and `a` (10) only got 2 or 3.
        assert!(spread(after.values().copied()) <= 1, "{after:?}");
        assert_eq!(after.values().sum::<usize>(), 37);
    }

    #[test]
    fn failover_with_few_orphans_fills_the_emptiest_first() {
        let survivors = BTreeMap::from([(node("a"), 10), (node("b"), 2)]);
        let moves = plan_failover(&ids(0..3), &survivors);
        assert!(moves.iter().all(|m| m.to == node("b")));
    }

    #[test]
    fn failover_without_survivors_moves_nothing() {
        assert!(plan_failover(&ids(0..5), &BTreeMap::new()).is_empty());
    }

    #[test]
    fn rebalance_moves_the_minimum() {
        let owned = BTreeMap::from([
            (node("a"), ids(0..10)),
            (node("b"), ids(10..14)),
            (node("c"), ids(14..15)),
            (node("d"), vec![]),
        ]);
        // 15 over 4: targets 4,4,4,3 → a gives 6; minimum = 6 moves.
        let moves = plan_rebalance(&owned);
        assert_eq!(moves.len(), 6);
        let mut counts: BTreeMap<_, usize> =
            owned.iter().map(|(k, v)| (k.clone(), v.len())).collect();
        for m in &moves {
            let from = owned
                .iter()
                .find(|(_, v)| v.contains(&m.monitor))
                .unwrap()
                .0;
            *counts.get_mut(from).unwrap() -= 1;
            *counts.get_mut(&m.to).unwrap() += 1;
        }
        assert!(spread(counts.values().copied()) <= 1, "{counts:?}");
    }

    #[test]
    fn balanced_cluster_needs_no_moves() {
        let owned = BTreeMap::from([(node("a"), ids(0..4)), (node("b"), ids(4..7))]);
        assert!(plan_rebalance(&owned).is_empty());
    }

    #[test]
    fn rebalance_all_deals_evenly() {
        let moves = plan_rebalance_all(&ids(0..10), &[node("b"), node("a"), node("c")]);
        let mut c = BTreeMap::<NodeId, usize>::new();
        for m in &moves {
            *c.entry(m.to.clone()).or_default() += 1;
        }
        assert_eq!(moves.len(), 10);
        assert_eq!(c[&node("a")], 4);
        assert!(spread(c.values().copied()) <= 1);
    }

    #[test]
    fn recovery_returns_exactly_the_nodes_own_moved_monitors() {
        let own = |m, d: &str, a: Option<&str>| Ownership {
            monitor: MonitorId(m),
            default_node: node(d),
            assign_node: a.map(node),
        };
        let ms = [
            own(1, "a", Some("b")), // a's, moved: comes home
            own(2, "a", None),      // a's, at home
            own(3, "b", Some("a")), // b's, running on a: not a's to take back
            own(4, "a", Some("c")), // a's, moved: comes home
            own(5, "c", None),
            own(6, "a", Some("a")), // pinned to itself: nothing to do
        ];
        assert_eq!(
            plan_recovery(&node("a"), &ms),
            vec![MonitorId(1), MonitorId(4)]
        );
    }

    #[test]
    fn orphans_are_monitors_whose_owner_is_not_online() {
        let ms = [
            Ownership {
                monitor: MonitorId(1),
                default_node: node("a"),
                assign_node: None,
            },
            Ownership {
                monitor: MonitorId(2),
                default_node: node("b"),
                assign_node: Some(node("a")),
            },
            Ownership {
                monitor: MonitorId(3),
                default_node: node("a"),
                assign_node: Some(node("b")),
            },
        ];
        let online = BTreeMap::from([(node("b"), 0)]);
        assert_eq!(orphans(&ms, &online), vec![MonitorId(1), MonitorId(2)]);
    }
}
