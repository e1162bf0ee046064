-- Admin requests that only the leader balancer may carry out (rebalance,
-- force-rebalance-all), handed to it by a balancer that is not the leader.
-- The leader claims a pending request, runs it and writes the result; the
-- balancer that was asked waits for that row and answers its client with it.
-- state: pending -> running -> done, or pending -> abandoned when the asking
-- balancer gives up waiting (a late leader then never runs it).
CREATE TABLE cluster_request (
    id           BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    kind         VARCHAR(32) NOT NULL,
    requested_by VARCHAR(255) NOT NULL,
    requested_at BIGINT NOT NULL,
    state        VARCHAR(16) NOT NULL DEFAULT 'pending',
    taken_by     VARCHAR(255) NULL,
    status       BIGINT NULL,
    result       MEDIUMTEXT NULL,
    finished_at  BIGINT NULL,
    INDEX cluster_request_state (state, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
