//! Node host resolution with hickory, off the request path: the refresher calls
//! [`Dns::resolve`] for every node on each pass and publishes the addresses in
//! the node view. hickory's cache answers repeat lookups; its positive TTL is
//! capped so that a restarted container's new IP is picked up within seconds
//! (Docker's embedded DNS answers with TTL 600).

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{
    LookupIpStrategy, NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts,
};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// Why a node host (or a nameserver setting) gives no address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DnsError {
    #[error("'{0}' is not an ip or ip:port")]
    BadNameserver(String),
    #[error("'{0}' has no port")]
    NoPort(String),
    #[error("'{0}' has a bad port")]
    BadPort(String),
    #[error("'{0}' has no host")]
    NoHost(String),
    #[error("reading /etc/resolv.conf: {0}")]
    ResolvConf(String),
    #[error("DNS resolver: {0}")]
    Resolver(String),
    #[error("cannot resolve '{host}': {cause}")]
    Lookup { host: String, cause: String },
    #[error("'{0}' has no address")]
    NoAddress(String),
    /// The lookup task did not finish.
    #[error("not resolved")]
    Unresolved,
    /// No usable resolver: only IP literals resolve.
    #[error("no DNS resolver configured")]
    NoResolver,
}

/// Parses one `PICKET_DNS_SERVERS` entry: `ip`, `ip:port` or `[v6]:port`.
pub fn parse_nameserver(s: &str) -> Result<SocketAddr, DnsError> {
    let s = s.trim();
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, 53));
    }
    s.parse::<SocketAddr>()
        .map_err(|_| DnsError::BadNameserver(s.to_owned()))
}

/// Splits a node's `host:port` (an optional `http://` prefix and trailing `/`
/// are tolerated) into its host and port. IPv6 literals are bracketed.
pub fn split_host_port(s: &str) -> Result<(&str, u16), DnsError> {
    let t = s.trim();
    let t = t.strip_prefix("http://").unwrap_or(t);
    let t = t.trim_end_matches('/');
    let (host, port) = t
        .rsplit_once(':')
        .ok_or_else(|| DnsError::NoPort(s.to_owned()))?;
    let port: u16 = port.parse().map_err(|_| DnsError::BadPort(s.to_owned()))?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if host.is_empty() {
        return Err(DnsError::NoHost(s.to_owned()));
    }
    Ok((host, port))
}

/// A resolver for node host names.
#[derive(Clone)]
pub struct Dns {
    resolver: TokioResolver,
}

impl Dns {
    /// Uses `servers` (`ip[:port]`), or /etc/resolv.conf when empty. Must be
    /// called inside a tokio runtime (the resolver spawns its I/O there).
    pub fn new(servers: &[String], ttl_cap: Duration, timeout: Duration) -> Result<Dns, DnsError> {
        let mut builder = if servers.is_empty() {
            TokioResolver::builder_tokio().map_err(|e| DnsError::ResolvConf(e.to_string()))?
        } else {
            let mut ns = Vec::new();
            for s in servers {
                let addr = parse_nameserver(s)?;
                let mut cfg = NameServerConfig::udp_and_tcp(addr.ip());
                for c in &mut cfg.connections {
                    c.port = addr.port();
                }
                ns.push(cfg);
            }
            TokioResolver::builder_with_config(
                ResolverConfig::from_name_servers(ns),
                TokioRuntimeProvider::default(),
            )
        };
        let opts: &mut ResolverOpts = builder.options_mut();
        opts.positive_max_ttl = Some(ttl_cap);
        // A failed name is retried on the next pass, not remembered for long.
        opts.negative_max_ttl = Some(Duration::from_secs(1));
        opts.timeout = timeout;
        opts.attempts = 1;
        opts.ip_strategy = LookupIpStrategy::Ipv4thenIpv6;
        if !servers.is_empty() {
            // Explicit nameservers are the whole truth (tests point at their own).
            opts.use_hosts_file = ResolveHosts::Never;
        }
        let resolver = builder
            .build()
            .map_err(|e| DnsError::Resolver(e.to_string()))?;
        Ok(Dns { resolver })
    }

    /// Resolves a node's `host:port`. IP literals skip DNS.
    pub async fn resolve(&self, host_port: &str) -> Result<SocketAddr, DnsError> {
        let (host, port) = split_host_port(host_port)?;
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Ok(SocketAddr::new(ip, port));
        }
        let lookup = self
            .resolver
            .lookup_ip(host)
            .await
            .map_err(|e| DnsError::Lookup {
                host: host.to_owned(),
                cause: e.to_string(),
            })?;
        let ip = lookup
            .iter()
            .next()
            .ok_or_else(|| DnsError::NoAddress(host.to_owned()))?;
        Ok(SocketAddr::new(ip, port))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_forms() {
        assert_eq!(split_host_port("node1:3001"), Ok(("node1", 3001)));
        assert_eq!(split_host_port("http://10.0.0.1:80/"), Ok(("10.0.0.1", 80)));
        assert_eq!(split_host_port("[::1]:8080"), Ok(("::1", 8080)));
        assert!(split_host_port("node1").is_err());
        assert!(split_host_port(":80").is_err());
        assert!(split_host_port("node1:http").is_err());
    }

    #[test]
    fn nameserver_forms() {
        assert_eq!(
            parse_nameserver("127.0.0.11"),
            Ok("127.0.0.11:53".parse().unwrap())
        );
        assert_eq!(
            parse_nameserver("127.0.0.1:5353"),
            Ok("127.0.0.1:5353".parse().unwrap())
        );
        assert_eq!(
            parse_nameserver("[::1]:53"),
            Ok("[::1]:53".parse().unwrap())
        );
        assert!(parse_nameserver("dns.example").is_err());
    }

    #[tokio::test]
    async fn ip_literals_skip_dns() {
        // A nameserver nobody listens on: any DNS query would fail.
        let dns = Dns::new(
            &["127.0.0.1:9".into()],
            Duration::from_secs(5),
            Duration::from_millis(200),
        )
        .unwrap();
        assert_eq!(
            dns.resolve("127.0.0.7:3001").await,
            Ok("127.0.0.7:3001".parse().unwrap())
        );
        assert!(dns.resolve("no-such-node.invalid:3001").await.is_err());
    }
}
