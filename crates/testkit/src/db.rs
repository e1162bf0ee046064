//! Test support: a fresh database per test, on SQLite (a temp file) and on the
//! local MariaDB (a new database, dropped afterwards).
//!
//! MariaDB is at `PICKET_TEST_MYSQL_URL` (default `mysql://root@127.0.0.1:3306`).
//! When it is unreachable the MariaDB half of a test is skipped with a note —
//! unless `CI` or `PICKET_REQUIRE_MYSQL` is set, where it is a failure.

use picket_shared::db::Db;
use std::sync::atomic::{AtomicU32, Ordering};

/// A database that lives as long as this value.
pub struct TestDb {
    /// URL a child process can use to reach the same database.
    pub url: String,
    pub db: Db,
    /// Which backend, for assertion messages.
    pub label: &'static str,
    _dir: Option<tempfile::TempDir>,
    mysql_drop: Option<(String, String)>,
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some((server, name)) = self.mysql_drop.take() {
            // Drop runs outside async context: a short-lived runtime on a thread.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .ok()?;
                rt.block_on(async {
                    use sqlx::Row;
                    let admin = Db::connect(&server, 1).await.ok()?;
                    // Connections the test left with an open transaction hold
                    // metadata locks DROP DATABASE would wait on for ever (the
                    // test's runtime, blocked here, cannot roll them back).
                    let others = sqlx::query(
                        "SELECT CAST(id AS SIGNED) AS id FROM information_schema.processlist \
                         WHERE db = ? AND id <> CONNECTION_ID()",
                    )
                    .bind(&name)
                    .fetch_all(admin.pool())
                    .await
                    .ok()?;
                    for r in others {
                        let id: i64 = r.try_get("id").ok()?;
                        let kill = sqlx::AssertSqlSafe(format!("KILL {id}"));
                        let _ = sqlx::query(kill).execute(admin.pool()).await;
                    }
                    sqlx::query(sqlx::AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS `{name}`"
                    )))
                    .execute(admin.pool())
                    .await
                    .ok()
                })
            })
            .join();
        }
    }
}

/// A migrated SQLite database in a temp directory.
pub async fn sqlite() -> TestDb {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("picket.db").display()
    );
    let db = Db::open(&url, 8).await.expect("open sqlite");
    TestDb {
        url,
        db,
        label: "sqlite",
        _dir: Some(dir),
        mysql_drop: None,
    }
}

fn mysql_required() -> bool {
    std::env::var_os("CI").is_some() || std::env::var_os("PICKET_REQUIRE_MYSQL").is_some()
}

/// A fresh, migrated MariaDB database, or `None` when the server is unreachable
/// and not required.
pub async fn mysql() -> Option<TestDb> {
    static SEQ: AtomicU32 = AtomicU32::new(0);
    let server = std::env::var("PICKET_TEST_MYSQL_URL")
        .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306".into());
    let server = server.trim_end_matches('/').to_owned();
    let admin = match Db::connect(&format!("{server}/"), 1).await {
        Ok(a) => a,
        Err(e) if !mysql_required() => {
            eprintln!("note: MariaDB at {server} unreachable ({e}); skipping the MariaDB half");
            return None;
        }
        Err(e) => panic!("MariaDB at {server} is required here (CI) but unreachable: {e}"),
    };
    let name = format!(
        "picket_t_{}_{}_{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed),
        picket_shared::now_ms() % 100_000
    );
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE `{name}`")))
        .execute(admin.pool())
        .await
        .expect("create test database");
    let url = format!("{server}/{name}");
    let db = Db::open(&url, 8).await.expect("open mariadb");
    Some(TestDb {
        url,
        db,
        label: "mariadb",
        _dir: None,
        mysql_drop: Some((format!("{server}/"), name)),
    })
}

/// SQLite always, and MariaDB when reachable (or required).
pub async fn backends() -> Vec<TestDb> {
    let mut v = vec![sqlite().await];
    v.extend(mysql().await);
    v
}

/// The `msg` of a heartbeat the database refuses after [`refuse_heartbeats`].
pub const REFUSED_MSG: &str = "refuse me";

/// Makes the database itself refuse, with an error, any heartbeat whose `msg`
/// is [`REFUSED_MSG`] (a trigger), so a test can fail a write part-way.
/// [`allow_heartbeats`] lifts it.
pub async fn refuse_heartbeats(db: &Db) {
    let sql =
        db.dialect()
            .failing_insert_trigger("refuse_heartbeat", "heartbeat", "msg", REFUSED_MSG);
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .execute(db.pool())
        .await
        .expect("create trigger");
}

pub async fn allow_heartbeats(db: &Db) {
    sqlx::query("DROP TRIGGER refuse_heartbeat")
        .execute(db.pool())
        .await
        .expect("drop trigger");
}
