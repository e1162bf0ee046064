//! A JSON client for a node's API (or the balancer in front of it), and
//! reading Prometheus text.

use crate::TOKEN;
use serde_json::Value;
use std::net::SocketAddr;

/// A JSON API client for one node.
#[derive(Clone)]
pub struct Api {
    pub base: String,
    pub http: reqwest::Client,
    pub token: Option<String>,
}

impl Api {
    pub fn new(addr: SocketAddr) -> Self {
        Self {
            base: format!("http://{addr}"),
            http: reqwest::Client::new(),
            token: Some(TOKEN.into()),
        }
    }

    pub fn without_token(&self) -> Self {
        Self {
            token: None,
            ..self.clone()
        }
    }

    pub async fn send(&self, method: &str, path: &str, body: Option<Vec<u8>>) -> (u16, Value) {
        let mut req = self
            .http
            .request(method.parse().unwrap(), format!("{}{path}", self.base));
        if let Some(t) = &self.token {
            req = req.header("Authorization", format!("Bearer {t}"));
        }
        if let Some(b) = body {
            req = req.header("content-type", "application/json").body(b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        let v = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, v)
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.send("GET", path, None).await
    }
    pub async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        self.send("POST", path, Some(body.to_string().into_bytes()))
            .await
    }
    pub async fn put(&self, path: &str, body: &Value) -> (u16, Value) {
        self.send("PUT", path, Some(body.to_string().into_bytes()))
            .await
    }

    /// Creates a monitor and returns its id, failing the test otherwise.
    pub async fn create_monitor(&self, body: Value) -> i64 {
        let (status, v) = self.post("/api/v1/monitors", &body).await;
        assert_eq!(status, 201, "create {body}: {v}");
        v["data"]["id"].as_i64().unwrap()
    }

    pub async fn heartbeats(&self, id: i64) -> Vec<Value> {
        let (status, v) = self.get(&format!("/api/v1/monitors/{id}/heartbeats")).await;
        assert_eq!(status, 200, "{v}");
        v["data"].as_array().cloned().unwrap_or_default()
    }
}

/// The Prometheus text a server exposes at `base` + `/metrics` (`base` as
/// `http://host:port`).
pub async fn scrape(base: &str) -> String {
    let url = format!("{}/metrics", base.trim_end_matches('/'));
    let r = crate::net::client().get(&url).send().await;
    let r = r.unwrap_or_else(|e| panic!("GET {url}: {e}"));
    r.text().await.unwrap_or_else(|e| panic!("GET {url}: {e}"))
}

/// The value of one exact series (`name{labels}` as exposed, labels in
/// the exposition's order), if it is there.
pub fn metric_value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

/// Sum of a counter family's samples in a Prometheus text exposition.
pub fn metric_sum(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}
