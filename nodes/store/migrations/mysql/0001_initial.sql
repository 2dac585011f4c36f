-- Initial schema (ARCHITECTURE.md section 4); migrations/sqlite/0001_initial.sql is its SQLite twin.
-- Times are milliseconds since the Unix epoch; seqs are positive and fit in a signed BIGINT.
-- Every table is InnoDB and utf8mb4 (MySQL's "utf8" cannot hold emoji).

CREATE TABLE users (
    id            BIGINT       NOT NULL AUTO_INCREMENT,
    -- Stored lowercase by the store. A binary collation: equality and order are SQLite's, and a prefix
    -- search walks the index in the order it returns.
    username      VARCHAR(32)  COLLATE utf8mb4_bin NOT NULL,
    -- Its unique key keeps uniqueness case-insensitive whatever the writer (a _ci collation would also
    -- fold accents and reorder punctuation).
    username_folded VARCHAR(32) COLLATE utf8mb4_bin GENERATED ALWAYS AS (LOWER(username)) STORED,
    display_name  VARCHAR(64)  NOT NULL,
    password_hash VARCHAR(255) COLLATE utf8mb4_bin NOT NULL,
    avatar_ref    VARCHAR(255) NULL,
    created_at_ms BIGINT       NOT NULL,
    PRIMARY KEY (id),
    KEY users_username (username),
    UNIQUE KEY users_username_folded (username_folded)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

CREATE TABLE rooms (
    id            BIGINT       NOT NULL AUTO_INCREMENT,
    kind          VARCHAR(8)   CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    name          VARCHAR(100) NOT NULL,
    created_by    BIGINT       NOT NULL,
    -- "minid:maxid" for a DM, NULL otherwise: the unique key maps a pair to one room even under races.
    dm_key        VARCHAR(41)  CHARACTER SET ascii COLLATE ascii_bin NULL,
    created_at_ms BIGINT       NOT NULL,
    PRIMARY KEY (id),
    UNIQUE KEY rooms_dm_key (dm_key),
    CONSTRAINT rooms_kind CHECK (kind IN ('group', 'dm', 'feed')),
    CONSTRAINT rooms_created_by FOREIGN KEY (created_by) REFERENCES users (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

CREATE TABLE room_members (
    room_id            BIGINT     NOT NULL,
    user_id            BIGINT     NOT NULL,
    role               VARCHAR(8) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    last_read_seq      BIGINT     NOT NULL DEFAULT 0,
    last_delivered_seq BIGINT     NOT NULL DEFAULT 0,
    joined_at_ms       BIGINT     NOT NULL,
    PRIMARY KEY (room_id, user_id),
    -- rooms_of: the rooms of one user.
    KEY room_members_user_id (user_id),
    CONSTRAINT room_members_role CHECK (role IN ('owner', 'member')),
    CONSTRAINT room_members_room FOREIGN KEY (room_id) REFERENCES rooms (id) ON DELETE CASCADE,
    CONSTRAINT room_members_user FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

-- Clustered on (room_id, seq): history pages are range scans of the primary key.
CREATE TABLE messages (
    room_id       BIGINT     NOT NULL,
    seq           BIGINT     NOT NULL,
    message_id    BINARY(16) NOT NULL,
    -- No foreign key: the room actor takes the sender from the token, and the hot insert path stays lean.
    sender_id     BIGINT     NOT NULL,
    body          TEXT       CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci NOT NULL,
    created_at_ms BIGINT     NOT NULL,
    edited_at_ms  BIGINT     NULL,
    deleted_at_ms BIGINT     NULL,
    epoch         BIGINT     NOT NULL DEFAULT 0,
    PRIMARY KEY (room_id, seq),
    UNIQUE KEY messages_message_id (message_id),
    CONSTRAINT messages_room FOREIGN KEY (room_id) REFERENCES rooms (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

-- A row lives until the token is taken (deleted) or expires.
CREATE TABLE refresh_tokens (
    jti           VARCHAR(128) COLLATE utf8mb4_bin NOT NULL,
    user_id       BIGINT      NOT NULL,
    expires_at_ms BIGINT      NOT NULL,
    PRIMARY KEY (jti),
    CONSTRAINT refresh_tokens_user FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;
