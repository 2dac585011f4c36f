-- The sender's idempotency key of a message (the SEND's `nonce` header, 1 to 64 bytes), NULL when it
-- sent none (migrations/mysql/0005_message_nonce.sql is its MySQL twin): a restarted room reads it back
-- with its newest messages, so a resend of one of them is answered with the original RECEIPT.
ALTER TABLE messages ADD COLUMN nonce TEXT NULL;
