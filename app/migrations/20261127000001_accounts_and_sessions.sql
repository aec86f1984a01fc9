-- Baton's whole schema. Portable on purpose: the same file runs on SQLite and PostgreSQL,
-- so ids are UUID strings made by the application and every timestamp is BIGINT unix milliseconds.

-- One row per account.
CREATE TABLE users (
    id              TEXT PRIMARY KEY,
    -- As the user typed it, for display.
    username        TEXT NOT NULL,
    -- Lower-cased username: uniqueness ignores case ("Alice" = "alice").
    username_key    TEXT NOT NULL UNIQUE,
    -- Argon2id PHC string; it carries its own salt and parameters, so old hashes keep verifying
    -- after the parameters change (and are re-hashed on the next login).
    password_hash   TEXT NOT NULL,
    created_at      BIGINT NOT NULL
);

-- A session is one login on one device. Access tokens name it in their `sid` claim, so revoking
-- it refuses them at once, before they expire.
CREATE TABLE sessions (
    id              TEXT PRIMARY KEY,
    user_id         TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at      BIGINT NOT NULL,
    -- Bumped by every refresh; the idle timeout counts from here.
    last_used_at    BIGINT NOT NULL,
    -- created_at + the absolute lifetime: no refresh extends it.
    expires_at      BIGINT NOT NULL,
    -- NULL while the session lives.
    revoked_at      BIGINT,
    -- logout | logout_all | revoked | refresh_token_reuse
    revoked_reason  TEXT,
    user_agent      TEXT,
    ip              TEXT
);
CREATE INDEX sessions_by_user ON sessions (user_id);

-- The chain of refresh tokens of a session, the newest last. Only a SHA-256 of each token is
-- stored: a copy of the database does not let anyone refresh.
CREATE TABLE refresh_tokens (
    id              TEXT PRIMARY KEY,
    session_id      TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    -- The token this one replaced. UNIQUE: a token has one successor at most, which is what
    -- makes concurrent refreshes with the same token safe.
    parent_id       TEXT UNIQUE REFERENCES refresh_tokens (id) ON DELETE CASCADE,
    token_hash      TEXT NOT NULL UNIQUE,
    issued_at       BIGINT NOT NULL,
    -- The access token issued together with this refresh token (its `jti` and signing key), so
    -- that the grace window can hand a racing client the very same pair again.
    access_jti      TEXT NOT NULL,
    access_kid      TEXT NOT NULL,
    -- When it was exchanged for its successor; NULL while it is the current token.
    spent_at        BIGINT
);
CREATE INDEX refresh_tokens_by_session ON refresh_tokens (session_id);

-- What an operator wants to know after an incident: reuse, revocations, failed logins.
CREATE TABLE security_events (
    id              TEXT PRIMARY KEY,
    at              BIGINT NOT NULL,
    kind            TEXT NOT NULL,
    user_id         TEXT,
    session_id      TEXT,
    ip              TEXT,
    detail          TEXT
);
CREATE INDEX security_events_by_user ON security_events (user_id, at);
