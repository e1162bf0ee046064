//! What the dashboard reads, each in one query whatever the fleet's size:
//! every monitor's latest beat (kept by the heartbeat write, see
//! [`Db::keep_latest`]), the counts by state, one filtered and sorted page of
//! monitors, the last beats of the monitors on that page, and the beats
//! written after a cursor (the live stream's one query per tick).

use super::dialect::Set;
use super::heartbeats::heartbeat_from_row;
use super::monitors::{MONITOR_COLS, monitor_from_row};
use super::{Db, MonitorRecord, Result};
use crate::ids::{MonitorId, NodeId};
use crate::model::{Heartbeat, Status};
use sqlx::Row;
use std::collections::BTreeMap;

/// What a person sees a monitor as: its latest beat's status, or paused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum State {
    Down,
    Pending,
    Maintenance,
    Up,
    Paused,
}

impl State {
    /// Worst first: the order of the dashboard's counts and of its status sort.
    pub const ALL: [State; 5] = [
        State::Down,
        State::Pending,
        State::Maintenance,
        State::Up,
        State::Paused,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            State::Down => "down",
            State::Pending => "pending",
            State::Maintenance => "maintenance",
            State::Up => "up",
            State::Paused => "paused",
        }
    }

    pub fn parse(s: &str) -> Option<State> {
        State::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The state of a monitor that is `active` and whose latest beat has
    /// `status` (none yet: pending).
    pub fn of(active: bool, status: Option<Status>) -> State {
        match (active, status) {
            (false, _) => State::Paused,
            (true, None | Some(Status::Pending)) => State::Pending,
            (true, Some(Status::Down)) => State::Down,
            (true, Some(Status::Up)) => State::Up,
            (true, Some(Status::Maintenance)) => State::Maintenance,
        }
    }
}

/// [`State::of`] in SQL, over `monitor` left-joined to `monitor_status`.
const STATE_SQL: &str = "CASE WHEN monitor.active = 0 THEN 'paused' \
     WHEN monitor_status.status IS NULL OR monitor_status.status = 2 THEN 'pending' \
     WHEN monitor_status.status = 0 THEN 'down' \
     WHEN monitor_status.status = 1 THEN 'up' ELSE 'maintenance' END";

/// The status sort: [`State::ALL`]'s order.
const STATE_RANK_SQL: &str = "CASE WHEN monitor.active = 0 THEN 4 \
     WHEN monitor_status.status IS NULL OR monitor_status.status = 2 THEN 1 \
     WHEN monitor_status.status = 0 THEN 0 \
     WHEN monitor_status.status = 1 THEN 3 ELSE 2 END";

const FROM_BOARD: &str =
    "FROM monitor LEFT JOIN monitor_status ON monitor_status.monitor_id = monitor.id";

/// A monitor's latest beat.
#[derive(Debug, Clone, PartialEq)]
pub struct Latest {
    pub status: Status,
    pub time: i64,
    pub ping: Option<f64>,
    pub msg: String,
    /// When the status last changed.
    pub since: i64,
}

/// How a page of monitors is ordered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Sort {
    /// By name, regardless of case (then id).
    #[default]
    Name,
    /// Worst state first, then by name.
    Status,
    /// Newest first.
    Newest,
}

impl Sort {
    pub const ALL: [Sort; 3] = [Sort::Name, Sort::Status, Sort::Newest];

    pub fn as_str(self) -> &'static str {
        match self {
            Sort::Name => "name",
            Sort::Status => "status",
            Sort::Newest => "newest",
        }
    }

    pub fn parse(s: &str) -> Option<Sort> {
        Sort::ALL.into_iter().find(|k| k.as_str() == s)
    }

    fn order_by(self, d: super::Dialect) -> String {
        let name = d.nocase("monitor.name");
        match self {
            Sort::Name => format!("{name}, monitor.id"),
            Sort::Status => format!("{STATE_RANK_SQL}, {name}, monitor.id"),
            Sort::Newest => "monitor.id DESC".into(),
        }
    }
}

/// Which monitors a page shows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filter {
    /// Part of the name, URL or hostname (case-insensitive for ASCII).
    pub search: Option<String>,
    pub state: Option<State>,
    /// A monitor type (`http`, `port`, ...).
    pub kind: Option<String>,
    /// The effective owner.
    pub node: Option<NodeId>,
    /// A tag by name, and with `Some(value)` only with that value.
    pub tag: Option<(String, Option<String>)>,
}

impl Filter {
    /// `name` or `name:value`, as the dashboard's and the API's `?tag=` say.
    pub fn tag_of(s: &str) -> Option<(String, Option<String>)> {
        let s = s.trim();
        if s.is_empty() {
            return None;
        }
        Some(match s.split_once(':') {
            Some((n, v)) => (n.trim().to_owned(), Some(v.trim().to_owned())),
            None => (s.to_owned(), None),
        })
    }
}

/// One page of monitors and how many match in all.
#[derive(Debug, Clone, Default)]
pub struct Page {
    pub total: i64,
    pub rows: Vec<(MonitorRecord, Option<Latest>)>,
}

/// A heartbeat with its row id (the live stream's event id).
#[derive(Debug, Clone, PartialEq)]
pub struct NumberedBeat {
    pub id: i64,
    pub beat: Heartbeat,
}

/// `LIKE` wildcards in `s` made literal, with `!` as the escape character
/// (the same on every backend, unlike the backslash).
fn like_pattern(s: &str) -> String {
    let mut p = String::with_capacity(s.len() + 2);
    p.push('%');
    for c in s.chars() {
        if matches!(c, '%' | '_' | '!') {
            p.push('!');
        }
        p.push(c);
    }
    p.push('%');
    p
}

impl Filter {
    /// The `WHERE` clause and its binds, in order.
    fn clause(&self) -> (String, Vec<String>) {
        let mut conds = vec!["1 = 1".to_owned()];
        let mut binds = Vec::new();
        if let Some(s) = self
            .search
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            conds.push(
                "(monitor.name LIKE ? ESCAPE '!' OR monitor.url LIKE ? ESCAPE '!' \
                 OR monitor.hostname LIKE ? ESCAPE '!')"
                    .into(),
            );
            let p = like_pattern(s);
            binds.extend([p.clone(), p.clone(), p]);
        }
        if let Some(state) = self.state {
            conds.push(format!("{STATE_SQL} = ?"));
            binds.push(state.as_str().into());
        }
        if let Some(k) = &self.kind {
            conds.push("monitor.type = ?".into());
            binds.push(k.clone());
        }
        if let Some(n) = &self.node {
            conds.push("monitor.owner = ?".into());
            binds.push(n.as_str().into());
        }
        if let Some((name, value)) = &self.tag {
            let with_value = if value.is_some() {
                " AND monitor_tag.value = ?"
            } else {
                ""
            };
            conds.push(format!(
                "EXISTS (SELECT 1 FROM monitor_tag JOIN tag ON tag.id = monitor_tag.tag_id \
                 WHERE monitor_tag.monitor_id = monitor.id AND tag.name = ?{with_value})"
            ));
            binds.push(name.clone());
            binds.extend(value.clone());
        }
        (conds.join(" AND "), binds)
    }
}

impl Db {
    /// Keeps each monitor's latest beat in `monitor_status`, inside the
    /// heartbeat write's transaction, from the beats it kept. A beat older
    /// than the one on record changes nothing; `since` moves only when the
    /// status does. (MySQL applies the assignments left to right, each
    /// seeing the ones before, so `time` comes last.)
    pub(crate) async fn keep_latest(
        &self,
        c: &mut sqlx::AnyConnection,
        written: &[&Heartbeat],
    ) -> Result<()> {
        let mut latest: BTreeMap<MonitorId, &Heartbeat> = BTreeMap::new();
        for b in written {
            let e = latest.entry(b.monitor_id).or_insert(b);
            if b.time >= e.time {
                *e = b;
            }
        }
        if latest.is_empty() {
            return Ok(());
        }
        let d = self.dialect();
        let t = "monitor_status";
        let newer = format!("{} >= {t}.time", d.inserted("time"));
        let keep = |col: &str| {
            format!(
                "{col} = CASE WHEN {newer} THEN {} ELSE {t}.{col} END",
                d.inserted(col)
            )
        };
        let since = format!(
            "since = CASE WHEN {newer} AND {t}.status <> {} THEN {} ELSE {t}.since END",
            d.inserted("status"),
            d.inserted("time")
        );
        let mut sql =
            "INSERT INTO monitor_status (monitor_id, status, time, ping, msg, since) VALUES "
                .to_owned();
        sql.push_str(&vec!["(?, ?, ?, ?, ?, ?)"; latest.len()].join(", "));
        sql.push_str(&d.upsert(
            t,
            &["monitor_id"],
            &[] as &[Set<'_>],
            &[
                since,
                keep("status"),
                keep("ping"),
                keep("msg"),
                keep("time"),
            ],
        ));
        let mut q = self.query_built(sql);
        for b in latest.values() {
            q = q
                .bind(b.monitor_id.0)
                .bind(b.status as i64)
                .bind(b.time)
                .bind(b.ping)
                .bind(b.msg.as_str())
                .bind(b.time);
        }
        q.execute(&mut *c).await?;
        Ok(())
    }

    /// How many monitors are in each state, every state present.
    pub async fn state_counts(&self) -> Result<BTreeMap<State, i64>> {
        let mut out: BTreeMap<State, i64> = State::ALL.into_iter().map(|s| (s, 0)).collect();
        let sql = format!(
            "SELECT monitor.active AS active, monitor_status.status AS status, COUNT(*) AS n \
             {FROM_BOARD} GROUP BY monitor.active, monitor_status.status"
        );
        for r in self.query_built(sql).fetch_all(&self.pool).await? {
            let active = r.try_get::<i64, _>("active")? != 0;
            let status = r
                .try_get::<Option<i64>, _>("status")?
                .and_then(|s| Status::try_from(s).ok());
            *out.entry(State::of(active, status)).or_default() += r.try_get::<i64, _>("n")?;
        }
        Ok(out)
    }

    /// The monitors `filter` matches, `limit` of them from `offset` in
    /// `sort` order, each with its latest beat, and how many match in all.
    pub async fn monitor_page(
        &self,
        filter: &Filter,
        sort: Sort,
        offset: i64,
        limit: i64,
    ) -> Result<Page> {
        let (clause, binds) = filter.clause();
        let mut count =
            self.query_built(format!("SELECT COUNT(*) AS n {FROM_BOARD} WHERE {clause}"));
        for b in &binds {
            count = count.bind(b.clone());
        }
        let total: i64 = count.fetch_one(&self.pool).await?.try_get("n")?;
        let cols: String = MONITOR_COLS
            .split(',')
            .map(|c| format!("monitor.{}", c.trim()))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "SELECT {cols}, monitor_status.status AS s_status, monitor_status.time AS s_time, \
             monitor_status.ping AS s_ping, monitor_status.msg AS s_msg, monitor_status.since AS s_since \
             {FROM_BOARD} WHERE {clause} ORDER BY {} LIMIT {} OFFSET {}",
            sort.order_by(self.dialect()),
            limit.max(0),
            offset.max(0)
        );
        let mut q = self.query_built(sql);
        for b in binds {
            q = q.bind(b);
        }
        let mut rows = Vec::new();
        for r in q.fetch_all(&self.pool).await? {
            let rec = monitor_from_row(&r)?;
            let latest = match r.try_get::<Option<i64>, _>("s_status")? {
                Some(s) => Some(Latest {
                    status: Status::try_from(s).unwrap_or(Status::Down),
                    time: r.try_get("s_time")?,
                    ping: r.try_get("s_ping")?,
                    msg: r.try_get("s_msg")?,
                    since: r.try_get("s_since")?,
                }),
                None => None,
            };
            rows.push((rec, latest));
        }
        Ok(Page { total, rows })
    }

    /// A monitor's latest beat, if it has one.
    pub async fn latest(&self, id: MonitorId) -> Result<Option<Latest>> {
        let r = self
            .query("SELECT status, time, ping, msg, since FROM monitor_status WHERE monitor_id = ?")
            .bind(id.0)
            .fetch_optional(&self.pool)
            .await?;
        r.map(|r| {
            Ok(Latest {
                status: Status::try_from(r.try_get::<i64, _>("status")?).unwrap_or(Status::Down),
                time: r.try_get("time")?,
                ping: r.try_get("ping")?,
                msg: r.try_get("msg")?,
                since: r.try_get("since")?,
            })
        })
        .transpose()
    }

    /// The last `n` beats of each of `ids`, oldest first: one indexed read
    /// per monitor, in one statement.
    pub async fn recent_beats(
        &self,
        ids: &[MonitorId],
        n: i64,
    ) -> Result<BTreeMap<MonitorId, Vec<Heartbeat>>> {
        let mut out: BTreeMap<MonitorId, Vec<Heartbeat>> = BTreeMap::new();
        // SQLite allows at most 500 terms in a compound SELECT.
        for chunk in ids.chunks(400) {
            let sql = chunk
                .iter()
                .map(|id| {
                    format!(
                        "SELECT * FROM (SELECT id, monitor_id, node_id, status, time, ping, msg, \
                         important, duration, retries FROM heartbeat WHERE monitor_id = {} \
                         ORDER BY time DESC, id DESC LIMIT {n}) t{}",
                        id.0, id.0
                    )
                })
                .collect::<Vec<_>>()
                .join(" UNION ALL ");
            for r in self.query_built(sql).fetch_all(&self.pool).await? {
                let b = heartbeat_from_row(&r)?;
                out.entry(b.monitor_id).or_default().push(b);
            }
        }
        for beats in out.values_mut() {
            beats.sort_by_key(|b| b.time);
        }
        Ok(out)
    }

    /// One monitor's beats, newest first, `limit` from `offset`; with
    /// `important`, only status changes. Also how many there are in all.
    pub async fn beats_page(
        &self,
        id: MonitorId,
        important: bool,
        offset: i64,
        limit: i64,
    ) -> Result<(i64, Vec<Heartbeat>)> {
        let only = if important { " AND important = 1" } else { "" };
        let total: i64 = self
            .query_built(format!(
                "SELECT COUNT(*) AS n FROM heartbeat WHERE monitor_id = ?{only}"
            ))
            .bind(id.0)
            .fetch_one(&self.pool)
            .await?
            .try_get("n")?;
        let beats = self
            .query_built(format!(
                "SELECT monitor_id, node_id, status, time, ping, msg, important, duration, retries \
                 FROM heartbeat WHERE monitor_id = ?{only} ORDER BY time DESC, id DESC \
                 LIMIT {} OFFSET {}",
                limit.max(0),
                offset.max(0)
            ))
            .bind(id.0)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(heartbeat_from_row)
            .collect::<Result<_>>()?;
        Ok((total, beats))
    }

    /// Beats with a row id above `after`, in id order, at most `limit`.
    pub async fn beats_after(&self, after: i64, limit: i64) -> Result<Vec<NumberedBeat>> {
        self.query_built(format!(
            "SELECT id, monitor_id, node_id, status, time, ping, msg, important, duration, retries \
             FROM heartbeat WHERE id > ? ORDER BY id LIMIT {limit}"
        ))
        .bind(after)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| {
            Ok(NumberedBeat {
                id: r.try_get("id")?,
                beat: heartbeat_from_row(r)?,
            })
        })
        .collect()
    }

    /// The highest heartbeat row id (0 with none).
    pub async fn last_beat_id(&self) -> Result<i64> {
        let r = self
            .query("SELECT COALESCE(MAX(id), 0) AS id FROM heartbeat")
            .fetch_one(&self.pool)
            .await?;
        Ok(r.try_get("id")?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_patterns_take_wildcards_literally() {
        assert_eq!(like_pattern("shop"), "%shop%");
        assert_eq!(like_pattern("50%_a!"), "%50!%!_a!!%");
    }

    #[test]
    fn states_sort_worst_first_and_round_trip() {
        for s in State::ALL {
            assert_eq!(State::parse(s.as_str()), Some(s));
        }
        assert_eq!(State::of(false, Some(Status::Down)), State::Paused);
        assert_eq!(State::of(true, None), State::Pending);
        assert!(State::Down < State::Up);
    }
}
