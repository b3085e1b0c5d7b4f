package store_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/kycgate/kycgate/internal/kyc"
	"github.com/kycgate/kycgate/internal/store"
	"github.com/kycgate/kycgate/internal/store/storetest"
)

// t0 is the suite's "now". Times are stored in milliseconds, so every time
// used here is a whole number of milliseconds.
var t0 = time.Date(2030, 3, 15, 12, 0, 0, 0, time.UTC)

// at returns t0 + d.
func at(d time.Duration) time.Time { return t0.Add(d) }

// forEachEngine runs fn as a subtest named after each engine, each on its
// own fresh, migrated database.
func forEachEngine(t *testing.T, fn func(t *testing.T, db *store.DB)) {
	t.Helper()
	forEachEngineURL(t, func(t *testing.T, url string) { fn(t, openDB(t, url)) })
}

// forEachEngineURL is forEachEngine for tests that open databases themselves.
func forEachEngineURL(t *testing.T, fn func(t *testing.T, url string)) {
	t.Helper()
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) { fn(t, e.URL) })
	}
}

func openDB(tb testing.TB, url string) *store.DB {
	tb.Helper()
	db, err := store.Open(context.Background(), url, store.Options{})
	if err != nil {
		tb.Fatalf("open %s: %v", url, err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

func must(tb testing.TB, err error) {
	tb.Helper()
	if err != nil {
		tb.Fatal(err)
	}
}

// together runs fn(0) … fn(n-1) on n goroutines released at the same moment
// and waits for all of them.
func together(n int, fn func(i int)) {
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			fn(i)
		})
	}
	close(start)
	wg.Wait()
}

// warm opens n pooled connections, so that concurrent calls which follow
// start together instead of waiting for new connections one by one.
func warm(tb testing.TB, db *store.DB, n int) {
	tb.Helper()
	errs := make([]error, n)
	together(n, func(i int) { _, errs[i] = db.QuotaUsed(context.Background(), "warm", "0000-00") })
	noErrors(tb, errs)
}

// noErrors fails the test for every non-nil error in errs.
func noErrors(tb testing.TB, errs []error) {
	tb.Helper()
	for i, err := range errs {
		if err != nil {
			tb.Errorf("goroutine %d: %v", i, err)
		}
	}
}

func mkTenant(tb testing.TB, db *store.DB, id string) kyc.Tenant {
	tb.Helper()
	tn := kyc.Tenant{ID: id, Name: "Tenant " + id, KYCEnabled: true, MonthlyQuota: 100,
		RateLimitPerMinute: 600, CreatedAt: t0}
	must(tb, db.CreateTenant(context.Background(), tn, kyc.APIKey{
		ID: "key_" + id, TenantID: id, Hash: "hash_" + id, Prefix: "kg_" + id, CreatedAt: t0}))
	return tn
}

// mkPerson registers email at the tenant and returns its person.
func mkPerson(tb testing.TB, db *store.DB, tenantID, email string) kyc.Person {
	tb.Helper()
	e, _, err := db.PrepareEmail(context.Background(), tenantID,
		kyc.NewIDs{Person: "ps_" + email, Enrollment: "en_" + tenantID + "_" + email}, email, t0)
	must(tb, err)
	return kyc.Person{ID: e.PersonID, Email: email}
}

func enrollmentOf(tb testing.TB, db *store.DB, tenantID, email string) kyc.Enrollment {
	tb.Helper()
	e, err := db.FindEnrollment(context.Background(), tenantID, email, "")
	must(tb, err)
	return e
}

// mkWallet registers wallet at the tenant as prepare-wallet's transaction
// does (the wallet's person, found or made, and the tenant's enrollment by
// it), with pending as its pending email, and returns the enrollment.
func mkWallet(tb testing.TB, db *store.DB, tenantID, wallet, pending string) kyc.Enrollment {
	tb.Helper()
	var e kyc.Enrollment
	must(tb, db.InTx(context.Background(), func(tx kyc.Tx) error {
		ctx := context.Background()
		p, err := tx.PersonByWallet(ctx, wallet)
		if isNotFound(err) {
			p = kyc.Person{ID: "ps_" + wallet, Wallet: wallet, WalletChain: "evm"}
			err = tx.InsertPerson(ctx, p, t0)
		}
		if err != nil {
			return err
		}
		e, err = tx.EnrollmentByWallet(ctx, tenantID, wallet)
		if isNotFound(err) {
			e = kyc.Enrollment{ID: "en_" + tenantID + "_" + wallet, TenantID: tenantID, PersonID: p.ID, Wallet: wallet, PendingEmail: pending}
			return tx.InsertEnrollment(ctx, e, t0)
		}
		if err != nil {
			return err
		}
		e.PendingEmail = pending
		return tx.UpdateEnrollment(ctx, e)
	}))
	return e
}

func isNotFound(err error) bool { return errors.Is(err, kyc.ErrNotFound) }
func isConflict(err error) bool { return errors.Is(err, kyc.ErrConflict) }
