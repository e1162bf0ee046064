//! The per-minute, per-hour and per-day uptime aggregates: added in the
//! heartbeat write's transaction, read for uptime figures.

use super::dialect::Set;
use super::{DAY_MS, Db, Result};
use crate::ids::{MonitorId, NodeId};
use crate::model::{Heartbeat, Uptime, WindowStats};
use sqlx::Row;
use std::collections::BTreeMap;

/// The aggregate tables and their bucket sizes.
pub(crate) const STAT_TABLES: [(&str, i64); 3] = [
    ("stat_minute", 60_000),
    ("stat_hour", 3_600_000),
    ("stat_day", DAY_MS),
];

/// The window each aggregate table serves in the uptime figures (Uptime
/// Kuma's 24 h, 7 d and 30 d).
const UPTIME_WINDOWS: [(&str, i64); 3] = [
    ("stat_minute", DAY_MS),
    ("stat_hour", 7 * DAY_MS),
    ("stat_day", 30 * DAY_MS),
];

/// One aggregate bucket to add.
#[derive(Debug, Clone, PartialEq)]
pub struct StatRow {
    pub monitor: MonitorId,
    /// The node that wrote the beats (the insert keeps the row only while it owns the monitor).
    pub node: NodeId,
    /// Bucket start, epoch ms (UTC).
    pub ts: i64,
    pub stats: WindowStats,
}

/// A row of summed buckets: `monitor_id, up, down, ps, pc`.
fn window_row(r: &sqlx::any::AnyRow) -> Result<(MonitorId, WindowStats)> {
    Ok((
        MonitorId(r.try_get("monitor_id")?),
        WindowStats {
            up: r.try_get("up")?,
            down: r.try_get("down")?,
            ping_sum: r.try_get::<Option<f64>, _>("ps")?.unwrap_or(0.0),
            ping_count: r.try_get("pc")?,
        },
    ))
}

/// `1,2,3`: ids are integers, so they are written into the statement.
fn id_csv(ids: &[MonitorId]) -> String {
    ids.iter()
        .map(|i| i.0.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

/// Folds beats into buckets of `bucket_ms` per monitor and node. Pure.
pub fn aggregate(beats: &[Heartbeat], bucket_ms: i64) -> Vec<StatRow> {
    let mut map: BTreeMap<(MonitorId, &NodeId, i64), WindowStats> = BTreeMap::new();
    for b in beats {
        let ts = b.time - b.time.rem_euclid(bucket_ms);
        map.entry((b.monitor_id, &b.node_id, ts))
            .or_default()
            .add(b.status, b.ping);
    }
    map.into_iter()
        .map(|((monitor, node, ts), stats)| StatRow {
            monitor,
            node: node.clone(),
            ts,
            stats,
        })
        .collect()
}

impl Db {
    /// Adds per-bucket counts to a stat table, for rows whose node owns the
    /// monitor, inside the caller's transaction.
    pub(crate) async fn add_stats(
        &self,
        c: &mut sqlx::AnyConnection,
        table: &str,
        rows: &[StatRow],
    ) -> Result<()> {
        let mut sql = format!(
            "INSERT INTO {table} (monitor_id, ts, up, down, ping_sum, ping_count) \
             SELECT v.m, v.t, v.u, v.d, v.ps, v.pc FROM ("
        );
        for i in 0..rows.len() {
            if i > 0 {
                sql.push_str(" UNION ALL ");
            }
            sql.push_str("SELECT ? AS m, ? AS n, ? AS t, ? AS u, ? AS d, ? AS ps, ? AS pc");
        }
        sql.push_str(") v JOIN monitor ON monitor.id = v.m AND monitor.owner = v.n WHERE 1 = 1");
        sql.push_str(&self.dialect().upsert(
            table,
            &["monitor_id", "ts"],
            &[
                Set::Add("up"),
                Set::Add("down"),
                Set::Add("ping_sum"),
                Set::Add("ping_count"),
            ],
            &[],
        ));
        let mut q = self.query_built(sql);
        for r in rows {
            q = q
                .bind(r.monitor.0)
                .bind(r.node.as_str())
                .bind(r.ts)
                .bind(r.stats.up)
                .bind(r.stats.down)
                .bind(r.stats.ping_sum)
                .bind(r.stats.ping_count);
        }
        q.execute(&mut *c).await?;
        Ok(())
    }

    /// Uptime figures of every monitor with any beat in the last 30 days, read
    /// from the aggregates (never from raw heartbeats). `only` limits it to one.
    pub async fn uptime(
        &self,
        now_ms: i64,
        only: Option<MonitorId>,
    ) -> Result<BTreeMap<MonitorId, Uptime>> {
        self.uptime_where(now_ms, only.map(|id| vec![id]).as_deref())
            .await
    }

    /// [`Db::uptime`] of the monitors in `ids` (a page of the dashboard).
    pub async fn uptime_of(
        &self,
        now_ms: i64,
        ids: &[MonitorId],
    ) -> Result<BTreeMap<MonitorId, Uptime>> {
        if ids.is_empty() {
            return Ok(BTreeMap::new());
        }
        self.uptime_where(now_ms, Some(ids)).await
    }

    async fn uptime_where(
        &self,
        now_ms: i64,
        ids: Option<&[MonitorId]>,
    ) -> Result<BTreeMap<MonitorId, Uptime>> {
        let mut out: BTreeMap<MonitorId, Uptime> = BTreeMap::new();
        for (table, span) in UPTIME_WINDOWS {
            for (id, w) in self.window_sums(table, now_ms - span, ids).await? {
                let u = out.entry(id).or_default();
                match table {
                    "stat_minute" => u.day = w,
                    "stat_hour" => u.week = w,
                    _ => u.month = w,
                }
            }
        }
        Ok(out)
    }

    /// The 24 h figures of the monitors in `ids` (a page of the dashboard),
    /// the same as [`Db::uptime`]'s `day` but read from fewer rows: the
    /// minutes before the first whole hour of the window, then hours (an
    /// hour's row holds exactly the sums of its minutes, written in the
    /// same transaction).
    pub async fn day_uptime_of(
        &self,
        now_ms: i64,
        ids: &[MonitorId],
    ) -> Result<BTreeMap<MonitorId, WindowStats>> {
        let mut out: BTreeMap<MonitorId, WindowStats> = BTreeMap::new();
        if ids.is_empty() {
            return Ok(out);
        }
        let hour = 3_600_000;
        let start = now_ms - DAY_MS;
        let first_hour = start + (hour - start.rem_euclid(hour)) % hour;
        let edge = self
            .window_sums_between("stat_minute", start, first_hour, ids)
            .await?;
        let hours = self
            .window_sums_between("stat_hour", first_hour, i64::MAX, ids)
            .await?;
        for (id, w) in edge.into_iter().chain(hours) {
            let e = out.entry(id).or_default();
            e.up += w.up;
            e.down += w.down;
            e.ping_sum += w.ping_sum;
            e.ping_count += w.ping_count;
        }
        Ok(out)
    }

    async fn window_sums_between(
        &self,
        table: &str,
        from: i64,
        to: i64,
        ids: &[MonitorId],
    ) -> Result<Vec<(MonitorId, WindowStats)>> {
        let d = self.dialect();
        let sql = format!(
            "SELECT monitor_id, {} AS up, {} AS down, SUM(ping_sum) AS ps, {} AS pc \
             FROM {table} WHERE ts >= ? AND ts < ? AND monitor_id IN ({}) GROUP BY monitor_id",
            d.sum_int("up"),
            d.sum_int("down"),
            d.sum_int("ping_count"),
            id_csv(ids)
        );
        self.query_built(sql)
            .bind(from)
            .bind(to)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(window_row)
            .collect()
    }

    /// One monitor's figures over the last 365 days (Uptime Kuma's 1 y).
    pub async fn uptime_year(&self, now_ms: i64, id: MonitorId) -> Result<WindowStats> {
        let sums = self
            .window_sums("stat_day", now_ms - 365 * DAY_MS, Some(&[id]))
            .await?;
        Ok(sums.into_iter().next().map(|(_, w)| w).unwrap_or_default())
    }

    /// Per monitor, the sums of `table`'s buckets from `since`.
    async fn window_sums(
        &self,
        table: &str,
        since: i64,
        ids: Option<&[MonitorId]>,
    ) -> Result<Vec<(MonitorId, WindowStats)>> {
        let d = self.dialect();
        let filter = match ids {
            Some(ids) => format!(" AND monitor_id IN ({})", id_csv(ids)),
            None => String::new(),
        };
        let sql = format!(
            "SELECT monitor_id, {} AS up, {} AS down, SUM(ping_sum) AS ps, {} AS pc \
             FROM {table} WHERE ts >= ?{filter} GROUP BY monitor_id",
            d.sum_int("up"),
            d.sum_int("down"),
            d.sum_int("ping_count")
        );
        self.query_built(sql)
            .bind(since)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(window_row)
            .collect()
    }

    /// One monitor's buckets from `since`, oldest first, from the finest
    /// aggregate that covers `span_ms` (minutes up to a day, hours up to a
    /// month, days beyond): what a response-time chart is drawn from.
    pub async fn stat_series(
        &self,
        id: MonitorId,
        since: i64,
        span_ms: i64,
    ) -> Result<Vec<(i64, WindowStats)>> {
        let table = if span_ms <= DAY_MS {
            "stat_minute"
        } else if span_ms <= 31 * DAY_MS {
            "stat_hour"
        } else {
            "stat_day"
        };
        self.query_built(format!(
            "SELECT ts, up, down, ping_sum, ping_count FROM {table} \
             WHERE monitor_id = ? AND ts >= ? ORDER BY ts"
        ))
        .bind(id.0)
        .bind(since)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| {
            Ok((
                r.try_get("ts")?,
                WindowStats {
                    up: r.try_get("up")?,
                    down: r.try_get("down")?,
                    ping_sum: r.try_get("ping_sum")?,
                    ping_count: r.try_get("ping_count")?,
                },
            ))
        })
        .collect()
    }
}
