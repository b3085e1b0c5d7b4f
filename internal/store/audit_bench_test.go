package store_test

import (
	"context"
	"strconv"
	"testing"

	"github.com/kycgate/kycgate/internal/kyc"
	"github.com/kycgate/kycgate/internal/store/storetest"
)

// BenchmarkAudit is what the audit log adds to every state change: append
// is the one INSERT a request makes (on a table already holding entries,
// as in service); seal is the sealer's work per entry, in batches of 500
// as the server seals, paid in the background loop, not by a request.
func BenchmarkAudit(b *testing.B) {
	for _, engine := range []string{"sqlite", "postgres"} {
		for _, op := range []string{"append", "seal"} {
			b.Run(engine+"/"+op, func(b *testing.B) {
				url := storetest.SQLiteURL(b)
				if engine == "postgres" {
					var ok bool
					if url, ok = storetest.PostgresURL(b); !ok {
						b.Skip("no PostgreSQL")
					}
				}
				benchAudit(b, url, op)
			})
		}
	}
}

func benchAudit(b *testing.B, url, op string) {
	ctx := context.Background()
	db := openDB(b, url)
	e := kyc.AuditEntry{TenantID: "tn_bench", At: t0, Actor: "api_key:key_abcdefghijklmnopqrstuvwxyz",
		Action: kyc.AuditEmailVerify, Subject: kyc.AuditHash(kyc.AuditEntry{}), Result: "ok", RequestID: "0123456789abcdef01234567"}
	for i := range 2000 { // a table with history, sealed
		e.RequestID = strconv.Itoa(i)
		must(b, db.AppendAudit(ctx, e))
	}
	for {
		n, err := db.SealAudit(ctx, 500, kyc.AuditHash)
		must(b, err)
		if n == 0 {
			break
		}
	}
	b.ReportAllocs()
	if op == "append" {
		for b.Loop() {
			must(b, db.AppendAudit(ctx, e))
		}
		return
	}
	// Seal: per entry, appending a batch outside the timer.
	const batch = 500
	b.ResetTimer()
	for i := 0; i < b.N; i += batch {
		b.StopTimer()
		for range min(batch, b.N-i) {
			must(b, db.AppendAudit(ctx, e))
		}
		b.StartTimer()
		if _, err := db.SealAudit(ctx, batch, kyc.AuditHash); err != nil {
			b.Fatal(err)
		}
	}
}
