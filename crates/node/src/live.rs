//! Live beats for the dashboard's open pages. One task per node reads the
//! heartbeats every node wrote since its cursor, once a tick with one query
//! for all monitors, and fans them out in memory to the node's connected
//! browsers (`GET /api/v1/events`): a thousand open dashboards cost one
//! query a tick, not a thousand.
//!
//! The cursor is the heartbeat row id. Ids are handed out when a row is
//! inserted but seen when its transaction commits, so a lower id can appear
//! after a higher one (two nodes committing out of order). A skipped id is
//! kept as a hole for [`HOLE_WAIT`] and read again until it appears or the
//! wait ends (a rolled-back insert leaves a hole for ever).

use picket_shared::db::{Db, NumberedBeat};
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

/// How long a skipped heartbeat id is waited for.
pub const HOLE_WAIT: Duration = Duration::from_secs(10);
/// Most beats read per query; more are read at once in the same tick.
const READ_LIMIT: i64 = 5_000;
/// Beats kept for browsers that reconnect (`Last-Event-ID`).
const RING: usize = 20_000;
/// Holes remembered at most (a larger jump is taken as it is).
const MAX_HOLES: i64 = 10_000;

/// A beat as the streams send it: its row id, its monitor, and its event
/// data, serialised once for every stream.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveBeat {
    pub id: i64,
    pub monitor: i64,
    pub json: Arc<str>,
}

impl LiveBeat {
    fn of(b: &NumberedBeat) -> LiveBeat {
        let h = &b.beat;
        let json = serde_json::json!({
            "monitorID": h.monitor_id, "status": h.status as i64, "time": h.time,
            "ping": h.ping, "msg": h.msg, "important": h.important, "node": h.node_id,
        });
        LiveBeat {
            id: b.id,
            monitor: h.monitor_id.0,
            json: json.to_string().into(),
        }
    }
}

/// One tick's beats, with where each monitor's are: a stream that shows
/// a page of 50 monitors looks up its 50, not every beat of the fleet.
#[derive(Debug, Default)]
pub struct Batch {
    pub beats: Vec<LiveBeat>,
    by_monitor: std::collections::HashMap<i64, Vec<usize>>,
}

impl Batch {
    fn new(beats: Vec<LiveBeat>) -> Batch {
        let mut by_monitor: std::collections::HashMap<i64, Vec<usize>> =
            std::collections::HashMap::new();
        for (i, b) in beats.iter().enumerate() {
            by_monitor.entry(b.monitor).or_default().push(i);
        }
        Batch { beats, by_monitor }
    }

    /// The beats of the monitors in `only` (all without it), in the
    /// batch's order.
    pub fn of<'a>(&'a self, only: Option<&std::collections::HashSet<i64>>) -> Vec<&'a LiveBeat> {
        match only {
            None => self.beats.iter().collect(),
            Some(set) if set.len() < self.beats.len() => {
                let mut at: Vec<usize> = set
                    .iter()
                    .filter_map(|m| self.by_monitor.get(m))
                    .flatten()
                    .copied()
                    .collect();
                at.sort_unstable();
                at.into_iter().map(|i| &self.beats[i]).collect()
            }
            Some(set) => self
                .beats
                .iter()
                .filter(|b| set.contains(&b.monitor))
                .collect(),
        }
    }
}

/// The hub: the latest beats and a channel to the connected streams.
pub struct Live {
    tx: broadcast::Sender<Arc<Batch>>,
    ring: Mutex<VecDeque<LiveBeat>>,
    clients: AtomicUsize,
    /// Cancelled when the node stops, which ends every stream.
    pub stopping: CancellationToken,
}

impl Default for Live {
    fn default() -> Self {
        Live {
            tx: broadcast::channel(256).0,
            ring: Mutex::new(VecDeque::new()),
            clients: AtomicUsize::new(0),
            stopping: CancellationToken::new(),
        }
    }
}

/// Which beats a cursor delivers: ids above the highest seen, and holes.
#[derive(Debug, Default)]
pub struct Cursor {
    seen: i64,
    holes: BTreeMap<i64, Instant>,
}

impl Cursor {
    pub fn at(id: i64) -> Cursor {
        Cursor {
            seen: id,
            holes: BTreeMap::new(),
        }
    }

    /// The id to read after.
    pub fn low(&self) -> i64 {
        self.holes.keys().next().map_or(self.seen, |h| h - 1)
    }

    /// Keeps the beats not delivered before, in id order, and notes holes.
    pub fn take(&mut self, rows: Vec<NumberedBeat>, now: Instant) -> Vec<NumberedBeat> {
        self.holes
            .retain(|_, at| now.duration_since(*at) < HOLE_WAIT);
        let mut out = Vec::new();
        for r in rows {
            if r.id > self.seen {
                if r.id - self.seen <= MAX_HOLES {
                    for missing in self.seen + 1..r.id {
                        self.holes.insert(missing, now);
                    }
                }
                self.seen = r.id;
                out.push(r);
            } else if self.holes.remove(&r.id).is_some() {
                out.push(r);
            }
        }
        out
    }
}

/// A connected stream's receiver; counted while it lives.
pub struct Subscription {
    pub rx: broadcast::Receiver<Arc<Batch>>,
    live: Arc<Live>,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.live.clients.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Live {
    pub fn subscribe(self: &Arc<Self>) -> Subscription {
        self.clients.fetch_add(1, Ordering::Relaxed);
        Subscription {
            rx: self.tx.subscribe(),
            live: self.clone(),
        }
    }

    /// Streams connected now.
    pub fn clients(&self) -> usize {
        self.clients.load(Ordering::Relaxed)
    }

    /// Beats kept with an id above `after`, in delivery order; `None` when
    /// the ring no longer reaches back that far (the client must reload).
    pub fn since(&self, after: i64) -> Option<Vec<LiveBeat>> {
        let ring = self.ring.lock().expect("ring lock");
        let oldest = ring.iter().map(|b| b.id).min();
        match oldest {
            Some(o) if after + 1 < o && ring.len() >= RING => None,
            _ => Some(ring.iter().filter(|b| b.id > after).cloned().collect()),
        }
    }

    fn publish(&self, beats: Vec<NumberedBeat>) {
        if beats.is_empty() {
            return;
        }
        let beats: Vec<LiveBeat> = beats.iter().map(LiveBeat::of).collect();
        {
            let mut ring = self.ring.lock().expect("ring lock");
            ring.extend(beats.iter().cloned());
            while ring.len() > RING {
                ring.pop_front();
            }
        }
        // No receiver is fine: nobody is watching.
        let _ = self.tx.send(Arc::new(Batch::new(beats)));
    }

    /// Reads new beats every `tick` until the node stops.
    pub async fn run(self: Arc<Self>, db: Db, tick: Duration) {
        let mut cursor = loop {
            match db.last_beat_id().await {
                Ok(id) => break Cursor::at(id),
                Err(e) => {
                    tracing::warn!(cause = %e, "live updates: cannot read the heartbeat cursor");
                    tokio::select! {
                        _ = self.stopping.cancelled() => return,
                        _ = tokio::time::sleep(tick) => {}
                    }
                }
            }
        };
        let mut every = tokio::time::interval(tick);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = self.stopping.cancelled() => return,
                _ = every.tick() => {}
            }
            loop {
                match db.beats_after(cursor.low(), READ_LIMIT).await {
                    Ok(rows) => {
                        let full = rows.len() as i64 == READ_LIMIT;
                        self.publish(cursor.take(rows, Instant::now()));
                        if !full {
                            break;
                        }
                    }
                    Err(e) => {
                        tracing::debug!(cause = %e, "live updates: read failed");
                        break;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use picket_shared::model::{Heartbeat, Status};
    use picket_shared::{MonitorId, NodeId};

    fn beat(id: i64) -> NumberedBeat {
        NumberedBeat {
            id,
            beat: Heartbeat {
                monitor_id: MonitorId(1),
                node_id: NodeId("n".into()),
                status: Status::Up,
                time: id,
                ping: None,
                msg: String::new(),
                important: false,
                duration: 0,
                retries: 0,
            },
        }
    }

    fn ids(v: &[NumberedBeat]) -> Vec<i64> {
        v.iter().map(|b| b.id).collect()
    }

    fn live_ids(v: &[LiveBeat]) -> Vec<i64> {
        v.iter().map(|b| b.id).collect()
    }

    #[test]
    fn a_late_commit_below_the_cursor_is_still_delivered_once() {
        let t0 = Instant::now();
        let mut c = Cursor::at(10);
        // 12 committed before 11.
        assert_eq!(ids(&c.take(vec![beat(12)], t0)), [12]);
        assert_eq!(c.low(), 10, "11 is read again");
        assert_eq!(
            ids(&c.take(vec![beat(11), beat(12), beat(13)], t0)),
            [11, 13]
        );
        assert_eq!(c.low(), 13);
        assert!(c.take(vec![beat(11)], t0).is_empty(), "never twice");
    }

    #[test]
    fn a_hole_that_never_fills_is_given_up() {
        let t0 = Instant::now();
        let mut c = Cursor::at(0);
        c.take(vec![beat(2)], t0);
        assert_eq!(c.low(), 0);
        c.take(vec![], t0 + HOLE_WAIT);
        assert_eq!(c.low(), 2);
    }

    #[test]
    fn a_batch_gives_a_stream_its_monitors_beats_in_order() {
        let mut beats: Vec<LiveBeat> = (1..=6).map(|i| LiveBeat::of(&beat(i))).collect();
        for (b, m) in beats.iter_mut().zip([1, 2, 1, 3, 2, 1]) {
            b.monitor = m;
        }
        let batch = Batch::new(beats);
        let only: std::collections::HashSet<i64> = [1, 3].into();
        let got: Vec<i64> = batch.of(Some(&only)).iter().map(|b| b.id).collect();
        assert_eq!(got, [1, 3, 4, 6]);
        let many: std::collections::HashSet<i64> = (0..100).collect();
        assert_eq!(batch.of(Some(&many)).len(), 6);
        assert_eq!(batch.of(None).len(), 6);
    }

    #[test]
    fn the_ring_answers_a_reconnect_or_says_it_cannot() {
        let live = Live::default();
        live.publish((1..=5).map(beat).collect());
        let got = live.since(3).unwrap();
        assert_eq!(live_ids(&got), [4, 5]);
        assert!(got[0].json.contains("\"monitorID\":1"), "{}", got[0].json);
        live.publish((6..=RING as i64 + 10).map(beat).collect());
        assert!(live.since(1).is_none(), "beyond the ring");
        assert_eq!(live.since(RING as i64 + 9).unwrap().len(), 1);
    }
}
