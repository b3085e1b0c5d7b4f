-- Idempotency-Key: one row per (tenant, key), kept 24 h from the first
-- request (expires_at) and then pruned. key_hash is a keyed hash of the
-- client's key. status is 0 while the first request runs (lease_until
-- bounds how long a dead holder keeps the key), then the answer's HTTP
-- status with its content type, Retry-After and body (kycgate's own JSON,
-- at most 16 KiB). token names the running claim, so only its holder
-- completes or releases it.
CREATE TABLE idempotency_keys (
    tenant_id    TEXT NOT NULL,
    key_hash     TEXT NOT NULL,
    fingerprint  TEXT NOT NULL,
    token        TEXT NOT NULL,
    lease_until  BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    status       INTEGER NOT NULL DEFAULT 0,
    content_type TEXT NOT NULL DEFAULT '',
    retry_after  TEXT NOT NULL DEFAULT '',
    body         TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (tenant_id, key_hash)
);

-- The prune job deletes by expiry.
CREATE INDEX idempotency_keys_expires ON idempotency_keys (expires_at);
