-- Uptime and response-time aggregates (per minute, hour and day, as Uptime
-- Kuma v2), written in the same transaction as the heartbeats they count, and
-- the latest TLS certificate facts per monitor.
-- `up` counts UP and MAINTENANCE beats, `down` DOWN and PENDING beats;
-- ping_sum / ping_count average the response time of UP beats.

CREATE TABLE stat_minute (
    monitor_id BIGINT NOT NULL,
    ts         BIGINT NOT NULL,
    up         BIGINT NOT NULL DEFAULT 0,
    down       BIGINT NOT NULL DEFAULT 0,
    ping_sum   DOUBLE NOT NULL DEFAULT 0,
    ping_count BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (monitor_id, ts),
    INDEX stat_minute_ts (ts)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE stat_hour (
    monitor_id BIGINT NOT NULL,
    ts         BIGINT NOT NULL,
    up         BIGINT NOT NULL DEFAULT 0,
    down       BIGINT NOT NULL DEFAULT 0,
    ping_sum   DOUBLE NOT NULL DEFAULT 0,
    ping_count BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (monitor_id, ts),
    INDEX stat_hour_ts (ts)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE stat_day (
    monitor_id BIGINT NOT NULL,
    ts         BIGINT NOT NULL,
    up         BIGINT NOT NULL DEFAULT 0,
    down       BIGINT NOT NULL DEFAULT 0,
    ping_sum   DOUBLE NOT NULL DEFAULT 0,
    ping_count BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (monitor_id, ts),
    INDEX stat_day_ts (ts)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE monitor_tls_info (
    monitor_id     BIGINT NOT NULL PRIMARY KEY,
    days_remaining BIGINT NOT NULL,
    valid          BIGINT NOT NULL,
    not_after      BIGINT NOT NULL,
    checked_at     BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
