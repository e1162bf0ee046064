//! Certificate facts (days remaining, validity) per monitor, as its last
//! check of an https target read them.

use super::alerts::NewEvent;
use super::dialect::Set;
use super::{Db, Result};
use crate::ids::{MonitorId, NodeId};
use crate::model::{Status, TlsInfo};
use crate::notify::{EventKind, tls_expiry_crossed};
use sqlx::Row;
use sqlx::any::AnyRow;
use std::collections::BTreeMap;

impl Db {
    /// Records the certificate facts a check of `url` by `node` read, only
    /// while the monitor still targets `url`: a check that was in flight when
    /// the URL changed cannot bring back the old target's facts. A TLS-expiry
    /// threshold the certificate newly crosses ([`tls_expiry_crossed`]) is
    /// queued for the monitor's channels in the same transaction, once per
    /// certificate. Returns whether it was.
    pub async fn save_tls_info(
        &self,
        id: MonitorId,
        url: &str,
        info: &TlsInfo,
        node: &NodeId,
    ) -> Result<bool> {
        let d = self.dialect();
        let crossed = in_tx!(self, |c| {
            // A write first: it takes the write lock on SQLite (no lock
            // upgrade after the reads) and this row's lock on InnoDB.
            self.query("UPDATE monitor_tls_info SET checked_at = checked_at WHERE monitor_id = ?")
                .bind(id.0)
                .execute(&mut *c)
                .await?;
            let monitor = self
                .query_built(format!(
                    "SELECT expiry_notification FROM monitor WHERE id = ? AND url = ?{}",
                    d.for_share()
                ))
                .bind(id.0)
                .bind(url)
                .fetch_optional(&mut *c)
                .await?;
            let Some(monitor) = monitor else {
                return Ok(false);
            };
            let expiry_days: i64 = monitor.try_get("expiry_notification")?;
            let prev = self
                .query_built(format!(
                    "SELECT not_after, expiry_notified FROM monitor_tls_info WHERE monitor_id = ?{}",
                    d.for_update()
                ))
                .bind(id.0)
                .fetch_optional(&mut *c)
                .await?;
            // What was announced belongs to the certificate it was read from.
            let announced = match prev {
                Some(r) if r.try_get::<i64, _>("not_after")? == info.not_after => {
                    r.try_get::<Option<i64>, _>("expiry_notified")?
                }
                _ => None,
            };
            let crossed = tls_expiry_crossed(expiry_days, announced, info.days_remaining);
            let sql = format!(
                "INSERT INTO monitor_tls_info (monitor_id, days_remaining, valid, not_after, checked_at, \
                 expiry_notified) VALUES (?, ?, ?, ?, ?, ?){}",
                d.upsert(
                    "monitor_tls_info",
                    &["monitor_id"],
                    &[
                        Set::New("days_remaining"),
                        Set::New("valid"),
                        Set::New("not_after"),
                        Set::New("checked_at"),
                        Set::New("expiry_notified"),
                    ],
                    &[],
                )
            );
            self.query_built(sql)
                .bind(id.0)
                .bind(info.days_remaining)
                .bind(i64::from(info.valid))
                .bind(info.not_after)
                .bind(info.checked_at)
                .bind(crossed.or(announced))
                .execute(&mut *c)
                .await?;
            if let Some(t) = crossed {
                let msg = format!(
                    "Certificate expires in {} days (within {t} days)",
                    info.days_remaining
                );
                let e = NewEvent {
                    monitor: id,
                    kind: EventKind::TlsExpiry,
                    status: Status::Up,
                    time: info.checked_at,
                    ping: None,
                    msg: &msg,
                    node,
                };
                self.queue_event(c, &e).await?;
            }
            Ok(crossed.is_some())
        })?;
        if crossed {
            self.count_events(&[EventKind::TlsExpiry]);
        }
        Ok(crossed)
    }

    /// The latest certificate facts of one monitor.
    pub async fn tls_info(&self, id: MonitorId) -> Result<Option<TlsInfo>> {
        self.query(
            "SELECT days_remaining, valid, not_after, checked_at FROM monitor_tls_info \
             WHERE monitor_id = ?",
        )
        .bind(id.0)
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(tls_from_row)
        .transpose()
    }

    /// The latest certificate facts of every monitor that has them.
    pub async fn tls_infos(&self) -> Result<BTreeMap<MonitorId, TlsInfo>> {
        self.query(
            "SELECT monitor_id, days_remaining, valid, not_after, checked_at FROM monitor_tls_info",
        )
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| Ok((MonitorId(r.try_get("monitor_id")?), tls_from_row(r)?)))
        .collect()
    }
}

fn tls_from_row(r: &AnyRow) -> Result<TlsInfo> {
    Ok(TlsInfo {
        days_remaining: r.try_get("days_remaining")?,
        valid: r.try_get::<i64, _>("valid")? != 0,
        not_after: r.try_get("not_after")?,
        checked_at: r.try_get("checked_at")?,
    })
}
