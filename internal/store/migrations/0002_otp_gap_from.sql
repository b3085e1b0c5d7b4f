-- gap_from is the send the minimum gap is measured from: the newest send,
-- or NULL once DropOTP gave an undelivered code's place back. sent1..sent5
-- keep every send at its own time, dropped ones included, for the window.
ALTER TABLE otps ADD COLUMN gap_from BIGINT;
UPDATE otps SET gap_from = sent1;
