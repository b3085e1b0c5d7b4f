package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/kycgate/kycgate/internal/kyc"
)

// Codes live in two tables: otp_sends keeps, per (tenant, address), the
// last five send times (sent1 newest), gap_from, the send the minimum gap
// counts from, and delivering_until, the lease of sent1 while its mail is
// being delivered; otp_codes keeps one live code per (tenant, address,
// wallet): wallet '' is the address's own code, any other the code that
// proves that wallet's link. The limits thus cover every code mailed to an
// address, whichever link it is for, while each code proves only what it
// was sent for. A send counts only once delivered (or possibly delivered):
// DropOTP takes a failed one out of the limits, and a send whose process
// died mid-delivery stops counting when its lease lapses.

// saveSend is the conditional upsert that takes a place in the address's
// send limits: it writes only where gap_from is at least MinGap old and
// the fifth newest send is outside the window, so concurrent senders
// cannot both pass, on one process or many. A newest send whose delivery
// lease lapsed ($6 is now) was never confirmed: the new send replaces it
// in place of pushing it into the window, and it blocks nothing.
const saveSend = `INSERT INTO otp_sends (tenant_id, address, sent1, gap_from, delivering_until) VALUES ($1, $2, $3, $3, $6)
	ON CONFLICT (tenant_id, address) DO UPDATE SET gap_from = excluded.gap_from, delivering_until = excluded.delivering_until,
		sent1 = excluded.sent1,
		sent2 = CASE WHEN otp_sends.delivering_until <= $3 THEN otp_sends.sent2 ELSE otp_sends.sent1 END,
		sent3 = CASE WHEN otp_sends.delivering_until <= $3 THEN otp_sends.sent3 ELSE otp_sends.sent2 END,
		sent4 = CASE WHEN otp_sends.delivering_until <= $3 THEN otp_sends.sent4 ELSE otp_sends.sent3 END,
		sent5 = CASE WHEN otp_sends.delivering_until <= $3 THEN otp_sends.sent5 ELSE otp_sends.sent4 END
	WHERE otp_sends.delivering_until <= $3
		OR ((otp_sends.gap_from IS NULL OR otp_sends.gap_from <= $4) AND (otp_sends.sent5 IS NULL OR otp_sends.sent5 <= $5))
	RETURNING sent1`

// SaveOTP takes a place in the address's send limits and stores the code
// for its link, both or neither: one statement on PostgreSQL, one
// transaction on SQLite.
func (db *DB) SaveOTP(ctx context.Context, o kyc.OTPSend) (bool, time.Time, error) {
	if o.MaxPerWindow != 5 {
		return false, time.Time{}, errors.New("store: the send window keeps exactly five send times")
	}
	if !o.LeaseUntil.After(o.Now) {
		return false, time.Time{}, errors.New("store: a send needs a delivery lease that ends after it")
	}
	now := ms(o.Now)
	args := []any{o.TenantID, o.Address, now, now - o.MinGap.Milliseconds(), now - o.Window.Milliseconds(), ms(o.LeaseUntil)}
	var got int64
	var err error
	if db.dialect == Postgres {
		err = db.w.QueryRowContext(ctx, `WITH s AS (`+saveSend+`), c AS (
				INSERT INTO otp_codes (tenant_id, address, wallet, code_hash, expires_at, attempts)
				SELECT $1::text, $2::text, $7::text, $8::text, $9::bigint, 0 FROM s
				ON CONFLICT (tenant_id, address, wallet) DO UPDATE SET
					code_hash = excluded.code_hash, expires_at = excluded.expires_at, attempts = 0
			)
			SELECT sent1 FROM s`, append(args, o.Wallet, o.CodeHash, ms(o.ExpiresAt))...).Scan(&got)
	} else {
		err = db.tx(ctx, func(tx *sql.Tx) error {
			if err := tx.QueryRowContext(ctx, saveSend, args...).Scan(&got); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, `INSERT INTO otp_codes (tenant_id, address, wallet, code_hash, expires_at, attempts)
				VALUES ($1, $2, $3, $4, $5, 0)
				ON CONFLICT (tenant_id, address, wallet) DO UPDATE SET
					code_hash = excluded.code_hash, expires_at = excluded.expires_at, attempts = 0`,
				o.TenantID, o.Address, o.Wallet, o.CodeHash, ms(o.ExpiresAt))
			return err
		})
	}
	if err == nil {
		return true, time.Time{}, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return false, time.Time{}, fmt.Errorf("store: save otp: %w", err)
	}
	var gap, s5, lease sql.NullInt64
	if err := db.w.QueryRowContext(ctx, `SELECT gap_from, sent5, delivering_until FROM otp_sends WHERE tenant_id = $1 AND address = $2`,
		o.TenantID, o.Address).Scan(&gap, &s5, &lease); err != nil {
		return false, time.Time{}, fmt.Errorf("store: read otp sends: %w", err)
	}
	retry := now
	if gap.Valid {
		retry = max(retry, gap.Int64+o.MinGap.Milliseconds())
	}
	if s5.Valid && s5.Int64 > now-o.Window.Milliseconds() {
		retry = max(retry, s5.Int64+o.Window.Milliseconds())
	}
	if lease.Valid && lease.Int64 > now {
		// A delivery under way: at the latest its lease frees the place.
		retry = min(retry, lease.Int64)
	}
	return false, fromMS(retry), nil
}

// ConfirmOTP ends the delivery lease of the send made at sentAt, once its
// mail was accepted (or may have been): from then on it counts in the
// limits for good. Nothing happens if a later send already replaced it.
func (db *DB) ConfirmOTP(ctx context.Context, c kyc.CodeRef, sentAt time.Time) error {
	month := sentAt.UTC().Format("2006-01")
	var err error
	if db.dialect == Postgres {
		_, err = db.w.ExecContext(ctx, `WITH c AS (`+confirmSend+` RETURNING tenant_id)
			`+countCodeSent+` SELECT tenant_id, $4, $5, 1 FROM c `+countCodeSentConflict,
			c.TenantID, c.Address, ms(sentAt), month, rand.IntN(codeSentShards))
	} else {
		err = db.tx(ctx, func(tx *sql.Tx) error {
			res, err := tx.ExecContext(ctx, confirmSend, c.TenantID, c.Address, ms(sentAt))
			if err != nil {
				return err
			}
			if n, _ := res.RowsAffected(); n == 0 {
				return nil
			}
			_, err = tx.ExecContext(ctx, countCodeSent+` VALUES ($1, $2, $3, 1) `+countCodeSentConflict,
				c.TenantID, month, rand.IntN(codeSentShards))
			return err
		})
	}
	if err != nil {
		return fmt.Errorf("store: confirm otp: %w", err)
	}
	return nil
}

// confirmSend ends the lease of the send made at $3 if it still has one,
// so a send is confirmed, and counted in codes_sent, once.
const confirmSend = `UPDATE otp_sends SET delivering_until = NULL
	WHERE tenant_id = $1 AND address = $2 AND sent1 = $3 AND delivering_until IS NOT NULL`

// countCodeSent adds one to a tenant's codes mailed in a month (UTC), in
// one of codeSentShards rows picked at random: one row per tenant would
// make concurrent sends wait for each other's commit on its lock.
const (
	countCodeSent         = `INSERT INTO codes_sent (tenant_id, month, shard, sent)`
	countCodeSentConflict = `ON CONFLICT (tenant_id, month, shard) DO UPDATE SET sent = codes_sent.sent + 1`
	codeSentShards        = 16
)

// giveBackSend takes the send made at $3 out of the address's limits, if
// it is still the newest: the older sends move up a place, and the gap
// counts from the newest one left.
const giveBackSend = `UPDATE otp_sends SET sent1 = sent2, sent2 = sent3, sent3 = sent4, sent4 = sent5, sent5 = NULL,
		gap_from = sent2, delivering_until = NULL
	WHERE tenant_id = $1 AND address = $2 AND sent1 = $3`

// DropOTP kills an undelivered code and gives back the send's place in
// both limits: a failed delivery does not count against the address.
func (db *DB) DropOTP(ctx context.Context, c kyc.CodeRef, codeHash string, sentAt time.Time) error {
	args := []any{c.TenantID, c.Address, ms(sentAt), c.Wallet, codeHash}
	var err error
	if db.dialect == Postgres {
		_, err = db.w.ExecContext(ctx, `WITH d AS (
				UPDATE otp_codes SET code_hash = NULL
				WHERE tenant_id = $1 AND address = $2 AND wallet = $4 AND code_hash = $5
			)
			`+giveBackSend, args...)
	} else {
		err = db.tx(ctx, func(tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, `UPDATE otp_codes SET code_hash = NULL
				WHERE tenant_id = $1 AND address = $2 AND wallet = $4 AND code_hash = $5`, args...); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, giveBackSend, args[:3]...)
			return err
		})
	}
	if err != nil {
		return fmt.Errorf("store: drop otp: %w", err)
	}
	return nil
}

func (db *DB) CountOTPAttempt(ctx context.Context, c kyc.CodeRef, maxAttempts int, now time.Time) (string, kyc.OTPAttempt, error) {
	return countAttempt(ctx, db.w, c, maxAttempts, now)
}

func countAttempt(ctx context.Context, q querier, c kyc.CodeRef, maxAttempts int, now time.Time) (string, kyc.OTPAttempt, error) {
	var hash string
	err := q.QueryRowContext(ctx, `UPDATE otp_codes SET attempts = attempts + 1
		WHERE tenant_id = $1 AND address = $2 AND wallet = $3 AND code_hash IS NOT NULL AND attempts < $4 AND expires_at > $5
		RETURNING code_hash`, c.TenantID, c.Address, c.Wallet, maxAttempts, ms(now)).Scan(&hash)
	if err == nil {
		return hash, kyc.OTPCounted, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return "", 0, fmt.Errorf("store: count otp attempt: %w", err)
	}
	var code sql.NullString
	var attempts int
	var expires int64
	err = q.QueryRowContext(ctx, `SELECT code_hash, attempts, expires_at FROM otp_codes
		WHERE tenant_id = $1 AND address = $2 AND wallet = $3`, c.TenantID, c.Address, c.Wallet).Scan(&code, &attempts, &expires)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return "", kyc.OTPNone, nil
	case err != nil:
		return "", 0, fmt.Errorf("store: read otp: %w", err)
	case !code.Valid:
		return "", kyc.OTPNone, nil
	case attempts >= maxAttempts:
		return "", kyc.OTPNoAttemptsLeft, nil
	case expires <= ms(now):
		return "", kyc.OTPExpired, nil
	}
	// The code was replaced between the two statements; its successor has
	// not been guessed at, so this attempt simply did not match it.
	return "", kyc.OTPNone, nil
}

// ConsumeOTP uses an address's own code and marks the address verified on
// the tenant's enrollment registered under it (a pending link to the same
// address is then proven too). The enrollment is found by the address, not
// by a person id read earlier, so a link that merged the person meanwhile
// cannot make the proof miss it. ok=false when another request used it
// first. The enrollment it verifies (when it was not verified yet) is
// fan's audience, and fan's events are written with the use, in the same
// transaction.
func (db *DB) ConsumeOTP(ctx context.Context, c kyc.CodeRef, codeHash string, fan kyc.Fanout) (bool, error) {
	if c.Wallet != "" {
		return false, errors.New("store: ConsumeOTP is for an address's own code; a link's code is consumed in its transaction")
	}
	if db.dialect == Postgres && fan != nil {
		if ok, err := anyEndpoints(ctx, db.r); err != nil {
			return false, err
		} else if !ok {
			fan = nil
		}
	}
	if db.dialect == Postgres && fan == nil {
		var used int
		if err := db.w.QueryRowContext(ctx, `WITH used AS (
				UPDATE otp_codes SET code_hash = NULL
				WHERE tenant_id = $1 AND address = $2 AND wallet = '' AND code_hash = $3 RETURNING 1
			), verified AS ( -- runs to completion unread, as every data-modifying WITH part does
				UPDATE enrollments SET email_verified = TRUE,
					pending_email = CASE WHEN pending_email = $2 THEN NULL ELSE pending_email END
				WHERE tenant_id = $1 AND email = $2 AND EXISTS (SELECT 1 FROM used)
			)
			SELECT count(*) FROM used`, c.TenantID, c.Address, codeHash).Scan(&used); err != nil {
			return false, fmt.Errorf("store: consume otp: %w", err)
		}
		return used == 1, nil
	}
	var ok bool
	err := db.tx(ctx, func(tx *sql.Tx) (err error) {
		ok, err = consumeInTx(ctx, tx, c, codeHash, fan)
		return err
	})
	return ok && err == nil, err
}

// consumeInTx is ConsumeOTP inside a transaction.
func consumeInTx(ctx context.Context, tx *sql.Tx, c kyc.CodeRef, codeHash string, fan kyc.Fanout) (bool, error) {
	res, err := tx.ExecContext(ctx, `UPDATE otp_codes SET code_hash = NULL
		WHERE tenant_id = $1 AND address = $2 AND wallet = '' AND code_hash = $3`, c.TenantID, c.Address, codeHash)
	if err != nil {
		return false, fmt.Errorf("store: consume otp: %w", err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return false, nil
	}
	// The enrollment is read as the update leaves it (PostgreSQL: the
	// row stays locked), and it is news only when it was unverified.
	var r enrollmentRow
	err = tx.QueryRowContext(ctx, `UPDATE enrollments SET email_verified = TRUE,
		pending_email = CASE WHEN pending_email = $2 THEN NULL ELSE pending_email END
		WHERE tenant_id = $1 AND email = $2 AND email_verified = FALSE
		RETURNING id, tenant_id, person_id, email, wallet, email_verified, pending_email`, c.TenantID, c.Address).Scan(r.dest(false)...)
	if errors.Is(err, sql.ErrNoRows) {
		_, err = tx.ExecContext(ctx, `UPDATE enrollments SET pending_email = NULL
			WHERE tenant_id = $1 AND email = $2 AND pending_email = $2`, c.TenantID, c.Address)
		if err != nil {
			return false, fmt.Errorf("store: verify email: %w", err)
		}
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("store: verify email: %w", err)
	}
	if fan == nil {
		return true, nil
	}
	if ok, err := anyEndpoints(ctx, tx); err != nil || !ok {
		return true, err
	}
	return true, emit(ctx, tx, fan(kyc.Audience{Enrollments: []kyc.Enrollment{r.enrollment()}}))
}

// UseOTP is CountOTPAttempt, the compare and ConsumeOTP as one primitive
// for an address's own code. On SQLite it is one transaction: one turn of
// the single writer where the three calls took two. On PostgreSQL it is
// the two statements those calls make (a transaction would take four
// round trips).
func (db *DB) UseOTP(ctx context.Context, c kyc.CodeRef, maxAttempts int, now time.Time, match func(codeHash string) bool,
	fan kyc.Fanout) (kyc.OTPUse, error) {
	if c.Wallet != "" {
		return kyc.OTPUse{}, errors.New("store: UseOTP is for an address's own code")
	}
	if db.dialect == Postgres {
		stored, res, err := countAttempt(ctx, db.w, c, maxAttempts, now)
		if err != nil {
			return kyc.OTPUse{Attempt: kyc.OTPNone}, err
		}
		if res != kyc.OTPCounted || !match(stored) {
			return kyc.OTPUse{Attempt: res}, nil
		}
		ok, err := db.ConsumeOTP(ctx, c, stored, fan)
		return kyc.OTPUse{Attempt: res, Used: ok}, err
	}
	var u kyc.OTPUse
	err := db.tx(ctx, func(tx *sql.Tx) error {
		stored, res, err := countAttempt(ctx, tx, c, maxAttempts, now)
		u = kyc.OTPUse{Attempt: res}
		if err != nil || res != kyc.OTPCounted || !match(stored) {
			return err
		}
		u.Used, err = consumeInTx(ctx, tx, c, stored, fan)
		return err
	})
	if err != nil {
		// Rolled back: not even the attempt counted.
		return kyc.OTPUse{Attempt: kyc.OTPNone}, err
	}
	return u, nil
}
