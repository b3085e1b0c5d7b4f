-- A creation claim carries the quota unit it reserved (quota_tenant,
-- quota_month; NULL when none), so the unit lives exactly as long as the
-- claim: storing the session makes it permanent, a release gives it back,
-- and so does the sweep of a claim whose holder died. A later caller that
-- takes over a lapsed claim inherits its unit instead of taking another.
ALTER TABLE session_claims ADD COLUMN quota_tenant TEXT;
ALTER TABLE session_claims ADD COLUMN quota_month TEXT;

-- delivering_until is set while sent1's mail is being delivered: a send
-- whose process died before it knew the outcome stops blocking the
-- address once this lease lapses, and the next send takes its place
-- instead of pushing it into the window.
ALTER TABLE otp_sends ADD COLUMN delivering_until BIGINT;

-- One row that readiness writes: a replica that cannot write (full disk,
-- read-only database) is not ready.
CREATE TABLE ready_probe (
    id INTEGER PRIMARY KEY,
    at BIGINT NOT NULL
);
