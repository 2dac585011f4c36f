-- Uploads granted by users' actors (issue #20; migrations/sqlite/0010_uploads.sql is its SQLite twin).
-- A row is a grant until its object is checked (size, actual_type, and for an image width, height
-- and thumbnail set), and is used once attached to a message or set as an avatar. Grants never used
-- are deleted with their object after a while; the quota counts declared_size over a user's rows.
CREATE TABLE uploads (
    id            BINARY(16)   NOT NULL,
    user_id       BIGINT       NOT NULL,
    -- The room an attachment is for; NULL for an avatar.
    room_id       BIGINT       NULL,
    object_key    VARCHAR(512) COLLATE utf8mb4_bin NOT NULL,
    filename      VARCHAR(255) NOT NULL,
    content_type  VARCHAR(127) COLLATE utf8mb4_bin NOT NULL,
    declared_size BIGINT       NOT NULL,
    created_at_ms BIGINT       NOT NULL,
    size          BIGINT       NULL,
    actual_type   VARCHAR(127) COLLATE utf8mb4_bin NULL,
    width         INT          NULL,
    height        INT          NULL,
    thumbnail     BLOB         NULL,
    used_at_ms    BIGINT       NULL,
    PRIMARY KEY (id),
    UNIQUE KEY uploads_object_key (object_key),
    KEY uploads_user (user_id),
    KEY uploads_unused (used_at_ms, created_at_ms),
    CONSTRAINT uploads_user_fk FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;
