package store_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/kycgate/kycgate/internal/benchcpu"
	"github.com/kycgate/kycgate/internal/kyc"
	"github.com/kycgate/kycgate/internal/store/storetest"
)

// BenchmarkApplyEventOutbox is a status change's write (ApplyEvent) and
// what the webhook outbox adds to it: nothing to emit (as before
// webhooks), no endpoint anywhere (one EXISTS, no audience read), and the
// tenant's endpoint (audience, event and delivery written in the change's
// transaction).
func BenchmarkApplyEventOutbox(b *testing.B) {
	for _, engine := range []string{"sqlite", "postgres"} {
		for _, variant := range []string{"no-fanout", "no-endpoints", "endpoint"} {
			b.Run(engine+"/"+variant, func(b *testing.B) {
				url := storetest.SQLiteURL(b)
				if engine == "postgres" {
					var ok bool
					if url, ok = storetest.PostgresURL(b); !ok {
						b.Skip("no PostgreSQL")
					}
				}
				benchApplyEvent(b, url, variant)
			})
		}
	}
}

func benchApplyEvent(b *testing.B, url, variant string) {
	ctx := context.Background()
	db := openDB(b, url)
	mkTenant(b, db, "ta")
	p := mkPerson(b, db, "ta", "ann@example.com")
	if variant == "endpoint" {
		mkEndpoint(b, db, "ta", "ep")
	}
	if ok, err := db.ClaimSessionCreation(ctx, p.ID, "tok", t0.Add(time.Minute), t0); err != nil || !ok {
		b.Fatal(ok, err)
	}
	s := newSession("s1", p.ID, t0)
	must(b, db.InsertSession(ctx, s, "tok", nil))
	n := 0
	var fan kyc.Fanout = func(a kyc.Audience) []kyc.OutboxEvent {
		var out []kyc.OutboxEvent
		for _, en := range a.Enrollments {
			n++
			out = append(out, outboxEvent("msg_"+strconv.Itoa(n), en.TenantID, kyc.EventStatusUpdated, t0))
		}
		return out
	}
	if variant == "no-fanout" {
		fan = nil
	}
	b.ReportAllocs()
	i := 0
	benchcpu.Loop(b, func() {
		i++
		if _, err := db.ApplyEvent(ctx, "ev"+strconv.Itoa(i), s, t0, fan); err != nil {
			b.Fatal(err)
		}
		s.Version++
	})
}
