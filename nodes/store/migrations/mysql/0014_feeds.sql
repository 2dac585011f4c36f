-- Ingest sources (issue #21; migrations/sqlite/0014_feeds.sql is its SQLite twin): each live external
-- feed with the user it posts as, the feed rooms that follow it and their filters, the latest state
-- of every event it sent, the message each event became in each room, and its raw frames (the
-- embedded stack's raw journal). Coordinates are degrees, depths km, magnitudes as the source gives
-- them.
CREATE TABLE feed_sources (
    id            BIGINT      NOT NULL AUTO_INCREMENT,
    -- The configured name (`emsc`), compared byte for byte.
    name          VARCHAR(64) COLLATE utf8mb4_bin NOT NULL,
    -- The user its messages are sent as (made with the source; its password hash verifies nothing).
    user_id       BIGINT      NOT NULL,
    created_at_ms BIGINT      NOT NULL,
    PRIMARY KEY (id),
    UNIQUE KEY feed_sources_name (name),
    CONSTRAINT feed_sources_user_fk FOREIGN KEY (user_id) REFERENCES users (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

-- A feed room and the source it follows. The filters: events below min_magnitude (or without a
-- magnitude) are not shown, nor those outside the box (all four edges or none; min_lon > max_lon
-- crosses the antimeridian). owned is 0 for the source's own room (the one its config names, which
-- no person owns), 1 for a room a person made.
CREATE TABLE feed_follows (
    room_id       BIGINT  NOT NULL,
    source_id     BIGINT  NOT NULL,
    min_magnitude DOUBLE  NULL,
    min_lon       DOUBLE  NULL,
    min_lat       DOUBLE  NULL,
    max_lon       DOUBLE  NULL,
    max_lat       DOUBLE  NULL,
    owned         BOOLEAN NOT NULL,
    PRIMARY KEY (room_id),
    KEY feed_follows_source_id (source_id),
    CONSTRAINT feed_follows_bbox CHECK (
        (min_lon IS NULL AND min_lat IS NULL AND max_lon IS NULL AND max_lat IS NULL)
        OR (min_lon IS NOT NULL AND min_lat IS NOT NULL AND max_lon IS NOT NULL
            AND max_lat IS NOT NULL)),
    CONSTRAINT feed_follows_room_fk FOREIGN KEY (room_id) REFERENCES rooms (id) ON DELETE CASCADE,
    CONSTRAINT feed_follows_source_fk FOREIGN KEY (source_id) REFERENCES feed_sources (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

-- The latest state of each event of a source, by the source's id of it (EMSC's `unid`). A withdrawn
-- event keeps its row, with deleted_at_ms set. Listed newest (by time_ms) first.
CREATE TABLE feed_events (
    source_id      BIGINT       NOT NULL,
    event_id       VARCHAR(64)  COLLATE utf8mb4_bin NOT NULL,
    time_ms        BIGINT       NOT NULL,
    lat            DOUBLE       NOT NULL,
    lon            DOUBLE       NOT NULL,
    depth_km       DOUBLE       NULL,
    magnitude      DOUBLE       NULL,
    magnitude_type VARCHAR(16)  NULL,
    region         VARCHAR(128) NULL,
    deleted_at_ms  BIGINT       NULL,
    updated_at_ms  BIGINT       NOT NULL,
    PRIMARY KEY (source_id, event_id),
    KEY feed_events_time (source_id, time_ms),
    CONSTRAINT feed_events_source_fk FOREIGN KEY (source_id) REFERENCES feed_sources (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

-- The message (seq) each event of the room's source became in a feed room: later states of the
-- event edit or delete that message.
CREATE TABLE feed_posts (
    room_id  BIGINT      NOT NULL,
    event_id VARCHAR(64) COLLATE utf8mb4_bin NOT NULL,
    seq      BIGINT      NOT NULL,
    PRIMARY KEY (room_id, event_id),
    CONSTRAINT feed_posts_room_fk FOREIGN KEY (room_id) REFERENCES rooms (id) ON DELETE CASCADE
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

-- Raw frames of a source as received, in order of id; only the newest few of each source are kept.
CREATE TABLE feed_raw (
    id             BIGINT     NOT NULL AUTO_INCREMENT,
    source_id      BIGINT     NOT NULL,
    frame          MEDIUMTEXT NOT NULL,
    received_at_ms BIGINT     NOT NULL,
    PRIMARY KEY (id),
    KEY feed_raw_source (source_id, id),
    CONSTRAINT feed_raw_source_fk FOREIGN KEY (source_id) REFERENCES feed_sources (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;
