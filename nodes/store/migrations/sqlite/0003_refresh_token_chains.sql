-- Refresh token chains (migrations/mysql/0003_refresh_token_chains.sql is its MySQL twin).
-- Every refresh token belongs to the chain (`family`) started by a login or a registration; a rotation
-- marks the old token used (`used_at_ms`) and records the new one in the same chain, so a replayed
-- token is recognised and revokes its chain (`revoked_at_ms` on every row of it). A token recorded
-- before chains existed starts its own chain. Rows still go when they expire.
ALTER TABLE refresh_tokens ADD COLUMN family TEXT NOT NULL DEFAULT '';
ALTER TABLE refresh_tokens ADD COLUMN used_at_ms INTEGER NULL;
ALTER TABLE refresh_tokens ADD COLUMN revoked_at_ms INTEGER NULL;
UPDATE refresh_tokens SET family = jti;
CREATE INDEX refresh_tokens_family ON refresh_tokens (family);
