//! A notification receiver: an HTTP server on 127.0.0.1 that records every
//! request a provider sends (method, path, headers, body) and answers with
//! the responses the test queued (then 200). It stands in for Slack,
//! Telegram, a webhook, … — whatever the channel's URL points at.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

/// One request as received.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    /// Path and query.
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// What it was answered (0: never answered).
    pub status: u16,
    /// When it arrived.
    pub at: std::time::Instant,
}

impl Received {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// A queued answer.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    /// Never answer (the request is recorded, the sender left waiting).
    pub hang: bool,
}

impl Answer {
    pub fn status(status: u16) -> Answer {
        Answer {
            status,
            headers: Vec::new(),
            hang: false,
        }
    }

    /// Records the request and never answers it.
    pub fn hang() -> Answer {
        Answer {
            hang: true,
            ..Answer::status(200)
        }
    }
    pub fn with(mut self, name: &'static str, value: impl Into<String>) -> Answer {
        self.headers.push((name, value.into()));
        self
    }
}

#[derive(Default)]
struct St {
    got: Mutex<Vec<Received>>,
    answers: Mutex<VecDeque<Answer>>,
}

/// A running receiver; stops when dropped.
pub struct Receiver {
    pub addr: SocketAddr,
    st: Arc<St>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Receiver {
    pub async fn start() -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let st = Arc::new(St::default());
        let app = Router::new().fallback(record).with_state(st.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Receiver { addr, st, task }
    }

    /// The URL of `path` on this receiver.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Answers the next requests with these, in order (then 200).
    pub fn answer(&self, answers: impl IntoIterator<Item = Answer>) {
        self.st.answers.lock().unwrap().extend(answers);
    }

    /// Every request so far, oldest first.
    pub fn received(&self) -> Vec<Received> {
        self.st.got.lock().unwrap().clone()
    }

    /// The requests answered 2xx.
    pub fn accepted(&self) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|r| (200..300).contains(&r.status))
            .collect()
    }
}

async fn record(State(st): State<Arc<St>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, 64 << 20)
        .await
        .unwrap_or_default();
    let answer = st
        .answers
        .lock()
        .unwrap()
        .pop_front()
        .unwrap_or(Answer::status(200));
    st.got.lock().unwrap().push(Received {
        method: parts.method.to_string(),
        path: parts
            .uri
            .path_and_query()
            .map(|p| p.to_string())
            .unwrap_or_default(),
        headers: parts.headers,
        body,
        status: if answer.hang { 0 } else { answer.status },
        at: std::time::Instant::now(),
    });
    if answer.hang {
        std::future::pending::<()>().await;
    }
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::OK);
    let mut resp = (status, "ok").into_response();
    for (k, v) in answer.headers {
        if let Ok(v) = v.parse() {
            resp.headers_mut().insert(k, v);
        }
    }
    resp
}
