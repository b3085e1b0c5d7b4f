package kyc_test

import (
	"context"
	"testing"
	"time"

	"github.com/kycgate/kycgate/internal/kyc"
)

func TestPruneKeepsWhatRulesNeed(t *testing.T) {
	t.Parallel()
	e := newOTPEnv(t)
	ctx := context.Background()
	const wallet = "0x8ba1f109551bD432803012645Ac136ddd64DBA72"
	ch, err := e.svc.Challenge(ctx, e.tenant, wallet, "")
	if err != nil {
		t.Fatal(err)
	}
	// The signature is never reached: expiry is checked first.
	in := kyc.PrepareWalletInput{Wallet: wallet, Message: ch.Message, SignedBytes: "0x00"}
	// Within the hour after expiry the challenge is still known: callers
	// learn it expired rather than that it never existed.
	e.clock.add(10*time.Minute + 30*time.Minute)
	if n, err := e.svc.Prune(ctx); err != nil || n != 0 {
		t.Fatalf("prune = %d, %v; want nothing pruned yet", n, err)
	}
	if got := code(func() error { _, err := e.svc.PrepareWallet(ctx, e.tenant, in); return err }()); got != kyc.CodeChallengeExpired {
		t.Fatalf("expired challenge = %s", got)
	}
	e.clock.add(31 * time.Minute)
	if n, err := e.svc.Prune(ctx); err != nil || n != 1 {
		t.Fatalf("prune = %d, %v; want the challenge pruned", n, err)
	}
	if got := code(func() error { _, err := e.svc.PrepareWallet(ctx, e.tenant, in); return err }()); got != kyc.CodeChallengeNotFound {
		t.Fatalf("pruned challenge = %s", got)
	}
}
