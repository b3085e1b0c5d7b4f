package kyc_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kycgate/kycgate/internal/kyc"
	"github.com/kycgate/kycgate/internal/mail"
	"github.com/kycgate/kycgate/internal/mail/mailtest"
	"github.com/kycgate/kycgate/internal/store"
)

// TestOTPSlowAcceptStillCounts: a mail server that takes longer than the
// 5 s kept for writing a send's outcome to accept the message (content
// scanning, a slow relay) delivers the code, so the send must count: a
// second send within the minimum gap is refused even once the first
// send's delivery lease has lapsed. The outcome's write must get its 5 s
// after the mail server answered, not from before the send.
//
// It takes about 6 s of real time: the server really is slow.
func TestOTPSlowAcceptStillCounts(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("6 s of real time")
	}
	ctx := context.Background()
	srv := mailtest.NewServer(t, mailtest.WithDataHook(func(ctx context.Context) error {
		select { // a server slow to accept, not a synchronisation
		case <-time.After(6 * time.Second):
		case <-ctx.Done():
		}
		return nil
	}))
	mailer, err := mail.NewSMTP(mail.Config{URL: srv.URL(), From: "kycgate <no-reply@example.com>"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mailer.Close() })
	db, err := store.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "kyc.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	clock := &testClock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	svc, err := kyc.NewService(kyc.Deps{Store: db, Mailer: mailer, Clock: clock},
		kyc.Config{Secret: []byte(strings.Repeat("s", 32))})
	if err != nil {
		t.Fatal(err)
	}
	tenant, _, err := svc.CreateTenant(ctx, kyc.NewTenant{Name: "T"})
	if err != nil {
		t.Fatal(err)
	}
	const email = "slow@example.com"
	if _, err := svc.Prepare(ctx, tenant, email); err != nil {
		t.Fatal(err)
	}
	// The API's request budget.
	rctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := svc.SendOTP(rctx, tenant, kyc.OTPInput{Email: email}); err != nil {
		t.Fatalf("slow but accepted send = %v", err)
	}
	if n := len(srv.Messages()); n != 1 {
		t.Fatalf("%d messages delivered, want 1", n)
	}
	// Past the send's delivery lease (20 s budget + 5 s), within the gap.
	clock.add(40 * time.Second)
	if got := code(svc.SendOTP(ctx, tenant, kyc.OTPInput{Email: email})); got != kyc.CodeOTPSendRateLimited {
		t.Fatalf("a send 40 s after a delivered one = %s, want %s", got, kyc.CodeOTPSendRateLimited)
	}
}
