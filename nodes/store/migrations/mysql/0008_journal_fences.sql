-- Journal fences (ARCHITECTURE.md section 5; migrations/sqlite/0008_journal_fences.sql is its SQLite
-- twin). A node that takes shards writes a fence record to every partition of the journal topic; the
-- persister stores here, per partition and shard, the highest epoch fenced, before it commits the
-- offsets past the fence record. A reader that starts at the committed offset (the persister after a
-- rebalance, a room reading its tail) starts from these rows, so it ignores a former owner's late
-- records exactly as a reader that saw the fence record itself.
CREATE TABLE journal_fences (
    part  INT    NOT NULL,
    shard BIGINT NOT NULL,
    epoch BIGINT NOT NULL,
    PRIMARY KEY (part, shard)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;
