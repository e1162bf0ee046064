//! `/cluster`: each node's status, the monitors it runs, its last lease
//! renewal and the balancer's health-check strikes and latency; the
//! failover and recovery history; and the balancer's two actions (run a
//! health-check round, rebalance). The actions are plain forms: the node
//! queues them in the database for the leading balancer (`cluster_request`,
//! as follower balancers hand theirs over), waits for the outcome and shows
//! it, so they work from any node and without the script.

use super::layout::{self, Nav};
use super::{PageResult, Viewer, human, iso};
use crate::api::AppState;
use axum::Form;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use maud::{Markup, html};
use picket_shared::db::RequestState;
use picket_shared::db::Session;
use picket_shared::db::cluster::request_kind::{HEALTH_CHECK, REBALANCE};
use picket_shared::model::NodeStatus;
use picket_shared::now_ms;
use serde::Deserialize;
use serde_json::Value;
use std::time::{Duration, Instant};

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

/// How long an action waits for the leading balancer.
const ACTION_WAIT: Duration = Duration::from_secs(15);

pub async fn page(State(st): State<AppState>, Viewer(session): Viewer) -> PageResult {
    Ok(render(&st, &session, None).await?.into_response())
}

/// What an action came to: whether it ran, and what to say.
struct Outcome {
    ok: bool,
    summary: String,
    detail: Option<String>,
}

async fn render(
    st: &AppState,
    session: &Session,
    outcome: Option<Outcome>,
) -> Result<Markup, super::PageError> {
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
            p.muted { "The leading balancer carries them out; this page waits for its answer." }
            @if let Some(o) = &outcome {
                div class=(if o.ok { "alert ok" } else { "alert error" }) role="status" {
                    (o.summary)
                    @if let Some(d) = &o.detail {
                        details { summary { "Details" } pre style="white-space:pre-wrap" { (d) } }
                    }
                }
            }
            div.row {
                @for (what, label) in [(HEALTH_CHECK, "Run a health-check round"), (REBALANCE, "Rebalance monitors")] {
                    form method="post" action="/cluster/action" style="margin:0" {
                        input type="hidden" name="csrf" value=(session.csrf);
                        input type="hidden" name="what" value=(what);
                        button type="submit" { (label) }
                    }
                }
            }
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
    Ok(layout::page("Cluster", session, Nav::Cluster, body))
}

#[derive(Deserialize)]
pub struct ActionForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    what: String,
}

pub async fn action(
    State(st): State<AppState>,
    Viewer(session): Viewer,
    Form(f): Form<ActionForm>,
) -> PageResult {
    super::check_csrf(&session, Some(&f.csrf))?;
    let kind = match f.what.as_str() {
        HEALTH_CHECK => HEALTH_CHECK,
        REBALANCE => REBALANCE,
        _ => {
            let o = Outcome {
                ok: false,
                summary: format!("There is no action '{}'.", f.what),
                detail: None,
            };
            let body = render(&st, &session, Some(o)).await?;
            return Ok((StatusCode::BAD_REQUEST, body).into_response());
        }
    };
    let by = format!("dashboard@{}", st.0.node_id);
    let db = &st.0.db;
    let id = db.request_cluster_action(kind, &by, now_ms()).await?;
    tracing::info!(request = id, kind, by = %session.username, "cluster action asked");
    let deadline = Instant::now() + ACTION_WAIT;
    let outcome = loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        match db.cluster_request_state(id).await? {
            Some(RequestState::Done { by, status, result }) => {
                break done(kind, &by, status, &result);
            }
            _ if Instant::now() < deadline => continue,
            Some(RequestState::Running { by }) => {
                break Outcome {
                    ok: false,
                    summary: format!("{by} is still running it; reload this page in a moment."),
                    detail: None,
                };
            }
            _ => {
                let _ = db.abandon_cluster_request(id, now_ms()).await;
                break Outcome {
                    ok: false,
                    summary:
                        "No balancer took it up: is a picket-lb running against this database?"
                            .into(),
                    detail: None,
                };
            }
        }
    };
    Ok(render(&st, &session, Some(outcome)).await?.into_response())
}

/// A finished action's outcome in words, with the balancer's answer.
fn done(kind: &str, by: &str, status: u16, result: &str) -> Outcome {
    let v: Value = serde_json::from_str(result).unwrap_or_default();
    let detail = serde_json::to_string_pretty(&v).ok();
    if status != 200 {
        let msg = v["msg"].as_str().unwrap_or("it failed");
        return Outcome {
            ok: false,
            summary: format!("{by} answered {status}: {msg}"),
            detail,
        };
    }
    let summary = if kind == HEALTH_CHECK {
        let nodes = v["nodes"].as_array().map(Vec::as_slice).unwrap_or_default();
        let passed = nodes.iter().filter(|n| n["ok"] == true).count();
        format!(
            "Health-check round by {by}: {passed} of {} nodes passed.",
            nodes.len()
        )
    } else {
        let moved = v["moved"].as_u64().unwrap_or(0);
        format!("Rebalanced by {by}: {moved} monitors moved.")
    };
    Outcome {
        ok: true,
        summary,
        detail,
    }
}
