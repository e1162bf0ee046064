//! The delivery worker every node runs. One pass ([`Worker::run_once`])
//! claims the due outbox rows (one conditional UPDATE each, so two nodes never
//! take the same row), sends them concurrently, and marks each one with an
//! update fenced on its own claim: sent, or back to pending with a backoff
//! (5 s doubling to 10 min, the receiver's `Retry-After` honoured), or
//! failed once it has been retried for a day or the receiver refused it.
//!
//! A node that dies between sending and marking leaves its claim to lapse;
//! another node then sends the row again with the same event id. That is the
//! only way a message is repeated.
//!
//! Bursts: a channel sends at most its `rate_per_minute` events one by one in
//! any minute; the rest are held back and folded into one digest, sent when
//! that minute is over (Slack gets "300 monitors DOWN: …", not 300 messages).

use crate::event::Event;
use crate::providers;
use crate::send::{self, SendError};
use picket_shared::NodeId;
use picket_shared::db::{Db, DbError, OutboxRow};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;

/// When deliveries are retried and for how long.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub first: Duration,
    pub max: Duration,
    /// A delivery still failing this long after its event is given up.
    pub give_up_after: Duration,
    /// How long a claim keeps other workers off a row (longer than a send).
    pub claim: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            first: Duration::from_secs(5),
            max: Duration::from_secs(600),
            give_up_after: Duration::from_secs(24 * 3600),
            claim: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// The wait before attempt `attempts + 1`.
    pub fn backoff(&self, attempts: u32) -> Duration {
        let doublings = attempts.saturating_sub(1).min(20);
        self.first.saturating_mul(1 << doublings).min(self.max)
    }
}

/// What became of one delivery in a pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivered {
    Sent,
    /// To be tried again.
    Retry,
    Failed,
    /// The claim lapsed before the mark (another worker owns the row now).
    Lost,
    /// Held back for the channel's digest.
    Deferred,
}

/// One pass's deliveries: (provider, what became of it).
#[derive(Debug, Default)]
pub struct Pass {
    /// Rows the pass claimed (a digest's extra rows not counted).
    pub claimed: usize,
    pub deliveries: Vec<(String, Delivered)>,
}

/// Rows one pass claims at most (a digest takes all of its channel's).
const PER_PASS: i64 = 64;

const MINUTE_MS: i64 = 60_000;

struct Inner {
    db: Db,
    node: NodeId,
    http: reqwest::Client,
    public_url: Option<String>,
    policy: RetryPolicy,
}

/// The delivery worker of one node; cheap to clone.
#[derive(Clone)]
pub struct Worker(Arc<Inner>);

impl Worker {
    pub fn new(db: Db, node: NodeId, public_url: Option<String>, policy: RetryPolicy) -> Worker {
        Worker(Arc::new(Inner {
            db,
            node,
            http: send::client(),
            public_url,
            policy,
        }))
    }

    /// Claims what is due at `now`, delivers it, marks it.
    pub async fn run_once(&self, now: i64) -> Result<Pass, DbError> {
        let i = &self.0;
        let claim_ms = i.policy.claim.as_millis() as i64;
        let rows =
            i.db.claim_deliveries(&i.node, now, claim_ms, PER_PASS)
                .await?;
        let claimed = rows.len();
        let mut by_channel: BTreeMap<i64, Vec<OutboxRow>> = BTreeMap::new();
        for row in rows {
            by_channel.entry(row.channel_id).or_default().push(row);
        }
        // Channels in parallel; one channel's deliveries one after another,
        // so its rate is counted right.
        let mut set = JoinSet::new();
        for (channel, rows) in by_channel {
            let w = self.clone();
            set.spawn(async move { w.deliver_channel(channel, rows, now).await });
        }
        let mut pass = Pass {
            claimed,
            ..Pass::default()
        };
        while let Some(r) = set.join_next().await {
            match r {
                Ok(Ok(d)) => pass.deliveries.extend(d),
                Ok(Err(e)) => tracing::warn!(cause = %e, "could not record a delivery"),
                Err(e) => tracing::error!(cause = %e, "delivery task failed"),
            }
        }
        Ok(pass)
    }

    /// One channel's claimed rows: a digest if any is held for one, else
    /// one by one up to the channel's rate, the rest held for a digest.
    async fn deliver_channel(
        &self,
        channel: i64,
        mut rows: Vec<OutboxRow>,
        now: i64,
    ) -> Result<Vec<(String, Delivered)>, DbError> {
        let i = &self.0;
        let mut out = Vec::new();
        let rate = match i.db.channel(channel).await? {
            Some(c) => c.rate_per_minute,
            None => 0,
        };
        if rows.iter().any(|r| r.digest) {
            let claim_ms = i.policy.claim.as_millis() as i64;
            let more = i.db.claim_digest(channel, &i.node, now, claim_ms).await?;
            rows.extend(more);
            return self.deliver_digest(channel, rows).await;
        }
        let allowed = if rate == 0 {
            rows.len()
        } else {
            let (sent, first) = i.db.sent_since(channel, now - MINUTE_MS).await?;
            let allowed = rate.saturating_sub(sent) as usize;
            if rows.len() > allowed {
                // The minute closes a minute after its first delivery.
                let window_end = first.unwrap_or(now) + MINUTE_MS;
                for row in &rows[allowed..] {
                    let d = if i.db.defer_to_digest(row, &i.node, window_end).await? {
                        Delivered::Deferred
                    } else {
                        Delivered::Lost
                    };
                    out.push(("-".to_owned(), d));
                }
            }
            allowed
        };
        rows.truncate(allowed);
        for row in rows {
            out.push(self.deliver(row).await?);
        }
        Ok(out)
    }

    /// Sends `rows` (one channel's) as one digest and marks every one.
    async fn deliver_digest(
        &self,
        channel: i64,
        mut rows: Vec<OutboxRow>,
    ) -> Result<Vec<(String, Delivered)>, DbError> {
        let i = &self.0;
        rows.sort_by_key(|r| r.id);
        rows.dedup_by_key(|r| r.id);
        let Some(ch) = i.db.channel(channel).await? else {
            let mut out = Vec::new();
            for row in &rows {
                i.db.mark_unsent(row, &i.node, "the channel was deleted", None)
                    .await?;
                out.push(("?".to_owned(), Delivered::Failed));
            }
            return Ok(out);
        };
        let mut events = Vec::with_capacity(rows.len());
        for row in &rows {
            if let Some(m) = i.db.monitor(row.monitor_id).await? {
                events.push(Event::new(row, &m, i.public_url.as_deref()));
            }
        }
        let digest = Event::digest(events, i.public_url.as_deref());
        let now = picket_shared::now_ms();
        let outcome = match providers::render(&ch.kind, &ch.config, &digest) {
            Some(req) => send::deliver(&i.http, &req, &digest.event_id).await,
            None => Err(SendError::Refused(format!(
                "unknown provider '{}'",
                ch.kind
            ))),
        };
        tracing::info!(
            channel,
            events = rows.len(),
            ok = outcome.is_ok(),
            "digest delivery"
        );
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            let marked = match &outcome {
                Ok(_) => {
                    i.db.mark_sent(row, &i.node, now)
                        .await?
                        .then_some(Delivered::Sent)
                }
                Err(SendError::Retry { msg, after }) => {
                    let wait = i
                        .policy
                        .backoff(row.attempts)
                        .max(after.unwrap_or_default());
                    let due = now + wait.as_millis() as i64;
                    i.db.mark_unsent(row, &i.node, msg, Some(due))
                        .await?
                        .then_some(Delivered::Retry)
                }
                Err(SendError::Refused(msg)) => {
                    i.db.mark_unsent(row, &i.node, msg, None)
                        .await?
                        .then_some(Delivered::Failed)
                }
            };
            out.push((ch.kind.clone(), marked.unwrap_or(Delivered::Lost)));
        }
        Ok(out)
    }

    /// Runs a pass every `every` until `stop` resolves; a pass that claimed
    /// all it may is followed by the next at once (a backlog drains at the
    /// receivers' pace, not the tick's).
    pub async fn run(
        self,
        every: Duration,
        stop: impl std::future::Future<Output = ()>,
        mut on_pass: impl FnMut(&Pass),
    ) {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(stop);
        loop {
            tokio::select! {
                _ = &mut stop => return,
                _ = tick.tick() => loop {
                    match self.run_once(picket_shared::now_ms()).await {
                        Ok(pass) => {
                            on_pass(&pass);
                            if pass.claimed < PER_PASS as usize {
                                break;
                            }
                        }
                        Err(e) => {
                            tracing::debug!(cause = %e, "delivery pass failed");
                            break;
                        }
                    }
                },
            }
        }
    }

    async fn deliver(&self, row: OutboxRow) -> Result<(String, Delivered), DbError> {
        let i = &self.0;
        let row = &row;
        let give_up = |why: String| async move {
            let d = if i.db.mark_unsent(row, &i.node, &why, None).await? {
                Delivered::Failed
            } else {
                Delivered::Lost
            };
            Ok::<_, DbError>(d)
        };
        let Some(channel) = i.db.channel(row.channel_id).await? else {
            return Ok(("?".into(), give_up("the channel was deleted".into()).await?));
        };
        let kind = channel.kind.clone();
        let Some(monitor) = i.db.monitor(row.monitor_id).await? else {
            return Ok((kind, give_up("the monitor was deleted".into()).await?));
        };
        let event = Event::new(row, &monitor, i.public_url.as_deref());
        let Some(out) = providers::render(&channel.kind, &channel.config, &event) else {
            return Ok((
                kind,
                give_up(format!("unknown provider '{}'", channel.kind)).await?,
            ));
        };
        let now = picket_shared::now_ms();
        let done = match send::deliver(&i.http, &out, &event.event_id).await {
            Ok(_) => {
                if i.db.mark_sent(row, &i.node, now).await? {
                    Delivered::Sent
                } else {
                    Delivered::Lost
                }
            }
            Err(SendError::Retry { msg, after }) => {
                let age = Duration::from_millis((now - row.created_at).max(0) as u64);
                if age >= i.policy.give_up_after {
                    return Ok((
                        kind,
                        give_up(format!("{msg} (gave up after retrying for {age:?})")).await?,
                    ));
                }
                let wait = i
                    .policy
                    .backoff(row.attempts)
                    .max(after.unwrap_or_default());
                let due = now + wait.as_millis() as i64;
                tracing::info!(delivery = row.id, provider = %kind, attempt = row.attempts, cause = %msg, retry_in = ?wait, "delivery failed; will retry");
                if i.db.mark_unsent(row, &i.node, &msg, Some(due)).await? {
                    Delivered::Retry
                } else {
                    Delivered::Lost
                }
            }
            Err(SendError::Refused(msg)) => {
                tracing::warn!(delivery = row.id, provider = %kind, cause = %msg, "the receiver refused a delivery");
                give_up(msg).await?
            }
        };
        Ok((kind, done))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_five_seconds_to_ten_minutes() {
        let p = RetryPolicy::default();
        let secs: Vec<u64> = (1..=10).map(|a| p.backoff(a).as_secs()).collect();
        assert_eq!(secs, [5, 10, 20, 40, 80, 160, 320, 600, 600, 600]);
    }
}
