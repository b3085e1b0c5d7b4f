package kyc_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kycgate/kycgate/internal/benchcpu"
	"github.com/kycgate/kycgate/internal/kyc"
	"github.com/kycgate/kycgate/internal/store"
	"github.com/kycgate/kycgate/internal/store/storetest"
	"github.com/kycgate/kycgate/internal/webhook"
)

// BenchmarkDeliverWebhooks is one replica's webhook worker draining a
// backlog: claim a batch of 20 (the server's batch), sign each, POST it
// with the real sender to a receiver on loopback that answers 204, record
// each outcome, and claim again. It reports events delivered per second
// (the backlog over the wall time) and the process's CPU per event,
// signing, HTTP on both ends and store work included; on PostgreSQL the
// database server's own CPU is not in that figure.
func BenchmarkDeliverWebhooks(b *testing.B) {
	for _, engine := range []string{"sqlite", "postgres"} {
		b.Run(engine, func(b *testing.B) {
			url := storetest.SQLiteURL(b)
			if engine == "postgres" {
				var ok bool
				if url, ok = storetest.PostgresURL(b); !ok {
					b.Skip("no PostgreSQL")
				}
			}
			benchDeliver(b, url)
		})
	}
}

func benchDeliver(b *testing.B, url string) {
	ctx := context.Background()
	db, err := store.Open(ctx, url, store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	var got atomic.Int64
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}))
	b.Cleanup(rcv.Close)
	svc, err := kyc.NewService(kyc.Deps{Store: db, Mailer: &sessMailer{codes: map[string]string{}}, Provider: &sessProvider{},
		Webhooks: webhook.NewSender(webhook.Options{AllowPrivate: true})},
		kyc.Config{Secret: []byte(strings.Repeat("k", 32))})
	if err != nil {
		b.Fatal(err)
	}
	zero := 0
	tn, _, err := svc.CreateTenant(ctx, kyc.NewTenant{Name: "T", MonthlyQuota: &zero})
	if err != nil {
		b.Fatal(err)
	}
	if _, _, err := svc.AddWebhookEndpoint(ctx, tn.ID, rcv.URL+"/hooks", nil); err != nil {
		b.Fatal(err)
	}
	// The backlog, written as state changes write it (outbox row and
	// delivery in a transaction), 500 to a transaction so that setting up
	// is quick; it is not measured.
	body := []byte(`{"type":"email.verified","timestamp":"2026-03-10T09:00:00Z","data":{"email":"ann@example.com"}}`)
	created := time.Now().Add(-time.Second)
	for start := 0; start < b.N; start += 500 {
		var evs []kyc.OutboxEvent
		for i := start; i < min(start+500, b.N); i++ {
			evs = append(evs, kyc.OutboxEvent{ID: "msg_" + strconv.Itoa(i), TenantID: tn.ID, Type: kyc.EventEmailVerified,
				Body: body, CreatedAt: created})
		}
		if err := db.InTx(ctx, func(tx kyc.Tx) error { return tx.Emit(ctx, evs) }); err != nil {
			b.Fatal(err)
		}
	}

	b.ResetTimer()
	c0 := benchcpu.Used()
	done := 0
	for done < b.N {
		n, err := svc.DeliverWebhooks(ctx, 20)
		if err != nil {
			b.Fatal(err)
		}
		if n == 0 {
			b.Fatalf("nothing due with %d of %d delivered", done, b.N)
		}
		done += n
	}
	cpu := benchcpu.Used() - c0
	b.StopTimer()
	// Every claimed attempt reached the receiver and was answered 2xx:
	// otherwise the rate would count failures.
	if n := got.Load(); n != int64(b.N) {
		b.Fatalf("the receiver got %d requests for %d events", n, b.N)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	benchcpu.Report(b, cpu, b.N)
}
