package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/kycgate/kycgate/internal/kyc"
)

// Erasure (docs/erasure.md): the kyc.Tx steps of an erasure, the person
// lookup, and the queue of Didit deletions.

// inScope is the tenant condition of an erasure's statements: $1 is the
// tenant, or ” for every tenant.
const inScope = `(CAST($1 AS TEXT) = '' OR tenant_id = CAST($1 AS TEXT))`

func (t *txn) EnrollmentsOf(ctx context.Context, personID string) ([]kyc.Enrollment, error) {
	q := `SELECT ` + enrollmentCols + ` FROM enrollments e WHERE e.person_id = $1 ORDER BY e.id`
	if t.pg {
		q += ` FOR UPDATE`
	}
	rows, err := t.tx.QueryContext(ctx, q, personID)
	if err != nil {
		return nil, fmt.Errorf("store: person's enrollments: %w", err)
	}
	return scanEnrollments(rows, "person's enrollments")
}

// bodyPattern is a LIKE pattern matching a JSON text that names v as a
// string ("" when v is empty: it matches nothing). Rows written before
// they recorded whom they name are found this way.
func bodyPattern(v string) sql.NullString {
	if v == "" {
		return sql.NullString{}
	}
	j, _ := json.Marshal(v) // as the body spells it: "<" is \u003c there
	esc := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(string(j))
	return sql.NullString{String: "%" + esc + "%", Valid: true}
}

// EraseTraces runs the statements in an order that leaves no reference
// dangling: rows that point at the enrollments' identifiers first, the
// enrollments last but one, then the send histories only they kept alive.
func (t *txn) EraseTraces(ctx context.Context, sc kyc.ErasureScope) (int, error) {
	fail := func(what string, err error) (int, error) { return 0, fmt.Errorf("store: erase %s: %w", what, err) }
	// Addresses the person's wallet named here: their send histories go
	// once no other enrollment at the tenant names them.
	type pending struct{ tenant, addr string }
	var pend []pending
	rows, err := t.tx.QueryContext(ctx, `SELECT DISTINCT tenant_id, pending_email FROM enrollments
		WHERE `+inScope+` AND person_id = $2 AND pending_email IS NOT NULL`, sc.TenantID, sc.PersonID)
	if err != nil {
		return fail("pending links", err)
	}
	for rows.Next() {
		var p pending
		if err := rows.Scan(&p.tenant, &p.addr); err != nil {
			rows.Close()
			return fail("pending links", err)
		}
		pend = append(pend, p)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fail("pending links", err)
	}
	email, wallet := bodyPattern(sc.Email), bodyPattern(sc.Wallet)
	events := `SELECT id FROM outbox_events WHERE ` + inScope + ` AND (person_id = $2
		OR person_id IS NULL AND (body LIKE $3 ESCAPE '\' OR body LIKE $4 ESCAPE '\'))`
	steps := []struct {
		what, q string
		args    []any
	}{
		{"webhook deliveries", `DELETE FROM webhook_deliveries WHERE event_id IN (` + events + `)`,
			[]any{sc.TenantID, sc.PersonID, email, wallet}},
		{"outbox events", `DELETE FROM outbox_events WHERE id IN (` + events + `)`,
			[]any{sc.TenantID, sc.PersonID, email, wallet}},
		{"idempotent answers", `DELETE FROM idempotency_keys WHERE ` + inScope + ` AND (subjects = '' AND
			(body LIKE $2 ESCAPE '\' OR body LIKE $3 ESCAPE '\'))`, []any{sc.TenantID, email, wallet}},
		{"codes", `DELETE FROM otp_codes WHERE ` + inScope + ` AND (address = $2 OR wallet = $3 AND wallet <> '')`,
			[]any{sc.TenantID, sc.Email, sc.Wallet}},
		{"send histories", `DELETE FROM otp_sends WHERE ` + inScope + ` AND address = $2`, []any{sc.TenantID, sc.Email}},
		{"challenges", `DELETE FROM challenges WHERE ` + inScope + ` AND wallet = $2 AND wallet <> ''`,
			[]any{sc.TenantID, sc.Wallet}},
		{"pending links", `UPDATE enrollments SET pending_email = NULL WHERE ` + inScope + ` AND pending_email = $2`,
			[]any{sc.TenantID, sc.Email}},
	}
	for _, h := range sc.Subjects {
		steps = append(steps, struct {
			what, q string
			args    []any
		}{"idempotent answers", `DELETE FROM idempotency_keys WHERE ` + inScope +
			` AND subjects LIKE '%,' || CAST($2 AS TEXT) || ',%'`, []any{sc.TenantID, h}})
	}
	for _, st := range steps {
		if _, err := t.tx.ExecContext(ctx, st.q, st.args...); err != nil {
			return fail(st.what, err)
		}
	}
	res, err := t.tx.ExecContext(ctx, `DELETE FROM enrollments WHERE `+inScope+` AND person_id = $2`, sc.TenantID, sc.PersonID)
	if err != nil {
		return fail("enrollments", err)
	}
	n, _ := res.RowsAffected()
	for _, p := range pend {
		if _, err := t.tx.ExecContext(ctx, `DELETE FROM otp_sends WHERE tenant_id = $1 AND address = $2
			AND NOT EXISTS (SELECT 1 FROM enrollments WHERE tenant_id = $1 AND (email = $2 OR pending_email = $2))`,
			p.tenant, p.addr); err != nil {
			return fail("send histories", err)
		}
	}
	return int(n), nil
}

// ErasePerson deletes the sessions with RETURNING, so a session stored
// concurrently is either among those queued for Didit or makes deleting
// the person fail its foreign key (ErrRace: the erasure runs again).
func (t *txn) ErasePerson(ctx context.Context, personID string, lease kyc.DeletionClaim) ([]string, error) {
	fail := func(what string, err error) ([]string, error) {
		if isForeignKey(err) {
			return nil, fmt.Errorf("store: erase person: %s: %w", what, kyc.ErrRace)
		}
		return nil, fmt.Errorf("store: erase person: %s: %w", what, err)
	}
	rows, err := t.tx.QueryContext(ctx, `DELETE FROM kyc_sessions WHERE person_id = $1 RETURNING id`, personID)
	if err != nil {
		return fail("sessions", err)
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return fail("sessions", err)
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fail("sessions", err)
	}
	for _, id := range ids {
		if _, err := t.tx.ExecContext(ctx, `DELETE FROM webhook_events WHERE session_id = $1`, id); err != nil {
			return fail("webhook keys", err)
		}
		if _, err := t.tx.ExecContext(ctx, `INSERT INTO didit_deletions (session_id, queued_at, attempts, next_at, lease_token, lease_until)
			VALUES ($1, $2, 0, $2, $3, $4) ON CONFLICT (session_id) DO UPDATE SET lease_token = excluded.lease_token,
			lease_until = excluded.lease_until`, id, ms(lease.Now), lease.Token, ms(lease.Until)); err != nil {
			return fail("queue didit deletion", err)
		}
	}
	// A live claim goes too (its create then finds the person gone and
	// queues what Didit made for deletion), with the quota unit it holds.
	if _, err := dropClaims(ctx, t.tx, t.pg, `person_id = $1`, personID); err != nil {
		return fail("creation claims", err)
	}
	if _, err := t.tx.ExecContext(ctx, `DELETE FROM persons WHERE id = $1`, personID); err != nil {
		return fail("person", err)
	}
	return ids, nil
}

// PersonRecord reads in one read-only transaction, so the person, their
// enrollments and their sessions are of one moment.
func (db *DB) PersonRecord(ctx context.Context, email, wallet, tenantID string) (kyc.PersonRecord, error) {
	var opt *sql.TxOptions
	if db.dialect == Postgres {
		opt = &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true}
	}
	tx, err := db.r.BeginTx(ctx, opt)
	if err != nil {
		return kyc.PersonRecord{}, fmt.Errorf("store: person record: %w", err)
	}
	defer tx.Rollback()
	by, val := lookupBy(email, wallet)
	col := []string{"email", "wallet"}[by]
	var p kyc.PersonRecord
	var pe, pw, pc sql.NullString
	var created int64
	err = tx.QueryRowContext(ctx, `SELECT id, email, wallet, wallet_chain, created_at FROM persons WHERE `+col+` = $1`, val).
		Scan(&p.PersonID, &pe, &pw, &pc, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return p, kyc.ErrNotFound
	}
	if err != nil {
		return p, fmt.Errorf("store: person record: %w", err)
	}
	p.Email, p.Wallet, p.WalletChain, p.CreatedAt = pe.String, pw.String, pc.String, fromMS(created)
	if p.Enrollments, err = personEnrollments(ctx, tx, p.PersonID, tenantID); err != nil {
		return p, err
	}
	if tenantID != "" && len(p.Enrollments) == 0 {
		return kyc.PersonRecord{}, kyc.ErrNotFound
	}
	if p.Sessions, err = personSessions(ctx, tx, p.PersonID); err != nil {
		return p, err
	}
	return p, nil
}

func personEnrollments(ctx context.Context, tx *sql.Tx, personID, tenantID string) ([]kyc.EnrollmentRecord, error) {
	rows, err := tx.QueryContext(ctx, `SELECT tenant_id, email, wallet, email_verified, pending_email, created_at
		FROM enrollments WHERE `+inScope+` AND person_id = $2 ORDER BY created_at, id`, tenantID, personID)
	if err != nil {
		return nil, fmt.Errorf("store: person's enrollments: %w", err)
	}
	defer rows.Close()
	var out []kyc.EnrollmentRecord
	for rows.Next() {
		var e kyc.EnrollmentRecord
		var email, wallet, pend sql.NullString
		var created int64
		if err := rows.Scan(&e.TenantID, &email, &wallet, &e.EmailVerified, &pend, &created); err != nil {
			return nil, fmt.Errorf("store: person's enrollments: %w", err)
		}
		e.Email, e.Wallet, e.PendingEmail, e.CreatedAt = email.String, wallet.String, pend.String, fromMS(created)
		e.WalletVerified = e.Wallet != ""
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: person's enrollments: %w", err)
	}
	return out, nil
}

func personSessions(ctx context.Context, tx *sql.Tx, personID string) ([]kyc.SessionRecord, error) {
	rows, err := tx.QueryContext(ctx, `SELECT id, tenant_id, status, decision IS NOT NULL, created_at, updated_at
		FROM kyc_sessions WHERE person_id = $1 ORDER BY created_at, id`, personID)
	if err != nil {
		return nil, fmt.Errorf("store: person's sessions: %w", err)
	}
	defer rows.Close()
	var out []kyc.SessionRecord
	for rows.Next() {
		var s kyc.SessionRecord
		var created, updated int64
		if err := rows.Scan(&s.ID, &s.TenantID, &s.Status, &s.HasDecision, &created, &updated); err != nil {
			return nil, fmt.Errorf("store: person's sessions: %w", err)
		}
		s.CreatedAt, s.UpdatedAt = fromMS(created), fromMS(updated)
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: person's sessions: %w", err)
	}
	return out, nil
}

func (db *DB) QueueOrphanDeletion(ctx context.Context, sessionID, personID string, now time.Time) (bool, error) {
	res, err := db.w.ExecContext(ctx, `INSERT INTO didit_deletions (session_id, queued_at, attempts, next_at)
		SELECT CAST($1 AS TEXT), CAST($3 AS BIGINT), 0, CAST($3 AS BIGINT)
		WHERE NOT EXISTS (SELECT 1 FROM persons WHERE id = $2)
		ON CONFLICT (session_id) DO NOTHING`, sessionID, personID, ms(now))
	if err != nil {
		return false, fmt.Errorf("store: queue didit deletion: %w", err)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

// ClaimDiditDeletions repeats the due and lease conditions outside the
// subquery: on PostgreSQL a claimer that waited for another's row lock
// re-checks only those, and must then see the row taken.
func (db *DB) ClaimDiditDeletions(ctx context.Context, c kyc.DeletionClaim) ([]kyc.DiditDeletion, error) {
	free := `next_at <= $3 AND (lease_until IS NULL OR lease_until <= $4)`
	lock := ""
	if db.dialect == Postgres {
		lock = ` FOR UPDATE SKIP LOCKED`
	}
	rows, err := db.w.QueryContext(ctx, `UPDATE didit_deletions SET lease_token = $1, lease_until = $2
		WHERE `+free+` AND session_id IN (SELECT session_id FROM didit_deletions WHERE `+free+`
			ORDER BY next_at, session_id LIMIT $5`+lock+`)
		RETURNING session_id, queued_at, attempts, next_at, last_error`,
		c.Token, ms(c.Until), ms(c.Due), ms(c.Now), c.Limit)
	if err != nil {
		return nil, fmt.Errorf("store: claim didit deletions: %w", err)
	}
	return scanDeletions(rows)
}

func scanDeletions(rows *sql.Rows) ([]kyc.DiditDeletion, error) {
	defer rows.Close()
	var out []kyc.DiditDeletion
	for rows.Next() {
		var d kyc.DiditDeletion
		var queued, next int64
		var last sql.NullString
		if err := rows.Scan(&d.SessionID, &queued, &d.Attempts, &next, &last); err != nil {
			return nil, fmt.Errorf("store: didit deletions: %w", err)
		}
		d.QueuedAt, d.NextAt, d.LastError = fromMS(queued), fromMS(next), last.String
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: didit deletions: %w", err)
	}
	return out, nil
}

func (db *DB) FinishDiditDeletion(ctx context.Context, o kyc.DeletionOutcome) error {
	var res sql.Result
	var err error
	if o.Done {
		res, err = db.w.ExecContext(ctx, `DELETE FROM didit_deletions WHERE session_id = $1 AND lease_token = $2`, o.SessionID, o.Token)
	} else {
		res, err = db.w.ExecContext(ctx, `UPDATE didit_deletions SET attempts = attempts + 1, next_at = $3, last_error = $4,
			lease_token = NULL, lease_until = NULL WHERE session_id = $1 AND lease_token = $2`,
			o.SessionID, o.Token, ms(o.NextAt), o.Error)
	}
	if err != nil {
		return fmt.Errorf("store: finish didit deletion: %w", err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return fmt.Errorf("store: finish didit deletion %s: lease lost: %w", o.SessionID, kyc.ErrConflict)
	}
	return nil
}

func (db *DB) DiditDeletions(ctx context.Context) ([]kyc.DiditDeletion, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT session_id, queued_at, attempts, next_at, last_error
		FROM didit_deletions ORDER BY queued_at, session_id`)
	if err != nil {
		return nil, fmt.Errorf("store: didit deletions: %w", err)
	}
	return scanDeletions(rows)
}
