//! `/cluster`: each node's status, the monitors it runs, its last lease
//! renewal and the balancer's health-check strikes and latency; the
//! failover and recovery history; and the balancer's two actions (run a
//! health-check round, rebalance), which the page's script sends to the
//! balancer with the session's CSRF token (same origin: only through it).

use super::layout::{self, Nav};
use super::{PageResult, human, iso, viewer};
use crate::api::AppState;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use maud::html;
use picket_shared::model::NodeStatus;
use picket_shared::now_ms;

/// History rows shown.
const HISTORY: i64 = 50;

fn node_badge(s: NodeStatus) -> maud::Markup {
    let (class, word) = match s {
        NodeStatus::Online => ("up", "✓ Online"),
        NodeStatus::Offline => ("down", "✕ Offline"),
        NodeStatus::Leaving => ("paused", "‖ Leaving"),
    };
    html! { span class={ "st st-" (class) } { (word) } }
}

/// "12 s ago", "3 min ago", …
fn ago(now: i64, then: i64) -> String {
    let s = ((now - then).max(0) / 1000) as u64;
    match s {
        0..=59 => format!("{s} s ago"),
        60..=3599 => format!("{} min ago", s / 60),
        3600..=86_399 => format!("{} h ago", s / 3600),
        _ => format!("{} d ago", s / 86_400),
    }
}

pub async fn page(State(st): State<AppState>, headers: HeaderMap) -> PageResult {
    let session = match viewer(&st, &headers, "/cluster").await {
        Ok(s) => s,
        Err(r) => return Ok(r),
    };
    let db = &st.0.db;
    let now = now_ms();
    let nodes = db.nodes().await?;
    let owned = db.owner_counts().await?;
    let events = db.recent_events(HISTORY).await?;
    let body = html! {
        h1 { "Cluster" }
        table.list {
            thead { tr {
                th { "Node" } th { "Status" } th { "Monitors" } th.opt { "Lease renewed" }
                th.opt { "Strikes" } th.opt { "Health check" }
            } }
            tbody {
                @for n in &nodes {
                    tr {
                        td.name {
                            strong { (n.node_name) }
                            div.target { (n.node_id) " · " (n.host) }
                        }
                        td { (node_badge(n.status)) }
                        td.num { (owned.get(&n.node_id).copied().unwrap_or(0)) }
                        td.opt { time datetime=(iso(n.last_seen)) data-keep title=(human(n.last_seen)) { (ago(now, n.last_seen)) } }
                        td.num.opt { (n.health.fails) }
                        td.opt {
                            @match (n.health.last_ok, n.health.last_ms) {
                                (Some(true), Some(ms)) => { "passed in " (ms) " ms" }
                                (Some(false), _) => { span.muted { "failed: " (n.health.last_error.as_deref().unwrap_or("")) } }
                                _ => { span.muted { "not checked yet" } }
                            }
                        }
                    }
                }
            }
        }
        div.panel style="margin-top:16px" {
            h2 style="margin-top:0" { "Balancer actions" }
            p.muted { "These run on the balancer, so they work when this page is opened through it." }
            div.row {
                button type="button" data-lb-action="/lb/trigger-health-check" data-csrf=(session.csrf) hidden { "Run a health-check round" }
                button type="button" data-lb-action="/api/trigger-rebalancing" data-csrf=(session.csrf) hidden { "Rebalance monitors" }
                noscript { "They need JavaScript." }
            }
            pre #lb-result role="status" style="white-space:pre-wrap;margin:10px 0 0" {}
        }
        h2 { "History" }
        @if events.is_empty() {
            p.muted { "No failover, recovery or rebalance yet." }
        } @else {
            table.list {
                thead { tr { th { "Time" } th { "Event" } th { "Node" } th.opt { "Moved" } th { "Detail" } } }
                tbody {
                    @for e in &events {
                        tr {
                            td.num { time datetime=(iso(e.time)) { (human(e.time)) } }
                            td { (e.kind.replace('_', " ")) }
                            td { (e.node_id.as_deref().unwrap_or("–")) }
                            td.num.opt { (e.moved) }
                            td { (e.detail) }
                        }
                    }
                }
            }
        }
    };
    Ok(layout::page("Cluster", &session, Nav::Cluster, body).into_response())
}
