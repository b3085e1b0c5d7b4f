-- Codes, attempts and send limits belong to the address they are mailed
-- to (per tenant), not to the person the address currently resolves to:
-- an unproven email can move between wallet users, and must not carry a
-- fresh send history or attempt count with each move. Live codes are
-- dropped; users request a new one.
DELETE FROM otps;
ALTER TABLE otps RENAME COLUMN person_id TO subject;
