package store_test

import (
	"testing"

	"github.com/kycgate/kycgate/internal/kyc"
	"github.com/kycgate/kycgate/internal/store"
)

// UseOTP counts, compares and uses in one primitive: every attempt at a
// live code counts, matched or not; a match uses the code and verifies the
// address; five misses spend it; concurrent matches use it once.
func TestUseOTP(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, db *store.DB) {
		ctx := t.Context()
		f := newOTPFixture(t, db)
		is := func(want string) func(string) bool { return func(h string) bool { return h == want } }
		use := func(match func(string) bool) kyc.OTPUse {
			t.Helper()
			u, err := db.UseOTP(ctx, f.ref(), 5, t0, match, nil)
			must(t, err)
			return u
		}

		if u := use(is("h")); u != (kyc.OTPUse{Attempt: kyc.OTPNone}) {
			t.Fatalf("no code: %+v", u)
		}
		f.mustSend(t0, "h")
		for i := range 4 {
			if u := use(is("wrong")); u != (kyc.OTPUse{Attempt: kyc.OTPCounted}) {
				t.Fatalf("miss %d: %+v", i+1, u)
			}
		}
		if enrollmentOf(t, db, "ta", "ann@example.com").EmailVerified {
			t.Fatal("verified by a miss")
		}
		// The fifth attempt is the last: it counts, and it matches.
		if u := use(is("h")); u != (kyc.OTPUse{Attempt: kyc.OTPCounted, Used: true}) {
			t.Fatalf("match: %+v", u)
		}
		if !enrollmentOf(t, db, "ta", "ann@example.com").EmailVerified {
			t.Error("not verified after the use")
		}
		if u := use(is("h")); u != (kyc.OTPUse{Attempt: kyc.OTPNone}) {
			t.Fatalf("used code again: %+v", u)
		}

		// Five misses spend the code.
		g := f
		g.address = "bob@example.com"
		mkPerson(t, db, "ta", g.address)
		g.mustSend(t0, "hb")
		for range 5 {
			if _, err := db.UseOTP(ctx, g.ref(), 5, t0, is("wrong"), nil); err != nil {
				t.Fatal(err)
			}
		}
		if u, err := db.UseOTP(ctx, g.ref(), 5, t0, is("hb"), nil); err != nil || u.Attempt != kyc.OTPNoAttemptsLeft || u.Used {
			t.Fatalf("sixth attempt = %+v, %v", u, err)
		}

		// Concurrent right guesses: one uses the code.
		h := f
		h.address = "cy@example.com"
		mkPerson(t, db, "ta", h.address)
		h.mustSend(t0, "hc")
		const n = 5
		us := make([]kyc.OTPUse, n)
		errs := make([]error, n)
		together(n, func(i int) { us[i], errs[i] = db.UseOTP(t.Context(), h.ref(), n, t0, is("hc"), nil) })
		noErrors(t, errs)
		won := 0
		for _, u := range us {
			if u.Used {
				won++
			}
		}
		if won != 1 {
			t.Errorf("%d concurrent uses won, want 1: %+v", won, us)
		}
		if _, err := db.UseOTP(ctx, kyc.CodeRef{TenantID: "ta", Address: f.address, Wallet: "0xabc"}, 5, t0, is("h"), nil); err == nil {
			t.Error("UseOTP took a link's code")
		}
	})
}
