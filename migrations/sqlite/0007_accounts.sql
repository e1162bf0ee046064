-- Dashboard accounts (Uptime Kuma's user columns) and their sessions. A
-- session is held by the browser as a random token; only its SHA-256 is
-- stored, so a copy of the database opens no session. Sessions live in the
-- database so that any node accepts them and a logout ends them everywhere.
CREATE TABLE account (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    username     TEXT NOT NULL UNIQUE,
    password     TEXT NOT NULL,
    active       INTEGER NOT NULL DEFAULT 1,
    twofa_secret TEXT NULL,
    twofa_status INTEGER NOT NULL DEFAULT 0,
    created_at   BIGINT NOT NULL
);

CREATE TABLE session (
    token_hash TEXT NOT NULL PRIMARY KEY,
    account_id BIGINT NOT NULL,
    csrf       TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    last_seen  BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);

CREATE INDEX session_account ON session (account_id);
