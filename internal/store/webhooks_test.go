package store_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/kycgate/kycgate/internal/kyc"
	"github.com/kycgate/kycgate/internal/store"
)

// mkEndpoint gives tenant an endpoint subscribed to events (nil: all).
func mkEndpoint(tb testing.TB, db *store.DB, tenantID, id string, events ...string) {
	tb.Helper()
	must(tb, db.CreateWebhookEndpoint(context.Background(), kyc.WebhookEndpoint{ID: id, TenantID: tenantID,
		URL: "https://hooks.example/" + id, Events: events, Secret: "sealed-" + id, CreatedAt: t0}))
}

func outboxEvent(id, tenantID, typ string, at time.Time) kyc.OutboxEvent {
	return kyc.OutboxEvent{ID: id, TenantID: tenantID, Type: typ, Body: []byte(`{"type":"` + typ + `"}`), CreatedAt: at}
}

// emitNow writes events in a transaction of their own.
func emitNow(tb testing.TB, db *store.DB, events ...kyc.OutboxEvent) {
	tb.Helper()
	must(tb, db.InTx(context.Background(), func(tx kyc.Tx) error { return tx.Emit(context.Background(), events) }))
}

// deliveryStates maps event id to the delivery's state at an endpoint.
func deliveryStates(tb testing.TB, db *store.DB, tenantID, endpointID string) map[string]string {
	tb.Helper()
	recs, err := db.ListDeliveries(context.Background(), tenantID, endpointID, 1000)
	must(tb, err)
	out := map[string]string{}
	for _, r := range recs {
		out[r.EventID] = r.State
	}
	return out
}

// fanTo emits one event per enrollment of the audience's person, to its
// tenant, recording the audience it was given.
func fanTo(typ string, got *kyc.Audience) kyc.Fanout {
	return func(a kyc.Audience) []kyc.OutboxEvent {
		*got = a
		var out []kyc.OutboxEvent
		for _, e := range a.Enrollments {
			out = append(out, outboxEvent("msg_"+typ+"_"+e.ID, e.TenantID, typ, t0))
		}
		return out
	}
}

func TestOutboxWrittenWithItsChange(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, db *store.DB) {
		ctx := t.Context()
		ann, _ := sessionFixture(t, db)
		mkEndpoint(t, db, "ta", "ep_all")
		mkEndpoint(t, db, "ta", "ep_links", kyc.EventIdentityLinked)
		var aud kyc.Audience

		// InsertSession: written with the session.
		s := newSession("s1", ann.ID, t0)
		if ok, err := db.ClaimSessionCreation(ctx, ann.ID, "tok", at(time.Minute), t0); err != nil || !ok {
			t.Fatalf("claim = %v, %v", ok, err)
		}
		must(t, db.InsertSession(ctx, s, "tok", fanTo(kyc.EventSessionCreated, &aud)))
		if len(aud.Enrollments) != 1 || aud.Enrollments[0].TenantID != "ta" {
			t.Fatalf("InsertSession's audience = %+v, want ann's one enrollment", aud)
		}
		// Refused (the claim is gone): nothing written.
		s2 := newSession("s2", ann.ID, at(time.Second))
		if err := db.InsertSession(ctx, s2, "tok", fanTo("refused", &aud)); !isConflict(err) {
			t.Fatalf("InsertSession without a claim = %v, want ErrConflict", err)
		}

		// ApplyEvent: written with the change, not for a duplicate, not
		// when the compare-and-set fails.
		next := s
		next.Status = kyc.StatusApproved
		dup, err := db.ApplyEvent(ctx, "ev1", next, at(time.Second), fanTo(kyc.EventStatusUpdated, &aud))
		must(t, err)
		if dup || !aud.Latest {
			t.Fatalf("ApplyEvent dup=%v audience.Latest=%v, want a new event on the latest session", dup, aud.Latest)
		}
		if dup, err := db.ApplyEvent(ctx, "ev1", next, at(time.Second), fanTo("dup", &aud)); err != nil || !dup {
			t.Fatalf("duplicate ApplyEvent = %v, %v", dup, err)
		}
		if _, err := db.ApplyEvent(ctx, "ev2", next, at(time.Second), fanTo("stale", &aud)); !isConflict(err) {
			t.Fatalf("stale ApplyEvent = %v, want ErrConflict", err)
		}

		// A transaction that fails after emitting leaves nothing behind.
		boom := errors.New("boom")
		err = db.InTx(ctx, func(tx kyc.Tx) error {
			if err := tx.Emit(ctx, []kyc.OutboxEvent{outboxEvent("msg_rolled_back", "ta", kyc.EventIdentityLinked, t0)}); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("InTx = %v", err)
		}
		// ConsumeOTP: written with the proof.
		code := kyc.CodeRef{TenantID: "ta", Address: "bob@example.com"}
		saveCode(t, db, code, "h", t0)
		if ok, err := db.ConsumeOTP(ctx, code, "h", fanTo(kyc.EventEmailVerified, &aud)); err != nil || !ok {
			t.Fatalf("ConsumeOTP = %v, %v", ok, err)
		}
		if len(aud.Enrollments) != 1 || !aud.Enrollments[0].EmailVerified || aud.Enrollments[0].Email != "bob@example.com" {
			t.Fatalf("ConsumeOTP's audience = %+v, want bob's enrollment, verified", aud)
		}

		want := map[string]string{
			"msg_kyc.session.created_en_ta_ann@example.com": kyc.DeliveryPending,
			"msg_kyc.status.updated_en_ta_ann@example.com":  kyc.DeliveryPending,
			"msg_email.verified_en_ta_bob@example.com":      kyc.DeliveryPending,
		}
		if got := deliveryStates(t, db, "ta", "ep_all"); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("ep_all deliveries = %v\nwant %v", got, want)
		}
		if got := deliveryStates(t, db, "ta", "ep_links"); len(got) != 0 {
			t.Errorf("ep_links (identity.linked only) got %v", got)
		}
	})
}

// saveCode stores a live own code for c with hash h.
func saveCode(tb testing.TB, db *store.DB, c kyc.CodeRef, h string, now time.Time) {
	tb.Helper()
	ok, _, err := db.SaveOTP(context.Background(), kyc.OTPSend{CodeRef: c, CodeHash: h, Now: now, LeaseUntil: now.Add(5 * time.Second),
		ExpiresAt: now.Add(10 * time.Minute), MinGap: time.Minute, Window: time.Hour, MaxPerWindow: 5})
	if err != nil || !ok {
		tb.Fatalf("SaveOTP = %v, %v", ok, err)
	}
}

func TestEmitOnlyWhereSubscribed(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, db *store.DB) {
		mkTenant(t, db, "ta")
		mkTenant(t, db, "tb")
		mkEndpoint(t, db, "ta", "ep_a")
		mkEndpoint(t, db, "tb", "ep_b", kyc.EventWalletVerified)
		emitNow(t, db, outboxEvent("msg_1", "ta", kyc.EventEmailVerified, t0),
			outboxEvent("msg_2", "tb", kyc.EventEmailVerified, t0), // tb is not subscribed
			outboxEvent("msg_3", "tb", kyc.EventWalletVerified, t0))
		if got := deliveryStates(t, db, "ta", "ep_a"); len(got) != 1 || got["msg_1"] == "" {
			t.Errorf("ep_a = %v, want msg_1", got)
		}
		if got := deliveryStates(t, db, "tb", "ep_b"); len(got) != 1 || got["msg_3"] == "" {
			t.Errorf("ep_b = %v, want msg_3", got)
		}
		// Another tenant's endpoint's log is not readable through tb.
		if got := deliveryStates(t, db, "tb", "ep_a"); len(got) != 0 {
			t.Errorf("tb reads ep_a's log: %v", got)
		}
	})
}

func TestClaimDeliveriesLease(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, db *store.DB) {
		ctx := t.Context()
		mkTenant(t, db, "ta")
		mkEndpoint(t, db, "ta", "ep")
		emitNow(t, db, outboxEvent("msg_1", "ta", kyc.EventEmailVerified, t0))
		lease := 30 * time.Second

		if ds, err := db.ClaimDeliveries(ctx, at(-time.Second), at(lease), "early", 10); err != nil || len(ds) != 0 {
			t.Fatalf("claim before due = %v, %v", ds, err)
		}
		ds, err := db.ClaimDeliveries(ctx, t0, at(lease), "w1", 10)
		must(t, err)
		if len(ds) != 1 || ds[0].Attempt != 1 || ds[0].URL != "https://hooks.example/ep" || ds[0].Secret != "sealed-ep" ||
			string(ds[0].Body) != `{"type":"email.verified"}` || ds[0].TenantID != "ta" || ds[0].Type != kyc.EventEmailVerified {
			t.Fatalf("claim = %+v, want msg_1's first attempt", ds)
		}
		// Leased: nobody else gets it until the lease lapses.
		if ds, err := db.ClaimDeliveries(ctx, at(lease-time.Millisecond), at(2*lease), "w2", 10); err != nil || len(ds) != 0 {
			t.Fatalf("claim during the lease = %v, %v", ds, err)
		}
		// w1 died: at the lease's end the delivery is due again.
		ds, err = db.ClaimDeliveries(ctx, at(lease), at(2*lease), "w2", 10)
		must(t, err)
		if len(ds) != 1 || ds[0].Attempt != 2 {
			t.Fatalf("claim after the lease = %+v, want attempt 2", ds)
		}
		// The dead worker's late outcome is refused; the holder's counts.
		late := kyc.DeliveryOutcome{EventID: "msg_1", EndpointID: "ep", Token: "w1", At: at(lease), State: kyc.DeliveryDelivered, Status: 200}
		if err := db.FinishDelivery(ctx, late); !isConflict(err) {
			t.Fatalf("finish by a lapsed holder = %v, want ErrConflict", err)
		}
		fail := kyc.DeliveryOutcome{EventID: "msg_1", EndpointID: "ep", Token: "w2", At: at(lease), State: kyc.DeliveryPending,
			NextAt: at(lease + time.Minute), Status: 503, Error: "HTTP 503"}
		must(t, db.FinishDelivery(ctx, fail))
		eps, err := db.ListWebhookEndpoints(ctx, "ta")
		must(t, err)
		if eps[0].FailingSince == nil || !eps[0].FailingSince.Equal(at(lease)) {
			t.Errorf("failing_since = %v, want %v", eps[0].FailingSince, at(lease))
		}
		if ds, _ := db.ClaimDeliveries(ctx, at(lease+time.Minute-time.Millisecond), at(3*lease), "w3", 10); len(ds) != 0 {
			t.Fatalf("claimed before the retry is due: %+v", ds)
		}
		ds, err = db.ClaimDeliveries(ctx, at(lease+time.Minute), at(3*lease), "w3", 10)
		must(t, err)
		if len(ds) != 1 || ds[0].Attempt != 3 || ds[0].FailingSince == nil {
			t.Fatalf("retry claim = %+v", ds)
		}
		ok := kyc.DeliveryOutcome{EventID: "msg_1", EndpointID: "ep", Token: "w3", At: at(2 * time.Minute), State: kyc.DeliveryDelivered, Status: 204}
		must(t, db.FinishDelivery(ctx, ok))
		if ds, _ := db.ClaimDeliveries(ctx, at(time.Hour), at(2*time.Hour), "w4", 10); len(ds) != 0 {
			t.Fatalf("a delivered event was claimed again: %+v", ds)
		}
		eps, _ = db.ListWebhookEndpoints(ctx, "ta")
		if eps[0].FailingSince != nil {
			t.Errorf("failing_since = %v after a success, want none", eps[0].FailingSince)
		}
		recs, _ := db.ListDeliveries(ctx, "ta", "ep", 10)
		if len(recs) != 1 || recs[0].State != kyc.DeliveryDelivered || recs[0].Attempts != 3 || recs[0].LastStatus != 204 {
			t.Errorf("log = %+v", recs)
		}
	})
}

func TestDisabledEndpointIsNotClaimed(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, db *store.DB) {
		ctx := t.Context()
		mkTenant(t, db, "ta")
		mkEndpoint(t, db, "ta", "ep")
		emitNow(t, db, outboxEvent("msg_1", "ta", kyc.EventEmailVerified, t0), outboxEvent("msg_2", "ta", kyc.EventEmailVerified, t0))
		ds, err := db.ClaimDeliveries(ctx, t0, at(time.Minute), "w1", 1)
		must(t, err)
		must(t, db.FinishDelivery(ctx, kyc.DeliveryOutcome{EventID: ds[0].EventID, EndpointID: "ep", Token: "w1", At: t0,
			State: kyc.DeliveryFailed, Status: 410, Error: "HTTP 410", Disable: "the endpoint answered 410 Gone"}))
		eps, _ := db.ListWebhookEndpoints(ctx, "ta")
		if eps[0].DisabledAt == nil || eps[0].DisabledReason == "" {
			t.Fatalf("endpoint not disabled: %+v", eps[0])
		}
		if ds, _ := db.ClaimDeliveries(ctx, at(time.Hour), at(2*time.Hour), "w2", 10); len(ds) != 0 {
			t.Fatalf("claimed for a disabled endpoint: %+v", ds)
		}
		// New events are not queued for it either.
		emitNow(t, db, outboxEvent("msg_3", "ta", kyc.EventEmailVerified, t0))
		if got := deliveryStates(t, db, "ta", "ep"); got["msg_3"] != "" {
			t.Errorf("queued for a disabled endpoint: %v", got)
		}
	})
}

func TestClaimDeliveriesConcurrent(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, db *store.DB) {
		ctx := t.Context()
		mkTenant(t, db, "ta")
		mkEndpoint(t, db, "ta", "ep1")
		mkEndpoint(t, db, "ta", "ep2")
		const events, workers = 60, 8
		var evs []kyc.OutboxEvent
		for i := range events {
			evs = append(evs, outboxEvent(fmt.Sprintf("msg_%03d", i), "ta", kyc.EventEmailVerified, t0))
		}
		emitNow(t, db, evs...)
		warm(t, db, workers)
		var mu sync.Mutex
		seen := map[string]int{}
		errs := make([]error, workers)
		together(workers, func(i int) {
			for round := 0; ; round++ {
				ds, err := db.ClaimDeliveries(ctx, t0, at(time.Minute), fmt.Sprintf("w%d-%d", i, round), 3)
				if err != nil {
					errs[i] = err
					return
				}
				if len(ds) == 0 {
					return
				}
				mu.Lock()
				for _, d := range ds {
					seen[d.EventID+"→"+d.EndpointID]++
				}
				mu.Unlock()
			}
		})
		noErrors(t, errs)
		if len(seen) != 2*events {
			t.Errorf("claimed %d distinct deliveries, want %d", len(seen), 2*events)
		}
		for k, n := range seen {
			if n != 1 {
				t.Errorf("%s claimed %d times", k, n)
			}
		}
	})
}

func TestRedeliverAndRotate(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, db *store.DB) {
		ctx := t.Context()
		mkTenant(t, db, "ta")
		mkTenant(t, db, "tb")
		mkEndpoint(t, db, "ta", "ep1")
		emitNow(t, db, outboxEvent("msg_1", "ta", kyc.EventEmailVerified, t0))
		ds, _ := db.ClaimDeliveries(ctx, t0, at(time.Minute), "w1", 10)
		must(t, db.FinishDelivery(ctx, kyc.DeliveryOutcome{EventID: "msg_1", EndpointID: "ep1", Token: ds[0].Token, At: t0,
			State: kyc.DeliveryDelivered, Status: 200}))
		mkEndpoint(t, db, "ta", "ep2") // added after the event
		if _, err := db.Redeliver(ctx, "tb", "msg_1", "", at(time.Hour)); !isNotFound(err) {
			t.Fatalf("another tenant's redeliver = %v, want ErrNotFound", err)
		}
		n, err := db.Redeliver(ctx, "ta", "msg_1", "", at(time.Hour))
		must(t, err)
		if n != 2 {
			t.Fatalf("redelivered to %d endpoints, want 2", n)
		}
		ds, err = db.ClaimDeliveries(ctx, at(time.Hour), at(2*time.Hour), "w2", 10)
		must(t, err)
		if len(ds) != 2 || ds[0].Attempt != 1 || ds[1].Attempt != 1 {
			t.Fatalf("after redeliver claimed %+v, want two first attempts", ds)
		}

		ep, err := db.WebhookEndpoint(ctx, "ta", "ep1")
		must(t, err)
		must(t, db.RotateWebhookSecret(ctx, ep, "sealed-new", at(24*time.Hour)))
		if err := db.RotateWebhookSecret(ctx, ep, "sealed-newer", at(24*time.Hour)); !isConflict(err) {
			t.Fatalf("rotation from a stale secret = %v, want ErrConflict", err)
		}
		ep, _ = db.WebhookEndpoint(ctx, "ta", "ep1")
		if ep.Secret != "sealed-new" || ep.PrevSecret != "sealed-ep1" || !ep.PrevUntil.Equal(at(24*time.Hour)) {
			t.Errorf("after rotation: %+v", ep)
		}
		must(t, db.RemoveWebhookEndpoint(ctx, "ta", "ep1"))
		if err := db.RemoveWebhookEndpoint(ctx, "ta", "ep1"); !isNotFound(err) {
			t.Errorf("second remove = %v", err)
		}
		if _, err := db.WebhookEndpoint(ctx, "ta", "ep1"); !isNotFound(err) {
			t.Errorf("removed endpoint found: %v", err)
		}
	})
}

func TestPruneOutbox(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, db *store.DB) {
		ctx := t.Context()
		mkTenant(t, db, "ta")
		mkEndpoint(t, db, "ta", "ep")
		emitNow(t, db, outboxEvent("msg_done", "ta", kyc.EventEmailVerified, t0), outboxEvent("msg_owed", "ta", kyc.EventEmailVerified, t0))
		ds, _ := db.ClaimDeliveries(ctx, t0, at(time.Minute), "w1", 10)
		for _, d := range ds {
			if d.EventID == "msg_done" {
				must(t, db.FinishDelivery(ctx, kyc.DeliveryOutcome{EventID: d.EventID, EndpointID: "ep", Token: "w1", At: t0,
					State: kyc.DeliveryDelivered, Status: 200}))
			}
		}
		if n, err := db.Prune(ctx, kyc.PruneBefore{Outbox: t0}); err != nil || n != 0 {
			t.Fatalf("prune before the events = %d, %v", n, err)
		}
		if n, err := db.Prune(ctx, kyc.PruneBefore{Outbox: at(time.Hour)}); err != nil || n != 2 {
			t.Fatalf("prune = %d, %v; want the delivered delivery and its event", n, err)
		}
		if got := deliveryStates(t, db, "ta", "ep"); len(got) != 1 || got["msg_owed"] != kyc.DeliveryPending {
			t.Errorf("after prune: %v, want only the owed delivery", got)
		}
		if _, err := db.Redeliver(ctx, "ta", "msg_done", "", at(time.Hour)); !isNotFound(err) {
			t.Errorf("redeliver of a pruned event = %v", err)
		}
	})
}

// With no endpoint anywhere, a change does not even read its audience.
func TestNoEndpointsNoAudience(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, db *store.DB) {
		ctx := t.Context()
		ann, _ := sessionFixture(t, db)
		called := 0
		fan := func(kyc.Audience) []kyc.OutboxEvent { called++; return nil }
		if ok, err := db.ClaimSessionCreation(ctx, ann.ID, "tok", at(time.Minute), t0); err != nil || !ok {
			t.Fatalf("claim = %v, %v", ok, err)
		}
		s := newSession("s1", ann.ID, t0)
		must(t, db.InsertSession(ctx, s, "tok", fan))
		s.Status = kyc.StatusApproved
		if _, err := db.ApplyEvent(ctx, "ev1", s, t0, fan); err != nil {
			t.Fatal(err)
		}
		code := kyc.CodeRef{TenantID: "ta", Address: "bob@example.com"}
		saveCode(t, db, code, "h", t0)
		if ok, err := db.ConsumeOTP(ctx, code, "h", fan); err != nil || !ok {
			t.Fatalf("ConsumeOTP = %v, %v", ok, err)
		}
		if called != 0 {
			t.Errorf("the fanout ran %d times with no endpoint anywhere", called)
		}
		if got, err := db.SessionByID(ctx, "s1"); err != nil || got.Status != kyc.StatusApproved {
			t.Errorf("session = %+v, %v", got, err)
		}
		if e := enrollmentOf(t, db, "ta", "bob@example.com"); !e.EmailVerified {
			t.Error("ConsumeOTP did not verify")
		}
	})
}
