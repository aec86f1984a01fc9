-- The keys every instance shares (see app/src/auth/keys.rs), so that several instances on one
-- PostgreSQL verify what any of them signed. They were files in each data directory before; an
-- instance imports its files on first start.
--
-- A signing key signs from activates_at until the next key activates; it is published in the JWKS
-- from the moment it is stored. Nothing is updated in place: next, current and retired follow from
-- the times alone. The unique activates_at makes creating the first key (at 0) race-free.
CREATE TABLE signing_keys (
    kid TEXT PRIMARY KEY,
    activates_at BIGINT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    -- The raw Ed25519 public key, base64url (the JWK's x).
    public_key TEXT NOT NULL,
    -- PKCS#8: "plain:<base64>", or "sealed:<base64 nonce and ciphertext>" under KEY_ENCRYPTION_KEY.
    private_key TEXT NOT NULL
);
-- The refresh tokens' HMAC keys. "primary" authenticates new tokens; keys imported from the data
-- directories of instances that ran alone still verify the tokens they issued.
CREATE TABLE rotation_keys (
    id TEXT PRIMARY KEY,
    created_at BIGINT NOT NULL,
    -- 32 bytes, sealed or plain as above.
    secret TEXT NOT NULL
);
-- Per-address rate limits shared by all instances on PostgreSQL (SQLite keeps them in memory):
-- GCRA's theoretical arrival time per bucket, in milliseconds.
CREATE TABLE rate_limit_buckets (
    bucket TEXT PRIMARY KEY,
    tat BIGINT NOT NULL
);
CREATE INDEX rate_limit_buckets_by_tat ON rate_limit_buckets (tat);
