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

type querier interface {
	QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row
}

func personBy(ctx context.Context, q querier, col, val string) (kyc.Person, error) {
	var p kyc.Person
	var email, wallet, chain sql.NullString
	err := q.QueryRowContext(ctx, `SELECT id, email, wallet, wallet_chain FROM persons WHERE `+col+` = $1`, val).
		Scan(&p.ID, &email, &wallet, &chain)
	if errors.Is(err, sql.ErrNoRows) {
		return p, kyc.ErrNotFound
	}
	if err != nil {
		return p, fmt.Errorf("store: person by %s: %w", col, err)
	}
	p.Email, p.Wallet, p.WalletChain = email.String, wallet.String, chain.String
	return p, nil
}

func enrollment(ctx context.Context, q querier, tenantID, personID string) (kyc.Enrollment, error) {
	e := kyc.Enrollment{TenantID: tenantID, PersonID: personID}
	err := q.QueryRowContext(ctx, `SELECT email_verified, wallet_verified FROM enrollments
		WHERE tenant_id = $1 AND person_id = $2`, tenantID, personID).Scan(&e.EmailVerified, &e.WalletVerified)
	if errors.Is(err, sql.ErrNoRows) {
		return e, kyc.ErrNotFound
	}
	if err != nil {
		return e, fmt.Errorf("store: enrollment: %w", err)
	}
	return e, nil
}

func nullStr(s string) sql.NullString { return sql.NullString{String: s, Valid: s != ""} }

func (db *DB) PrepareEmail(ctx context.Context, tenantID, personID, email string, now time.Time) (p kyc.Person, e kyc.Enrollment, created bool, err error) {
	if db.dialect == Postgres {
		return db.prepareEmailPG(ctx, tenantID, personID, email, now)
	}
	err = db.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO persons (id, email, created_at) VALUES ($1, $2, $3)
			ON CONFLICT (email) DO NOTHING`, personID, email, ms(now)); err != nil {
			return fmt.Errorf("store: insert person: %w", err)
		}
		if p, err = personBy(ctx, tx, "email", email); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO enrollments (tenant_id, person_id, created_at) VALUES ($1, $2, $3)
			ON CONFLICT (tenant_id, person_id) DO NOTHING`, tenantID, p.ID, ms(now))
		if err != nil {
			return fmt.Errorf("store: enroll: %w", err)
		}
		n, _ := res.RowsAffected()
		created = n == 1
		e, err = enrollment(ctx, tx, tenantID, p.ID)
		return err
	})
	return p, e, created, err
}

// prepareEmailPG is PrepareEmail in one statement: the transaction took six
// round trips to the server (BEGIN, two inserts, two reads, COMMIT), a
// data-modifying WITH takes one. Its parts see the tables as they were when
// the statement began, so a person or enrollment that a concurrent prepare
// committed after that moment is neither inserted (ON CONFLICT waits for
// it and does nothing) nor seen: the statement then finds no row, and runs
// again, when it is seen.
func (db *DB) prepareEmailPG(ctx context.Context, tenantID, personID, email string, now time.Time) (p kyc.Person, e kyc.Enrollment, created bool, err error) {
	for range 5 {
		var r enrollmentRow
		err = db.w.QueryRowContext(ctx, `WITH ins AS (
				INSERT INTO persons (id, email, created_at) VALUES ($1, $2, $3)
				ON CONFLICT (email) DO NOTHING RETURNING id, email, wallet, wallet_chain
			), p AS (
				SELECT id, email, wallet, wallet_chain FROM ins
				UNION ALL SELECT id, email, wallet, wallet_chain FROM persons WHERE email = $2
			), enr AS (
				INSERT INTO enrollments (tenant_id, person_id, created_at) SELECT $4::text, id, $3::bigint FROM p
				ON CONFLICT (tenant_id, person_id) DO NOTHING RETURNING email_verified, wallet_verified
			)
			SELECT p.id, p.email, p.wallet, p.wallet_chain, COALESCE(n.email_verified, o.email_verified),
				COALESCE(n.wallet_verified, o.wallet_verified), n.email_verified IS NOT NULL
			FROM p LEFT JOIN enr n ON TRUE
			LEFT JOIN enrollments o ON o.tenant_id = $4 AND o.person_id = p.id`,
			personID, email, ms(now), tenantID).Scan(append(r.dest(false), &created)...)
		if errors.Is(err, sql.ErrNoRows) || err == nil && !r.enrolled() {
			continue // committed by someone else after our snapshot: look again
		}
		if err != nil {
			return p, e, false, fmt.Errorf("store: prepare email: %w", err)
		}
		p, e, _ = r.result(tenantID)
		return p, e, created, nil
	}
	return p, e, false, errors.New("store: prepare email: person or enrollment kept changing under us")
}

func (db *DB) FindEnrollment(ctx context.Context, tenantID, email, wallet string) (kyc.Person, kyc.Enrollment, error) {
	p, e, _, err := db.findEnrollment(ctx, tenantID, email, wallet, false)
	return p, e, err
}

// FindEnrollmentLatest is FindEnrollment and the latest session's public
// fields in one read: status, the hottest endpoint, needs both, and not the
// session's decision, which can run to kilobytes.
func (db *DB) FindEnrollmentLatest(ctx context.Context, tenantID, email, wallet string) (kyc.Person, kyc.Enrollment, *kyc.SessionView, error) {
	return db.findEnrollment(ctx, tenantID, email, wallet, true)
}

// The columns enrollmentRow scans, in its order, and the id of the person
// p's newest session.
const (
	enrollmentCols   = `p.id, p.email, p.wallet, p.wallet_chain, e.email_verified, e.wallet_verified`
	sessionViewCols  = `s.id, s.status, s.url, s.ip_info, s.blocklisted`
	newestSessionOfP = `(SELECT id FROM kyc_sessions WHERE person_id = p.id ORDER BY created_at DESC, id DESC LIMIT 1)`
)

// findQueries[by][latest] are built once, so the statement cache sees a
// fixed set of texts.
var findQueries = func() (q [3][2]string) {
	for by, where := range []string{"p.email = $2", "p.wallet = $2", "e.pending_email = $2"} {
		for latest := range 2 {
			cols, join := "", ""
			if latest == 1 {
				cols = ", " + sessionViewCols
				join = ` LEFT JOIN kyc_sessions s ON s.id = ` + newestSessionOfP
			}
			q[by][latest] = `SELECT ` + enrollmentCols + cols + `
				FROM persons p JOIN enrollments e ON e.person_id = p.id AND e.tenant_id = $1` + join + `
				WHERE ` + where
		}
	}
	return q
}()

const (
	byEmail = iota
	byWallet
	byPendingEmail
)

// lookupBy is which of email and wallet (exactly one non-empty) a find
// goes by, and its value.
func lookupBy(email, wallet string) (by int, val string) {
	if email == "" {
		return byWallet, wallet
	}
	return byEmail, email
}

func (db *DB) findEnrollment(ctx context.Context, tenantID, email, wallet string, latest bool) (kyc.Person, kyc.Enrollment, *kyc.SessionView, error) {
	by, val := lookupBy(email, wallet)
	var r enrollmentRow
	err := db.r.QueryRowContext(db.pointCtx(ctx), findQueries[by][latestIdx(latest)], tenantID, val).Scan(r.dest(latest)...)
	if errors.Is(err, sql.ErrNoRows) && email != "" {
		err = db.findPending(ctx, tenantID, email, latest, &r)
	}
	if errors.Is(err, sql.ErrNoRows) {
		return kyc.Person{}, kyc.Enrollment{TenantID: tenantID}, nil, kyc.ErrNotFound
	}
	if err != nil {
		return kyc.Person{}, kyc.Enrollment{TenantID: tenantID}, nil, fmt.Errorf("store: find enrollment: %w", err)
	}
	p, e, v := r.result(tenantID)
	return p, e, v, nil
}

// findPending looks email up as a wallet user's unproven email. It reaches
// them only at this tenant, and only when no person enrolled here owns the
// address: the owner who proves it always wins.
func (db *DB) findPending(ctx context.Context, tenantID, email string, latest bool, r *enrollmentRow) error {
	*r = enrollmentRow{}
	return db.r.QueryRowContext(db.pointCtx(ctx), findQueries[byPendingEmail][latestIdx(latest)], tenantID, email).Scan(r.dest(latest)...)
}

func latestIdx(latest bool) int {
	if latest {
		return 1
	}
	return 0
}

// enrollmentRow receives enrollmentCols and, for the latest session,
// sessionViewCols. The session's are NULL when the person has none; in
// keyFindQueries, whose joins are all LEFT, the person's and enrollment's
// are too when nobody is enrolled.
type enrollmentRow struct {
	pid, pe, pw, pc         sql.NullString
	ev, wv                  sql.NullBool
	sid, sstatus, surl, sip sql.NullString
	sblock                  sql.NullBool
}

func (r *enrollmentRow) dest(latest bool) []any {
	d := []any{&r.pid, &r.pe, &r.pw, &r.pc, &r.ev, &r.wv}
	if latest {
		d = append(d, &r.sid, &r.sstatus, &r.surl, &r.sip, &r.sblock)
	}
	return d
}

// enrolled reports whether the row found an enrollment.
func (r *enrollmentRow) enrolled() bool { return r.ev.Valid }

func (r *enrollmentRow) result(tenantID string) (kyc.Person, kyc.Enrollment, *kyc.SessionView) {
	p := kyc.Person{ID: r.pid.String, Email: r.pe.String, Wallet: r.pw.String, WalletChain: r.pc.String}
	e := kyc.Enrollment{TenantID: tenantID, PersonID: p.ID, EmailVerified: r.ev.Bool, WalletVerified: r.wv.Bool}
	if !r.sid.Valid {
		return p, e, nil
	}
	return p, e, &kyc.SessionView{ID: r.sid.String, Status: r.sstatus.String, URL: r.surl.String,
		IPInfo: json.RawMessage(r.sip.String), Blocklisted: r.sblock.Bool}
}

// keyFindQueries[by] are findQueries[by][1] behind the API-key lookup, all
// LEFT JOINs so that a good key with nobody enrolled still returns its
// tenant.
var keyFindQueries = func() (q [2]string) {
	for by, col := range []string{"p.email", "p.wallet"} {
		q[by] = `SELECT ` + tenantCols + `, ` + enrollmentCols + `, ` + sessionViewCols + `
			FROM api_keys k JOIN tenants t ON t.id = k.tenant_id
			LEFT JOIN persons p ON ` + col + ` = $2
			LEFT JOIN enrollments e ON e.tenant_id = t.id AND e.person_id = p.id
			LEFT JOIN kyc_sessions s ON e.person_id IS NOT NULL AND s.id = ` + newestSessionOfP + `
			WHERE k.key_hash = $1 AND k.revoked_at IS NULL`
	}
	return q
}()

// TenantFindLatest is TenantByKeyHash and FindEnrollmentLatest in one
// query: status is the endpoint partners poll, and the key lookup was a
// whole second round trip of it. kyc.ErrNotFound is about the key; a good
// key with nobody enrolled under email or wallet returns its tenant and a
// zero Person.
func (db *DB) TenantFindLatest(ctx context.Context, keyHash, email, wallet string) (kyc.Tenant, kyc.Person, kyc.Enrollment, *kyc.SessionView, error) {
	by, val := lookupBy(email, wallet)
	var t kyc.Tenant
	var created int64
	var r enrollmentRow
	err := db.r.QueryRowContext(db.pointCtx(ctx), keyFindQueries[by], keyHash, val).
		Scan(append(tenantDest(&t, &created), r.dest(true)...)...)
	if errors.Is(err, sql.ErrNoRows) {
		return kyc.Tenant{}, kyc.Person{}, kyc.Enrollment{}, nil, kyc.ErrNotFound
	}
	if err == nil && !r.enrolled() && email != "" {
		if err = db.findPending(ctx, t.ID, email, true, &r); errors.Is(err, sql.ErrNoRows) {
			err = nil
		}
	}
	if err != nil {
		return kyc.Tenant{}, kyc.Person{}, kyc.Enrollment{}, nil, fmt.Errorf("store: tenant and enrollment: %w", err)
	}
	t.CreatedAt = fromMS(created)
	if !r.enrolled() {
		return t, kyc.Person{}, kyc.Enrollment{}, nil, nil
	}
	p, e, v := r.result(t.ID)
	return t, p, e, v, nil
}

// PrepareWallet applies api.md §6's linking rules in one transaction.
//
// On PostgreSQL (READ COMMITTED) another transaction may create or link the
// person between our reads and our write. So every write only succeeds on
// the state that was read (UPDATE … WHERE email/wallet IS NULL, INSERT … ON
// CONFLICT DO NOTHING); when one changes nothing, we read again (each
// statement sees what committed before it) and decide again. Without this,
// two wallets racing to join one email-only person both "succeeded", the
// second silently replacing the first. On SQLite write transactions run one
// at a time and the first pass always decides.
func (db *DB) PrepareWallet(ctx context.Context, tenantID, personID string, w kyc.WalletProof, email string, now time.Time) (p kyc.Person, e kyc.Enrollment, created bool, err error) {
	var pending string
	err = db.tx(ctx, func(tx *sql.Tx) error {
		for try := 0; ; try++ {
			if try == 5 {
				return errors.New("store: prepare wallet: persons kept changing under us")
			}
			var done bool
			if p, pending, done, err = linkWallet(ctx, tx, tenantID, personID, w, email, now); err != nil {
				return err
			}
			if done {
				break
			}
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO enrollments (tenant_id, person_id, wallet_verified, created_at)
			VALUES ($1, $2, TRUE, $3) ON CONFLICT (tenant_id, person_id) DO NOTHING`, tenantID, p.ID, ms(now))
		if err != nil {
			return fmt.Errorf("store: enroll: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 1 {
			created = true
		} else if _, err := tx.ExecContext(ctx, `UPDATE enrollments SET wallet_verified = TRUE
			WHERE tenant_id = $1 AND person_id = $2`, tenantID, p.ID); err != nil {
			return fmt.Errorf("store: verify wallet: %w", err)
		}
		if pending != "" {
			// Unique per tenant: one unproven claim on an address at a time.
			if _, err := tx.ExecContext(ctx, `UPDATE enrollments SET pending_email = $3
				WHERE tenant_id = $1 AND person_id = $2`, tenantID, p.ID, pending); err != nil {
				if isUnique(err) {
					return kyc.ErrConflict
				}
				return fmt.Errorf("store: pending email: %w", err)
			}
		}
		e, err = enrollment(ctx, tx, tenantID, p.ID)
		return err
	})
	return p, e, created, err
}

// linkWallet finds or creates the wallet's person for PrepareWallet and
// decides what becomes of the email. A wallet never joins a person through
// an email: the email proves nothing about who holds the wallet (not even
// when this tenant verified it once), so joining would let any wallet
// claim another person's identity and KYC result. The email comes back as
// pending instead, kept on this tenant's enrollment until its OTP passes.
// ErrConflict only for what this tenant can already see: the wallet's
// person has another email, or the email's person, enrolled here, has
// another wallet. done=false means a concurrent transaction changed what
// we read: read and decide again.
func linkWallet(ctx context.Context, tx *sql.Tx, tenantID, personID string, w kyc.WalletProof, email string, now time.Time) (p kyc.Person, pending string, done bool, err error) {
	pw, err := personBy(ctx, tx, "wallet", w.Wallet)
	if err != nil && !errors.Is(err, kyc.ErrNotFound) {
		return p, "", false, err
	}
	haveWallet := err == nil
	if haveWallet && (email == "" || pw.Email == email) {
		return pw, "", true, nil
	}
	if haveWallet && pw.Email != "" {
		return p, "", false, kyc.ErrConflict
	}
	if email != "" {
		pe, err := personBy(ctx, tx, "email", email)
		if err != nil && !errors.Is(err, kyc.ErrNotFound) {
			return p, "", false, err
		}
		if err == nil {
			_, err := enrollment(ctx, tx, tenantID, pe.ID)
			switch {
			case err == nil && pe.Wallet != "":
				return p, "", false, kyc.ErrConflict
			case err == nil:
				// The address's owner is enrolled here and wins every lookup
				// by it: a pending claim would only block the owner's own
				// wallet later.
				email = ""
			case !errors.Is(err, kyc.ErrNotFound):
				return p, "", false, err
			}
			// Enrolled only elsewhere: answering 409 here would tell this
			// tenant about another tenant's user, so it stays pending.
		}
	}
	if haveWallet {
		return pw, email, true, nil
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO persons (id, wallet, wallet_chain, created_at)
		VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING`, personID, w.Wallet, w.Chain, ms(now))
	if err != nil {
		return p, "", false, fmt.Errorf("store: insert person: %w", err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return p, "", false, nil
	}
	return kyc.Person{ID: personID, Wallet: w.Wallet, WalletChain: w.Chain}, email, true, nil
}
