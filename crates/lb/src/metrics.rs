//! Prometheus metrics of one balancer, in its own registry (several balancers
//! can live in one test process).

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

/// The balancer's metrics.
pub struct Metrics {
    registry: Registry,
    /// Proxied requests by node and status class (`2xx`, …, `error`).
    pub requests: IntCounterVec,
    /// Time from picking a node to its response header, by node.
    pub upstream_latency: HistogramVec,
    /// Requests answered by the balancer itself (local endpoints, 503s).
    pub local_requests: IntCounter,
    /// 1 when the node is routable, else 0.
    pub node_up: IntGaugeVec,
    /// Owned active monitors per node, as of the last view.
    pub node_monitors: IntGaugeVec,
    /// Milliseconds since the node view was last read from the database.
    pub snapshot_age_ms: IntGauge,
    /// Failed node view refreshes (database errors).
    pub refresh_failures: IntCounter,
    /// Node host names that failed to resolve, by node.
    pub dns_failures: IntCounterVec,
    /// Connection attempts that failed and were retried on another node.
    pub connect_retries: IntCounterVec,
    /// Health checks by node and result (`pass`, `fail`).
    pub health_checks: IntCounterVec,
    /// Health round duration.
    pub health_round: Histogram,
    /// Ownership moves applied, by kind (`failover`, `recovery`, `rebalance`).
    pub moves: IntCounterVec,
    /// 1 while this balancer holds the leader lease.
    pub leader: IntGauge,
    /// 1 while failover is frozen by the panic threshold.
    pub panic: IntGauge,
}

impl Metrics {
    pub fn new() -> Metrics {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new(
                "picket_lb_requests_total",
                "Proxied requests by node and status class",
            ),
            &["node", "class"],
        )
        .expect("metric");
        let upstream_latency = HistogramVec::new(
            HistogramOpts::new(
                "picket_lb_upstream_latency_seconds",
                "Time from picking a node to its response header",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                10.0,
            ]),
            &["node"],
        )
        .expect("metric");
        let local_requests = IntCounter::new(
            "picket_lb_local_requests_total",
            "Requests answered by the balancer itself",
        )
        .expect("metric");
        let node_up = IntGaugeVec::new(
            Opts::new(
                "picket_lb_node_up",
                "1 when the node is online and resolved",
            ),
            &["node"],
        )
        .expect("metric");
        let node_monitors = IntGaugeVec::new(
            Opts::new(
                "picket_lb_node_monitors",
                "Active monitors owned by the node",
            ),
            &["node"],
        )
        .expect("metric");
        let snapshot_age_ms = IntGauge::new(
            "picket_lb_snapshot_age_ms",
            "Milliseconds since the node view was last read from the database",
        )
        .expect("metric");
        let refresh_failures = IntCounter::new(
            "picket_lb_refresh_failures_total",
            "Node view refreshes that failed to read the database",
        )
        .expect("metric");
        let dns_failures = IntCounterVec::new(
            Opts::new(
                "picket_lb_dns_failures_total",
                "Failed node host resolutions",
            ),
            &["node"],
        )
        .expect("metric");
        let connect_retries = IntCounterVec::new(
            Opts::new(
                "picket_lb_connect_retries_total",
                "Failed connections retried on another node",
            ),
            &["node"],
        )
        .expect("metric");
        let health_checks = IntCounterVec::new(
            Opts::new(
                "picket_lb_health_checks_total",
                "Node health checks by result",
            ),
            &["node", "result"],
        )
        .expect("metric");
        let health_round = Histogram::with_opts(HistogramOpts::new(
            "picket_lb_health_round_seconds",
            "Duration of one health check round",
        ))
        .expect("metric");
        let moves = IntCounterVec::new(
            Opts::new("picket_lb_ownership_moves_total", "Monitors moved, by kind"),
            &["kind"],
        )
        .expect("metric");
        let leader = IntGauge::new(
            "picket_lb_leader",
            "1 while this balancer holds the leader lease",
        )
        .expect("metric");
        let panic = IntGauge::new(
            "picket_lb_panic",
            "1 while failover is frozen by the panic threshold",
        )
        .expect("metric");
        for c in [
            Box::new(requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(upstream_latency.clone()),
            Box::new(local_requests.clone()),
            Box::new(node_up.clone()),
            Box::new(node_monitors.clone()),
            Box::new(snapshot_age_ms.clone()),
            Box::new(refresh_failures.clone()),
            Box::new(dns_failures.clone()),
            Box::new(connect_retries.clone()),
            Box::new(health_checks.clone()),
            Box::new(health_round.clone()),
            Box::new(moves.clone()),
            Box::new(leader.clone()),
            Box::new(panic.clone()),
        ] {
            registry.register(c).expect("unique metric names");
        }
        Metrics {
            registry,
            requests,
            upstream_latency,
            local_requests,
            node_up,
            node_monitors,
            snapshot_age_ms,
            refresh_failures,
            dns_failures,
            connect_retries,
            health_checks,
            health_round,
            moves,
            leader,
            panic,
        }
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        String::from_utf8(buf).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// `2xx`-style class of a status code.
pub fn status_class(code: u16) -> &'static str {
    match code {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        500..=599 => "5xx",
        _ => "error",
    }
}
