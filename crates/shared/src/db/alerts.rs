//! The notification step of a heartbeat write: inside the batch's own
//! transaction, the beats that were written (their node owns the monitor)
//! are judged against the stored [`AlertState`]s ([`crate::notify::judge`]),
//! the changed states are stored, and each event queues one outbox row per
//! linked active channel. A fenced node's beats are not written, so they
//! create nothing; a retried batch is not written twice, so neither are its
//! events.

use super::dialect::Set;
use super::{Db, Result};
use crate::ids::{MonitorId, NodeId};
use crate::model::{Heartbeat, Status};
use crate::notify::{AlertRules, AlertState, EventKind, judge};
use crate::now_ms;
use sqlx::Row;
use std::collections::BTreeMap;

/// A monitor's owner and notification rules, read (and share-locked) in the
/// heartbeat transaction.
#[derive(Debug, Clone)]
pub(crate) struct Owned {
    pub owner: NodeId,
    pub rules: AlertRules,
}

/// An event to queue: what it announces and the beat (or check) behind it.
pub(crate) struct NewEvent<'a> {
    pub monitor: MonitorId,
    pub kind: EventKind,
    pub status: Status,
    pub time: i64,
    pub ping: Option<f64>,
    pub msg: &'a str,
    pub node: &'a NodeId,
}

/// A fresh event id: 128 random bits, hex.
pub fn new_event_id() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// The distinct monitors of `beats`, as an SQL list of numbers.
fn id_list<'a>(beats: impl Iterator<Item = &'a Heartbeat>) -> String {
    let mut ids: Vec<i64> = beats.map(|b| b.monitor_id.0).collect();
    ids.sort_unstable();
    ids.dedup();
    ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",")
}

impl Db {
    /// Owners and rules of the monitors `beats` name, locked against
    /// ownership changes until the transaction ends.
    pub(crate) async fn owners_in(
        &self,
        c: &mut sqlx::AnyConnection,
        beats: &[Heartbeat],
    ) -> Result<BTreeMap<MonitorId, Owned>> {
        let sql = format!(
            "SELECT id, owner, up_threshold, resend_interval, resend_minutes FROM monitor \
             WHERE id IN ({}){}",
            id_list(beats.iter()),
            self.dialect().for_share()
        );
        self.query_built(sql)
            .fetch_all(&mut *c)
            .await?
            .iter()
            .map(|r| {
                let n = |c: &str| -> Result<u32> {
                    Ok(r.try_get::<i64, _>(c)?.clamp(0, i64::from(u32::MAX)) as u32)
                };
                Ok((
                    MonitorId(r.try_get("id")?),
                    Owned {
                        owner: NodeId(r.try_get("owner")?),
                        rules: AlertRules {
                            up_threshold: n("up_threshold")?.max(1),
                            resend_interval: n("resend_interval")?,
                            resend_minutes: n("resend_minutes")?,
                        },
                    },
                ))
            })
            .collect()
    }

    /// Judges the written beats and queues their events. Returns the
    /// events' kinds.
    pub(crate) async fn queue_alerts(
        &self,
        c: &mut sqlx::AnyConnection,
        written: &[&Heartbeat],
        owned: &BTreeMap<MonitorId, Owned>,
    ) -> Result<Vec<EventKind>> {
        if written.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT monitor_id, announced, ups, downs, notified_at FROM monitor_alert \
             WHERE monitor_id IN ({}){}",
            id_list(written.iter().copied()),
            self.dialect().for_update()
        );
        let mut states: BTreeMap<MonitorId, AlertState> = BTreeMap::new();
        for r in self.query_built(sql).fetch_all(&mut *c).await? {
            let announced: Option<i64> = r.try_get("announced")?;
            states.insert(
                MonitorId(r.try_get("monitor_id")?),
                AlertState {
                    announced: announced.and_then(|s| Status::try_from(s).ok()),
                    ups: r.try_get::<i64, _>("ups")? as u32,
                    downs: r.try_get::<i64, _>("downs")? as u32,
                    notified_at: r.try_get("notified_at")?,
                },
            );
        }
        let before = states.clone();
        let mut beats = written.to_vec();
        beats.sort_by_key(|b| (b.monitor_id, b.time));
        let mut events: Vec<(EventKind, &Heartbeat)> = Vec::new();
        for b in beats {
            let Some(o) = owned.get(&b.monitor_id) else {
                continue;
            };
            let state = states.entry(b.monitor_id).or_default();
            if let Some(kind) = judge(state, &o.rules, b.status, b.time) {
                events.push((kind, b));
            }
        }
        let changed: Vec<(&MonitorId, &AlertState)> = states
            .iter()
            .filter(|(id, s)| before.get(id) != Some(s))
            .collect();
        if !changed.is_empty() {
            let mut sql = String::from(
                "INSERT INTO monitor_alert (monitor_id, announced, ups, downs, notified_at) VALUES ",
            );
            sql.push_str(&vec!["(?, ?, ?, ?, ?)"; changed.len()].join(", "));
            sql.push_str(&self.dialect().upsert(
                "monitor_alert",
                &["monitor_id"],
                &[
                    Set::New("announced"),
                    Set::New("ups"),
                    Set::New("downs"),
                    Set::New("notified_at"),
                ],
                &[],
            ));
            let mut q = self.query_built(sql);
            for (id, s) in changed {
                q = q
                    .bind(id.0)
                    .bind(s.announced.map(|a| a as i64))
                    .bind(i64::from(s.ups))
                    .bind(i64::from(s.downs))
                    .bind(s.notified_at);
            }
            q.execute(&mut *c).await?;
        }
        for (kind, b) in &events {
            let e = NewEvent {
                monitor: b.monitor_id,
                kind: *kind,
                status: b.status,
                time: b.time,
                ping: b.ping,
                msg: &b.msg,
                node: &b.node_id,
            };
            self.queue_event(c, &e).await?;
        }
        Ok(events.into_iter().map(|(k, _)| k).collect())
    }

    /// Counts `kinds` as created; called once their transaction committed.
    pub(crate) fn count_events(&self, kinds: &[EventKind]) {
        self.events.add(kinds);
    }

    /// Queues `e` for every active channel linked to its monitor, inside the
    /// caller's transaction.
    pub(crate) async fn queue_event(
        &self,
        c: &mut sqlx::AnyConnection,
        e: &NewEvent<'_>,
    ) -> Result<()> {
        let now = now_ms();
        self.query(
            "INSERT INTO notify_outbox (event_id, monitor_id, notification_id, kind, status, \
             beat_time, ping, msg, node_id, state, attempts, due_at, created_at) \
             SELECT ?, ?, mn.notification_id, ?, ?, ?, ?, ?, ?, 'pending', 0, ?, ? \
             FROM monitor_notification mn JOIN notification n ON n.id = mn.notification_id \
             WHERE mn.monitor_id = ? AND n.active = 1",
        )
        .bind(new_event_id())
        .bind(e.monitor.0)
        .bind(e.kind.as_str())
        .bind(e.status as i64)
        .bind(e.time)
        .bind(e.ping)
        .bind(e.msg)
        .bind(e.node.as_str())
        .bind(now)
        .bind(now)
        .bind(e.monitor.0)
        .execute(&mut *c)
        .await?;
        Ok(())
    }
}
