-- Seqs given to messages the store will never hold (migrations/mysql/0004_seq_reservations.sql is its
-- MySQL twin): when the persister dead-letters a journaled row of an existing room, it reserves the
-- row's seq here, so `last_seq` counts it and the room never gives it out again.
CREATE TABLE room_seq_reservations (
    room_id INTEGER NOT NULL PRIMARY KEY REFERENCES rooms (id),
    seq     INTEGER NOT NULL
);
