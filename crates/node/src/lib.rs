//! `picket-node`: a worker that runs exactly the monitors it owns
//! (`COALESCE(assign_node, default_node_id) = this node`), records every
//! result as a heartbeat, and serves the REST API.
//!
//! [`run`] is the whole node: it takes its listener and a shutdown future so
//! tests can start several on port 0 and stop them at will.

pub mod api;
pub mod beat;
pub mod checks;
pub mod cli;
pub mod control;
pub mod live;
pub mod metrics;
pub mod retention;
pub mod scheduler;
pub mod serve;
pub mod web;
pub mod writer;

use anyhow::Context;
use control::Control;
use metrics::Metrics;
use picket_shared::auth::Bootstrap;
use picket_shared::config::NodeConfig;
use picket_shared::db::{ClusterMove, Db, DbError};
use picket_shared::model::NodeStatus;
use picket_shared::monitor::Limits;
use picket_shared::{NodeId, placement};
use scheduler::{Lease, Scheduler};
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::watch;
use writer::Writer;

/// How often the live updates read new heartbeats.
const LIVE_TICK: Duration = Duration::from_secs(1);

/// How long the final heartbeat flush may take at shutdown.
const DRAIN_FOR: Duration = Duration::from_secs(2);

/// Runs a node until `shutdown` resolves, then stops it (see [`Node::stop`]).
pub async fn run(
    cfg: NodeConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let node = Node::start(cfg, listener).await?;
    shutdown.await;
    node.stop().await
}

/// A running node.
pub struct Node {
    pub node_id: NodeId,
    pub addr: std::net::SocketAddr,
    pub metrics: Arc<Metrics>,
    live: Arc<live::Live>,
    db: Db,
    sched: Scheduler,
    stop_tx: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Node {
    /// Opens the database, registers the node, loads and starts its monitors,
    /// and serves the API on `listener`.
    pub async fn start(cfg: NodeConfig, listener: TcpListener) -> anyhow::Result<Node> {
        let started = tokio::time::Instant::now();
        let node_id = NodeId(cfg.node_id());
        let db = Db::open(&cfg.database_url, cfg.db_pool)
            .await
            .context("cannot open the database")?;
        db.register_node(&node_id, &cfg.node_name(), &cfg.node_host())
            .await
            .context("cannot register the node")?;
        // Back after a graceful leave: take our own monitors back at once.
        if db.node(&node_id).await?.map(|n| n.status) == Some(NodeStatus::Online) {
            let home = db.recover_node(&node_id, 500).await?;
            if home > 0 {
                tracing::info!(node = %node_id, monitors = home, "monitors returned home");
            }
        }

        let metrics = Arc::new(Metrics::new(node_id.as_str()));
        let writer = Writer::new(
            cfg.heartbeat_buffer,
            cfg.heartbeat_batch,
            node_id.clone(),
            metrics.clone(),
        );
        let lease = Arc::new(Lease::new(cfg.lease_ttl()));
        let sched = Scheduler::new(
            node_id.clone(),
            cfg.max_concurrent_checks,
            writer.clone(),
            metrics.clone(),
            lease.clone(),
            cfg.egress().map_err(anyhow::Error::msg)?,
        );
        sched.attach_db(db.clone());
        let mut control = Control::new(
            db.clone(),
            control::Identity {
                id: node_id.clone(),
                name: cfg.node_name(),
                host: cfg.node_host(),
            },
            sched.clone(),
            lease.clone(),
            metrics.clone(),
            cfg.lease_ttl(),
        );
        let n = control
            .initial_load(started)
            .await
            .context("cannot load monitors")?;
        let addr = listener.local_addr()?;
        tracing::info!(node = %node_id, monitors = n, %addr, "node started");

        let (stop_tx, stop_rx) = watch::channel(false);
        let stopped = |mut rx: watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|s| *s).await;
        };
        let flush_every = Duration::from_millis(cfg.heartbeat_flush_ms);
        let tasks = vec![
            tokio::spawn(writer.clone().run(
                db.clone(),
                flush_every,
                stopped(stop_rx.clone()),
                DRAIN_FOR,
            )),
            tokio::spawn(control.run(cfg.reconcile_interval(), stopped(stop_rx.clone()))),
            tokio::spawn(retention::run(
                db.clone(),
                cfg.heartbeat_retention(),
                stopped(stop_rx.clone()),
            )),
            tokio::spawn(deliver_notifications(
                db.clone(),
                node_id.clone(),
                &cfg,
                metrics.clone(),
                stopped(stop_rx.clone()),
            )),
        ];

        let live = Arc::new(live::Live::default());
        let mut tasks = tasks;
        tasks.push(tokio::spawn(live.clone().run(db.clone(), LIVE_TICK)));
        let state = api::AppState(Arc::new(api::AppInner {
            db: db.clone(),
            node_id: node_id.clone(),
            bootstrap: Bootstrap::new(cfg.api_token.as_deref()),
            limits: Limits {
                min_interval_secs: cfg.min_interval_secs,
            },
            metrics: metrics.clone(),
            sched: sched.clone(),
            lease,
            writer,
            started: Instant::now(),
            public_url: cfg.public_url.clone(),
            logins: Default::default(),
            live: live.clone(),
            auth_failures: api::guard::auth_limiter(),
            metrics_token: Bootstrap::new(cfg.metrics_token.as_deref()),
            egress: cfg.egress().map_err(anyhow::Error::msg)?,
        }));
        let server = tokio::spawn(serve::serve(
            listener,
            api::router(state, web::router()),
            serve::ServeLimits {
                max_connections: cfg.max_connections,
                header_read: Duration::from_secs(cfg.header_timeout_secs),
                request: Duration::from_secs(cfg.request_timeout_secs),
            },
            stopped(stop_rx),
        ));
        Ok(Node {
            node_id,
            addr,
            live,
            metrics,
            db,
            sched,
            stop_tx,
            tasks,
            server,
        })
    }

    /// Stops scheduling, flushes the buffered heartbeats, then marks the node
    /// `leaving` and hands its monitors to the other online nodes.
    pub async fn stop(self) -> anyhow::Result<()> {
        let node_id = &self.node_id;
        tracing::info!(node = %node_id, "shutting down: stopping checks, flushing heartbeats");
        self.sched.stop_all();
        self.live.stopping.cancel();
        let _ = self.stop_tx.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
        match tokio::time::timeout(Duration::from_secs(2), leave(&self.db, node_id)).await {
            Ok(Ok(moved)) => tracing::info!(node = %node_id, moved, "left the cluster"),
            Ok(Err(e)) => {
                tracing::warn!(node = %node_id, cause = %e, "could not hand monitors over")
            }
            Err(_) => tracing::warn!(node = %node_id, "handing monitors over timed out"),
        }
        // In-flight requests get a moment to finish; then the server is dropped.
        match tokio::time::timeout(Duration::from_secs(1), self.server).await {
            Ok(Ok(r)) => r.context("HTTP server failed"),
            _ => Ok(()),
        }
    }
}

/// The node's notification delivery worker, with its metrics: deliveries per
/// pass, and the outbox's depth and oldest event every few seconds.
fn deliver_notifications(
    db: Db,
    node_id: NodeId,
    cfg: &NodeConfig,
    metrics: Arc<Metrics>,
    stop: impl Future<Output = ()> + Send + 'static,
) -> impl Future<Output = ()> + Send + 'static {
    let policy = picket_notify::worker::RetryPolicy {
        first: Duration::from_secs(cfg.notify_retry_secs),
        give_up_after: Duration::from_secs(cfg.notify_give_up_hours * 3600),
        claim: Duration::from_secs(cfg.notify_claim_secs),
        ..Default::default()
    };
    let every = Duration::from_millis(cfg.notify_poll_ms);
    let worker =
        picket_notify::worker::Worker::new(db.clone(), node_id, cfg.public_url.clone(), policy);
    let mut last_depth = Instant::now() - Duration::from_secs(60);
    let on_pass = move |pass: &picket_notify::worker::Pass| {
        use picket_notify::worker::Delivered;
        for (provider, d) in &pass.deliveries {
            let result = match d {
                Delivered::Sent => "sent",
                Delivered::Retry => "retry",
                Delivered::Failed => "failed",
                Delivered::Lost => "lost",
                Delivered::Deferred => "deferred",
            };
            metrics
                .notify_deliveries
                .with_label_values(&[provider.as_str(), result])
                .inc();
        }
        if last_depth.elapsed() >= Duration::from_secs(5) {
            last_depth = Instant::now();
            let (db, metrics) = (db.clone(), metrics.clone());
            tokio::spawn(async move {
                if let Ok((n, oldest)) = db.outbox_depth().await {
                    metrics.notify_outbox_depth.set(n);
                    let age = oldest.map_or(0, |t| (picket_shared::now_ms() - t).max(0) / 1000);
                    metrics.notify_oldest_age.set(age);
                }
            });
        }
    };
    worker.run(every, stop, on_pass)
}

/// Marks the node `leaving` and assigns the monitors it owns to the other
/// online nodes, water-filled, so they run on without waiting for the health
/// checker's strikes. Returns how many moved.
pub async fn leave(db: &Db, node_id: &NodeId) -> Result<u64, DbError> {
    db.set_node_status(node_id, NodeStatus::Leaving).await?;
    let moves = plan_leave(db, node_id).await?;
    db.apply_moves(&moves, None).await
}

/// The moves that hand a leaving node's monitors to the other online nodes.
/// Each is conditional on this node still owning the monitor when it is
/// applied: if the leader moved one meanwhile (a failover racing the leave),
/// that move wins and this one is skipped.
pub async fn plan_leave(db: &Db, node_id: &NodeId) -> Result<Vec<ClusterMove>, DbError> {
    let counts = db.owner_counts().await?;
    let survivors: BTreeMap<NodeId, usize> = db
        .nodes()
        .await?
        .into_iter()
        .filter(|n| n.status == NodeStatus::Online && &n.node_id != node_id)
        .map(|n| {
            let c = counts.get(&n.node_id).copied().unwrap_or(0);
            (n.node_id, c)
        })
        .collect();
    let mine: Vec<_> = db
        .ownership(true)
        .await?
        .into_iter()
        .filter(|o| o.owner() == node_id)
        .map(|o| o.monitor)
        .collect();
    Ok(placement::plan_failover(&mine, &survivors)
        .into_iter()
        .map(|m| ClusterMove::Assign {
            monitor: m.monitor,
            from: node_id.clone(),
            to: m.to,
        })
        .collect())
}
