-- Hand-offs between two pages of one tab whose browser blocks site storage (see
-- app/src/auth/handoff.rs): the tokens of the session living in the page's memory, sealed under a
-- key derived from a one-time code that only the next page holds. Kept for seconds.
CREATE TABLE handoffs (
    id TEXT PRIMARY KEY,
    sealed TEXT NOT NULL,
    session_id TEXT NOT NULL,
    issued_to_ip TEXT,
    issued_to_agent TEXT,
    expires_at BIGINT NOT NULL
);
CREATE INDEX handoffs_by_expiry ON handoffs (expires_at);
