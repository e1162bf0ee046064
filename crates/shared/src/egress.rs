//! Which addresses checks may connect to (`PICKET_DENY_TARGETS`,
//! `PICKET_ALLOW_TARGETS`). Pure: the checks ask it about the address they
//! are about to connect to, after DNS, so a name that resolves (or is
//! rebound) to a denied address is refused as surely as the literal.

use std::fmt;
use std::net::IpAddr;

/// Denied unless the operator says otherwise: the cloud metadata services
/// (AWS, GCP and Azure at 169.254.169.254, AWS over IPv6, Alibaba), which
/// hand out credentials to whoever on the host asks.
pub const DEFAULT_DENY: &str = "169.254.169.254/32,fd00:ec2::254/128,100.100.100.200/32";

/// An address block, `10.0.0.0/8` or `fd00::/8` (a bare address is one
/// address).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    pub fn parse(s: &str) -> Result<Cidr, String> {
        let s = s.trim();
        let (a, p) = s.split_once('/').map_or((s, None), |(a, p)| (a, Some(p)));
        let addr: IpAddr = a
            .parse()
            .map_err(|_| format!("'{s}' is not an address or CIDR block"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("'{s}': the prefix must be 0 to {max}"))?,
        };
        Ok(Cidr { addr, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let bits = |ip: IpAddr| -> (u128, u8) {
            match ip {
                IpAddr::V4(v) => (u128::from(u32::from(v)) << 96, 32),
                IpAddr::V6(v) => (u128::from(v), 128),
            }
        };
        let ip = canonical(ip);
        let ((net, w1), (x, w2)) = (bits(self.addr), bits(ip));
        if w1 != w2 {
            return false;
        }
        let mask = if self.prefix == 0 {
            0
        } else {
            u128::MAX << (128 - u32::from(self.prefix))
        };
        net & mask == x & mask
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// An IPv4-mapped IPv6 address (`::ffff:169.254.169.254`) is its IPv4
/// address: the kernel connects to that.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v) => v.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// Deny first, then allow: an address in `deny` is refused; when `allow`
/// is not empty, an address outside it is refused too.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EgressPolicy {
    deny: Vec<Cidr>,
    allow: Vec<Cidr>,
}

impl EgressPolicy {
    /// From the two comma-separated lists (empty = none).
    pub fn from_lists(deny: &str, allow: &str) -> Result<EgressPolicy, String> {
        let list = |s: &str| -> Result<Vec<Cidr>, String> {
            s.split(',')
                .filter(|x| !x.trim().is_empty())
                .map(Cidr::parse)
                .collect()
        };
        Ok(EgressPolicy {
            deny: list(deny)?,
            allow: list(allow)?,
        })
    }

    /// The default: only [`DEFAULT_DENY`].
    pub fn default_deny() -> EgressPolicy {
        Self::from_lists(DEFAULT_DENY, "").expect("the default list parses")
    }

    /// `Err` says why a check may not connect to `ip`.
    pub fn check(&self, ip: IpAddr) -> Result<(), String> {
        if let Some(c) = self.deny.iter().find(|c| c.contains(ip)) {
            return Err(format!(
                "{ip} is denied by the egress policy ({c} in PICKET_DENY_TARGETS)"
            ));
        }
        if !self.allow.is_empty() && !self.allow.iter().any(|c| c.contains(ip)) {
            return Err(format!(
                "{ip} is not in PICKET_ALLOW_TARGETS (the egress policy)"
            ));
        }
        Ok(())
    }

    /// The addresses of `addrs` a check may connect to, or why none.
    pub fn filter<T: Copy>(
        &self,
        addrs: impl IntoIterator<Item = T>,
        ip_of: impl Fn(T) -> IpAddr,
    ) -> Result<Vec<T>, String> {
        let mut first_err = None;
        let ok: Vec<T> = addrs
            .into_iter()
            .filter(|a| match self.check(ip_of(*a)) {
                Ok(()) => true,
                Err(e) => {
                    first_err.get_or_insert(e);
                    false
                }
            })
            .collect();
        match (ok.is_empty(), first_err) {
            (true, Some(e)) => Err(e),
            _ => Ok(ok),
        }
    }

    /// A literal address in a monitor's target (`http://169.254.169.254/`,
    /// a `hostname` that is an IP), refused when it is saved.
    pub fn check_literal(&self, host: &str) -> Result<(), String> {
        match crate::addr::unbracket(host).parse::<IpAddr>() {
            Ok(ip) => self.check(ip),
            Err(_) => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn blocks_contain_what_they_should() {
        for (block, addr, inside) in [
            ("10.0.0.0/8", "10.255.1.2", true),
            ("10.0.0.0/8", "11.0.0.1", false),
            ("169.254.169.254/32", "169.254.169.254", true),
            ("169.254.169.254", "169.254.169.253", false),
            ("169.254.169.254/32", "::ffff:169.254.169.254", true),
            ("fd00:ec2::254/128", "fd00:ec2::254", true),
            ("fd00::/8", "fdff::1", true),
            ("fd00::/8", "fe80::1", false),
            ("0.0.0.0/0", "8.8.8.8", true),
            ("0.0.0.0/0", "::1", false),
            ("::/0", "::1", true),
        ] {
            assert_eq!(
                Cidr::parse(block).unwrap().contains(ip(addr)),
                inside,
                "{block} {addr}"
            );
        }
        for bad in ["10.0.0.0/33", "fd00::/129", "nope", "10.0.0.0/x", ""] {
            assert!(Cidr::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn deny_wins_then_allow_limits() {
        let p = EgressPolicy::default_deny();
        assert!(p.check(ip("169.254.169.254")).is_err());
        assert!(p.check(ip("fd00:ec2::254")).is_err());
        assert!(p.check(ip("100.100.100.200")).is_err());
        assert!(
            p.check(ip("10.0.0.1")).is_ok(),
            "internal services are the point"
        );
        assert!(p.check(ip("127.0.0.1")).is_ok());

        let p = EgressPolicy::from_lists("10.0.0.5", "10.0.0.0/8").unwrap();
        assert!(
            p.check(ip("10.0.0.5"))
                .unwrap_err()
                .contains("PICKET_DENY_TARGETS")
        );
        assert!(p.check(ip("10.0.0.6")).is_ok());
        assert!(
            p.check(ip("192.168.1.1"))
                .unwrap_err()
                .contains("PICKET_ALLOW_TARGETS")
        );

        assert_eq!(
            EgressPolicy::from_lists("", "")
                .unwrap()
                .check(ip("169.254.169.254")),
            Ok(())
        );
        assert!(EgressPolicy::from_lists("10.0.0.0/99", "").is_err());
    }

    #[test]
    fn filter_keeps_the_permitted_or_says_why_none() {
        let p = EgressPolicy::default_deny();
        let got = p.filter([ip("169.254.169.254"), ip("10.0.0.1")], |a| a);
        assert_eq!(got, Ok(vec![ip("10.0.0.1")]));
        assert!(p.filter([ip("169.254.169.254")], |a| a).is_err());
        assert_eq!(p.filter(Vec::<IpAddr>::new(), |a| a), Ok(vec![]));
        assert!(p.check_literal("[fd00:ec2::254]").is_err());
        assert!(p.check_literal("metadata.internal").is_ok());
    }
}
