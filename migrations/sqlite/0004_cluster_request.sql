-- Admin requests that only the leader balancer may carry out (rebalance,
-- force-rebalance-all), handed to it by a balancer that is not the leader.
-- The leader claims a pending request, runs it and writes the result; the
-- balancer that was asked waits for that row and answers its client with it.
-- state: pending -> running -> done, or pending -> abandoned when the asking
-- balancer gives up waiting (a late leader then never runs it).
CREATE TABLE cluster_request (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    kind         TEXT NOT NULL,
    requested_by TEXT NOT NULL,
    requested_at BIGINT NOT NULL,
    state        TEXT NOT NULL DEFAULT 'pending',
    taken_by     TEXT,
    status       BIGINT,
    result       TEXT,
    finished_at  BIGINT
);
CREATE INDEX cluster_request_state ON cluster_request (state, id);
