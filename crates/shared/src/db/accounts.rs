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
    /// Two-factor sign-in is on.
    pub twofa: bool,
    /// The TOTP secret (base32), once setup has started.
    pub twofa_secret: Option<String>,
    /// The last time step a code was accepted for.
    pub twofa_last: i64,
}

/// How long a login waits for its second factor.
pub const PENDING_MS: i64 = 5 * 60_000;

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
        self.query(
            "SELECT id, username, password, active, twofa_status, twofa_secret, twofa_last \
             FROM account WHERE username = ?",
        )
        .bind(username)
        .fetch_optional(&self.pool)
        .await?
        .map(|r| {
            Ok(Account {
                id: r.try_get("id")?,
                username: r.try_get("username")?,
                password_hash: r.try_get("password")?,
                active: r.try_get::<i64, _>("active")? != 0,
                twofa: r.try_get::<i64, _>("twofa_status")? == 1,
                twofa_secret: r.try_get("twofa_secret")?,
                twofa_last: r.try_get("twofa_last")?,
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
        self.insert_session(account, true, SESSION_MAX_MS).await
    }

    /// Opens a session that waits for the second factor: it opens nothing
    /// until [`Db::verify_session`], and lapses after [`PENDING_MS`].
    pub async fn create_pending_session(&self, account: i64) -> Result<NewSession> {
        self.insert_session(account, false, PENDING_MS).await
    }

    async fn insert_session(&self, account: i64, verified: bool, life: i64) -> Result<NewSession> {
        let s = NewSession {
            token: generate_secret(),
            csrf: generate_secret(),
        };
        let now = now_ms();
        self.query(
            "INSERT INTO session (token_hash, account_id, csrf, created_at, last_seen, expires_at, verified) \
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(hash_secret(&s.token))
        .bind(account)
        .bind(&s.csrf)
        .bind(now)
        .bind(now)
        .bind(now + life)
        .bind(i64::from(verified))
        .execute(&self.pool)
        .await?;
        Ok(s)
    }

    /// The account and CSRF token of the session `token` opens while it
    /// waits for its second factor.
    pub async fn pending_session(
        &self,
        token: &str,
        now: i64,
    ) -> Result<Option<(Account, String)>> {
        let Some(r) = self
            .query(
                "SELECT a.username, s.csrf FROM session s JOIN account a ON a.id = s.account_id \
                 WHERE s.token_hash = ? AND s.verified = 0 AND s.expires_at > ? AND a.active = 1",
            )
            .bind(hash_secret(token))
            .bind(now)
            .fetch_optional(&self.pool)
            .await?
        else {
            return Ok(None);
        };
        let username: String = r.try_get("username")?;
        let csrf: String = r.try_get("csrf")?;
        Ok(self.account_by_name(&username).await?.map(|a| (a, csrf)))
    }

    /// The second factor was given: the waiting session opens, for a full
    /// session's life from now. False when it was not waiting.
    pub async fn verify_session(&self, token: &str, now: i64) -> Result<bool> {
        let n = self
            .query(
                "UPDATE session SET verified = 1, last_seen = ?, expires_at = ? \
                 WHERE token_hash = ? AND verified = 0 AND expires_at > ?",
            )
            .bind(now)
            .bind(now + SESSION_MAX_MS)
            .bind(hash_secret(token))
            .bind(now)
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(n == 1)
    }

    /// Starts two-factor setup with `secret` (while it is off).
    pub async fn start_two_factor(&self, account: i64, secret: &str) -> Result<()> {
        self.query("UPDATE account SET twofa_secret = ? WHERE id = ? AND twofa_status = 0")
            .bind(secret)
            .bind(account)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Turns two-factor on, its first code accepted at `step`, with these
    /// recovery codes (hashed here) replacing any before.
    pub async fn enable_two_factor(&self, account: i64, step: i64, codes: &[String]) -> Result<()> {
        in_tx!(self, |c| {
            self.query("UPDATE account SET twofa_status = 1, twofa_last = ? WHERE id = ?")
                .bind(step)
                .bind(account)
                .execute(&mut *c)
                .await?;
            self.query("DELETE FROM recovery_code WHERE account_id = ?")
                .bind(account)
                .execute(&mut *c)
                .await?;
            for code in codes {
                self.query("INSERT INTO recovery_code (account_id, code_hash) VALUES (?, ?)")
                    .bind(account)
                    .bind(hash_secret(&crate::totp::normalize_recovery(code)))
                    .execute(&mut *c)
                    .await?;
            }
            Ok(())
        })
    }

    /// Turns two-factor off and forgets its secret and recovery codes.
    pub async fn disable_two_factor(&self, account: i64) -> Result<()> {
        in_tx!(self, |c| {
            self.query(
                "UPDATE account SET twofa_status = 0, twofa_secret = NULL, twofa_last = 0 WHERE id = ?",
            )
            .bind(account)
            .execute(&mut *c)
            .await?;
            self.query("DELETE FROM recovery_code WHERE account_id = ?")
                .bind(account)
                .execute(&mut *c)
                .await?;
            Ok(())
        })
    }

    /// Records that a code of time step `step` was used, if no code of that
    /// step or a later one was before (one statement, so two nodes cannot
    /// both accept the same code).
    pub async fn accept_totp_step(&self, account: i64, step: i64) -> Result<bool> {
        let n = self
            .query("UPDATE account SET twofa_last = ? WHERE id = ? AND twofa_last < ?")
            .bind(step)
            .bind(account)
            .bind(step)
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(n == 1)
    }

    /// Uses up a recovery code: true if it was one of the account's, unused.
    pub async fn use_recovery_code(&self, account: i64, code: &str, now: i64) -> Result<bool> {
        let n = self
            .query(
                "UPDATE recovery_code SET used_at = ? \
                 WHERE account_id = ? AND code_hash = ? AND used_at IS NULL",
            )
            .bind(now)
            .bind(account)
            .bind(hash_secret(&crate::totp::normalize_recovery(code)))
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(n == 1)
    }

    /// Recovery codes the account has not used.
    pub async fn recovery_codes_left(&self, account: i64) -> Result<i64> {
        let r = self
            .query(
                "SELECT COUNT(*) AS n FROM recovery_code WHERE account_id = ? AND used_at IS NULL",
            )
            .bind(account)
            .fetch_one(&self.pool)
            .await?;
        Ok(r.try_get("n")?)
    }

    /// The live session `token` opens, if any: not expired, not idle for
    /// [`SESSION_IDLE_MS`], its account active. Its last use is recorded
    /// (at most once a [`SESSION_TOUCH_MS`]).
    pub async fn session(&self, token: &str, now: i64) -> Result<Option<Session>> {
        let key = hash_secret(token);
        let Some(r) = self
            .query(
                "SELECT s.account_id, s.csrf, s.last_seen, s.expires_at, a.username, a.active \
                 FROM session s JOIN account a ON a.id = s.account_id \
                 WHERE s.token_hash = ? AND s.verified = 1",
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
