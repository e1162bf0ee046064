//! The page shell and the pieces every page uses: the header with its
//! navigation, the status badge (a word and a symbol, never colour alone)
//! and the beat bar.

use maud::{DOCTYPE, Markup, html};
use picket_shared::VERSION;
use picket_shared::db::{Session, State};
use picket_shared::model::{Heartbeat, Status};

/// Where a page sits in the navigation.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    Dashboard,
    NewMonitor,
    Cluster,
    Channels,
    Keys,
    Account,
    None,
}

fn head(title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            meta name="color-scheme" content="light dark";
            title { (title) " · Picket" }
            link rel="stylesheet" href={ "/static/app.css?v=" (VERSION) };
            script src={ "/static/app.js?v=" (VERSION) } defer {}
        }
    }
}

/// A page for someone logged in.
pub fn page(title: &str, session: &Session, nav: Nav, body: Markup) -> Markup {
    let current = |n: Nav| if n == nav { Some("page") } else { None };
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    a.brand href="/" { "◉ " span { "Picket" } }
                    nav aria-label="Main" {
                        a href="/" aria-current=[current(Nav::Dashboard)] { "Dashboard" }
                        a href="/monitors/new" aria-current=[current(Nav::NewMonitor)] { "New monitor" }
                        a href="/channels" aria-current=[current(Nav::Channels)] { "Notifications" }
                        a href="/cluster" aria-current=[current(Nav::Cluster)] { "Cluster" }
                        a href="/keys" aria-current=[current(Nav::Keys)] { "API keys" }
                    }
                    div.who {
                        button #theme-toggle type="button" hidden title="Switch between light and dark" { "◐ Theme" }
                        a href="/account" aria-current=[current(Nav::Account)] { (session.username) }
                        form method="post" action="/logout" {
                            input type="hidden" name="csrf" value=(session.csrf);
                            button.link type="submit" { "Log out" }
                        }
                    }
                }
                main #main { (body) }
            }
        }
    }
}

/// A page with no navigation: setup, login, errors.
pub fn bare(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body {
                main.narrow #main {
                    p { a.brand href="/" style="font-weight:700;font-size:20px;text-decoration:none" { "◉ Picket" } }
                    div.panel { (body) }
                }
            }
        }
    }
}

/// The page that asks before deleting `name` at `base` (`/monitors/3`): what
/// goes with it, the form that deletes (POST `{base}/delete`), and the way
/// back.
pub fn confirm_delete(session: &Session, nav: Nav, name: &str, goes: &str, base: &str) -> Markup {
    page(
        &format!("Delete {name}"),
        session,
        nav,
        html! {
            h1 { "Delete " (name) "?" }
            div.panel style="max-width:560px" {
                p { (goes) " This cannot be undone." }
                div.row {
                    form method="post" action={ (base) "/delete" } style="margin:0" {
                        input type="hidden" name="csrf" value=(session.csrf);
                        button.danger type="submit" { "Delete " (name) }
                    }
                    a.button href=(base) { "Cancel" }
                }
            }
        },
    )
}

/// A monitor's tags as small labels (`name: value`), each in its colour.
pub fn tag_chips(tags: &[picket_shared::db::MonitorTag]) -> Markup {
    html! {
        span.tags {
            @for t in tags {
                a.tag href={ "/?tag=" (super::encode(&t.name)) } style={ "--tag:" (t.color) } {
                    (t.name) @if !t.value.is_empty() { ": " (t.value) }
                }
            }
        }
    }
}

/// A state's badge: symbol and word.
pub fn badge(state: State) -> Markup {
    let word = match state {
        State::Up => "✓ Up",
        State::Down => "✕ Down",
        State::Pending => "… Pending",
        State::Maintenance => "◆ Maintenance",
        State::Paused => "‖ Paused",
    };
    html! { span class={ "st st-" (state.as_str()) } { (word) } }
}

/// The state a beat's status shows as.
pub fn beat_state(s: Status) -> State {
    State::of(true, Some(s))
}

/// The last beats as a bar, oldest left; each beat's time, status, response
/// time and message in its tooltip.
pub fn beat_bar(beats: &[Heartbeat], wide: bool) -> Markup {
    html! {
        div class=(if wide { "beats wide" } else { "beats" }) role="img"
            aria-label={ (beats.len()) " recent checks, "
                (beats.iter().filter(|b| b.status == Status::Down).count()) " down" } {
            @for b in beats {
                i class={ "b-" (beat_state(b.status).as_str()) }
                    title={ (super::clock(b.time)) " " (b.status.as_str().to_uppercase())
                        @if let Some(p) = b.ping { " " (p.round()) " ms" }
                        @if !b.msg.is_empty() { " — " (b.msg) } } {}
            }
        }
    }
}

/// A field's error, shown under it.
pub fn field_error(errors: &[picket_shared::monitor::FieldError], field: &str) -> Markup {
    html! {
        @for e in errors.iter().filter(|e| e.field == field) {
            div.field-error id={ "err-" (field) } { (e.msg) }
        }
    }
}

/// A percentage with two decimals, or a dash without data.
pub fn percent(f: Option<f64>) -> String {
    f.map_or_else(|| "–".into(), |f| format!("{:.2} %", f * 100.0))
}

/// Milliseconds, or a dash.
pub fn millis(f: Option<f64>) -> String {
    f.map_or_else(|| "–".into(), |f| format!("{} ms", f.round()))
}
