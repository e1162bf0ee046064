//! `GET /api/v1/events`: Server-Sent Events of new beats, for the monitors
//! in `?monitors=1,2,3` (all without it). Each event is `beat` with the
//! heartbeat row id as its id, so a browser that reconnects (`Last-Event-ID`,
//! or `?lastEventId=`) gets the beats it missed from the node's memory; when
//! they are no longer there it gets `reset` and reloads. Keep-alive comments
//! hold idle connections open through the balancer.

use super::{ApiError, AppState};
use crate::live::LiveBeat;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde::Deserialize;
use std::collections::HashSet;
use std::convert::Infallible;
use std::time::Duration;

/// Most monitors one stream may name.
const MAX_MONITORS: usize = 1_000;

#[derive(Deserialize)]
pub struct EventsQuery {
    monitors: Option<String>,
    #[serde(rename = "lastEventId")]
    last_event_id: Option<String>,
}

fn event(b: &LiveBeat) -> Event {
    Event::default()
        .event("beat")
        .id(b.id.to_string())
        .data(&*b.json)
}

pub async fn stream(
    State(st): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<EventsQuery>,
) -> Result<Response, ApiError> {
    let only: Option<HashSet<i64>> = match q.monitors.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(list) => {
            let ids: Result<HashSet<i64>, _> = list.split(',').map(|s| s.trim().parse()).collect();
            match ids {
                Ok(ids) if ids.len() <= MAX_MONITORS => Some(ids),
                Ok(_) => {
                    return Err(ApiError::field(
                        StatusCode::BAD_REQUEST,
                        "monitors",
                        format!("names more than {MAX_MONITORS} monitors"),
                    ));
                }
                Err(_) => {
                    return Err(ApiError::field(
                        StatusCode::BAD_REQUEST,
                        "monitors",
                        "must be a comma-separated list of monitor ids",
                    ));
                }
            }
        }
    };
    let last = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or(q.last_event_id)
        .and_then(|s| s.trim().parse::<i64>().ok());
    let live = st.0.live.clone();
    // Subscribe before reading the ring, so nothing falls between the two.
    let sub = live.subscribe();
    let first: Vec<Event> = match last.map(|id| live.since(id)) {
        None => Vec::new(),
        Some(Some(missed)) => missed
            .iter()
            .filter(|b| only.as_ref().is_none_or(|s| s.contains(&b.monitor)))
            .map(event)
            .collect(),
        Some(None) => vec![Event::default().event("reset").data("{}")],
    };
    let replayed_up_to = last.unwrap_or(0);
    // `None`: the stream fell behind the broadcast.
    let beats = futures::stream::unfold(sub, |mut sub| async move {
        match sub.rx.recv().await {
            Ok(batch) => Some((Some(batch), sub)),
            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => Some((None, sub)),
            Err(tokio::sync::broadcast::error::RecvError::Closed) => None,
        }
    })
    .flat_map(move |item| {
        let events: Vec<Result<Event, Infallible>> = match item {
            // The stream fell behind: the page reloads rather than miss beats.
            None => vec![Ok(Event::default().event("reset").data("{}"))],
            Some(batch) => batch
                .of(only.as_ref())
                .into_iter()
                .filter(|b| b.id > replayed_up_to)
                .map(|b| Ok(event(b)))
                .collect(),
        };
        futures::stream::iter(events)
    });
    let stream = futures::stream::iter(first.into_iter().map(Ok))
        .chain(beats)
        .take_until(live.stopping.clone().cancelled_owned());
    let mut r = Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response();
    // Proxies that buffer by default (nginx) pass the stream through.
    r.headers_mut().insert(
        "x-accel-buffering",
        axum::http::HeaderValue::from_static("no"),
    );
    Ok(r)
}
