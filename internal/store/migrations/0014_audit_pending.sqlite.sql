-- Unsealed audit entries move to a table of their own, with no index but
-- its key: every state change appends one, and on SQLite each index of
-- audit_log was one more B-tree page in the appending commit
-- (BENCHMARKS.md, "Audit entries in a table of their own"). The sealer
-- moves them, chained, into audit_log in batches of hundreds, where those
-- pages are shared. An entry keeps its id when it moves: AUTOINCREMENT
-- never hands out an id twice, and the sequence starts after the log's.
CREATE TABLE audit_pending (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id  TEXT NOT NULL DEFAULT '',
    at         BIGINT NOT NULL,
    actor      TEXT NOT NULL,
    action     TEXT NOT NULL,
    subject    TEXT NOT NULL DEFAULT '',
    result     TEXT NOT NULL,
    request_id TEXT NOT NULL DEFAULT ''
);
INSERT INTO sqlite_sequence (name, seq) SELECT 'audit_pending', COALESCE(MAX(id), 0) FROM audit_log;
INSERT INTO audit_pending (id, tenant_id, at, actor, action, subject, result, request_id)
    SELECT id, tenant_id, at, actor, action, subject, result, request_id FROM audit_log WHERE seq IS NULL;
DELETE FROM audit_log WHERE seq IS NULL;
DROP INDEX audit_log_unsealed;
