//! The node's HTTP server: the axum router on hyper, with the bounds a
//! listener open to a network needs. A client has [`ServeLimits::header_read`]
//! to send a request's head (and, on a kept-alive connection, that long to
//! start the next one), a handler [`ServeLimits::request`] to answer, and the
//! node holds at most [`ServeLimits::max_connections`] connections: past it,
//! new ones wait in the kernel's backlog until one closes, so trickling
//! clients cannot use up the process's file descriptors.

use crate::api::ApiError;
use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt as _;

/// How long clients may take, and how many may be connected.
#[derive(Debug, Clone, Copy)]
pub struct ServeLimits {
    /// Connections held at once.
    pub max_connections: usize,
    /// To send a request's head, and to start the next one on a kept-alive
    /// connection (so it is the idle timeout too).
    pub header_read: Duration,
    /// For a handler to produce its response (a stream, once started, is
    /// not cut: live updates run for hours).
    pub request: Duration,
}

/// Serves `router` on `listener` until `shutdown` resolves, then lets open
/// connections finish (the caller bounds that wait).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ServeLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let deadline = limits.request;
    let router = router.layer(axum::middleware::from_fn(move |req, next| {
        request_deadline(deadline, req, next)
    }));
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read);
    builder.http2().timer(TokioTimer::new());
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => p.expect("the semaphore is never closed"),
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // Out of file descriptors or a connection reset before
                    // accept: wait a moment rather than spin.
                    tracing::warn!(cause = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let svc = router
            .clone()
            .map_request(move |req: Request<hyper::body::Incoming>| {
                let mut req = req.map(Body::new);
                req.extensions_mut().insert(ConnectInfo(peer));
                req
            });
        let conn = builder
            .serve_connection_with_upgrades(TokioIo::new(stream), TowerToHyperService::new(svc))
            .into_owned();
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::trace!(%peer, cause = %e, "connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// A handler that has not answered within `limit` is answered 503 for it.
async fn request_deadline(limit: Duration, req: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(r) => r,
        Err(_) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "the request took longer than {} s and was abandoned",
                limit.as_secs()
            ),
        )
        .into_response(),
    }
}
