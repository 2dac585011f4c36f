-- The files attached to a message (issue #20; migrations/mysql/0011_message_attachments.sql is its
-- MySQL twin): a JSON array as clients read it (id, name, content_type, size, width, height,
-- thumbnail as a data URL); NULL when it has none.
ALTER TABLE messages ADD COLUMN attachments TEXT NULL;
