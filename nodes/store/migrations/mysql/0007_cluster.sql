-- Cluster placement (ARCHITECTURE.md section 5; migrations/sqlite/0007_cluster.sql is its SQLite twin).
-- Times are milliseconds since the Unix epoch on the database server's clock, written by the statements
-- themselves: nodes never send their own time, so expiries do not depend on their clocks agreeing.

-- One row per node incarnation: a process registers at start-up and gets a new id each time. InnoDB
-- keeps the AUTO_INCREMENT counter across server restarts (MySQL 8, MariaDB >= 10.2.4), so an id is
-- never given out twice, also after dead rows are deleted.
CREATE TABLE cluster_nodes (
    id              BIGINT       NOT NULL AUTO_INCREMENT,
    advertise       VARCHAR(255) NOT NULL,
    started_at_ms   BIGINT       NOT NULL,
    heartbeat_at_ms BIGINT       NOT NULL,
    PRIMARY KEY (id),
    KEY cluster_nodes_heartbeat (heartbeat_at_ms)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

-- One row per virtual shard (0..S), made by the first node to start. A node holds a shard while
-- `owner` is its id and `expires_at_ms` is ahead; every take raises `epoch` by compare-and-set on the
-- row, and records written under a lease carry its epoch. A release clears `owner` (the epoch stays).
-- `owner` has no foreign key: dead nodes are deleted while their expired leases still name them.
CREATE TABLE shard_leases (
    shard         BIGINT NOT NULL,
    owner         BIGINT NULL,
    epoch         BIGINT NOT NULL DEFAULT 0,
    expires_at_ms BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (shard)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;
