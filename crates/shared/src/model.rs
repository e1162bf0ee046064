//! Plain domain types shared by the nodes and the balancer.

use crate::ids::{MonitorId, NodeId};
use serde::{Deserialize, Serialize};

/// Heartbeat status, with Uptime Kuma's numeric values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(into = "i64", try_from = "i64")]
pub enum Status {
    Down = 0,
    Up = 1,
    Pending = 2,
    Maintenance = 3,
}

impl From<Status> for i64 {
    fn from(s: Status) -> i64 {
        s as i64
    }
}

impl TryFrom<i64> for Status {
    type Error = String;
    fn try_from(v: i64) -> Result<Self, String> {
        Ok(match v {
            0 => Status::Down,
            1 => Status::Up,
            2 => Status::Pending,
            3 => Status::Maintenance,
            other => return Err(format!("unknown status {other}")),
        })
    }
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Down => "down",
            Status::Up => "up",
            Status::Pending => "pending",
            Status::Maintenance => "maintenance",
        }
    }
}

/// A node's membership state as the cluster sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeStatus {
    /// Passing health checks: owns monitors and receives traffic.
    Online,
    /// Failed `fall` consecutive checks: its monitors run elsewhere.
    Offline,
    /// Shut down on purpose: treated as offline at once.
    Leaving,
}

impl NodeStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            NodeStatus::Online => "online",
            NodeStatus::Offline => "offline",
            NodeStatus::Leaving => "leaving",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "online" => Some(NodeStatus::Online),
            "offline" => Some(NodeStatus::Offline),
            "leaving" => Some(NodeStatus::Leaving),
            _ => None,
        }
    }
}

/// A row of the `node` table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Node {
    pub node_id: NodeId,
    pub node_name: String,
    /// `host:port` the balancer uses to reach the node; the host may be a name.
    pub host: String,
    pub status: NodeStatus,
    /// Epoch ms of the node's last lease renewal.
    pub last_seen: i64,
    pub health: NodeHealth,
    pub created_at: i64,
    pub modified_at: i64,
}

/// The health checker's persisted counters for one node.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct NodeHealth {
    /// Consecutive failed checks.
    pub fails: u32,
    /// Consecutive passed checks.
    pub passes: u32,
    pub last_at: Option<i64>,
    pub last_ok: Option<bool>,
    pub last_ms: Option<i64>,
    pub last_error: Option<String>,
}

/// One check result, as written to the `heartbeat` table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Heartbeat {
    pub monitor_id: MonitorId,
    pub node_id: NodeId,
    pub status: Status,
    /// Epoch ms when the check finished.
    pub time: i64,
    /// Response time in ms, when the check measured one.
    pub ping: Option<f64>,
    pub msg: String,
    /// Whether the status changed (Uptime Kuma's notification-worthy beats).
    pub important: bool,
    /// Seconds since the previous beat of this monitor.
    pub duration: i64,
    pub retries: u32,
}
