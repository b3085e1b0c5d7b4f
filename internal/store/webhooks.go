package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/kycgate/kycgate/internal/kyc"
)

// subscribed selects the enabled endpoints of tenant $2 subscribed to
// event type $3 (events is ",a,b," or ” for every type).
const subscribed = `tenant_id = $2 AND disabled_at IS NULL
	AND (events = '' OR events LIKE '%,' || CAST($3 AS TEXT) || ',%')`

// emit writes events, and one pending delivery per subscribed endpoint,
// in tx. An event no endpoint wants is not written at all: a tenant
// without webhooks costs the change one cheap read per event.
func emit(ctx context.Context, tx *sql.Tx, events []kyc.OutboxEvent) error {
	for _, ev := range events {
		res, err := tx.ExecContext(ctx, `INSERT INTO outbox_events (id, tenant_id, type, body, created_at, person_id)
			SELECT CAST($1 AS TEXT), CAST($2 AS TEXT), CAST($3 AS TEXT), CAST($4 AS TEXT), CAST($5 AS BIGINT), CAST($6 AS TEXT)
			WHERE EXISTS (SELECT 1 FROM webhook_endpoints WHERE `+subscribed+`)`,
			ev.ID, ev.TenantID, ev.Type, string(ev.Body), ms(ev.CreatedAt), nullStr(ev.PersonID))
		if err != nil {
			return fmt.Errorf("store: write outbox event: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			continue
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO webhook_deliveries (event_id, endpoint_id, state, attempts, next_at, created_at)
			SELECT CAST($1 AS TEXT), id, 'pending', 0, CAST($4 AS BIGINT), CAST($4 AS BIGINT) FROM webhook_endpoints WHERE `+subscribed,
			ev.ID, ev.TenantID, ev.Type, ms(ev.CreatedAt)); err != nil {
			return fmt.Errorf("store: queue webhook deliveries: %w", err)
		}
	}
	return nil
}

// anyEndpoints reports whether any tenant has an enabled endpoint: while
// none has, a change need not read its audience, and the statements that
// are one round trip on PostgreSQL stay one. An endpoint added while a
// change commits may miss that change's event, as it would had it been
// added a moment later.
func anyEndpoints(ctx context.Context, q queryer) (bool, error) {
	var found bool
	if err := q.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM webhook_endpoints WHERE disabled_at IS NULL)`).Scan(&found); err != nil {
		return false, fmt.Errorf("store: look for webhook endpoints: %w", err)
	}
	return found, nil
}

// emitFor reads a person's audience in tx, asks fan what to emit, and
// writes it. sessionID, when set, is the changed session: Audience.Latest
// says whether status shows it.
func emitFor(ctx context.Context, tx *sql.Tx, fan kyc.Fanout, personID, sessionID string) error {
	if fan == nil {
		return nil
	}
	if ok, err := anyEndpoints(ctx, tx); err != nil || !ok {
		return err
	}
	rows, err := tx.QueryContext(ctx, `SELECT `+enrollmentCols+` FROM enrollments e WHERE e.person_id = $1 ORDER BY e.id`, personID)
	if err != nil {
		return fmt.Errorf("store: read audience: %w", err)
	}
	var a kyc.Audience
	for rows.Next() {
		var r enrollmentRow
		if err := rows.Scan(r.dest(false)...); err != nil {
			rows.Close()
			return fmt.Errorf("store: read audience: %w", err)
		}
		a.Enrollments = append(a.Enrollments, r.enrollment())
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("store: read audience: %w", err)
	}
	if sessionID != "" {
		var latest string
		if err := tx.QueryRowContext(ctx, `SELECT id FROM kyc_sessions WHERE person_id = $1
			ORDER BY created_at DESC, id DESC LIMIT 1`, personID).Scan(&latest); err != nil {
			return fmt.Errorf("store: read latest session: %w", err)
		}
		a.Latest = latest == sessionID
	}
	return emit(ctx, tx, fan(a))
}

// Emit is kyc.Tx.Emit.
func (t *txn) Emit(ctx context.Context, events []kyc.OutboxEvent) error {
	return emit(ctx, t.tx, events)
}

func eventsCol(events []string) string {
	if len(events) == 0 {
		return ""
	}
	return "," + strings.Join(events, ",") + ","
}

func (db *DB) CreateWebhookEndpoint(ctx context.Context, ep kyc.WebhookEndpoint) error {
	_, err := db.w.ExecContext(ctx, `INSERT INTO webhook_endpoints (id, tenant_id, url, events, secret, created_at)
		VALUES ($1, $2, $3, $4, $5, $6)`, ep.ID, ep.TenantID, ep.URL, eventsCol(ep.Events), ep.Secret, ms(ep.CreatedAt))
	if isForeignKey(err) {
		return fmt.Errorf("store: tenant %s: %w", ep.TenantID, kyc.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("store: create webhook endpoint: %w", err)
	}
	return nil
}

const endpointCols = `id, tenant_id, url, events, secret, prev_secret, prev_secret_until, failing_since,
	disabled_at, disabled_reason, created_at`

func scanEndpoint(row interface{ Scan(...any) error }) (kyc.WebhookEndpoint, error) {
	var ep kyc.WebhookEndpoint
	var events string
	var prev, reason sql.NullString
	var prevUntil, failing, disabled sql.NullInt64
	var created int64
	if err := row.Scan(&ep.ID, &ep.TenantID, &ep.URL, &events, &ep.Secret, &prev, &prevUntil, &failing,
		&disabled, &reason, &created); err != nil {
		return ep, err
	}
	if t := strings.Trim(events, ","); t != "" {
		ep.Events = strings.Split(t, ",")
	}
	ep.PrevSecret, ep.DisabledReason, ep.CreatedAt = prev.String, reason.String, fromMS(created)
	if prevUntil.Valid {
		ep.PrevUntil = fromMS(prevUntil.Int64)
	}
	ep.FailingSince, ep.DisabledAt = optTime(failing), optTime(disabled)
	return ep, nil
}

func optTime(v sql.NullInt64) *time.Time {
	if !v.Valid {
		return nil
	}
	t := fromMS(v.Int64)
	return &t
}

func (db *DB) WebhookEndpoint(ctx context.Context, tenantID, id string) (kyc.WebhookEndpoint, error) {
	ep, err := scanEndpoint(db.w.QueryRowContext(ctx, `SELECT `+endpointCols+` FROM webhook_endpoints
		WHERE tenant_id = $1 AND id = $2`, tenantID, id))
	if errors.Is(err, sql.ErrNoRows) {
		return ep, kyc.ErrNotFound
	}
	if err != nil {
		return ep, fmt.Errorf("store: webhook endpoint: %w", err)
	}
	return ep, nil
}

func (db *DB) ListWebhookEndpoints(ctx context.Context, tenantID string) ([]kyc.WebhookEndpoint, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT `+endpointCols+` FROM webhook_endpoints WHERE tenant_id = $1
		ORDER BY created_at, id`, tenantID)
	if err != nil {
		return nil, fmt.Errorf("store: list webhook endpoints: %w", err)
	}
	defer rows.Close()
	var out []kyc.WebhookEndpoint
	for rows.Next() {
		ep, err := scanEndpoint(rows)
		if err != nil {
			return nil, fmt.Errorf("store: list webhook endpoints: %w", err)
		}
		out = append(out, ep)
	}
	return out, rows.Err()
}

func (db *DB) RemoveWebhookEndpoint(ctx context.Context, tenantID, id string) error {
	return db.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM webhook_deliveries WHERE endpoint_id IN
			(SELECT id FROM webhook_endpoints WHERE tenant_id = $1 AND id = $2)`, tenantID, id); err != nil {
			return fmt.Errorf("store: remove webhook endpoint: %w", err)
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM webhook_endpoints WHERE tenant_id = $1 AND id = $2`, tenantID, id)
		if err != nil {
			return fmt.Errorf("store: remove webhook endpoint: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return kyc.ErrNotFound
		}
		return nil
	})
}

func (db *DB) RotateWebhookSecret(ctx context.Context, ep kyc.WebhookEndpoint, secret string, prevUntil time.Time) error {
	res, err := db.w.ExecContext(ctx, `UPDATE webhook_endpoints SET secret = $3, prev_secret = secret, prev_secret_until = $4
		WHERE tenant_id = $1 AND id = $2 AND secret = $5`, ep.TenantID, ep.ID, secret, ms(prevUntil), ep.Secret)
	if err != nil {
		return fmt.Errorf("store: rotate webhook secret: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return kyc.ErrConflict
	}
	return nil
}
