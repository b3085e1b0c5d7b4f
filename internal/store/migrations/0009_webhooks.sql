-- Outbound webhooks (Standard Webhooks) to partners.
--
-- webhook_endpoints: a tenant's destinations. Signing secrets must be
-- usable, so they are sealed (AES-GCM, a key derived from the server
-- secret), never stored plain. After a rotation the previous secret keeps
-- signing beside the new one until prev_secret_until. events is a
-- comma-framed list of subscribed types (",a,b,"), or '' for every type.
-- failing_since is the first failure since the last success; an endpoint
-- failing for days is disabled (disabled_at, disabled_reason).
CREATE TABLE webhook_endpoints (
    id                TEXT PRIMARY KEY,
    tenant_id         TEXT NOT NULL REFERENCES tenants (id),
    url               TEXT NOT NULL,
    events            TEXT NOT NULL,
    secret            TEXT NOT NULL,
    prev_secret       TEXT,
    prev_secret_until BIGINT,
    failing_since     BIGINT,
    disabled_at       BIGINT,
    disabled_reason   TEXT,
    created_at        BIGINT NOT NULL
);
CREATE INDEX webhook_endpoints_tenant ON webhook_endpoints (tenant_id);

-- The outbox: one row per event a tenant is told about, written in the
-- transaction of the change it reports. body is the exact JSON sent, so
-- every attempt (and a redelivery) signs the same bytes under the same id.
CREATE TABLE outbox_events (
    id         TEXT PRIMARY KEY,
    tenant_id  TEXT NOT NULL,
    type       TEXT NOT NULL,
    body       TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX outbox_events_tenant ON outbox_events (tenant_id, created_at);

-- One delivery per (event, endpoint). A pending delivery is due at
-- next_at; claiming it moves next_at past the attempt's lease and sets
-- lease_token, so a worker that dies mid-attempt leaves it due again when
-- the lease lapses, and only the holder of the lease records its outcome.
-- state: pending, delivered, failed (retries exhausted or endpoint gone).
CREATE TABLE webhook_deliveries (
    event_id     TEXT NOT NULL REFERENCES outbox_events (id),
    endpoint_id  TEXT NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    state        TEXT NOT NULL,
    attempts     INTEGER NOT NULL,
    next_at      BIGINT NOT NULL,
    lease_token  TEXT,
    last_at      BIGINT,
    last_status  INTEGER,
    last_error   TEXT,
    delivered_at BIGINT,
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (event_id, endpoint_id)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (state, next_at);
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id, created_at);
CREATE INDEX webhook_deliveries_lease ON webhook_deliveries (lease_token);
