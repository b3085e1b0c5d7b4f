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

// The columns enrollmentRow scans, in its order; the session's columns that
// status shows; and the id of the newest session of e's person.
const (
	enrollmentCols   = `e.id, e.tenant_id, e.person_id, e.email, e.wallet, e.email_verified, e.pending_email`
	sessionViewCols  = `s.id, s.status, s.url, s.ip_info, s.blocklisted`
	newestSessionOfE = `(SELECT id FROM kyc_sessions WHERE person_id = e.person_id ORDER BY created_at DESC, id DESC LIMIT 1)`
)

// enrollmentRow receives enrollmentCols and, for the latest session,
// sessionViewCols. The session's are NULL when the person has none; in
// keyFindQueries, whose joins are all LEFT, the enrollment's are too when
// nobody is registered under the identifier.
type enrollmentRow struct {
	id, tid, pid, email, wallet, pending sql.NullString
	ev                                   sql.NullBool
	sid, sstatus, surl, sip              sql.NullString
	sblock                               sql.NullBool
}

func (r *enrollmentRow) dest(latest bool) []any {
	d := []any{&r.id, &r.tid, &r.pid, &r.email, &r.wallet, &r.ev, &r.pending}
	if latest {
		d = append(d, &r.sid, &r.sstatus, &r.surl, &r.sip, &r.sblock)
	}
	return d
}

// found reports whether the row found an enrollment.
func (r *enrollmentRow) found() bool { return r.id.Valid }

func (r *enrollmentRow) enrollment() kyc.Enrollment {
	return kyc.Enrollment{ID: r.id.String, TenantID: r.tid.String, PersonID: r.pid.String, Email: r.email.String,
		Wallet: r.wallet.String, EmailVerified: r.ev.Bool, PendingEmail: r.pending.String}
}

func (r *enrollmentRow) session() *kyc.SessionView {
	if !r.sid.Valid {
		return nil
	}
	return &kyc.SessionView{ID: r.sid.String, Status: kyc.DiditStatus(r.sstatus.String), URL: r.surl.String,
		IPInfo: json.RawMessage(r.sip.String), Blocklisted: r.sblock.Bool}
}

func (db *DB) PrepareEmail(ctx context.Context, tenantID string, ids kyc.NewIDs, email string, now time.Time) (e kyc.Enrollment, created bool, err error) {
	if db.dialect == Postgres {
		return db.prepareEmailPG(ctx, tenantID, ids, email, now)
	}
	err = db.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO persons (id, email, created_at) VALUES ($1, $2, $3)
			ON CONFLICT (email) DO NOTHING`, ids.Person, email, ms(now)); err != nil {
			return fmt.Errorf("store: insert person: %w", err)
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO enrollments (id, tenant_id, person_id, email, created_at)
			SELECT $1, $2, id, $3, $4 FROM persons WHERE email = $3
			ON CONFLICT (tenant_id, email) DO NOTHING`, ids.Enrollment, tenantID, email, ms(now))
		if err != nil {
			return fmt.Errorf("store: enroll: %w", err)
		}
		n, _ := res.RowsAffected()
		created = n == 1
		var r enrollmentRow
		if err := tx.QueryRowContext(ctx, findQueries[byEmail][0], tenantID, email).Scan(r.dest(false)...); err != nil {
			return fmt.Errorf("store: read enrollment: %w", err)
		}
		e = r.enrollment()
		return nil
	})
	return e, created, err
}

// prepareEmailPG is PrepareEmail in one statement: the transaction took six
// round trips to the server (BEGIN, two inserts, two reads, COMMIT), a
// data-modifying WITH takes one. Its parts see the tables as they were when
// the statement began, so a person or enrollment that a concurrent prepare
// committed after that moment is neither inserted (ON CONFLICT waits for
// it and does nothing) nor seen: the statement then finds no row, and runs
// again, when it is seen. A person a concurrent link merged away after that
// moment fails the enrollment's foreign key: the statement runs again too,
// and finds the address on the person it was merged into.
func (db *DB) prepareEmailPG(ctx context.Context, tenantID string, ids kyc.NewIDs, email string, now time.Time) (e kyc.Enrollment, created bool, err error) {
	for range 5 {
		var r enrollmentRow
		err = db.w.QueryRowContext(ctx, `WITH ins AS (
				INSERT INTO persons (id, email, created_at) VALUES ($1, $2, $3)
				ON CONFLICT (email) DO NOTHING RETURNING id
			), p AS (
				SELECT id FROM ins UNION ALL SELECT id FROM persons WHERE email = $2
			), enr AS (
				INSERT INTO enrollments (id, tenant_id, person_id, email, created_at)
				SELECT $4::text, $5::text, id, $2, $3::bigint FROM p
				ON CONFLICT (tenant_id, email) DO NOTHING
				RETURNING id, tenant_id, person_id, email, wallet, email_verified, pending_email
			)
			SELECT enr.*, TRUE FROM enr
			UNION ALL
			SELECT `+enrollmentCols+`, FALSE FROM enrollments e WHERE e.tenant_id = $5 AND e.email = $2`,
			ids.Person, email, ms(now), ids.Enrollment, tenantID).Scan(append(r.dest(false), &created)...)
		if errors.Is(err, sql.ErrNoRows) || isForeignKey(err) || isPgRetryable(err) {
			continue // committed by someone else after our snapshot (or a deadlock broken): look again
		}
		if err != nil {
			return e, false, fmt.Errorf("store: prepare email: %w", err)
		}
		return r.enrollment(), created, nil
	}
	return e, false, errors.New("store: prepare email: person or enrollment kept changing under us")
}

func (db *DB) FindEnrollment(ctx context.Context, tenantID, email, wallet string) (kyc.Enrollment, error) {
	e, _, err := db.findEnrollment(ctx, tenantID, email, wallet, false)
	return e, err
}

// FindEnrollmentLatest is FindEnrollment and the latest session's public
// fields in one read: status, the hottest endpoint, needs both, and not the
// session's decision, which can run to kilobytes.
func (db *DB) FindEnrollmentLatest(ctx context.Context, tenantID, email, wallet string) (kyc.Enrollment, *kyc.SessionView, error) {
	return db.findEnrollment(ctx, tenantID, email, wallet, true)
}

const (
	byEmail = iota
	byWallet
)

// findQueries[by][latest] are built once, so the statement cache sees a
// fixed set of texts.
var findQueries = func() (q [2][2]string) {
	for by, col := range []string{"e.email", "e.wallet"} {
		for latest := range 2 {
			cols, join := "", ""
			if latest == 1 {
				cols = ", " + sessionViewCols
				join = ` LEFT JOIN kyc_sessions s ON s.id = ` + newestSessionOfE
			}
			q[by][latest] = `SELECT ` + enrollmentCols + cols + ` FROM enrollments e` + join + `
				WHERE e.tenant_id = $1 AND ` + col + ` = $2`
		}
	}
	return q
}()

// lookupBy is which of email and wallet (exactly one non-empty) a find
// goes by, and its value.
func lookupBy(email, wallet string) (by int, val string) {
	if email == "" {
		return byWallet, wallet
	}
	return byEmail, email
}

func latestIdx(latest bool) int {
	if latest {
		return 1
	}
	return 0
}

func (db *DB) findEnrollment(ctx context.Context, tenantID, email, wallet string, latest bool) (kyc.Enrollment, *kyc.SessionView, error) {
	by, val := lookupBy(email, wallet)
	var r enrollmentRow
	err := db.r.QueryRowContext(db.pointCtx(ctx), findQueries[by][latestIdx(latest)], tenantID, val).Scan(r.dest(latest)...)
	if errors.Is(err, sql.ErrNoRows) {
		return kyc.Enrollment{TenantID: tenantID}, nil, kyc.ErrNotFound
	}
	if err != nil {
		return kyc.Enrollment{TenantID: tenantID}, nil, fmt.Errorf("store: find enrollment: %w", err)
	}
	return r.enrollment(), r.session(), nil
}

// keyFindQueries[by] are findQueries[by][1] behind the API-key lookup, all
// LEFT JOINs so that a good key with nobody registered still returns its
// tenant.
var keyFindQueries = func() (q [2]string) {
	for by, col := range []string{"e.email", "e.wallet"} {
		q[by] = `SELECT ` + keyTenantCols + `, ` + enrollmentCols + `, ` + sessionViewCols + `
			FROM api_keys k JOIN tenants t ON t.id = k.tenant_id
			LEFT JOIN enrollments e ON e.tenant_id = t.id AND ` + col + ` = $2
			LEFT JOIN kyc_sessions s ON e.person_id IS NOT NULL AND s.id = ` + newestSessionOfE + `
			WHERE k.key_hash = $1 AND k.revoked_at IS NULL`
	}
	return q
}()

// StatusRead is TenantByKeyHash and FindEnrollmentLatest in one
// query: status is the endpoint partners poll, and the key lookup was a
// whole second round trip of it. kyc.ErrNotFound is about the key; a good
// key with nobody registered under email or wallet returns its tenant and a
// zero Enrollment.
func (db *DB) StatusRead(ctx context.Context, keyHash, email, wallet string) (kyc.Tenant, kyc.Enrollment, *kyc.SessionView, error) {
	by, val := lookupBy(email, wallet)
	var t kyc.Tenant
	var created int64
	var r enrollmentRow
	err := db.r.QueryRowContext(db.pointCtx(ctx), keyFindQueries[by], keyHash, val).
		Scan(append(keyTenantDest(&t, &created), r.dest(true)...)...)
	if errors.Is(err, sql.ErrNoRows) {
		return kyc.Tenant{}, kyc.Enrollment{}, nil, kyc.ErrNotFound
	}
	if err != nil {
		return kyc.Tenant{}, kyc.Enrollment{}, nil, fmt.Errorf("store: tenant and enrollment: %w", err)
	}
	t.CreatedAt = fromMS(created)
	if !r.found() {
		return t, kyc.Enrollment{}, nil, nil
	}
	return t, r.enrollment(), r.session(), nil
}

func (db *DB) PendingLinks(ctx context.Context, tenantID, email string, limit int) ([]kyc.Enrollment, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT `+enrollmentCols+` FROM enrollments e
		WHERE e.tenant_id = $1 AND e.pending_email = $2 ORDER BY e.id LIMIT $3`, tenantID, email, limit)
	if err != nil {
		return nil, fmt.Errorf("store: pending links: %w", err)
	}
	return scanEnrollments(rows, "pending links")
}

// scanEnrollments reads rows of enrollmentCols (no session) and closes
// them; what names the query in errors.
func scanEnrollments(rows *sql.Rows, what string) ([]kyc.Enrollment, error) {
	defer rows.Close()
	var out []kyc.Enrollment
	for rows.Next() {
		var r enrollmentRow
		if err := rows.Scan(r.dest(false)...); err != nil {
			return nil, fmt.Errorf("store: %s: %w", what, err)
		}
		out = append(out, r.enrollment())
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: %s: %w", what, err)
	}
	return out, nil
}
