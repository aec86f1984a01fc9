-- One-time codes (TOTP, RFC 6238) as a second factor, their recovery codes, and the login's
-- second step.

-- At most one secret per account. Until `confirmed_at` it is a setup in progress (a first code
-- confirms it); only a confirmed secret asks for codes at login.
CREATE TABLE totp_secrets (
    user_id      TEXT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    -- The 20 bytes the authenticator app was given, as `tokens::keys` stores private keys:
    -- `sealed:` under KEY_ENCRYPTION_KEY where one is set, else `plain:`.
    secret       TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    confirmed_at BIGINT,
    -- The newest 30-second step whose code was accepted: a code works once, and no older one
    -- after it (RFC 6238 section 5.2).
    last_step    BIGINT NOT NULL DEFAULT 0
);

-- Ten per account, each usable once; only a SHA-256 of the code (60 random bits) is kept.
CREATE TABLE recovery_codes (
    code_hash  TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    used_at    BIGINT
);
CREATE INDEX recovery_codes_by_user ON recovery_codes (user_id);

-- A right password for an account with one-time codes: the challenge that the code step must
-- present (only its SHA-256 is kept). Single use, 5 minutes, a few tries, and bound to the
-- client that gave the password: its DPoP key (if it showed one) and its user agent.
CREATE TABLE mfa_challenges (
    challenge_hash   TEXT PRIMARY KEY,
    user_id          TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- The password this challenge was earned with: a change since voids it.
    password_version BIGINT NOT NULL,
    jkt              TEXT,
    user_agent       TEXT,
    tries            BIGINT NOT NULL DEFAULT 0,
    created_at       BIGINT NOT NULL,
    expires_at       BIGINT NOT NULL,
    used_at          BIGINT
);
CREATE INDEX mfa_challenges_by_expiry ON mfa_challenges (expires_at);
CREATE INDEX mfa_challenges_by_user ON mfa_challenges (user_id);

-- A reset link of an account with codes asks for one; wrong ones are counted on the link (not
-- the login backoff, which the reset is the owner's way out of), and 5 void it.
ALTER TABLE link_tokens ADD COLUMN code_tries BIGINT NOT NULL DEFAULT 0;
