//! `picket-lb`: the Pingora balancer in front of the Picket nodes.
//!
//! - [`proxy`] is the request path: it routes by the in-memory node view
//!   ([`view`]) and answers the balancer's own endpoints ([`local`]); it does no
//!   database and no DNS I/O.
//! - [`control`] is a background service with its own runtime that owns the
//!   database pool and the resolver ([`dns`]) and republishes the node view.
//! - [`cluster`] is a second background service: the leader lease, the health
//!   checker, failover, recovery and rebalancing. It reports in the typed
//!   values of [`report`]; [`local`] turns them into JSON.
//!
//! [`run`] takes a shutdown signal so tests can start and stop a balancer in
//! process; `main` passes Pingora's Unix signal watcher.

pub mod cluster;
pub mod config;
pub mod control;
pub mod db_slot;
pub mod dns;
pub mod local;
pub mod metrics;
pub mod proxy;
pub mod report;
pub mod state;
pub mod view;

use crate::config::LbConfig;
use crate::state::Shared;
use pingora::prelude::background_service;
use pingora::server::configuration::ServerConf;
use pingora::server::{RunArgs, Server, ShutdownSignal, ShutdownSignalWatch};
use std::sync::Arc;

/// Builds the Pingora server: the proxy listening on `cfg.listen` and the
/// control service. Nothing is bound until the server runs.
pub fn build(cfg: LbConfig) -> (Server, Arc<Shared>) {
    let conf = ServerConf {
        threads: cfg.threads(),
        grace_period_seconds: Some(cfg.grace_period_secs),
        graceful_shutdown_timeout_seconds: Some(1),
        ..ServerConf::default()
    };
    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();
    let listen = cfg.listen.to_string();
    let shared = Arc::new(Shared::new(cfg));
    let mut proxy = pingora::proxy::http_proxy_service_with_name(
        &server.configuration,
        proxy::Lb {
            shared: shared.clone(),
        },
        "picket-lb proxy",
    );
    proxy.add_tcp(&listen);
    server.add_service(proxy);
    server.add_service(background_service(
        "picket-lb control",
        control::Control {
            shared: shared.clone(),
        },
    ));
    server.add_service(background_service(
        "picket-lb cluster",
        cluster::ClusterService {
            shared: shared.clone(),
        },
    ));
    (server, shared)
}

/// Runs a balancer until `shutdown` fires. Blocks the calling thread (Pingora
/// makes its own runtimes: do not call this from inside one).
pub fn run(cfg: LbConfig, shutdown: Box<dyn ShutdownSignalWatch>) {
    tracing::info!(listen = %cfg.listen, lb_id = %cfg.lb_id(), "picket-lb starting");
    let (server, _shared) = build(cfg);
    server.run(RunArgs {
        shutdown_signal: shutdown,
    });
}

/// A shutdown signal driven by a channel: a graceful stop when the sender sends
/// `true` or is dropped.
pub struct ChannelShutdown(pub tokio::sync::watch::Receiver<bool>);

#[async_trait::async_trait]
impl ShutdownSignalWatch for ChannelShutdown {
    async fn recv(&self) -> ShutdownSignal {
        let mut rx = self.0.clone();
        let _ = rx.wait_for(|stop| *stop).await;
        ShutdownSignal::GracefulTerminate
    }
}
