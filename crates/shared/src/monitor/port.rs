//! `port` (Kuma's TCP check; `tcp` is an alias): a connection to
//! `hostname:port`.

use super::{Errors, MonitorFields, MonitorKind, required_host};

/// The `port` fields.
pub(super) fn parse(f: &MonitorFields, errs: &mut Errors) -> Option<MonitorKind> {
    let hostname = required_host(f, errs, "a port monitor", false);
    let port = errs
        .required("port", &f.port, "for a port monitor")
        .and_then(|&p| match u16::try_from(p) {
            Ok(p) if p > 0 => Some(p),
            _ => {
                errs.push("port", "must be between 1 and 65535");
                None
            }
        });
    Some(MonitorKind::Port {
        hostname: hostname?,
        port: port?,
    })
}

pub(super) fn write(hostname: &str, port: u16, f: &mut MonitorFields) {
    f.hostname = Some(hostname.to_owned());
    f.port = Some(port.into());
}
