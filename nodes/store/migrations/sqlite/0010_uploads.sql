-- Uploads granted by users' actors (issue #20; migrations/mysql/0010_uploads.sql is its MySQL twin).
-- A row is a grant until its object is checked (size, actual_type, and for an image width, height
-- and thumbnail set), and is used once attached to a message or set as an avatar. Grants never used
-- are deleted with their object after a while; the quota counts declared_size over a user's rows.
CREATE TABLE uploads (
    id            BLOB    NOT NULL PRIMARY KEY,
    user_id       INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- The room an attachment is for; NULL for an avatar.
    room_id       INTEGER NULL,
    object_key    TEXT    NOT NULL UNIQUE,
    filename      TEXT    NOT NULL,
    content_type  TEXT    NOT NULL,
    declared_size INTEGER NOT NULL,
    created_at_ms INTEGER NOT NULL,
    size          INTEGER NULL,
    actual_type   TEXT    NULL,
    width         INTEGER NULL,
    height        INTEGER NULL,
    thumbnail     BLOB    NULL,
    used_at_ms    INTEGER NULL
);
CREATE INDEX uploads_user ON uploads (user_id);
CREATE INDEX uploads_unused ON uploads (used_at_ms, created_at_ms);
