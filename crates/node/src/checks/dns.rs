//! `dns`: ask `dns_resolve_server:port` for `hostname`'s records of
//! `dns_resolve_type` (hickory). UP when the query resolves; the message lists
//! the answers. With `expectedValue`, one answer must also equal it.

use super::{Outcome, elapsed_ms};
use hickory_resolver::TokioResolver;
use hickory_resolver::config::{NameServerConfig, ResolveHosts, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::RecordType;
use picket_shared::monitor::{DnsRecordType, DnsSpec};
use std::time::{Duration, Instant};

fn record_type(t: DnsRecordType) -> RecordType {
    match t {
        DnsRecordType::A => RecordType::A,
        DnsRecordType::Aaaa => RecordType::AAAA,
        DnsRecordType::Cname => RecordType::CNAME,
        DnsRecordType::Mx => RecordType::MX,
        DnsRecordType::Ns => RecordType::NS,
        DnsRecordType::Txt => RecordType::TXT,
        DnsRecordType::Srv => RecordType::SRV,
        DnsRecordType::Caa => RecordType::CAA,
        DnsRecordType::Ptr => RecordType::PTR,
    }
}

pub async fn check(spec: &DnsSpec, timeout: Duration) -> Outcome {
    let mut ns = NameServerConfig::udp_and_tcp(spec.server);
    for c in &mut ns.connections {
        c.port = spec.port;
    }
    let mut builder = TokioResolver::builder_with_config(
        ResolverConfig::from_name_servers(vec![ns]),
        TokioRuntimeProvider::default(),
    );
    let opts = builder.options_mut();
    // Every check asks the server: no cache, no hosts file, one attempt.
    opts.cache_size = 0;
    opts.use_hosts_file = ResolveHosts::Never;
    opts.attempts = 1;
    opts.timeout = timeout;
    let resolver = match builder.build() {
        Ok(r) => r,
        Err(e) => return Outcome::down(format!("DNS resolver: {e}")),
    };
    let started = Instant::now();
    // A trailing dot: the name is absolute, no search domains are tried.
    let name = format!("{}.", spec.hostname.trim_end_matches('.'));
    let rt = record_type(spec.record_type);
    let answers = match resolver.lookup(name.as_str(), rt).await {
        Ok(lookup) => lookup
            .answers()
            .iter()
            .filter(|r| r.record_type() == rt)
            .map(|r| r.data.to_string())
            .collect(),
        Err(e) => {
            return Outcome::down(format!(
                "{} {} lookup failed: {e}",
                spec.hostname,
                spec.record_type.as_str()
            ));
        }
    };
    evaluate(spec, answers, elapsed_ms(started))
}

/// UP when there are answers (and, with `expectedValue`, one matches).
pub fn evaluate(spec: &DnsSpec, answers: Vec<String>, ping_ms: f64) -> Outcome {
    let ty = spec.record_type.as_str();
    if answers.is_empty() {
        return Outcome::down(format!("{} has no {ty} records", spec.hostname));
    }
    let list = answers.join(", ");
    if let Some(want) = &spec.expected {
        let norm = |s: &str| {
            s.trim()
                .trim_end_matches('.')
                .trim_matches('"')
                .to_ascii_lowercase()
        };
        if !answers.iter().any(|a| norm(a) == norm(want)) {
            return Outcome {
                up: false,
                msg: format!("{ty} records: {list}; none is {want}"),
                ping_ms: Some(ping_ms),
                cert: None,
            };
        }
    }
    Outcome::up(format!("{ty} records: {list}"), Some(ping_ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(ty: DnsRecordType, expected: Option<&str>) -> DnsSpec {
        DnsSpec {
            hostname: "svc.test".into(),
            server: [127, 0, 0, 1].into(),
            port: 53,
            record_type: ty,
            expected: expected.map(str::to_owned),
        }
    }

    #[test]
    fn answers_table() {
        use DnsRecordType::*;
        // (type, expected, answers, up, message contains)
        type Case<'a> = (DnsRecordType, Option<&'a str>, &'a [&'a str], bool, &'a str);
        let cases: &[Case] = &[
            (
                A,
                None,
                &["10.0.0.1", "10.0.0.2"],
                true,
                "A records: 10.0.0.1, 10.0.0.2",
            ),
            (A, None, &[], false, "svc.test has no A records"),
            (
                A,
                Some("10.0.0.2"),
                &["10.0.0.1", "10.0.0.2"],
                true,
                "A records",
            ),
            (
                A,
                Some("10.0.0.3"),
                &["10.0.0.1"],
                false,
                "none is 10.0.0.3",
            ),
            (
                Cname,
                Some("Target.Test"),
                &["target.test."],
                true,
                "CNAME records: target.test.",
            ),
            (
                Mx,
                None,
                &["10 mail.test."],
                true,
                "MX records: 10 mail.test.",
            ),
            (Txt, Some("v=spf1 -all"), &["\"v=spf1 -all\""], true, "TXT"),
        ];
        for &(ty, expected, answers, up, msg) in cases {
            let o = evaluate(
                &spec(ty, expected),
                answers.iter().map(|s| s.to_string()).collect(),
                1.0,
            );
            assert_eq!(o.up, up, "{ty:?} {expected:?}: {}", o.msg);
            assert!(o.msg.contains(msg), "{}", o.msg);
        }
    }
}
