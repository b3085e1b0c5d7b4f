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
	t.Parallel()
	for _, url := range []string{"", "mysql://x", "sqlite:", "sqlite://", "file:x.db"} {
		if db, err := store.Open(t.Context(), url, store.Options{}); err == nil {
			db.Close()
			t.Errorf("Open(%q) succeeded", url)
		}
	}
}

func TestSQLitePath(t *testing.T) {
	t.Parallel()
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
	t.Parallel()
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
	t.Parallel()
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
	t.Parallel()
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
	t.Parallel()
	forEachEngineURL(t, func(t *testing.T, url string) {
		ctx := t.Context()
		db, err := store.Open(ctx, url, store.Options{})
		must(t, err)
		mkTenant(t, db, "ta")
		ann := mkPerson(t, db, "ta", "ann@example.com")
		q := kyc.QuotaHold{PersonID: ann.ID, Token: "tok", TenantID: "ta", Month: "2030-03"}
		if ok, err := db.ClaimSessionCreation(ctx, ann.ID, q.Token, at(time.Hour), t0); err != nil || !ok {
			t.Fatalf("claim = %v, %v", ok, err)
		}
		ok, err := db.ReserveQuota(ctx, q, 5)
		must(t, err)
		if !ok {
			t.Fatal("ReserveQuota refused")
		}
		must(t, db.Close())

		db = openDB(t, url)
		if _, err := db.TenantByKeyHash(ctx, "hash_ta"); err != nil {
			t.Errorf("tenant after reopen: %v", err)
		}
		if _, err := db.FindEnrollment(ctx, "ta", "ann@example.com", ""); err != nil {
			t.Errorf("enrollment after reopen: %v", err)
		}
		if n, err := db.QuotaUsed(ctx, "ta", "2030-03"); err != nil || n != 1 {
			t.Errorf("QuotaUsed after reopen = %d, %v; want 1", n, err)
		}
	})
}

func TestHitRate(t *testing.T) {
	t.Parallel()
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
		for _, h := range []struct {
			why            string
			key            string
			minute, second time.Time
			want           counts
		}{
			{"first hit", "k1", m1, s1, counts{1, 1}},
			{"second hit", "k1", m1, s1, counts{2, 2}},
			{"third hit", "k1", m1, s1, counts{3, 3}},
			{"another key starts at one", "k2", m1, s1, counts{1, 1}},
			{"next second, same minute", "k1", m1, s2, counts{4, 1}},
			{"first hit of the next minute", "k1", m2, s3, counts{1, 1}},
			{"second hit of the next minute", "k1", m2, s3, counts{2, 2}},
			{"k1's new windows leave k2's alone", "k2", m1, s1, counts{2, 2}},
			// A replica whose clock lags still counts in the current
			// windows rather than resetting them.
			{"hit stamped with the previous windows", "k1", m1, s2, counts{3, 3}},
			{"current windows after a lagging hit", "k1", m2, s3, counts{4, 4}},
		} {
			if got := hit(h.key, h.minute, h.second); got != h.want {
				t.Errorf("%s: %+v, want %+v", h.why, got, h.want)
			}
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
	t.Parallel()
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
		if _, err := db.FindEnrollment(ctx, "tc", "ann@example.com", ""); !isNotFound(err) {
			t.Errorf("tenant that never enrolled the person finds them: err = %v", err)
		}
	})
}

func TestContextCancelled(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, db *store.DB) {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if _, err := db.ReserveQuota(ctx, kyc.QuotaHold{PersonID: "p", Token: "t", TenantID: "ta", Month: "2030-03"}, 5); err == nil {
			t.Error("ReserveQuota with a cancelled context succeeded")
		}
		if err := db.CreateTenant(ctx, kyc.Tenant{ID: "x", CreatedAt: t0}, kyc.APIKey{ID: "x", TenantID: "x", Hash: "x", CreatedAt: t0}); err == nil {
			t.Error("CreateTenant with a cancelled context succeeded")
		}
	})
}
