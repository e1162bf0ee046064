//! `/channels`: notification channels. The list, a form per provider (the
//! provider is picked first; its required settings are fields, secret ones
//! masked as the API masks them, the rest of its settings a JSON object),
//! a test send that shows the receiver's answer, a channel's recent
//! deliveries, and delete after a confirmation page. Everything is checked
//! by the same code as the API's (`api::notifications::input`).

use super::layout::{self, Nav};
use super::{CsrfForm, PageError, PageResult, Viewer, check_csrf, human, iso, see_other};
use crate::api::AppState;
use crate::api::notifications::{DELIVERIES_SHOWN, input, send_test};
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use maud::{Markup, html};
use picket_notify::providers;
use picket_shared::db::{Channel, Session};
use picket_shared::monitor::FieldError;
use serde::Deserialize;
use serde_json::{Map, Value, json};

/// The form's field for setting `key`.
fn cfg_field(key: &str) -> String {
    format!("config.{key}")
}

fn list_markup(session: &Session, channels: &[Channel], notice: Option<(bool, String)>) -> Markup {
    layout::page(
        "Notifications",
        session,
        Nav::Channels,
        html! {
            div.row.spread {
                h1 { "Notification channels" }
                a.button.primary href="/channels/new" { "+ New channel" }
            }
            @if let Some((ok, msg)) = &notice {
                div class=(if *ok { "alert ok" } else { "alert error" }) role="status" { (msg) }
            }
            @if channels.is_empty() {
                div.panel {
                    p { "No channels yet. A channel is where Picket tells someone a monitor went down or came back: a webhook, Slack, Telegram, email and more." }
                    p { a.button.primary href="/channels/new" { "+ New channel" } }
                }
            } @else {
                table.list {
                    thead { tr { th { "Name" } th { "Provider" } th.opt { "For new monitors" } th { "State" } th {} } }
                    tbody {
                        @for c in channels {
                            tr {
                                td.name { a href={ "/channels/" (c.id) } { (c.name) } }
                                td { (c.kind) }
                                td.opt { @if c.is_default { "linked by default" } @else { span.muted { "no" } } }
                                td { @if c.active { (layout::badge(picket_shared::db::State::Up)) } @else { (layout::badge(picket_shared::db::State::Paused)) } }
                                td {
                                    div.row {
                                        (test_button(session, c.id))
                                        a.button href={ "/channels/" (c.id) "/edit" } { "Edit" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        },
    )
}

fn test_button(session: &Session, id: i64) -> Markup {
    html! {
        form method="post" action={ "/channels/" (id) "/test" } style="margin:0" {
            input type="hidden" name="csrf" value=(session.csrf);
            button type="submit" { "Send a test" }
        }
    }
}

pub async fn list(State(st): State<AppState>, Viewer(session): Viewer) -> PageResult {
    let channels = st.0.db.channels().await?;
    Ok(list_markup(&session, &channels, None).into_response())
}

async fn load(st: &AppState, raw: &str) -> Result<Channel, PageError> {
    let id: i64 = raw
        .parse()
        .map_err(|_| PageError(StatusCode::NOT_FOUND, format!("no channel '{raw}'")))?;
    st.0.db
        .channel(id)
        .await?
        .ok_or_else(|| PageError(StatusCode::NOT_FOUND, format!("channel {id} not found")))
}

/// Sends a test now and shows what the receiver answered.
pub async fn test(
    State(st): State<AppState>,
    Viewer(session): Viewer,
    Path(raw): Path<String>,
    Form(f): Form<CsrfForm>,
) -> PageResult {
    check_csrf(&session, Some(&f.csrf))?;
    let c = load(&st, &raw).await?;
    let notice = match send_test(&st, &c).await {
        Ok(line) => (true, format!("Test sent to {}: {line}", c.name)),
        Err(e) => (false, format!("The test to {} failed: {}", c.name, e.msg)),
    };
    let channels = st.0.db.channels().await?;
    Ok(list_markup(&session, &channels, Some(notice)).into_response())
}

pub async fn page(
    State(st): State<AppState>,
    Viewer(session): Viewer,
    Path(raw): Path<String>,
) -> PageResult {
    let c = load(&st, &raw).await?;
    let deliveries = st.0.db.deliveries(c.id, DELIVERIES_SHOWN).await?;
    let body = html! {
        div.row.spread {
            div {
                h1 style="margin-bottom:4px" { (c.name) }
                p.muted { (c.kind) @if c.is_default { " · linked to new monitors" } @if !c.active { " · off" } }
            }
            div.row {
                (test_button(&session, c.id))
                a.button href={ "/channels/" (c.id) "/edit" } { "Edit" }
                a.button.danger href={ "/channels/" (c.id) "/delete" } { "Delete" }
            }
        }
        h2 { "Recent deliveries" }
        @if deliveries.is_empty() {
            p.muted { "Nothing sent yet." }
        } @else {
            table.list {
                thead { tr { th { "Created" } th { "Event" } th { "Monitor" } th { "State" } th.opt { "Attempts" } th { "Last error" } } }
                tbody {
                    @for d in &deliveries {
                        tr {
                            td.num { time datetime=(iso(d.created_at)) { (human(d.created_at)) } }
                            td { (d.event) }
                            td { a href={ "/monitors/" (d.monitor_id) } { "#" (d.monitor_id) } }
                            td { (d.status) }
                            td.num.opt { (d.attempts) }
                            td { (d.last_error.as_deref().unwrap_or("")) }
                        }
                    }
                }
            }
        }
    };
    Ok(layout::page(&c.name, &session, Nav::Channels, body).into_response())
}

/// What the form shows.
struct Values {
    name: String,
    is_default: bool,
    active: bool,
    rate: String,
    /// The provider's settings (secrets masked).
    config: Map<String, Value>,
}

impl Values {
    fn of(c: &Channel) -> Values {
        Values {
            name: c.name.clone(),
            is_default: c.is_default,
            active: c.active,
            rate: c.rate_per_minute.to_string(),
            config: match providers::masked(&c.kind, &c.config) {
                Value::Object(m) => m,
                _ => Map::new(),
            },
        }
    }
}

fn form_markup(
    session: &Session,
    id: Option<i64>,
    kind: &str,
    v: &Values,
    errors: &[FieldError],
) -> Markup {
    let spec = providers::spec(kind);
    let required: &[&str] = spec.map_or(&[], |s| s.required);
    let secrets: &[&str] = spec.map_or(&[], |s| s.secrets);
    let others: Map<String, Value> = v
        .config
        .iter()
        .filter(|(k, _)| !required.contains(&k.as_str()))
        .map(|(k, val)| (k.clone(), val.clone()))
        .collect();
    let extra = if others.is_empty() {
        String::new()
    } else {
        serde_json::to_string_pretty(&Value::Object(others)).unwrap_or_default()
    };
    let (title, action, base) = match id {
        Some(id) => (
            "Edit channel".to_owned(),
            format!("/channels/{id}/edit"),
            format!("/channels/{id}/edit?type="),
        ),
        None => (
            "New channel".to_owned(),
            "/channels/new".to_owned(),
            "/channels/new?type=".to_owned(),
        ),
    };
    let known: Vec<String> = ["name", "type", "ratePerMinute", "config"]
        .iter()
        .map(|s| (*s).to_owned())
        .chain(required.iter().map(|k| cfg_field(k)))
        .collect();
    let stray: Vec<&FieldError> = errors
        .iter()
        .filter(|e| !known.contains(&e.field))
        .collect();
    let invalid = |f: &str| errors.iter().any(|e| e.field == f).then_some("true");
    layout::page(
        &title,
        session,
        Nav::Channels,
        html! {
            h1 { (title) }
            @if !errors.is_empty() {
                div.alert.error role="alert" {
                    "Nothing was saved: " (errors.len()) " field" @if errors.len() > 1 { "s need" } @else { " needs" } " attention."
                    @for e in &stray { div { (e.field) ": " (e.msg) } }
                }
            }
            nav.tabs aria-label="Provider" {
                @for s in providers::ALL {
                    a href={ (base) (s.kind) } aria-current=[(s.kind == kind).then_some("page")] { (s.kind) }
                }
            }
            form.panel method="post" action=(action) novalidate {
                input type="hidden" name="csrf" value=(session.csrf);
                input type="hidden" name="type" value=(kind);
                label for="name" { "Name" }
                input #name type="text" name="name" value=(v.name) required aria-invalid=[invalid("name")];
                (layout::field_error(errors, "name"))
                @for key in required {
                    @let field = cfg_field(key);
                    @let value = v.config.get(*key).and_then(Value::as_str).unwrap_or("");
                    label for=(field) { (key) }
                    input id=(field) name=(field) value=(value) autocomplete="off"
                        type=(if secrets.contains(key) { "password" } else { "text" })
                        aria-invalid=[invalid(&field)];
                    @if secrets.contains(key) { div.hint { "Secret: shown masked; leave it as it is to keep the stored value." } }
                    (layout::field_error(errors, &field))
                }
                label for="extra" { "More settings (JSON)" }
                textarea #extra name="extra" placeholder="{\"timezone\": \"Europe/Berlin\"}" aria-invalid=[invalid("config")] { (extra) }
                div.hint { "Any other setting of this provider under Uptime Kuma's names, as a JSON object." }
                (layout::field_error(errors, "config"))
                div.grid2 {
                    div {
                        label for="ratePerMinute" { "Messages a minute before a digest" }
                        input #ratePerMinute type="text" inputmode="numeric" name="ratePerMinute" value=(v.rate) aria-invalid=[invalid("ratePerMinute")];
                        div.hint { "0: no limit." }
                        (layout::field_error(errors, "ratePerMinute"))
                    }
                    div {
                        label.check { input type="checkbox" name="isDefault" checked[v.is_default]; "Link to new monitors" }
                        @if id.is_none() {
                            label.check { input type="checkbox" name="applyExisting"; "Also link to every existing monitor" }
                        }
                        label.check { input type="checkbox" name="active" checked[v.active]; "On" }
                    }
                }
                div.row {
                    button.primary type="submit" { "Save" }
                    a.button href=(id.map_or_else(|| "/channels".to_owned(), |id| format!("/channels/{id}"))) { "Cancel" }
                }
            }
        },
    )
}

#[derive(Deserialize, Default)]
pub struct KindQuery {
    #[serde(default, rename = "type")]
    kind: String,
}

fn chosen(kind: &str, fallback: &str) -> String {
    providers::spec(kind)
        .or_else(|| providers::spec(fallback))
        .map_or("webhook", |s| s.kind)
        .to_owned()
}

pub async fn new_page(Viewer(session): Viewer, Query(q): Query<KindQuery>) -> PageResult {
    let kind = chosen(&q.kind, "webhook");
    let v = Values {
        name: String::new(),
        is_default: false,
        active: true,
        rate: "10".into(),
        config: Map::new(),
    };
    Ok(form_markup(&session, None, &kind, &v, &[]).into_response())
}

pub async fn edit_page(
    State(st): State<AppState>,
    Viewer(session): Viewer,
    Path(raw): Path<String>,
    Query(q): Query<KindQuery>,
) -> PageResult {
    let c = load(&st, &raw).await?;
    let kind = chosen(&q.kind, &c.kind);
    Ok(form_markup(&session, Some(c.id), &kind, &Values::of(&c), &[]).into_response())
}

/// The submitted form as the API's JSON body, and the values to show again.
fn submitted(form: &[(String, String)]) -> (String, Value, Values, Vec<FieldError>) {
    let get = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.trim());
    let kind = chosen(get("type").unwrap_or(""), "");
    let mut errors = Vec::new();
    let mut config = match get("extra").filter(|s| !s.is_empty()) {
        None => Map::new(),
        Some(text) => match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(m)) => m,
            _ => {
                errors.push(FieldError::new(
                    "config",
                    "must be a JSON object, e.g. {\"timezone\": \"UTC\"}",
                ));
                Map::new()
            }
        },
    };
    for (k, v) in form {
        if let Some(key) = k.strip_prefix("config.") {
            config.insert(key.to_owned(), json!(v.trim()));
        }
    }
    let rate_text = get("ratePerMinute").unwrap_or("").to_owned();
    let rate = match rate_text.as_str() {
        "" => Value::Null,
        t => t
            .parse::<u64>()
            .map(Value::from)
            .unwrap_or_else(|_| json!(t)),
    };
    let body = json!({
        "name": get("name").unwrap_or(""),
        "type": kind,
        "config": config.clone(),
        "isDefault": get("isDefault").is_some(),
        "applyExisting": get("applyExisting").is_some(),
        "active": get("active").is_some(),
        "ratePerMinute": rate,
    });
    let shown = Values {
        name: get("name").unwrap_or("").to_owned(),
        is_default: get("isDefault").is_some(),
        active: get("active").is_some(),
        rate: rate_text,
        config,
    };
    (kind, body, shown, errors)
}

pub async fn create(
    State(st): State<AppState>,
    Viewer(session): Viewer,
    Form(form): Form<Vec<(String, String)>>,
) -> PageResult {
    save(st, session, None, form).await
}

pub async fn update(
    State(st): State<AppState>,
    Viewer(session): Viewer,
    Path(raw): Path<String>,
    Form(form): Form<Vec<(String, String)>>,
) -> PageResult {
    save(st, session, Some(raw), form).await
}

async fn save(
    st: AppState,
    session: Session,
    raw: Option<String>,
    form: Vec<(String, String)>,
) -> PageResult {
    let token = form
        .iter()
        .find(|(k, _)| k == "csrf")
        .map(|(_, v)| v.as_str());
    check_csrf(&session, token)?;
    let old = match &raw {
        Some(r) => Some(load(&st, r).await?),
        None => None,
    };
    let (kind, body, shown, mut errors) = submitted(&form);
    if errors.is_empty() {
        match input(body, old.as_ref()) {
            Err(e) => errors = e.errors,
            Ok(ch) => {
                let saved = match &old {
                    Some(o) => st.0.db.update_channel(o.id, &ch).await?,
                    None => st.0.db.create_channel(&ch).await?,
                };
                tracing::info!(notification = saved.id, provider = %saved.kind, "notification channel saved");
                return Ok(see_other(&format!("/channels/{}", saved.id)));
            }
        }
    }
    let body = form_markup(&session, old.as_ref().map(|o| o.id), &kind, &shown, &errors);
    Ok((StatusCode::BAD_REQUEST, body).into_response())
}

pub async fn delete_page(
    State(st): State<AppState>,
    Viewer(session): Viewer,
    Path(raw): Path<String>,
) -> PageResult {
    let c = load(&st, &raw).await?;
    let body = layout::confirm_delete(
        &session,
        Nav::Channels,
        &c.name,
        "Monitors linked to it stop notifying it, and its delivery history goes with it.",
        &format!("/channels/{}", c.id),
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
    let c = load(&st, &raw).await?;
    st.0.db.delete_channel(c.id).await?;
    tracing::info!(notification = c.id, "notification channel deleted");
    Ok(see_other("/channels"))
}
