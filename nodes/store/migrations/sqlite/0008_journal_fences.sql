-- Journal fences (ARCHITECTURE.md section 5; migrations/mysql/0008_journal_fences.sql is its MySQL
-- twin): per journal partition and shard, the highest epoch a fence record raised. An embedded node
-- writes none (one node has no former owner to fence), but the schema and the rules are the MySQL
-- ones, so the contract suite holds both to them.
CREATE TABLE journal_fences (
    part  INTEGER NOT NULL,
    shard INTEGER NOT NULL,
    epoch INTEGER NOT NULL,
    PRIMARY KEY (part, shard)
);
