package kyc_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kycgate/kycgate/internal/kyc"
	"github.com/kycgate/kycgate/internal/store"
	"github.com/kycgate/kycgate/internal/store/storetest"
)

// claimProvider holds its first create until released.
type claimProvider struct {
	calls   atomic.Int32
	entered chan struct{}
	release chan struct{}
}

func (p *claimProvider) CreateSession(ctx context.Context, _ kyc.CreateSessionRequest) (kyc.ProviderSession, error) {
	if p.calls.Add(1) == 1 {
		close(p.entered)
		<-p.release
		return kyc.ProviderSession{ID: "sess-A", URL: "https://verify.example/A", Status: kyc.StatusNotStarted}, nil
	}
	return kyc.ProviderSession{ID: "sess-B", URL: "https://verify.example/B", Status: kyc.StatusNotStarted}, nil
}

func (p *claimProvider) DeleteSession(context.Context, string) error { return nil }

func (p *claimProvider) GetDecision(context.Context, string) (kyc.Decision, error) {
	return kyc.Decision{}, errors.New("unused")
}

type claimMail struct {
	mu   sync.Mutex
	code string
}

func (m *claimMail) SendCode(_ context.Context, cm kyc.CodeMail) error {
	code := cm.Code
	m.mu.Lock()
	m.code = code
	m.mu.Unlock()
	return nil
}

// claimEnv is a service on SQLite with the claimProvider, and a person
// whose email is verified at tenant tn, ready to create.
type claimEnv struct {
	svc   *kyc.Service
	db    *store.DB
	tn    kyc.Tenant
	prov  *claimProvider
	clock *testClock
	email string
}

func newClaimEnv(t *testing.T, cfg kyc.Config) *claimEnv {
	t.Helper()
	ctx := t.Context()
	db, err := store.Open(ctx, storetest.SQLiteURL(t), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	e := &claimEnv{db: db, clock: &testClock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)},
		prov: &claimProvider{entered: make(chan struct{}), release: make(chan struct{})}, email: "p@example.com"}
	mail := &claimMail{}
	cfg.Secret = []byte(strings.Repeat("k", 32))
	if e.svc, err = kyc.NewService(kyc.Deps{Store: db, Mailer: mail, Provider: e.prov, Clock: e.clock}, cfg); err != nil {
		t.Fatal(err)
	}
	if e.tn, _, err = e.svc.CreateTenant(ctx, kyc.NewTenant{Name: "T"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Prepare(ctx, e.tn, e.email); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.SendOTP(ctx, e.tn, kyc.OTPInput{Email: e.email}); err != nil {
		t.Fatal(err)
	}
	mail.mu.Lock()
	code := mail.code
	mail.mu.Unlock()
	if err := e.svc.VerifyOTP(ctx, e.tn, kyc.OTPInput{Email: e.email, Code: code}); err != nil {
		t.Fatal(err)
	}
	return e
}

// TestLapsedLeaseNeverMakesASecondOpenSession: a creator whose lease lapsed
// mid-call (a stalled replica) must not store a second open session after
// another creator took over; it answers with the session that stands.
func TestLapsedLeaseNeverMakesASecondOpenSession(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	// A lease far longer than the test, so no renewal tick runs: the lapse
	// comes from the clock alone.
	e := newClaimEnv(t, kyc.Config{SessionClaimTTL: time.Hour})
	svc, db, tn, prov, clock, email := e.svc, e.db, e.tn, e.prov, e.clock, e.email
	type out struct {
		r   kyc.CreateResult
		err error
	}
	first := make(chan out, 1)
	go func() {
		r, err := svc.CreateSession(context.Background(), tn, kyc.KYCTypePublic, kyc.Identity{Email: email})
		first <- out{r, err}
	}()
	<-prov.entered
	clock.add(2 * time.Hour) // the first creator's lease lapses
	r2, err := svc.CreateSession(ctx, tn, kyc.KYCTypePublic, kyc.Identity{Email: email})
	if err != nil || r2.Kind != kyc.CreateNew || r2.Session.ID != "sess-B" {
		t.Fatalf("second creator = %+v, %v", r2, err)
	}
	close(prov.release)
	r1 := <-first
	if r1.err != nil || r1.r.Kind != kyc.CreateExisting || r1.r.Session.ID != "sess-B" {
		t.Fatalf("first creator = %+v, %v; want the standing session sess-B resumed", r1.r, r1.err)
	}
	if _, err := db.SessionByID(ctx, "sess-A"); !errors.Is(err, kyc.ErrNotFound) {
		t.Fatalf("sess-A was stored after the lease lapsed: %v", err)
	}
}

// TestHangUpMidCreate: a partner that hangs up while Didit creates the
// session does not stop the work. Didit creates (and bills) the session
// whatever we do, so it is stored with its quota unit, and the partner's
// next create finds it instead of a second one.
func TestHangUpMidCreate(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	e := newClaimEnv(t, kyc.Config{})
	svc, db, tn, prov, clock, email := e.svc, e.db, e.tn, e.prov, e.clock, e.email
	reqCtx, hangUp := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		_, err := svc.CreateSession(reqCtx, tn, kyc.KYCTypePublic, kyc.Identity{Email: email})
		done <- err
	}()
	<-prov.entered
	hangUp()
	close(prov.release)
	<-done // whatever it answers: nobody is listening
	if _, err := db.SessionByID(ctx, "sess-A"); err != nil {
		t.Fatalf("the session Didit created was not stored: %v", err)
	}
	if used, err := db.QuotaUsed(ctx, tn.ID, clock.Now().Format("2006-01")); err != nil || used != 1 {
		t.Fatalf("QuotaUsed = %d, %v; want 1", used, err)
	}
	r, err := svc.CreateSession(ctx, tn, kyc.KYCTypePublic, kyc.Identity{Email: email})
	if err != nil || r.Kind != kyc.CreateExisting || r.Session.ID != "sess-A" || prov.calls.Load() != 1 {
		t.Fatalf("next create = %+v, %v (%d provider calls); want sess-A resumed", r, err, prov.calls.Load())
	}
}
