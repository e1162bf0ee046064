//! The data layer: one `Db` handle over sqlx's `Any` driver, for SQLite (the
//! embedded default) and MariaDB/MySQL, chosen by the URL. Every monitor or
//! ownership change bumps the `revision` row in the same transaction and stamps
//! the changed rows with it, so nodes can follow changes by polling one row.
//!
//! Write transactions take the write lock first (the revision bump), which on
//! SQLite avoids lock upgrades and on InnoDB orders revisions by commit.

use crate::auth;
use crate::ids::{MonitorId, NodeId};
use crate::model::{Heartbeat, Node, NodeHealth, NodeStatus, Status, TlsInfo, Uptime, WindowStats};
use crate::monitor::MonitorFields;
use crate::now_ms;
use crate::placement::{self, Move, Ownership};
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Executor, Row};
use std::collections::BTreeMap;
use std::time::Duration;

/// Which SQL dialect the URL selected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    MySql,
}

/// Errors from the data layer, sorted by what a caller does about them.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The database cannot be reached (retry later; HTTP 503).
    #[error("database unavailable: {0}")]
    Unavailable(sqlx::Error),
    /// The row does not exist (HTTP 404).
    #[error("{0} not found")]
    NotFound(String),
    /// The request names something that does not fit the current state (HTTP 400/409).
    #[error("{field}: {msg}")]
    Rejected { field: &'static str, msg: String },
    /// The request conflicts with the current state (HTTP 409).
    #[error("{0}")]
    Conflict(String),
    /// Any other database error (HTTP 500).
    #[error("database error: {0}")]
    Other(sqlx::Error),
    #[error("{0}")]
    Config(String),
}

impl From<sqlx::Error> for DbError {
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Protocol(_)
            | sqlx::Error::WorkerCrashed => DbError::Unavailable(e),
            sqlx::Error::Database(ref d)
                if d.message().contains("database is locked")
                    || d.message().contains("Lock wait timeout") =>
            {
                DbError::Unavailable(e)
            }
            other => DbError::Other(other),
        }
    }
}

impl DbError {
    /// The database rolled the transaction back to break a deadlock (InnoDB,
    /// SQLSTATE 40001): nothing was written, and running it again at once is
    /// the documented remedy.
    pub fn is_deadlock(&self) -> bool {
        matches!(self, DbError::Other(sqlx::Error::Database(d)) if d.code().as_deref() == Some("40001"))
    }
}

pub type Result<T, E = DbError> = std::result::Result<T, E>;

/// A monitor row: its flat fields plus identity, ownership and bookkeeping.
#[derive(Debug, Clone, PartialEq)]
pub struct MonitorRecord {
    pub id: MonitorId,
    /// Kuma-named fields; `node_id` is the home (`default_node_id`).
    pub fields: MonitorFields,
    pub default_node_id: NodeId,
    pub assign_node: Option<NodeId>,
    /// Revision of the last change to this row.
    pub rev: i64,
    pub created_at: i64,
    pub modified_at: i64,
}

impl MonitorRecord {
    /// `COALESCE(assign_node, default_node_id)`.
    pub fn owner(&self) -> &NodeId {
        self.assign_node.as_ref().unwrap_or(&self.default_node_id)
    }
    pub fn active(&self) -> bool {
        self.fields.active.unwrap_or(true)
    }
}

/// Changes since a revision, as a node's reconcile loop reads them.
#[derive(Debug, Default)]
pub struct Changes {
    /// The revision these changes bring the reader up to.
    pub rev: i64,
    /// Rows created or changed (including ownership moves) since the asked revision.
    pub changed: Vec<MonitorRecord>,
    /// Monitors deleted since the asked revision.
    pub deleted: Vec<MonitorId>,
}

const MONITOR_COLS: &str = "id, name, type, url, hostname, port, method, headers, body, \
    interval_secs, retry_interval_secs, maxretries, timeout_ms, accepted_statuscodes, \
    max_redirects, ignore_tls, keyword, invert_keyword, json_path, json_path_operator, \
    expected_value, dns_resolve_server, dns_resolve_type, packet_count, push_token, \
    expiry_notification, active, description, default_node_id, assign_node, rev, \
    created_at, modified_at";

const DAY_MS: i64 = 86_400_000;

/// The aggregate tables and their bucket sizes.
const STAT_TABLES: [(&str, i64); 3] = [
    ("stat_minute", 60_000),
    ("stat_hour", 3_600_000),
    ("stat_day", DAY_MS),
];

/// How long each aggregate table keeps its buckets: a little past the window
/// it serves (24 h, 7 d, 30 d), the per-day one for a year and more.
const STAT_KEEP: [(&str, i64); 3] = [
    ("stat_minute", 2 * DAY_MS),
    ("stat_hour", 35 * DAY_MS),
    ("stat_day", 400 * DAY_MS),
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

const NODE_COLS: &str = "node_id, node_name, host, status, last_seen, hc_fails, hc_passes, \
    hc_last_at, hc_last_ok, hc_last_ms, hc_last_error, created_at, modified_at";

/// Heartbeat rows per INSERT statement: SQLite allows at most 500 terms in a
/// compound SELECT, and 10 columns × 200 rows stays well under bind limits.
const HEARTBEAT_CHUNK: usize = 200;

/// Names one batch of one node's heartbeats across retries: the node's own
/// sequence number, increasing from batch to batch.
#[derive(Debug, Clone, Copy)]
pub struct BatchKey<'a> {
    pub node: &'a NodeId,
    pub seq: i64,
}

/// Runs `$body` with `$c: &mut AnyConnection` inside a transaction: commit on
/// `Ok`, explicit rollback on `Err` (a dropped transaction would keep its locks
/// until the connection is next used).
macro_rules! in_tx {
    ($self:ident, |$c:ident| $body:expr) => {{
        let mut tx = $self.pool.begin().await?;
        let r: Result<_> = async {
            let $c: &mut sqlx::AnyConnection = &mut tx;
            $body
        }
        .await;
        match r {
            Ok(v) => {
                tx.commit().await?;
                Ok(v)
            }
            Err(e) => {
                let _ = tx.rollback().await;
                Err(e)
            }
        }
    }};
}

/// A cheap-to-clone database handle.
#[derive(Clone, Debug)]
pub struct Db {
    pool: AnyPool,
    backend: Backend,
}

impl Db {
    /// Connects (creating a SQLite file when the URL says `mode=rwc`) and, for
    /// SQLite, sets WAL mode and a busy timeout on every connection.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Db> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("mysql:") || url.starts_with("mariadb:") {
            Backend::MySql
        } else {
            return Err(DbError::Config(format!(
                "DATABASE_URL must start with sqlite:// or mysql:// (got '{}')",
                url.split(':').next().unwrap_or("")
            )));
        };
        let url = url.replacen("mariadb:", "mysql:", 1);
        let mut opts = AnyPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(3));
        if backend == Backend::Sqlite {
            opts = opts.after_connect(|conn, _meta| {
                Box::pin(async move {
                    conn.execute("PRAGMA busy_timeout = 5000").await?;
                    conn.execute("PRAGMA journal_mode = WAL").await?;
                    conn.execute("PRAGMA synchronous = NORMAL").await?;
                    Ok(())
                })
            });
        }
        let pool = opts.connect(&url).await?;
        Ok(Db { pool, backend })
    }

    /// Connects and applies the migrations.
    pub async fn open(url: &str, max_connections: u32) -> Result<Db> {
        let db = Db::connect(url, max_connections).await?;
        db.migrate().await?;
        Ok(db)
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Applies pending migrations. Several processes may start at once on one
    /// database: a loser of that race retries and finds them applied.
    pub async fn migrate(&self) -> Result<()> {
        let mut attempt = 0;
        loop {
            let r = match self.backend {
                Backend::Sqlite => {
                    sqlx::migrate!("../../migrations/sqlite")
                        .run(&self.pool)
                        .await
                }
                Backend::MySql => {
                    sqlx::migrate!("../../migrations/mysql")
                        .run(&self.pool)
                        .await
                }
            };
            match r {
                Ok(()) => return Ok(()),
                Err(e) if attempt < 10 => {
                    attempt += 1;
                    tracing::debug!(cause = %e, attempt, "migration raced another process; retrying");
                    tokio::time::sleep(Duration::from_millis(100 * attempt)).await;
                }
                Err(e) => return Err(DbError::Config(format!("migrations failed: {e}"))),
            }
        }
    }

    /// Cheap liveness probe for health endpoints.
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    // ---- nodes ----------------------------------------------------------

    /// Registers a node at start-up. A new node is `online`; a known one keeps
    /// `offline` (the balancer's health checker brings it back after `rise`
    /// passes) but a `leaving` one is online again at once.
    pub async fn register_node(&self, id: &NodeId, name: &str, host: &str) -> Result<()> {
        let now = now_ms();
        let sql = match self.backend {
            Backend::Sqlite => {
                "INSERT INTO node (node_id, node_name, host, status, last_seen, created_at, modified_at) \
                 VALUES (?, ?, ?, 'online', ?, ?, ?) \
                 ON CONFLICT(node_id) DO UPDATE SET node_name = excluded.node_name, host = excluded.host, \
                 last_seen = excluded.last_seen, modified_at = excluded.modified_at, \
                 status = CASE WHEN node.status = 'offline' THEN 'offline' ELSE 'online' END"
            }
            Backend::MySql => {
                "INSERT INTO node (node_id, node_name, host, status, last_seen, created_at, modified_at) \
                 VALUES (?, ?, ?, 'online', ?, ?, ?) \
                 ON DUPLICATE KEY UPDATE node_name = VALUES(node_name), host = VALUES(host), \
                 last_seen = VALUES(last_seen), modified_at = VALUES(modified_at), \
                 status = CASE WHEN status = 'offline' THEN 'offline' ELSE 'online' END"
            }
        };
        sqlx::query(sql)
            .bind(id.as_str())
            .bind(name)
            .bind(host)
            .bind(now)
            .bind(now)
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Creates a node row through the API (`online`, never seen yet).
    pub async fn create_node(&self, id: &NodeId, name: &str, host: &str) -> Result<Node> {
        let now = now_ms();
        let r = sqlx::query(
            "INSERT INTO node (node_id, node_name, host, status, last_seen, created_at, modified_at) \
             VALUES (?, ?, ?, 'online', 0, ?, ?)",
        )
        .bind(id.as_str())
        .bind(name)
        .bind(host)
        .bind(now)
        .bind(now)
        .execute(&self.pool)
        .await;
        match r {
            Ok(_) => {}
            Err(sqlx::Error::Database(d)) if d.is_unique_violation() => {
                return Err(DbError::Rejected {
                    field: "node_id",
                    msg: format!("node '{id}' already exists"),
                });
            }
            Err(e) => return Err(e.into()),
        }
        self.node(id)
            .await?
            .ok_or_else(|| DbError::NotFound(format!("node {id}")))
    }

    /// Renews a node's lease. Returns false when the row is gone.
    pub async fn renew_lease(&self, id: &NodeId, now: i64) -> Result<bool> {
        let r = sqlx::query("UPDATE node SET last_seen = ? WHERE node_id = ?")
            .bind(now)
            .bind(id.as_str())
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() > 0)
    }

    pub async fn nodes(&self) -> Result<Vec<Node>> {
        let rows = dyn_query(format!("SELECT {NODE_COLS} FROM node ORDER BY node_id"))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(node_from_row).collect()
    }

    pub async fn node(&self, id: &NodeId) -> Result<Option<Node>> {
        let row = dyn_query(format!("SELECT {NODE_COLS} FROM node WHERE node_id = ?"))
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(node_from_row).transpose()
    }

    /// Updates a node's name and/or host.
    pub async fn update_node(
        &self,
        id: &NodeId,
        name: Option<&str>,
        host: Option<&str>,
    ) -> Result<Node> {
        let r = sqlx::query(
            "UPDATE node SET node_name = COALESCE(?, node_name), host = COALESCE(?, host), modified_at = ? \
             WHERE node_id = ?",
        )
        .bind(name)
        .bind(host)
        .bind(now_ms())
        .bind(id.as_str())
        .execute(&self.pool)
        .await?;
        if r.rows_affected() == 0 {
            return Err(DbError::NotFound(format!("node {id}")));
        }
        self.node(id)
            .await?
            .ok_or_else(|| DbError::NotFound(format!("node {id}")))
    }

    /// Deletes a node that is home to no monitor and runs none.
    pub async fn delete_node(&self, id: &NodeId) -> Result<()> {
        in_tx!(self, |c| {
            let r = sqlx::query("DELETE FROM node WHERE node_id = ?")
                .bind(id.as_str())
                .execute(&mut *c)
                .await?;
            if r.rows_affected() == 0 {
                return Err(DbError::NotFound(format!("node {id}")));
            }
            let n: i64 = sqlx::query(
                "SELECT COUNT(*) AS n FROM monitor WHERE default_node_id = ? OR assign_node = ?",
            )
            .bind(id.as_str())
            .bind(id.as_str())
            .fetch_one(&mut *c)
            .await?
            .try_get("n")?;
            if n > 0 {
                return Err(DbError::Rejected {
                    field: "node_id",
                    msg: format!(
                        "node '{id}' still has {n} monitors; rebalance or move them first"
                    ),
                });
            }
            Ok(())
        })
    }

    /// Sets a node's status (the balancer's health checker, or a node leaving).
    pub async fn set_node_status(&self, id: &NodeId, status: NodeStatus) -> Result<()> {
        sqlx::query("UPDATE node SET status = ?, modified_at = ? WHERE node_id = ?")
            .bind(status.as_str())
            .bind(now_ms())
            .bind(id.as_str())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Persists the health checker's counters for a node.
    pub async fn save_node_health(&self, id: &NodeId, h: &NodeHealth) -> Result<()> {
        sqlx::query(
            "UPDATE node SET hc_fails = ?, hc_passes = ?, hc_last_at = ?, hc_last_ok = ?, \
             hc_last_ms = ?, hc_last_error = ? WHERE node_id = ?",
        )
        .bind(i64::from(h.fails))
        .bind(i64::from(h.passes))
        .bind(h.last_at)
        .bind(h.last_ok.map(i64::from))
        .bind(h.last_ms)
        .bind(h.last_error.as_deref())
        .bind(id.as_str())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Owned active monitors per node (effective owner), for every node with any.
    pub async fn owner_counts(&self) -> Result<BTreeMap<NodeId, usize>> {
        let mut c = self.pool.acquire().await?;
        Self::owner_counts_in(&mut c).await
    }

    async fn owner_counts_in(c: &mut sqlx::AnyConnection) -> Result<BTreeMap<NodeId, usize>> {
        let rows =
            sqlx::query("SELECT owner, COUNT(*) AS n FROM monitor WHERE active = 1 GROUP BY owner")
                .fetch_all(&mut *c)
                .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    NodeId(r.try_get("owner")?),
                    r.try_get::<i64, _>("n")? as usize,
                ))
            })
            .collect()
    }

    // ---- monitors -------------------------------------------------------

    /// Bumps the revision counter; must be the first statement of a write
    /// transaction (it takes the write lock).
    async fn bump_rev(conn: &mut sqlx::AnyConnection) -> Result<i64> {
        sqlx::query("UPDATE revision SET rev = rev + 1 WHERE id = 1")
            .execute(&mut *conn)
            .await?;
        Ok(sqlx::query("SELECT rev FROM revision WHERE id = 1")
            .fetch_one(&mut *conn)
            .await?
            .try_get("rev")?)
    }

    /// The current revision.
    pub async fn revision(&self) -> Result<i64> {
        Ok(sqlx::query("SELECT rev FROM revision WHERE id = 1")
            .fetch_one(&self.pool)
            .await?
            .try_get("rev")?)
    }

    /// Inserts a validated monitor. Its home is `fields.node_id` when set (which
    /// must name a known node), else the least-loaded online node.
    pub async fn create_monitor(&self, fields: &MonitorFields) -> Result<MonitorRecord> {
        in_tx!(self, |c| {
            let rev = Self::bump_rev(c).await?;
            let home = match fields.node_id.as_deref() {
                Some(id) => {
                    Self::require_node(c, id).await?;
                    NodeId::from(id)
                }
                None => {
                    let online: Vec<NodeId> =
                        sqlx::query("SELECT node_id FROM node WHERE status = 'online'")
                            .fetch_all(&mut *c)
                            .await?
                            .iter()
                            .map(|r| r.try_get("node_id").map(NodeId))
                            .collect::<Result<_, _>>()?;
                    let counts = Self::owner_counts_in(c).await?;
                    let load = online
                        .iter()
                        .map(|id| (id, counts.get(id).copied().unwrap_or(0)));
                    placement::least_loaded(load).ok_or(DbError::Rejected {
                        field: "node_id",
                        msg: "no online node to place the monitor on; give node_id".into(),
                    })?
                }
            };
            let now = now_ms();
            let sql = format!(
                "INSERT INTO monitor ({}) VALUES ({})",
                &MONITOR_COLS["id, ".len()..],
                vec!["?"; 32].join(", ")
            );
            bind_fields(dyn_query(sql), fields)
                .bind(home.as_str())
                .bind(None::<String>)
                .bind(rev)
                .bind(now)
                .bind(now)
                .execute(&mut *c)
                .await
                .map_err(unique_push_token)?;
            let id = self.last_insert_id(c).await?;
            Self::monitor_in(c, MonitorId(id))
                .await?
                .ok_or_else(|| DbError::NotFound(format!("monitor {id}")))
        })
    }

    async fn require_node(c: &mut sqlx::AnyConnection, id: &str) -> Result<()> {
        let known = sqlx::query("SELECT node_id FROM node WHERE node_id = ?")
            .bind(id)
            .fetch_optional(&mut *c)
            .await?;
        match known {
            Some(_) => Ok(()),
            None => Err(DbError::Rejected {
                field: "node_id",
                msg: format!("unknown node '{id}'"),
            }),
        }
    }

    /// The id the last INSERT on this connection generated.
    pub(crate) async fn last_insert_id(&self, c: &mut sqlx::AnyConnection) -> Result<i64> {
        let sql = match self.backend {
            Backend::Sqlite => "SELECT last_insert_rowid() AS id",
            Backend::MySql => "SELECT CAST(LAST_INSERT_ID() AS SIGNED) AS id",
        };
        Ok(sqlx::query(sql).fetch_one(&mut *c).await?.try_get("id")?)
    }

    /// Replaces a monitor's fields (already merged and validated by the caller).
    /// A changed `node_id` re-homes it and clears any temporary assignment; a
    /// changed URL or type drops the certificate facts of the old target.
    pub async fn update_monitor(
        &self,
        id: MonitorId,
        fields: &MonitorFields,
    ) -> Result<MonitorRecord> {
        in_tx!(self, |c| {
            let rev = Self::bump_rev(c).await?;
            let Some(current) = Self::monitor_in(c, id).await? else {
                return Err(DbError::NotFound(format!("monitor {id}")));
            };
            let home = fields
                .node_id
                .clone()
                .map(NodeId)
                .unwrap_or_else(|| current.default_node_id.clone());
            let assign = if home == current.default_node_id {
                current.assign_node.clone()
            } else {
                Self::require_node(c, home.as_str()).await?;
                None
            };
            let sets: Vec<String> = MONITOR_COLS["id, ".len()..]
                .split(", ")
                .filter(|col| *col != "created_at")
                .map(|col| format!("{col} = ?"))
                .collect();
            let sql = format!("UPDATE monitor SET {} WHERE id = ?", sets.join(", "));
            bind_fields(dyn_query(sql), fields)
                .bind(home.as_str())
                .bind(assign.as_ref().map(|a| a.as_str().to_owned()))
                .bind(rev)
                .bind(now_ms())
                .bind(id.0)
                .execute(&mut *c)
                .await
                .map_err(unique_push_token)?;
            // Certificate facts belong to the target they were read from.
            if current.fields.url != fields.url || current.fields.kind != fields.kind {
                sqlx::query("DELETE FROM monitor_tls_info WHERE monitor_id = ?")
                    .bind(id.0)
                    .execute(&mut *c)
                    .await?;
            }
            Self::monitor_in(c, id)
                .await?
                .ok_or_else(|| DbError::NotFound(format!("monitor {id}")))
        })
    }

    /// Deletes a monitor and its heartbeats, leaving a tombstone for nodes.
    pub async fn delete_monitor(&self, id: MonitorId) -> Result<()> {
        in_tx!(self, |c| {
            let rev = Self::bump_rev(c).await?;
            let r = sqlx::query("DELETE FROM monitor WHERE id = ?")
                .bind(id.0)
                .execute(&mut *c)
                .await?;
            if r.rows_affected() == 0 {
                return Err(DbError::NotFound(format!("monitor {id}")));
            }
            for table in [
                "heartbeat",
                "stat_minute",
                "stat_hour",
                "stat_day",
                "monitor_tls_info",
            ] {
                dyn_query(format!("DELETE FROM {table} WHERE monitor_id = ?"))
                    .bind(id.0)
                    .execute(&mut *c)
                    .await?;
            }
            sqlx::query("INSERT INTO monitor_tombstone (monitor_id, rev) VALUES (?, ?)")
                .bind(id.0)
                .bind(rev)
                .execute(&mut *c)
                .await?;
            Ok(())
        })
    }

    async fn monitor_in(
        conn: &mut sqlx::AnyConnection,
        id: MonitorId,
    ) -> Result<Option<MonitorRecord>> {
        let row = dyn_query(format!("SELECT {MONITOR_COLS} FROM monitor WHERE id = ?"))
            .bind(id.0)
            .fetch_optional(&mut *conn)
            .await?;
        row.as_ref().map(monitor_from_row).transpose()
    }

    pub async fn monitor(&self, id: MonitorId) -> Result<Option<MonitorRecord>> {
        let mut conn = self.pool.acquire().await?;
        Self::monitor_in(&mut conn, id).await
    }

    /// The monitor with this push token, if any.
    pub async fn monitor_by_push_token(&self, token: &str) -> Result<Option<MonitorRecord>> {
        let row = dyn_query(format!(
            "SELECT {MONITOR_COLS} FROM monitor WHERE push_token = ?"
        ))
        .bind(token)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(monitor_from_row).transpose()
    }

    /// All monitors, or those whose effective owner is `owner`.
    pub async fn monitors(&self, owner: Option<&NodeId>) -> Result<Vec<MonitorRecord>> {
        let rows = match owner {
            Some(o) => {
                dyn_query(format!(
                    "SELECT {MONITOR_COLS} FROM monitor WHERE owner = ? ORDER BY id"
                ))
                .bind(o.as_str())
                .fetch_all(&self.pool)
                .await?
            }
            None => {
                dyn_query(format!("SELECT {MONITOR_COLS} FROM monitor ORDER BY id"))
                    .fetch_all(&self.pool)
                    .await?
            }
        };
        rows.iter().map(monitor_from_row).collect()
    }

    /// Everything that changed after revision `since`. The revision is read
    /// first, so a change committed meanwhile is seen now or on the next call.
    pub async fn changes_since(&self, since: i64) -> Result<Changes> {
        let rev = self.revision().await?;
        if rev == since {
            return Ok(Changes {
                rev,
                ..Default::default()
            });
        }
        let changed = dyn_query(format!(
            "SELECT {MONITOR_COLS} FROM monitor WHERE rev > ? ORDER BY id"
        ))
        .bind(since)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(monitor_from_row)
        .collect::<Result<_>>()?;
        let deleted = sqlx::query("SELECT monitor_id FROM monitor_tombstone WHERE rev > ?")
            .bind(since)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| Ok(MonitorId(r.try_get("monitor_id")?)))
            .collect::<Result<_>>()?;
        Ok(Changes {
            rev,
            changed,
            deleted,
        })
    }

    /// Every monitor's ownership columns (for failover and rebalancing plans).
    pub async fn ownership(&self, active_only: bool) -> Result<Vec<Ownership>> {
        let sql = if active_only {
            "SELECT id, default_node_id, assign_node FROM monitor WHERE active = 1 ORDER BY id"
        } else {
            "SELECT id, default_node_id, assign_node FROM monitor ORDER BY id"
        };
        sqlx::query(sql)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| {
                Ok(Ownership {
                    monitor: MonitorId(r.try_get("id")?),
                    default_node: NodeId(r.try_get("default_node_id")?),
                    assign_node: r.try_get::<Option<String>, _>("assign_node")?.map(NodeId),
                })
            })
            .collect()
    }

    /// Assigns monitors to other nodes (`assign_node`, a temporary override as
    /// in failover) in one transaction with one revision bump. Returns how many
    /// rows changed.
    pub async fn apply_moves(&self, moves: &[Move]) -> Result<u64> {
        if moves.is_empty() {
            return Ok(0);
        }
        let sql = "UPDATE monitor SET assign_node = ?, rev = ? WHERE id = ?";
        in_tx!(self, |c| {
            let rev = Self::bump_rev(c).await?;
            let mut n = 0;
            for m in moves {
                n += sqlx::query(sql)
                    .bind(m.to.as_str())
                    .bind(rev)
                    .bind(m.monitor.0)
                    .execute(&mut *c)
                    .await?
                    .rows_affected();
            }
            Ok(n)
        })
    }

    /// Sends a node's temporarily moved monitors home (`assign_node = NULL`),
    /// in batches of `batch`. Returns how many went home.
    pub async fn recover_node(&self, node: &NodeId, batch: usize) -> Result<u64> {
        let mut total = 0;
        loop {
            // Read first (no revision is spent when nothing is away), then
            // update conditionally so a concurrent change is not overwritten.
            let ids: Vec<i64> = dyn_query(format!(
                "SELECT id FROM monitor WHERE default_node_id = ? AND assign_node IS NOT NULL \
                 AND assign_node <> default_node_id LIMIT {batch}"
            ))
            .bind(node.as_str())
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| r.try_get("id"))
            .collect::<Result<_, _>>()?;
            if ids.is_empty() {
                return Ok(total);
            }
            let list = ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
            let n = in_tx!(self, |c| {
                let rev = Self::bump_rev(c).await?;
                Ok(dyn_query(format!(
                    "UPDATE monitor SET assign_node = NULL, rev = ? \
                     WHERE id IN ({list}) AND default_node_id = ? AND assign_node IS NOT NULL"
                ))
                .bind(rev)
                .bind(node.as_str())
                .execute(&mut *c)
                .await?
                .rows_affected())
            })?;
            total += n;
            if n == 0 {
                return Ok(total);
            }
        }
    }

    // ---- heartbeats -----------------------------------------------------

    /// Writes heartbeats with multi-row inserts, keeping only rows whose node is
    /// still the monitor's effective owner: a node that lost a monitor cannot
    /// record results for it, whatever it believes. The uptime aggregates
    /// (minute, hour, day) are updated in the same transaction under the same
    /// ownership condition, so they count exactly the rows written. Returns
    /// rows written.
    pub async fn insert_heartbeats(&self, beats: &[Heartbeat]) -> Result<u64> {
        in_tx!(self, |c| self.write_heartbeats(c, beats).await)
    }

    /// [`Db::insert_heartbeats`] for a node's batch, at most once per `key`.
    /// The batch and its sequence number commit together; with `retry` (an
    /// earlier attempt under this key may have committed unseen) a batch
    /// already recorded is not written again, and the row count recorded
    /// then is returned.
    pub async fn insert_heartbeat_batch(
        &self,
        key: BatchKey<'_>,
        beats: &[Heartbeat],
        retry: bool,
    ) -> Result<u64> {
        let record = match self.backend {
            Backend::Sqlite => {
                "INSERT INTO heartbeat_batch (node_id, seq, written) VALUES (?, ?, ?) \
                 ON CONFLICT(node_id) DO UPDATE SET seq = excluded.seq, written = excluded.written"
            }
            Backend::MySql => {
                "INSERT INTO heartbeat_batch (node_id, seq, written) VALUES (?, ?, ?) \
                 ON DUPLICATE KEY UPDATE seq = VALUES(seq), written = VALUES(written)"
            }
        };
        in_tx!(self, |c| {
            if retry {
                let last =
                    sqlx::query("SELECT seq, written FROM heartbeat_batch WHERE node_id = ?")
                        .bind(key.node.as_str())
                        .fetch_optional(&mut *c)
                        .await?;
                if let Some(r) = last
                    && r.try_get::<i64, _>("seq")? == key.seq
                {
                    return Ok(r.try_get::<i64, _>("written")? as u64);
                }
            }
            let written = self.write_heartbeats(c, beats).await?;
            sqlx::query(record)
                .bind(key.node.as_str())
                .bind(key.seq)
                .bind(written as i64)
                .execute(&mut *c)
                .await?;
            Ok(written)
        })
    }

    /// The statements of a heartbeat write, inside the caller's transaction.
    async fn write_heartbeats(
        &self,
        c: &mut sqlx::AnyConnection,
        beats: &[Heartbeat],
    ) -> Result<u64> {
        let mut written = 0;
        for chunk in beats.chunks(HEARTBEAT_CHUNK) {
            let row =
                "SELECT ? AS m, ? AS n, ? AS s, ? AS t, ? AS p, ? AS g, ? AS i, ? AS d, ? AS r";
            let mut sql = String::with_capacity(64 + chunk.len() * 80);
            sql.push_str(
                "INSERT INTO heartbeat (monitor_id, node_id, status, time, ping, msg, important, duration, retries) \
                 SELECT v.m, v.n, v.s, v.t, v.p, v.g, v.i, v.d, v.r FROM (",
            );
            for i in 0..chunk.len() {
                if i > 0 {
                    sql.push_str(" UNION ALL ");
                }
                sql.push_str(row);
            }
            sql.push_str(") v JOIN monitor ON monitor.id = v.m AND monitor.owner = v.n");
            let mut q = dyn_query(sql);
            for b in chunk {
                q = q
                    .bind(b.monitor_id.0)
                    .bind(b.node_id.as_str())
                    .bind(b.status as i64)
                    .bind(b.time)
                    .bind(b.ping)
                    .bind(b.msg.as_str())
                    .bind(i64::from(b.important))
                    .bind(b.duration)
                    .bind(i64::from(b.retries));
            }
            let n = q.execute(&mut *c).await?.rows_affected();
            if n > 0 {
                for (table, bucket) in STAT_TABLES {
                    self.add_stats(c, table, &aggregate(chunk, bucket)).await?;
                }
            }
            written += n;
        }
        Ok(written)
    }

    /// Adds per-bucket counts to a stat table, for rows whose node owns the monitor.
    async fn add_stats(
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
        sql.push_str(") v JOIN monitor ON monitor.id = v.m AND monitor.owner = v.n");
        match self.backend {
            // `WHERE 1` resolves SQLite's parsing ambiguity of ON CONFLICT after a join.
            Backend::Sqlite => sql.push_str(
                " WHERE 1 ON CONFLICT(monitor_id, ts) DO UPDATE SET up = up + excluded.up, \
                 down = down + excluded.down, ping_sum = ping_sum + excluded.ping_sum, \
                 ping_count = ping_count + excluded.ping_count",
            ),
            Backend::MySql => sql.push_str(&format!(
                " ON DUPLICATE KEY UPDATE up = {table}.up + VALUES(up), \
                 down = {table}.down + VALUES(down), ping_sum = {table}.ping_sum + VALUES(ping_sum), \
                 ping_count = {table}.ping_count + VALUES(ping_count)"
            )),
        }
        let mut q = dyn_query(sql);
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
        let sum = |col: &str| match self.backend {
            Backend::Sqlite => format!("SUM({col})"),
            Backend::MySql => format!("CAST(SUM({col}) AS SIGNED)"),
        };
        let mut out: BTreeMap<MonitorId, Uptime> = BTreeMap::new();
        for (table, span) in [
            ("stat_minute", DAY_MS),
            ("stat_hour", 7 * DAY_MS),
            ("stat_day", 30 * DAY_MS),
        ] {
            let filter = if only.is_some() {
                " AND monitor_id = ?"
            } else {
                ""
            };
            let sql = format!(
                "SELECT monitor_id, {} AS up, {} AS down, SUM(ping_sum) AS ps, {} AS pc \
                 FROM {table} WHERE ts >= ?{filter} GROUP BY monitor_id",
                sum("up"),
                sum("down"),
                sum("ping_count")
            );
            let mut q = dyn_query(sql).bind(now_ms - span);
            if let Some(id) = only {
                q = q.bind(id.0);
            }
            for r in q.fetch_all(&self.pool).await? {
                let w = WindowStats {
                    up: r.try_get("up")?,
                    down: r.try_get("down")?,
                    ping_sum: r.try_get::<Option<f64>, _>("ps")?.unwrap_or(0.0),
                    ping_count: r.try_get("pc")?,
                };
                let u = out.entry(MonitorId(r.try_get("monitor_id")?)).or_default();
                match table {
                    "stat_minute" => u.day = w,
                    "stat_hour" => u.week = w,
                    _ => u.month = w,
                }
            }
        }
        Ok(out)
    }

    /// Records the certificate facts a check of `url` read, only while the
    /// monitor still targets `url`: a check that was in flight when the URL
    /// changed cannot bring back the old target's facts.
    pub async fn save_tls_info(
        &self,
        id: MonitorId,
        url: &str,
        days_remaining: i64,
        valid: bool,
        not_after: i64,
        checked_at: i64,
    ) -> Result<()> {
        let sql = match self.backend {
            Backend::Sqlite => {
                "INSERT INTO monitor_tls_info (monitor_id, days_remaining, valid, not_after, checked_at) \
                 SELECT id, ?, ?, ?, ? FROM monitor WHERE id = ? AND url = ? \
                 ON CONFLICT(monitor_id) DO UPDATE SET \
                 days_remaining = excluded.days_remaining, valid = excluded.valid, \
                 not_after = excluded.not_after, checked_at = excluded.checked_at"
            }
            Backend::MySql => {
                "INSERT INTO monitor_tls_info (monitor_id, days_remaining, valid, not_after, checked_at) \
                 SELECT id, ?, ?, ?, ? FROM monitor WHERE id = ? AND url = ? \
                 ON DUPLICATE KEY UPDATE \
                 days_remaining = VALUES(days_remaining), valid = VALUES(valid), \
                 not_after = VALUES(not_after), checked_at = VALUES(checked_at)"
            }
        };
        sqlx::query(sql)
            .bind(days_remaining)
            .bind(i64::from(valid))
            .bind(not_after)
            .bind(checked_at)
            .bind(id.0)
            .bind(url)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The latest certificate facts of one monitor.
    pub async fn tls_info(&self, id: MonitorId) -> Result<Option<TlsInfo>> {
        sqlx::query(
            "SELECT days_remaining, valid, not_after, checked_at FROM monitor_tls_info \
             WHERE monitor_id = ?",
        )
        .bind(id.0)
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(tls_from_row)
        .transpose()
    }

    /// The latest certificate facts of every monitor that has them.
    pub async fn tls_infos(&self) -> Result<BTreeMap<MonitorId, TlsInfo>> {
        sqlx::query(
            "SELECT monitor_id, days_remaining, valid, not_after, checked_at FROM monitor_tls_info",
        )
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| Ok((MonitorId(r.try_get("monitor_id")?), tls_from_row(r)?)))
        .collect()
    }

    /// Deletes raw heartbeats older than `heartbeat_retention_ms` (in batches,
    /// so no statement holds locks for long) and aggregates past their
    /// windows. Returns the heartbeats deleted.
    pub async fn prune(&self, now_ms: i64, heartbeat_retention_ms: i64) -> Result<u64> {
        let mut deleted = 0;
        loop {
            // The double derived table lets MySQL take a LIMIT inside IN.
            let n = sqlx::query(
                "DELETE FROM heartbeat WHERE id IN (SELECT id FROM \
                 (SELECT id FROM heartbeat WHERE time < ? ORDER BY id LIMIT 5000) x)",
            )
            .bind(now_ms - heartbeat_retention_ms)
            .execute(&self.pool)
            .await?
            .rows_affected();
            deleted += n;
            if n < 5000 {
                break;
            }
        }
        for (table, keep) in STAT_KEEP {
            dyn_query(format!("DELETE FROM {table} WHERE ts < ?"))
                .bind(now_ms - keep)
                .execute(&self.pool)
                .await?;
        }
        Ok(deleted)
    }

    /// Heartbeats of a monitor since `since_ms`, newest first, at most `limit`.
    pub async fn heartbeats(
        &self,
        id: MonitorId,
        since_ms: i64,
        limit: i64,
    ) -> Result<Vec<Heartbeat>> {
        dyn_query(format!(
            "SELECT monitor_id, node_id, status, time, ping, msg, important, duration, retries \
             FROM heartbeat WHERE monitor_id = ? AND time >= ? ORDER BY time DESC, id DESC LIMIT {limit}"
        ))
        .bind(id.0)
        .bind(since_ms)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(heartbeat_from_row)
        .collect()
    }

    // ---- API keys -------------------------------------------------------

    /// Creates an API key; returns its id and the full token (shown only once).
    pub async fn create_api_key(&self, name: &str) -> Result<(i64, String)> {
        let secret = auth::generate_secret();
        let id = in_tx!(self, |c| {
            sqlx::query(
                "INSERT INTO api_key (name, key_hash, active, created_at) VALUES (?, ?, 1, ?)",
            )
            .bind(name)
            .bind(auth::hash_secret(&secret))
            .bind(now_ms())
            .execute(&mut *c)
            .await?;
            self.last_insert_id(c).await
        })?;
        Ok((id, auth::format_token(id, &secret)))
    }

    /// Whether `token` is an active, unexpired API key (constant-time compare).
    pub async fn verify_api_key(&self, token: &str) -> Result<bool> {
        let Some((id, secret)) = auth::split_token(token) else {
            return Ok(false);
        };
        let row = sqlx::query("SELECT key_hash, active, expires_at FROM api_key WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else { return Ok(false) };
        let hash: String = row.try_get("key_hash")?;
        let active: i64 = row.try_get("active")?;
        let expires: Option<i64> = row.try_get("expires_at")?;
        let fresh = expires.is_none_or(|e| e > now_ms());
        Ok(auth::ct_eq(&hash, &auth::hash_secret(secret)) && active == 1 && fresh)
    }
}

fn unique_push_token(e: sqlx::Error) -> DbError {
    match e {
        sqlx::Error::Database(ref d) if d.is_unique_violation() => DbError::Rejected {
            field: "pushToken",
            msg: "is already used by another monitor".into(),
        },
        other => other.into(),
    }
}

type AnyQuery<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>;

/// A query whose text was built at run time. Only constants and numbers are
/// ever formatted into it; every value is a bind parameter.
fn dyn_query<'q>(sql: String) -> AnyQuery<'q> {
    sqlx::query(sqlx::AssertSqlSafe(sql))
}

/// Binds the 27 configuration columns, in `MONITOR_COLS` order after `id`.
fn bind_fields<'q>(q: AnyQuery<'q>, f: &MonitorFields) -> AnyQuery<'q> {
    let b = |v: Option<bool>| v.map(i64::from);
    let headers = f.headers.as_ref().map(|h| match h {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    });
    let codes = f
        .accepted_statuscodes
        .as_ref()
        .map(|c| serde_json::to_string(c).unwrap_or_else(|_| "[]".into()));
    q.bind(f.name.clone().unwrap_or_default())
        .bind(f.kind.clone().unwrap_or_default())
        .bind(f.url.clone())
        .bind(f.hostname.clone())
        .bind(f.port)
        .bind(f.method.clone())
        .bind(headers)
        .bind(f.body.clone())
        .bind(f.interval.unwrap_or(60))
        .bind(f.retry_interval.or(f.interval).unwrap_or(60))
        .bind(f.maxretries.unwrap_or(0))
        .bind(
            f.timeout
                .map(|t| (t * 1000.0).round() as i64)
                .unwrap_or(48_000),
        )
        .bind(codes)
        .bind(f.maxredirects.unwrap_or(10))
        .bind(b(f.ignore_tls).unwrap_or(0))
        .bind(f.keyword.clone())
        .bind(b(f.invert_keyword).unwrap_or(0))
        .bind(f.json_path.clone())
        .bind(f.json_path_operator.clone())
        .bind(f.expected_value.clone())
        .bind(f.dns_resolve_server.clone())
        .bind(f.dns_resolve_type.clone())
        .bind(f.packet_count)
        .bind(f.push_token.clone())
        .bind(f.expiry_notification.unwrap_or(0))
        .bind(b(f.active).unwrap_or(1))
        .bind(f.description.clone())
}

fn monitor_from_row(r: &AnyRow) -> Result<MonitorRecord> {
    let headers: Option<String> = r.try_get("headers")?;
    let codes: Option<String> = r.try_get("accepted_statuscodes")?;
    let flag = |c: &str| -> Result<Option<bool>> { Ok(Some(r.try_get::<i64, _>(c)? != 0)) };
    let default_node_id: String = r.try_get("default_node_id")?;
    let fields = MonitorFields {
        name: r.try_get("name")?,
        kind: r.try_get("type")?,
        url: r.try_get("url")?,
        hostname: r.try_get("hostname")?,
        port: r.try_get("port")?,
        method: r.try_get("method")?,
        headers: headers.and_then(|h| serde_json::from_str(&h).ok()),
        body: r.try_get("body")?,
        interval: r.try_get("interval_secs")?,
        retry_interval: r.try_get("retry_interval_secs")?,
        maxretries: r.try_get("maxretries")?,
        timeout: Some(r.try_get::<i64, _>("timeout_ms")? as f64 / 1000.0),
        accepted_statuscodes: codes.and_then(|c| serde_json::from_str(&c).ok()),
        maxredirects: r.try_get("max_redirects")?,
        ignore_tls: flag("ignore_tls")?,
        keyword: r.try_get("keyword")?,
        invert_keyword: flag("invert_keyword")?,
        json_path: r.try_get("json_path")?,
        json_path_operator: r.try_get("json_path_operator")?,
        expected_value: r.try_get("expected_value")?,
        dns_resolve_server: r.try_get("dns_resolve_server")?,
        dns_resolve_type: r.try_get("dns_resolve_type")?,
        packet_count: r.try_get("packet_count")?,
        push_token: r.try_get("push_token")?,
        expiry_notification: r.try_get("expiry_notification")?,
        active: flag("active")?,
        description: r.try_get("description")?,
        node_id: Some(default_node_id.clone()),
    };
    Ok(MonitorRecord {
        id: MonitorId(r.try_get("id")?),
        fields,
        default_node_id: NodeId(default_node_id),
        assign_node: r.try_get::<Option<String>, _>("assign_node")?.map(NodeId),
        rev: r.try_get("rev")?,
        created_at: r.try_get("created_at")?,
        modified_at: r.try_get("modified_at")?,
    })
}

fn node_from_row(r: &AnyRow) -> Result<Node> {
    let status: String = r.try_get("status")?;
    Ok(Node {
        node_id: NodeId(r.try_get("node_id")?),
        node_name: r.try_get("node_name")?,
        host: r.try_get("host")?,
        status: NodeStatus::parse(&status).unwrap_or(NodeStatus::Offline),
        last_seen: r.try_get("last_seen")?,
        health: NodeHealth {
            fails: r.try_get::<i64, _>("hc_fails")? as u32,
            passes: r.try_get::<i64, _>("hc_passes")? as u32,
            last_at: r.try_get("hc_last_at")?,
            last_ok: r.try_get::<Option<i64>, _>("hc_last_ok")?.map(|v| v != 0),
            last_ms: r.try_get("hc_last_ms")?,
            last_error: r.try_get("hc_last_error")?,
        },
        created_at: r.try_get("created_at")?,
        modified_at: r.try_get("modified_at")?,
    })
}

fn tls_from_row(r: &AnyRow) -> Result<TlsInfo> {
    Ok(TlsInfo {
        days_remaining: r.try_get("days_remaining")?,
        valid: r.try_get::<i64, _>("valid")? != 0,
        not_after: r.try_get("not_after")?,
        checked_at: r.try_get("checked_at")?,
    })
}

fn heartbeat_from_row(r: &AnyRow) -> Result<Heartbeat> {
    let status: i64 = r.try_get("status")?;
    Ok(Heartbeat {
        monitor_id: MonitorId(r.try_get("monitor_id")?),
        node_id: NodeId(r.try_get("node_id")?),
        status: Status::try_from(status).unwrap_or(Status::Down),
        time: r.try_get("time")?,
        ping: r.try_get("ping")?,
        msg: r.try_get("msg")?,
        important: r.try_get::<i64, _>("important")? != 0,
        duration: r.try_get("duration")?,
        retries: r.try_get::<i64, _>("retries")? as u32,
    })
}
