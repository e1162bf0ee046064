//! The control service: a Pingora background service with its own runtime that
//! owns the database pool and the DNS resolver. It rebuilds the node view every
//! `refresh_ms` and answers the request path's [`Command`]s.

use crate::db_slot::DbSlot;
use crate::dns::{Dns, DnsError};
use crate::state::{Command, Shared};
use crate::view::{NodeEntry, NodeView};
use async_trait::async_trait;
use picket_shared::NodeId;
use picket_shared::db::{Db, DbError};
use picket_shared::model::Node;
use picket_shared::now_ms;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicI64;
use tokio::task::JoinSet;

/// Builds node views: reads the database, resolves host names, publishes.
pub struct Refresher {
    shared: Arc<Shared>,
    dns: Option<Dns>,
    /// The last good database read, reused while the database is unreachable.
    rows: Vec<(Node, usize)>,
    db_read_at: Option<i64>,
    /// One in-flight counter per node, carried from snapshot to snapshot.
    inflight: HashMap<NodeId, Arc<AtomicI64>>,
    /// Last resolution error per node, to log changes rather than every pass.
    dns_errors: HashMap<NodeId, DnsError>,
}

impl Refresher {
    pub fn new(shared: Arc<Shared>, dns: Option<Dns>) -> Refresher {
        Refresher {
            shared,
            dns,
            rows: Vec::new(),
            db_read_at: None,
            inflight: HashMap::new(),
            dns_errors: HashMap::new(),
        }
    }

    /// One pass: read, resolve, publish. Returns the view it published.
    pub async fn run_once(&mut self, db: Result<&Db, DbError>) -> Arc<NodeView> {
        let now = now_ms();
        let db_error = match read_nodes(db).await {
            Ok(rows) => {
                self.rows = rows;
                self.db_read_at = Some(now);
                None
            }
            Err(e) => {
                self.shared.metrics.refresh_failures.inc();
                tracing::warn!(cause = %e, "node view refresh failed; keeping the last good view");
                Some(e.to_string())
            }
        };
        let addrs = self.resolve_all().await;
        let m = &self.shared.metrics;
        let mut nodes = Vec::with_capacity(self.rows.len());
        for ((node, count), addr) in self.rows.iter().zip(addrs) {
            let id = node.node_id.clone();
            match &addr {
                Err(e) => {
                    m.dns_failures.with_label_values(&[id.as_str()]).inc();
                    if self.dns_errors.get(&id) != Some(e) {
                        tracing::warn!(node = %id, host = %node.host, cause = %e, "node host does not resolve; node unroutable");
                        self.dns_errors.insert(id.clone(), e.clone());
                    }
                }
                Ok(_) => {
                    if self.dns_errors.remove(&id).is_some() {
                        tracing::info!(node = %id, "node host resolves again");
                    }
                }
            }
            let inflight = self.inflight.entry(id.clone()).or_default().clone();
            let entry = NodeEntry {
                node_id: id,
                node_name: node.node_name.clone(),
                host: node.host.clone(),
                status: node.status,
                last_seen: node.last_seen,
                monitor_count: *count,
                addr,
                health: node.health.clone(),
                inflight,
            };
            m.node_up
                .with_label_values(&[entry.node_id.as_str()])
                .set(i64::from(entry.routable()));
            m.node_monitors
                .with_label_values(&[entry.node_id.as_str()])
                .set(*count as i64);
            nodes.push(entry);
        }
        // Nodes deleted from the table leave the metrics and the counters.
        let known: Vec<NodeId> = self.inflight.keys().cloned().collect();
        for id in known {
            if !nodes.iter().any(|n| n.node_id == id) {
                self.inflight.remove(&id);
                let _ = m.node_up.remove_label_values(&[id.as_str()]);
                let _ = m.node_monitors.remove_label_values(&[id.as_str()]);
            }
        }
        let view = Arc::new(NodeView {
            nodes,
            db_read_at: self.db_read_at,
            built_at: now,
            db_error,
        });
        self.shared.view.store(view.clone());
        view
    }

    async fn resolve_all(&self) -> Vec<Result<SocketAddr, DnsError>> {
        let mut set = JoinSet::new();
        for (i, (node, _)) in self.rows.iter().enumerate() {
            let dns = self.dns.clone();
            let host = node.host.clone();
            set.spawn(async move {
                let r = match dns {
                    Some(d) => d.resolve(&host).await,
                    // No resolver (no usable resolv.conf): literals still work.
                    None => crate::dns::split_host_port(&host).and_then(|(h, p)| {
                        h.parse()
                            .map(|ip| SocketAddr::new(ip, p))
                            .map_err(|_| DnsError::NoResolver)
                    }),
                };
                (i, r)
            });
        }
        let mut out: Vec<Result<SocketAddr, DnsError>> =
            vec![Err(DnsError::Unresolved); self.rows.len()];
        while let Some(j) = set.join_next().await {
            if let Ok((i, r)) = j {
                out[i] = r;
            }
        }
        out
    }
}

async fn read_nodes(db: Result<&Db, DbError>) -> Result<Vec<(Node, usize)>, DbError> {
    let db = db?;
    let nodes = db.nodes().await?;
    let counts: BTreeMap<NodeId, usize> = db.owner_counts().await?;
    Ok(nodes
        .into_iter()
        .map(|n| {
            let c = counts.get(&n.node_id).copied().unwrap_or(0);
            (n, c)
        })
        .collect())
}

/// The background service around [`Refresher`] and the command handler.
pub struct Control {
    pub shared: Arc<Shared>,
}

#[async_trait]
impl BackgroundService for Control {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let cfg = &self.shared.cfg;
        let dns = match Dns::new(&cfg.dns_servers, cfg.dns_ttl_cap(), cfg.dns_timeout()) {
            Ok(d) => Some(d),
            Err(e) => {
                tracing::error!(cause = %e, "no DNS resolver; only IP-literal node hosts are routable");
                None
            }
        };
        let Some(mut rx) = self
            .shared
            .commands_rx
            .lock()
            .ok()
            .and_then(|mut r| r.take())
        else {
            tracing::error!("control service started twice");
            return;
        };
        let mut db = DbSlot::new(&cfg.database_url, cfg.db_pool);
        let mut refresher = Refresher::new(self.shared.clone(), dns);
        let mut tick = tokio::time::interval(cfg.refresh_interval());
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                _ = shutdown.changed() => break,
                Some(cmd) = rx.recv() => match cmd {
                    Command::VerifyKey { token, reply } => {
                        let ok = match db.get().await {
                            Ok(d) => d.verify_api_key(&token).await.unwrap_or_else(|e| {
                                tracing::warn!(cause = %e, "API key check failed");
                                false
                            }),
                            Err(_) => false,
                        };
                        let _ = reply.send(ok);
                    }
                    Command::VerifySession { token, csrf, reply } => {
                        let now = picket_shared::now_ms();
                        let ok = match db.get().await {
                            Ok(d) => d.session(&token, now).await.map_or_else(
                                |e| {
                                    tracing::warn!(cause = %e, "session check failed");
                                    false
                                },
                                |s| s.is_some_and(|s| picket_shared::auth::ct_eq(&csrf, &s.csrf)),
                            ),
                            Err(_) => false,
                        };
                        let _ = reply.send(ok);
                    }
                    Command::Refresh { reply } => {
                        refresher.run_once(db.get().await).await;
                        let _ = reply.send(());
                    }
                },
                _ = tick.tick() => {
                    refresher.run_once(db.get().await).await;
                }
            }
        }
        tracing::info!("control service stopped");
    }
}
