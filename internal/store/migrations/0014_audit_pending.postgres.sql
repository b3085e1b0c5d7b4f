-- Unsealed audit entries move to a table of their own, with no index but
-- its key: every state change appends one, and each index of audit_log was
-- one more index insert in its commit (BENCHMARKS.md, "Audit entries in a
-- table of their own"). The sealer moves them, chained, into audit_log in
-- batches. An entry keeps its id when it moves: both tables draw ids from
-- audit_log's sequence. The SQLite and PostgreSQL files differ only in how
-- id counts up.
CREATE TABLE audit_pending (
    id         BIGINT PRIMARY KEY DEFAULT nextval('audit_log_id_seq'),
    tenant_id  TEXT NOT NULL DEFAULT '',
    at         BIGINT NOT NULL,
    actor      TEXT NOT NULL,
    action     TEXT NOT NULL,
    subject    TEXT NOT NULL DEFAULT '',
    result     TEXT NOT NULL,
    request_id TEXT NOT NULL DEFAULT ''
);
INSERT INTO audit_pending (id, tenant_id, at, actor, action, subject, result, request_id)
    SELECT id, tenant_id, at, actor, action, subject, result, request_id FROM audit_log WHERE seq IS NULL;
DELETE FROM audit_log WHERE seq IS NULL;
DROP INDEX audit_log_unsealed;
