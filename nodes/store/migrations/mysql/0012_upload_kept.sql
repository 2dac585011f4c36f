-- When a stored message or a user's avatar came to hold an upload (issue #20): an upload used
-- (claimed by an attach) but never kept — its message was refused, or a later attachment of the
-- same message failed — is swept like one never used (migrations/sqlite/0012_upload_kept.sql
-- is its twin).
ALTER TABLE uploads ADD COLUMN kept_at_ms BIGINT NULL;
