-- codes_sent counts the verification codes mailed per tenant and calendar
-- month (UTC) for the admin API's usage report. otp_sends keeps only an
-- address's last five sends and is pruned, so it cannot answer "how many
-- this month"; this counter grows when a send is confirmed (ConfirmOTP).
CREATE TABLE codes_sent (
    tenant_id TEXT NOT NULL,
    month     TEXT NOT NULL,
    sent      INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, month)
);
