-- Notifications. Channels (`notification`, Uptime Kuma's name) are linked to
-- monitors (`monitor_notification`). The heartbeat batch that records an
-- important beat judges it against `monitor_alert` (what was last announced)
-- and queues one `notify_outbox` row per linked active channel, all in the
-- batch's own transaction and under its ownership condition. Any node's
-- delivery worker claims due rows, sends, and marks them sent.

ALTER TABLE monitor ADD COLUMN resend_interval BIGINT NOT NULL DEFAULT 0;
ALTER TABLE monitor ADD COLUMN resend_minutes BIGINT NOT NULL DEFAULT 0;
ALTER TABLE monitor ADD COLUMN up_threshold BIGINT NOT NULL DEFAULT 1;
-- The smallest TLS-expiry threshold (days) announced for the certificate on record.
ALTER TABLE monitor_tls_info ADD COLUMN expiry_notified BIGINT;

CREATE TABLE notification (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    name           TEXT NOT NULL,
    -- The provider: webhook, slack, discord, telegram, ntfy, ...
    type           TEXT NOT NULL,
    -- The provider's settings, JSON.
    config         TEXT NOT NULL,
    is_default     BIGINT NOT NULL DEFAULT 0,
    -- Events a minute sent one by one; past it they are folded into a digest (0 = no limit).
    rate_per_minute BIGINT NOT NULL DEFAULT 10,
    active         BIGINT NOT NULL DEFAULT 1,
    created_at     BIGINT NOT NULL,
    modified_at    BIGINT NOT NULL
);

CREATE TABLE monitor_notification (
    monitor_id      BIGINT NOT NULL,
    notification_id BIGINT NOT NULL,
    PRIMARY KEY (monitor_id, notification_id)
);
CREATE INDEX monitor_notification_channel ON monitor_notification (notification_id);

-- Per monitor: the state last announced (1 up, 0 down; NULL before the first
-- up or down beat), consecutive up beats while down (upThreshold), down beats
-- since the last notice (resendInterval) and when that notice was.
CREATE TABLE monitor_alert (
    monitor_id  BIGINT PRIMARY KEY NOT NULL,
    announced   BIGINT,
    ups         BIGINT NOT NULL DEFAULT 0,
    downs       BIGINT NOT NULL DEFAULT 0,
    notified_at BIGINT NOT NULL DEFAULT 0
);

-- One row per (event, channel). state: pending -> sent, or failed after the
-- retry window. A row is claimed by a node until claim_until; a claim that
-- lapsed (the node died mid-send) is taken again, with the same event_id.
CREATE TABLE notify_outbox (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id        TEXT NOT NULL,
    monitor_id      BIGINT NOT NULL,
    notification_id BIGINT NOT NULL,
    -- down | up | reminder
    kind            TEXT NOT NULL,
    -- The beat that caused it.
    status          BIGINT NOT NULL,
    beat_time       BIGINT NOT NULL,
    ping            DOUBLE,
    msg             TEXT NOT NULL,
    node_id         TEXT NOT NULL,
    state           TEXT NOT NULL DEFAULT 'pending',
    -- Held back by the channel's rate: goes out folded into a digest.
    digest          BIGINT NOT NULL DEFAULT 0,
    attempts        BIGINT NOT NULL DEFAULT 0,
    due_at          BIGINT NOT NULL,
    claimed_by      TEXT,
    claim_until     BIGINT,
    last_error      TEXT,
    created_at      BIGINT NOT NULL,
    sent_at         BIGINT
);
CREATE INDEX notify_outbox_due ON notify_outbox (state, due_at);
CREATE INDEX notify_outbox_pair ON notify_outbox (monitor_id, notification_id, id);
CREATE INDEX notify_outbox_channel ON notify_outbox (notification_id, id);
CREATE INDEX notify_outbox_sent ON notify_outbox (notification_id, state, sent_at);
