-- Times are Unix milliseconds (BIGINT) so one set of SQL serves SQLite and
-- PostgreSQL without time-zone or precision surprises.
CREATE TABLE tenants (
    id                    TEXT PRIMARY KEY,
    name                  TEXT NOT NULL,
    kyc_enabled           BOOLEAN NOT NULL,
    monthly_quota         INTEGER NOT NULL,
    rate_limit_per_minute INTEGER NOT NULL,
    created_at            BIGINT NOT NULL
);

CREATE TABLE api_keys (
    id         TEXT PRIMARY KEY,
    tenant_id  TEXT NOT NULL REFERENCES tenants (id),
    key_hash   TEXT NOT NULL UNIQUE,
    prefix     TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX api_keys_tenant ON api_keys (tenant_id);

CREATE TABLE persons (
    id           TEXT PRIMARY KEY,
    email        TEXT UNIQUE,
    wallet       TEXT UNIQUE,
    wallet_chain TEXT,
    created_at   BIGINT NOT NULL
);

CREATE TABLE enrollments (
    tenant_id       TEXT NOT NULL REFERENCES tenants (id),
    person_id       TEXT NOT NULL REFERENCES persons (id),
    email_verified  BOOLEAN NOT NULL DEFAULT FALSE,
    wallet_verified BOOLEAN NOT NULL DEFAULT FALSE,
    created_at      BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, person_id)
);

-- One live code per (tenant, person). sent1..sent5 are the last five send
-- times, newest first: the 60 s gap and the 5-per-hour sliding window are
-- then one conditional upsert.
CREATE TABLE otps (
    tenant_id  TEXT NOT NULL,
    person_id  TEXT NOT NULL,
    code_hash  TEXT,
    expires_at BIGINT NOT NULL,
    attempts   INTEGER NOT NULL,
    sent1      BIGINT,
    sent2      BIGINT,
    sent3      BIGINT,
    sent4      BIGINT,
    sent5      BIGINT,
    PRIMARY KEY (tenant_id, person_id)
);

CREATE TABLE challenges (
    nonce      TEXT PRIMARY KEY,
    tenant_id  TEXT NOT NULL,
    wallet     TEXT NOT NULL,
    chain      TEXT NOT NULL,
    message    TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT
);
CREATE INDEX challenges_expiry ON challenges (expires_at);

CREATE TABLE kyc_sessions (
    id          TEXT PRIMARY KEY,
    person_id   TEXT NOT NULL REFERENCES persons (id),
    tenant_id   TEXT NOT NULL REFERENCES tenants (id),
    url         TEXT NOT NULL,
    status      TEXT NOT NULL,
    ip_info     TEXT NOT NULL,
    blocklisted BOOLEAN NOT NULL,
    decision    TEXT,
    event_at    BIGINT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    checked_at  BIGINT NOT NULL,
    watch       BOOLEAN NOT NULL,
    version     BIGINT NOT NULL
);
CREATE INDEX kyc_sessions_person ON kyc_sessions (person_id, created_at);
CREATE INDEX kyc_sessions_watch ON kyc_sessions (watch, checked_at);

-- Who may create a person's session right now (one caller, any replica).
CREATE TABLE session_claims (
    person_id     TEXT PRIMARY KEY,
    token         TEXT NOT NULL,
    claimed_until BIGINT NOT NULL
);

CREATE TABLE quota_usage (
    tenant_id TEXT NOT NULL,
    month     TEXT NOT NULL,
    used      INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, month)
);

CREATE TABLE webhook_events (
    event_key   TEXT PRIMARY KEY,
    session_id  TEXT NOT NULL,
    received_at BIGINT NOT NULL
);

CREATE TABLE rate_counters (
    bucket       TEXT PRIMARY KEY,
    window_start BIGINT NOT NULL,
    hits         INTEGER NOT NULL
);
