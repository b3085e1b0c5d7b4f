-- An email a wallet user named in prepare-wallet but has not proven yet.
-- It stays on this tenant's enrollment, never on the person, until the
-- email OTP passes for this tenant: an unproven email must not join two
-- people's identities or reserve an address its owner has not confirmed.
ALTER TABLE enrollments ADD COLUMN pending_email TEXT;
CREATE UNIQUE INDEX enrollments_pending_email ON enrollments (tenant_id, pending_email);
