//! Real nodes: in this process ([`spawn_node`]) or as `picket-node`
//! processes ([`NodeProc`]) that a test can kill outright.

use crate::net::client;
use crate::{TOKEN, WAIT, eventually};
use picket_node::Node;
use picket_shared::config::{NodeConfig, parse_with_file};
use std::ffi::OsString;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use tokio::net::TcpListener;

/// Node settings for process tests: short enough to keep tests quick.
pub const RECONCILE_MS: u64 = 200;
pub const NODE_LEASE_SECS: u64 = 3;
pub const NOTIFY_CLAIM_SECS: u64 = 3;

/// Starts a node named `id` on `db_url` with short intervals allowed.
pub async fn spawn_node(db_url: &str, id: &str, extra: &[&str]) -> Node {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let host = listener.local_addr().unwrap().to_string();
    let mut args: Vec<OsString> = [
        "picket-node",
        "--database-url",
        db_url,
        "--node-id",
        id,
        "--node-host",
        &host,
        "--api-token",
        TOKEN,
        "--min-interval-secs",
        "1",
        "--reconcile-ms",
        "200",
        "--heartbeat-flush-ms",
        "100",
    ]
    .iter()
    .map(OsString::from)
    .collect();
    args.extend(extra.iter().map(OsString::from));
    let cfg: NodeConfig = parse_with_file(args).unwrap();
    cfg.validate().unwrap();
    Node::start(cfg, listener).await.unwrap()
}

/// The `picket-node` binary beside the running test or benchmark, built
/// first when it is not there yet.
pub fn node_bin() -> PathBuf {
    workspace_bin("picket-node")
}

/// A binary of this workspace in the target directory of the running test,
/// built first (same profile) when it is not there yet.
pub fn workspace_bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap();
    let bin = dir.join(name);
    if !bin.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut args = vec!["build", "-p", name, "--bin", name];
        if dir.ends_with("release") {
            args.push("--release");
        }
        let ok = Command::new(cargo).args(args).status().unwrap();
        assert!(ok.success(), "building {name}");
    }
    bin
}

/// A `picket-node` process; SIGKILLed on drop.
pub struct NodeProc {
    pub id: String,
    pub port: u16,
    pub child: Child,
}

impl NodeProc {
    pub fn start(db_url: &str, id: &str, port: u16) -> NodeProc {
        let listen = format!("127.0.0.1:{port}");
        let child = Command::new(node_bin())
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("DATABASE_URL", db_url)
            .env("PICKET_NODE_ID", id)
            .env("PICKET_NODE_HOST", &listen)
            .env("PICKET_LISTEN", &listen)
            .env("PICKET_API_TOKEN", TOKEN)
            .env("PICKET_MIN_INTERVAL_SECS", "1")
            .env("PICKET_LEASE_TTL_SECS", NODE_LEASE_SECS.to_string())
            .env("PICKET_RECONCILE_MS", RECONCILE_MS.to_string())
            .env("PICKET_HEARTBEAT_FLUSH_MS", "100")
            // A node killed mid-delivery leaves it to another within seconds.
            .env("PICKET_NOTIFY_CLAIM_SECS", NOTIFY_CLAIM_SECS.to_string())
            .env("PICKET_NOTIFY_RETRY_SECS", "1")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        NodeProc {
            id: id.into(),
            port,
            child,
        }
    }

    pub async fn ready(&self) {
        let url = format!("http://127.0.0.1:{}/api/v1/health", self.port);
        eventually(
            WAIT,
            &format!("{} answers its health check", self.id),
            || async {
                client()
                    .get(&url)
                    .send()
                    .await
                    .is_ok_and(|r| r.status() == 200)
            },
        )
        .await;
    }

    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
    }
}

impl Drop for NodeProc {
    fn drop(&mut self) {
        // A stopped process is woken so the kill is not left pending.
        let _ = Command::new("kill")
            .args(["-CONT", &self.child.id().to_string()])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
