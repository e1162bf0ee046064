//! `picket-local`: one command for a working local cluster — a balancer and
//! three nodes on one embedded SQLite file under `./data/` — for trying Picket
//! out and for following the README's tour.
//!
//! Every member is a separate process running the real `picket-lb` /
//! `picket-node` code (this binary re-executes itself with a hidden `__lb` or
//! `__node` first argument), talking over real sockets. Ctrl-C (or SIGTERM)
//! stops them all gracefully. A second run reuses the data and the admin token.

use anyhow::{Context, bail};
use clap::Parser;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::ffi::OsString;
use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::time::Duration;
use tokio::process::{Child, Command};

#[derive(Debug, Parser)]
#[command(
    name = "picket-local",
    version,
    about = "Start a local Picket cluster: a balancer and N nodes on SQLite"
)]
struct Args {
    /// Directory for the SQLite database, logs, pid files and the admin token.
    #[arg(long, default_value = "data")]
    data_dir: PathBuf,
    /// How many nodes to start.
    #[arg(long, default_value_t = 3)]
    nodes: u16,
    /// Where the balancer listens.
    #[arg(long, default_value = "127.0.0.1:8084")]
    lb_listen: SocketAddr,
    /// Port of the first node; the others follow it. 0 picks free ports.
    #[arg(long, default_value_t = 3001)]
    first_node_port: u16,
    /// Balancer health-check interval in seconds (3 misses take a node offline).
    #[arg(long, default_value_t = 2)]
    hc_interval_secs: u64,
    /// Smallest monitor interval the nodes accept, in seconds.
    #[arg(long, default_value_t = 5)]
    min_interval_secs: u64,
}

/// The launcher's pid, given to each member.
const PARENT_ENV: &str = "PICKET_LOCAL_PARENT";

/// A member gets SIGTERM (a graceful stop) when the launcher dies, however it
/// dies, so a killed launcher leaves nothing running. If the launcher is
/// already gone, the member exits at once.
fn die_with_launcher() {
    if let Err(e) = nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGTERM) {
        eprintln!("picket-local: cannot follow the launcher's exit: {e}");
    }
    let launcher = std::env::var(PARENT_ENV)
        .ok()
        .and_then(|p| p.parse::<i32>().ok());
    if launcher.is_some_and(|p| nix::unistd::getppid().as_raw() != p) {
        std::process::exit(0);
    }
}

fn main() -> ExitCode {
    let mut args: Vec<OsString> = std::env::args_os().collect();
    match args.get(1).and_then(|a| a.to_str()) {
        Some("__node") => {
            die_with_launcher();
            args.splice(0..2, [OsString::from("picket-node")]);
            return picket_node::cli::main(args);
        }
        Some("__lb") => {
            die_with_launcher();
            args.splice(0..2, [OsString::from("picket-lb")]);
            return run_lb(args);
        }
        _ => {}
    }
    let args = Args::parse();
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("picket-local: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(supervise(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("picket-local: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The balancer's own `main`, on the given arguments.
fn run_lb(args: Vec<OsString>) -> ExitCode {
    use picket_shared::config::{EXIT_CONFIG, parse_args};
    let cfg: picket_lb::config::LbConfig = match parse_args(args) {
        Ok(c) => c,
        Err(code) => return code,
    };
    picket_shared::telemetry::init(cfg.log_format);
    if let Err(e) = cfg.validate() {
        eprintln!("configuration error:\n{e}");
        return ExitCode::from(EXIT_CONFIG as u8);
    }
    picket_lb::run(cfg, Box::new(pingora::server::UnixShutdownSignalWatch));
    ExitCode::SUCCESS
}

/// `println!` that ignores a closed stdout (the launcher must still stop its
/// members if whoever started it stopped reading).
macro_rules! say {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($t)*);
    }};
}

/// One member of the cluster.
struct Member {
    name: String,
    child: Child,
    log: PathBuf,
}

async fn supervise(args: Args) -> anyhow::Result<()> {
    let data = absolute(&args.data_dir)?;
    for sub in ["logs", "run"] {
        fs::create_dir_all(data.join(sub))
            .with_context(|| format!("cannot create {}", data.join(sub).display()))?;
    }
    let token = admin_token(&data)?;
    let db_url = format!("sqlite://{}?mode=rwc", data.join("picket.db").display());
    let exe = std::env::current_exe().context("cannot find this program's path")?;

    // Migrate once up front so the members do not race for it.
    let status = Command::new(&exe)
        .args(["__node", "migrate"])
        .env("DATABASE_URL", &db_url)
        .stderr(Stdio::null())
        .status()
        .await?;
    if !status.success() {
        bail!("migrating {db_url} failed");
    }

    let ports = node_ports(args.first_node_port, args.nodes)?;
    let mut members = Vec::new();
    for (i, port) in ports.iter().enumerate() {
        let id = format!("node{}", i + 1);
        let env = [
            ("DATABASE_URL", db_url.clone()),
            ("PICKET_NODE_ID", id.clone()),
            ("PICKET_NODE_HOST", format!("127.0.0.1:{port}")),
            ("PICKET_LISTEN", format!("127.0.0.1:{port}")),
            ("PICKET_API_TOKEN", token.clone()),
            (
                "PICKET_MIN_INTERVAL_SECS",
                args.min_interval_secs.to_string(),
            ),
        ];
        members.push(spawn(&exe, "__node", &id, &env, &data)?);
    }
    let lb_env = [
        ("DATABASE_URL", db_url.clone()),
        ("PICKET_LB_LISTEN", args.lb_listen.to_string()),
        ("PICKET_API_TOKEN", token.clone()),
        ("PICKET_HC_INTERVAL_SECS", args.hc_interval_secs.to_string()),
        (
            "PICKET_HC_TIMEOUT_MS",
            (args.hc_interval_secs * 500).min(2000).to_string(),
        ),
    ];
    members.push(spawn(&exe, "__lb", "lb", &lb_env, &data)?);

    let lb = format!("http://{}", args.lb_listen);
    if let Err(e) = wait_ready(&lb, args.nodes as usize, &mut members).await {
        stop_all(&mut members).await;
        return Err(e);
    }
    say!(
        "Picket local cluster is up ({} nodes, data in {})",
        args.nodes,
        data.display()
    );
    say!("  dashboard:   {lb}/   (first visit: create the admin account with the admin token)");
    say!("  balancer:    {lb}   (try {lb}/lb/health)");
    for (i, port) in ports.iter().enumerate() {
        let pid = members[i].child.id().unwrap_or(0);
        say!(
            "  node{}:       http://127.0.0.1:{port}   (pid {pid})",
            i + 1
        );
    }
    say!("  admin token: {token}");
    say!("  logs:        {}", data.join("logs").display());
    say!(
        "  e.g. curl -s -X POST {lb}/api/v1/monitors -H 'Authorization: Bearer {token}' \\\n         -d '{{\"name\":\"example\",\"type\":\"http\",\"url\":\"{lb}/health\",\"interval\":5}}'"
    );
    say!("Press Ctrl-C to stop.");

    wait_for_signal_or_exits(&mut members).await;
    say!("stopping…");
    stop_all(&mut members).await;
    say!("stopped");
    Ok(())
}

fn absolute(p: &Path) -> anyhow::Result<PathBuf> {
    Ok(if p.is_absolute() {
        p.to_owned()
    } else {
        std::env::current_dir()?.join(p)
    })
}

/// The admin token kept in `<data>/admin-token` (created on the first run).
fn admin_token(data: &Path) -> anyhow::Result<String> {
    let path = data.join("admin-token");
    if let Ok(t) = fs::read_to_string(&path) {
        let t = t.trim().to_owned();
        if !t.is_empty() {
            return Ok(t);
        }
    }
    let t = picket_shared::auth::generate_secret();
    fs::write(&path, format!("{t}\n"))
        .with_context(|| format!("cannot write {}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600))?;
    }
    Ok(t)
}

fn node_ports(first: u16, n: u16) -> anyhow::Result<Vec<u16>> {
    if first != 0 {
        return Ok((0..n).map(|i| first + i).collect());
    }
    // Ask the OS for free ports (held together so they differ).
    let held: Vec<std::net::TcpListener> = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<_, _>>()?;
    held.iter().map(|l| Ok(l.local_addr()?.port())).collect()
}

fn spawn(
    exe: &Path,
    role: &str,
    name: &str,
    env: &[(&str, String)],
    data: &Path,
) -> anyhow::Result<Member> {
    let log = data.join("logs").join(format!("{name}.log"));
    let out = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)?;
    let child = Command::new(exe)
        .arg(role)
        .env(PARENT_ENV, std::process::id().to_string())
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out)
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("cannot start {name}"))?;
    if let Some(pid) = child.id() {
        fs::write(
            data.join("run").join(format!("{name}.pid")),
            format!("{pid}\n"),
        )?;
    }
    Ok(Member {
        name: name.to_owned(),
        child,
        log,
    })
}

/// Waits until the balancer reports `nodes` online nodes; fails early if a
/// member exits.
async fn wait_ready(lb: &str, nodes: usize, members: &mut [Member]) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        for m in members.iter_mut() {
            if let Some(status) = m.child.try_wait()? {
                bail!(
                    "{} exited during start-up ({status}); see {}",
                    m.name,
                    m.log.display()
                );
            }
        }
        if let Ok(resp) = http.get(format!("{lb}/lb/health")).send().await
            && let Ok(v) = resp.json::<serde_json::Value>().await
        {
            let list = v.get("nodes").or_else(|| v.pointer("/data/nodes"));
            let online = list
                .and_then(|l| l.as_array())
                .map_or(0, |l| l.iter().filter(|n| n["status"] == "online").count());
            if online >= nodes {
                return Ok(());
            }
        }
        if tokio::time::Instant::now() > deadline {
            bail!("the cluster did not come up within 60 s; see the logs");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Returns on SIGINT/SIGTERM. A member that exits meanwhile is reported (the
/// rest keep running: that is how a node failure looks).
async fn wait_for_signal_or_exits(members: &mut [Member]) {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    let mut reported = vec![false; members.len()];
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => return,
            _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => return,
            _ = tick.tick() => {
                for (m, seen) in members.iter_mut().zip(reported.iter_mut()) {
                    if !*seen && let Ok(Some(status)) = m.child.try_wait() {
                        *seen = true;
                        say!("{} exited ({status})", m.name);
                    }
                }
            }
        }
    }
}

/// SIGTERM to every member (balancer first, so it stops routing), then wait;
/// whatever is still running after 10 s is killed.
async fn stop_all(members: &mut [Member]) {
    for m in members.iter().rev() {
        if let Some(pid) = m.child.id() {
            let _ = kill(Pid::from_raw(pid as i32), Signal::SIGTERM);
        }
    }
    for m in members.iter_mut() {
        match tokio::time::timeout(Duration::from_secs(10), m.child.wait()).await {
            Ok(_) => {}
            Err(_) => {
                eprintln!("{} did not stop in 10 s; killing it", m.name);
                let _ = m.child.kill().await;
            }
        }
    }
}
