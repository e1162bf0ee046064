//! Node health decisions: the `fall`/`rise` counters and the panic threshold.
//! Pure functions; the balancer's checker does the probing and persisting.

use crate::model::{NodeHealth, NodeStatus};

/// Health checker thresholds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thresholds {
    /// Consecutive failed checks that take an online node offline.
    pub fall: u32,
    /// Consecutive passed checks that bring an offline node back.
    pub rise: u32,
}

/// The result of one probe of a node.
#[derive(Debug, Clone, PartialEq)]
pub enum Probe {
    Pass { latency_ms: i64 },
    Fail { error: String, latency_ms: i64 },
}

/// A membership change the probe caused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    WentOffline,
    CameOnline,
}

/// Folds one probe into a node's counters and says whether its status flips.
pub fn observe(
    status: NodeStatus,
    prev: &NodeHealth,
    probe: &Probe,
    t: Thresholds,
    now: i64,
) -> (NodeHealth, Option<Transition>) {
    let mut h = prev.clone();
    h.last_at = Some(now);
    match probe {
        Probe::Pass { latency_ms } => {
            h.passes = h.passes.saturating_add(1);
            h.fails = 0;
            h.last_ok = Some(true);
            h.last_ms = Some(*latency_ms);
            h.last_error = None;
        }
        Probe::Fail { error, latency_ms } => {
            h.fails = h.fails.saturating_add(1);
            h.passes = 0;
            h.last_ok = Some(false);
            h.last_ms = Some(*latency_ms);
            h.last_error = Some(error.clone());
        }
    }
    let transition = match status {
        NodeStatus::Online if h.fails >= t.fall => Some(Transition::WentOffline),
        NodeStatus::Offline | NodeStatus::Leaving if h.passes >= t.rise => {
            Some(Transition::CameOnline)
        }
        _ => None,
    };
    (h, transition)
}

/// Whether failing `failing` of `total` nodes at once is a panic (the fault is
/// more likely the checker's or the network's than the nodes'): then ownership is
/// frozen instead of piling every monitor onto the few left. `ratio` ≤ 0 disables.
pub fn is_panic(total: usize, failing: usize, ratio: f64) -> bool {
    ratio > 0.0 && total >= 2 && failing > 0 && failing as f64 >= ratio * total as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Thresholds = Thresholds { fall: 3, rise: 3 };

    fn run(status: NodeStatus, probes: &[bool]) -> Vec<Option<Transition>> {
        let mut h = NodeHealth::default();
        let mut status = status;
        probes
            .iter()
            .map(|&ok| {
                let p = if ok {
                    Probe::Pass { latency_ms: 1 }
                } else {
                    Probe::Fail {
                        error: "timeout".into(),
                        latency_ms: 2000,
                    }
                };
                let (next, tr) = observe(status, &h, &p, T, 0);
                h = next;
                match tr {
                    Some(Transition::WentOffline) => status = NodeStatus::Offline,
                    Some(Transition::CameOnline) => status = NodeStatus::Online,
                    None => {}
                }
                tr
            })
            .collect()
    }

    #[test]
    fn three_strikes_take_a_node_offline() {
        use Transition::*;
        assert_eq!(
            run(NodeStatus::Online, &[false, false, false, false]),
            [None, None, Some(WentOffline), None]
        );
    }

    #[test]
    fn a_pass_resets_the_strikes() {
        assert_eq!(
            run(NodeStatus::Online, &[false, false, true, false, false]),
            [None; 5]
        );
    }

    #[test]
    fn rise_passes_bring_it_back() {
        use Transition::*;
        assert_eq!(
            run(NodeStatus::Offline, &[true, true, false, true, true, true]),
            [None, None, None, None, None, Some(CameOnline)]
        );
    }

    #[test]
    fn panic_threshold() {
        assert!(is_panic(4, 2, 0.5));
        assert!(!is_panic(4, 1, 0.5));
        assert!(is_panic(3, 2, 0.5));
        assert!(!is_panic(3, 1, 0.5));
        assert!(!is_panic(4, 4, 0.0), "disabled");
        assert!(!is_panic(1, 1, 0.5), "a lone node is not a panic");
    }
}
