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

func ipJSON(v []kyc.IPInfo) (string, error) {
	if v == nil {
		v = []kyc.IPInfo{}
	}
	b, err := json.Marshal(v)
	return string(b), err
}

func nullBytes(b []byte) sql.NullString { return sql.NullString{String: string(b), Valid: b != nil} }

func (db *DB) InsertSession(ctx context.Context, s kyc.Session, claimToken string, fan kyc.Fanout) error {
	ip, err := ipJSON(s.IPInfo)
	if err != nil {
		return err
	}
	if db.dialect == Postgres {
		if fan != nil {
			if ok, err := anyEndpoints(ctx, db.r); err != nil {
				return err
			} else if !ok {
				fan = nil
			}
		}
		if fan == nil {
			return insertSessionPG(ctx, db.w, s, ip, claimToken)
		}
		return db.tx(ctx, func(tx *sql.Tx) error {
			if err := insertSessionPG(ctx, tx, s, ip, claimToken); err != nil {
				return err
			}
			return emitFor(ctx, tx, fan, s.PersonID, "")
		})
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
		return emitFor(ctx, tx, fan, s.PersonID, "")
	})
}

// queryer is a pool or a transaction.
type queryer interface {
	QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row
}

// insertSessionPG is InsertSession in one statement: on PostgreSQL every
// statement of a transaction, BEGIN and COMMIT included, is a round trip to
// the server, and this one made up most of create-session's database time.
// A data-modifying WITH runs as one atomic statement; its parts see the
// tables as they were before the statement, so "existed" is the id before
// our insert, and the claim is kept when the id is already stored. (Only
// if another statement stores the same id concurrently does our refused
// insert release the claim — which the caller does next anyway.)
func insertSessionPG(ctx context.Context, q queryer, s kyc.Session, ip, claimToken string) error {
	var claimed, inserted, existed int
	err := q.QueryRowContext(ctx, `WITH claim AS (
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

func (db *DB) ApplyEvent(ctx context.Context, eventKey string, s kyc.Session, now time.Time, fan kyc.Fanout) (dup bool, err error) {
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
		return emitFor(ctx, tx, fan, s.PersonID, s.ID)
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
