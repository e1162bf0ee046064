//! API keys: only a hash of each secret is stored.

use super::{Db, Result};
use crate::auth::{self, Scope};
use crate::now_ms;
use sqlx::Row;

/// An API key as listed: never its secret.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiKey {
    pub id: i64,
    pub name: String,
    pub active: bool,
    pub scope: Scope,
    pub created_at: i64,
    pub expires_at: Option<i64>,
}

impl Db {
    /// Every API key, newest first.
    pub async fn api_keys(&self) -> Result<Vec<ApiKey>> {
        self.query(
            "SELECT id, name, active, scope, created_at, expires_at FROM api_key ORDER BY id DESC",
        )
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| {
            Ok(ApiKey {
                id: r.try_get("id")?,
                name: r.try_get("name")?,
                active: r.try_get::<i64, _>("active")? != 0,
                scope: Scope::parse(&r.try_get::<String, _>("scope")?).unwrap_or(Scope::Read),
                created_at: r.try_get("created_at")?,
                expires_at: r.try_get("expires_at")?,
            })
        })
        .collect()
    }

    /// Revokes key `id`: it opens nothing from now on (the row stays, listed
    /// as revoked).
    pub async fn revoke_api_key(&self, id: i64) -> Result<()> {
        let n = self
            .query("UPDATE api_key SET active = 0 WHERE id = ?")
            .bind(id)
            .execute(&self.pool)
            .await?
            .rows_affected();
        // MySQL counts only rows it changed: a key revoked before is 0 too.
        let exists = n > 0
            || self
                .query("SELECT id FROM api_key WHERE id = ?")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?
                .is_some();
        if !exists {
            return Err(super::DbError::NotFound(format!("API key {id}")));
        }
        Ok(())
    }

    /// Creates an API key; returns its id and the full token (shown only once).
    pub async fn create_api_key(&self, name: &str, scope: Scope) -> Result<(i64, String)> {
        let secret = auth::generate_secret();
        let id = in_tx!(self, |c| {
            self.query(
                "INSERT INTO api_key (name, key_hash, active, scope, created_at) VALUES (?, ?, 1, ?, ?)",
            )
            .bind(name)
            .bind(auth::hash_secret(&secret))
            .bind(scope.as_str())
            .bind(now_ms())
            .execute(&mut *c)
            .await?;
            self.last_insert_id(c).await
        })?;
        Ok((id, auth::format_token(id, &secret)))
    }

    /// Whether `token` is an active, unexpired API key with the `admin`
    /// scope (what the balancer's actions need).
    pub async fn verify_api_key(&self, token: &str) -> Result<bool> {
        Ok(self.api_key_scope(token).await? == Some(Scope::Admin))
    }

    /// The scope of `token` when it is an active, unexpired API key
    /// (constant-time compare); `None` otherwise.
    pub async fn api_key_scope(&self, token: &str) -> Result<Option<Scope>> {
        let Some((id, secret)) = auth::split_token(token) else {
            return Ok(None);
        };
        let row = self
            .query("SELECT key_hash, active, scope, expires_at FROM api_key WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let hash: String = row.try_get("key_hash")?;
        let active: i64 = row.try_get("active")?;
        let expires: Option<i64> = row.try_get("expires_at")?;
        let scope: String = row.try_get("scope")?;
        let fresh = expires.is_none_or(|e| e > now_ms());
        let ok = auth::ct_eq(&hash, &auth::hash_secret(secret)) && active == 1 && fresh;
        Ok(ok.then(|| Scope::parse(&scope)).flatten())
    }
}
