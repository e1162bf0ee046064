-- Tags (Uptime Kuma's `tag` and `monitor_tag`): a name and a colour, and
-- per monitor an optional value; one tag may be on a monitor with several
-- values. A tag's links go with it, and a monitor's with the monitor.
CREATE TABLE tag (
    id         BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    name       VARCHAR(255) NOT NULL UNIQUE,
    color      VARCHAR(32) NOT NULL,
    created_at BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE monitor_tag (
    monitor_id BIGINT NOT NULL,
    tag_id     BIGINT NOT NULL,
    value      VARCHAR(255) NOT NULL DEFAULT '',
    PRIMARY KEY (monitor_id, tag_id, value),
    INDEX monitor_tag_tag (tag_id, value)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
