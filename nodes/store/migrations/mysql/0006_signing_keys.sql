-- Token signing keys, shared by every node of a cluster (migrations/sqlite/0006_signing_keys.sql is
-- its SQLite twin). One row per generation: the primary key makes a rotation happen once when nodes
-- race to add the next generation. A key signs from `signs_from_ms` (its creation plus a publication
-- lead, so that every node verifies its tokens before any is issued) until the next generation's
-- `signs_from_ms`; the gateway derives how long it keeps verifying from `[auth]` and deletes it then.
-- The private key is PKCS#8 DER: whoever reads this table can sign tokens.
CREATE TABLE signing_keys (
    generation    BIGINT       NOT NULL,
    kid           VARCHAR(64)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    private_key   VARBINARY(1024) NOT NULL,
    public_key    VARBINARY(256)  NOT NULL,
    created_at_ms BIGINT       NOT NULL,
    signs_from_ms BIGINT       NOT NULL,
    PRIMARY KEY (generation),
    UNIQUE KEY signing_keys_kid (kid)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;
