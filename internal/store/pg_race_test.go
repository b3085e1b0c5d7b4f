package store_test

import (
	"database/sql"
	"testing"
	"time"

	"github.com/kycgate/kycgate/internal/kyc"
	"github.com/kycgate/kycgate/internal/store"
	"github.com/kycgate/kycgate/internal/store/storetest"
)

// On PostgreSQL, PrepareEmail is one statement whose parts see the tables
// as they were when it began. A person or enrollment another transaction
// commits while the statement waits on it is then neither inserted nor
// seen; the statement must look again and answer with it.
func TestPrepareEmailWaitsOutAnotherCommit(t *testing.T) {
	db, raw := pgRaceRig(t)
	ctx := t.Context()

	for _, tc := range []struct {
		name, email, other string
		enroll             bool // the other transaction enrolls the person too
		wantCreated        bool
	}{
		{"person committed meanwhile", "race1@example.com", "ps_other1", false, true},
		{"person and enrollment committed meanwhile", "race2@example.com", "ps_other2", true, false},
	} {
		tx, err := raw.BeginTx(ctx, nil)
		must(t, err)
		_, err = tx.ExecContext(ctx, `INSERT INTO persons (id, email, created_at) VALUES ($1, $2, 0)`, tc.other, tc.email)
		must(t, err)
		if tc.enroll {
			_, err = tx.ExecContext(ctx, `INSERT INTO enrollments (tenant_id, person_id, created_at) VALUES ('ta', $1, 0)`, tc.other)
			must(t, err)
		}
		type result struct {
			p       kyc.Person
			created bool
			err     error
		}
		done := make(chan result, 1) // buffered: the goroutine never blocks on it
		go func() {
			p, _, created, err := db.PrepareEmail(ctx, "ta", "ps_mine", tc.email, t0)
			done <- result{p, created, err}
		}()
		// Commit once PrepareEmail waits on our uncommitted row.
		waitForBlockedBy(t, raw, tx)
		must(t, tx.Commit())
		r := <-done
		if r.err != nil || r.p.ID != tc.other || r.p.Email != tc.email || r.created != tc.wantCreated {
			t.Errorf("%s: PrepareEmail = %+v, created %v, err %v; want %s, created %v", tc.name, r.p, r.created, r.err, tc.other, tc.wantCreated)
		}
	}
}

// On PostgreSQL, ConsumeOTP is one statement too. A wallet user's pending
// email that prepare-wallet replaces while the statement waits on the
// enrollment must be neither promoted (the code proved the old address,
// which the user no longer claims) nor cleared (the new one must survive).
func TestConsumeOTPWaitsOutAReplacedPendingEmail(t *testing.T) {
	db, raw := pgRaceRig(t)
	ctx := t.Context()

	w, _, _, err := db.PrepareWallet(ctx, "ta", "ps_w", evm(evmW1), "old@example.com", t0)
	must(t, err)
	f := otpFixture{t: t, db: db, tenant: "ta", person: "old@example.com"}
	f.mustSend(t0, "h")

	tx, err := raw.BeginTx(ctx, nil)
	must(t, err)
	_, err = tx.ExecContext(ctx, `UPDATE enrollments SET pending_email = 'new@example.com'
		WHERE tenant_id = 'ta' AND person_id = $1`, w.ID)
	must(t, err)
	type result struct {
		ok  bool
		err error
	}
	done := make(chan result, 1) // buffered: the goroutine never blocks on it
	go func() {
		ok, err := db.ConsumeOTP(ctx, "ta", "old@example.com", w.ID, "h")
		done <- result{ok, err}
	}()
	waitForBlockedBy(t, raw, tx)
	must(t, tx.Commit())
	if r := <-done; r.err != nil || !r.ok {
		t.Fatalf("ConsumeOTP = %v, %v; want the code used", r.ok, r.err)
	}
	var email, pending sql.NullString
	var verified bool
	must(t, raw.QueryRowContext(ctx, `SELECT p.email, e.pending_email, e.email_verified FROM persons p
		JOIN enrollments e ON e.person_id = p.id AND e.tenant_id = 'ta' WHERE p.id = $1`, w.ID).Scan(&email, &pending, &verified))
	if email.Valid || pending.String != "new@example.com" || !verified {
		t.Errorf("after the race: person email %v, pending %v, verified %v; want no email, pending new@example.com, verified",
			email, pending, verified)
	}
}

// pgRaceRig is a PostgreSQL store with tenant "ta", and a plain connection
// to the same schema for the transaction a test holds open; it skips the
// test without PostgreSQL.
func pgRaceRig(t *testing.T) (*store.DB, *sql.DB) {
	t.Helper()
	url, ok := storetest.PostgresURL(t)
	if !ok {
		t.Skip("PostgreSQL only: SQLite runs one write transaction at a time")
	}
	db := openDB(t, url)
	mkTenant(t, db, "ta")
	raw, err := sql.Open("pgx", url)
	must(t, err)
	t.Cleanup(func() { raw.Close() })
	return db, raw
}

// waitForBlockedBy returns once a session waits on a lock that holder (the
// test's open transaction) holds: the call under test has reached the held
// row. Asking for that holder, not for any lock wait in the database, keeps
// other packages' tests on the same server from ending the wait early.
func waitForBlockedBy(t *testing.T, raw *sql.DB, holder *sql.Tx) {
	t.Helper()
	var pid int
	must(t, holder.QueryRowContext(t.Context(), `SELECT pg_backend_pid()`).Scan(&pid))
	deadline := time.Now().Add(10 * time.Second)
	for {
		var waiting int
		must(t, raw.QueryRowContext(t.Context(), `SELECT count(*) FROM pg_stat_activity
			WHERE $1::int = ANY(pg_blocking_pids(pid))`, pid).Scan(&waiting))
		if waiting > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("nothing waited on the held row within 10 s: the call under test did not touch it")
		}
		time.Sleep(time.Millisecond) // polling a condition, not timing the race
	}
}
