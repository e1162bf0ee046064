-- Picket schema, MariaDB/MySQL flavour. Times are epoch milliseconds (BIGINT);
-- booleans and all integers are BIGINT so the same queries decode on both backends.

CREATE TABLE node (
    node_id        VARCHAR(64) NOT NULL PRIMARY KEY,
    node_name      VARCHAR(255) NOT NULL,
    host           VARCHAR(255) NOT NULL,
    status         VARCHAR(16) NOT NULL DEFAULT 'online',
    last_seen      BIGINT NOT NULL,
    hc_fails       BIGINT NOT NULL DEFAULT 0,
    hc_passes      BIGINT NOT NULL DEFAULT 0,
    hc_last_at     BIGINT NULL,
    hc_last_ok     BIGINT NULL,
    hc_last_ms     BIGINT NULL,
    hc_last_error  TEXT NULL,
    created_at     BIGINT NOT NULL,
    modified_at    BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE monitor (
    id                   BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    name                 VARCHAR(255) NOT NULL,
    type                 VARCHAR(32) NOT NULL,
    url                  TEXT NULL,
    hostname             VARCHAR(255) NULL,
    port                 BIGINT NULL,
    method               VARCHAR(16) NULL,
    headers              TEXT NULL,
    body                 MEDIUMTEXT NULL,
    interval_secs        BIGINT NOT NULL,
    retry_interval_secs  BIGINT NOT NULL,
    maxretries           BIGINT NOT NULL DEFAULT 0,
    timeout_ms           BIGINT NOT NULL,
    accepted_statuscodes TEXT NULL,
    max_redirects        BIGINT NOT NULL DEFAULT 10,
    ignore_tls           BIGINT NOT NULL DEFAULT 0,
    keyword              TEXT NULL,
    invert_keyword       BIGINT NOT NULL DEFAULT 0,
    json_path            TEXT NULL,
    json_path_operator   VARCHAR(16) NULL,
    expected_value       TEXT NULL,
    dns_resolve_server   VARCHAR(255) NULL,
    dns_resolve_type     VARCHAR(16) NULL,
    packet_count         BIGINT NULL,
    push_token           VARCHAR(64) NULL UNIQUE,
    expiry_notification  BIGINT NOT NULL DEFAULT 0,
    active               BIGINT NOT NULL DEFAULT 1,
    description          TEXT NULL,
    default_node_id      VARCHAR(64) NOT NULL,
    assign_node          VARCHAR(64) NULL,
    owner                VARCHAR(64) AS (COALESCE(assign_node, default_node_id)) STORED,
    rev                  BIGINT NOT NULL,
    created_at           BIGINT NOT NULL,
    modified_at          BIGINT NOT NULL,
    INDEX monitor_rev (rev),
    INDEX monitor_owner (owner, active),
    INDEX monitor_default_node (default_node_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE monitor_tombstone (
    monitor_id BIGINT NOT NULL,
    rev        BIGINT NOT NULL,
    INDEX monitor_tombstone_rev (rev)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE revision (
    id  BIGINT NOT NULL PRIMARY KEY,
    rev BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
INSERT INTO revision (id, rev) VALUES (1, 0);

CREATE TABLE heartbeat (
    id         BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    monitor_id BIGINT NOT NULL,
    node_id    VARCHAR(64) NOT NULL,
    status     BIGINT NOT NULL,
    time       BIGINT NOT NULL,
    ping       DOUBLE NULL,
    msg        TEXT NOT NULL,
    important  BIGINT NOT NULL,
    duration   BIGINT NOT NULL,
    retries    BIGINT NOT NULL DEFAULT 0,
    INDEX heartbeat_monitor_time (monitor_id, time),
    INDEX heartbeat_time (time)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE api_key (
    id          BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    name        VARCHAR(255) NOT NULL,
    key_hash    VARCHAR(64) NOT NULL,
    active      BIGINT NOT NULL DEFAULT 1,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE lease (
    name       VARCHAR(64) NOT NULL PRIMARY KEY,
    holder     VARCHAR(255) NOT NULL,
    expires_at BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE cluster_event (
    id        BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    time      BIGINT NOT NULL,
    kind      VARCHAR(32) NOT NULL,
    node_id   VARCHAR(64) NULL,
    moved     BIGINT NOT NULL DEFAULT 0,
    detail    TEXT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
