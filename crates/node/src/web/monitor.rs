//! `/monitors/{id}`: one monitor's state and since when, uptime over 24 h /
//! 7 d / 30 d / 1 y, response times with a chart the server draws from the
//! aggregates, certificate expiry, status changes and recent beats (both
//! paginated), its nodes and channels; and the actions pause, resume, edit,
//! clone and delete (confirmed on a page of its own).

use super::layout::{self, Nav};
use super::{CsrfForm, PageError, PageResult, Viewer, check_csrf, human, iso, see_other};
use crate::api::AppState;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use maud::{Markup, html};
use picket_shared::db::{MonitorRecord, Session, State as MonitorState};
use picket_shared::model::{Heartbeat, WindowStats};
use picket_shared::monitor::ValidMonitor;
use picket_shared::{MonitorId, now_ms};
use serde::Deserialize;

/// Rows per page of the events and beats tables.
const ROWS: i64 = 25;

/// The chart's periods: name, span.
const PERIODS: [(&str, i64); 4] = [
    ("1h", 3_600_000),
    ("24h", 86_400_000),
    ("7d", 7 * 86_400_000),
    ("30d", 30 * 86_400_000),
];

#[derive(Deserialize, Default)]
pub struct MonitorQuery {
    #[serde(default)]
    period: String,
    #[serde(default)]
    events: String,
    #[serde(default)]
    beats: String,
}

fn page_no(s: &str) -> i64 {
    s.parse().unwrap_or(1).clamp(1, 1_000_000)
}

pub fn parse_monitor_id(raw: &str) -> Result<MonitorId, PageError> {
    raw.parse()
        .map(MonitorId)
        .map_err(|_| PageError(StatusCode::NOT_FOUND, format!("no monitor '{raw}'")))
}

pub async fn load(st: &AppState, raw: &str) -> Result<MonitorRecord, PageError> {
    let id = parse_monitor_id(raw)?;
    st.0.db
        .monitor(id)
        .await?
        .ok_or_else(|| PageError(StatusCode::NOT_FOUND, format!("monitor {id} not found")))
}

pub async fn page(
    State(st): State<AppState>,
    Viewer(session): Viewer,
    Path(raw): Path<String>,
    Query(q): Query<MonitorQuery>,
) -> PageResult {
    let rec = load(&st, &raw).await?;
    let db = &st.0.db;
    let now = now_ms();
    let id = rec.id;
    let latest = db.latest(id).await?;
    let state = MonitorState::of(rec.active(), latest.as_ref().map(|l| l.status));
    let uptime = db
        .uptime_of(now, &[id])
        .await?
        .remove(&id)
        .unwrap_or_default();
    let year = db.uptime_year(now, id).await?;
    let tls = db.tls_info(id).await?;
    let (period, span) = PERIODS
        .iter()
        .copied()
        .find(|(p, _)| *p == q.period)
        .unwrap_or(PERIODS[1]);
    let series = db.stat_series(id, now - span, span).await?;
    let (events_page, beats_page) = (page_no(&q.events), page_no(&q.beats));
    let (events_total, events) = db
        .beats_page(id, true, (events_page - 1) * ROWS, ROWS)
        .await?;
    let (beats_total, beats) = db
        .beats_page(id, false, (beats_page - 1) * ROWS, ROWS)
        .await?;
    let recent = db
        .recent_beats(&[id], 60)
        .await?
        .remove(&id)
        .unwrap_or_default();
    let linked = db
        .monitor_channels(Some(id))
        .await?
        .remove(&id)
        .unwrap_or_default();
    let tags = db
        .monitor_tags(Some(&[id]))
        .await?
        .remove(&id)
        .unwrap_or_default();
    let channels: Vec<_> = db
        .channels()
        .await?
        .into_iter()
        .filter(|c| linked.contains(&c.id))
        .collect();
    let f = &rec.fields;
    let name = f.name.as_deref().unwrap_or("");
    let link = |period: &str, events: i64, beats: i64| {
        format!("/monitors/{id}?period={period}&events={events}&beats={beats}")
    };

    let body = html! {
        div.row.spread {
            div {
                h1 style="margin-bottom:4px" { (name) }
                div.row {
                    (layout::badge(state))
                    @if let Some(l) = &latest {
                        span.muted { "since " time data-since datetime=(iso(l.since)) { (human(l.since)) } }
                    } @else {
                        span.muted { "no check has reported yet" }
                    }
                }
                p.target { (f.kind.as_deref().unwrap_or("")) " · " (rec.target().unwrap_or_else(|| "push".into())) }
                @if !tags.is_empty() { p { (layout::tag_chips(&tags)) } }
                @if let Some(d) = f.description.as_deref().filter(|d| !d.is_empty()) { p { (d) } }
            }
            div.row {
                @if rec.active() {
                    (action(&session.csrf, id, "pause", "‖ Pause", ""))
                } @else {
                    (action(&session.csrf, id, "resume", "▶ Resume", "primary"))
                }
                a.button href={ "/monitors/" (id) "/edit" } { "Edit" }
                a.button href={ "/monitors/new?clone=" (id) } { "Clone" }
                a.button.danger href={ "/monitors/" (id) "/delete" } { "Delete" }
            }
        }
        div data-monitor=(id) data-state=(state.as_str()) {
            span hidden { (layout::badge(state)) }
            (layout::beat_bar(&recent, true))
            div.stats {
                (stat("Uptime 24 h", layout::percent(uptime.day.uptime())))
                (stat("Uptime 7 d", layout::percent(uptime.week.uptime())))
                (stat("Uptime 30 d", layout::percent(uptime.month.uptime())))
                (stat("Uptime 1 y", layout::percent(year.uptime())))
                div.stat { span { "Response now" } b data-ping { (layout::millis(latest.as_ref().and_then(|l| l.ping))) } }
                (stat("Average 24 h", layout::millis(uptime.day.avg_ping())))
                @if let Some(t) = tls {
                    (stat("Certificate", if t.valid { format!("{} days left", t.days_remaining) } else { "invalid".into() }))
                }
            }
            @if let Some(l) = &latest { p.muted { "Last check: " span data-msg { (l.msg) } } }
        }
        div.panel {
            div.row.spread {
                h2 style="margin:0" { "Response time" }
                nav.tabs aria-label="Chart period" {
                    @for (p, _) in PERIODS {
                        a href=(link(p, events_page, beats_page)) aria-current=[(p == period).then_some("page")] { (p) }
                    }
                }
            }
            (chart(&series, now - span, now))
        }
        div.grid2 {
            div {
                h2 { "Settings" }
                dl.facts {
                    dt { "Type" } dd { (f.kind.as_deref().unwrap_or("")) }
                    dt { "Interval" } dd { (f.interval.unwrap_or(0)) " s (retry " (f.retry_interval.unwrap_or(0)) " s, " (f.maxretries.unwrap_or(0)) " retries)" }
                    dt { "Home node" } dd { (rec.default_node_id) }
                    dt { "Running on" } dd { (rec.owner()) @if rec.assign_node.is_some() { " (moved while its home is away)" } }
                    dt { "Channels" } dd {
                        @if channels.is_empty() { span.muted { "none" } }
                        @for (i, c) in channels.iter().enumerate() { @if i > 0 { ", " } (c.name) " (" (c.kind) ")" }
                    }
                    dt { "Created" } dd { time datetime=(iso(rec.created_at)) { (human(rec.created_at)) } }
                }
            }
            div {
                h2 { "Status changes" }
                (beat_table(&events, events_total, events_page, |n| link(period, n, beats_page)))
            }
        }
        h2 { "Recent checks" }
        (beat_table(&beats, beats_total, beats_page, |n| link(period, events_page, n)))
    };
    Ok(layout::page(name, &session, Nav::None, body).into_response())
}

fn stat(label: &str, value: String) -> Markup {
    html! { div.stat { span { (label) } b { (value) } } }
}

fn action(csrf: &str, id: MonitorId, what: &str, label: &str, class: &str) -> Markup {
    html! {
        form method="post" action={ "/monitors/" (id) "/" (what) } style="margin:0" {
            input type="hidden" name="csrf" value=(csrf);
            button type="submit" class=(class) { (label) }
        }
    }
}

fn beat_table(beats: &[Heartbeat], total: i64, page: i64, link: impl Fn(i64) -> String) -> Markup {
    let pages = ((total + ROWS - 1) / ROWS).max(1);
    html! {
        @if beats.is_empty() {
            p.muted { "Nothing yet." }
        } @else {
            table.list {
                thead { tr { th { "Status" } th { "Time" } th.opt { "Response" } th { "Message" } } }
                tbody {
                    @for b in beats {
                        tr {
                            td { (layout::badge(layout::beat_state(b.status))) }
                            td.num { time datetime=(iso(b.time)) { (human(b.time)) } }
                            td.num.opt { (layout::millis(b.ping)) }
                            td { (b.msg) }
                        }
                    }
                }
            }
            @if pages > 1 {
                nav.pager aria-label="Pages" {
                    @if page > 1 { a.button href=(link(page - 1)) { "← Newer" } } @else { span {} }
                    span.muted { "Page " (page) " of " (pages) }
                    @if page < pages { a.button href=(link(page + 1)) { "Older →" } } @else { span {} }
                }
            }
        }
    }
}

/// The response-time chart: mean response time per bucket as a line (gaps
/// where a bucket has none), buckets with failures marked below, and the
/// lowest, mean and highest of the period.
pub fn chart(series: &[(i64, WindowStats)], from: i64, to: i64) -> Markup {
    const W: f64 = 800.0;
    const H: f64 = 180.0;
    const LEFT: f64 = 48.0;
    const BOTTOM: f64 = 22.0;
    let points: Vec<(i64, f64)> = series
        .iter()
        .filter_map(|(ts, w)| w.avg_ping().map(|p| (*ts, p)))
        .collect();
    let total = series
        .iter()
        .fold(WindowStats::default(), |mut acc, (_, w)| {
            acc.ping_sum += w.ping_sum;
            acc.ping_count += w.ping_count;
            acc
        });
    let min = points.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
    let max = points.iter().map(|p| p.1).fold(0.0, f64::max);
    let top = nice_ceiling(max);
    let span = (to - from).max(1) as f64;
    let x = |ts: i64| LEFT + (ts - from) as f64 / span * (W - LEFT - 4.0);
    let y = |p: f64| (H - BOTTOM) - p / top * (H - BOTTOM - 18.0);
    // Consecutive buckets are joined; a missing bucket breaks the line.
    let step = series
        .windows(2)
        .map(|w| w[1].0 - w[0].0)
        .filter(|d| *d > 0)
        .min()
        .unwrap_or(60_000);
    let mut path = String::new();
    let mut prev: Option<i64> = None;
    for (ts, p) in &points {
        let join = prev.is_some_and(|t| ts - t <= step);
        path.push_str(&format!(
            "{}{:.1},{:.1} ",
            if join { "L" } else { "M" },
            x(*ts),
            y(*p)
        ));
        prev = Some(*ts);
    }
    let downs: Vec<i64> = series
        .iter()
        .filter(|(_, w)| w.down > 0)
        .map(|(ts, _)| *ts)
        .collect();
    let band = (step as f64 / span * (W - LEFT - 4.0)).max(2.0);
    html! {
        @if points.is_empty() {
            p.muted { "No response times in this period yet." }
        } @else {
            div.stats {
                (stat("Lowest", layout::millis(Some(min))))
                (stat("Average", layout::millis(total.avg_ping())))
                (stat("Highest", layout::millis(Some(max))))
            }
            svg.chart viewBox={ "0 0 " (W) " " (H) } role="img"
                aria-label={ "Response time, lowest " (min.round()) " ms, average "
                    (total.avg_ping().unwrap_or(0.0).round()) " ms, highest " (max.round()) " ms" } {
                @for i in 0..=4 {
                    @let v = top * f64::from(i) / 4.0;
                    line.grid x1=(LEFT) x2=(W) y1=(y(v)) y2=(y(v)) {}
                    text x=(LEFT - 6.0) y=(y(v) + 4.0) text-anchor="end" {
                        @if top < 10.0 { (format!("{v:.1}")) } @else { (v.round()) }
                    }
                }
                text x=(LEFT + 4.0) y="11" { "ms" }
                @for ts in &downs {
                    rect.downband x=(x(*ts)) y=(H - BOTTOM - 6.0) width=(band) height="6" {
                        title { "failures at " (human(*ts)) }
                    }
                }
                path.line d=(path) {}
                @if points.len() <= 120 {
                    @for (ts, p) in &points { circle.dot cx=(format!("{:.1}", x(*ts))) cy=(format!("{:.1}", y(*p))) r="2.5" {} }
                }
                text x=(LEFT) y=(H - 4.0) { (human(from)) }
                text x=(W - 4.0) y=(H - 4.0) text-anchor="end" { (human(to)) }
            }
        }
    }
}

/// A round number at or above `v` for the chart's top line.
fn nice_ceiling(v: f64) -> f64 {
    if v <= 5.0 {
        return 5.0;
    }
    let mag = 10f64.powf(v.log10().floor());
    [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|c| *c >= v)
        .unwrap_or(10.0 * mag)
}

/// Pause or resume: the monitor's `active`, through the same validation and
/// write as the API's update.
async fn set_active(
    st: &AppState,
    session: &Session,
    raw: &str,
    csrf: &str,
    active: bool,
) -> PageResult {
    check_csrf(session, Some(csrf))?;
    let rec = load(st, raw).await?;
    let mut fields = rec.fields.clone();
    fields.active = Some(active);
    let valid: ValidMonitor = fields
        .validate(&picket_shared::monitor::Limits::STORED)
        .map_err(|e| PageError(StatusCode::BAD_REQUEST, format!("{e:?}")))?;
    st.0.db.update_monitor(rec.id, &valid).await?;
    tracing::info!(monitor = %rec.id, active, "monitor paused or resumed");
    Ok(see_other(&format!("/monitors/{}", rec.id)))
}

pub async fn pause(
    State(st): State<AppState>,
    Viewer(session): Viewer,
    Path(raw): Path<String>,
    Form(f): Form<CsrfForm>,
) -> PageResult {
    set_active(&st, &session, &raw, &f.csrf, false).await
}

pub async fn resume(
    State(st): State<AppState>,
    Viewer(session): Viewer,
    Path(raw): Path<String>,
    Form(f): Form<CsrfForm>,
) -> PageResult {
    set_active(&st, &session, &raw, &f.csrf, true).await
}

pub async fn delete_page(
    State(st): State<AppState>,
    Viewer(session): Viewer,
    Path(raw): Path<String>,
) -> PageResult {
    let rec = load(&st, &raw).await?;
    let body = layout::confirm_delete(
        &session,
        Nav::None,
        rec.fields.name.as_deref().unwrap_or(""),
        "The monitor, its heartbeats, its uptime history and its pending notifications are deleted.",
        &format!("/monitors/{}", rec.id),
    );
    Ok(body.into_response())
}

pub async fn delete(
    State(st): State<AppState>,
    Viewer(session): Viewer,
    Path(raw): Path<String>,
    Form(f): Form<CsrfForm>,
) -> PageResult {
    check_csrf(&session, Some(&f.csrf))?;
    let id = parse_monitor_id(&raw)?;
    st.0.db.delete_monitor(id).await?;
    tracing::info!(monitor = %id, "monitor deleted");
    Ok(see_other("/"))
}
