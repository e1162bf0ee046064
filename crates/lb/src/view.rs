//! The node view: an immutable snapshot of the cluster that the request path
//! reads (through `ArcSwap`) instead of the database or DNS. The refresher
//! builds a new one every pass; picking a node is a pure function over it.

use crate::dns::DnsError;
use picket_shared::NodeId;
use picket_shared::model::{NodeHealth, NodeStatus};
use serde::Serialize;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

/// One node as the balancer sees it.
#[derive(Debug, Clone, Serialize)]
pub struct NodeEntry {
    pub node_id: NodeId,
    pub node_name: String,
    /// `host:port` as registered; the host may be a name.
    pub host: String,
    pub status: NodeStatus,
    /// Epoch ms of the node's last lease renewal.
    pub last_seen: i64,
    /// Active monitors the node owns (effective owner).
    pub monitor_count: usize,
    /// Where to connect, or why the host could not be resolved.
    #[serde(skip)]
    pub addr: Result<SocketAddr, DnsError>,
    /// The health checker's persisted counters.
    pub health: NodeHealth,
    /// Requests being proxied to this node now, shared across snapshots (the
    /// refresher hands the same counter to every snapshot of a node).
    #[serde(skip)]
    pub inflight: Arc<AtomicI64>,
}

impl NodeEntry {
    /// Online and resolved: may receive traffic.
    pub fn routable(&self) -> bool {
        self.status == NodeStatus::Online && self.addr.is_ok()
    }
    pub fn inflight(&self) -> i64 {
        self.inflight.load(Ordering::Relaxed)
    }
}

/// An immutable picture of the cluster.
#[derive(Debug, Clone, Default)]
pub struct NodeView {
    /// Sorted by node id.
    pub nodes: Vec<NodeEntry>,
    /// Epoch ms of the last successful database read (`None`: never).
    pub db_read_at: Option<i64>,
    /// Epoch ms this snapshot was built.
    pub built_at: i64,
    /// Why the last database read failed, when it did (the nodes are then the
    /// last good ones).
    pub db_error: Option<String>,
}

impl NodeView {
    pub fn node(&self, id: &str) -> Option<&NodeEntry> {
        self.nodes.iter().find(|n| n.node_id.as_str() == id)
    }

    pub fn routable(&self) -> impl Iterator<Item = &NodeEntry> {
        self.nodes.iter().filter(|n| n.routable())
    }

    /// Milliseconds since the last good database read, at `now`.
    pub fn age_ms(&self, now: i64) -> Option<i64> {
        self.db_read_at.map(|t| (now - t).max(0))
    }

    /// The node a request goes to: the pinned node when it is routable and not
    /// yet tried, else the routable node with the fewest owned monitors, ties
    /// broken by in-flight requests, then node id. `tried` holds nodes that
    /// already refused this request's connection.
    pub fn pick(&self, pinned: Option<&str>, tried: &[NodeId]) -> Option<&NodeEntry> {
        let fresh = |n: &&NodeEntry| n.routable() && !tried.contains(&n.node_id);
        if let Some(p) = pinned.and_then(|p| self.node(p)).filter(fresh) {
            return Some(p);
        }
        self.nodes
            .iter()
            .filter(fresh)
            .min_by_key(|n| (n.monitor_count, n.inflight(), &n.node_id))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn entry(id: &str, status: NodeStatus, count: usize, inflight: i64) -> NodeEntry {
        NodeEntry {
            node_id: NodeId::from(id),
            node_name: id.into(),
            host: format!("{id}:3001"),
            status,
            last_seen: 0,
            monitor_count: count,
            addr: Ok("127.0.0.1:3001".parse().unwrap()),
            health: NodeHealth::default(),
            inflight: Arc::new(AtomicI64::new(inflight)),
        }
    }

    fn view(nodes: Vec<NodeEntry>) -> NodeView {
        NodeView {
            nodes,
            ..Default::default()
        }
    }

    fn picked(v: &NodeView, pinned: Option<&str>, tried: &[&str]) -> Option<String> {
        let tried: Vec<NodeId> = tried.iter().map(|t| NodeId::from(*t)).collect();
        v.pick(pinned, &tried).map(|n| n.node_id.to_string())
    }

    #[test]
    fn fewest_monitors_wins_then_inflight_then_id() {
        use NodeStatus::Online;
        let v = view(vec![
            entry("a", Online, 5, 0),
            entry("b", Online, 2, 3),
            entry("c", Online, 2, 1),
        ]);
        assert_eq!(picked(&v, None, &[]).as_deref(), Some("c"));
        let v = view(vec![entry("b", Online, 2, 0), entry("a", Online, 2, 0)]);
        assert_eq!(picked(&v, None, &[]).as_deref(), Some("a"));
    }

    #[test]
    fn offline_leaving_and_unresolved_nodes_get_nothing() {
        use NodeStatus::*;
        let mut unresolved = entry("d", Online, 0, 0);
        unresolved.addr = Err(DnsError::NoAddress("no-such-host".into()));
        let v = view(vec![
            entry("a", Offline, 0, 0),
            entry("b", Leaving, 0, 0),
            unresolved,
            entry("c", Online, 9, 0),
        ]);
        assert_eq!(picked(&v, None, &[]).as_deref(), Some("c"));
        assert_eq!(picked(&v, None, &["c"]), None);
    }

    #[test]
    fn pin_is_honoured_only_while_routable_and_untried() {
        use NodeStatus::*;
        let v = view(vec![
            entry("a", Online, 0, 0),
            entry("b", Online, 9, 0),
            entry("c", Offline, 0, 0),
        ]);
        assert_eq!(picked(&v, Some("b"), &[]).as_deref(), Some("b"));
        assert_eq!(picked(&v, Some("b"), &["b"]).as_deref(), Some("a"));
        assert_eq!(picked(&v, Some("c"), &[]).as_deref(), Some("a"));
        assert_eq!(picked(&v, Some("zz"), &[]).as_deref(), Some("a"));
    }

    #[test]
    fn retry_skips_tried_nodes() {
        use NodeStatus::Online;
        let v = view(vec![entry("a", Online, 0, 0), entry("b", Online, 1, 0)]);
        assert_eq!(picked(&v, None, &["a"]).as_deref(), Some("b"));
    }
}
