//! `dashboard`: one real `picket-node` process serving the dashboard over a
//! database holding N monitors (50,000 by default) with 30 beats each and a
//! day of per-minute aggregates for one of them. Measures the time and
//! bytes of the dashboard's first page, a filtered page and a monitor page;
//! the time from a beat being written to its arrival at connected event
//! streams; and the node's CPU with 0, 100 and 1,000 streams open while
//! beats flow at the rate N monitors at 60 s produce.
//!
//! cargo build --release -p picket-node -p picket-benches
//! ulimit -n 20000; ./target/release/dashboard --monitors 50000   # 1,000 streams need the descriptors

use anyhow::Context;
use clap::Parser;
use futures::StreamExt;
use picket_benches::{cpu_ticks, stop, wait_up};
use picket_shared::db::Db;
use picket_shared::model::{Heartbeat, Status};
use picket_shared::{MonitorId, NodeId, now_ms};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

#[derive(Parser, Debug)]
struct Args {
    #[arg(long, default_value_t = 50_000)]
    monitors: usize,
    #[arg(long, default_value = "target/release/picket-node")]
    node_bin: PathBuf,
    /// Requests per page measured (after 3 to warm up).
    #[arg(long, default_value_t = 30)]
    requests: usize,
    /// Seconds of CPU measurement per stream count.
    #[arg(long, default_value_t = 20)]
    window: u64,
    /// Keep the database in this directory (for a look at its queries).
    #[arg(long)]
    keep: Option<PathBuf>,
}

const GHOST: &str = "ghost";

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let a = Args::parse();
    let tmp = tempfile::tempdir()?;
    let dir = a.keep.clone().unwrap_or_else(|| tmp.path().to_owned());
    let url = format!("sqlite://{}?mode=rwc", dir.join("bench.db").display());
    let db = Db::open(&url, 4).await?;
    db.register_node(&NodeId::from(GHOST), GHOST, "127.0.0.1:1")
        .await?;
    let t = Instant::now();
    picket_testkit::monitors::bulk(&db, GHOST, "svc", a.monitors).await;
    seed(&db, a.monitors).await?;
    println!(
        "seeded {} monitors, {} beats, in {:.1} s",
        a.monitors,
        a.monitors * 30,
        t.elapsed().as_secs_f64()
    );
    let hash = picket_shared::accounts::hash_password("Bench-Password-1");
    let account = db
        .create_first_account("bench", &hash)
        .await?
        .context("account")?;
    let session = db.create_session(account).await?;
    let cookie = format!("picket_session={}", session.token);

    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let mut child = tokio::process::Command::new(&a.node_bin)
        .env("DATABASE_URL", &url)
        .env("PICKET_NODE_ID", "bench")
        .env("PICKET_NODE_HOST", format!("127.0.0.1:{port}"))
        .env("PICKET_LISTEN", format!("127.0.0.1:{port}"))
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("cannot start {}", a.node_bin.display()))?;
    let base = format!("http://127.0.0.1:{port}");
    wait_up(&base).await?;
    let pid = child.id().context("node pid")?;

    println!("\n| page | median | p95 | bytes |\n| --- | --- | --- | --- |");
    let http = reqwest::Client::new();
    for (label, path) in [
        ("dashboard, first page", "/".to_owned()),
        ("dashboard, status=down", "/?status=down".to_owned()),
        (
            "dashboard, search + type",
            "/?q=svc-0499&type=http".to_owned(),
        ),
        (
            "dashboard, page 500, by status",
            "/?sort=status&page=500".to_owned(),
        ),
        ("monitor page (24 h chart)", "/monitors/1".to_owned()),
        (
            "monitor page (30 d chart)",
            "/monitors/1?period=30d".to_owned(),
        ),
    ] {
        let mut times = Vec::new();
        let mut bytes = 0;
        for i in 0..a.requests + 3 {
            let t = Instant::now();
            let r = http
                .get(format!("{base}{path}"))
                .header("Cookie", &cookie)
                .send()
                .await?;
            anyhow::ensure!(r.status() == 200, "{path}: {}", r.status());
            bytes = r.bytes().await?.len();
            if i >= 3 {
                times.push(t.elapsed().as_secs_f64() * 1000.0);
            }
        }
        times.sort_by(f64::total_cmp);
        println!(
            "| {label} | {:.1} ms | {:.1} ms | {:.1} KB |",
            times[times.len() / 2],
            times[times.len() * 95 / 100],
            bytes as f64 / 1024.0
        );
    }

    // Beats at the rate the fleet produces (N / 60 s), in batches of a
    // tenth of a second, written by a node that owns them (the ghost).
    let running = Arc::new(AtomicBool::new(true));
    let writer = {
        let (db, running, n) = (db.clone(), running.clone(), a.monitors as i64);
        tokio::spawn(async move {
            let per_batch = (n / 600).max(1);
            let mut next = 0i64;
            let mut every = tokio::time::interval(Duration::from_millis(100));
            while running.load(Ordering::Relaxed) {
                every.tick().await;
                let now = now_ms();
                // Every monitor once a minute, the 50 the streams watch too.
                let mut beats = Vec::with_capacity(per_batch as usize);
                for _ in 0..per_batch {
                    next = next % n + 1;
                    beats.push(beat(next, now));
                }
                let _ = db.insert_heartbeats(&beats).await;
            }
        })
    };
    // The streams watch 50 monitors spread over the fleet, so their beats
    // come spread over the minute.
    let step = (a.monitors / 50).max(1);
    let page_ids: Vec<String> = (0..50).map(|i| (1 + i * step).to_string()).collect();
    let stream_url = format!("{base}/api/v1/events?monitors={}", page_ids.join(","));
    let latencies: Arc<Mutex<Vec<i64>>> = Arc::default();
    let mut streams = Vec::new();
    println!(
        "\n| event streams open | node CPU | beats written→received p50 | p99 |\n| --- | --- | --- | --- |"
    );
    for target in [0usize, 100, 1000] {
        while streams.len() < target {
            let measure = streams.len() < 20;
            let (c, u, lat) = (http.clone(), stream_url.clone(), latencies.clone());
            let cookie = cookie.clone();
            streams.push(tokio::spawn(async move {
                let Ok(r) = c.get(&u).header("Cookie", cookie).send().await else {
                    return;
                };
                let mut body = r.bytes_stream();
                let mut buf = String::new();
                while let Some(Ok(chunk)) = body.next().await {
                    if !measure {
                        continue;
                    }
                    let got = now_ms();
                    buf.push_str(&String::from_utf8_lossy(&chunk));
                    while let Some(end) = buf.find("\n\n") {
                        let ev: String = buf.drain(..end + 2).collect();
                        if let Some(data) = ev.lines().find_map(|l| l.strip_prefix("data: "))
                            && let Ok(v) = serde_json::from_str::<serde_json::Value>(data)
                            && let Some(t) = v["time"].as_i64()
                        {
                            lat.lock().await.push(got - t);
                        }
                    }
                }
            }));
        }
        tokio::time::sleep(Duration::from_secs(3)).await;
        latencies.lock().await.clear();
        let (c0, t0) = (cpu_ticks(pid), Instant::now());
        tokio::time::sleep(Duration::from_secs(a.window)).await;
        let cpu = (cpu_ticks(pid) - c0) as f64 / 100.0 / t0.elapsed().as_secs_f64();
        let mut l = latencies.lock().await.clone();
        l.sort_unstable();
        let q = |p: f64| {
            l.get(((l.len() as f64 - 1.0) * p) as usize)
                .map_or("–".into(), |v| format!("{v} ms"))
        };
        println!(
            "| {target} | {:.1} % of a core | {} | {} |",
            cpu * 100.0,
            q(0.5),
            q(0.99)
        );
    }
    running.store(false, Ordering::Relaxed);
    let _ = writer.await;
    for s in streams {
        s.abort();
    }
    stop(&mut child).await;
    Ok(())
}

fn beat(id: i64, now: i64) -> Heartbeat {
    Heartbeat {
        monitor_id: MonitorId(id),
        node_id: NodeId::from(GHOST),
        status: if id % 7 == 0 {
            Status::Down
        } else {
            Status::Up
        },
        time: now,
        ping: Some(20.0 + (id % 50) as f64),
        msg: "200 - OK".into(),
        important: false,
        duration: 60,
        retries: 0,
    }
}

/// 30 beats a monitor (one a minute) with their latest-beat rows, and
/// aggregates: a day of minutes for the first 1,000 monitors (the first
/// pages) and an hour of them for the rest, a day of hours for every
/// monitor. Written in bulk: the write path would take minutes for this
/// many.
async fn seed(db: &Db, n: usize) -> anyhow::Result<()> {
    let now = now_ms();
    let minute = 60_000;
    let mut tx = db.pool().begin().await?;
    let ids: Vec<usize> = (1..=n).collect();
    for chunk in ids.chunks(1_000) {
        let mut rows = Vec::with_capacity(chunk.len() * 30);
        let mut latest = Vec::with_capacity(chunk.len());
        for &id in chunk {
            for k in 0..30 {
                let status = i64::from(!(id % 7 == 0 && k >= 25));
                rows.push(format!(
                    "({id}, '{GHOST}', {status}, {}, {}, '200 - OK', 0, 60, 0)",
                    now - (30 - k) * minute,
                    20 + id % 50
                ));
            }
            let status = i64::from(id % 7 != 0);
            latest.push(format!(
                "({id}, {status}, {}, 25, '200 - OK', {})",
                now - minute,
                now - 5 * minute
            ));
        }
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO heartbeat (monitor_id, node_id, status, time, ping, msg, important, duration, retries) VALUES {}",
            rows.join(", ")
        )))
        .execute(&mut *tx)
        .await?;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO monitor_status (monitor_id, status, time, ping, msg, since) VALUES {}",
            latest.join(", ")
        )))
        .execute(&mut *tx)
        .await?;
    }
    // A day of minutes for the first 1,000 monitors, an hour for the rest.
    let start = now - now % minute;
    for id in 1..=n as i64 {
        let minutes = if id <= 1_000 { 1440 } else { 60 };
        let rows: Vec<String> = (0..minutes)
            .map(|k| format!("({id}, {}, 1, 0, {}, 1)", start - k * minute, 20 + (k % 30)))
            .collect();
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO stat_minute (monitor_id, ts, up, down, ping_sum, ping_count) VALUES {}",
            rows.join(", ")
        )))
        .execute(&mut *tx)
        .await?;
    }
    // A day of hours for every monitor, 30 days for monitor 1 (its chart).
    let hour = 60 * minute;
    let first = start - start % hour;
    for chunk in (1..=n as i64).collect::<Vec<_>>().chunks(1_000) {
        let rows: Vec<String> = chunk
            .iter()
            .flat_map(|&id| {
                let hours = if id == 1 { 720 } else { 25 };
                (0..hours).map(move |k| {
                    format!(
                        "({id}, {}, 60, 0, {}, 60)",
                        first - k * hour,
                        60 * (20 + k % 40)
                    )
                })
            })
            .collect();
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO stat_hour (monitor_id, ts, up, down, ping_sum, ping_count) VALUES {}",
            rows.join(", ")
        )))
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}
