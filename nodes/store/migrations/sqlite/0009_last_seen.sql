-- When a user was last seen (see migrations/mysql/0009_last_seen.sql, its MySQL twin).
ALTER TABLE users ADD COLUMN last_seen_at_ms INTEGER NULL;
