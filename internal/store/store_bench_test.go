package store_test

// Benchmarks of the store's hot reads on SQLite, and of API-key lookup
// (kyc.Service.Authenticate: keyed hash + store lookup) against a real
// store. They run in CI with -benchtime 1x; see BENCHMARKS.md for figures.

import (
	"context"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/kycgate/kycgate/internal/kyc"
	"github.com/kycgate/kycgate/internal/store"
)

type perfMailer struct{}

func (perfMailer) SendCode(context.Context, kyc.CodeMail) error { return nil }

func perfDB(b *testing.B) *store.DB {
	b.Helper()
	db, err := store.Open(context.Background(), "sqlite:"+filepath.Join(b.TempDir(), "bench.db"), store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	return db
}

func perfService(b *testing.B, db *store.DB, ttl time.Duration) *kyc.Service {
	b.Helper()
	svc, err := kyc.NewService(kyc.Deps{Store: db, Mailer: perfMailer{}},
		kyc.Config{Secret: []byte("benchmark-secret-0123456789abcdefghijklmnop"), AuthCacheTTL: ttl})
	if err != nil {
		b.Fatal(err)
	}
	return svc
}

// BenchmarkAuthenticate is the API-key lookup every request makes: HMAC of
// the key, then the store's indexed lookup of key and tenant; with the
// optional cache (KYCGATE_AUTH_CACHE_TTL), the HMAC and a map read.
func BenchmarkAuthenticate(b *testing.B) {
	ctx := context.Background()
	for _, c := range []struct {
		name string
		ttl  time.Duration
	}{{"store", 0}, {"cached", time.Minute}} {
		b.Run(c.name, func(b *testing.B) {
			db := perfDB(b)
			svc := perfService(b, db, c.ttl)
			var keys []string
			for i := range 10 {
				_, key, err := svc.CreateTenant(ctx, kyc.NewTenant{Name: "t" + strconv.Itoa(i)})
				if err != nil {
					b.Fatal(err)
				}
				keys = append(keys, key)
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				i++
				if _, _, err := svc.Authenticate(ctx, keys[i%len(keys)]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// perfPeople enrolls n people with tenant "tn_bench", each with one
// session.
func perfPeople(b *testing.B, db *store.DB, n int) []string {
	b.Helper()
	ctx := context.Background()
	now := time.Now().UTC()
	if err := db.CreateTenant(ctx, kyc.Tenant{ID: "tn_bench", Name: "bench", KYCEnabled: true, CreatedAt: now},
		kyc.APIKey{ID: "key_bench", TenantID: "tn_bench", Hash: "h", Prefix: "kg_bench", CreatedAt: now}); err != nil {
		b.Fatal(err)
	}
	emails := make([]string, n)
	for i := range emails {
		emails[i] = "user" + strconv.Itoa(i) + "@example.com"
		e, _, err := db.PrepareEmail(ctx, "tn_bench", kyc.NewIDs{Person: "ps_" + strconv.Itoa(i), Enrollment: "en_" + strconv.Itoa(i)}, emails[i], now)
		if err != nil {
			b.Fatal(err)
		}
		p := kyc.Person{ID: e.PersonID}
		s := kyc.Session{ID: "se_" + strconv.Itoa(i), PersonID: p.ID, TenantID: "tn_bench", URL: "https://verify.didit.me/x",
			Status: kyc.StatusApproved, IPInfo: []kyc.IPInfo{{IPAddress: "203.0.113.7", IPCountry: "Portugal"}},
			Decision: []byte(`{"status":"Approved"}`), EventAt: now, CreatedAt: now, UpdatedAt: now, CheckedAt: now}
		if ok, err := db.ClaimSessionCreation(ctx, p.ID, "bench", now.Add(time.Minute), now); err != nil || !ok {
			b.Fatal(ok, err)
		}
		if err := db.InsertSession(ctx, s, "bench", nil); err != nil {
			b.Fatal(err)
		}
	}
	return emails
}

// BenchmarkStatusReads is the read GET /kyc/status makes with the key
// lookup (StatusRead), next to the separate reads it replaced: the
// key lookup, and FindEnrollmentLatest, itself replacing FindEnrollment
// and LatestSession.
func BenchmarkStatusReads(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour) // as a request's
	defer cancel()
	db := perfDB(b)
	emails := perfPeople(b, db, 100)
	b.Run("StatusRead", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			i++
			if t, _, s, err := db.StatusRead(ctx, "h", emails[i%len(emails)], ""); err != nil || t.ID == "" || s == nil {
				b.Fatal(s, err)
			}
		}
	})
	b.Run("TenantByKeyHash", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := db.TenantByKeyHash(ctx, "h"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("FindEnrollmentLatest", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			i++
			if _, s, err := db.FindEnrollmentLatest(ctx, "tn_bench", emails[i%len(emails)], ""); err != nil || s == nil {
				b.Fatal(s, err)
			}
		}
	})
	b.Run("FindEnrollment", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			i++
			if _, err := db.FindEnrollment(ctx, "tn_bench", emails[i%len(emails)], ""); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("LatestSession", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			i++
			if _, err := db.LatestSession(ctx, "ps_"+strconv.Itoa(i%len(emails))); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkPrepareEmail is POST /kyc/prepare's write transaction.
func BenchmarkPrepareEmail(b *testing.B) {
	ctx := context.Background()
	db := perfDB(b)
	perfPeople(b, db, 1)
	now := time.Now()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		s := strconv.Itoa(i)
		if _, _, err := db.PrepareEmail(ctx, "tn_bench", kyc.NewIDs{Person: "ps_new" + s, Enrollment: "en_new" + s}, "new"+s+"@example.com", now); err != nil {
			b.Fatal(err)
		}
	}
}
