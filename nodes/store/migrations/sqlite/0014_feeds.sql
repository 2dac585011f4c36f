-- Ingest sources (issue #21; migrations/mysql/0014_feeds.sql is its MySQL twin): each live external
-- feed with the user it posts as, the feed rooms that follow it and their filters, the latest state
-- of every event it sent, the message each event became in each room, and its raw frames (the
-- embedded stack's raw journal). Coordinates are degrees, depths km, magnitudes as the source gives
-- them.
CREATE TABLE feed_sources (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    -- The configured name (`emsc`), compared byte for byte.
    name          TEXT    NOT NULL UNIQUE,
    -- The user its messages are sent as (made with the source; its password hash verifies nothing).
    user_id       INTEGER NOT NULL REFERENCES users (id),
    created_at_ms INTEGER NOT NULL
);

-- A feed room and the source it follows. The filters: events below min_magnitude (or without a
-- magnitude) are not shown, nor those outside the box (all four edges or none; min_lon > max_lon
-- crosses the antimeridian). owned is 0 for the source's own room (the one its config names, which
-- no person owns), 1 for a room a person made.
CREATE TABLE feed_follows (
    room_id       INTEGER NOT NULL PRIMARY KEY REFERENCES rooms (id) ON DELETE CASCADE,
    source_id     INTEGER NOT NULL REFERENCES feed_sources (id),
    min_magnitude REAL    NULL,
    min_lon       REAL    NULL,
    min_lat       REAL    NULL,
    max_lon       REAL    NULL,
    max_lat       REAL    NULL,
    owned         INTEGER NOT NULL CHECK (owned IN (0, 1)),
    CHECK ((min_lon IS NULL AND min_lat IS NULL AND max_lon IS NULL AND max_lat IS NULL)
        OR (min_lon IS NOT NULL AND min_lat IS NOT NULL AND max_lon IS NOT NULL
            AND max_lat IS NOT NULL))
);
CREATE INDEX feed_follows_source_id ON feed_follows (source_id);

-- The latest state of each event of a source, by the source's id of it (EMSC's `unid`). A withdrawn
-- event keeps its row, with deleted_at_ms set. Listed newest (by time_ms) first.
CREATE TABLE feed_events (
    source_id      INTEGER NOT NULL REFERENCES feed_sources (id),
    event_id       TEXT    NOT NULL,
    time_ms        INTEGER NOT NULL,
    lat            REAL    NOT NULL,
    lon            REAL    NOT NULL,
    depth_km       REAL    NULL,
    magnitude      REAL    NULL,
    magnitude_type TEXT    NULL,
    region         TEXT    NULL,
    deleted_at_ms  INTEGER NULL,
    updated_at_ms  INTEGER NOT NULL,
    PRIMARY KEY (source_id, event_id)
) WITHOUT ROWID;
CREATE INDEX feed_events_time ON feed_events (source_id, time_ms);

-- The message (seq) each event of the room's source became in a feed room: later states of the
-- event edit or delete that message.
CREATE TABLE feed_posts (
    room_id  INTEGER NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    event_id TEXT    NOT NULL,
    seq      INTEGER NOT NULL,
    PRIMARY KEY (room_id, event_id)
) WITHOUT ROWID;

-- Raw frames of a source as received, in order of id; only the newest few of each source are kept.
-- AUTOINCREMENT: the id of a pruned frame is never given out again, so ids keep arrival order.
CREATE TABLE feed_raw (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    source_id      INTEGER NOT NULL REFERENCES feed_sources (id),
    frame          TEXT    NOT NULL,
    received_at_ms INTEGER NOT NULL
);
CREATE INDEX feed_raw_source ON feed_raw (source_id, id);
