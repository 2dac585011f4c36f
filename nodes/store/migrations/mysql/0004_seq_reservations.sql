-- Seqs given to messages the store will never hold (migrations/sqlite/0004_seq_reservations.sql is its
-- SQLite twin): when the persister dead-letters a journaled row of an existing room, it reserves the
-- row's seq here, so `last_seq` counts it and the room never gives it out again.
CREATE TABLE room_seq_reservations (
    room_id BIGINT NOT NULL,
    seq     BIGINT NOT NULL,
    PRIMARY KEY (room_id),
    CONSTRAINT room_seq_reservations_room FOREIGN KEY (room_id) REFERENCES rooms (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;
