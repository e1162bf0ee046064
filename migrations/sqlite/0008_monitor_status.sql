-- Each monitor's latest beat, kept in the heartbeat write's transaction, so
-- the dashboard counts, filters and sorts by status with one indexed read
-- instead of searching the heartbeat table. `since` is when the status last
-- changed (the time of the first beat with this status).
CREATE TABLE monitor_status (
    -- INTEGER PRIMARY KEY: the row id itself, so the dashboard's join
    -- from monitor is one lookup per row.
    monitor_id INTEGER PRIMARY KEY NOT NULL,
    status     BIGINT NOT NULL,
    time       BIGINT NOT NULL,
    ping       DOUBLE,
    msg        TEXT NOT NULL,
    since      BIGINT NOT NULL
);
CREATE INDEX monitor_status_status ON monitor_status (status);

-- The dashboard's default order.
CREATE INDEX monitor_name ON monitor (name COLLATE NOCASE);

INSERT INTO monitor_status (monitor_id, status, time, ping, msg, since)
SELECT h.monitor_id, h.status, h.time, h.ping, h.msg, h.time
FROM heartbeat h
WHERE h.id = (SELECT MAX(id) FROM heartbeat WHERE monitor_id = h.monitor_id);
