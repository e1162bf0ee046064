-- Notifications. Channels (`notification`, Uptime Kuma's name) are linked to
-- monitors (`monitor_notification`). The heartbeat batch that records an
-- important beat judges it against `monitor_alert` (what was last announced)
-- and queues one `notify_outbox` row per linked active channel, all in the
-- batch's own transaction and under its ownership condition. Any node's
-- delivery worker claims due rows, sends, and marks them sent.

ALTER TABLE monitor
    ADD COLUMN resend_interval BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN resend_minutes BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN up_threshold BIGINT NOT NULL DEFAULT 1;

-- The smallest TLS-expiry threshold (days) announced for the certificate on record.
ALTER TABLE monitor_tls_info ADD COLUMN expiry_notified BIGINT NULL;

CREATE TABLE notification (
    id             BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    name           VARCHAR(255) NOT NULL,
    type           VARCHAR(32) NOT NULL,
    config         MEDIUMTEXT NOT NULL,
    is_default     BIGINT NOT NULL DEFAULT 0,
    -- Events a minute sent one by one; past it they are folded into a digest (0 = no limit).
    rate_per_minute BIGINT NOT NULL DEFAULT 10,
    active         BIGINT NOT NULL DEFAULT 1,
    created_at     BIGINT NOT NULL,
    modified_at    BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE monitor_notification (
    monitor_id      BIGINT NOT NULL,
    notification_id BIGINT NOT NULL,
    PRIMARY KEY (monitor_id, notification_id),
    INDEX monitor_notification_channel (notification_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE monitor_alert (
    monitor_id  BIGINT NOT NULL PRIMARY KEY,
    announced   BIGINT NULL,
    ups         BIGINT NOT NULL DEFAULT 0,
    downs       BIGINT NOT NULL DEFAULT 0,
    notified_at BIGINT NOT NULL DEFAULT 0
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE notify_outbox (
    id              BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    event_id        VARCHAR(64) NOT NULL,
    monitor_id      BIGINT NOT NULL,
    notification_id BIGINT NOT NULL,
    kind            VARCHAR(16) NOT NULL,
    status          BIGINT NOT NULL,
    beat_time       BIGINT NOT NULL,
    ping            DOUBLE NULL,
    msg             TEXT NOT NULL,
    node_id         VARCHAR(64) NOT NULL,
    state           VARCHAR(16) NOT NULL DEFAULT 'pending',
    digest          BIGINT NOT NULL DEFAULT 0,
    attempts        BIGINT NOT NULL DEFAULT 0,
    due_at          BIGINT NOT NULL,
    claimed_by      VARCHAR(64) NULL,
    claim_until     BIGINT NULL,
    last_error      TEXT NULL,
    created_at      BIGINT NOT NULL,
    sent_at         BIGINT NULL,
    INDEX notify_outbox_due (state, due_at),
    INDEX notify_outbox_pair (monitor_id, notification_id, id),
    INDEX notify_outbox_channel (notification_id, id),
    INDEX notify_outbox_sent (notification_id, state, sent_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
