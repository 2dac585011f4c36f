-- The sender's idempotency key of a message (the SEND's `nonce` header, 1 to 64 bytes), NULL when it
-- sent none (migrations/sqlite/0005_message_nonce.sql is its SQLite twin): a restarted room reads it
-- back with its newest messages, so a resend of one of them is answered with the original RECEIPT.
-- Binary collation: a nonce is an opaque key, compared byte for byte.
ALTER TABLE messages ADD COLUMN nonce VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL;
