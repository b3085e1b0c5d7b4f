package kyc_test

// Review test (hostile review): a polled outcome keeps the EventAt of the
// last webhook, so a delayed retry of an OLDER webhook (stamped between that
// webhook and the poll) replaces the polled, newer final status, and the
// session is no longer watched, so nothing corrects it.
// docs/api.md §11: "an event older than the last one applied changes nothing".

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kycgate/kycgate/internal/kyc"
	"github.com/kycgate/kycgate/internal/store"
	"github.com/kycgate/kycgate/internal/store/storetest"
)

type poProvider struct {
	mu     sync.Mutex
	status kyc.DiditStatus
}

func (p *poProvider) CreateSession(context.Context, kyc.CreateSessionRequest) (kyc.ProviderSession, error) {
	return kyc.ProviderSession{ID: "sess-po", URL: "https://verify.example/po", Status: kyc.StatusNotStarted}, nil
}

func (p *poProvider) DeleteSession(context.Context, string) error { return nil }

func (p *poProvider) GetDecision(context.Context, string) (kyc.Decision, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return kyc.Decision{Status: p.status, Raw: []byte(`{"status":"` + string(p.status) + `"}`)}, nil
}

type poMail struct {
	mu   sync.Mutex
	code string
}

func (m *poMail) SendCode(_ context.Context, cm kyc.CodeMail) error {
	code := cm.Code
	m.mu.Lock()
	m.code = code
	m.mu.Unlock()
	return nil
}

func TestStaleWebhookCannotUndoPolledOutcome(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db, err := store.Open(ctx, storetest.SQLiteURL(t), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	clock := &testClock{t: t0}
	prov := &poProvider{}
	mail := &poMail{}
	svc, err := kyc.NewService(kyc.Deps{Store: db, Mailer: mail, Provider: prov, Clock: clock},
		kyc.Config{Secret: []byte(strings.Repeat("k", 32))})
	if err != nil {
		t.Fatal(err)
	}
	tn, _, _ := svc.CreateTenant(ctx, kyc.NewTenant{Name: "T"})
	const email = "po@example.com"
	svc.Prepare(ctx, tn, email)
	if err := svc.SendOTP(ctx, tn, kyc.OTPInput{Email: email}); err != nil {
		t.Fatal(err)
	}
	if err := svc.VerifyOTP(ctx, tn, kyc.OTPInput{Email: email, Code: mail.code}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.CreateSession(ctx, tn, kyc.KYCTypePublic, kyc.Identity{Email: email}); err != nil {
		t.Fatal(err)
	}

	// t0+10s: webhook "In Progress" arrives.
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(svc.HandleEvent(ctx, kyc.SessionEvent{EventID: "e1", SessionID: "sess-po", Status: kyc.StatusInProgress, At: t0.Add(10 * time.Second)}))
	// t0+20s: Didit auto-declines (webhook delayed); t0+60s a reviewer
	// approves (webhook lost). At t0+3m the reconciler polls: Approved.
	prov.mu.Lock()
	prov.status = kyc.StatusApproved
	prov.mu.Unlock()
	clock.add(3 * time.Minute)
	if _, err := svc.Reconcile(ctx, time.Minute, 100); err != nil {
		t.Fatal(err)
	}
	if st, _ := svc.Status(ctx, tn, kyc.Identity{Email: email}); st.Status != "approved" {
		t.Fatalf("after poll: %+v", st.Status)
	}
	// t0+4m: Didit's retry of the t0+20s "Declined" webhook finally lands.
	clock.add(time.Minute)
	must(svc.HandleEvent(ctx, kyc.SessionEvent{EventID: "e2", SessionID: "sess-po", Status: kyc.StatusDeclined,
		At: t0.Add(20 * time.Second), Decision: &kyc.Decision{Status: kyc.StatusDeclined}}))

	st, _ := svc.Status(ctx, tn, kyc.Identity{Email: email})
	sess, _ := db.SessionByID(ctx, "sess-po")
	if st.Status != "approved" {
		t.Errorf("a webhook stamped t0+20s replaced the outcome polled at t0+3m: status %q (Didit says Approved), watched=%v", st.Status, sess.Watch)
	}
}
