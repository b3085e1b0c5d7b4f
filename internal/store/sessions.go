package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/kycgate/kycgate/internal/kyc"
)

const sessionCols = `id, person_id, tenant_id, url, status, ip_info, blocklisted, decision,
	event_at, created_at, updated_at, checked_at, watch, version`

func scanSession(row interface{ Scan(...any) error }) (kyc.Session, error) {
	var s kyc.Session
	var ipInfo string
	var decision sql.NullString
	var eventAt, created, updated, checked int64
	err := row.Scan(&s.ID, &s.PersonID, &s.TenantID, &s.URL, &s.Status, &ipInfo, &s.Blocklisted, &decision,
		&eventAt, &created, &updated, &checked, &s.Watch, &s.Version)
	if err != nil {
		return s, err
	}
	if err := json.Unmarshal([]byte(ipInfo), &s.IPInfo); err != nil {
		return s, fmt.Errorf("store: session %s ip_info: %w", s.ID, err)
	}
	if decision.Valid {
		s.Decision = []byte(decision.String)
	}
	s.EventAt, s.CreatedAt, s.UpdatedAt, s.CheckedAt = fromMS(eventAt), fromMS(created), fromMS(updated), fromMS(checked)
	return s, nil
}

func (db *DB) oneSession(ctx context.Context, q string, args ...any) (kyc.Session, error) {
	s, err := scanSession(db.r.QueryRowContext(db.pointCtx(ctx), q, args...))
	if errors.Is(err, sql.ErrNoRows) {
		return s, kyc.ErrNotFound
	}
	if err != nil {
		return s, fmt.Errorf("store: session: %w", err)
	}
	return s, nil
}

func (db *DB) LatestSession(ctx context.Context, personID string) (kyc.Session, error) {
	return db.oneSession(ctx, `SELECT `+sessionCols+` FROM kyc_sessions WHERE person_id = $1
		ORDER BY created_at DESC, id DESC LIMIT 1`, personID)
}

func (db *DB) SessionByID(ctx context.Context, id string) (kyc.Session, error) {
	return db.oneSession(ctx, `SELECT `+sessionCols+` FROM kyc_sessions WHERE id = $1`, id)
}

// ClaimSessionCreation takes over a lapsed claim with the quota unit it
// holds: the dead holder's unit becomes the new holder's, so a crash costs
// no unit (see ReserveQuota).
func (db *DB) ClaimSessionCreation(ctx context.Context, personID, token string, until, now time.Time) (bool, error) {
	var got string
	err := db.w.QueryRowContext(ctx, `INSERT INTO session_claims (person_id, token, claimed_until) VALUES ($1, $2, $3)
		ON CONFLICT (person_id) DO UPDATE SET token = excluded.token, claimed_until = excluded.claimed_until
		WHERE session_claims.claimed_until <= $4 OR session_claims.token = excluded.token
		RETURNING token`, personID, token, ms(until), ms(now)).Scan(&got)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if isForeignKey(err) {
		return false, kyc.ErrNotFound // the person was merged into another
	}
	if err != nil {
		return false, fmt.Errorf("store: claim session creation: %w", err)
	}
	return true, nil
}

// releaseUnit gives back the quota unit a claim holds; $1, $2 name the
// claim. It runs before the claim's row changes, in the same statement or
// transaction.
const releaseUnit = `UPDATE quota_usage SET used = used - 1
	WHERE used > 0 AND EXISTS (SELECT 1 FROM session_claims c WHERE c.person_id = $1 AND c.token = $2
		AND c.quota_tenant = quota_usage.tenant_id AND c.quota_month = quota_usage.month)`

// ReleaseSessionClaim ends a claim and gives back the quota unit it still
// holds, together.
func (db *DB) ReleaseSessionClaim(ctx context.Context, personID, token string) error {
	var err error
	if db.dialect == Postgres {
		_, err = db.w.ExecContext(ctx, `WITH d AS (
				DELETE FROM session_claims WHERE person_id = $1 AND token = $2 RETURNING quota_tenant, quota_month
			)
			UPDATE quota_usage SET used = used - 1 FROM d
			WHERE quota_usage.tenant_id = d.quota_tenant AND quota_usage.month = d.quota_month AND used > 0`, personID, token)
	} else {
		err = db.tx(ctx, func(tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, releaseUnit, personID, token); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, `DELETE FROM session_claims WHERE person_id = $1 AND token = $2`, personID, token)
			return err
		})
	}
	if err != nil {
		return fmt.Errorf("store: release claim: %w", err)
	}
	return nil
}

// SweepLapsedClaims deletes the claims that lapsed before `before` and
// gives back the quota units they held: what a holder that died (SIGKILL,
// power loss) leaves behind. A live holder renews its claim long before
// it lapses, and one that loses it anyway finds it gone when it stores its
// session (ErrConflict), so no unit is ever given back twice.
func (db *DB) SweepLapsedClaims(ctx context.Context, before time.Time) (int64, error) {
	var n int64
	err := db.tx(ctx, func(tx *sql.Tx) error {
		var err error
		n, err = db.sweepClaims(ctx, tx, ms(before))
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("store: sweep lapsed claims: %w", err)
	}
	return n, nil
}

// sweepClaims is SweepLapsedClaims inside a transaction: one statement on
// PostgreSQL; two on SQLite, whose single writer lets nothing in between.
func (db *DB) sweepClaims(ctx context.Context, tx *sql.Tx, before int64) (int64, error) {
	if db.dialect == Postgres {
		var n int64
		err := tx.QueryRowContext(ctx, `WITH d AS (
				DELETE FROM session_claims WHERE claimed_until < $1 RETURNING quota_tenant, quota_month
			), g AS (
				SELECT quota_tenant, quota_month, count(*) AS n FROM d WHERE quota_tenant IS NOT NULL GROUP BY 1, 2
			), u AS (
				UPDATE quota_usage SET used = GREATEST(used - g.n, 0) FROM g
				WHERE quota_usage.tenant_id = g.quota_tenant AND quota_usage.month = g.quota_month
			)
			SELECT count(*) FROM d`, before).Scan(&n)
		return n, err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE quota_usage SET used = max(used - (SELECT count(*) FROM session_claims c
			WHERE c.claimed_until < $1 AND c.quota_tenant = quota_usage.tenant_id AND c.quota_month = quota_usage.month), 0)
		WHERE EXISTS (SELECT 1 FROM session_claims c
			WHERE c.claimed_until < $1 AND c.quota_tenant = quota_usage.tenant_id AND c.quota_month = quota_usage.month)`, before); err != nil {
		return 0, err
	}
	res, err := tx.ExecContext(ctx, `DELETE FROM session_claims WHERE claimed_until < $1`, before)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

func ipJSON(v []kyc.IPInfo) (string, error) {
	if v == nil {
		v = []kyc.IPInfo{}
	}
	b, err := json.Marshal(v)
	return string(b), err
}

func nullBytes(b []byte) sql.NullString { return sql.NullString{String: string(b), Valid: b != nil} }

func (db *DB) InsertSession(ctx context.Context, s kyc.Session, claimToken string) error {
	ip, err := ipJSON(s.IPInfo)
	if err != nil {
		return err
	}
	if db.dialect == Postgres {
		return db.insertSessionPG(ctx, s, ip, claimToken)
	}
	return db.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO kyc_sessions (`+sessionCols+`)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) ON CONFLICT (id) DO NOTHING`,
			s.ID, s.PersonID, s.TenantID, s.URL, s.Status, ip, s.Blocklisted, nullBytes(s.Decision),
			ms(s.EventAt), ms(s.CreatedAt), ms(s.UpdatedAt), ms(s.CheckedAt), s.Watch, s.Version)
		if err != nil {
			return fmt.Errorf("store: insert session: %w", err)
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return kyc.ErrExists
		}
		// A unit the claim inherited from another tenant's dead holder is
		// that tenant's to get back; our own becomes permanent.
		if _, err := tx.ExecContext(ctx, releaseUnit+` AND quota_usage.tenant_id <> $3`,
			s.PersonID, claimToken, s.TenantID); err != nil {
			return fmt.Errorf("store: release claim: %w", err)
		}
		res, err = tx.ExecContext(ctx, `DELETE FROM session_claims WHERE person_id = $1 AND token = $2 AND claimed_until >= $3`,
			s.PersonID, claimToken, ms(s.CreatedAt))
		if err != nil {
			return fmt.Errorf("store: release claim: %w", err)
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return kyc.ErrConflict // the lease lapsed: someone else may be creating
		}
		return nil
	})
}

// insertSessionPG is InsertSession in one statement: on PostgreSQL every
// statement of a transaction, BEGIN and COMMIT included, is a round trip to
// the server, and this one made up most of create-session's database time.
// A data-modifying WITH runs as one atomic statement; its parts see the
// tables as they were before the statement, so "existed" is the id before
// our insert, and the claim is kept when the id is already stored. (Only
// if another statement stores the same id concurrently does our refused
// insert release the claim — which the caller does next anyway.)
func (db *DB) insertSessionPG(ctx context.Context, s kyc.Session, ip, claimToken string) error {
	var claimed, inserted, existed int
	err := db.w.QueryRowContext(ctx, `WITH claim AS (
			DELETE FROM session_claims WHERE person_id = $2 AND token = $15 AND claimed_until >= $10
				AND NOT EXISTS (SELECT 1 FROM kyc_sessions WHERE id = $1) RETURNING quota_tenant, quota_month
		), other AS ( -- a unit inherited from another tenant's dead holder goes back to it
			UPDATE quota_usage SET used = used - 1 FROM claim
			WHERE quota_usage.tenant_id = claim.quota_tenant AND quota_usage.month = claim.quota_month
				AND claim.quota_tenant <> $3 AND used > 0
		), ins AS (
			INSERT INTO kyc_sessions (`+sessionCols+`)
			SELECT $1::text, $2::text, $3::text, $4::text, $5::text, $6::text, $7::boolean, $8::text,
				$9::bigint, $10::bigint, $11::bigint, $12::bigint, $13::boolean, $14::bigint
			WHERE EXISTS (SELECT 1 FROM claim)
			ON CONFLICT (id) DO NOTHING RETURNING 1
		)
		SELECT (SELECT count(*) FROM claim), (SELECT count(*) FROM ins), (SELECT count(*) FROM kyc_sessions WHERE id = $1)`,
		s.ID, s.PersonID, s.TenantID, s.URL, s.Status, ip, s.Blocklisted, nullBytes(s.Decision),
		ms(s.EventAt), ms(s.CreatedAt), ms(s.UpdatedAt), ms(s.CheckedAt), s.Watch, s.Version, claimToken).
		Scan(&claimed, &inserted, &existed)
	switch {
	case err != nil:
		return fmt.Errorf("store: insert session: %w", err)
	case existed > 0 || claimed == 1 && inserted == 0:
		return kyc.ErrExists
	case claimed == 0:
		return kyc.ErrConflict // the lease lapsed: someone else may be creating
	}
	return nil
}

func (db *DB) RenewSessionClaim(ctx context.Context, personID, token string, until time.Time) (bool, error) {
	res, err := db.w.ExecContext(ctx, `UPDATE session_claims SET claimed_until = $3 WHERE person_id = $1 AND token = $2`,
		personID, token, ms(until))
	if err != nil {
		return false, fmt.Errorf("store: renew claim: %w", err)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

func (db *DB) ApplyEvent(ctx context.Context, eventKey string, s kyc.Session, now time.Time) (dup bool, err error) {
	ip, err := ipJSON(s.IPInfo)
	if err != nil {
		return false, err
	}
	err = db.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO webhook_events (event_key, session_id, received_at) VALUES ($1, $2, $3)
			ON CONFLICT (event_key) DO NOTHING`, eventKey, s.ID, ms(now))
		if err != nil {
			return fmt.Errorf("store: record event: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			dup = true
			return nil
		}
		res, err = tx.ExecContext(ctx, `UPDATE kyc_sessions SET status = $3, ip_info = $4, blocklisted = $5,
			decision = $6, event_at = $7, updated_at = $8, watch = $9, version = version + 1
			WHERE id = $1 AND version = $2`,
			s.ID, s.Version, s.Status, ip, s.Blocklisted, nullBytes(s.Decision), ms(s.EventAt), ms(s.UpdatedAt), s.Watch)
		if err != nil {
			return fmt.Errorf("store: update session: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return kyc.ErrConflict
		}
		return nil
	})
	return dup, err
}

func (db *DB) WatchedSessions(ctx context.Context, before time.Time, limit int) ([]kyc.Session, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT `+sessionCols+` FROM kyc_sessions
		WHERE watch = TRUE AND checked_at < $1 ORDER BY checked_at LIMIT $2`, ms(before), limit)
	if err != nil {
		return nil, fmt.Errorf("store: watched sessions: %w", err)
	}
	defer rows.Close()
	var out []kyc.Session
	for rows.Next() {
		s, err := scanSession(rows)
		if err != nil {
			return nil, fmt.Errorf("store: watched sessions: %w", err)
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

func (db *DB) MarkSessionChecked(ctx context.Context, id string, at time.Time) error {
	if _, err := db.w.ExecContext(ctx, `UPDATE kyc_sessions SET checked_at = $2 WHERE id = $1`, id, ms(at)); err != nil {
		return fmt.Errorf("store: mark checked: %w", err)
	}
	return nil
}

// ReserveQuota takes one unit of the month's quota for the caller's claim
// and records it on the claim, together: exact under concurrency on both
// engines (the conflict update only happens while used < limit), and a
// unit never outlives its claim without a stored session. A claim that
// already holds this month's unit of this tenant (inherited from a holder
// that died) keeps it; one holding another month's or tenant's unit trades
// it for this one. The first reservation of a month inserts used = 1
// unconditionally, so a limit below 1 is refused here. ErrConflict when
// the caller no longer holds the claim.
func (db *DB) ReserveQuota(ctx context.Context, q kyc.QuotaHold, limit int) (bool, error) {
	if limit < 1 {
		return false, nil
	}
	var ok bool
	var err error
	if db.dialect == Postgres {
		ok, err = db.reserveQuotaPG(ctx, q, limit)
	} else {
		err = db.tx(ctx, func(tx *sql.Tx) error {
			ok, err = reserveQuotaSQLite(ctx, tx, q, limit)
			return err
		})
	}
	if err != nil {
		if errors.Is(err, kyc.ErrConflict) {
			return false, err
		}
		return false, fmt.Errorf("store: reserve quota: %w", err)
	}
	return ok, nil
}

// reserveQuotaPG is ReserveQuota in one statement (one round trip on the
// create-session path): c locks the claim, u takes the unit unless the
// claim holds it already, old gives back a unit of another month or
// tenant the claim held, and m records the new one on the claim.
func (db *DB) reserveQuotaPG(ctx context.Context, q kyc.QuotaHold, limit int) (bool, error) {
	var claimed, needed, taken int
	err := db.w.QueryRowContext(ctx, `WITH c AS (
			SELECT quota_tenant, quota_month FROM session_claims WHERE person_id = $1 AND token = $2 FOR UPDATE
		), need AS (
			SELECT 1 FROM c WHERE c.quota_tenant IS DISTINCT FROM $3::text OR c.quota_month IS DISTINCT FROM $4::text
		), u AS (
			INSERT INTO quota_usage (tenant_id, month, used) SELECT $3::text, $4::text, 1 FROM need
			ON CONFLICT (tenant_id, month) DO UPDATE SET used = quota_usage.used + 1
			WHERE quota_usage.used < $5 RETURNING used
		), old AS (
			UPDATE quota_usage SET used = quota_usage.used - 1 FROM c
			WHERE EXISTS (SELECT 1 FROM u) AND quota_usage.tenant_id = c.quota_tenant
				AND quota_usage.month = c.quota_month AND quota_usage.used > 0
		), m AS (
			UPDATE session_claims SET quota_tenant = $3::text, quota_month = $4::text
			WHERE person_id = $1 AND token = $2 AND EXISTS (SELECT 1 FROM u)
		)
		SELECT (SELECT count(*) FROM c), (SELECT count(*) FROM need), (SELECT count(*) FROM u)`,
		q.PersonID, q.Token, q.TenantID, q.Month, limit).Scan(&claimed, &needed, &taken)
	switch {
	case err != nil:
		return false, err
	case claimed == 0:
		return false, kyc.ErrConflict
	}
	return needed == 0 || taken == 1, nil
}

func reserveQuotaSQLite(ctx context.Context, tx *sql.Tx, q kyc.QuotaHold, limit int) (bool, error) {
	var held, heldMonth sql.NullString
	err := tx.QueryRowContext(ctx, `SELECT quota_tenant, quota_month FROM session_claims
		WHERE person_id = $1 AND token = $2`, q.PersonID, q.Token).Scan(&held, &heldMonth)
	if errors.Is(err, sql.ErrNoRows) {
		return false, kyc.ErrConflict
	}
	if err != nil {
		return false, err
	}
	if held.Valid && held.String == q.TenantID && heldMonth.String == q.Month {
		return true, nil
	}
	var used int
	err = tx.QueryRowContext(ctx, `INSERT INTO quota_usage (tenant_id, month, used) VALUES ($1, $2, 1)
		ON CONFLICT (tenant_id, month) DO UPDATE SET used = quota_usage.used + 1
		WHERE quota_usage.used < $3 RETURNING used`, q.TenantID, q.Month, limit).Scan(&used)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil // the claim keeps what it held; its release gives that back
	}
	if err != nil {
		return false, err
	}
	if held.Valid {
		if _, err := tx.ExecContext(ctx, releaseUnit, q.PersonID, q.Token); err != nil {
			return false, err
		}
	}
	if _, err := tx.ExecContext(ctx, `UPDATE session_claims SET quota_tenant = $3, quota_month = $4
		WHERE person_id = $1 AND token = $2`, q.PersonID, q.Token, q.TenantID, q.Month); err != nil {
		return false, err
	}
	return true, nil
}

// ReleaseQuota gives back the unit the caller's claim holds, if any, and
// keeps the claim.
func (db *DB) ReleaseQuota(ctx context.Context, q kyc.QuotaHold) error {
	var err error
	if db.dialect == Postgres {
		// The inner SELECT locks the claim before the update reads it, so
		// the unit given back is the one the claim held at that moment (a
		// sweep that deleted it first leaves nothing to give back).
		_, err = db.w.ExecContext(ctx, `WITH c AS (
				UPDATE session_claims s SET quota_tenant = NULL, quota_month = NULL
				FROM (SELECT person_id, quota_tenant, quota_month FROM session_claims
					WHERE person_id = $1 AND token = $2 AND quota_tenant IS NOT NULL FOR UPDATE) old
				WHERE s.person_id = old.person_id
				RETURNING old.quota_tenant, old.quota_month
			)
			UPDATE quota_usage SET used = quota_usage.used - 1 FROM c
			WHERE quota_usage.tenant_id = c.quota_tenant AND quota_usage.month = c.quota_month AND quota_usage.used > 0`,
			q.PersonID, q.Token)
	} else {
		err = db.tx(ctx, func(tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, releaseUnit, q.PersonID, q.Token); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, `UPDATE session_claims SET quota_tenant = NULL, quota_month = NULL
				WHERE person_id = $1 AND token = $2`, q.PersonID, q.Token)
			return err
		})
	}
	if err != nil {
		return fmt.Errorf("store: release quota: %w", err)
	}
	return nil
}

func (db *DB) QuotaUsed(ctx context.Context, tenantID, month string) (int, error) {
	var used int
	err := db.r.QueryRowContext(db.pointCtx(ctx), `SELECT used FROM quota_usage WHERE tenant_id = $1 AND month = $2`, tenantID, month).Scan(&used)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("store: quota used: %w", err)
	}
	return used, nil
}

// HitRate counts one hit in key's minute window and one in its second
// window and returns each window's count so far. Both counters move in one
// statement, one round trip, and each is one upsert, so the counts are
// exact across replicas. Windows only move forward: a replica whose clock
// lags counts its hit in the current window instead of resetting it.
// Every caller names the two rows in the same order, so concurrent hits on
// one key take their row locks in the same order and cannot deadlock.
func (db *DB) HitRate(ctx context.Context, key string, minute, second time.Time) (perMin, perSec int, err error) {
	minBucket, secBucket := key+":m", key+":s"
	rows, err := db.w.QueryContext(ctx, `INSERT INTO rate_counters (bucket, window_start, hits) VALUES ($1, $2, 1), ($3, $4, 1)
		ON CONFLICT (bucket) DO UPDATE SET
			hits = CASE WHEN excluded.window_start > rate_counters.window_start THEN 1 ELSE rate_counters.hits + 1 END,
			window_start = CASE WHEN excluded.window_start > rate_counters.window_start
				THEN excluded.window_start ELSE rate_counters.window_start END
		RETURNING bucket, hits`, minBucket, ms(minute), secBucket, ms(second))
	if err != nil {
		return 0, 0, fmt.Errorf("store: rate counter: %w", err)
	}
	defer rows.Close()
	// RETURNING's row order is not promised; name each row.
	got := 0
	for rows.Next() {
		var bucket string
		var hits int
		if err := rows.Scan(&bucket, &hits); err != nil {
			return 0, 0, fmt.Errorf("store: rate counter: %w", err)
		}
		switch bucket {
		case minBucket:
			perMin, got = hits, got+1
		case secBucket:
			perSec, got = hits, got+1
		}
	}
	if err := rows.Err(); err != nil {
		return 0, 0, fmt.Errorf("store: rate counter: %w", err)
	}
	if got != 2 {
		return 0, 0, fmt.Errorf("store: rate counter: %d of 2 windows returned", got)
	}
	return perMin, perSec, nil
}
