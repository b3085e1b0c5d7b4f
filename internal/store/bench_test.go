package store_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kycgate/kycgate/internal/kyc"
	"github.com/kycgate/kycgate/internal/store/storetest"
)

// BenchmarkTenantByKeyHash is the lookup every API request makes.
func BenchmarkTenantByKeyHash(b *testing.B) {
	for _, e := range storetest.Engines(b) {
		b.Run(e.Name, func(b *testing.B) {
			db := openDB(b, e.URL)
			ctx := context.Background()
			for i := range 100 {
				id := fmt.Sprint("t", i)
				mkTenant(b, db, id)
				for k := range 9 {
					must(b, db.AddAPIKey(ctx, kyc.APIKey{ID: fmt.Sprint(id, "_", k), TenantID: id,
						Hash: fmt.Sprint("hash_", id, "_", k), Prefix: "kg", CreatedAt: t0}))
				}
			}
			b.Run("serial", func(b *testing.B) {
				for b.Loop() {
					if _, err := db.TenantByKeyHash(ctx, "hash_t42_7"); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("parallel", func(b *testing.B) {
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if _, err := db.TenantByKeyHash(ctx, "hash_t42_7"); err != nil {
							b.Error(err)
							return
						}
					}
				})
			})
		})
	}
}

// BenchmarkCountOTPAttempt is the write every verify-otp makes: "counted"
// is the one-statement path, "exhausted" the refusal (a failed conditional
// update, then a read for the reason).
func BenchmarkCountOTPAttempt(b *testing.B) {
	for _, e := range storetest.Engines(b) {
		b.Run(e.Name, func(b *testing.B) {
			db := openDB(b, e.URL)
			ctx := context.Background()
			mkTenant(b, db, "ta")
			p := mkPerson(b, db, "ta", "ann@example.com")
			q := mkPerson(b, db, "ta", "bob@example.com")
			pr, qr := kyc.CodeRef{TenantID: "ta", Address: p.Email}, kyc.CodeRef{TenantID: "ta", Address: q.Email}
			for _, ref := range []kyc.CodeRef{pr, qr} {
				ok, _, err := db.SaveOTP(ctx, kyc.OTPSend{CodeRef: ref, CodeHash: "h", Now: t0, LeaseUntil: at(otpLease),
					ExpiresAt: at(otpTTL), MinGap: otpGap, Window: otpWindow, MaxPerWindow: 5})
				if err != nil || !ok {
					b.Fatal(ok, err)
				}
			}
			b.Run("counted", func(b *testing.B) {
				for b.Loop() {
					if _, res, err := db.CountOTPAttempt(ctx, pr, 1<<30, t0); err != nil || res != kyc.OTPCounted {
						b.Fatal(res, err)
					}
				}
			})
			b.Run("exhausted", func(b *testing.B) {
				for b.Loop() {
					if _, res, err := db.CountOTPAttempt(ctx, qr, 0, t0); err != nil || res != kyc.OTPNoAttemptsLeft {
						b.Fatal(res, err)
					}
				}
			})
		})
	}
}

// BenchmarkHitRate is the rate-limit write every request of a limited key
// makes on PostgreSQL (SQLite deployments count in process): "spread" is
// many keys, "hot" one key that every request contends on.
func BenchmarkHitRate(b *testing.B) {
	for _, e := range storetest.Engines(b) {
		b.Run(e.Name, func(b *testing.B) {
			db := openDB(b, e.URL)
			ctx := context.Background()
			sec := t0.Add(time.Second)
			b.Run("serial", func(b *testing.B) {
				for b.Loop() {
					if _, _, err := db.HitRate(ctx, "serial", t0, sec); err != nil {
						b.Fatal(err)
					}
				}
			})
			var next atomic.Int64
			b.Run("spread", func(b *testing.B) {
				b.RunParallel(func(pb *testing.PB) {
					key := fmt.Sprint("spread", next.Add(1))
					for pb.Next() {
						if _, _, err := db.HitRate(ctx, key, t0, sec); err != nil {
							b.Error(err)
							return
						}
					}
				})
			})
			b.Run("hot", func(b *testing.B) {
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if _, _, err := db.HitRate(ctx, "hot", t0, sec); err != nil {
							b.Error(err)
							return
						}
					}
				})
			})
		})
	}
}
