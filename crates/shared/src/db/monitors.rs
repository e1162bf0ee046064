//! Monitors: create, update, delete (with a tombstone), reads, and the
//! changes since a revision that nodes follow.

use super::{AnyQuery, Db, DbError, Result};
use crate::ids::{MonitorId, NodeId};
use crate::monitor::{FieldError, Limits, MonitorFields, MonitorSpec, ValidMonitor, defaults};
use crate::now_ms;
use crate::placement;
use sqlx::Row;
use sqlx::any::AnyRow;

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

    /// What the monitor checks, as a person names it: its URL, else
    /// `host:port` or the host (Kuma's `hostnameOrURL`); none for a push.
    pub fn target(&self) -> Option<String> {
        let f = &self.fields;
        f.url.clone().or_else(|| {
            f.hostname.as_ref().map(|h| match f.port {
                Some(p) => format!("{h}:{p}"),
                None => h.clone(),
            })
        })
    }

    /// The typed spec a node runs. Stored rows were validated when written,
    /// and are held only to [`Limits::STORED`], so a later, stricter minimum
    /// interval does not make a node drop them.
    pub fn spec(&self) -> Result<MonitorSpec, Vec<FieldError>> {
        self.fields.parse(&Limits::STORED)
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

pub(crate) const MONITOR_COLS: &str = "id, name, type, url, hostname, port, method, headers, body, \
    interval_secs, retry_interval_secs, maxretries, timeout_ms, accepted_statuscodes, \
    max_redirects, ignore_tls, keyword, invert_keyword, json_path, json_path_operator, \
    expected_value, dns_resolve_server, dns_resolve_type, packet_count, push_token, \
    expiry_notification, active, description, resend_interval, resend_minutes, up_threshold, \
    default_node_id, assign_node, rev, created_at, modified_at";

/// The tables whose rows belong to one monitor and go with it.
const MONITOR_OWNED_TABLES: [&str; 10] = [
    "heartbeat",
    "monitor_tag",
    "monitor_status",
    "stat_minute",
    "stat_hour",
    "stat_day",
    "monitor_tls_info",
    "monitor_alert",
    "monitor_notification",
    "notify_outbox",
];

impl Db {
    /// Inserts a validated monitor. Its home is `m.node_id` when set (which
    /// must name a known node), else the least-loaded online node.
    pub async fn create_monitor(&self, m: &ValidMonitor) -> Result<MonitorRecord> {
        in_tx!(self, |c| {
            let rev = self.bump_rev(c).await?;
            let home = match &m.node_id {
                Some(id) => {
                    self.require_node(c, id.as_str()).await?;
                    id.clone()
                }
                None => {
                    let online = self.online_nodes_in(c).await?;
                    let counts = self.owner_counts_in(c).await?;
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
                vec!["?"; 35].join(", ")
            );
            bind_monitor(self.query_built(sql), m)
                .bind(home.as_str())
                .bind(None::<String>)
                .bind(rev)
                .bind(now)
                .bind(now)
                .execute(&mut *c)
                .await
                .map_err(unique_push_token)?;
            let id = self.last_insert_id(c).await?;
            if let Some(tags) = &m.tags {
                self.set_monitor_tags(c, MonitorId(id), tags).await?;
            }
            self.set_monitor_channels(c, MonitorId(id), m.notifications.as_deref(), true)
                .await?;
            self.monitor_in(c, MonitorId(id))
                .await?
                .ok_or_else(|| DbError::NotFound(format!("monitor {id}")))
        })
    }

    /// Replaces a monitor's settings (already merged and validated by the
    /// caller). A changed `node_id` re-homes it and clears any temporary
    /// assignment; a changed URL or type drops the certificate facts of the
    /// old target.
    pub async fn update_monitor(&self, id: MonitorId, m: &ValidMonitor) -> Result<MonitorRecord> {
        let fields = m.fields();
        in_tx!(self, |c| {
            let rev = self.bump_rev(c).await?;
            let Some(current) = self.monitor_in(c, id).await? else {
                return Err(DbError::NotFound(format!("monitor {id}")));
            };
            let home = m
                .node_id
                .clone()
                .unwrap_or_else(|| current.default_node_id.clone());
            let assign = if home == current.default_node_id {
                current.assign_node.clone()
            } else {
                self.require_node(c, home.as_str()).await?;
                None
            };
            let sets: Vec<String> = MONITOR_COLS["id, ".len()..]
                .split(", ")
                .filter(|col| *col != "created_at")
                .map(|col| format!("{col} = ?"))
                .collect();
            let sql = format!("UPDATE monitor SET {} WHERE id = ?", sets.join(", "));
            bind_monitor(self.query_built(sql), m)
                .bind(home.as_str())
                .bind(assign.as_ref().map(|a| a.as_str().to_owned()))
                .bind(rev)
                .bind(now_ms())
                .bind(id.0)
                .execute(&mut *c)
                .await
                .map_err(unique_push_token)?;
            if let Some(tags) = &m.tags {
                self.set_monitor_tags(c, id, tags).await?;
            }
            self.set_monitor_channels(c, id, m.notifications.as_deref(), false)
                .await?;
            // Certificate facts belong to the target they were read from.
            if current.fields.url != fields.url || current.fields.kind != fields.kind {
                self.query("DELETE FROM monitor_tls_info WHERE monitor_id = ?")
                    .bind(id.0)
                    .execute(&mut *c)
                    .await?;
            }
            self.monitor_in(c, id)
                .await?
                .ok_or_else(|| DbError::NotFound(format!("monitor {id}")))
        })
    }

    /// Deletes a monitor and everything recorded for it, leaving a tombstone
    /// for nodes.
    pub async fn delete_monitor(&self, id: MonitorId) -> Result<()> {
        in_tx!(self, |c| {
            let rev = self.bump_rev(c).await?;
            let r = self
                .query("DELETE FROM monitor WHERE id = ?")
                .bind(id.0)
                .execute(&mut *c)
                .await?;
            if r.rows_affected() == 0 {
                return Err(DbError::NotFound(format!("monitor {id}")));
            }
            for table in MONITOR_OWNED_TABLES {
                self.query_built(format!("DELETE FROM {table} WHERE monitor_id = ?"))
                    .bind(id.0)
                    .execute(&mut *c)
                    .await?;
            }
            self.query("INSERT INTO monitor_tombstone (monitor_id, rev) VALUES (?, ?)")
                .bind(id.0)
                .bind(rev)
                .execute(&mut *c)
                .await?;
            Ok(())
        })
    }

    pub(crate) async fn monitor_in(
        &self,
        conn: &mut sqlx::AnyConnection,
        id: MonitorId,
    ) -> Result<Option<MonitorRecord>> {
        let row = self
            .query_built(format!("SELECT {MONITOR_COLS} FROM monitor WHERE id = ?"))
            .bind(id.0)
            .fetch_optional(&mut *conn)
            .await?;
        row.as_ref().map(monitor_from_row).transpose()
    }

    pub async fn monitor(&self, id: MonitorId) -> Result<Option<MonitorRecord>> {
        let mut conn = self.pool.acquire().await?;
        self.monitor_in(&mut conn, id).await
    }

    /// The monitor with this push token, if any.
    pub async fn monitor_by_push_token(&self, token: &str) -> Result<Option<MonitorRecord>> {
        let row = self
            .query_built(format!(
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
                self.query_built(format!(
                    "SELECT {MONITOR_COLS} FROM monitor WHERE owner = ? ORDER BY id"
                ))
                .bind(o.as_str())
                .fetch_all(&self.pool)
                .await?
            }
            None => {
                self.query_built(format!("SELECT {MONITOR_COLS} FROM monitor ORDER BY id"))
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
        let changed = self
            .query_built(format!(
                "SELECT {MONITOR_COLS} FROM monitor WHERE rev > ? ORDER BY id"
            ))
            .bind(since)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(monitor_from_row)
            .collect::<Result<_>>()?;
        let deleted = self
            .query("SELECT monitor_id FROM monitor_tombstone WHERE rev > ?")
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

/// Binds the 30 configuration columns, in `MONITOR_COLS` order after `id`:
/// the typed settings from the spec, the kind's own from its canonical flat
/// form. Columns a kind does not use take the schema's defaults.
fn bind_monitor<'q>(q: AnyQuery<'q>, m: &ValidMonitor) -> AnyQuery<'q> {
    let s = &m.spec;
    let f = m.fields();
    let flag = |v: Option<bool>| i64::from(v.unwrap_or(false));
    let headers = f.headers.as_ref().map(|h| match h {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    });
    let codes = f
        .accepted_statuscodes
        .as_ref()
        .map(|c| serde_json::to_string(c).unwrap_or_else(|_| "[]".into()));
    q.bind(s.name.clone())
        .bind(s.kind.monitor_type().as_str())
        .bind(f.url)
        .bind(f.hostname)
        .bind(f.port)
        .bind(f.method)
        .bind(headers)
        .bind(f.body)
        .bind(i64::from(s.interval_secs))
        .bind(i64::from(s.retry_interval_secs))
        .bind(i64::from(s.max_retries))
        .bind(i64::from(s.timeout_ms))
        .bind(codes)
        .bind(f.maxredirects.unwrap_or(defaults::MAX_REDIRECTS))
        .bind(flag(f.ignore_tls))
        .bind(f.keyword)
        .bind(flag(f.invert_keyword))
        .bind(f.json_path)
        .bind(f.json_path_operator)
        .bind(f.expected_value)
        .bind(f.dns_resolve_server)
        .bind(f.dns_resolve_type)
        .bind(f.packet_count)
        .bind(f.push_token)
        .bind(f.expiry_notification.unwrap_or(0))
        .bind(i64::from(s.active))
        .bind(s.description.clone())
        .bind(i64::from(s.alerts.resend_interval))
        .bind(i64::from(s.alerts.resend_minutes))
        .bind(i64::from(s.alerts.up_threshold))
}

pub(crate) fn monitor_from_row(r: &AnyRow) -> Result<MonitorRecord> {
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
        resend_interval: r.try_get("resend_interval")?,
        resend_minutes: r.try_get("resend_minutes")?,
        up_threshold: r.try_get("up_threshold")?,
        notification_id_list: None,
        tags: None,
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
