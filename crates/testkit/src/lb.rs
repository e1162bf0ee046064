//! Real balancers: in this process on a thread of their own ([`spawn_lb`])
//! or as `picket-lb` processes ([`LbProc`]); and [`Backend`], a stand-in
//! node that answers with its name.

use crate::net::{client, free_port};
use crate::node::workspace_bin;
use crate::{TOKEN, WAIT, eventually};
use axum::Router;
use axum::extract::Request;
use axum::response::IntoResponse;
use picket_lb::config::LbConfig;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The balancer's health-check interval in process tests, seconds.
pub const HC_SECS: u64 = 1;

/// A balancer running in this process on its own thread; stopped on drop.
pub struct LbHandle {
    pub addr: SocketAddr,
    stop: tokio::sync::watch::Sender<bool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl LbHandle {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// A POST to an admin endpoint, with the admin token.
    pub async fn post_admin(&self, path: &str) -> reqwest::Response {
        client()
            .post(self.url(path))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap()
    }

    /// Rebuilds the node view now (so tests need not wait for the refresh tick).
    pub async fn update_loads(&self) {
        let r = self.post_admin("/api/update-loads").await;
        assert_eq!(r.status(), 200, "update-loads: {}", r.text().await.unwrap());
    }

    pub async fn get_json(&self, path: &str) -> Value {
        let r = client().get(self.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        r.json().await.unwrap()
    }

    /// `(X-Routed-To, body)` of a GET through the balancer.
    pub async fn routed(&self, path: &str) -> (String, String) {
        let r = client().get(self.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        let node = r
            .headers()
            .get("x-routed-to")
            .expect("X-Routed-To on a proxied response")
            .to_str()
            .unwrap()
            .to_owned();
        (node, r.text().await.unwrap())
    }
}

impl Drop for LbHandle {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Starts a balancer against `db_url` with short intervals; `extra` are more
/// flags. Returns once `/health` answers.
pub async fn spawn_lb(db_url: &str, extra: &[&str]) -> LbHandle {
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let lb_id = format!("lb-{port}");
    // Defaults for tests; a flag in `extra` replaces its default. The health
    // checker stays out of the way unless a test sets its pace.
    let defaults: [(&str, &str); 11] = [
        ("--listen", &listen),
        ("--database-url", db_url),
        ("--api-token", TOKEN),
        ("--refresh-ms", "100"),
        ("--threads", "1"),
        ("--grace-period-secs", "0"),
        ("--connect-timeout-ms", "500"),
        ("--lb-id", &lb_id),
        ("--hc-interval-secs", "3600"),
        ("--lease-ttl-secs", "7200"),
        ("--log-format", "text"),
    ];
    let mut args = vec!["picket-lb"];
    for (flag, value) in defaults {
        if !extra.contains(&flag) {
            args.extend_from_slice(&[flag, value]);
        }
    }
    args.extend_from_slice(extra);
    let cfg = LbConfig::from_args(args).expect("config");
    cfg.validate().expect("valid config");
    let (tx, rx) = tokio::sync::watch::channel(false);
    let thread = std::thread::spawn(move || {
        picket_lb::run(cfg, Box::new(picket_lb::ChannelShutdown(rx)));
    });
    let h = LbHandle {
        addr: listen.parse().unwrap(),
        stop: tx,
        thread: Some(thread),
    };
    eventually(WAIT, "balancer answers /health", || async {
        client()
            .get(h.url("/health"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
    })
    .await;
    h
}

impl LbHandle {
    /// Waits for the cluster service's first (automatic) round, so that the
    /// rounds a test triggers are the only ones after it.
    pub async fn settled(&self) {
        eventually(WAIT, "the first cluster round", || async {
            self.get_json("/lb/health-status").await["rounds"].as_u64() >= Some(1)
        })
        .await;
    }
}

/// A stand-in node: answers every path with its name (and the headers it got,
/// as JSON, on `/echo-headers`), `/api/v1/health` with 200, and counts hits.
pub struct Backend {
    pub name: String,
    pub addr: SocketAddr,
    pub hits: Arc<AtomicUsize>,
    pub healthy: Arc<std::sync::atomic::AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Backend {
    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub async fn backend(name: &str) -> Backend {
    backend_on(name, "127.0.0.1:0".parse().unwrap()).await
}

pub async fn backend_on(name: &str, bind: SocketAddr) -> Backend {
    let listener = tokio::net::TcpListener::bind(bind).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let hits = Arc::new(AtomicUsize::new(0));
    let healthy = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let (n, h, ok) = (name.to_owned(), hits.clone(), healthy.clone());
    let app = Router::new().fallback(move |req: Request| {
        let (n, h, ok) = (n.clone(), h.clone(), ok.clone());
        async move {
            let path = req.uri().path().to_owned();
            if path == "/api/v1/health" {
                return if ok.load(Ordering::SeqCst) {
                    (axum::http::StatusCode::OK, "ok").into_response()
                } else {
                    (axum::http::StatusCode::SERVICE_UNAVAILABLE, "sick").into_response()
                };
            }
            h.fetch_add(1, Ordering::SeqCst);
            if path == "/echo-headers" {
                let headers: serde_json::Map<String, Value> = req
                    .headers()
                    .iter()
                    .map(|(k, v)| (k.to_string(), json!(v.to_str().unwrap_or(""))))
                    .collect();
                return axum::Json(json!({"node": n, "headers": headers})).into_response();
            }
            n.into_response()
        }
    });
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Backend {
        name: name.to_owned(),
        addr,
        hits,
        healthy,
        task,
    }
}

/// A `picket-lb` process; SIGKILLed on drop.
pub struct LbProc {
    pub url: String,
    pub child: Child,
}

impl LbProc {
    pub async fn start(db_url: &str, id: &str) -> LbProc {
        let port = free_port();
        let child = Command::new(workspace_bin("picket-lb"))
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("DATABASE_URL", db_url)
            .env("PICKET_LB_LISTEN", format!("127.0.0.1:{port}"))
            .env("PICKET_LB_ID", id)
            .env("PICKET_API_TOKEN", TOKEN)
            .env("PICKET_HC_INTERVAL_SECS", HC_SECS.to_string())
            .env("PICKET_HC_TIMEOUT_MS", "500")
            .env("PICKET_LB_LEASE_TTL_SECS", "2")
            .env("PICKET_LB_REFRESH_MS", "100")
            .env("PICKET_LB_THREADS", "1")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let p = LbProc {
            url: format!("http://127.0.0.1:{port}"),
            child,
        };
        eventually(WAIT, &format!("{id} is the leader"), || async {
            match client()
                .get(format!("{}/lb/health-status", p.url))
                .send()
                .await
            {
                Ok(r) => r.json::<Value>().await.is_ok_and(|j| j["leader"] == true),
                Err(_) => false,
            }
        })
        .await;
        p
    }
}

impl Drop for LbProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
