//! Notification channels, their links to monitors, and the outbox the
//! delivery workers drain: claim (a conditional UPDATE), send, mark sent
//! fenced on the claim (compare-and-swap), or schedule a retry.

use super::{Db, DbError, Result};
use crate::ids::{MonitorId, NodeId};
use crate::model::Status;
use crate::notify::EventKind;
use sqlx::Row;
use sqlx::any::AnyRow;
use std::collections::BTreeMap;

/// A channel as stored. `config` is the provider's settings, secrets
/// included: the API masks them, never this layer.
#[derive(Debug, Clone, PartialEq)]
pub struct Channel {
    pub id: i64,
    pub name: String,
    /// The provider (`webhook`, `slack`, …).
    pub kind: String,
    pub config: serde_json::Value,
    pub is_default: bool,
    pub active: bool,
    /// Events a minute sent one by one; past it they are folded into a
    /// digest sent when the minute is over (0 = no limit).
    pub rate_per_minute: u32,
    pub created_at: i64,
    pub modified_at: i64,
}

/// A validated channel to store.
#[derive(Debug, Clone, PartialEq)]
pub struct ChannelInput {
    pub name: String,
    pub kind: String,
    pub config: serde_json::Value,
    pub is_default: bool,
    pub active: bool,
    pub rate_per_minute: u32,
    /// Link it to every existing monitor too (Kuma's `applyExisting`).
    pub apply_existing: bool,
}

/// One queued delivery, as a worker claimed it.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxRow {
    pub id: i64,
    /// The same for every channel of one event, and across re-sends.
    pub event_id: String,
    pub monitor_id: MonitorId,
    pub channel_id: i64,
    pub kind: EventKind,
    pub status: Status,
    pub beat_time: i64,
    pub ping: Option<f64>,
    pub msg: String,
    pub node_id: NodeId,
    /// Attempts so far, this one included.
    pub attempts: u32,
    /// Held back by the channel's rate: it goes out in a digest.
    pub digest: bool,
    pub created_at: i64,
    /// The claim this worker holds until (epoch ms); its marks are fenced on it.
    pub claim_until: i64,
}

/// A delivery as `GET /api/v1/notifications/{id}/deliveries` lists it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Delivery {
    pub id: i64,
    #[serde(rename = "eventId")]
    pub event_id: String,
    #[serde(rename = "monitorID")]
    pub monitor_id: i64,
    pub event: String,
    /// pending | sent | failed
    pub status: String,
    pub attempts: i64,
    #[serde(rename = "lastError")]
    pub last_error: Option<String>,
    #[serde(rename = "createdAt")]
    pub created_at: i64,
    #[serde(rename = "sentAt")]
    pub sent_at: Option<i64>,
}

const CHANNEL_COLS: &str =
    "id, name, type, config, is_default, active, rate_per_minute, created_at, modified_at";
const OUTBOX_COLS: &str = "id, event_id, monitor_id, notification_id, kind, status, beat_time, \
    ping, msg, node_id, attempts, digest, created_at, claim_until";

impl Db {
    pub async fn channels(&self) -> Result<Vec<Channel>> {
        self.query_built(format!(
            "SELECT {CHANNEL_COLS} FROM notification ORDER BY id"
        ))
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(channel_from_row)
        .collect()
    }

    pub async fn channel(&self, id: i64) -> Result<Option<Channel>> {
        self.query_built(format!(
            "SELECT {CHANNEL_COLS} FROM notification WHERE id = ?"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(channel_from_row)
        .transpose()
    }

    /// Creates a channel (and with `apply_existing`, links every monitor).
    pub async fn create_channel(&self, ch: &ChannelInput) -> Result<Channel> {
        let now = crate::now_ms();
        let id = in_tx!(self, |c| {
            self.query(
                "INSERT INTO notification (name, type, config, is_default, active, rate_per_minute, \
                 created_at, modified_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(ch.name.as_str())
            .bind(ch.kind.as_str())
            .bind(ch.config.to_string())
            .bind(i64::from(ch.is_default))
            .bind(i64::from(ch.active))
            .bind(i64::from(ch.rate_per_minute))
            .bind(now)
            .bind(now)
            .execute(&mut *c)
            .await?;
            let id = self.last_insert_id(c).await?;
            if ch.apply_existing {
                self.link_all_monitors(c, id).await?;
            }
            Ok(id)
        })?;
        self.channel(id)
            .await?
            .ok_or_else(|| DbError::NotFound(format!("notification {id}")))
    }

    /// Replaces a channel's settings.
    pub async fn update_channel(&self, id: i64, ch: &ChannelInput) -> Result<Channel> {
        in_tx!(self, |c| {
            let r = self
                .query(
                    "UPDATE notification SET name = ?, type = ?, config = ?, is_default = ?, \
                     active = ?, rate_per_minute = ?, modified_at = ? WHERE id = ?",
                )
                .bind(ch.name.as_str())
                .bind(ch.kind.as_str())
                .bind(ch.config.to_string())
                .bind(i64::from(ch.is_default))
                .bind(i64::from(ch.active))
                .bind(i64::from(ch.rate_per_minute))
                .bind(crate::now_ms())
                .bind(id)
                .execute(&mut *c)
                .await?;
            if r.rows_affected() == 0 {
                return Err(DbError::NotFound(format!("notification {id}")));
            }
            if ch.apply_existing {
                self.link_all_monitors(c, id).await?;
            }
            Ok(())
        })?;
        self.channel(id)
            .await?
            .ok_or_else(|| DbError::NotFound(format!("notification {id}")))
    }

    /// Deletes a channel, its links and its queued deliveries.
    pub async fn delete_channel(&self, id: i64) -> Result<()> {
        in_tx!(self, |c| {
            let r = self
                .query("DELETE FROM notification WHERE id = ?")
                .bind(id)
                .execute(&mut *c)
                .await?;
            if r.rows_affected() == 0 {
                return Err(DbError::NotFound(format!("notification {id}")));
            }
            for sql in [
                "DELETE FROM monitor_notification WHERE notification_id = ?",
                "DELETE FROM notify_outbox WHERE notification_id = ?",
            ] {
                self.query(sql).bind(id).execute(&mut *c).await?;
            }
            Ok(())
        })
    }

    async fn link_all_monitors(&self, c: &mut sqlx::AnyConnection, channel: i64) -> Result<()> {
        let sql = self.dialect().insert_ignore(
            "monitor_notification (monitor_id, notification_id) SELECT id, ? FROM monitor",
        );
        self.query_built(sql).bind(channel).execute(&mut *c).await?;
        Ok(())
    }

    /// Sets the channels of `monitor`, inside the caller's transaction:
    /// `Some(ids)` replaces its links (every id must name a channel), `None`
    /// on a new monitor links the default channels, on an existing one
    /// leaves its links alone.
    pub(crate) async fn set_monitor_channels(
        &self,
        c: &mut sqlx::AnyConnection,
        monitor: MonitorId,
        ids: Option<&[i64]>,
        new: bool,
    ) -> Result<()> {
        let ids: Vec<i64> = match ids {
            Some(ids) => {
                for id in ids {
                    let known = self
                        .query("SELECT id FROM notification WHERE id = ?")
                        .bind(*id)
                        .fetch_optional(&mut *c)
                        .await?;
                    if known.is_none() {
                        return Err(DbError::Rejected {
                            field: "notificationIDList",
                            msg: format!("unknown notification {id}"),
                        });
                    }
                }
                ids.to_vec()
            }
            None if new => self
                .query("SELECT id FROM notification WHERE is_default = 1")
                .fetch_all(&mut *c)
                .await?
                .iter()
                .map(|r| r.try_get("id"))
                .collect::<Result<_, _>>()?,
            None => return Ok(()),
        };
        self.query("DELETE FROM monitor_notification WHERE monitor_id = ?")
            .bind(monitor.0)
            .execute(&mut *c)
            .await?;
        for id in ids {
            self.query(
                "INSERT INTO monitor_notification (monitor_id, notification_id) VALUES (?, ?)",
            )
            .bind(monitor.0)
            .bind(id)
            .execute(&mut *c)
            .await?;
        }
        Ok(())
    }

    /// The channels linked to each monitor (`only`: one monitor).
    pub async fn monitor_channels(
        &self,
        only: Option<MonitorId>,
    ) -> Result<BTreeMap<MonitorId, Vec<i64>>> {
        let rows = match only {
            Some(m) => {
                self.query(
                    "SELECT monitor_id, notification_id FROM monitor_notification \
                     WHERE monitor_id = ? ORDER BY notification_id",
                )
                .bind(m.0)
                .fetch_all(&self.pool)
                .await?
            }
            None => {
                self.query(
                    "SELECT monitor_id, notification_id FROM monitor_notification \
                     ORDER BY monitor_id, notification_id",
                )
                .fetch_all(&self.pool)
                .await?
            }
        };
        let mut out: BTreeMap<MonitorId, Vec<i64>> = BTreeMap::new();
        for r in rows {
            out.entry(MonitorId(r.try_get("monitor_id")?))
                .or_default()
                .push(r.try_get("notification_id")?);
        }
        Ok(out)
    }

    /// Claims up to `limit` due deliveries for `node` until `now + claim_ms`.
    /// Only the oldest undelivered row of each (monitor, channel) is due, so
    /// one pair's events go out in order. Each claim is a conditional UPDATE:
    /// a row another worker claimed first is skipped.
    pub async fn claim_deliveries(
        &self,
        node: &NodeId,
        now: i64,
        claim_ms: i64,
        limit: i64,
    ) -> Result<Vec<OutboxRow>> {
        let candidates: Vec<i64> = self
            .query_built(format!(
                "SELECT o.id FROM notify_outbox o WHERE o.state = 'pending' AND o.due_at <= ? \
                 AND (o.claim_until IS NULL OR o.claim_until < ?) \
                 AND NOT EXISTS (SELECT 1 FROM notify_outbox p WHERE p.state = 'pending' \
                   AND p.monitor_id = o.monitor_id AND p.notification_id = o.notification_id \
                   AND p.id < o.id) \
                 ORDER BY o.id LIMIT {limit}"
            ))
            .bind(now)
            .bind(now)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| r.try_get("id"))
            .collect::<Result<_, _>>()?;
        self.claim_ids(&candidates, node, now, claim_ms).await
    }

    /// Claims each of `ids` that is still pending and unclaimed (a
    /// conditional UPDATE each); returns the rows won.
    async fn claim_ids(
        &self,
        ids: &[i64],
        node: &NodeId,
        now: i64,
        claim_ms: i64,
    ) -> Result<Vec<OutboxRow>> {
        let until = now + claim_ms;
        let mut claimed = Vec::new();
        for &id in ids {
            let won = self
                .query(
                    "UPDATE notify_outbox SET claimed_by = ?, claim_until = ?, attempts = attempts + 1 \
                     WHERE id = ? AND state = 'pending' AND (claim_until IS NULL OR claim_until < ?)",
                )
                .bind(node.as_str())
                .bind(until)
                .bind(id)
                .bind(now)
                .execute(&self.pool)
                .await?
                .rows_affected()
                == 1;
            if won
                && let Some(r) = self
                    .query_built(format!(
                        "SELECT {OUTBOX_COLS} FROM notify_outbox WHERE id = ?"
                    ))
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?
            {
                claimed.push(outbox_from_row(&r)?);
            }
        }
        Ok(claimed)
    }

    /// Claims every due digest row of `channel` (a digest folds them all,
    /// whatever their monitor), oldest first.
    pub async fn claim_digest(
        &self,
        channel: i64,
        node: &NodeId,
        now: i64,
        claim_ms: i64,
    ) -> Result<Vec<OutboxRow>> {
        let ids: Vec<i64> = self
            .query(
                "SELECT id FROM notify_outbox WHERE notification_id = ? AND state = 'pending' \
                 AND digest = 1 AND due_at <= ? AND (claim_until IS NULL OR claim_until < ?) ORDER BY id",
            )
            .bind(channel)
            .bind(now)
            .bind(now)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| r.try_get("id"))
            .collect::<Result<_, _>>()?;
        self.claim_ids(&ids, node, now, claim_ms).await
    }

    /// How many deliveries of `channel` were sent after `since`, and when the
    /// earliest of them was.
    pub async fn sent_since(&self, channel: i64, since: i64) -> Result<(u32, Option<i64>)> {
        let r = self
            .query(
                "SELECT COUNT(*) AS n, MIN(sent_at) AS first FROM notify_outbox \
                 WHERE notification_id = ? AND state = 'sent' AND sent_at > ?",
            )
            .bind(channel)
            .bind(since)
            .fetch_one(&self.pool)
            .await?;
        Ok((r.try_get::<i64, _>("n")? as u32, r.try_get("first")?))
    }

    /// Holds a claimed delivery back for the channel's digest, due at
    /// `due_at` (when the channel's minute is over). Not an attempt.
    pub async fn defer_to_digest(
        &self,
        row: &OutboxRow,
        node: &NodeId,
        due_at: i64,
    ) -> Result<bool> {
        Ok(self
            .query(
                "UPDATE notify_outbox SET digest = 1, due_at = ?, attempts = attempts - 1, \
                 claimed_by = NULL, claim_until = NULL WHERE id = ? AND claimed_by = ? AND claim_until = ?",
            )
            .bind(due_at)
            .bind(row.id)
            .bind(node.as_str())
            .bind(row.claim_until)
            .execute(&self.pool)
            .await?
            .rows_affected()
            == 1)
    }

    /// Marks a claimed delivery sent. False when the claim was lost (it
    /// expired and another worker took the row): the mark is fenced on it.
    pub async fn mark_sent(&self, row: &OutboxRow, node: &NodeId, now: i64) -> Result<bool> {
        Ok(self
            .query(
                "UPDATE notify_outbox SET state = 'sent', sent_at = ?, last_error = NULL, \
                 claimed_by = NULL WHERE id = ? AND claimed_by = ? AND claim_until = ?",
            )
            .bind(now)
            .bind(row.id)
            .bind(node.as_str())
            .bind(row.claim_until)
            .execute(&self.pool)
            .await?
            .rows_affected()
            == 1)
    }

    /// Gives a claimed delivery back to be tried again at `due_at`, or with
    /// `due_at = None` gives up on it (`failed`). Fenced on the claim.
    pub async fn mark_unsent(
        &self,
        row: &OutboxRow,
        node: &NodeId,
        error: &str,
        due_at: Option<i64>,
    ) -> Result<bool> {
        let (state, due) = match due_at {
            Some(t) => ("pending", t),
            None => ("failed", 0),
        };
        Ok(self
            .query(
                "UPDATE notify_outbox SET state = ?, due_at = CASE WHEN ? = 'pending' THEN ? ELSE due_at END, \
                 last_error = ?, claimed_by = NULL, claim_until = NULL \
                 WHERE id = ? AND claimed_by = ? AND claim_until = ?",
            )
            .bind(state)
            .bind(state)
            .bind(due)
            .bind(error)
            .bind(row.id)
            .bind(node.as_str())
            .bind(row.claim_until)
            .execute(&self.pool)
            .await?
            .rows_affected()
            == 1)
    }

    /// Recent deliveries of a channel, newest first.
    pub async fn deliveries(&self, channel: i64, limit: i64) -> Result<Vec<Delivery>> {
        self.query_built(format!(
            "SELECT id, event_id, monitor_id, kind, state, attempts, last_error, created_at, sent_at \
             FROM notify_outbox WHERE notification_id = ? ORDER BY id DESC LIMIT {limit}"
        ))
        .bind(channel)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| {
            Ok(Delivery {
                id: r.try_get("id")?,
                event_id: r.try_get("event_id")?,
                monitor_id: r.try_get("monitor_id")?,
                event: r.try_get("kind")?,
                status: r.try_get("state")?,
                attempts: r.try_get("attempts")?,
                last_error: r.try_get("last_error")?,
                created_at: r.try_get("created_at")?,
                sent_at: r.try_get("sent_at")?,
            })
        })
        .collect()
    }

    /// Undelivered rows and the creation time of the oldest, for metrics.
    pub async fn outbox_depth(&self) -> Result<(i64, Option<i64>)> {
        let r = self
            .query(
                "SELECT COUNT(*) AS n, MIN(created_at) AS oldest FROM notify_outbox \
                 WHERE state = 'pending'",
            )
            .fetch_one(&self.pool)
            .await?;
        Ok((r.try_get("n")?, r.try_get("oldest")?))
    }
}

fn channel_from_row(r: &AnyRow) -> Result<Channel> {
    let config: String = r.try_get("config")?;
    Ok(Channel {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        kind: r.try_get("type")?,
        config: serde_json::from_str(&config).unwrap_or(serde_json::Value::Null),
        is_default: r.try_get::<i64, _>("is_default")? != 0,
        active: r.try_get::<i64, _>("active")? != 0,
        rate_per_minute: r
            .try_get::<i64, _>("rate_per_minute")?
            .clamp(0, i64::from(u32::MAX)) as u32,
        created_at: r.try_get("created_at")?,
        modified_at: r.try_get("modified_at")?,
    })
}

fn outbox_from_row(r: &AnyRow) -> Result<OutboxRow> {
    let kind: String = r.try_get("kind")?;
    let status: i64 = r.try_get("status")?;
    Ok(OutboxRow {
        id: r.try_get("id")?,
        event_id: r.try_get("event_id")?,
        monitor_id: MonitorId(r.try_get("monitor_id")?),
        channel_id: r.try_get("notification_id")?,
        kind: EventKind::parse(&kind).unwrap_or(EventKind::Down),
        status: Status::try_from(status).unwrap_or(Status::Down),
        beat_time: r.try_get("beat_time")?,
        ping: r.try_get("ping")?,
        msg: r.try_get("msg")?,
        node_id: NodeId(r.try_get("node_id")?),
        attempts: r.try_get::<i64, _>("attempts")? as u32,
        digest: r.try_get::<i64, _>("digest")? != 0,
        created_at: r.try_get("created_at")?,
        claim_until: r.try_get::<Option<i64>, _>("claim_until")?.unwrap_or(0),
    })
}
