-- Two-factor sign-in (TOTP). `account.twofa_secret` holds the secret
-- (base32) from when setup starts; `twofa_status` 1 means it is on.
-- `twofa_last` is the last time step a code was accepted for, so a code
-- opens one session only. Recovery codes are stored as SHA-256 hashes and
-- each works once. A session waiting for the second factor is `verified`
-- 0 and opens nothing.
ALTER TABLE account ADD COLUMN twofa_last BIGINT NOT NULL DEFAULT 0;
ALTER TABLE session ADD COLUMN verified BIGINT NOT NULL DEFAULT 1;

CREATE TABLE recovery_code (
    account_id BIGINT NOT NULL,
    code_hash  CHAR(64) NOT NULL,
    used_at    BIGINT NULL,
    PRIMARY KEY (account_id, code_hash)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
