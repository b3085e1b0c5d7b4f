package store_test

import (
	"database/sql"
	"testing"
	"time"

	"github.com/kycgate/kycgate/internal/kyc"
	"github.com/kycgate/kycgate/internal/store/storetest"
)

// On PostgreSQL, PrepareEmail is one statement whose parts see the tables
// as they were when it began. A person or enrollment another transaction
// commits while the statement waits on it is then neither inserted nor
// seen; the statement must look again and answer with it.
func TestPrepareEmailWaitsOutAnotherCommit(t *testing.T) {
	url, ok := storetest.PostgresURL(t)
	if !ok {
		t.Skip("PostgreSQL only: SQLite runs one write transaction at a time")
	}
	db := openDB(t, url)
	mkTenant(t, db, "ta")
	raw, err := sql.Open("pgx", url)
	must(t, err)
	defer raw.Close()
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
		done := make(chan result, 1)
		go func() {
			p, _, created, err := db.PrepareEmail(ctx, "ta", "ps_mine", tc.email, t0)
			done <- result{p, created, err}
		}()
		// Commit once PrepareEmail waits on our uncommitted row.
		for {
			var waiting int
			must(t, raw.QueryRowContext(ctx, `SELECT count(*) FROM pg_stat_activity
				WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&waiting))
			if waiting > 0 {
				break
			}
			select {
			case r := <-done:
				t.Fatalf("%s: PrepareEmail returned without waiting: %+v", tc.name, r)
			case <-time.After(time.Millisecond):
			}
		}
		must(t, tx.Commit())
		r := <-done
		if r.err != nil || r.p.ID != tc.other || r.p.Email != tc.email || r.created != tc.wantCreated {
			t.Errorf("%s: PrepareEmail = %+v, created %v, err %v; want %s, created %v", tc.name, r.p, r.created, r.err, tc.other, tc.wantCreated)
		}
	}
}
