-- Edits and deletes (migrations/mysql/0013_message_events.sql is its MySQL twin): a room event
-- takes a seq of its own and is stored as a row of `messages` like a message. `kind` is 0 for a
-- message, 1 for an edit and 2 for a delete of the message `target_seq` of the same room (NULL for a
-- message). An edit row keeps an empty body: its new body is written into its target, whose
-- `edited_at_ms` / `deleted_at_ms` (0001) say what the events did to it. `content_type` is the
-- body's content type when it is not plain text (NULL: plain text).
ALTER TABLE messages ADD COLUMN kind INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN target_seq INTEGER NULL;
ALTER TABLE messages ADD COLUMN content_type TEXT NULL;
