-- codes_sent gets a shard column: every confirmed send of a tenant in a
-- month added one to the same row, and on PostgreSQL concurrent sends
-- queued on that row's lock until each other's commit. A send now adds
-- to one of 16 rows picked at random; the usage report sums them.
CREATE TABLE codes_sent_v2 (
    tenant_id TEXT NOT NULL,
    month     TEXT NOT NULL,
    shard     INTEGER NOT NULL,
    sent      INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, month, shard)
);
INSERT INTO codes_sent_v2 (tenant_id, month, shard, sent) SELECT tenant_id, month, 0, sent FROM codes_sent;
DROP TABLE codes_sent;
ALTER TABLE codes_sent_v2 RENAME TO codes_sent;
