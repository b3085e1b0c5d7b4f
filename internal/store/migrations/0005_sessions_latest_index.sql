-- status and create-session read a person's newest session: with the id in
-- the index that is one index probe, without reading the rows or sorting.
CREATE INDEX kyc_sessions_person_latest ON kyc_sessions (person_id, created_at, id);
DROP INDEX kyc_sessions_person;
