-- Dashboard accounts (Uptime Kuma's user columns) and their sessions. A
-- session is held by the browser as a random token; only its SHA-256 is
-- stored, so a copy of the database opens no session. Sessions live in the
-- database so that any node accepts them and a logout ends them everywhere.
CREATE TABLE account (
    id           BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    username     VARCHAR(255) NOT NULL UNIQUE,
    password     VARCHAR(255) NOT NULL,
    active       INTEGER NOT NULL DEFAULT 1,
    twofa_secret VARCHAR(255) NULL,
    twofa_status INTEGER NOT NULL DEFAULT 0,
    created_at   BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE session (
    token_hash CHAR(64) NOT NULL PRIMARY KEY,
    account_id BIGINT NOT NULL,
    csrf       CHAR(64) NOT NULL,
    created_at BIGINT NOT NULL,
    last_seen  BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE INDEX session_account ON session (account_id);
