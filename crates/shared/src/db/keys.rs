//! API keys: only a hash of each secret is stored.

use super::{Db, Result};
use crate::auth;
use crate::now_ms;
use sqlx::Row;

impl Db {
    /// Creates an API key; returns its id and the full token (shown only once).
    pub async fn create_api_key(&self, name: &str) -> Result<(i64, String)> {
        let secret = auth::generate_secret();
        let id = in_tx!(self, |c| {
            self.query(
                "INSERT INTO api_key (name, key_hash, active, created_at) VALUES (?, ?, 1, ?)",
            )
            .bind(name)
            .bind(auth::hash_secret(&secret))
            .bind(now_ms())
            .execute(&mut *c)
            .await?;
            self.last_insert_id(c).await
        })?;
        Ok((id, auth::format_token(id, &secret)))
    }

    /// Whether `token` is an active, unexpired API key (constant-time compare).
    pub async fn verify_api_key(&self, token: &str) -> Result<bool> {
        let Some((id, secret)) = auth::split_token(token) else {
            return Ok(false);
        };
        let row = self
            .query("SELECT key_hash, active, expires_at FROM api_key WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else { return Ok(false) };
        let hash: String = row.try_get("key_hash")?;
        let active: i64 = row.try_get("active")?;
        let expires: Option<i64> = row.try_get("expires_at")?;
        let fresh = expires.is_none_or(|e| e > now_ms());
        Ok(auth::ct_eq(&hash, &auth::hash_secret(secret)) && active == 1 && fresh)
    }
}
