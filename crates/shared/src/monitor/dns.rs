//! `dns`: one query of one record type to one resolver.

use super::{Errors, MonitorFields, defaults, required_host};

/// DNS record types a `dns` monitor may query.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DnsRecordType {
    A,
    Aaaa,
    Cname,
    Mx,
    Ns,
    Txt,
    Srv,
    Caa,
    Ptr,
}

impl DnsRecordType {
    pub const ALL: &'static [DnsRecordType] = &[
        DnsRecordType::A,
        DnsRecordType::Aaaa,
        DnsRecordType::Cname,
        DnsRecordType::Mx,
        DnsRecordType::Ns,
        DnsRecordType::Txt,
        DnsRecordType::Srv,
        DnsRecordType::Caa,
        DnsRecordType::Ptr,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DnsRecordType::A => "A",
            DnsRecordType::Aaaa => "AAAA",
            DnsRecordType::Cname => "CNAME",
            DnsRecordType::Mx => "MX",
            DnsRecordType::Ns => "NS",
            DnsRecordType::Txt => "TXT",
            DnsRecordType::Srv => "SRV",
            DnsRecordType::Caa => "CAA",
            DnsRecordType::Ptr => "PTR",
        }
    }

    /// Case-insensitive, as Kuma clients send either.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL
            .iter()
            .copied()
            .find(|t| t.as_str().eq_ignore_ascii_case(s.trim()))
    }
}

/// What a `dns` monitor asks and of whom.
#[derive(Debug, Clone, PartialEq)]
pub struct DnsSpec {
    /// The name to resolve.
    pub hostname: String,
    /// The resolver asked (`dns_resolve_server`, Kuma's default 1.1.1.1).
    pub server: std::net::IpAddr,
    /// The resolver's port (`port`, default 53).
    pub port: u16,
    pub record_type: DnsRecordType,
    /// When set, UP also requires an answer equal to this (case-insensitive,
    /// trailing dot ignored).
    pub expected: Option<String>,
}

/// The `dns` fields.
pub(super) fn parse(f: &MonitorFields, errs: &mut Errors) -> Option<DnsSpec> {
    let hostname = required_host(f, errs, "a dns monitor", true);
    let record_type = match f.dns_resolve_type.as_deref() {
        None => Some(DnsRecordType::A),
        Some(t) => DnsRecordType::parse(t).or_else(|| {
            let known: Vec<_> = DnsRecordType::ALL.iter().map(|t| t.as_str()).collect();
            errs.push(
                "dns_resolve_type",
                format!(
                    "unknown record type '{t}' (supported: {})",
                    known.join(", ")
                ),
            );
            None
        }),
    };
    let server = match f.dns_resolve_server.as_deref().map(str::trim) {
        None | Some("") => Some(std::net::IpAddr::from(defaults::DNS_SERVER)),
        Some(s) => s.parse().ok().or_else(|| {
            errs.push("dns_resolve_server", format!("'{s}' is not an IP address"));
            None
        }),
    };
    let port = match f.port {
        None => Some(defaults::DNS_PORT),
        Some(p) => match u16::try_from(p) {
            Ok(p) if p > 0 => Some(p),
            _ => {
                errs.push("port", "must be between 1 and 65535");
                None
            }
        },
    };
    Some(DnsSpec {
        hostname: hostname?,
        server: server?,
        port: port?,
        record_type: record_type?,
        expected: f
            .expected_value
            .as_deref()
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned),
    })
}

pub(super) fn write(d: &DnsSpec, f: &mut MonitorFields) {
    f.hostname = Some(d.hostname.clone());
    f.port = Some(d.port.into());
    f.dns_resolve_server = Some(d.server.to_string());
    f.dns_resolve_type = Some(d.record_type.as_str().to_owned());
    f.expected_value = d.expected.clone();
}
