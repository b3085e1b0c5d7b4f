package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/kycgate/kycgate/internal/kyc"
)

// claimDue leases due deliveries: next_at moves to the lease's end, so a
// claim that is never finished (its worker died) is due again then. On
// PostgreSQL the due rows are locked FOR UPDATE SKIP LOCKED, so concurrent
// claimers on any number of replicas take disjoint rows without waiting
// for each other; SQLite runs one writer at a time, and the single
// UPDATE … RETURNING is atomic by itself.
const claimDueSQLite = `UPDATE webhook_deliveries SET next_at = $2, lease_token = $3, attempts = attempts + 1
	WHERE (event_id, endpoint_id) IN (
		SELECT d.event_id, d.endpoint_id FROM webhook_deliveries d JOIN webhook_endpoints w ON w.id = d.endpoint_id
		WHERE d.state = 'pending' AND d.next_at <= $1 AND w.disabled_at IS NULL
		ORDER BY d.next_at LIMIT $4)
	RETURNING event_id`

const claimDuePG = `WITH due AS (
		SELECT d.event_id, d.endpoint_id FROM webhook_deliveries d JOIN webhook_endpoints w ON w.id = d.endpoint_id
		WHERE d.state = 'pending' AND d.next_at <= $1 AND w.disabled_at IS NULL
		ORDER BY d.next_at LIMIT $4
		FOR UPDATE OF d SKIP LOCKED)
	UPDATE webhook_deliveries d SET next_at = $2, lease_token = $3, attempts = d.attempts + 1
	FROM due WHERE d.event_id = due.event_id AND d.endpoint_id = due.endpoint_id
	RETURNING d.event_id`

func (db *DB) ClaimDeliveries(ctx context.Context, now, leaseUntil time.Time, token string, limit int) ([]kyc.Delivery, error) {
	q := claimDueSQLite
	if db.dialect == Postgres {
		q = claimDuePG
	}
	var out []kyc.Delivery
	err := db.tx(ctx, func(tx *sql.Tx) error {
		out = out[:0]
		res, err := tx.ExecContext(ctx, q, ms(now), ms(leaseUntil), token, limit)
		if err != nil {
			return fmt.Errorf("store: claim deliveries: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return nil
		}
		rows, err := tx.QueryContext(ctx, `SELECT d.event_id, d.endpoint_id, d.attempts, e.tenant_id, e.type, e.body,
				w.url, w.secret, w.prev_secret, w.prev_secret_until, w.failing_since
			FROM webhook_deliveries d JOIN outbox_events e ON e.id = d.event_id JOIN webhook_endpoints w ON w.id = d.endpoint_id
			WHERE d.lease_token = $1 ORDER BY d.next_at, d.event_id`, token)
		if err != nil {
			return fmt.Errorf("store: read claimed deliveries: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			d := kyc.Delivery{Token: token}
			var body string
			var prev sql.NullString
			var prevUntil, failing sql.NullInt64
			if err := rows.Scan(&d.EventID, &d.EndpointID, &d.Attempt, &d.TenantID, &d.Type, &body,
				&d.URL, &d.Secret, &prev, &prevUntil, &failing); err != nil {
				return fmt.Errorf("store: read claimed deliveries: %w", err)
			}
			d.Body, d.PrevSecret, d.FailingSince = []byte(body), prev.String, optTime(failing)
			if prevUntil.Valid {
				d.PrevUntil = fromMS(prevUntil.Int64)
			}
			out = append(out, d)
		}
		return rows.Err()
	})
	return out, err
}

func (db *DB) FinishDelivery(ctx context.Context, o kyc.DeliveryOutcome) error {
	var delivered, next sql.NullInt64
	if o.State == kyc.DeliveryDelivered {
		delivered = sql.NullInt64{Int64: ms(o.At), Valid: true}
	}
	if o.State == kyc.DeliveryPending {
		next = sql.NullInt64{Int64: ms(o.NextAt), Valid: true}
	}
	return db.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE webhook_deliveries SET state = $4, next_at = COALESCE($5, next_at),
				lease_token = NULL, last_at = $6, last_status = $7, last_error = $8, delivered_at = $9
			WHERE event_id = $1 AND endpoint_id = $2 AND lease_token = $3`,
			o.EventID, o.EndpointID, o.Token, o.State, next, ms(o.At), o.Status, nullStr(o.Error), delivered)
		if err != nil {
			return fmt.Errorf("store: record delivery: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return kyc.ErrConflict // the lease lapsed and another worker took it
		}
		q, args := `UPDATE webhook_endpoints SET failing_since = COALESCE(failing_since, $2) WHERE id = $1`, []any{o.EndpointID, ms(o.At)}
		switch {
		case o.State == kyc.DeliveryDelivered:
			q, args = `UPDATE webhook_endpoints SET failing_since = NULL WHERE id = $1`, args[:1]
		case o.Disable != "":
			q = `UPDATE webhook_endpoints SET failing_since = COALESCE(failing_since, $2), disabled_at = $2,
				disabled_reason = $3 WHERE id = $1`
			args = append(args, o.Disable)
		}
		if _, err := tx.ExecContext(ctx, q, args...); err != nil {
			return fmt.Errorf("store: record endpoint health: %w", err)
		}
		return nil
	})
}

func (db *DB) ListDeliveries(ctx context.Context, tenantID, endpointID string, limit int) ([]kyc.DeliveryRecord, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT d.event_id, e.type, d.state, d.attempts, d.created_at, d.next_at,
			d.last_at, d.last_status, d.last_error, d.delivered_at
		FROM webhook_deliveries d JOIN outbox_events e ON e.id = d.event_id JOIN webhook_endpoints w ON w.id = d.endpoint_id
		WHERE w.tenant_id = $1 AND d.endpoint_id = $2 ORDER BY d.created_at DESC, d.event_id DESC LIMIT $3`,
		tenantID, endpointID, limit)
	if err != nil {
		return nil, fmt.Errorf("store: list deliveries: %w", err)
	}
	defer rows.Close()
	out := []kyc.DeliveryRecord{}
	for rows.Next() {
		var r kyc.DeliveryRecord
		var created, next int64
		var last, delivered, status sql.NullInt64
		var lastErr sql.NullString
		if err := rows.Scan(&r.EventID, &r.Type, &r.State, &r.Attempts, &created, &next, &last, &status, &lastErr, &delivered); err != nil {
			return nil, fmt.Errorf("store: list deliveries: %w", err)
		}
		r.CreatedAt, r.NextAt, r.LastAt, r.DeliveredAt = fromMS(created), fromMS(next), optTime(last), optTime(delivered)
		r.LastStatus, r.LastError = int(status.Int64), lastErr.String
		out = append(out, r)
	}
	return out, rows.Err()
}

func (db *DB) Redeliver(ctx context.Context, tenantID, eventID, endpointID string, now time.Time) (int, error) {
	var n int64
	err := db.tx(ctx, func(tx *sql.Tx) error {
		var typ string
		err := tx.QueryRowContext(ctx, `SELECT type FROM outbox_events WHERE id = $1 AND tenant_id = $2`, eventID, tenantID).Scan(&typ)
		if errors.Is(err, sql.ErrNoRows) {
			return kyc.ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("store: redeliver: %w", err)
		}
		// The endpoints: the one named, or every enabled one subscribed;
		// one added after the event gets it too.
		targets := `SELECT id FROM webhook_endpoints WHERE tenant_id = $2 AND (id = $4 OR CAST($4 AS TEXT) = '' AND ` +
			`disabled_at IS NULL AND (events = '' OR events LIKE '%,' || CAST($3 AS TEXT) || ',%'))`
		if _, err := tx.ExecContext(ctx, `INSERT INTO webhook_deliveries (event_id, endpoint_id, state, attempts, next_at, created_at)
			SELECT CAST($1 AS TEXT), id, 'pending', 0, CAST($5 AS BIGINT), CAST($5 AS BIGINT) FROM (`+targets+`) t WHERE TRUE
			ON CONFLICT (event_id, endpoint_id) DO NOTHING`, eventID, tenantID, typ, endpointID, ms(now)); err != nil {
			return fmt.Errorf("store: redeliver: %w", err)
		}
		res, err := tx.ExecContext(ctx, `UPDATE webhook_deliveries SET state = 'pending', attempts = 0, next_at = CAST($5 AS BIGINT),
				lease_token = NULL WHERE event_id = $1 AND endpoint_id IN (`+targets+`)`, eventID, tenantID, typ, endpointID, ms(now))
		if err != nil {
			return fmt.Errorf("store: redeliver: %w", err)
		}
		n, _ = res.RowsAffected()
		return nil
	})
	return int(n), err
}
