-- The purge finds ended sessions by each way a session ends (expired, revoked, idle: the last
-- indexed already), without reading the live ones: with a million live sessions, one query
-- that ORed the three scanned them all for every batch of 500.
CREATE INDEX sessions_by_expiry ON sessions (expires_at);
CREATE INDEX sessions_by_revocation ON sessions (revoked_at) WHERE revoked_at IS NOT NULL;
