-- Each monitor's latest beat, kept in the heartbeat write's transaction, so
-- the dashboard counts, filters and sorts by status with one indexed read
-- instead of searching the heartbeat table. `since` is when the status last
-- changed (the time of the first beat with this status).
CREATE TABLE monitor_status (
    monitor_id BIGINT NOT NULL PRIMARY KEY,
    status     BIGINT NOT NULL,
    time       BIGINT NOT NULL,
    ping       DOUBLE NULL,
    msg        TEXT NOT NULL,
    since      BIGINT NOT NULL,
    INDEX monitor_status_status (status)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- The dashboard's default order.
CREATE INDEX monitor_name ON monitor (name);

INSERT INTO monitor_status (monitor_id, status, time, ping, msg, since)
SELECT h.monitor_id, h.status, h.time, h.ping, h.msg, h.time
FROM heartbeat h
JOIN (SELECT monitor_id, MAX(id) AS id FROM heartbeat GROUP BY monitor_id) last ON last.id = h.id;
