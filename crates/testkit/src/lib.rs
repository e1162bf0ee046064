//! `picket-testkit`: what every crate's tests and the benchmarks share.
//!
//! - [`db`]: a fresh SQLite or MariaDB database per test.
//! - [`monitors`]: validated monitors and node rows written straight to a database.
//! - [`node`] / [`lb`]: real nodes and balancers, in this process or as
//!   processes of their own; [`cluster`] puts three nodes and a balancer together.
//! - [`farm`]: the monitored target, which records which node checked what.
//! - [`api`]: a JSON client for a node's API.
//! - [`receiver`]: a notification receiver that records what providers send.
//! - [`smtp`]: a real SMTP server (aiosmtpd) for the email provider.
//! - [`browser`]: headless Chromium over WebDriver, for the pages.
//! - [`net`]: ports, a cuttable TCP proxy, an HTTP client; [`dns`]: a tiny
//!   authoritative DNS server.
//! - [`wait`]: [`eventually`], the one way tests wait for something to happen.
//!
//! Everything binds 127.0.0.1 with port 0 (or a port just found free) and
//! reaches nothing outside the machine.

pub mod api;
pub mod browser;
pub mod cluster;
pub mod db;
pub mod dns;
pub mod farm;
pub mod lb;
pub mod monitors;
pub mod net;
pub mod node;
pub mod receiver;
pub mod smtp;
pub mod wait;

pub use wait::{WAIT, eventually};

/// The admin token every node and balancer the kit starts accepts.
pub const TOKEN: &str = "test-admin-token";
