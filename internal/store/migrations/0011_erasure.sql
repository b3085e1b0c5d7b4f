-- Erasure (docs/erasure.md).
--
-- didit_deletions: the Didit sessions of erased people, queued in the
-- erasure's own transaction so none is forgotten when Didit fails or the
-- process dies. A row goes when Didit confirms the deletion (or answers
-- 404: gone already). lease_token and lease_until mark the worker trying
-- it now, so two replicas never try one row at once; next_at is when a
-- failed deletion is due again. The table holds no personal data: a
-- session id is Didit's random UUID.
CREATE TABLE didit_deletions (
    session_id  TEXT PRIMARY KEY,
    queued_at   BIGINT NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    next_at     BIGINT NOT NULL,
    lease_token TEXT,
    lease_until BIGINT,
    last_error  TEXT
);
CREATE INDEX didit_deletions_due ON didit_deletions (next_at);

-- An outbox event names its person's identifiers in its body: the person
-- it is about lets an erasure find it. Events written before this column
-- have NULL here and are found by their body.
ALTER TABLE outbox_events ADD COLUMN person_id TEXT;
CREATE INDEX outbox_events_person ON outbox_events (person_id);

-- A stored idempotent answer belongs to a request that named an email or
-- a wallet: subjects lists keyed hashes of those (",h1,h2,"), so an
-- erasure finds the rows without the request's clear text being kept.
-- Rows written before this column have '' here and are found by their
-- stored body.
ALTER TABLE idempotency_keys ADD COLUMN subjects TEXT NOT NULL DEFAULT '';
