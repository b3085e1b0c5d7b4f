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

func (db *DB) ReleaseSessionClaim(ctx context.Context, personID, token string) error {
	if _, err := db.w.ExecContext(ctx, `DELETE FROM session_claims WHERE person_id = $1 AND token = $2`, personID, token); err != nil {
		return fmt.Errorf("store: release claim: %w", err)
	}
	return nil
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
				AND NOT EXISTS (SELECT 1 FROM kyc_sessions WHERE id = $1) RETURNING 1
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

// ReserveQuota is exact under concurrency on both engines: the conflict
// update only happens while used < limit. The first reservation of a month
// inserts used = 1 unconditionally, so a limit below 1 is refused here.
func (db *DB) ReserveQuota(ctx context.Context, tenantID, month string, limit int) (bool, error) {
	if limit < 1 {
		return false, nil
	}
	var used int
	err := db.w.QueryRowContext(ctx, `INSERT INTO quota_usage (tenant_id, month, used) VALUES ($1, $2, 1)
		ON CONFLICT (tenant_id, month) DO UPDATE SET used = quota_usage.used + 1
		WHERE quota_usage.used < $3 RETURNING used`, tenantID, month, limit).Scan(&used)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("store: reserve quota: %w", err)
	}
	return used <= limit, nil
}

func (db *DB) ReleaseQuota(ctx context.Context, tenantID, month string) error {
	if _, err := db.w.ExecContext(ctx, `UPDATE quota_usage SET used = used - 1
		WHERE tenant_id = $1 AND month = $2 AND used > 0`, tenantID, month); err != nil {
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
