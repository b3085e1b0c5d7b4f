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
	t.Parallel()
	db, raw := pgRaceRig(t)
	ctx := t.Context()

	for _, tc := range []struct {
		name, email, other string
		enroll             bool // the other transaction registers the address here too
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
			_, err = tx.ExecContext(ctx, `INSERT INTO enrollments (id, tenant_id, person_id, email, created_at)
				VALUES ('en_other', 'ta', $1, $2, 0)`, tc.other, tc.email)
			must(t, err)
		}
		e, created, err := blockedCall(t, raw, tx, func() (kyc.Enrollment, bool, error) {
			return db.PrepareEmail(ctx, "ta", ids("ps_mine", "en_mine"), tc.email, t0)
		})
		if err != nil || e.PersonID != tc.other || e.Email != tc.email || created != tc.wantCreated {
			t.Errorf("%s: PrepareEmail = %+v, created %v, err %v; want person %s, created %v", tc.name, e, created, err, tc.other, tc.wantCreated)
		}
	}
}

// A link proven at another tenant merges the person who has an address
// into the wallet's person while PrepareEmail registers that address: the
// statement read the old person, and its enrollment's foreign key waits
// for the merge, then finds that person gone. It must look again and
// register the address on the person it was merged into.
func TestPrepareEmailWaitsOutAMerge(t *testing.T) {
	t.Parallel()
	db, raw := pgRaceRig(t)
	ctx := t.Context()
	mkTenant(t, db, "tb")
	ann := mkPerson(t, db, "ta", "ann@example.com")
	w := mkWallet(t, db, "ta", evmW1, "ann@example.com")

	tx, err := raw.BeginTx(ctx, nil)
	must(t, err)
	for _, st := range []struct {
		q    string
		args []any
	}{
		{`SELECT id FROM persons WHERE id = $1 FOR UPDATE`, []any{ann.ID}},
		{`UPDATE enrollments SET person_id = $2 WHERE person_id = $1`, []any{ann.ID, w.PersonID}},
		{`DELETE FROM persons WHERE id = $1`, []any{ann.ID}},
		{`UPDATE persons SET email = 'ann@example.com' WHERE id = $1`, []any{w.PersonID}},
	} {
		_, err = tx.ExecContext(ctx, st.q, st.args...)
		must(t, err)
	}
	e, created, err := blockedCall(t, raw, tx, func() (kyc.Enrollment, bool, error) {
		return db.PrepareEmail(ctx, "tb", ids("ps_new", "en_new"), "ann@example.com", t0)
	})
	if err != nil || !created || e.PersonID != w.PersonID || e.TenantID != "tb" {
		t.Errorf("PrepareEmail = %+v, created %v, err %v; want a new enrollment of %s", e, created, err, w.PersonID)
	}
}

// A create that resolved a person claims it while a link merges that
// person away: the claim's foreign key waits for the person's row, and
// after the merge commits the claim fails as "gone" (ErrNotFound, so the
// create resolves the user again) instead of creating a session for a
// person that no longer exists.
func TestClaimWaitsOutAMerge(t *testing.T) {
	t.Parallel()
	db, raw := pgRaceRig(t)
	ctx := t.Context()
	ann := mkPerson(t, db, "ta", "ann@example.com")
	w := mkWallet(t, db, "ta", evmW1, "ann@example.com")

	tx, err := raw.BeginTx(ctx, nil)
	must(t, err)
	_, err = tx.ExecContext(ctx, `SELECT id FROM persons WHERE id = $1 FOR UPDATE`, ann.ID)
	must(t, err)
	_, err = tx.ExecContext(ctx, `UPDATE enrollments SET person_id = $2 WHERE person_id = $1`, ann.ID, w.PersonID)
	must(t, err)
	_, err = tx.ExecContext(ctx, `DELETE FROM persons WHERE id = $1`, ann.ID)
	must(t, err)
	won, _, err := blockedCall(t, raw, tx, func() (bool, bool, error) {
		ok, err := db.ClaimSessionCreation(ctx, ann.ID, "late", at(time.Minute), t0)
		return ok, false, err
	})
	if won || !isNotFound(err) {
		t.Errorf("claim for the person merged away = %v, %v; want ErrNotFound", won, err)
	}
}

// blockedCall runs call while the test holds tx open, commits tx once call
// waits on a row tx holds, and returns what call returned.
func blockedCall[A, B any](t *testing.T, raw *sql.DB, tx *sql.Tx, call func() (A, B, error)) (A, B, error) {
	t.Helper()
	type result struct {
		a   A
		b   B
		err error
	}
	done := make(chan result, 1) // buffered: the goroutine never blocks on it
	go func() {
		a, b, err := call()
		done <- result{a, b, err}
	}()
	waitForBlockedBy(t, raw, tx)
	must(t, tx.Commit())
	r := <-done
	return r.a, r.b, r.err
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
