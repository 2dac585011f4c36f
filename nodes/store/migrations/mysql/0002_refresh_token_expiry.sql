-- Lets the hourly purge of expired refresh tokens seek instead of scanning.
CREATE INDEX refresh_tokens_expires ON refresh_tokens (expires_at_ms);
