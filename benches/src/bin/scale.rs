//! `scale`: one real `picket-node` process running N HTTP monitors at interval
//! I against the target farm, on SQLite or MariaDB. Reports planned vs
//! achieved checks/s, schedule lag, interval error seen by the farm, start-up
//! coverage, CPU per check, memory per monitor, and heartbeats written vs
//! checks executed.
//!
//! cargo build --release -p picket-node -p picket-benches
//! ./target/release/scale --monitors 10000 --interval 20 --duration 60 --db sqlite
//! ./target/release/scale --monitors 50000 --interval 20 --duration 20 --flip 1   # alert latency

use anyhow::{Context, bail};
use clap::Parser;
use picket_benches::{cpu_ticks, proc_status_kb, stop, wait_up};
use picket_shared::db::Db;
use picket_shared::{NodeId, now_ms};
use picket_testkit::farm::Farm;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

#[derive(Parser, Debug)]
struct Args {
    #[arg(long, default_value_t = 1000)]
    monitors: usize,
    /// Monitor interval, seconds.
    #[arg(long, default_value_t = 20)]
    interval: u64,
    /// Measurement window after start-up, seconds.
    #[arg(long, default_value_t = 60)]
    duration: u64,
    /// sqlite or mysql (the local MariaDB at 127.0.0.1:3306).
    #[arg(long, default_value = "sqlite")]
    db: String,
    #[arg(long, default_value = "target/release/picket-node")]
    node_bin: PathBuf,
    #[arg(long, default_value_t = 1024)]
    concurrency: usize,
    /// After the window: this percentage of the monitors' targets starts
    /// failing at once; measures the DOWN notices a webhook channel receives
    /// (latency from the failing check to the receiver, duplicates, losses).
    #[arg(long, default_value_t = 0.0)]
    flip: f64,
    /// The channel's `ratePerMinute` in the flip (0 = every event on its own).
    #[arg(long, default_value_t = 0)]
    rate: u32,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let a = Args::parse();
    let farm = Farm::start().await?;
    let tmp = tempfile::tempdir()?;
    let (url, mysql_name) = match a.db.as_str() {
        "sqlite" => (
            format!(
                "sqlite://{}?mode=rwc",
                tmp.path().join("bench.db").display()
            ),
            None,
        ),
        "mysql" => {
            let name = format!("picket_bench_{}", std::process::id());
            let admin = Db::connect("mysql://root@127.0.0.1:3306/", 1).await?;
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE `{name}`")))
                .execute(admin.pool())
                .await?;
            (format!("mysql://root@127.0.0.1:3306/{name}"), Some(name))
        }
        other => bail!("--db must be sqlite or mysql, not {other}"),
    };
    let db = Db::open(&url, 4).await?;
    let node = NodeId::from("bench");
    db.register_node(&node, "bench", "127.0.0.1:1").await?;

    // Baseline memory: the node with nothing to run.
    let base_rss = {
        let mut child = spawn_node(&a, &url).await?;
        wait_up(&child.1).await?;
        tokio::time::sleep(Duration::from_secs(2)).await;
        let rss = proc_status_kb(child.0.id().unwrap_or(0), "VmRSS:");
        stop(&mut child.0).await;
        rss
    };

    insert_monitors(&db, &farm, a.monitors, a.interval).await?;
    let started = Instant::now();
    let spawned_ms = now_ms();
    let (mut child, base) = spawn_node(&a, &url).await?;
    let pid = child.id().unwrap_or(0);
    wait_up(&base).await?;

    // Start-up coverage: every monitor checked at least once. Polled with a
    // cheap count, then timed from the farm's arrival times.
    let coverage_deadline = started + Duration::from_secs((a.interval * 3).min(120));
    let covered_after = loop {
        if farm.ids_hit() >= a.monitors {
            let last_first_ms = farm
                .all_hits()
                .values()
                .filter_map(|h| h.first().map(|h| h.at_ms))
                .max()
                .unwrap_or(spawned_ms);
            break Some(Duration::from_millis(
                (last_first_ms - spawned_ms).max(0) as u64
            ));
        }
        if Instant::now() > coverage_deadline {
            break None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // Let one full interval pass, then measure.
    // (capped, so a long interval measures the idle footprint instead)
    let warm = started + Duration::from_secs(a.interval.min(60) + 2);
    tokio::time::sleep_until(warm.into()).await;
    let http = reqwest::Client::new();
    let m0 = scrape(&http, &base).await?;
    let cpu0 = cpu_ticks(pid);
    let t0 = Instant::now();
    let window_start_ms = now_ms();
    tokio::time::sleep(Duration::from_secs(a.duration)).await;
    let m1 = scrape(&http, &base).await?;
    let cpu1 = cpu_ticks(pid);
    let window = t0.elapsed().as_secs_f64();
    let window_end_ms = now_ms();
    let peak_rss = proc_status_kb(pid, "VmHWM:");
    let steady_rss = proc_status_kb(pid, "VmRSS:");

    let alerts = if a.flip > 0.0 {
        Some(flip(&a, &db, &farm, pid).await?)
    } else {
        None
    };

    // Quiesce: pause every monitor, wait for the buffer to drain, compare.
    sqlx::query("UPDATE monitor SET active = 0, rev = 1000000")
        .execute(db.pool())
        .await?;
    sqlx::query("UPDATE revision SET rev = 1000000")
        .execute(db.pool())
        .await?;
    let drained = Instant::now();
    loop {
        let s: serde_json::Value = http
            .get(format!("{base}/api/v1/status"))
            .send()
            .await?
            .json()
            .await?;
        // Drained when every executed check is accounted for: written,
        // refused (no longer the owner) or dropped (buffer full).
        let m = scrape(&http, &base).await?;
        let accounted = m.sum("picket_heartbeats_written_total")
            + m.sum("picket_heartbeats_rejected_total")
            + m.sum("picket_heartbeats_dropped_total");
        if s["data"]["running_monitors"] == 0 && accounted == m.sum("picket_checks_total") {
            break;
        }
        if drained.elapsed() > Duration::from_secs(60) {
            bail!("the node did not drain: {s}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mf = scrape(&http, &base).await?;
    let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM heartbeat")
        .fetch_one(db.pool())
        .await?;
    stop(&mut child).await;

    // Interval error seen by the farm, inside the window.
    let mut errs: Vec<f64> = Vec::new();
    for hits in farm.all_hits().values() {
        let inside: Vec<i64> = hits
            .iter()
            .map(|h| h.at_ms)
            .filter(|t| (window_start_ms..window_end_ms).contains(t))
            .collect();
        errs.extend(
            inside
                .windows(2)
                .map(|w| ((w[1] - w[0]) as f64 - a.interval as f64 * 1000.0).abs()),
        );
    }
    errs.sort_by(f64::total_cmp);
    let pct = |v: &[f64], p: f64| {
        v.get(((v.len() as f64 - 1.0) * p) as usize)
            .copied()
            .unwrap_or(f64::NAN)
    };

    let checks = m1.sum("picket_checks_total") - m0.sum("picket_checks_total");
    let ticks = 100.0; // USER_HZ on Linux
    let cpu_s = (cpu1 - cpu0) as f64 / ticks;
    let lag = |p| m1.hist_quantile("picket_schedule_lag_seconds", &m0, p);
    let batches = m1.sum("picket_heartbeat_write_seconds_count")
        - m0.sum("picket_heartbeat_write_seconds_count");
    let batch_lat = (m1.sum("picket_heartbeat_write_seconds_sum")
        - m0.sum("picket_heartbeat_write_seconds_sum"))
        / batches.max(1.0);
    let batch_rows = (m1.sum("picket_heartbeats_written_total")
        - m0.sum("picket_heartbeats_written_total"))
        / batches.max(1.0);
    let executed = mf.sum("picket_checks_total");
    let written = mf.sum("picket_heartbeats_written_total");
    println!(
        "| {} | {} | {} s | {:.0} | {:.0} | {} | {:.0} / {:.0} ms | {:.0} / {:.0} / {:.0} ms | {:.0} % | {:.3} ms | {:.0} / {:.0} MiB | {:.2} / {:.2} KiB | {:.1} ms × {:.0}/s, {:.0} rows | {} / {} / {} (dropped {}) |",
        a.db,
        a.monitors,
        a.interval,
        a.monitors as f64 / a.interval as f64,
        checks / window,
        covered_after.map_or("not within 3 intervals".into(), |d| format!(
            "{:.1} s",
            d.as_secs_f64()
        )),
        lag(0.5) * 1000.0,
        lag(0.99) * 1000.0,
        pct(&errs, 0.5),
        pct(&errs, 0.99),
        errs.last().copied().unwrap_or(f64::NAN),
        cpu_s / window * 100.0,
        cpu_s / checks.max(1.0) * 1000.0,
        steady_rss as f64 / 1024.0,
        peak_rss as f64 / 1024.0,
        (steady_rss.saturating_sub(base_rss)) as f64 / a.monitors.max(1) as f64,
        (peak_rss.saturating_sub(base_rss)) as f64 / a.monitors.max(1) as f64,
        batch_lat * 1000.0,
        batches / window,
        batch_rows,
        executed,
        written,
        rows,
        mf.sum("picket_heartbeats_dropped_total")
    );
    if let Some(line) = alerts {
        println!("{line}");
    }
    if let Some(name) = mysql_name {
        let admin = Db::connect("mysql://root@127.0.0.1:3306/", 1).await?;
        sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE `{name}`")))
            .execute(admin.pool())
            .await?;
    }
    Ok(())
}

async fn spawn_node(a: &Args, url: &str) -> anyhow::Result<(tokio::process::Child, String)> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let child = tokio::process::Command::new(&a.node_bin)
        .env("DATABASE_URL", url)
        .env("PICKET_NODE_ID", "bench")
        .env("PICKET_NODE_HOST", format!("127.0.0.1:{port}"))
        .env("PICKET_LISTEN", format!("127.0.0.1:{port}"))
        .env("PICKET_MIN_INTERVAL_SECS", "1")
        .env("PICKET_MAX_CONCURRENT_CHECKS", a.concurrency.to_string())
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("cannot start {}", a.node_bin.display()))?;
    Ok((child, format!("http://127.0.0.1:{port}")))
}

/// The notification phase: a webhook channel on every monitor, then
/// `a.flip` % of the targets fail at once. Returns the summary line.
async fn flip(a: &Args, db: &Db, farm: &Farm, pid: u32) -> anyhow::Result<String> {
    use picket_shared::db::ChannelInput;
    use picket_testkit::farm::Behaviour;
    use picket_testkit::receiver::Receiver;
    let rx = Receiver::start().await;
    db.create_channel(&ChannelInput {
        name: "bench".into(),
        kind: "webhook".into(),
        config: serde_json::json!({"webhookURL": rx.url("/hook")}),
        is_default: false,
        active: true,
        rate_per_minute: a.rate,
        apply_existing: true,
    })
    .await?;
    let n = ((a.monitors as f64 * a.flip / 100.0).round() as usize).clamp(1, a.monitors);
    let step = a.monitors / n;
    let flipped: Vec<usize> = (0..n).map(|k| k * step).collect();
    let cpu0 = cpu_ticks(pid);
    let t_flip = Instant::now();
    for i in &flipped {
        farm.set(&i.to_string(), Behaviour::status(500));
    }
    // Every flipped monitor is checked within one interval; its notice
    // follows within a flush tick and a delivery pass (or the digest's minute).
    let deadline = t_flip + Duration::from_secs(a.interval + if a.rate > 0 { 90 } else { 30 });
    let names = |r: &picket_testkit::receiver::Received| -> Vec<String> {
        let b = r.json();
        match b["events"].as_array() {
            Some(ev) => ev
                .iter()
                .filter_map(|e| e["monitor"]["name"].as_str().map(str::to_owned))
                .collect(),
            None => b["monitor"]["name"]
                .as_str()
                .map(str::to_owned)
                .into_iter()
                .collect(),
        }
    };
    let done_after = loop {
        let told: std::collections::HashSet<String> =
            rx.accepted().iter().flat_map(names).collect();
        if told.len() >= n {
            break Some(t_flip.elapsed());
        }
        if Instant::now() > deadline {
            break None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let cpu1 = cpu_ticks(pid);
    // Per monitor: its first failing check (the farm's arrival) and its notice.
    let got = rx.accepted();
    let mut told: std::collections::HashMap<String, Vec<Instant>> = Default::default();
    for r in &got {
        for name in names(r) {
            told.entry(name).or_default().push(r.at);
        }
    }
    let mut lat: Vec<f64> = Vec::new();
    let (mut dup, mut lost) = (0, 0);
    for i in &flipped {
        let name = format!("m{i}");
        let first_fail = farm
            .hits(&i.to_string())
            .into_iter()
            .find(|h| h.at >= t_flip)
            .map(|h| h.at);
        match (told.get(&name), first_fail) {
            (Some(ts), Some(f)) => {
                dup += ts.len() - 1;
                lat.push(ts[0].saturating_duration_since(f).as_secs_f64() * 1000.0);
            }
            _ => lost += 1,
        }
    }
    for i in &flipped {
        farm.set(&i.to_string(), Behaviour::status(200));
    }
    lat.sort_by(f64::total_cmp);
    let q = |p: f64| {
        lat.get(((lat.len() as f64 - 1.0) * p) as usize)
            .copied()
            .unwrap_or(f64::NAN)
    };
    Ok(format!(
        "alerts: {n} flipped, rate {}/min: {} messages, {} told, dup {dup}, lost {lost}; check → receiver p50 {:.0} / p99 {:.0} / max {:.0} ms; all told {}; node CPU during it {:.1} s",
        a.rate,
        got.len(),
        told.len(),
        q(0.5),
        q(0.99),
        lat.last().copied().unwrap_or(f64::NAN),
        done_after.map_or("not within the deadline".into(), |d| format!(
            "{:.1} s after the flip",
            d.as_secs_f64()
        )),
        (cpu1 - cpu0) as f64 / 100.0,
    ))
}

async fn insert_monitors(db: &Db, farm: &Farm, n: usize, interval: u64) -> anyhow::Result<()> {
    let now = now_ms();
    let timeout_ms = (interval * 800).min(10_000);
    let mut tx = db.pool().begin().await?;
    for chunk in (0..n).collect::<Vec<_>>().chunks(500) {
        let mut sql = String::from(
            "INSERT INTO monitor (name, type, url, method, interval_secs, retry_interval_secs, maxretries, \
             timeout_ms, accepted_statuscodes, default_node_id, rev, created_at, modified_at) VALUES ",
        );
        let rows: Vec<String> = chunk
            .iter()
            .map(|i| {
                format!(
                    "('m{i}', 'http', '{}', 'GET', {interval}, {interval}, 0, {timeout_ms}, '[\"200-299\"]', 'bench', 1, {now}, {now})",
                    farm.url(&i.to_string())
                )
            })
            .collect();
        sql.push_str(&rows.join(", "));
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&mut *tx)
            .await?;
    }
    sqlx::query("UPDATE revision SET rev = 1")
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// A scraped Prometheus exposition.
struct Metrics(String);

impl Metrics {
    fn samples<'a>(&'a self, name: &'a str) -> impl Iterator<Item = (&'a str, f64)> + 'a {
        self.0
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(move |l| {
                let (series, value) = l.rsplit_once(' ')?;
                let rest = series.strip_prefix(name)?;
                if !(rest.is_empty() || rest.starts_with('{')) {
                    return None;
                }
                Some((rest, value.parse().ok()?))
            })
    }
    fn sum(&self, name: &str) -> f64 {
        self.samples(name).map(|(_, v)| v).sum()
    }
    /// A quantile from cumulative histogram bucket deltas (upper bound of the bucket).
    fn hist_quantile(&self, name: &str, before: &Metrics, q: f64) -> f64 {
        let bucket = format!("{name}_bucket");
        let le = |labels: &str| -> f64 {
            let v = labels
                .split("le=\"")
                .nth(1)
                .and_then(|s| s.split('"').next())
                .unwrap_or("+Inf");
            if v == "+Inf" {
                f64::INFINITY
            } else {
                v.parse().unwrap_or(f64::INFINITY)
            }
        };
        let now: Vec<(f64, f64)> = self.samples(&bucket).map(|(l, v)| (le(l), v)).collect();
        let then: Vec<(f64, f64)> = before.samples(&bucket).map(|(l, v)| (le(l), v)).collect();
        let deltas: Vec<(f64, f64)> = now
            .iter()
            .map(|(b, v)| {
                (
                    *b,
                    v - then.iter().find(|(b2, _)| b2 == b).map_or(0.0, |x| x.1),
                )
            })
            .collect();
        let total = deltas.last().map_or(0.0, |d| d.1);
        deltas
            .iter()
            .find(|(_, c)| *c >= q * total)
            .map_or(f64::NAN, |d| d.0)
    }
}

async fn scrape(http: &reqwest::Client, base: &str) -> anyhow::Result<Metrics> {
    Ok(Metrics(
        http.get(format!("{base}/metrics"))
            .send()
            .await?
            .text()
            .await?,
    ))
}
