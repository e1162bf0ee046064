-- Tags (Uptime Kuma's `tag` and `monitor_tag`): a name and a colour, and
-- per monitor an optional value; one tag may be on a monitor with several
-- values. A tag's links go with it, and a monitor's with the monitor.
CREATE TABLE tag (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    name       TEXT NOT NULL UNIQUE,
    color      TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE monitor_tag (
    monitor_id BIGINT NOT NULL,
    tag_id     BIGINT NOT NULL,
    value      TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (monitor_id, tag_id, value)
);
CREATE INDEX monitor_tag_tag ON monitor_tag (tag_id, value);
