//! `/`: counts by state, then one page of the monitor list, filtered and
//! sorted in the database (the page never holds the whole fleet). The URL
//! carries the filter, so a view can be bookmarked.

use super::layout::{self, Nav};
use super::{PageResult, Viewer, encode};
use crate::api::AppState;
use axum::extract::{Query, State};
use axum::response::IntoResponse;
use maud::{Markup, html};
use picket_shared::db::{Filter, Sort, State as MonitorState};
use picket_shared::monitor::MonitorType;
use picket_shared::{MonitorId, NodeId, now_ms};
use serde::Deserialize;

/// Monitors per page.
pub const PAGE_SIZE: i64 = 50;
/// Beats in each row's bar.
pub const BAR_BEATS: i64 = 30;

/// The dashboard's query string; every part optional.
#[derive(Deserialize, Default, Clone)]
pub struct BoardQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    status: String,
    #[serde(default, rename = "type")]
    kind: String,
    #[serde(default)]
    node: String,
    /// `name` or `name:value`.
    #[serde(default)]
    tag: String,
    #[serde(default)]
    sort: String,
    #[serde(default)]
    page: String,
}

impl BoardQuery {
    fn filter(&self) -> Filter {
        let some = |s: &str| Some(s.trim().to_owned()).filter(|s| !s.is_empty());
        Filter {
            search: some(&self.q),
            state: MonitorState::parse(&self.status),
            kind: MonitorType::parse(&self.kind).map(|t| t.as_str().to_owned()),
            node: some(&self.node).map(NodeId),
            tag: Filter::tag_of(&self.tag),
        }
    }

    fn sort(&self) -> Sort {
        Sort::parse(&self.sort).unwrap_or_default()
    }

    fn page(&self) -> i64 {
        self.page.parse().unwrap_or(1).clamp(1, 1_000_000)
    }

    /// This query's URL with `status` and `page` replaced.
    fn url(&self, status: Option<&str>, page: i64) -> String {
        let status = status.unwrap_or(&self.status);
        let mut parts = Vec::new();
        for (k, v) in [
            ("q", self.q.as_str()),
            ("status", status),
            ("type", self.kind.as_str()),
            ("node", self.node.as_str()),
            ("tag", self.tag.as_str()),
            ("sort", self.sort.as_str()),
        ] {
            if !v.is_empty() {
                parts.push(format!("{k}={}", encode(v)));
            }
        }
        if page > 1 {
            parts.push(format!("page={page}"));
        }
        if parts.is_empty() {
            "/".into()
        } else {
            format!("/?{}", parts.join("&"))
        }
    }
}

pub async fn page(
    State(st): State<AppState>,
    Viewer(session): Viewer,
    Query(q): Query<BoardQuery>,
) -> PageResult {
    let db = &st.0.db;
    let now = now_ms();
    let counts = db.state_counts().await?;
    let filter = q.filter();
    let page_no = q.page();
    let page = db
        .monitor_page(&filter, q.sort(), (page_no - 1) * PAGE_SIZE, PAGE_SIZE)
        .await?;
    let ids: Vec<MonitorId> = page.rows.iter().map(|(r, _)| r.id).collect();
    let beats = db.recent_beats(&ids, BAR_BEATS).await?;
    let uptime = db.day_uptime_of(now, &ids).await?;
    let nodes = db.nodes().await?;
    let tags = db.monitor_tags(Some(&ids)).await?;
    let all_tags = db.tags().await?;
    let pages = ((page.total + PAGE_SIZE - 1) / PAGE_SIZE).max(1);
    let total: i64 = counts.values().sum();
    let filtered = filter != Filter::default();

    let body = html! {
        div.row.spread {
            h1 { "Dashboard" }
            a.button.primary href="/monitors/new" { "+ New monitor" }
        }
        nav.counts aria-label="Monitors by status" {
            @for s in MonitorState::ALL {
                a.count href=(q.url(Some(if q.status == s.as_str() { "" } else { s.as_str() }), 1))
                    data-count=(s.as_str())
                    aria-current=[(filter.state == Some(s)).then_some("true")] {
                    (layout::badge(s)) b { (counts.get(&s).copied().unwrap_or(0)) }
                }
            }
        }
        (filters(&q, &nodes, &all_tags))
        @if total == 0 {
            div.panel {
                h2 style="margin-top:0" { "No monitors yet" }
                p { "Add the first one: a website, a port, a DNS record, a host to ping, or a push endpoint for a job to call." }
                p { a.button.primary href="/monitors/new" { "+ New monitor" } }
            }
        } @else if page.rows.is_empty() {
            div.panel { p { "No monitor matches this filter. " a href="/" { "Show all" } } }
        } @else {
            p.muted {
                @if filtered {
                    (page.total) " of " (total) " monitors match"
                } @else {
                    (total) @if total == 1 { " monitor" } @else { " monitors" }
                }
            }
            table.list {
                thead { tr {
                    th { "Status" } th { "Monitor" } th.opt { "Last 30 checks" }
                    th { "24 h" } th.opt { "Response" } th.opt { "Node" }
                } }
                tbody {
                    @for (rec, latest) in &page.rows {
                        @let state = MonitorState::of(rec.active(), latest.as_ref().map(|l| l.status));
                        @let empty = Vec::new();
                        @let bar = beats.get(&rec.id).unwrap_or(&empty);
                        tr data-monitor=(rec.id) data-state=(state.as_str()) {
                            td { (layout::badge(state)) }
                            td.name {
                                a href={ "/monitors/" (rec.id) } { (rec.fields.name.as_deref().unwrap_or("")) }
                                div.target {
                                    (rec.fields.kind.as_deref().unwrap_or("")) " · "
                                    (rec.target().unwrap_or_else(|| "push".into()))
                                }
                                @if let Some(t) = tags.get(&rec.id) { (layout::tag_chips(t)) }
                            }
                            td.opt { (layout::beat_bar(bar, false)) }
                            td.num { (layout::percent(uptime.get(&rec.id).and_then(|u| u.uptime()))) }
                            td.num.opt data-ping { (layout::millis(latest.as_ref().and_then(|l| l.ping))) }
                            td.opt.muted { (rec.owner()) }
                        }
                    }
                }
            }
            nav.pager aria-label="Pages" {
                @if page_no > 1 { a.button href=(q.url(None, page_no - 1)) rel="prev" { "← Previous" } } @else { span {} }
                span.muted { "Page " (page_no) " of " (pages) }
                @if page_no < pages { a.button href=(q.url(None, page_no + 1)) rel="next" { "Next →" } } @else { span {} }
            }
        }
    };
    Ok(layout::page("Dashboard", &session, Nav::Dashboard, body).into_response())
}

fn filters(
    q: &BoardQuery,
    nodes: &[picket_shared::model::Node],
    tags: &[picket_shared::db::Tag],
) -> Markup {
    let sel = |cur: &str, v: &str| (cur == v).then_some("selected");
    html! {
        form.filters method="get" action="/" role="search" {
            div.search {
                label for="q" { "Search" }
                input #q type="search" name="q" value=(q.q) placeholder="Name, URL or host";
            }
            div {
                label for="status" { "Status" }
                select #status name="status" {
                    option value="" { "Any" }
                    @for s in MonitorState::ALL { option value=(s.as_str()) selected=[sel(&q.status, s.as_str())] { (s.as_str()) } }
                }
            }
            div {
                label for="type" { "Type" }
                select #type name="type" {
                    option value="" { "Any" }
                    @for t in MonitorType::ALL { option value=(t.as_str()) selected=[sel(&q.kind, t.as_str())] { (t.as_str()) } }
                }
            }
            div {
                label for="node" { "Node" }
                select #node name="node" {
                    option value="" { "Any" }
                    @for n in nodes { option value=(n.node_id) selected=[sel(&q.node, n.node_id.as_str())] { (n.node_name) " (" (n.node_id) ")" } }
                }
            }
            div {
                label for="tag" { "Tag" }
                select #tag name="tag" {
                    option value="" { "Any" }
                    @for t in tags { option value=(t.name) selected=[sel(&q.tag, &t.name)] { (t.name) } }
                    @if !q.tag.is_empty() && !tags.iter().any(|t| t.name == q.tag) {
                        option value=(q.tag) selected { (q.tag) }
                    }
                }
            }
            div {
                label for="sort" { "Sort" }
                select #sort name="sort" {
                    @for s in Sort::ALL { option value=(s.as_str()) selected=[sel(&q.sort, s.as_str())] { (s.as_str()) } }
                }
            }
            div { button type="submit" { "Apply" } }
        }
    }
}
