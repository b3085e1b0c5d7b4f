package kyc_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kycgate/kycgate/internal/kyc"
	"github.com/kycgate/kycgate/internal/store"
	_ "modernc.org/sqlite"
)

// otpMail records the last code per address; with fail set it answers
// that error instead, recording the code only when the error says the
// mail may still arrive.
type otpMail struct {
	mu    sync.Mutex
	codes map[string]string
	fail  error
}

func (m *otpMail) SendCode(_ context.Context, cm kyc.CodeMail) error {
	to, code := cm.To, cm.Code
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil && !errors.Is(m.fail, kyc.ErrMailUnconfirmed) {
		return m.fail
	}
	m.codes[to] = code
	return m.fail
}

func (m *otpMail) failWith(err error) { m.mu.Lock(); defer m.mu.Unlock(); m.fail = err }

func (m *otpMail) last(to string) string { m.mu.Lock(); defer m.mu.Unlock(); return m.codes[to] }

type otpEnv struct {
	svc    *kyc.Service
	clock  *testClock
	mail   *otpMail
	tenant kyc.Tenant
	dbPath string
}

func newOTPEnv(t *testing.T) *otpEnv {
	t.Helper()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "kyc.db")
	db, err := store.Open(ctx, "sqlite:"+path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	e := &otpEnv{clock: &testClock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}, mail: &otpMail{codes: map[string]string{}}, dbPath: path}
	e.svc, err = kyc.NewService(kyc.Deps{Store: db, Mailer: e.mail, Clock: e.clock},
		kyc.Config{Secret: []byte(strings.Repeat("s", 32))})
	if err != nil {
		t.Fatal(err)
	}
	e.tenant, _, err = e.svc.CreateTenant(ctx, kyc.NewTenant{Name: "T"})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func code(err error) string {
	var e *kyc.Error
	if errors.As(err, &e) {
		return e.Code
	}
	if err != nil {
		return "error: " + err.Error()
	}
	return "ok"
}

func TestOTPExpiry(t *testing.T) {
	t.Parallel()
	e := newOTPEnv(t)
	ctx := context.Background()
	const email = "exp@example.com"
	if _, err := e.svc.Prepare(ctx, e.tenant, email); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.SendOTP(ctx, e.tenant, kyc.OTPInput{Email: email}); err != nil {
		t.Fatal(err)
	}
	c := e.mail.last(email)
	e.clock.add(10*time.Minute - time.Millisecond)
	if got := code(e.svc.VerifyOTP(ctx, e.tenant, kyc.OTPInput{Email: email, Code: "000000" + c})); got != kyc.CodeOTPInvalid {
		t.Fatalf("just before expiry, a wrong code = %s", got)
	}
	e.clock.add(time.Millisecond)
	if got := code(e.svc.VerifyOTP(ctx, e.tenant, kyc.OTPInput{Email: email, Code: c})); got != kyc.CodeOTPExpired {
		t.Fatalf("at 10 minutes the right code = %s, want otp_expired", got)
	}
	// A new code works again, and the old one stays dead.
	if err := e.svc.SendOTP(ctx, e.tenant, kyc.OTPInput{Email: email}); err != nil {
		t.Fatal(err)
	}
	c2 := e.mail.last(email)
	if c2 != c {
		if got := code(e.svc.VerifyOTP(ctx, e.tenant, kyc.OTPInput{Email: email, Code: c})); got != kyc.CodeOTPInvalid {
			t.Fatalf("replaced code = %s, want otp_invalid", got)
		}
	}
	if got := code(e.svc.VerifyOTP(ctx, e.tenant, kyc.OTPInput{Email: email, Code: c2})); got != "ok" {
		t.Fatalf("fresh code = %s", got)
	}
}

func TestOTPSendWindow(t *testing.T) {
	t.Parallel()
	e := newOTPEnv(t)
	ctx := context.Background()
	const email = "win@example.com"
	if _, err := e.svc.Prepare(ctx, e.tenant, email); err != nil {
		t.Fatal(err)
	}
	// Five sends a minute apart are allowed; the sixth within the hour is not.
	for i := range 5 {
		if err := e.svc.SendOTP(ctx, e.tenant, kyc.OTPInput{Email: email}); err != nil {
			t.Fatalf("send %d: %v", i+1, err)
		}
		if got := code(e.svc.SendOTP(ctx, e.tenant, kyc.OTPInput{Email: email})); got != kyc.CodeOTPSendRateLimited {
			t.Fatalf("send within 60 s = %s", got)
		}
		e.clock.add(time.Minute)
	}
	err := e.svc.SendOTP(ctx, e.tenant, kyc.OTPInput{Email: email})
	var ke *kyc.Error
	if !errors.As(err, &ke) || ke.Code != kyc.CodeOTPSendRateLimited {
		t.Fatalf("sixth send in the hour = %v", err)
	}
	// The first send was at +0; now is +5 min, so the window frees at +60.
	if ke.RetryAfter != 55*time.Minute {
		t.Fatalf("RetryAfter = %v, want 55m", ke.RetryAfter)
	}
	e.clock.add(55*time.Minute - time.Second)
	if got := code(e.svc.SendOTP(ctx, e.tenant, kyc.OTPInput{Email: email})); got != kyc.CodeOTPSendRateLimited {
		t.Fatalf("one second early = %s", got)
	}
	e.clock.add(time.Second)
	if got := code(e.svc.SendOTP(ctx, e.tenant, kyc.OTPInput{Email: email})); got != "ok" {
		t.Fatalf("when the window frees = %s", got)
	}
	// Sliding: the next allowed send is a minute later (the second send
	// leaves the window), not a whole new hour.
	e.clock.add(time.Minute)
	if got := code(e.svc.SendOTP(ctx, e.tenant, kyc.OTPInput{Email: email})); got != "ok" {
		t.Fatalf("sliding window = %s", got)
	}
}

func TestOTPStoredOnlyAsHMAC(t *testing.T) {
	t.Parallel()
	e := newOTPEnv(t)
	ctx := context.Background()
	const email = "hash@example.com"
	if _, err := e.svc.Prepare(ctx, e.tenant, email); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.SendOTP(ctx, e.tenant, kyc.OTPInput{Email: email}); err != nil {
		t.Fatal(err)
	}
	c := e.mail.last(email)
	raw, err := sql.Open("sqlite", "file:"+e.dbPath+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	var hash string
	if err := raw.QueryRow(`SELECT code_hash FROM otp_codes`).Scan(&hash); err != nil {
		t.Fatal(err)
	}
	if len(hash) != 64 || strings.Contains(hash, c) {
		t.Fatalf("stored code_hash %q is not an HMAC-SHA256 hex digest of the code", hash)
	}
	var keyHashes []string
	rows, err := raw.Query(`SELECT key_hash, prefix FROM api_keys`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var h, p string
		rows.Scan(&h, &p)
		if len(h) != 64 || len(p) != 10 {
			t.Fatalf("api key stored as %q / prefix %q", h, p)
		}
		keyHashes = append(keyHashes, h)
	}
	if len(keyHashes) != 1 {
		t.Fatalf("%d keys stored", len(keyHashes))
	}
}

func TestOTPCodeIsBoundToTenantAndPerson(t *testing.T) {
	t.Parallel()
	e := newOTPEnv(t)
	ctx := context.Background()
	other, _, err := e.svc.CreateTenant(ctx, kyc.NewTenant{Name: "Other"})
	if err != nil {
		t.Fatal(err)
	}
	const email = "bind@example.com"
	for _, tn := range []kyc.Tenant{e.tenant, other} {
		if _, err := e.svc.Prepare(ctx, tn, email); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.svc.SendOTP(ctx, e.tenant, kyc.OTPInput{Email: email}); err != nil {
		t.Fatal(err)
	}
	c := e.mail.last(email)
	// The other tenant has no code at all: the first tenant's code is not its.
	if got := code(e.svc.VerifyOTP(ctx, other, kyc.OTPInput{Email: email, Code: c})); got != kyc.CodeOTPInvalid {
		t.Fatalf("other tenant with tenant A's code = %s", got)
	}
	if got := code(e.svc.VerifyOTP(ctx, e.tenant, kyc.OTPInput{Email: email, Code: c})); got != "ok" {
		t.Fatalf("tenant A = %s", got)
	}
}

// TestOTPMailOutage: deliveries that failed cost the user nothing. After
// a run of failures (more than the hourly limit) the first send once the
// mail server works again goes out at once, and the full hourly budget is
// still there.
func TestOTPMailOutage(t *testing.T) {
	t.Parallel()
	e := newOTPEnv(t)
	ctx := context.Background()
	const email = "outage@example.com"
	if _, err := e.svc.Prepare(ctx, e.tenant, email); err != nil {
		t.Fatal(err)
	}
	e.mail.failWith(errors.New("550 mailbox unavailable"))
	for i := range 7 {
		if err := e.svc.SendOTP(ctx, e.tenant, kyc.OTPInput{Email: email}); !isFailure(err) {
			t.Fatalf("send %d during the outage = %v, want a failure (the endpoint's 500)", i+1, err)
		}
		e.clock.add(time.Second)
	}
	e.mail.failWith(nil)
	for i := range 5 {
		if err := e.svc.SendOTP(ctx, e.tenant, kyc.OTPInput{Email: email}); err != nil {
			t.Fatalf("send %d after the outage: %v", i+1, err)
		}
		e.clock.add(time.Minute)
	}
	if got := code(e.svc.SendOTP(ctx, e.tenant, kyc.OTPInput{Email: email})); got != kyc.CodeOTPSendRateLimited {
		t.Fatalf("sixth delivered send within the hour = %s, want the limit", got)
	}
	if got := code(e.svc.VerifyOTP(ctx, e.tenant, kyc.OTPInput{Email: email, Code: e.mail.last(email)})); got != "ok" {
		t.Fatalf("the last delivered code = %s", got)
	}
}

// TestOTPUnconfirmedDelivery: when the mail server got the whole message
// but its verdict never came, the code stays valid (the mail may arrive),
// the send counts, and the partner hears it was sent.
func TestOTPUnconfirmedDelivery(t *testing.T) {
	t.Parallel()
	e := newOTPEnv(t)
	ctx := context.Background()
	const email = "unsure@example.com"
	if _, err := e.svc.Prepare(ctx, e.tenant, email); err != nil {
		t.Fatal(err)
	}
	e.mail.failWith(fmt.Errorf("final reply timed out: %w", kyc.ErrMailUnconfirmed))
	if err := e.svc.SendOTP(ctx, e.tenant, kyc.OTPInput{Email: email}); err != nil {
		t.Fatalf("unconfirmed send = %v, want sent", err)
	}
	e.mail.failWith(nil)
	e.clock.add(30 * time.Second)
	if got := code(e.svc.SendOTP(ctx, e.tenant, kyc.OTPInput{Email: email})); got != kyc.CodeOTPSendRateLimited {
		t.Fatalf("a send 30 s later = %s, want the gap", got)
	}
	if got := code(e.svc.VerifyOTP(ctx, e.tenant, kyc.OTPInput{Email: email, Code: e.mail.last(email)})); got != "ok" {
		t.Fatalf("the unconfirmed send's code = %s, want it valid", got)
	}
}
