//! Configuration: every setting is a CLI flag with an environment variable, and
//! may also come from a TOML file (`--config` / `PICKET_CONFIG`). Precedence:
//! flag > environment > file > built-in default.

use crate::telemetry::LogFormat;
use clap::{ArgMatches, Parser};
use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Exit code for bad configuration (`EX_USAGE`).
pub const EXIT_CONFIG: i32 = 64;

/// Parses `T` from `args`, with defaults taken from the TOML file named by
/// `--config FILE` or `PICKET_CONFIG`. The file's keys are the long flag names
/// (`database-url` or `database_url`). Unknown keys are an error, not ignored.
pub fn parse_with_file<T: Parser>(args: Vec<OsString>) -> Result<T, ConfigError> {
    let mut cmd = T::command();
    if let Some(path) = config_path(&args) {
        let text = std::fs::read_to_string(&path).map_err(|e| {
            ConfigError::File(format!("cannot read config file {}: {e}", path.display()))
        })?;
        let table: toml::Table = text
            .parse()
            .map_err(|e| ConfigError::File(format!("config file {}: {e}", path.display())))?;
        for (key, value) in table {
            let long = key.replace('_', "-");
            let Some(id) = cmd
                .get_arguments()
                .find(|a| a.get_long() == Some(long.as_str()))
                .map(|a| a.get_id().clone())
            else {
                return Err(ConfigError::File(format!(
                    "config file {}: unknown setting '{key}'",
                    path.display()
                )));
            };
            let v = match value {
                toml::Value::String(s) => s,
                toml::Value::Array(items) => items
                    .iter()
                    .map(|i| {
                        i.as_str()
                            .map(str::to_owned)
                            .unwrap_or_else(|| i.to_string())
                    })
                    .collect::<Vec<_>>()
                    .join(","),
                other => other.to_string(),
            };
            // Config is read once per process: leaking the few strings is fine.
            let v: &'static str = Box::leak(v.into_boxed_str());
            cmd = cmd.mut_arg(id, |a| a.default_value(v));
        }
    }
    let matches: ArgMatches = cmd.try_get_matches_from(args)?;
    Ok(T::from_arg_matches(&matches)?)
}

/// Why configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A bad flag or value, or `--help` / `--version` (which clap reports as errors).
    #[error("{0}")]
    Clap(#[from] clap::Error),
    /// The config file is missing, malformed or names an unknown setting.
    #[error("{0}")]
    File(String),
}

fn config_path(args: &[OsString]) -> Option<PathBuf> {
    let mut it = args.iter().skip(1);
    while let Some(a) = it.next() {
        let a = a.to_string_lossy();
        if a == "--config" {
            return it.next().map(PathBuf::from);
        }
        if let Some(p) = a.strip_prefix("--config=") {
            return Some(PathBuf::from(p));
        }
    }
    std::env::var_os("PICKET_CONFIG").map(PathBuf::from)
}

/// Parses `args` as a binary's `main` wants: `--help` / `--version` print and
/// exit 0; anything wrong prints one clear message and yields exit code 64.
pub fn parse_args<T: Parser>(args: Vec<OsString>) -> Result<T, std::process::ExitCode> {
    match parse_with_file::<T>(args) {
        Ok(c) => Ok(c),
        Err(ConfigError::Clap(e)) if !e.use_stderr() => e.exit(),
        Err(e) => {
            eprintln!("configuration error: {}", e.to_string().trim_end());
            Err(std::process::ExitCode::from(EXIT_CONFIG as u8))
        }
    }
}

/// [`parse_args`] on the process's own arguments, exiting on error.
pub fn parse_or_exit<T: Parser>() -> T {
    parse_args(std::env::args_os().collect()).unwrap_or_else(|_| std::process::exit(EXIT_CONFIG))
}

/// The host name, the default node id.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "picket-node".into())
}

/// Settings of `picket-node`.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "picket-node",
    version,
    about = "Picket worker node",
    args_override_self = true
)]
pub struct NodeConfig {
    /// TOML file with defaults for any of these settings.
    #[arg(long, env = "PICKET_CONFIG", global = true)]
    pub config: Option<PathBuf>,

    /// `sqlite://…` or `mysql://…`.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "sqlite://picket.db?mode=rwc",
        global = true
    )]
    pub database_url: String,

    /// This node's identity, stable across restarts [default: host name].
    #[arg(long, env = "PICKET_NODE_ID")]
    pub node_id: Option<String>,

    /// Human-readable node name [default: node id].
    #[arg(long, env = "PICKET_NODE_NAME")]
    pub node_name: Option<String>,

    /// `host:port` the balancer uses to reach this node [default: `<node id>:3001`].
    #[arg(long, env = "PICKET_NODE_HOST")]
    pub node_host: Option<String>,

    /// Address the REST API listens on.
    #[arg(long, env = "PICKET_LISTEN", default_value = "0.0.0.0:3001")]
    pub listen: SocketAddr,

    /// Bootstrap admin token; without it (and without keys) mutating calls refuse.
    #[arg(long, env = "PICKET_API_TOKEN", hide_env_values = true)]
    pub api_token: Option<String>,

    /// When set, `/metrics` asks for this token or an API key (as a
    /// Bearer token, or as the Basic-auth password as Uptime Kuma takes it).
    #[arg(long, env = "PICKET_METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<String>,

    /// Connections the node's server holds at once; past it, new ones wait
    /// until one closes.
    #[arg(long, env = "PICKET_MAX_CONNECTIONS", default_value_t = 4096)]
    pub max_connections: usize,

    /// Seconds a client has to send a request's head (and, on a kept-alive
    /// connection, to start its next request).
    #[arg(long, env = "PICKET_HEADER_TIMEOUT_SECS", default_value_t = 10)]
    pub header_timeout_secs: u64,

    /// Seconds a request may take before it is answered 503.
    #[arg(long, env = "PICKET_REQUEST_TIMEOUT_SECS", default_value_t = 30)]
    pub request_timeout_secs: u64,

    /// Addresses checks may not connect to (CIDR blocks, comma separated),
    /// checked after DNS. Default: the cloud metadata services.
    #[arg(long, env = "PICKET_DENY_TARGETS", default_value = crate::egress::DEFAULT_DENY)]
    pub deny_targets: String,

    /// When set, checks may connect only to these addresses (CIDR blocks,
    /// comma separated; the deny list still applies).
    #[arg(long, env = "PICKET_ALLOW_TARGETS", default_value = "")]
    pub allow_targets: String,

    /// Smallest monitor interval the API accepts, in seconds.
    #[arg(long, env = "PICKET_MIN_INTERVAL_SECS", default_value_t = 20)]
    pub min_interval_secs: i64,

    /// Seconds without a lease renewal after which the node stops running monitors.
    #[arg(long, env = "PICKET_LEASE_TTL_SECS", default_value_t = 15)]
    pub lease_ttl_secs: u64,

    /// How often the reconcile loop polls the revision counter, in ms (≤ 2000).
    #[arg(long, env = "PICKET_RECONCILE_MS", default_value_t = 1000)]
    pub reconcile_ms: u64,

    /// Checks running at once, at most.
    #[arg(long, env = "PICKET_MAX_CONCURRENT_CHECKS", default_value_t = 1024)]
    pub max_concurrent_checks: usize,

    /// Heartbeats kept in memory while the DB is unreachable; the oldest are
    /// dropped (and counted) past this.
    #[arg(long, env = "PICKET_HEARTBEAT_BUFFER", default_value_t = 200_000)]
    pub heartbeat_buffer: usize,

    /// Longest time a heartbeat waits before its batch is written, in ms.
    #[arg(long, env = "PICKET_HEARTBEAT_FLUSH_MS", default_value_t = 250)]
    pub heartbeat_flush_ms: u64,

    /// Rows per heartbeat insert.
    #[arg(long, env = "PICKET_HEARTBEAT_BATCH", default_value_t = 200)]
    pub heartbeat_batch: usize,

    /// Database connections in the pool.
    #[arg(long, env = "PICKET_DB_POOL", default_value_t = 8)]
    pub db_pool: u32,

    /// Days raw heartbeats are kept; older ones are pruned (uptime aggregates
    /// are kept longer: per-minute 2 days, per-hour 35 days, per-day 400 days).
    #[arg(long, env = "PICKET_HEARTBEAT_RETENTION_DAYS", default_value_t = 7)]
    pub heartbeat_retention_days: u32,

    /// Where people reach the cluster (`https://picket.example.com`): links
    /// to monitor pages in notifications.
    #[arg(long, env = "PICKET_PUBLIC_URL")]
    pub public_url: Option<String>,

    /// How often the node looks for notifications to deliver, in ms.
    #[arg(long, env = "PICKET_NOTIFY_POLL_MS", default_value_t = 500)]
    pub notify_poll_ms: u64,

    /// First retry of a failed delivery, seconds (doubling up to 10 minutes).
    #[arg(long, env = "PICKET_NOTIFY_RETRY_SECS", default_value_t = 5)]
    pub notify_retry_secs: u64,

    /// How long a node's claim on a delivery keeps the others off it; a node
    /// that dies mid-send leaves the delivery to another after this, seconds.
    #[arg(long, env = "PICKET_NOTIFY_CLAIM_SECS", default_value_t = 60)]
    pub notify_claim_secs: u64,

    /// A delivery still failing after this many hours is given up.
    #[arg(long, env = "PICKET_NOTIFY_GIVE_UP_HOURS", default_value_t = 24)]
    pub notify_give_up_hours: u64,

    /// Log line format.
    #[arg(long, env = "PICKET_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,

    #[command(subcommand)]
    pub command: Option<NodeCommand>,
}

/// `picket-node` subcommands; without one the node runs.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum NodeCommand {
    /// Creates an API key and prints it (shown only this once).
    CreateApiKey {
        /// A name to recognise the key by.
        #[arg(long)]
        name: String,
        /// What it may do: `read`, `write` (monitors, channels, tags) or
        /// `admin` (also nodes and keys).
        #[arg(long, default_value = "admin")]
        scope: String,
    },
    /// Applies the database migrations and exits.
    Migrate,
}

impl NodeConfig {
    pub fn node_id(&self) -> String {
        self.node_id.clone().unwrap_or_else(hostname)
    }
    pub fn node_name(&self) -> String {
        self.node_name.clone().unwrap_or_else(|| self.node_id())
    }
    pub fn node_host(&self) -> String {
        self.node_host
            .clone()
            .unwrap_or_else(|| format!("{}:{}", self.node_id(), self.listen.port()))
    }
    pub fn reconcile_interval(&self) -> Duration {
        Duration::from_millis(self.reconcile_ms)
    }
    pub fn lease_ttl(&self) -> Duration {
        Duration::from_secs(self.lease_ttl_secs)
    }
    pub fn heartbeat_retention(&self) -> Duration {
        Duration::from_secs(u64::from(self.heartbeat_retention_days) * 86_400)
    }

    /// The egress policy of `PICKET_DENY_TARGETS` and `PICKET_ALLOW_TARGETS`.
    pub fn egress(&self) -> Result<crate::egress::EgressPolicy, String> {
        crate::egress::EgressPolicy::from_lists(&self.deny_targets, &self.allow_targets)
    }

    /// Checks what clap cannot: relations between settings.
    pub fn validate(&self) -> Result<(), String> {
        let mut bad = Vec::new();
        if let Err(e) = self.egress() {
            bad.push(format!("PICKET_DENY_TARGETS / PICKET_ALLOW_TARGETS: {e}"));
        }
        if !(1..=2000).contains(&self.reconcile_ms) {
            bad.push("PICKET_RECONCILE_MS must be between 1 and 2000".to_owned());
        }
        if self.min_interval_secs < 1 {
            bad.push("PICKET_MIN_INTERVAL_SECS must be at least 1".to_owned());
        }
        if self.lease_ttl_secs < 2 {
            bad.push("PICKET_LEASE_TTL_SECS must be at least 2".to_owned());
        }
        if self.max_concurrent_checks == 0 || self.heartbeat_batch == 0 || self.db_pool == 0 {
            bad.push("PICKET_MAX_CONCURRENT_CHECKS, PICKET_HEARTBEAT_BATCH and PICKET_DB_POOL must be positive".to_owned());
        }
        if !(1..=1_000_000).contains(&self.max_connections) {
            bad.push("PICKET_MAX_CONNECTIONS must be between 1 and 1000000".to_owned());
        }
        if !(1..=600).contains(&self.header_timeout_secs) {
            bad.push("PICKET_HEADER_TIMEOUT_SECS must be between 1 and 600".to_owned());
        }
        if !(1..=3600).contains(&self.request_timeout_secs) {
            bad.push("PICKET_REQUEST_TIMEOUT_SECS must be between 1 and 3600".to_owned());
        }
        if self.heartbeat_buffer < self.heartbeat_batch {
            bad.push("PICKET_HEARTBEAT_BUFFER must be at least PICKET_HEARTBEAT_BATCH".to_owned());
        }
        if !(50..=60_000).contains(&self.notify_poll_ms) {
            bad.push("PICKET_NOTIFY_POLL_MS must be between 50 and 60000".to_owned());
        }
        if !(1..=600).contains(&self.notify_retry_secs) {
            bad.push("PICKET_NOTIFY_RETRY_SECS must be between 1 and 600".to_owned());
        }
        if !(1..=3600).contains(&self.notify_claim_secs) {
            bad.push("PICKET_NOTIFY_CLAIM_SECS must be between 1 and 3600".to_owned());
        }
        if !(1..=720).contains(&self.notify_give_up_hours) {
            bad.push("PICKET_NOTIFY_GIVE_UP_HOURS must be between 1 and 720".to_owned());
        }
        if let Some(u) = &self.public_url
            && !url::Url::parse(u).is_ok_and(|p| matches!(p.scheme(), "http" | "https"))
        {
            bad.push("PICKET_PUBLIC_URL must be an http:// or https:// URL".to_owned());
        }
        if !(1..=3650).contains(&self.heartbeat_retention_days) {
            bad.push("PICKET_HEARTBEAT_RETENTION_DAYS must be between 1 and 3650".to_owned());
        }
        let id = self.node_id();
        if id.is_empty() || id.len() > 64 {
            bad.push("PICKET_NODE_ID must be 1 to 64 characters".to_owned());
        }
        if let Some(Err(e)) = self.node_host.as_deref().map(crate::addr::check_host_port) {
            bad.push(format!("PICKET_NODE_HOST {e}"));
        }
        if bad.is_empty() {
            Ok(())
        } else {
            Err(bad.join("\n"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<OsString> {
        std::iter::once("picket-node")
            .chain(a.iter().copied())
            .map(OsString::from)
            .collect()
    }

    #[test]
    fn file_supplies_defaults_and_flags_win() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.toml");
        std::fs::write(&path, "node_id = \"from-file\"\nmin-interval-secs = 5\n").unwrap();
        let p = path.to_str().unwrap();
        let c: NodeConfig = parse_with_file(args(&["--config", p])).unwrap();
        assert_eq!(c.node_id(), "from-file");
        assert_eq!(c.min_interval_secs, 5);
        let c: NodeConfig =
            parse_with_file(args(&["--config", p, "--node-id", "from-flag"])).unwrap();
        assert_eq!(c.node_id(), "from-flag");
    }

    #[test]
    fn unknown_file_keys_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.toml");
        std::fs::write(&path, "nod_id = \"x\"\n").unwrap();
        let err =
            parse_with_file::<NodeConfig>(args(&["--config", path.to_str().unwrap()])).unwrap_err();
        assert!(err.to_string().contains("nod_id"), "{err}");
    }

    #[test]
    fn validate_rejects_slow_reconcile() {
        let c: NodeConfig = parse_with_file(args(&["--reconcile-ms", "5000"])).unwrap();
        assert!(c.validate().unwrap_err().contains("PICKET_RECONCILE_MS"));
    }

    #[test]
    fn heartbeat_retention_defaults_to_a_week_and_must_be_positive() {
        let c: NodeConfig = parse_with_file(args(&[])).unwrap();
        assert_eq!(c.heartbeat_retention(), Duration::from_secs(7 * 86_400));
        let c: NodeConfig = parse_with_file(args(&["--heartbeat-retention-days", "0"])).unwrap();
        assert!(
            c.validate()
                .unwrap_err()
                .contains("PICKET_HEARTBEAT_RETENTION_DAYS")
        );
    }
}
