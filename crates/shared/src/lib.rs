//! Picket's shared core: configuration, the domain model, the data layer, and the
//! pure placement and health logic that the balancer and the nodes both use.
//!
//! Modules that decide (`placement`, `health`, `monitor` validation) do no I/O and
//! take `now` as an argument; `db` is the only module that talks to the database.

pub mod accounts;
pub mod addr;
pub mod auth;
pub mod config;
pub mod db;
pub mod egress;
pub mod health;
pub mod ids;
pub mod model;
pub mod monitor;
pub mod notify;
pub mod placement;
pub mod read;
pub mod telemetry;
pub mod totp;

pub use ids::{MonitorId, NodeId};

/// Milliseconds since the Unix epoch: the one time representation in the DB.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The version string nodes put in their `User-Agent` and APIs report.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
