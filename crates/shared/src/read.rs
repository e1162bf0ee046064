//! The read model of monitors: what a person or a client looks at for a
//! monitor — its settings and ownership, its uptime over Uptime Kuma's
//! windows, its certificate facts and its latest beats — loaded in one place
//! from the data layer. The JSON API renders it; so will the pages. It holds
//! no SQL of its own and makes no decisions.

use crate::MonitorId;
use crate::db::{Db, MonitorRecord, MonitorTag, Result};
use crate::ids::NodeId;
use crate::model::{Heartbeat, TlsInfo, Uptime};

/// One monitor as shown.
#[derive(Debug, Clone, PartialEq)]
pub struct MonitorView {
    pub record: MonitorRecord,
    /// 24 h, 7 d and 30 d figures; zero beats where there is no data.
    pub uptime: Uptime,
    pub tls: Option<TlsInfo>,
    /// The latest beats, newest first (as many as were asked for).
    pub recent: Vec<Heartbeat>,
    /// The notification channels it is linked to.
    pub channels: Vec<i64>,
    pub tags: Vec<MonitorTag>,
}

/// Loads monitor views.
pub struct MonitorViews<'a> {
    db: &'a Db,
    /// Epoch ms the uptime windows end at.
    now: i64,
}

impl<'a> MonitorViews<'a> {
    pub fn new(db: &'a Db, now: i64) -> Self {
        MonitorViews { db, now }
    }

    /// One monitor with its `recent` latest beats; `None` when it does not exist.
    pub async fn one(&self, id: MonitorId, recent: i64) -> Result<Option<MonitorView>> {
        let Some(record) = self.db.monitor(id).await? else {
            return Ok(None);
        };
        let uptime = self.db.uptime(self.now, Some(id)).await?;
        let mut channels = self.db.monitor_channels(Some(id)).await?;
        let mut tags = self.db.monitor_tags(Some(&[id])).await?;
        Ok(Some(MonitorView {
            tags: tags.remove(&id).unwrap_or_default(),
            uptime: uptime.get(&id).copied().unwrap_or_default(),
            tls: self.db.tls_info(id).await?,
            recent: self.db.heartbeats(id, 0, recent).await?,
            channels: channels.remove(&id).unwrap_or_default(),
            record,
        }))
    }

    /// Every monitor, or those `owner` runs, without beats: five queries
    /// whatever the number of monitors.
    pub async fn all(&self, owner: Option<&NodeId>) -> Result<Vec<MonitorView>> {
        let records = self.db.monitors(owner).await?;
        let uptime = self.db.uptime(self.now, None).await?;
        let tls = self.db.tls_infos().await?;
        let mut channels = self.db.monitor_channels(None).await?;
        let mut tags = self.db.monitor_tags(None).await?;
        Ok(records
            .into_iter()
            .map(|record| MonitorView {
                tags: tags.remove(&record.id).unwrap_or_default(),
                uptime: uptime.get(&record.id).copied().unwrap_or_default(),
                tls: tls.get(&record.id).copied(),
                recent: Vec::new(),
                channels: channels.remove(&record.id).unwrap_or_default(),
                record,
            })
            .collect())
    }
}
