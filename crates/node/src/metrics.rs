//! The node's Prometheus metrics, in a registry of its own (several nodes may
//! run in one test process).

use prometheus::{
    Encoder, GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

/// Uptime Kuma's per-monitor label names, so existing dashboards work.
pub const MONITOR_LABELS: [&str; 6] = [
    "monitor_id",
    "monitor_name",
    "monitor_type",
    "monitor_url",
    "monitor_hostname",
    "monitor_port",
];

/// One monitor's label values, in [`MONITOR_LABELS`] order.
pub type MonitorLabels = [String; 6];

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
    /// Uptime Kuma's per-monitor series, set by the owning node after each
    /// result: 0 down, 1 up, 2 pending, 3 maintenance.
    pub monitor_status: IntGaugeVec,
    /// Response time of the last check, ms.
    pub monitor_response_time: GaugeVec,
    pub monitor_cert_days_remaining: IntGaugeVec,
    /// 1 when the certificate verified on the last check.
    pub monitor_cert_is_valid: IntGaugeVec,
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
            monitor_status: IntGaugeVec::new(
                Opts::new(
                    "monitor_status",
                    "Monitor status (0 down, 1 up, 2 pending, 3 maintenance)",
                ),
                &MONITOR_LABELS,
            )
            .unwrap(),
            monitor_response_time: GaugeVec::new(
                Opts::new(
                    "monitor_response_time",
                    "Monitor response time of the last check, in ms",
                ),
                &MONITOR_LABELS,
            )
            .unwrap(),
            monitor_cert_days_remaining: IntGaugeVec::new(
                Opts::new(
                    "monitor_cert_days_remaining",
                    "Days until the monitored TLS certificate expires",
                ),
                &MONITOR_LABELS,
            )
            .unwrap(),
            monitor_cert_is_valid: IntGaugeVec::new(
                Opts::new(
                    "monitor_cert_is_valid",
                    "Whether the monitored TLS certificate is valid (1) or not (0)",
                ),
                &MONITOR_LABELS,
            )
            .unwrap(),
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
        let _ = r.register(Box::new(m.monitor_status.clone()));
        let _ = r.register(Box::new(m.monitor_response_time.clone()));
        let _ = r.register(Box::new(m.monitor_cert_days_remaining.clone()));
        let _ = r.register(Box::new(m.monitor_cert_is_valid.clone()));
        m
    }

    /// Records one result of a monitor this node runs.
    pub fn observe_monitor(
        &self,
        labels: &MonitorLabels,
        status: picket_shared::model::Status,
        ping_ms: Option<f64>,
        cert: Option<&crate::checks::tls::CertInfo>,
    ) {
        let l: Vec<&str> = labels.iter().map(String::as_str).collect();
        self.monitor_status.with_label_values(&l).set(status as i64);
        if let Some(p) = ping_ms {
            self.monitor_response_time.with_label_values(&l).set(p);
        }
        if let Some(c) = cert {
            self.monitor_cert_days_remaining
                .with_label_values(&l)
                .set(c.days_remaining);
            self.monitor_cert_is_valid
                .with_label_values(&l)
                .set(i64::from(c.valid));
        }
    }

    /// Drops a monitor's series (it stopped running here).
    pub fn forget_monitor(&self, labels: &MonitorLabels) {
        let l: Vec<&str> = labels.iter().map(String::as_str).collect();
        let _ = self.monitor_status.remove_label_values(&l);
        let _ = self.monitor_response_time.remove_label_values(&l);
        let _ = self.monitor_cert_days_remaining.remove_label_values(&l);
        let _ = self.monitor_cert_is_valid.remove_label_values(&l);
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        String::from_utf8(buf).unwrap_or_default()
    }
}
