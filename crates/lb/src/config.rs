//! `picket-lb` settings: every one a flag with an environment variable, with
//! defaults from an optional TOML file (see `picket_shared::config`).

use clap::Parser;
use picket_shared::telemetry::LogFormat;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Settings of `picket-lb`.
#[derive(Debug, Clone, Parser)]
#[command(name = "picket-lb", version, about = "Picket balancer")]
pub struct LbConfig {
    /// TOML file with defaults for any of these settings.
    #[arg(long, env = "PICKET_CONFIG")]
    pub config: Option<PathBuf>,

    /// `sqlite://…` or `mysql://…`.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "sqlite://picket.db?mode=rwc"
    )]
    pub database_url: String,

    /// Address the balancer listens on.
    #[arg(long, env = "PICKET_LB_LISTEN", default_value = "0.0.0.0:8084")]
    pub listen: SocketAddr,

    /// This balancer's identity, the holder name of the leader lease
    /// [default: `<host name>-<pid>`].
    #[arg(long, env = "PICKET_LB_ID")]
    pub lb_id: Option<String>,

    /// Bootstrap admin token for the mutating endpoints; admin API keys from the
    /// database are accepted too. Without either, mutating endpoints refuse.
    #[arg(long, env = "PICKET_API_TOKEN", hide_env_values = true)]
    pub api_token: Option<String>,

    /// How often the node view is re-read from the database, in ms (≤ 1000).
    #[arg(long, env = "PICKET_LB_REFRESH_MS", default_value_t = 1000)]
    pub refresh_ms: u64,

    /// Nameservers for node host names, comma separated `ip[:port]`
    /// [default: those in /etc/resolv.conf].
    #[arg(long, env = "PICKET_DNS_SERVERS", value_delimiter = ',')]
    pub dns_servers: Vec<String>,

    /// Longest time a positive DNS answer is trusted, in seconds, whatever its TTL.
    #[arg(long, env = "PICKET_DNS_TTL_CAP_SECS", default_value_t = 5)]
    pub dns_ttl_cap_secs: u64,

    /// Timeout of one DNS query, in ms.
    #[arg(long, env = "PICKET_DNS_TIMEOUT_MS", default_value_t = 1000)]
    pub dns_timeout_ms: u64,

    /// Proxy worker threads [default: number of CPUs].
    #[arg(long, env = "PICKET_LB_THREADS")]
    pub threads: Option<usize>,

    /// Seconds in-flight requests get to finish on SIGTERM (≤ 5, so `docker
    /// stop` is clean).
    #[arg(long, env = "PICKET_LB_GRACE_PERIOD_SECS", default_value_t = 3)]
    pub grace_period_secs: u64,

    /// Timeout for connecting to a node, in ms; a node that does not accept in
    /// time is skipped for the next one.
    #[arg(long, env = "PICKET_LB_CONNECT_TIMEOUT_MS", default_value_t = 1000)]
    pub connect_timeout_ms: u64,

    /// Monitors a node is sized for (`/lb/capacity` reports usage against it).
    #[arg(long, env = "PICKET_LB_CAPACITY_PER_NODE", default_value_t = 1000)]
    pub capacity_per_node: usize,

    /// Seconds between health checks of every node (jittered by up to 10 %).
    #[arg(long, env = "PICKET_HC_INTERVAL_SECS", default_value_t = 5)]
    pub hc_interval_secs: u64,

    /// Timeout of one health check, in ms.
    #[arg(long, env = "PICKET_HC_TIMEOUT_MS", default_value_t = 2000)]
    pub hc_timeout_ms: u64,

    /// Consecutive failed checks that take a node offline.
    #[arg(long, env = "PICKET_HC_FALL", default_value_t = 3)]
    pub hc_fall: u32,

    /// Consecutive passed checks that bring a node back online.
    #[arg(long, env = "PICKET_HC_RISE", default_value_t = 3)]
    pub hc_rise: u32,

    /// Fraction of the nodes failing in one round at or above which ownership
    /// is frozen instead of moved (0 disables the panic mode).
    #[arg(long, env = "PICKET_HC_PANIC_THRESHOLD", default_value_t = 0.5)]
    pub panic_threshold: f64,

    /// Rebalance (minimum moves) automatically when a node joins or comes back.
    #[arg(long, env = "PICKET_AUTO_REBALANCE", default_value_t = false, action = clap::ArgAction::Set)]
    pub auto_rebalance: bool,

    /// Seconds the leader lease lasts without renewal; another balancer takes
    /// over after that.
    #[arg(long, env = "PICKET_LB_LEASE_TTL_SECS", default_value_t = 10)]
    pub lease_ttl_secs: u64,

    /// Monitors sent home per transaction when a node recovers.
    #[arg(long, env = "PICKET_RECOVERY_BATCH", default_value_t = 500)]
    pub recovery_batch: usize,

    /// Database connections in the balancer's pool.
    #[arg(long, env = "PICKET_LB_DB_POOL", default_value_t = 4)]
    pub db_pool: u32,

    /// Log line format.
    #[arg(long, env = "PICKET_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

impl LbConfig {
    /// Parses `args` (the first is the program name) with the file and
    /// environment layers; for tests and embedding.
    pub fn from_args<I, S>(args: I) -> Result<Self, picket_shared::config::ConfigError>
    where
        I: IntoIterator<Item = S>,
        S: Into<std::ffi::OsString>,
    {
        picket_shared::config::parse_with_file(args.into_iter().map(Into::into).collect())
    }

    pub fn lb_id(&self) -> String {
        self.lb_id.clone().unwrap_or_else(|| {
            format!(
                "{}-{}",
                picket_shared::config::hostname(),
                std::process::id()
            )
        })
    }
    pub fn refresh_interval(&self) -> Duration {
        Duration::from_millis(self.refresh_ms)
    }
    pub fn dns_ttl_cap(&self) -> Duration {
        Duration::from_secs(self.dns_ttl_cap_secs)
    }
    pub fn dns_timeout(&self) -> Duration {
        Duration::from_millis(self.dns_timeout_ms)
    }
    pub fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.connect_timeout_ms)
    }
    pub fn hc_interval(&self) -> Duration {
        Duration::from_secs(self.hc_interval_secs)
    }
    pub fn hc_timeout(&self) -> Duration {
        Duration::from_millis(self.hc_timeout_ms)
    }
    pub fn lease_ttl(&self) -> Duration {
        Duration::from_secs(self.lease_ttl_secs)
    }
    pub fn threads(&self) -> usize {
        self.threads.unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        })
    }
    pub fn thresholds(&self) -> picket_shared::health::Thresholds {
        picket_shared::health::Thresholds {
            fall: self.hc_fall,
            rise: self.hc_rise,
        }
    }

    /// Checks what clap cannot, before any port is bound. Every problem is
    /// listed, one a line.
    pub fn validate(&self) -> Result<(), String> {
        let mut bad = Vec::new();
        if !(self.database_url.starts_with("sqlite:")
            || self.database_url.starts_with("mysql:")
            || self.database_url.starts_with("mariadb:"))
        {
            bad.push("DATABASE_URL must start with sqlite:// or mysql://".to_owned());
        }
        if !(10..=1000).contains(&self.refresh_ms) {
            bad.push("PICKET_LB_REFRESH_MS must be between 10 and 1000".to_owned());
        }
        for s in &self.dns_servers {
            if let Err(e) = crate::dns::parse_nameserver(s) {
                bad.push(format!("PICKET_DNS_SERVERS: {e}"));
            }
        }
        if self.dns_ttl_cap_secs == 0 {
            bad.push("PICKET_DNS_TTL_CAP_SECS must be at least 1".to_owned());
        }
        if self.dns_timeout_ms == 0 || self.connect_timeout_ms == 0 || self.hc_timeout_ms == 0 {
            bad.push("timeouts must be positive".to_owned());
        }
        if self.threads == Some(0) {
            bad.push("PICKET_LB_THREADS must be positive".to_owned());
        }
        if self.grace_period_secs > 5 {
            bad.push("PICKET_LB_GRACE_PERIOD_SECS must be at most 5".to_owned());
        }
        if self.hc_interval_secs == 0 {
            bad.push("PICKET_HC_INTERVAL_SECS must be at least 1".to_owned());
        }
        if self.hc_timeout_ms >= self.hc_interval_secs.saturating_mul(1000) {
            bad.push("PICKET_HC_TIMEOUT_MS must be shorter than the interval".to_owned());
        }
        if self.hc_fall == 0 || self.hc_rise == 0 {
            bad.push("PICKET_HC_FALL and PICKET_HC_RISE must be at least 1".to_owned());
        }
        if !(0.0..=1.0).contains(&self.panic_threshold) {
            bad.push("PICKET_HC_PANIC_THRESHOLD must be between 0 and 1".to_owned());
        }
        if self.lease_ttl_secs < 2 || self.lease_ttl_secs < 2 * self.hc_interval_secs {
            bad.push(
                "PICKET_LB_LEASE_TTL_SECS must be at least 2 and at least twice PICKET_HC_INTERVAL_SECS (the leader renews it once a round)"
                    .to_owned(),
            );
        }
        if self.recovery_batch == 0 || self.db_pool == 0 || self.capacity_per_node == 0 {
            bad.push(
                "PICKET_RECOVERY_BATCH, PICKET_LB_DB_POOL and PICKET_LB_CAPACITY_PER_NODE must be positive"
                    .to_owned(),
            );
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

    fn parse(a: &[&str]) -> LbConfig {
        LbConfig::from_args(std::iter::once("picket-lb").chain(a.iter().copied())).unwrap()
    }

    #[test]
    fn defaults_are_valid_and_match_the_design() {
        let c = parse(&[]);
        c.validate().unwrap();
        assert_eq!(c.listen.to_string(), "0.0.0.0:8084");
        assert_eq!((c.hc_interval_secs, c.hc_timeout_ms), (5, 2000));
        assert_eq!((c.hc_fall, c.hc_rise), (3, 3));
        assert_eq!(c.dns_ttl_cap_secs, 5);
        assert!(c.grace_period_secs <= 5);
    }

    #[test]
    fn nameserver_list_is_comma_separated() {
        let c = parse(&["--dns-servers", "127.0.0.11,10.0.0.2:5353"]);
        assert_eq!(c.dns_servers, ["127.0.0.11", "10.0.0.2:5353"]);
        c.validate().unwrap();
    }

    #[test]
    fn validate_lists_every_problem() {
        let c = parse(&[
            "--dns-servers",
            "not-an-ip",
            "--grace-period-secs",
            "30",
            "--refresh-ms",
            "5000",
        ]);
        let e = c.validate().unwrap_err();
        assert!(e.contains("PICKET_DNS_SERVERS"), "{e}");
        assert!(e.contains("GRACE_PERIOD"), "{e}");
        assert!(e.contains("REFRESH_MS"), "{e}");
    }
}
