-- The files attached to a message (issue #20; migrations/sqlite/0011_message_attachments.sql is its
-- SQLite twin): a JSON array as clients read it (id, name, content_type, size, width, height,
-- thumbnail as a data URL); NULL when it has none. Ten thumbnails fit well within MEDIUMTEXT.
ALTER TABLE messages ADD COLUMN attachments MEDIUMTEXT NULL;
