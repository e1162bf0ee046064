//! Rows written straight to a database: nodes, and monitors in the one
//! validated form the API would store.

use picket_shared::NodeId;
use picket_shared::db::Db;
use picket_shared::monitor::{Limits, MonitorFields, ValidMonitor};
use serde_json::{Value, json};

/// A monitor from Kuma-shaped JSON, validated as stored rows are
/// ([`Limits::STORED`]); panics on invalid input, naming the fields.
pub fn valid(v: Value) -> ValidMonitor {
    let f = MonitorFields::from_json(v.clone()).unwrap_or_else(|e| panic!("{v}: {e}"));
    f.validate(&Limits::STORED)
        .unwrap_or_else(|e| panic!("{v}: {e:?}"))
}

/// An HTTP monitor `name` of `url` at 20 s, homed on `node` (or placed).
pub fn http(name: &str, node: Option<&str>, url: &str) -> ValidMonitor {
    let mut v = json!({"name": name, "type": "http", "url": url, "interval": 20});
    if let Some(n) = node {
        v["node_id"] = json!(n);
    }
    valid(v)
}

/// Registers a node row (online) for a backend.
pub async fn register(db: &Db, id: &str, host: &str) {
    db.register_node(&NodeId::from(id), id, host).await.unwrap();
}

/// Creates `n` active HTTP monitors homed on `node`.
pub async fn monitors_on(db: &Db, node: &str, n: usize) {
    for i in 0..n {
        let m = http(&format!("{node}-{i}"), Some(node), "http://127.0.0.1:1/");
        db.create_monitor(&m).await.unwrap();
    }
}

/// Writes `n` monitors homed on `node` in one transaction, named
/// `{prefix}-{i:05}`: every third a port monitor, the others HTTP; every
/// tenth paused. For the dashboard's scale tests and benchmarks, where
/// creating them one by one through the API would take minutes.
pub async fn bulk(db: &Db, node: &str, prefix: &str, n: usize) {
    let now = picket_shared::now_ms();
    let mut tx = db.pool().begin().await.unwrap();
    for chunk in (0..n).collect::<Vec<_>>().chunks(500) {
        let rows: Vec<String> = chunk
            .iter()
            .map(|i| {
                let active = i64::from(i % 10 != 9);
                if i % 3 == 2 {
                    format!(
                        "('{prefix}-{i:05}', 'port', NULL, 'db{i}.test', 5432, NULL, 60, 60, 0, 48000, \
                         NULL, {active}, '{node}', 1, {now}, {now})"
                    )
                } else {
                    format!(
                        "('{prefix}-{i:05}', 'http', 'https://site{i}.test/health', NULL, NULL, 'GET', 60, 60, 0, \
                         48000, '[\"200-299\"]', {active}, '{node}', 1, {now}, {now})"
                    )
                }
            })
            .collect();
        let sql = format!(
            "INSERT INTO monitor (name, type, url, hostname, port, method, interval_secs, \
             retry_interval_secs, maxretries, timeout_ms, accepted_statuscodes, active, \
             default_node_id, rev, created_at, modified_at) VALUES {}",
            rows.join(", ")
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&mut *tx)
            .await
            .unwrap();
    }
    sqlx::query("UPDATE revision SET rev = rev + 1")
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
}
