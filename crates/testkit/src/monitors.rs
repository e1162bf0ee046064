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
