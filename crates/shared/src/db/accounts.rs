//! Dashboard accounts and their sessions. Only hashes are stored: argon2id
//! for passwords, SHA-256 for session tokens (random 256-bit secrets).

use super::{Db, Result};
use crate::accounts::{SESSION_IDLE_MS, SESSION_MAX_MS, SESSION_TOUCH_MS};
use crate::auth::{generate_secret, hash_secret};
use crate::now_ms;
use sqlx::Row;

/// An account as the login needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct Account {
    pub id: i64,
    pub username: String,
    /// The argon2id PHC string.
    pub password_hash: String,
    pub active: bool,
}

/// A live session: whose it is and the CSRF token its forms carry.
#[derive(Debug, Clone, PartialEq)]
pub struct Session {
    pub account_id: i64,
    pub username: String,
    pub csrf: String,
    pub expires_at: i64,
}

/// A new session's secrets, for the browser: the cookie's token and the
/// CSRF token. Neither is stored as is.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub token: String,
    pub csrf: String,
}

impl Db {
    /// How many accounts exist (0 means `/setup` is open).
    pub async fn account_count(&self) -> Result<i64> {
        let r = self
            .query("SELECT COUNT(*) AS n FROM account")
            .fetch_one(&self.pool)
            .await?;
        Ok(r.try_get("n")?)
    }

    /// Creates the first account, only while there is none: of two setups
    /// racing, one creates it and the other gets `None`.
    pub async fn create_first_account(&self, username: &str, hash: &str) -> Result<Option<i64>> {
        in_tx!(self, |c| {
            let n = self
                .query(
                    "INSERT INTO account (username, password, active, created_at) \
                     SELECT ?, ?, 1, ? FROM (SELECT COUNT(*) AS n FROM account) existing \
                     WHERE existing.n = 0",
                )
                .bind(username)
                .bind(hash)
                .bind(now_ms())
                .execute(&mut *c)
                .await?
                .rows_affected();
            if n == 0 {
                return Ok(None);
            }
            Ok(Some(self.last_insert_id(c).await?))
        })
    }

    pub async fn account_by_name(&self, username: &str) -> Result<Option<Account>> {
        self.query("SELECT id, username, password, active FROM account WHERE username = ?")
            .bind(username)
            .fetch_optional(&self.pool)
            .await?
            .map(|r| {
                Ok(Account {
                    id: r.try_get("id")?,
                    username: r.try_get("username")?,
                    password_hash: r.try_get("password")?,
                    active: r.try_get::<i64, _>("active")? != 0,
                })
            })
            .transpose()
    }

    /// Sets an account's password and ends its other sessions (`keep`, the
    /// session that changed it, stays).
    pub async fn set_password(&self, account: i64, hash: &str, keep: Option<&str>) -> Result<()> {
        in_tx!(self, |c| {
            self.query("UPDATE account SET password = ? WHERE id = ?")
                .bind(hash)
                .bind(account)
                .execute(&mut *c)
                .await?;
            self.query("DELETE FROM session WHERE account_id = ? AND token_hash <> ?")
                .bind(account)
                .bind(keep.map(hash_secret).unwrap_or_default())
                .execute(&mut *c)
                .await?;
            Ok(())
        })
    }

    /// Opens a session for `account`.
    pub async fn create_session(&self, account: i64) -> Result<NewSession> {
        let s = NewSession {
            token: generate_secret(),
            csrf: generate_secret(),
        };
        let now = now_ms();
        self.query(
            "INSERT INTO session (token_hash, account_id, csrf, created_at, last_seen, expires_at) \
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(hash_secret(&s.token))
        .bind(account)
        .bind(&s.csrf)
        .bind(now)
        .bind(now)
        .bind(now + SESSION_MAX_MS)
        .execute(&self.pool)
        .await?;
        Ok(s)
    }

    /// The live session `token` opens, if any: not expired, not idle for
    /// [`SESSION_IDLE_MS`], its account active. Its last use is recorded
    /// (at most once a [`SESSION_TOUCH_MS`]).
    pub async fn session(&self, token: &str, now: i64) -> Result<Option<Session>> {
        let key = hash_secret(token);
        let Some(r) = self
            .query(
                "SELECT s.account_id, s.csrf, s.last_seen, s.expires_at, a.username, a.active \
                 FROM session s JOIN account a ON a.id = s.account_id WHERE s.token_hash = ?",
            )
            .bind(&key)
            .fetch_optional(&self.pool)
            .await?
        else {
            return Ok(None);
        };
        let last_seen: i64 = r.try_get("last_seen")?;
        let expires_at: i64 = r.try_get("expires_at")?;
        let active = r.try_get::<i64, _>("active")? != 0;
        if !active || now >= expires_at || now - last_seen >= SESSION_IDLE_MS {
            return Ok(None);
        }
        if now - last_seen >= SESSION_TOUCH_MS {
            self.query("UPDATE session SET last_seen = ? WHERE token_hash = ?")
                .bind(now)
                .bind(&key)
                .execute(&self.pool)
                .await?;
        }
        Ok(Some(Session {
            account_id: r.try_get("account_id")?,
            username: r.try_get("username")?,
            csrf: r.try_get("csrf")?,
            expires_at,
        }))
    }

    /// Ends the session `token` opens (logout).
    pub async fn end_session(&self, token: &str) -> Result<()> {
        self.query("DELETE FROM session WHERE token_hash = ?")
            .bind(hash_secret(token))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Deletes sessions that can no longer open (expired or idle).
    pub async fn prune_sessions(&self, now: i64) -> Result<u64> {
        Ok(self
            .query("DELETE FROM session WHERE expires_at <= ? OR last_seen <= ?")
            .bind(now)
            .bind(now - SESSION_IDLE_MS)
            .execute(&self.pool)
            .await?
            .rows_affected())
    }
}
