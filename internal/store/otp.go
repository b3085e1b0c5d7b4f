package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/kycgate/kycgate/internal/kyc"
)

// SaveOTP is one conditional upsert: the new code replaces the old one and
// the send times shift by one, only where the send the gap counts from
// (gap_from: the newest send, unless DropOTP gave it back) is at least MinGap
// old and the fifth newest send is outside the window. Concurrent senders
// therefore cannot both pass, on one process or many.
func (db *DB) SaveOTP(ctx context.Context, o kyc.OTPSend) (bool, time.Time, error) {
	if o.MaxPerWindow != 5 {
		return false, time.Time{}, errors.New("store: the send window keeps exactly five send times")
	}
	now := ms(o.Now)
	var got int64
	err := db.w.QueryRowContext(ctx, `INSERT INTO otps (tenant_id, subject, code_hash, expires_at, attempts, sent1, gap_from)
		VALUES ($1, $2, $3, $4, 0, $5, $5)
		ON CONFLICT (tenant_id, subject) DO UPDATE SET
			code_hash = excluded.code_hash, expires_at = excluded.expires_at, attempts = 0, gap_from = excluded.gap_from,
			sent1 = excluded.sent1, sent2 = otps.sent1, sent3 = otps.sent2, sent4 = otps.sent3, sent5 = otps.sent4
		WHERE (otps.gap_from IS NULL OR otps.gap_from <= $6) AND (otps.sent5 IS NULL OR otps.sent5 <= $7)
		RETURNING sent1`,
		o.TenantID, o.Subject, o.CodeHash, ms(o.ExpiresAt), now,
		now-o.MinGap.Milliseconds(), now-o.Window.Milliseconds()).Scan(&got)
	if err == nil {
		return true, time.Time{}, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return false, time.Time{}, fmt.Errorf("store: save otp: %w", err)
	}
	var gap, s5 sql.NullInt64
	if err := db.w.QueryRowContext(ctx, `SELECT gap_from, sent5 FROM otps WHERE tenant_id = $1 AND subject = $2`,
		o.TenantID, o.Subject).Scan(&gap, &s5); err != nil {
		return false, time.Time{}, fmt.Errorf("store: read otp sends: %w", err)
	}
	retry := now
	if gap.Valid {
		retry = max(retry, gap.Int64+o.MinGap.Milliseconds())
	}
	if s5.Valid && s5.Int64 > now-o.Window.Milliseconds() {
		retry = max(retry, s5.Int64+o.Window.Milliseconds())
	}
	return false, fromMS(retry), nil
}

// DropOTP kills an undelivered code and clears gap_from, so the next send
// need not wait (the previous delivered send is at least MinGap older than
// the dropped one), while sent1..sent5 keep the dropped send, at its own
// time, in the window.
func (db *DB) DropOTP(ctx context.Context, tenantID, subject, codeHash string) error {
	if _, err := db.w.ExecContext(ctx, `UPDATE otps SET code_hash = NULL, gap_from = NULL
		WHERE tenant_id = $1 AND subject = $2 AND code_hash = $3`, tenantID, subject, codeHash); err != nil {
		return fmt.Errorf("store: drop otp: %w", err)
	}
	return nil
}

func (db *DB) CountOTPAttempt(ctx context.Context, tenantID, subject string, maxAttempts int, now time.Time) (string, kyc.OTPAttempt, error) {
	var hash string
	err := db.w.QueryRowContext(ctx, `UPDATE otps SET attempts = attempts + 1
		WHERE tenant_id = $1 AND subject = $2 AND code_hash IS NOT NULL AND attempts < $3 AND expires_at > $4
		RETURNING code_hash`, tenantID, subject, maxAttempts, ms(now)).Scan(&hash)
	if err == nil {
		return hash, kyc.OTPCounted, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return "", 0, fmt.Errorf("store: count otp attempt: %w", err)
	}
	var code sql.NullString
	var attempts int
	var expires int64
	err = db.w.QueryRowContext(ctx, `SELECT code_hash, attempts, expires_at FROM otps
		WHERE tenant_id = $1 AND subject = $2`, tenantID, subject).Scan(&code, &attempts, &expires)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return "", kyc.OTPNone, nil
	case err != nil:
		return "", 0, fmt.Errorf("store: read otp: %w", err)
	case !code.Valid:
		return "", kyc.OTPNone, nil
	case attempts >= maxAttempts:
		return "", kyc.OTPMaxAttempts, nil
	case expires <= ms(now):
		return "", kyc.OTPExpired, nil
	}
	// The code was replaced between the two statements; its successor has
	// not been guessed at, so this attempt simply did not match it.
	return "", kyc.OTPNone, nil
}

func (db *DB) ConsumeOTP(ctx context.Context, tenantID, subject, personID, codeHash string) (ok bool, err error) {
	if db.dialect == Postgres {
		return db.consumeOTPPG(ctx, tenantID, subject, personID, codeHash)
	}
	err = db.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE otps SET code_hash = NULL
			WHERE tenant_id = $1 AND subject = $2 AND code_hash = $3`, tenantID, subject, codeHash)
		if err != nil {
			return fmt.Errorf("store: consume otp: %w", err)
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return nil
		}
		var pending sql.NullString
		err = tx.QueryRowContext(ctx, `UPDATE enrollments SET email_verified = TRUE
			WHERE tenant_id = $1 AND person_id = $2 RETURNING pending_email`, tenantID, personID).Scan(&pending)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("store: verify email: %w", err)
		}
		ok = true
		if pending.String != subject {
			return nil
		}
		// A wallet user's pending email is now proven: it becomes the
		// person's, unless another person already owns the address (then
		// it stays a link at this tenant only).
		res, err = tx.ExecContext(ctx, `UPDATE persons SET email = $3
			WHERE id = $2 AND email IS NULL
			AND EXISTS (SELECT 1 FROM enrollments WHERE tenant_id = $1 AND person_id = $2 AND pending_email = $3)
			AND NOT EXISTS (SELECT 1 FROM persons o WHERE o.email = $3)`, tenantID, personID, subject)
		if err != nil {
			return fmt.Errorf("store: promote pending email: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 1 {
			if _, err := tx.ExecContext(ctx, `UPDATE enrollments SET pending_email = NULL
				WHERE tenant_id = $1 AND person_id = $2`, tenantID, personID); err != nil {
				return fmt.Errorf("store: clear pending email: %w", err)
			}
		}
		return nil
	})
	return ok && err == nil, err
}

// consumeOTPPG is ConsumeOTP in one statement instead of a transaction of
// up to six round trips. The parts of a data-modifying WITH read the tables
// as they were when the statement began, so the enrollment is locked first
// (FOR UPDATE returns its latest committed version): a pending email that a
// concurrent prepare-wallet replaced meanwhile is then neither promoted nor
// cleared. The enrollment is updated once (a row may not be updated twice
// in one statement), clearing the pending email only when the promotion,
// whose result it reads, happened.
func (db *DB) consumeOTPPG(ctx context.Context, tenantID, subject, personID, codeHash string) (bool, error) {
	var used int
	err := db.w.QueryRowContext(ctx, `WITH used AS (
			UPDATE otps SET code_hash = NULL WHERE tenant_id = $1 AND subject = $2 AND code_hash = $3 RETURNING 1
		), enr AS (
			SELECT pending_email FROM enrollments
			WHERE tenant_id = $1 AND person_id = $4 AND EXISTS (SELECT 1 FROM used) FOR UPDATE
		), promoted AS (
			UPDATE persons SET email = $2 WHERE id = $4 AND email IS NULL
				AND EXISTS (SELECT 1 FROM enr WHERE pending_email = $2)
				AND NOT EXISTS (SELECT 1 FROM persons o WHERE o.email = $2)
			RETURNING 1
		), verified AS ( -- runs to completion unread, as every data-modifying WITH part does
			UPDATE enrollments SET email_verified = TRUE,
				pending_email = CASE WHEN EXISTS (SELECT 1 FROM promoted) THEN NULL ELSE pending_email END
			WHERE tenant_id = $1 AND person_id = $4 AND EXISTS (SELECT 1 FROM used)
		)
		SELECT count(*) FROM used`,
		tenantID, subject, codeHash, personID).Scan(&used)
	if err != nil {
		return false, fmt.Errorf("store: consume otp: %w", err)
	}
	return used == 1, nil
}

func (db *DB) SaveChallenge(ctx context.Context, c kyc.Challenge) error {
	if _, err := db.w.ExecContext(ctx, `INSERT INTO challenges (nonce, tenant_id, wallet, chain, message, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6)`, c.Nonce, c.TenantID, c.Wallet, c.Chain, c.Message, ms(c.ExpiresAt)); err != nil {
		return fmt.Errorf("store: save challenge: %w", err)
	}
	return nil
}

func (db *DB) FindChallenge(ctx context.Context, nonce string) (kyc.Challenge, error) {
	c := kyc.Challenge{Nonce: nonce}
	var exp int64
	var used sql.NullInt64
	err := db.r.QueryRowContext(db.pointCtx(ctx), `SELECT tenant_id, wallet, chain, message, expires_at, used_at
		FROM challenges WHERE nonce = $1`, nonce).Scan(&c.TenantID, &c.Wallet, &c.Chain, &c.Message, &exp, &used)
	if errors.Is(err, sql.ErrNoRows) {
		return c, kyc.ErrNotFound
	}
	if err != nil {
		return c, fmt.Errorf("store: find challenge: %w", err)
	}
	c.ExpiresAt = fromMS(exp)
	if used.Valid {
		t := fromMS(used.Int64)
		c.UsedAt = &t
	}
	return c, nil
}

func (db *DB) ConsumeChallenge(ctx context.Context, nonce string, at time.Time) (bool, error) {
	res, err := db.w.ExecContext(ctx, `UPDATE challenges SET used_at = $2 WHERE nonce = $1 AND used_at IS NULL`, nonce, ms(at))
	if err != nil {
		return false, fmt.Errorf("store: consume challenge: %w", err)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}
