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

/// Beats counted in one window of the uptime aggregates.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct WindowStats {
    /// UP and MAINTENANCE beats.
    pub up: i64,
    /// DOWN and PENDING beats.
    pub down: i64,
    /// Sum and count of the response times of UP beats that measured one.
    pub ping_sum: f64,
    pub ping_count: i64,
}

impl WindowStats {
    /// Fraction of beats that were up, `None` without beats.
    pub fn uptime(&self) -> Option<f64> {
        let total = self.up + self.down;
        (total > 0).then(|| self.up as f64 / total as f64)
    }
    /// Mean response time in ms, `None` without measured beats.
    pub fn avg_ping(&self) -> Option<f64> {
        (self.ping_count > 0).then(|| self.ping_sum / self.ping_count as f64)
    }
    /// Adds one beat.
    pub fn add(&mut self, status: Status, ping: Option<f64>) {
        match status {
            Status::Up | Status::Maintenance => self.up += 1,
            Status::Down | Status::Pending => self.down += 1,
        }
        if let (Status::Up, Some(p)) = (status, ping) {
            self.ping_sum += p;
            self.ping_count += 1;
        }
    }
}

/// A monitor's uptime figures over Uptime Kuma's three windows.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Uptime {
    /// Last 24 h, from per-minute aggregates.
    pub day: WindowStats,
    /// Last 7 days, from per-hour aggregates.
    pub week: WindowStats,
    /// Last 30 days, from per-day aggregates.
    pub month: WindowStats,
}

/// The latest TLS certificate facts of an https monitor.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct TlsInfo {
    pub days_remaining: i64,
    pub valid: bool,
    /// `notAfter`, epoch ms.
    pub not_after: i64,
    /// When the owning node last saw the certificate, epoch ms.
    pub checked_at: i64,
}
