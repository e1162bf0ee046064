//! The node's Prometheus metrics, in a registry of its own (several nodes may
//! run in one test process), plus Uptime Kuma's per-monitor series, which are
//! kept compactly and rendered at scrape time (see [`MonitorSeries`]).

use picket_shared::MonitorId;
use picket_shared::model::Status;
use picket_shared::notify::EventKind;
use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts,
    Registry, TextEncoder,
};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

/// Uptime Kuma's per-monitor label names, so existing dashboards work.
pub const MONITOR_LABELS: [&str; 6] = [
    "monitor_id",
    "monitor_name",
    "monitor_type",
    "monitor_url",
    "monitor_hostname",
    "monitor_port",
];

/// One monitor's identity in the per-monitor series: its id and its label set
/// rendered once (`monitor_id="7",monitor_name="web",…,node="n1"`). Cheap to
/// clone; the scheduler's task and the series store share the text.
#[derive(Clone, Debug)]
pub struct MonitorLabels {
    id: MonitorId,
    rendered: Arc<str>,
}

impl MonitorLabels {
    /// `values` in [`MONITOR_LABELS`] order; `node` is the exporting node.
    pub fn new(id: MonitorId, values: [&str; 6], node: &str) -> Self {
        let mut s = String::new();
        let pairs = MONITOR_LABELS
            .into_iter()
            .zip(values)
            .chain([("node", node)]);
        for (name, value) in pairs {
            if !s.is_empty() {
                s.push(',');
            }
            s.push_str(name);
            s.push_str("=\"");
            escape_label_value(&mut s, value);
            s.push('"');
        }
        Self {
            id,
            rendered: s.into(),
        }
    }
}

/// The exposition format's escaping of a label value.
fn escape_label_value(out: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// The last result of one monitor, as its series report it.
#[derive(Clone)]
struct Series {
    labels: Arc<str>,
    /// `None` until the first result: a monitor is exported once it has one.
    status: Option<Status>,
    response_ms: Option<f64>,
    /// Days remaining and whether the chain verified, for TLS targets.
    cert: Option<(i64, bool)>,
}

/// Uptime Kuma's per-monitor gauges (`monitor_status`, `monitor_response_time`,
/// `monitor_cert_days_remaining`, `monitor_cert_is_valid`) for the monitors
/// this node runs. A `prometheus` vector child copies its descriptor and label
/// pairs into every series (about 3 KiB per monitor and family, measured);
/// here a monitor costs one entry and its label text, shared with its task.
#[derive(Default)]
pub struct MonitorSeries(Mutex<BTreeMap<MonitorId, Series>>);

impl MonitorSeries {
    fn map(&self) -> std::sync::MutexGuard<'_, BTreeMap<MonitorId, Series>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts tracking a monitor (nothing is exported before its first result).
    /// Replaces an earlier registration of the same id.
    pub fn register(&self, labels: &MonitorLabels) {
        self.map().insert(
            labels.id,
            Series {
                labels: labels.rendered.clone(),
                status: None,
                response_ms: None,
                cert: None,
            },
        );
    }

    /// Stops tracking a monitor; its series disappear from the next scrape.
    pub fn forget(&self, labels: &MonitorLabels) {
        let mut map = self.map();
        if map
            .get(&labels.id)
            .is_some_and(|s| Arc::ptr_eq(&s.labels, &labels.rendered))
        {
            map.remove(&labels.id);
        }
    }

    /// Records a result. Ignored unless `labels` is the current registration,
    /// so a task that was stopped while recording cannot bring back a series.
    pub fn observe(
        &self,
        labels: &MonitorLabels,
        status: Status,
        ping_ms: Option<f64>,
        cert: Option<(i64, bool)>,
    ) {
        let mut map = self.map();
        let Some(s) = map.get_mut(&labels.id) else {
            return;
        };
        if !Arc::ptr_eq(&s.labels, &labels.rendered) {
            return;
        }
        s.status = Some(status);
        if ping_ms.is_some() {
            s.response_ms = ping_ms;
        }
        if cert.is_some() {
            s.cert = cert;
        }
    }

    /// Appends the four families in the text exposition format.
    fn render(&self, out: &mut String) {
        type Value = fn(&Series) -> Option<f64>;
        let families: [(&str, &str, Value); 4] = [
            (
                "monitor_status",
                "Monitor status (0 down, 1 up, 2 pending, 3 maintenance)",
                |s| s.status.map(|st| f64::from(st as u8)),
            ),
            (
                "monitor_response_time",
                "Monitor response time of the last check, in ms",
                |s| s.response_ms,
            ),
            (
                "monitor_cert_days_remaining",
                "Days until the monitored TLS certificate expires",
                |s| s.cert.map(|(d, _)| d as f64),
            ),
            (
                "monitor_cert_is_valid",
                "Whether the monitored TLS certificate is valid (1) or not (0)",
                |s| s.cert.map(|(_, v)| f64::from(u8::from(v))),
            ),
        ];
        // Copy out (cheap: the labels are shared) so checks recording results
        // do not wait while the text is written.
        let exported: Vec<Series> = self
            .map()
            .values()
            .filter(|s| s.status.is_some())
            .cloned()
            .collect();
        for (name, help, value) in families {
            let mut header = false;
            for s in &exported {
                let Some(v) = value(s) else { continue };
                if !header {
                    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
                    header = true;
                }
                let _ = writeln!(out, "{name}{{{}}} {}", s.labels, sample_value(v));
            }
        }
    }
}

/// A sample value as the exposition format spells it.
fn sample_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        v.to_string()
    }
}

pub struct Metrics {
    registry: Registry,
    /// Checks executed, by monitor type and result (up/down).
    pub checks: IntCounterVec,
    /// Checks not run, by reason (fenced: the node's lease had lapsed).
    pub checks_skipped: IntCounterVec,
    pub check_duration: HistogramVec,
    /// How late a check started against its schedule (includes waiting for a slot).
    pub schedule_lag: Histogram,
    pub owned_monitors: IntGauge,
    /// 1 while the node has stopped executing because its lease lapsed.
    pub fenced: IntGauge,
    pub hb_batches: IntCounter,
    pub hb_batch_size: Histogram,
    pub hb_write_seconds: Histogram,
    pub hb_written: IntCounter,
    /// Rows the DB refused because this node no longer owns the monitor.
    pub hb_rejected: IntCounter,
    pub hb_buffered: IntGauge,
    /// Oldest buffered heartbeats dropped because the buffer was full.
    pub hb_dropped: IntCounter,
    pub hb_write_errors: IntCounter,
    pub reconcile_errors: IntCounter,
    /// Deliveries by provider and result (sent, retry, failed, lost).
    pub notify_deliveries: IntCounterVec,
    /// Undelivered notification events in the cluster's outbox.
    pub notify_events: IntCounterVec,
    pub notify_outbox_depth: IntGauge,
    /// Age in seconds of the oldest undelivered event (0 when none).
    pub notify_oldest_age: IntGauge,
    /// Uptime Kuma's per-monitor series, set by the owning node after each result.
    pub monitors: MonitorSeries,
}

impl Metrics {
    pub fn new(node_id: &str) -> Self {
        let registry = Registry::new_custom(
            None,
            Some(std::iter::once(("node".to_owned(), node_id.to_owned())).collect()),
        )
        .expect("valid registry labels");
        let lag_buckets = vec![
            0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
        ];
        let m = Metrics {
            checks: IntCounterVec::new(
                Opts::new("picket_checks_total", "Checks executed, by type and result"),
                &["type", "result"],
            )
            .unwrap(),
            checks_skipped: IntCounterVec::new(
                Opts::new(
                    "picket_checks_skipped_total",
                    "Checks not executed, by reason",
                ),
                &["reason"],
            )
            .unwrap(),
            check_duration: HistogramVec::new(
                HistogramOpts::new("picket_check_duration_seconds", "Check duration, by type"),
                &["type"],
            )
            .unwrap(),
            schedule_lag: Histogram::with_opts(
                HistogramOpts::new(
                    "picket_schedule_lag_seconds",
                    "Check start delay behind schedule",
                )
                .buckets(lag_buckets),
            )
            .unwrap(),
            owned_monitors: IntGauge::new(
                "picket_owned_monitors",
                "Active monitors this node runs",
            )
            .unwrap(),
            fenced: IntGauge::new(
                "picket_fenced",
                "1 while the lease has lapsed and checks are paused",
            )
            .unwrap(),
            hb_batches: IntCounter::new(
                "picket_heartbeat_batches_total",
                "Heartbeat insert batches written",
            )
            .unwrap(),
            hb_batch_size: Histogram::with_opts(
                HistogramOpts::new("picket_heartbeat_batch_size", "Rows per heartbeat batch")
                    .buckets(vec![1.0, 5.0, 10.0, 25.0, 50.0, 100.0, 200.0, 500.0]),
            )
            .unwrap(),
            hb_write_seconds: Histogram::with_opts(HistogramOpts::new(
                "picket_heartbeat_write_seconds",
                "Heartbeat batch write latency",
            ))
            .unwrap(),
            hb_written: IntCounter::new(
                "picket_heartbeats_written_total",
                "Heartbeat rows written",
            )
            .unwrap(),
            hb_rejected: IntCounter::new(
                "picket_heartbeats_rejected_total",
                "Heartbeats refused by the DB because the node no longer owns the monitor",
            )
            .unwrap(),
            hb_buffered: IntGauge::new(
                "picket_heartbeats_buffered",
                "Heartbeats waiting to be written",
            )
            .unwrap(),
            hb_dropped: IntCounter::new(
                "picket_heartbeats_dropped_total",
                "Oldest buffered heartbeats dropped because the buffer was full",
            )
            .unwrap(),
            hb_write_errors: IntCounter::new(
                "picket_heartbeat_write_errors_total",
                "Failed heartbeat writes",
            )
            .unwrap(),
            reconcile_errors: IntCounter::new(
                "picket_reconcile_errors_total",
                "Failed reconcile passes",
            )
            .unwrap(),
            notify_deliveries: IntCounterVec::new(
                Opts::new(
                    "picket_notification_deliveries_total",
                    "Notification deliveries by this node, by provider and result",
                ),
                &["provider", "result"],
            )
            .unwrap(),
            notify_events: IntCounterVec::new(
                Opts::new(
                    "picket_notification_events_total",
                    "Notification events this node's writes created (one per status change, \
                     whatever the number of channels), by kind",
                ),
                &["kind"],
            )
            .unwrap(),
            notify_outbox_depth: IntGauge::new(
                "picket_notification_outbox_depth",
                "Undelivered notification events (the whole cluster's outbox)",
            )
            .unwrap(),
            notify_oldest_age: IntGauge::new(
                "picket_notification_oldest_undelivered_seconds",
                "Age of the oldest undelivered notification event",
            )
            .unwrap(),
            monitors: MonitorSeries::default(),
            registry,
        };
        let r = &m.registry;
        let _ = r.register(Box::new(m.checks.clone()));
        let _ = r.register(Box::new(m.checks_skipped.clone()));
        let _ = r.register(Box::new(m.check_duration.clone()));
        let _ = r.register(Box::new(m.schedule_lag.clone()));
        let _ = r.register(Box::new(m.owned_monitors.clone()));
        let _ = r.register(Box::new(m.fenced.clone()));
        let _ = r.register(Box::new(m.hb_batches.clone()));
        let _ = r.register(Box::new(m.hb_batch_size.clone()));
        let _ = r.register(Box::new(m.hb_write_seconds.clone()));
        let _ = r.register(Box::new(m.hb_written.clone()));
        let _ = r.register(Box::new(m.hb_rejected.clone()));
        let _ = r.register(Box::new(m.hb_buffered.clone()));
        let _ = r.register(Box::new(m.hb_dropped.clone()));
        let _ = r.register(Box::new(m.hb_write_errors.clone()));
        let _ = r.register(Box::new(m.reconcile_errors.clone()));
        let _ = r.register(Box::new(m.notify_deliveries.clone()));
        let _ = r.register(Box::new(m.notify_events.clone()));
        let _ = r.register(Box::new(m.notify_outbox_depth.clone()));
        let _ = r.register(Box::new(m.notify_oldest_age.clone()));
        m
    }

    /// Brings `picket_notification_events_total` up to the data layer's
    /// counts ([`picket_shared::db::Db::events_created`]).
    pub fn sync_events(&self, counts: [(EventKind, u64); 4]) {
        for (kind, n) in counts {
            let c = self.notify_events.with_label_values(&[kind.as_str()]);
            c.inc_by(n.saturating_sub(c.get()));
        }
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        let mut text = String::from_utf8(buf).unwrap_or_default();
        self.monitors.render(&mut text);
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(id: i64, name: &str) -> MonitorLabels {
        MonitorLabels::new(
            MonitorId(id),
            [&id.to_string(), name, "http", "http://t/", "", ""],
            "n1",
        )
    }

    #[test]
    fn a_monitor_is_exported_from_its_first_result_until_it_is_forgotten() {
        let m = Metrics::new("n1");
        let a = labels(1, "web \"main\"\\ok\nx");
        m.monitors.register(&a);
        assert!(!m.render().contains("monitor_status"), "no result yet");

        m.monitors.observe(&a, Status::Pending, Some(12.5), None);
        let text = m.render();
        let want = r#"monitor_status{monitor_id="1",monitor_name="web \"main\"\\ok\nx",monitor_type="http",monitor_url="http://t/",monitor_hostname="",monitor_port="",node="n1"} 2"#;
        assert!(text.lines().any(|l| l == want), "{text}");
        assert!(
            text.contains("# TYPE monitor_response_time gauge\n"),
            "{text}"
        );
        assert!(text.contains("node=\"n1\"} 12.5\n"), "{text}");
        assert!(
            !text.contains("monitor_cert"),
            "no certificate seen: {text}"
        );

        m.monitors.observe(&a, Status::Up, None, Some((-3, false)));
        let text = m.render();
        assert!(text.contains("node=\"n1\"} 1\n"), "status: {text}");
        assert!(text.contains("node=\"n1\"} 12.5\n"), "ping kept: {text}");
        assert!(text.contains("node=\"n1\"} -3\n"), "cert days: {text}");
        assert!(text.contains("node=\"n1\"} 0\n"), "cert invalid: {text}");

        m.monitors.forget(&a);
        assert!(!m.render().contains("monitor_id=\"1\""));
    }

    #[test]
    fn a_stopped_task_cannot_write_over_or_bring_back_a_series() {
        let m = Metrics::new("n1");
        let old = labels(7, "old");
        m.monitors.register(&old);
        // The spec changed: the new registration replaces the old one.
        let new = labels(7, "new");
        m.monitors.register(&new);
        m.monitors.observe(&old, Status::Down, None, None);
        assert!(
            !m.render().contains("monitor_id=\"7\""),
            "stale result ignored"
        );
        m.monitors.observe(&new, Status::Up, None, None);
        assert!(m.render().contains("monitor_name=\"new\""));
        // Forgetting with the old labels leaves the new registration alone.
        m.monitors.forget(&old);
        assert!(m.render().contains("monitor_name=\"new\""));
        m.monitors.forget(&new);
        m.monitors.observe(&new, Status::Up, None, None);
        assert!(!m.render().contains("monitor_id=\"7\""), "not brought back");
    }

    #[test]
    fn sample_values_use_the_exposition_spelling() {
        assert_eq!(sample_value(1.0), "1");
        assert_eq!(sample_value(0.25), "0.25");
        assert_eq!(sample_value(f64::INFINITY), "+Inf");
        assert_eq!(sample_value(f64::NEG_INFINITY), "-Inf");
        assert_eq!(sample_value(f64::NAN), "NaN");
    }
}
