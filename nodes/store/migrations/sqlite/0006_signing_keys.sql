-- Token signing keys, shared by every node of a cluster (migrations/mysql/0006_signing_keys.sql is
-- its MySQL twin). One row per generation: the primary key makes a rotation happen once when nodes
-- race to add the next generation. A key signs from `signs_from_ms` (its creation plus a publication
-- lead, so that every node verifies its tokens before any is issued) until the next generation's
-- `signs_from_ms`; the gateway derives how long it keeps verifying from `[auth]` and deletes it then.
-- The private key is PKCS#8 DER: whoever reads this table can sign tokens.
CREATE TABLE signing_keys (
    generation    INTEGER NOT NULL PRIMARY KEY,
    kid           TEXT    NOT NULL UNIQUE,
    private_key   BLOB    NOT NULL,
    public_key    BLOB    NOT NULL,
    created_at_ms INTEGER NOT NULL,
    signs_from_ms INTEGER NOT NULL
);
