package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/kycgate/kycgate/internal/kyc"
)

// InTx runs fn in one write transaction (kyc.Store.InTx). On PostgreSQL
// (READ COMMITTED) every read of the kyc.Tx locks the rows it returns; a row
// that did not exist when read can still be committed by another
// transaction, and the write that collides with it fails with kyc.ErrRace:
// the transaction then runs again and sees it. SQLite runs one write
// transaction at a time, so there the first run always decides.
//
// Persons are locked FOR NO KEY UPDATE, which still queues the identity
// transactions behind one another but lets other statements' foreign-key
// checks on the person through (a registration's enrollment, a creation
// claim, a stored session). Those statements hold locks of their own the
// identity transaction may need next (an index entry, a claim row), so
// making them wait on the person was a deadlock. What they commit meanwhile
// is caught where it matters: MergePerson refuses a person that has a
// session or a live claim after all, and deleting a person that something
// new refers to fails its foreign key; both are ErrRace.
func (db *DB) InTx(ctx context.Context, fn func(kyc.Tx) error) error {
	q := &txQueriesSQLite
	if db.dialect == Postgres {
		q = &txQueriesPG
	}
	const runs = 5
	for run := 1; ; run++ {
		err := db.tx(ctx, func(tx *sql.Tx) error { return fn(&txn{tx: tx, q: q, pg: db.dialect == Postgres}) })
		if err == nil || run == runs || !(errors.Is(err, kyc.ErrRace) || isPgRetryable(err)) {
			return err
		}
	}
}

// txQueries are the kyc.Tx statements, per engine: PostgreSQL's reads lock
// what they return.
type txQueries struct {
	personByID, personByEmail, personByWallet string
	enrollmentByEmail, enrollmentByWallet     string
}

func buildTxQueries(personLock, enrollmentLock string) txQueries {
	person := `SELECT id, email, wallet, wallet_chain FROM persons WHERE `
	enr := `SELECT ` + enrollmentCols + ` FROM enrollments e WHERE e.tenant_id = $1 AND `
	return txQueries{
		personByID:         person + `id = $1` + personLock,
		personByEmail:      person + `email = $1` + personLock,
		personByWallet:     person + `wallet = $1` + personLock,
		enrollmentByEmail:  enr + `e.email = $2` + enrollmentLock,
		enrollmentByWallet: enr + `e.wallet = $2` + enrollmentLock,
	}
}

var (
	txQueriesSQLite = buildTxQueries("", "")
	txQueriesPG     = buildTxQueries(" FOR NO KEY UPDATE", " FOR UPDATE")
)

// txn is a kyc.Tx.
type txn struct {
	tx *sql.Tx
	q  *txQueries
	pg bool
}

// race maps a uniqueness violation (a concurrent commit took the email or
// wallet) to kyc.ErrRace.
func race(what string, err error) error {
	if isUnique(err) {
		return fmt.Errorf("store: %s: %w", what, kyc.ErrRace)
	}
	return fmt.Errorf("store: %s: %w", what, err)
}

func (t *txn) ConsumeChallenge(ctx context.Context, nonce string, at time.Time) (bool, error) {
	res, err := t.tx.ExecContext(ctx, `UPDATE challenges SET used_at = $2 WHERE nonce = $1 AND used_at IS NULL`, nonce, ms(at))
	if err != nil {
		return false, fmt.Errorf("store: consume challenge: %w", err)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

func (t *txn) ConsumeCode(ctx context.Context, c kyc.CodeRef, codeHash string) (bool, error) {
	res, err := t.tx.ExecContext(ctx, `UPDATE otp_codes SET code_hash = NULL
		WHERE tenant_id = $1 AND address = $2 AND wallet = $3 AND code_hash = $4`,
		c.TenantID, c.Address, c.Wallet, codeHash)
	if err != nil {
		return false, fmt.Errorf("store: consume code: %w", err)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

func (t *txn) person(ctx context.Context, q, val string) (kyc.Person, error) {
	var p kyc.Person
	var email, wallet, chain sql.NullString
	err := t.tx.QueryRowContext(ctx, q, val).Scan(&p.ID, &email, &wallet, &chain)
	if errors.Is(err, sql.ErrNoRows) {
		return p, kyc.ErrNotFound
	}
	if err != nil {
		return p, fmt.Errorf("store: read person: %w", err)
	}
	p.Email, p.Wallet, p.WalletChain = email.String, wallet.String, chain.String
	return p, nil
}

func (t *txn) PersonByID(ctx context.Context, id string) (kyc.Person, error) {
	return t.person(ctx, t.q.personByID, id)
}

func (t *txn) PersonByEmail(ctx context.Context, email string) (kyc.Person, error) {
	return t.person(ctx, t.q.personByEmail, email)
}

func (t *txn) PersonByWallet(ctx context.Context, wallet string) (kyc.Person, error) {
	return t.person(ctx, t.q.personByWallet, wallet)
}

func nullStr(s string) sql.NullString { return sql.NullString{String: s, Valid: s != ""} }

func (t *txn) InsertPerson(ctx context.Context, p kyc.Person, now time.Time) error {
	res, err := t.tx.ExecContext(ctx, `INSERT INTO persons (id, email, wallet, wallet_chain, created_at)
		VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING`,
		p.ID, nullStr(p.Email), nullStr(p.Wallet), nullStr(p.WalletChain), ms(now))
	if err != nil {
		return fmt.Errorf("store: insert person: %w", err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return fmt.Errorf("store: insert person: %w", kyc.ErrRace)
	}
	return nil
}

func (t *txn) UpdatePerson(ctx context.Context, p kyc.Person) error {
	if _, err := t.tx.ExecContext(ctx, `UPDATE persons SET email = $2, wallet = $3, wallet_chain = $4 WHERE id = $1`,
		p.ID, nullStr(p.Email), nullStr(p.Wallet), nullStr(p.WalletChain)); err != nil {
		return race("update person", err)
	}
	return nil
}

// MergePerson deletes only a lapsed claim of from, and moves no session: a
// live claim or a session means a create for from went through after the
// caller read KYCHistory (a creator re-takes a lapsed claim without waiting
// for the person's row), so the decision to merge from away is stale. Then,
// or when anything new refers to from as it is deleted, ErrRace: the
// transaction runs again and decides on what is there.
func (t *txn) MergePerson(ctx context.Context, from, into string, now time.Time) error {
	var busy bool
	if err := t.tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM kyc_sessions WHERE person_id = $1)
		OR EXISTS (SELECT 1 FROM session_claims WHERE person_id = $1 AND claimed_until > $2)`, from, ms(now)).Scan(&busy); err != nil {
		return fmt.Errorf("store: merge person: %w", err)
	}
	if busy {
		return fmt.Errorf("store: merge person: %s has a KYC history: %w", from, kyc.ErrRace)
	}
	fail := func(err error) error {
		if isForeignKey(err) {
			return fmt.Errorf("store: merge person: %w", kyc.ErrRace)
		}
		return fmt.Errorf("store: merge person: %w", err)
	}
	if _, err := t.tx.ExecContext(ctx, `UPDATE enrollments SET person_id = $2 WHERE person_id = $1`, from, into); err != nil {
		return fail(err)
	}
	// Events about from are about into now: an erasure of into finds them.
	if _, err := t.tx.ExecContext(ctx, `UPDATE outbox_events SET person_id = $2 WHERE person_id = $1`, from, into); err != nil {
		return fail(err)
	}
	// The lapsed claim goes with the quota unit its dead holder reserved:
	// once the claim is gone, neither a sweep nor a take-over can find it.
	if _, err := dropClaims(ctx, t.tx, t.pg, `person_id = $1 AND claimed_until <= $2`, from, ms(now)); err != nil {
		return fail(err)
	}
	if _, err := t.tx.ExecContext(ctx, `DELETE FROM persons WHERE id = $1`, from); err != nil {
		return fail(err)
	}
	return nil
}

// KYCHistory reads without locking: a creator storing its session holds
// the claim row while it checks the session's foreign key, and must not
// queue behind this transaction (MergePerson re-checks before it acts).
func (t *txn) KYCHistory(ctx context.Context, personID string, now time.Time) (bool, error) {
	var has bool
	if err := t.tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM session_claims WHERE person_id = $1 AND claimed_until > $2)
		OR EXISTS (SELECT 1 FROM kyc_sessions WHERE person_id = $1)`, personID, ms(now)).Scan(&has); err != nil {
		return false, fmt.Errorf("store: read kyc history: %w", err)
	}
	return has, nil
}

func (t *txn) enrollment(ctx context.Context, q, tenantID, val string) (kyc.Enrollment, error) {
	var r enrollmentRow
	err := t.tx.QueryRowContext(ctx, q, tenantID, val).Scan(r.dest(false)...)
	if errors.Is(err, sql.ErrNoRows) {
		return kyc.Enrollment{}, kyc.ErrNotFound
	}
	if err != nil {
		return kyc.Enrollment{}, fmt.Errorf("store: read enrollment: %w", err)
	}
	return r.enrollment(), nil
}

func (t *txn) EnrollmentByEmail(ctx context.Context, tenantID, email string) (kyc.Enrollment, error) {
	return t.enrollment(ctx, t.q.enrollmentByEmail, tenantID, email)
}

func (t *txn) EnrollmentByWallet(ctx context.Context, tenantID, wallet string) (kyc.Enrollment, error) {
	return t.enrollment(ctx, t.q.enrollmentByWallet, tenantID, wallet)
}

func (t *txn) InsertEnrollment(ctx context.Context, e kyc.Enrollment, now time.Time) error {
	res, err := t.tx.ExecContext(ctx, `INSERT INTO enrollments (id, tenant_id, person_id, email, wallet, email_verified, pending_email, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING`,
		e.ID, e.TenantID, e.PersonID, nullStr(e.Email), nullStr(e.Wallet), e.EmailVerified, nullStr(e.PendingEmail), ms(now))
	if err != nil {
		return fmt.Errorf("store: insert enrollment: %w", err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return fmt.Errorf("store: insert enrollment: %w", kyc.ErrRace)
	}
	return nil
}

func (t *txn) UpdateEnrollment(ctx context.Context, e kyc.Enrollment) error {
	if _, err := t.tx.ExecContext(ctx, `UPDATE enrollments SET person_id = $2, email = $3, wallet = $4,
		email_verified = $5, pending_email = $6 WHERE id = $1`,
		e.ID, e.PersonID, nullStr(e.Email), nullStr(e.Wallet), e.EmailVerified, nullStr(e.PendingEmail)); err != nil {
		return race("update enrollment", err)
	}
	return nil
}

func (t *txn) DeleteEnrollment(ctx context.Context, id string) error {
	if _, err := t.tx.ExecContext(ctx, `DELETE FROM enrollments WHERE id = $1`, id); err != nil {
		return fmt.Errorf("store: delete enrollment: %w", err)
	}
	return nil
}
