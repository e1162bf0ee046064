//! The README's local-cluster command, run as a user would: the cluster comes
//! up, a monitor created through the balancer is checked, Ctrl-C stops every
//! process and frees every port, and a second run finds the same data.

use picket_testkit::eventually;
use picket_testkit::farm::Farm;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const EXE: &str = env!("CARGO_BIN_EXE_picket-local");

/// The command the README gives for the local cluster.
fn readme_command() -> String {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let mut lines = readme
        .lines()
        .skip_while(|l| !l.contains("<!-- cluster-command -->"));
    lines
        .nth(2)
        .expect("README has a cluster command")
        .trim()
        .to_owned()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Cluster {
    child: Child,
    lb: String,
    token: String,
    node_ports: Vec<u16>,
}

/// Starts `picket-local` with the README's arguments plus test ports, and waits
/// for its "Press Ctrl-C" line.
fn start(data: &Path, lb_port: u16) -> Cluster {
    let cmd = readme_command();
    let readme_args: Vec<&str> = cmd
        .strip_prefix("cargo run --release -p picket-local")
        .unwrap_or_else(|| panic!("unexpected README command: {cmd}"))
        .split_whitespace()
        .filter(|a| *a != "--")
        .collect();
    let mut child = Command::new(EXE)
        .args(readme_args)
        .args(["--data-dir", data.to_str().unwrap()])
        .args(["--lb-listen", &format!("127.0.0.1:{lb_port}")])
        .args([
            "--first-node-port",
            "0",
            "--hc-interval-secs",
            "1",
            "--min-interval-secs",
            "1",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut node_ports = Vec::new();
    let mut token = String::new();
    for line in stdout.by_ref() {
        let line = line.unwrap();
        if let Some(t) = line.trim().strip_prefix("admin token:") {
            token = t.trim().to_owned();
        }
        if line.trim_start().starts_with("node") && line.contains("http://127.0.0.1:") {
            let port = line
                .split("127.0.0.1:")
                .nth(1)
                .unwrap()
                .split_whitespace()
                .next()
                .unwrap();
            node_ports.push(port.parse().unwrap());
        }
        if line.contains("Press Ctrl-C") {
            break;
        }
    }
    // Keep draining what it prints next.
    std::thread::spawn(move || stdout.for_each(drop));
    assert!(!token.is_empty(), "the launcher printed the admin token");
    Cluster {
        child,
        lb: format!("http://127.0.0.1:{lb_port}"),
        token,
        node_ports,
    }
}

fn sigint(child: &Child) {
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

fn wait_exit(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "picket-local did not exit within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn alive(pid: i32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .unwrap_or_default()
            .contains(") Z ")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_cluster_runs_checks_and_stops_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let farm = Farm::start().await.unwrap();
    let http = reqwest::Client::new();
    let lb_port = free_port();
    let mut c = start(&data, lb_port);

    let health: Value = http
        .get(format!("{}/lb/health", c.lb))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let online = health["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["status"] == "online")
        .count();
    assert_eq!(online, 3, "{health}");

    let resp = http
        .post(format!("{}/api/v1/monitors", c.lb))
        .bearer_auth(&c.token)
        .json(&json!({"name": "tour", "type": "http", "url": farm.url("tour"), "interval": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    assert!(
        resp.headers().contains_key("x-routed-to"),
        "answered through the balancer"
    );
    let id = resp.json::<Value>().await.unwrap()["data"]["id"]
        .as_i64()
        .unwrap();
    let beats = eventually(Duration::from_secs(20), "heartbeats", || async {
        let v: Value = http
            .get(format!("{}/api/v1/monitors/{id}/heartbeats", c.lb))
            .bearer_auth(&c.token)
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        let n = v["data"].as_array()?.len();
        (n >= 2).then_some(n)
    })
    .await;
    assert!(beats >= 2 && farm.hit_count("tour") >= 2);

    let pids = member_pids(&data);
    assert_eq!(pids.len(), 4, "three nodes and the balancer");
    sigint(&c.child);
    let status = wait_exit(&mut c.child, Duration::from_secs(30));
    assert!(status.success(), "{status}");
    for pid in pids {
        assert!(!alive(pid), "process {pid} outlived the launcher");
    }
    for port in c.node_ports.iter().chain([&lb_port]) {
        assert!(
            TcpStream::connect(("127.0.0.1", *port)).is_err(),
            "port {port} still listening"
        );
    }

    // A second run reuses the data: same token, same monitor.
    let mut again = start(&data, free_port());
    assert_eq!(again.token, c.token);
    let v: Value = http
        .get(format!("{}/api/v1/monitors/{id}", again.lb))
        .bearer_auth(&again.token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["data"]["name"], "tour", "{v}");

    // Killed outright, the launcher still takes its members with it.
    let pids = member_pids(&data);
    assert_eq!(pids.len(), 4, "three nodes and the balancer");
    again.child.kill().unwrap();
    again.child.wait().unwrap();
    eventually(Duration::from_secs(30), "every member to stop", || async {
        pids.iter().all(|p| !alive(*p))
    })
    .await;
}

/// The pids the launcher recorded for its members.
fn member_pids(data: &Path) -> Vec<i32> {
    std::fs::read_dir(data.join("run"))
        .unwrap()
        .map(|e| {
            std::fs::read_to_string(e.unwrap().path())
                .unwrap()
                .trim()
                .parse()
                .unwrap()
        })
        .collect()
}
