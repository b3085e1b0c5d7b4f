-- The audit log (docs/audit.md): one row per state change, appended by the
-- change and chained later by the sealer. A row is written with seq NULL;
-- sealing gives it its place in its tenant's chain (seq = the previous
-- entry's + 1), the previous entry's hash (prev_hash) and its own hash over
-- both and its fields. tenant_id '' holds operator entries outside any
-- tenant. subject is a keyed hash, never a clear email or wallet. at is
-- Unix milliseconds. The SQLite and PostgreSQL files differ only in how id
-- counts up.
CREATE TABLE audit_log (
    id         BIGSERIAL PRIMARY KEY,
    tenant_id  TEXT NOT NULL DEFAULT '',
    at         BIGINT NOT NULL,
    actor      TEXT NOT NULL,
    action     TEXT NOT NULL,
    subject    TEXT NOT NULL DEFAULT '',
    result     TEXT NOT NULL,
    request_id TEXT NOT NULL DEFAULT '',
    seq        BIGINT,
    prev_hash  TEXT NOT NULL DEFAULT '',
    hash       TEXT NOT NULL DEFAULT ''
);
-- One entry per place in a chain, and chains read in order (NULLs, the
-- unsealed rows, are distinct).
CREATE UNIQUE INDEX audit_log_chain ON audit_log (tenant_id, seq);
-- The sealer's queue.
CREATE INDEX audit_log_unsealed ON audit_log (id) WHERE seq IS NULL;
-- Listing by tenant and by subject, newest first.
CREATE INDEX audit_log_tenant ON audit_log (tenant_id, id);
CREATE INDEX audit_log_subject ON audit_log (subject, id) WHERE subject <> '';
