-- Identity linking (the revised linking rule): a tenant's enrollment of a
-- person carries the identifiers that tenant registered for them, and
-- lookups go by those, never by what other tenants proved about the person.
--
--   email          the address this tenant registered (prepare) or proved as
--                  a link to the wallet (an OTP naming the wallet); always
--                  the person's email.
--   wallet         the wallet this tenant verified by signature; always the
--                  person's wallet. A wallet is only ever registered by its
--                  proof, so wallet_verified is "wallet IS NOT NULL".
--   pending_email  an address the wallet named, not yet proven. Several
--                  wallets may name one address: it is not an identifier,
--                  and the first proof wins.
--
-- A tenant may hold two enrollments of one person (one by email, one by
-- wallet) when the link between them was proven elsewhere: it sees them as
-- one user only once it has proven the link itself.
CREATE TABLE enrollments_v2 (
    id             TEXT PRIMARY KEY,
    tenant_id      TEXT NOT NULL REFERENCES tenants (id),
    person_id      TEXT NOT NULL REFERENCES persons (id),
    email          TEXT,
    wallet         TEXT,
    email_verified BOOLEAN NOT NULL DEFAULT FALSE,
    pending_email  TEXT,
    created_at     BIGINT NOT NULL
);
-- Every existing enrollment keeps the lookups it had: the person's email
-- (an email user's, or a wallet user's proven one), and the wallet when this
-- tenant verified it. An email proven by OTP that could not become the
-- person's (someone else owned the address) was a proof of nothing the
-- person has: it goes back to pending, to be proven again under the new
-- rule, which merges or refuses.
INSERT INTO enrollments_v2 (id, tenant_id, person_id, email, wallet, email_verified, pending_email, created_at)
SELECT 'en_' || e.tenant_id || '_' || e.person_id, e.tenant_id, e.person_id, p.email,
       CASE WHEN e.wallet_verified THEN p.wallet END,
       e.email_verified AND p.email IS NOT NULL,
       CASE WHEN e.pending_email = p.email THEN NULL ELSE e.pending_email END,
       e.created_at
FROM enrollments e JOIN persons p ON p.id = e.person_id;
DROP TABLE enrollments;
ALTER TABLE enrollments_v2 RENAME TO enrollments;
CREATE UNIQUE INDEX enrollments_tenant_email ON enrollments (tenant_id, email);
CREATE UNIQUE INDEX enrollments_tenant_wallet ON enrollments (tenant_id, wallet);
CREATE INDEX enrollments_tenant_pending ON enrollments (tenant_id, pending_email);
CREATE INDEX enrollments_person ON enrollments (person_id);

-- Codes: one live code per (tenant, address, link): wallet '' is the
-- address's own code; otherwise the code proves that wallet's link to the
-- address and nothing else. The send limits (60 s apart, 5 an hour) stay
-- per (tenant, address), over every code mailed there.
CREATE TABLE otp_sends (
    tenant_id TEXT NOT NULL,
    address   TEXT NOT NULL,
    sent1     BIGINT,
    sent2     BIGINT,
    sent3     BIGINT,
    sent4     BIGINT,
    sent5     BIGINT,
    gap_from  BIGINT,
    PRIMARY KEY (tenant_id, address)
);
INSERT INTO otp_sends (tenant_id, address, sent1, sent2, sent3, sent4, sent5, gap_from)
SELECT tenant_id, subject, sent1, sent2, sent3, sent4, sent5, gap_from FROM otps;
CREATE TABLE otp_codes (
    tenant_id  TEXT NOT NULL,
    address    TEXT NOT NULL,
    wallet     TEXT NOT NULL,
    code_hash  TEXT,
    expires_at BIGINT NOT NULL,
    attempts   INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, address, wallet)
);
INSERT INTO otp_codes (tenant_id, address, wallet, code_hash, expires_at, attempts)
SELECT tenant_id, subject, '', code_hash, expires_at, attempts FROM otps WHERE code_hash IS NOT NULL;
DROP TABLE otps;
-- A live code mailed to an address that was only pending on a wallet here
-- was for that link. Its mail named no wallet, and under the earlier rule
-- it could only give the wallet an address nobody had: it stays usable for
-- the link where that is still all it can do (nobody has the address).
-- Every other own code of an address with no registration of its own here
-- could now only complete a link it was never mailed for: it is dropped,
-- and the user asks for a new code, whose mail names the wallet.
UPDATE otp_codes SET wallet = (
        SELECT e.wallet FROM enrollments e
        WHERE e.tenant_id = otp_codes.tenant_id AND e.pending_email = otp_codes.address AND e.wallet IS NOT NULL)
WHERE NOT EXISTS (SELECT 1 FROM enrollments o WHERE o.tenant_id = otp_codes.tenant_id AND o.email = otp_codes.address)
  AND NOT EXISTS (SELECT 1 FROM persons p WHERE p.email = otp_codes.address)
  AND EXISTS (SELECT 1 FROM enrollments e
        WHERE e.tenant_id = otp_codes.tenant_id AND e.pending_email = otp_codes.address AND e.wallet IS NOT NULL);
DELETE FROM otp_codes WHERE wallet = ''
  AND NOT EXISTS (SELECT 1 FROM enrollments o WHERE o.tenant_id = otp_codes.tenant_id AND o.email = otp_codes.address);

-- A creation claim names a person that exists: a claim racing a merge that
-- removes its person fails instead of creating a session for nobody.
CREATE TABLE session_claims_v2 (
    person_id     TEXT PRIMARY KEY REFERENCES persons (id),
    token         TEXT NOT NULL,
    claimed_until BIGINT NOT NULL
);
INSERT INTO session_claims_v2 (person_id, token, claimed_until)
SELECT c.person_id, c.token, c.claimed_until FROM session_claims c
WHERE EXISTS (SELECT 1 FROM persons p WHERE p.id = c.person_id);
DROP TABLE session_claims;
ALTER TABLE session_claims_v2 RENAME TO session_claims;
