package kyc_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/kycgate/kycgate/internal/didit/diditsim"
	"github.com/kycgate/kycgate/internal/kyc"
)

// countingObserver keeps what the service reported, by event.
type countingObserver struct {
	mu     sync.Mutex
	counts map[string]int
	lag    time.Duration
}

func (o *countingObserver) add(event string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.counts == nil {
		o.counts = map[string]int{}
	}
	o.counts[event]++
}

func (o *countingObserver) count(event string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.counts[event]
}

func (o *countingObserver) lastLag() time.Duration {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.lag
}

func (o *countingObserver) CodeSent()                  { o.add("sent") }
func (o *countingObserver) CodeSendFailed()            { o.add("send_failed") }
func (o *countingObserver) CodeVerified()              { o.add("verified") }
func (o *countingObserver) CodeRefused(reason string)  { o.add("refused:" + reason) }
func (o *countingObserver) SessionCreated(kind string) { o.add("session:" + kind) }
func (o *countingObserver) QuotaRefused()              { o.add("quota") }
func (o *countingObserver) ProviderError(op string)    { o.add("provider:" + op) }
func (o *countingObserver) ReconcileLag(d time.Duration) {
	o.add("reconcile")
	o.mu.Lock()
	o.lag = d
	o.mu.Unlock()
}

// TestObserverReconcileLagAndProviderErrors: a reconcile pass reports how
// long past its poll time the oldest due session waited (0 when none is
// due), and a decision read Didit fails is a provider error.
func TestObserverReconcileLagAndProviderErrors(t *testing.T) {
	t.Parallel()
	const every = time.Minute
	r, rs := newReconcileRig(t)
	r.verified(t, "lag@example.com")
	r.create(t, "lag@example.com", kyc.CreateNew)
	if got := r.obs.count("session:" + kyc.CreateNew); got != 1 {
		t.Fatalf("sessions created reported %d times, want 1", got)
	}

	reconcile(t, r, rs, every, 0)
	if lag := r.obs.lastLag(); lag != 0 {
		t.Fatalf("lag with nothing due = %v, want 0", lag)
	}
	r.clock.add(every + 30*time.Second)
	if err := rs.sim.SetFaults(diditsim.Fault{Kind: diditsim.FaultError, Method: "GET", Status: 503}); err != nil {
		t.Fatal(err)
	}
	reconcile(t, r, rs, every, 1)
	if lag := r.obs.lastLag(); lag != 30*time.Second {
		t.Fatalf("lag = %v, want 30s (due for 30 s)", lag)
	}
	if got := r.obs.count("provider:" + kyc.ProviderOpDecision); got != 1 {
		t.Fatalf("provider errors (decision) = %d, want 1", got)
	}
	reconcile(t, r, rs, every, 0) // checked now, failed or not
	if lag := r.obs.lastLag(); lag != 0 {
		t.Fatalf("lag after the pass = %v, want 0", lag)
	}
}

// TestObserverCodes: sends, verifications and each refusal reason are
// reported once per event.
func TestObserverCodes(t *testing.T) {
	t.Parallel()
	r := newSessRig(t, &sessProvider{})
	ctx := context.Background()
	r.verified(t, "a@example.com")
	if r.obs.count("sent") != 1 || r.obs.count("verified") != 1 {
		t.Fatalf("after one verification: %v", r.obs.counts)
	}
	if _, err := r.svc.Prepare(ctx, r.tenant, "b@example.com"); err != nil {
		t.Fatal(err)
	}
	if err := r.svc.SendOTP(ctx, r.tenant, kyc.OTPInput{Email: "b@example.com"}); err != nil {
		t.Fatal(err)
	}
	if err := r.svc.SendOTP(ctx, r.tenant, kyc.OTPInput{Email: "b@example.com"}); err == nil {
		t.Fatal("second send within the gap accepted")
	}
	for i := range 5 {
		wrong := fmt.Sprintf("%06d", (i+1)*111111%1000000)
		if wrong == r.mail.codes["b@example.com"] {
			wrong = "000000"
		}
		if err := r.svc.VerifyOTP(ctx, r.tenant, kyc.OTPInput{Email: "b@example.com", Code: wrong}); err == nil {
			t.Fatal("a wrong code verified")
		}
	}
	err := r.svc.VerifyOTP(ctx, r.tenant, kyc.OTPInput{Email: "b@example.com", Code: r.mail.codes["b@example.com"]})
	if e, ok := err.(*kyc.Error); !ok || e.Code != kyc.CodeOTPMaxAttempts {
		t.Fatalf("sixth try = %v, want %s", err, kyc.CodeOTPMaxAttempts)
	}
	if _, err := r.svc.Prepare(ctx, r.tenant, "c@example.com"); err != nil {
		t.Fatal(err)
	}
	if err := r.svc.SendOTP(ctx, r.tenant, kyc.OTPInput{Email: "c@example.com"}); err != nil {
		t.Fatal(err)
	}
	r.clock.add(time.Hour)
	if err := r.svc.VerifyOTP(ctx, r.tenant, kyc.OTPInput{Email: "c@example.com", Code: r.mail.codes["c@example.com"]}); err == nil {
		t.Fatal("a code verified an hour later")
	}
	want := map[string]int{"sent": 3, "verified": 1, "refused:" + kyc.RefusedRateLimited: 1,
		"refused:" + kyc.RefusedInvalid: 5, "refused:" + kyc.RefusedMaxAttempts: 1, "refused:" + kyc.RefusedExpired: 1}
	for k, n := range want {
		if got := r.obs.count(k); got != n {
			t.Errorf("%s reported %d times, want %d (all: %v)", k, got, n, r.obs.counts)
		}
	}
}
