-- Wrong one-time codes in a row since the last right one, at login or in a password reset. A
-- right password does not clear it: the owner is told when it reaches 3, since whoever enters
-- the password and then wrong codes knows the password.
ALTER TABLE totp_secrets ADD COLUMN wrong_codes BIGINT NOT NULL DEFAULT 0;
