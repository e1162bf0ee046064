//! A lazily (re)connected database handle, for the background services: the
//! balancer starts and proxies with the last good view even while the
//! database is down.

use picket_shared::db::{Db, DbError};

pub struct DbSlot {
    url: String,
    pool: u32,
    db: Option<Db>,
}

impl DbSlot {
    pub fn new(url: &str, pool: u32) -> DbSlot {
        DbSlot {
            url: url.to_owned(),
            pool,
            db: None,
        }
    }

    /// The handle, connecting (and migrating) first when there is none yet.
    pub async fn get(&mut self) -> Result<&Db, DbError> {
        if self.db.is_none() {
            self.db = Some(Db::open(&self.url, self.pool).await?);
        }
        Ok(self.db.as_ref().expect("just set"))
    }
}
