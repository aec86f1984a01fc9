-- Per-account throttling of password guesses (see app/src/auth/throttle.rs).

-- Consecutive failed logins per username key, whether or not such an account exists: unknown
-- names are throttled exactly like real ones, so throttling tells nothing about which accounts
-- exist. A successful login deletes the row.
CREATE TABLE login_attempts (
    username_key    TEXT PRIMARY KEY,
    -- Counted when an attempt starts, before its password is checked, so that concurrent guesses
    -- cannot all get in before the first failure is written.
    failures        BIGINT NOT NULL,
    -- No attempt is checked before this time; the backoff and the lock both set it.
    blocked_until   BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);
