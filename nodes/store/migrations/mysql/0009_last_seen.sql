-- When a user was last seen: the time its last session on some node ended, written by that node (the
-- highest a node wrote stays). Presence shows it for a user who is offline, also after every node
-- restarted (ARCHITECTURE.md section 5). NULL: never seen since this column exists.
ALTER TABLE users ADD COLUMN last_seen_at_ms BIGINT NULL;
