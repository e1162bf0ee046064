//! The data layer: one `Db` handle over sqlx's `Any` driver, for SQLite (the
//! embedded default) and MariaDB/MySQL, chosen by the URL. Every monitor or
//! ownership change bumps the `revision` row in the same transaction and stamps
//! the changed rows with it, so nodes can follow changes by polling one row.
//!
//! Write transactions take the write lock first (the revision bump), which on
//! SQLite avoids lock upgrades and on InnoDB orders revisions by commit.
//!
//! One file per concern: [`nodes`], [`monitors`], [`ownership`] (moves,
//! conditional on the owner a plan saw), [`heartbeats`] (batches),
//! [`stats`] (aggregates and uptime), [`overview`] (what the dashboard
//! reads), [`tls`], [`keys`], [`retention`] and
//! [`cluster`] (the balancers' lease, history and handed-over requests).
//! [`dialect`] is the only place that knows how the backends' SQL differs;
//! every statement is built through it.

use sqlx::any::AnyPoolOptions;
use sqlx::{AnyPool, Executor, Row};
use std::time::Duration;

/// Runs `$body` with `$c: &mut AnyConnection` inside a transaction: commit on
/// `Ok`, explicit rollback on `Err` (a dropped transaction would keep its locks
/// until the connection is next used).
macro_rules! in_tx {
    ($self:ident, |$c:ident| $body:expr) => {{
        let mut tx = $self.pool.begin().await?;
        let r: $crate::db::Result<_> = async {
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

pub mod accounts;
pub mod alerts;
pub mod cluster;
pub mod dialect;
pub mod heartbeats;
pub mod keys;
pub mod monitors;
pub mod nodes;
pub mod notify;
pub mod overview;
pub mod ownership;
pub mod retention;
pub mod stats;
pub mod tags;
pub mod tls;

pub use accounts::{Account, NewSession, Session};
pub use cluster::{ClusterEvent, ClusterRequest, Lease, RequestState};
pub use dialect::Dialect;
pub use heartbeats::BatchKey;
pub use keys::ApiKey;
pub use monitors::{Changes, MonitorRecord};
pub use notify::{Channel, ChannelInput, Delivery, OutboxRow};
pub use overview::{Filter, Latest, NumberedBeat, Page, Sort, State};
pub use ownership::{ClusterMove, Fence};
pub use stats::{StatRow, aggregate};
pub use tags::{MonitorTag, Tag};

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

pub(crate) const DAY_MS: i64 = 86_400_000;

pub(crate) type AnyQuery<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>;

/// A cheap-to-clone database handle.
#[derive(Clone, Debug)]
pub struct Db {
    pool: AnyPool,
    backend: Backend,
    /// The notification events this handle's writes created.
    events: std::sync::Arc<crate::notify::EventCounts>,
}

/// Makes a SQLite database file (and its `-wal` and `-shm`, which SQLite
/// creates with the file's own mode) readable by its owner only: it holds
/// push tokens, target credentials and key hashes.
fn owner_only(url: &str) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let path = url
            .trim_start_matches("sqlite:")
            .trim_start_matches("//")
            .split('?')
            .next()
            .unwrap_or_default();
        if path.is_empty() || path.starts_with(':') {
            return; // in memory
        }
        for suffix in ["", "-wal", "-shm"] {
            let p = format!("{path}{suffix}");
            if std::path::Path::new(&p).exists()
                && let Err(e) = std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600))
            {
                tracing::warn!(file = %p, cause = %e, "cannot make the database file private");
            }
        }
    }
}

impl Db {
    /// The notification events this handle's writes created, by kind
    /// (`picket_notification_events_total`).
    pub fn events_created(&self) -> [(crate::notify::EventKind, u64); 4] {
        self.events.get()
    }

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
        if backend == Backend::Sqlite {
            owner_only(&url);
        }
        Ok(Db {
            pool,
            backend,
            events: Default::default(),
        })
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

    /// How this database spells what the backends spell differently.
    pub fn dialect(&self) -> Dialect {
        Dialect(self.backend)
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// A fixed statement, through the dialect.
    pub(crate) fn query<'q>(&self, sql: &'static str) -> AnyQuery<'q> {
        match self.dialect().sql(sql) {
            std::borrow::Cow::Borrowed(s) => sqlx::query(s),
            std::borrow::Cow::Owned(s) => sqlx::query(sqlx::AssertSqlSafe(s)),
        }
    }

    /// A statement whose text was built at run time, through the dialect.
    /// Only constants and numbers are ever formatted into it; every value is
    /// a bind parameter.
    pub(crate) fn query_built<'q>(&self, sql: String) -> AnyQuery<'q> {
        let sql = self.dialect().sql(&sql).into_owned();
        sqlx::query(sqlx::AssertSqlSafe(sql))
    }

    /// Applies pending migrations. Several processes may start at once on one
    /// database: a loser of that race retries and finds them applied.
    pub async fn migrate(&self) -> Result<()> {
        let migrator = self.dialect().migrator();
        let mut attempt = 0;
        loop {
            match migrator.run(&self.pool).await {
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
        self.query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Bumps the revision counter; must be the first statement of a write
    /// transaction (it takes the write lock).
    pub(crate) async fn bump_rev(&self, conn: &mut sqlx::AnyConnection) -> Result<i64> {
        self.query("UPDATE revision SET rev = rev + 1 WHERE id = 1")
            .execute(&mut *conn)
            .await?;
        Ok(self
            .query("SELECT rev FROM revision WHERE id = 1")
            .fetch_one(&mut *conn)
            .await?
            .try_get("rev")?)
    }

    /// The current revision.
    pub async fn revision(&self) -> Result<i64> {
        Ok(self
            .query("SELECT rev FROM revision WHERE id = 1")
            .fetch_one(&self.pool)
            .await?
            .try_get("rev")?)
    }

    /// The id the last INSERT on this connection generated.
    pub(crate) async fn last_insert_id(&self, c: &mut sqlx::AnyConnection) -> Result<i64> {
        Ok(self
            .query(self.dialect().last_insert_id())
            .fetch_one(&mut *c)
            .await?
            .try_get("id")?)
    }
}
