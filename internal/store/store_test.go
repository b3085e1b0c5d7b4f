package store_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kycgate/kycgate/internal/kyc"
	"github.com/kycgate/kycgate/internal/store"
)

func TestOpenRejectsBadURLs(t *testing.T) {
	for _, url := range []string{"", "mysql://x", "sqlite:", "sqlite://", "file:x.db"} {
		if db, err := store.Open(t.Context(), url, store.Options{}); err == nil {
			db.Close()
			t.Errorf("Open(%q) succeeded", url)
		}
	}
}

func TestSQLitePath(t *testing.T) {
	for in, want := range map[string]string{
		"sqlite:data/kycgate.db": "data/kycgate.db",
		"sqlite:///abs/k.db":     "/abs/k.db",
		"sqlite://rel/k.db":      "rel/k.db",
		"sqlite:/abs/k.db":       "/abs/k.db",
		"sqlite:./data/x.db":     "./data/x.db",
	} {
		if got := store.SQLitePath(in); got != want {
			t.Errorf("SQLitePath(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestDialectAndPing(t *testing.T) {
	forEachEngineURL(t, func(t *testing.T, url string) {
		db, err := store.Open(t.Context(), url, store.Options{})
		must(t, err)
		want := store.SQLite
		if strings.HasPrefix(url, "postgres") {
			want = store.Postgres
		}
		if db.Dialect() != want {
			t.Errorf("Dialect() = %q, want %q", db.Dialect(), want)
		}
		must(t, db.Ping(t.Context()))
		must(t, db.Close())
		if err := db.Ping(t.Context()); err == nil {
			t.Error("Ping after Close succeeded")
		}
	})
}

func TestMigrateTwiceIsNoOp(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db *store.DB) {
		ctx := t.Context()
		mkTenant(t, db, "ta")
		must(t, db.Migrate(ctx))
		must(t, db.Migrate(ctx))
		ts, err := db.ListTenants(ctx)
		must(t, err)
		if len(ts) != 1 || ts[0].ID != "ta" {
			t.Errorf("tenants after re-running migrations: %+v", ts)
		}
	})
}

// Replicas that start together migrate one at a time; all succeed.
func TestMigrateConcurrently(t *testing.T) {
	forEachEngineURL(t, func(t *testing.T, url string) {
		ctx := t.Context()
		const n = 3
		dbs := make([]*store.DB, n)
		for i := range dbs {
			db, err := store.OpenNoMigrate(ctx, url, store.Options{})
			must(t, err)
			t.Cleanup(func() { db.Close() })
			dbs[i] = db
		}
		errs := make([]error, n)
		together(n, func(i int) { errs[i] = dbs[i].Migrate(ctx) })
		noErrors(t, errs)
		mkTenant(t, dbs[0], "ta") // the schema is there
		for i, db := range dbs {
			if _, err := db.TenantByKeyHash(ctx, "hash_ta"); err != nil {
				t.Errorf("replica %d: %v", i, err)
			}
		}
	})
}

func TestDataSurvivesReopen(t *testing.T) {
	forEachEngineURL(t, func(t *testing.T, url string) {
		ctx := t.Context()
		db, err := store.Open(ctx, url, store.Options{})
		must(t, err)
		mkTenant(t, db, "ta")
		mkPerson(t, db, "ta", "ann@example.com")
		ok, err := db.ReserveQuota(ctx, "ta", "2030-03", 5)
		must(t, err)
		if !ok {
			t.Fatal("ReserveQuota refused")
		}
		must(t, db.Close())

		db = openDB(t, url)
		if _, err := db.TenantByKeyHash(ctx, "hash_ta"); err != nil {
			t.Errorf("tenant after reopen: %v", err)
		}
		if _, _, err := db.FindEnrollment(ctx, "ta", "ann@example.com", ""); err != nil {
			t.Errorf("enrollment after reopen: %v", err)
		}
		if n, err := db.QuotaUsed(ctx, "ta", "2030-03"); err != nil || n != 1 {
			t.Errorf("QuotaUsed after reopen = %d, %v; want 1", n, err)
		}
	})
}

func TestHitRate(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db *store.DB) {
		ctx := t.Context()
		type counts struct{ min, sec int }
		hit := func(key string, minute, second time.Time) counts {
			t.Helper()
			m, s, err := db.HitRate(ctx, key, minute, second)
			must(t, err)
			return counts{m, s}
		}
		m1, m2 := t0, t0.Add(time.Minute)
		s1, s2, s3 := m1, m1.Add(time.Second), m2
		for want := 1; want <= 3; want++ {
			if got := hit("k1", m1, s1); got != (counts{want, want}) {
				t.Errorf("hit %d in the first windows = %+v", want, got)
			}
		}
		if got := hit("k2", m1, s1); got != (counts{1, 1}) {
			t.Errorf("another key starts at %+v, want {1 1}", got)
		}
		if got := hit("k1", m1, s2); got != (counts{4, 1}) {
			t.Errorf("next second, same minute = %+v, want {4 1}", got)
		}
		if got := hit("k1", m2, s3); got != (counts{1, 1}) {
			t.Errorf("first hit of the next minute = %+v, want {1 1}", got)
		}
		if got := hit("k1", m2, s3); got != (counts{2, 2}) {
			t.Errorf("second hit of the next minute = %+v, want {2 2}", got)
		}
		if got := hit("k2", m1, s1); got != (counts{2, 2}) {
			t.Errorf("key k2 = %+v, want {2 2} (k1's new windows must not touch it)", got)
		}
		// A replica whose clock lags still counts in the current windows
		// rather than resetting them.
		if got := hit("k1", m1, s2); got != (counts{3, 3}) {
			t.Errorf("hit stamped with the previous windows = %+v, want {3 3} (counted in the current ones)", got)
		}
		if got := hit("k1", m2, s3); got != (counts{4, 4}) {
			t.Errorf("current windows after a lagging hit = %+v, want {4 4}", got)
		}

		t.Run("concurrent", func(t *testing.T) {
			// Every hit takes both rows of one key: none may be lost,
			// counted twice, or deadlock against another.
			const n = 100
			mins, secs := make([]int, n), make([]int, n)
			errs := make([]error, n)
			together(n, func(i int) { mins[i], secs[i], errs[i] = db.HitRate(ctx, "hot", m1, s1) })
			noErrors(t, errs)
			slices.Sort(mins)
			slices.Sort(secs)
			for i := range n {
				if mins[i] != i+1 || secs[i] != i+1 {
					t.Fatalf("the %d concurrent hits returned minutes %v and seconds %v; want each of 1..%d once in both", n, mins, secs, n)
				}
			}
			if last := hit("hot", m1, s1); last != (counts{n + 1, n + 1}) {
				t.Errorf("counts after %d concurrent hits = %+v, want {%d %d}", n, last, n+1, n+1)
			}
		})
	})
}

func TestPersonsAreShared(t *testing.T) {
	// A person is found by email from any tenant that enrolled them, and
	// FindEnrollment answers only for tenants that did.
	forEachEngine(t, func(t *testing.T, db *store.DB) {
		ctx := t.Context()
		mkTenant(t, db, "ta")
		mkTenant(t, db, "tb")
		mkTenant(t, db, "tc")
		p := mkPerson(t, db, "ta", "ann@example.com")
		q := mkPerson(t, db, "tb", "ann@example.com")
		if p.ID != q.ID {
			t.Errorf("one email, two persons: %s and %s", p.ID, q.ID)
		}
		if _, _, err := db.FindEnrollment(ctx, "tc", "ann@example.com", ""); !isNotFound(err) {
			t.Errorf("tenant that never enrolled the person finds them: err = %v", err)
		}
	})
}

func TestContextCancelled(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db *store.DB) {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if _, err := db.ReserveQuota(ctx, "ta", "2030-03", 5); err == nil {
			t.Error("ReserveQuota with a cancelled context succeeded")
		}
		if err := db.CreateTenant(ctx, kyc.Tenant{ID: "x", CreatedAt: t0}, kyc.APIKey{ID: "x", TenantID: "x", Hash: "x", CreatedAt: t0}); err == nil {
			t.Error("CreateTenant with a cancelled context succeeded")
		}
	})
}
