-- Rotation by generation (see app/src/auth/sessions.rs). A session's refresh token is
-- HMAC(rotation key, session id ‖ generation): the session row is the whole chain, a refresh is one
-- conditional UPDATE, and storage grows with sessions, not with refreshes. Sessions started before
-- this migration are at generation 0: their current token is still found in refresh_tokens, and
-- their first refresh moves them onto generations. Those rows go when their session is purged.
ALTER TABLE sessions ADD COLUMN generation BIGINT NOT NULL DEFAULT 0;
-- The current generation's issue: when (its predecessor was spent then), the access token issued
-- beside it (so that the grace window can hand the same pair again), and the client it went to
-- (its address, a SHA-256 of its User-Agent).
ALTER TABLE sessions ADD COLUMN rotated_at BIGINT;
ALTER TABLE sessions ADD COLUMN access_jti TEXT;
ALTER TABLE sessions ADD COLUMN access_kid TEXT;
ALTER TABLE sessions ADD COLUMN issued_to_ip TEXT;
ALTER TABLE sessions ADD COLUMN issued_to_agent TEXT;
-- The retention purge (app/src/auth/retention.rs) finds old rows by these.
CREATE INDEX sessions_by_last_use ON sessions (last_used_at);
CREATE INDEX security_events_by_time ON security_events (at);
