-- Cluster placement (ARCHITECTURE.md section 5; migrations/mysql/0007_cluster.sql is its MySQL twin).
-- Times are milliseconds since the Unix epoch on SQLite's clock, written by the statements themselves:
-- callers never send their own time. An embedded node is a cluster of one, but the schema and the
-- rules are the MySQL ones, so the contract suite holds both to them.

-- One row per node incarnation. AUTOINCREMENT: an id is never given out twice, also after the row of
-- the highest id is deleted (a plain INTEGER PRIMARY KEY would reuse it).
CREATE TABLE cluster_nodes (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    advertise       TEXT    NOT NULL,
    started_at_ms   INTEGER NOT NULL,
    heartbeat_at_ms INTEGER NOT NULL
);

CREATE INDEX cluster_nodes_heartbeat ON cluster_nodes (heartbeat_at_ms);

-- One row per virtual shard (0..S). A node holds a shard while `owner` is its id and `expires_at_ms`
-- is ahead; every take raises `epoch` by compare-and-set on the row. A release clears `owner` (the
-- epoch stays). `owner` has no foreign key: dead nodes are deleted while their expired leases still
-- name them.
CREATE TABLE shard_leases (
    shard         INTEGER NOT NULL PRIMARY KEY,
    owner         INTEGER NULL,
    epoch         INTEGER NOT NULL DEFAULT 0,
    expires_at_ms INTEGER NOT NULL DEFAULT 0
);
