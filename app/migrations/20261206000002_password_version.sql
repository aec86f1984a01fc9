-- Bumped by every password change, never by a rehash (new Argon2 parameters, same password): a
-- login starts its session only while the version it verified is still the user's, and a rehash
-- or a change writes only over the version it read (see app/src/auth/accounts.rs).
ALTER TABLE users ADD COLUMN password_version BIGINT NOT NULL DEFAULT 0;
