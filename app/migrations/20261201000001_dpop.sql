-- DPoP (RFC 9449, see app/src/auth/dpop.rs). A session started with a DPoP proof is bound to the
-- key's RFC 7638 thumbprint: its refresh tokens need a proof by that key, its access tokens carry
-- it as cnf.jkt. NULL: the session is not bound to a key.
ALTER TABLE sessions ADD COLUMN dpop_jkt TEXT;
-- Proofs seen on PostgreSQL, "<jkt>:<jti>", until they are too old to be accepted anyway: no
-- instance accepts one twice. (SQLite, one instance, keeps them in memory.)
CREATE TABLE dpop_proofs (
    id TEXT PRIMARY KEY,
    expires_at BIGINT NOT NULL
);
CREATE INDEX dpop_proofs_by_expiry ON dpop_proofs (expires_at);
