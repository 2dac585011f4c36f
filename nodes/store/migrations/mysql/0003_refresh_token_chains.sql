-- Refresh token chains (migrations/sqlite/0003_refresh_token_chains.sql is its SQLite twin).
-- Every refresh token belongs to the chain (`family`) started by a login or a registration; a rotation
-- marks the old token used (`used_at_ms`) and records the new one in the same chain, so a replayed
-- token is recognised and revokes its chain (`revoked_at_ms` on every row of it). A token recorded
-- before chains existed starts its own chain. Rows still go when they expire.
ALTER TABLE refresh_tokens
    ADD COLUMN family        VARCHAR(128) COLLATE utf8mb4_bin NOT NULL DEFAULT '',
    ADD COLUMN used_at_ms    BIGINT NULL,
    ADD COLUMN revoked_at_ms BIGINT NULL;
UPDATE refresh_tokens SET family = jti;
CREATE INDEX refresh_tokens_family ON refresh_tokens (family);

-- The profile accepts an avatar reference of up to 512 bytes (rules::AVATAR_REF_MAX_BYTES); 255
-- characters could not hold it. SQLite's TEXT has no length.
ALTER TABLE users MODIFY avatar_ref VARCHAR(512) NULL;
