//! Certificate facts (days remaining, validity) per monitor, as its last
//! check of an https target read them.

use super::dialect::Set;
use super::{Db, Result};
use crate::ids::MonitorId;
use crate::model::TlsInfo;
use sqlx::Row;
use sqlx::any::AnyRow;
use std::collections::BTreeMap;

impl Db {
    /// Records the certificate facts a check of `url` read, only while the
    /// monitor still targets `url`: a check that was in flight when the URL
    /// changed cannot bring back the old target's facts.
    pub async fn save_tls_info(
        &self,
        id: MonitorId,
        url: &str,
        days_remaining: i64,
        valid: bool,
        not_after: i64,
        checked_at: i64,
    ) -> Result<()> {
        let sql = format!(
            "INSERT INTO monitor_tls_info (monitor_id, days_remaining, valid, not_after, checked_at) \
             SELECT id, ?, ?, ?, ? FROM monitor WHERE id = ? AND url = ?{}",
            self.dialect().upsert(
                "monitor_tls_info",
                &["monitor_id"],
                &[
                    Set::New("days_remaining"),
                    Set::New("valid"),
                    Set::New("not_after"),
                    Set::New("checked_at"),
                ],
                &[],
            )
        );
        self.query_built(sql)
            .bind(days_remaining)
            .bind(i64::from(valid))
            .bind(not_after)
            .bind(checked_at)
            .bind(id.0)
            .bind(url)
            .execute(&self.pool)
            .await?;
        Ok(())
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
