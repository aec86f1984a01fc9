-- Email: an optional address per account, links sent to it, and the queue mail waits in.

-- As typed; `email_key` (lower-cased) is what a reset request matches. Not unique: a unique
-- address would let anyone find out, by signing up with it, that an account has it.
ALTER TABLE users ADD COLUMN email TEXT;
ALTER TABLE users ADD COLUMN email_key TEXT;
-- NULL until a link sent to this very address was opened; a new address starts unverified.
ALTER TABLE users ADD COLUMN email_verified_at BIGINT;
CREATE INDEX users_by_email ON users (email_key);

-- Single-use links (verify an address, reset a password). Only a SHA-256 of the token is kept.
-- A verification link for an address other than the account's is a pending change of address:
-- the account keeps its verified address until the link is opened.
CREATE TABLE link_tokens (
    token_hash       TEXT PRIMARY KEY,
    user_id          TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- verify_email | reset_password
    purpose          TEXT NOT NULL,
    -- The address the link was sent to: verifying makes that address the account's, verified.
    email            TEXT NOT NULL,
    -- Lower-cased (see `link_recipients`).
    email_key        TEXT NOT NULL,
    -- A reset link works only while the password is the one it was sent for: any change voids it.
    password_version BIGINT NOT NULL,
    created_at       BIGINT NOT NULL,
    expires_at       BIGINT NOT NULL,
    -- Set when opened, or when a newer link of the same purpose replaced it.
    used_at          BIGINT
);
CREATE INDEX link_tokens_by_user ON link_tokens (user_id, purpose, created_at);

-- Links mailed to an address in its current hour-long window, whichever accounts they were for:
-- kept apart from the accounts, so that deleting one does not reset the count, and upserted
-- under a lock, so that concurrent requests for one address take its last places in turn.
CREATE TABLE link_recipients (
    email_key        TEXT NOT NULL,
    purpose          TEXT NOT NULL,
    window_start     BIGINT NOT NULL,
    sent             BIGINT NOT NULL,
    PRIMARY KEY (email_key, purpose)
);

-- Mail waits here until sent: a request never waits for the mail server, and neither its outage
-- nor a crash loses a mail. A row is deleted once sent; its message (which may hold a link, so
-- that until then a copy of the database holds it too) is blanked when it fails for good.
CREATE TABLE mail_outbox (
    id              TEXT PRIMARY KEY,
    -- What the mail is about (reset_link, new_sign_in …): logs name it, never the message.
    kind            TEXT NOT NULL,
    sender          TEXT NOT NULL,
    recipient       TEXT NOT NULL,
    -- The whole RFC 5322 message, as sent.
    message         TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    -- The instance sending it holds it until then (several instances share one queue); only
    -- the holder settles it.
    claimed_until   BIGINT,
    claimed_by      TEXT,
    -- A mail carrying a link is not sent after its link expired (nor kept: it is blanked).
    expires_at      BIGINT,
    failed_at       BIGINT
);
CREATE INDEX mail_outbox_due ON mail_outbox (next_attempt_at);
