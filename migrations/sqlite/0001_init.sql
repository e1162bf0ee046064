-- Picket schema, SQLite flavour. Times are epoch milliseconds (BIGINT);
-- booleans are 0/1 integers, so the same queries decode on both backends.

CREATE TABLE node (
    node_id        TEXT PRIMARY KEY NOT NULL,
    node_name      TEXT NOT NULL,
    host           TEXT NOT NULL,
    -- online | offline | leaving
    status         TEXT NOT NULL DEFAULT 'online',
    -- The node's lease: renewed by the node itself every few seconds.
    last_seen      BIGINT NOT NULL,
    -- Health checker state, kept here so it survives a balancer restart.
    hc_fails       BIGINT NOT NULL DEFAULT 0,
    hc_passes      BIGINT NOT NULL DEFAULT 0,
    hc_last_at     BIGINT,
    hc_last_ok     BIGINT,
    hc_last_ms     BIGINT,
    hc_last_error  TEXT,
    created_at     BIGINT NOT NULL,
    modified_at    BIGINT NOT NULL
);

CREATE TABLE monitor (
    id                   INTEGER PRIMARY KEY AUTOINCREMENT,
    name                 TEXT NOT NULL,
    type                 TEXT NOT NULL,
    url                  TEXT,
    hostname             TEXT,
    port                 BIGINT,
    method               TEXT,
    headers              TEXT,
    body                 TEXT,
    interval_secs        BIGINT NOT NULL,
    retry_interval_secs  BIGINT NOT NULL,
    maxretries           BIGINT NOT NULL DEFAULT 0,
    timeout_ms           BIGINT NOT NULL,
    accepted_statuscodes TEXT,
    max_redirects        BIGINT NOT NULL DEFAULT 10,
    ignore_tls           BIGINT NOT NULL DEFAULT 0,
    keyword              TEXT,
    invert_keyword       BIGINT NOT NULL DEFAULT 0,
    json_path            TEXT,
    json_path_operator   TEXT,
    expected_value       TEXT,
    dns_resolve_server   TEXT,
    dns_resolve_type     TEXT,
    packet_count         BIGINT,
    push_token           TEXT UNIQUE,
    expiry_notification  BIGINT NOT NULL DEFAULT 0,
    active               BIGINT NOT NULL DEFAULT 1,
    description          TEXT,
    default_node_id      TEXT NOT NULL,
    assign_node          TEXT,
    owner                TEXT GENERATED ALWAYS AS (COALESCE(assign_node, default_node_id)) STORED,
    -- Revision of the last change to this row (see the `revision` table).
    rev                  BIGINT NOT NULL,
    created_at           BIGINT NOT NULL,
    modified_at          BIGINT NOT NULL
);
CREATE INDEX monitor_rev ON monitor (rev);
CREATE INDEX monitor_owner ON monitor (owner, active);
CREATE INDEX monitor_default_node ON monitor (default_node_id);

-- Deleted monitors, so that nodes following revisions see deletions too.
CREATE TABLE monitor_tombstone (
    monitor_id BIGINT NOT NULL,
    rev        BIGINT NOT NULL
);
CREATE INDEX monitor_tombstone_rev ON monitor_tombstone (rev);

-- One row: bumped in the same transaction as every monitor or ownership change.
CREATE TABLE revision (
    id  INTEGER PRIMARY KEY NOT NULL,
    rev BIGINT NOT NULL
);
INSERT INTO revision (id, rev) VALUES (1, 0);

CREATE TABLE heartbeat (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    monitor_id BIGINT NOT NULL,
    node_id    TEXT NOT NULL,
    -- 0 down, 1 up, 2 pending, 3 maintenance
    status     BIGINT NOT NULL,
    time       BIGINT NOT NULL,
    ping       DOUBLE,
    msg        TEXT NOT NULL,
    important  BIGINT NOT NULL,
    duration   BIGINT NOT NULL,
    retries    BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX heartbeat_monitor_time ON heartbeat (monitor_id, time);
CREATE INDEX heartbeat_time ON heartbeat (time);

CREATE TABLE api_key (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT NOT NULL,
    -- SHA-256 of the secret part, hex. The secret itself is never stored.
    key_hash    TEXT NOT NULL,
    active      BIGINT NOT NULL DEFAULT 1,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT
);

-- Leases held by balancers (the leader lease for failover decisions).
CREATE TABLE lease (
    name       TEXT PRIMARY KEY NOT NULL,
    holder     TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);

-- Failover / recovery / rebalance history shown by the balancer.
CREATE TABLE cluster_event (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    time      BIGINT NOT NULL,
    kind      TEXT NOT NULL,
    node_id   TEXT,
    moved     BIGINT NOT NULL DEFAULT 0,
    detail    TEXT NOT NULL
);
