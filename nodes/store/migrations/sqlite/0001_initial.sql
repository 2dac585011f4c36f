-- Initial schema (ARCHITECTURE.md section 4); migrations/mysql/0001_initial.sql is its MySQL twin.
-- Times are milliseconds since the Unix epoch; seqs are positive and fit in a signed 64-bit integer.

-- AUTOINCREMENT: ids of deleted rows are never handed out again.
CREATE TABLE users (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    -- Stored lowercase by the store; NOCASE keeps uniqueness case-insensitive whatever the writer.
    username      TEXT    NOT NULL COLLATE NOCASE UNIQUE,
    display_name  TEXT    NOT NULL,
    password_hash TEXT    NOT NULL,
    avatar_ref    TEXT    NULL,
    created_at_ms INTEGER NOT NULL
);

CREATE TABLE rooms (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    kind          TEXT    NOT NULL CHECK (kind IN ('group', 'dm', 'feed')),
    name          TEXT    NOT NULL,
    created_by    INTEGER NOT NULL REFERENCES users (id),
    -- "minid:maxid" for a DM, NULL otherwise: the unique key maps a pair to one room even under races.
    dm_key        TEXT    NULL UNIQUE,
    created_at_ms INTEGER NOT NULL
);

CREATE TABLE room_members (
    room_id            INTEGER NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    user_id            INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role               TEXT    NOT NULL CHECK (role IN ('owner', 'member')),
    last_read_seq      INTEGER NOT NULL DEFAULT 0,
    last_delivered_seq INTEGER NOT NULL DEFAULT 0,
    joined_at_ms       INTEGER NOT NULL,
    PRIMARY KEY (room_id, user_id)
) WITHOUT ROWID;

-- rooms_of: the rooms of one user.
CREATE INDEX room_members_user_id ON room_members (user_id);

-- History pages are range scans of the (room_id, seq) primary key. A rowid table, unlike the small
-- tables here: SQLite advises against WITHOUT ROWID for rows as large as message bodies can be.
CREATE TABLE messages (
    room_id       INTEGER NOT NULL REFERENCES rooms (id),
    seq           INTEGER NOT NULL,
    message_id    BLOB    NOT NULL UNIQUE CHECK (length(message_id) = 16),
    -- No foreign key: the room actor takes the sender from the token, and the hot insert path stays lean.
    sender_id     INTEGER NOT NULL,
    body          TEXT    NOT NULL,
    created_at_ms INTEGER NOT NULL,
    edited_at_ms  INTEGER NULL,
    deleted_at_ms INTEGER NULL,
    epoch         INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (room_id, seq)
);

-- A row lives until the token is taken (deleted) or expires.
CREATE TABLE refresh_tokens (
    jti           TEXT    NOT NULL PRIMARY KEY,
    user_id       INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    expires_at_ms INTEGER NOT NULL
) WITHOUT ROWID;
