//! `ping`: ICMP echo, `packet_count` packets, UP when any is answered.

use super::{Errors, MonitorFields, MonitorKind, defaults, required_host};

/// Largest `packet_count` a ping monitor may send per check.
pub const MAX_PING_COUNT: i64 = 100;

/// The `ping` fields.
pub(super) fn parse(f: &MonitorFields, errs: &mut Errors) -> Option<MonitorKind> {
    let hostname = required_host(f, errs, "a ping monitor", false);
    let count = f.packet_count.unwrap_or(defaults::PING_COUNT);
    if !(1..=MAX_PING_COUNT).contains(&count) {
        errs.push(
            "packet_count",
            format!("must be between 1 and {MAX_PING_COUNT}"),
        );
    }
    Some(MonitorKind::Ping {
        hostname: hostname?,
        count: count.clamp(1, MAX_PING_COUNT) as u32,
    })
}

pub(super) fn write(hostname: &str, count: u32, f: &mut MonitorFields) {
    f.hostname = Some(hostname.to_owned());
    f.packet_count = Some(count.into());
}
