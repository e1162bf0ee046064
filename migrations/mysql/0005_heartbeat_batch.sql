-- The last heartbeat batch each node committed, by the node's own sequence
-- number. A node that did not see the outcome of a batch (say the connection
-- broke around COMMIT) retries that same batch under the same number; finding
-- the number here means the batch was written, so it is not written twice.
-- A node writes its batches one at a time, so one row per node is enough.
CREATE TABLE heartbeat_batch (
    node_id VARCHAR(64) NOT NULL PRIMARY KEY,
    seq     BIGINT NOT NULL,
    written BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
