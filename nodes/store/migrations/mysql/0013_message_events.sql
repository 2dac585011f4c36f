-- Edits and deletes (migrations/sqlite/0013_message_events.sql is its SQLite twin): a room event
-- takes a seq of its own and is stored as a row of `messages` like a message. `kind` is 0 for a
-- message, 1 for an edit and 2 for a delete of the message `target_seq` of the same room (NULL for a
-- message). An edit row keeps an empty body: its new body is written into its target, whose
-- `edited_at_ms` / `deleted_at_ms` (0001) say what the events did to it. `content_type` is the
-- body's content type when it is not plain text (NULL: plain text).
ALTER TABLE messages
    ADD COLUMN kind TINYINT NOT NULL DEFAULT 0,
    ADD COLUMN target_seq BIGINT NULL,
    ADD COLUMN content_type VARCHAR(255) NULL;
