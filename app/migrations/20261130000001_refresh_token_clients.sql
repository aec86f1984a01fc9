-- Which client each refresh token was issued to (the one that spent its predecessor), so that the
-- grace window answers only that client again (see app/src/auth/sessions.rs). The address as seen,
-- and a SHA-256 of the User-Agent: compared, never shown. NULL on rows issued before this column.
ALTER TABLE refresh_tokens ADD COLUMN issued_to_ip TEXT;
ALTER TABLE refresh_tokens ADD COLUMN issued_to_agent TEXT;
