package store_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/kycgate/kycgate/internal/kyc"
	"github.com/kycgate/kycgate/internal/store"
)

const (
	otpTTL      = 10 * time.Minute
	otpGap      = 60 * time.Second
	otpWindow   = time.Hour
	maxAttempts = 5
)

// otpFixture is one code slot, an address registered at a tenant (and,
// with wallet set, that wallet's link to it), with helpers for the OTP
// calls.
type otpFixture struct {
	t       *testing.T
	db      *store.DB
	tenant  string
	address string
	wallet  string
}

func newOTPFixture(t *testing.T, db *store.DB) otpFixture {
	mkTenant(t, db, "ta")
	mkTenant(t, db, "tb")
	mkPerson(t, db, "ta", "ann@example.com")
	mkPerson(t, db, "tb", "ann@example.com")
	return otpFixture{t: t, db: db, tenant: "ta", address: "ann@example.com"}
}

func (f otpFixture) ref() kyc.CodeRef {
	return kyc.CodeRef{TenantID: f.tenant, Address: f.address, Wallet: f.wallet}
}

// otpLease is the delivery lease of the fixture's sends, as long as a
// request's budget and grace.
const otpLease = 35 * time.Second

func (f otpFixture) sendReq(now time.Time, hash string) kyc.OTPSend {
	return kyc.OTPSend{CodeRef: f.ref(), CodeHash: hash, Now: now, LeaseUntil: now.Add(otpLease),
		ExpiresAt: now.Add(otpTTL), MinGap: otpGap, Window: otpWindow, MaxPerWindow: 5}
}

// send stores a code and, when that was allowed, confirms its delivery, as
// SendOTP does once the mail server accepted it.
func (f otpFixture) send(now time.Time, hash string) (bool, time.Time) {
	f.t.Helper()
	ok, retry := f.sendUnconfirmed(now, hash)
	if ok {
		must(f.t, f.db.ConfirmOTP(f.t.Context(), f.ref(), now))
	}
	return ok, retry
}

// sendUnconfirmed stores a code whose delivery never reports back, as when
// the process dies mid-delivery.
func (f otpFixture) sendUnconfirmed(now time.Time, hash string) (bool, time.Time) {
	f.t.Helper()
	ok, retry, err := f.db.SaveOTP(f.t.Context(), f.sendReq(now, hash))
	must(f.t, err)
	return ok, retry
}

// mustSend sends and fails the test unless the send was accepted.
func (f otpFixture) mustSend(now time.Time, hash string) {
	f.t.Helper()
	if ok, retry := f.send(now, hash); !ok {
		f.t.Fatalf("send at t0+%v refused (retry at t0+%v)", now.Sub(t0), retry.Sub(t0))
	}
}

// refused sends and fails the test unless the send was refused with retryAt.
func (f otpFixture) refused(now time.Time, retryAt time.Time) {
	f.t.Helper()
	ok, retry := f.send(now, "refused")
	if ok {
		f.t.Fatalf("send at t0+%v accepted, want refused until t0+%v", now.Sub(t0), retryAt.Sub(t0))
	}
	if !retry.Equal(retryAt) {
		f.t.Errorf("send at t0+%v: retryAt = t0+%v, want t0+%v", now.Sub(t0), retry.Sub(t0), retryAt.Sub(t0))
	}
}

func (f otpFixture) attempt(now time.Time) (string, kyc.OTPAttempt) {
	f.t.Helper()
	h, res, err := f.db.CountOTPAttempt(f.t.Context(), f.ref(), maxAttempts, now)
	must(f.t, err)
	return h, res
}

func (f otpFixture) wantAttempt(now time.Time, wantHash string, want kyc.OTPAttempt) {
	f.t.Helper()
	h, res := f.attempt(now)
	if res != want || h != wantHash {
		f.t.Errorf("CountOTPAttempt at t0+%v = (%q, %s), want (%q, %s)", now.Sub(t0), h, attemptName(res), wantHash, attemptName(want))
	}
}

func attemptName(a kyc.OTPAttempt) string {
	switch a {
	case kyc.OTPCounted:
		return "OTPCounted"
	case kyc.OTPNone:
		return "OTPNone"
	case kyc.OTPExpired:
		return "OTPExpired"
	case kyc.OTPNoAttemptsLeft:
		return "OTPNoAttemptsLeft"
	}
	return fmt.Sprintf("OTPAttempt(%d)", int(a))
}

func TestSaveOTPGap(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, db *store.DB) {
		f := newOTPFixture(t, db)
		f.mustSend(at(0), "h1")
		f.refused(at(0), at(otpGap))
		f.refused(at(otpGap-time.Millisecond), at(otpGap))
		f.wantAttempt(at(otpGap), "h1", kyc.OTPCounted) // refused sends did not replace the code
		f.mustSend(at(otpGap), "h2")
		f.refused(at(otpGap+30*time.Second), at(2*otpGap))
	})
}

func TestSaveOTPWindow(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, db *store.DB) {
		f := newOTPFixture(t, db)
		for i := range 5 {
			f.mustSend(at(time.Duration(i)*otpGap), fmt.Sprint("h", i))
		}
		// Sixth send within the hour: refused until the first leaves the
		// window, even though the gap has passed.
		f.refused(at(5*otpGap), at(otpWindow))
		f.refused(at(otpWindow-time.Millisecond), at(otpWindow))
		f.mustSend(at(otpWindow), "h5")
		// The window slides: the next send waits for the second send
		// (t0+1m) to leave it, i.e. until t0+61m, which the gap allows too.
		f.refused(at(otpWindow+otpGap-time.Millisecond), at(otpWindow+otpGap))
		f.mustSend(at(otpWindow+otpGap), "h6")
		f.refused(at(otpWindow+otpGap+time.Second), at(otpWindow+2*otpGap))
	})
}

// When both the gap and the window refuse a send, retryAt is the later of
// their two bounds.
func TestSaveOTPRetryAtIsTheLaterBound(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, db *store.DB) {
		f := newOTPFixture(t, db)
		withPerson := func(email string) otpFixture {
			g := f
			g.address = mkPerson(t, db, "ta", email).Email
			return g
		}
		m := time.Minute

		// Window later: five sends 0..4m; at 4m30s the gap ends at 5m but the
		// window only at 60m.
		a := withPerson("a@example.com")
		for i := range 5 {
			a.mustSend(at(time.Duration(i)*m), "h")
		}
		a.refused(at(4*m+30*time.Second), at(otpWindow))

		// Gap later: sends at 0, 1m, 2m, 3m, 59m30s; at 59m45s the window
		// ends at 60m, the gap at 60m30s.
		b := withPerson("b@example.com")
		for _, d := range []time.Duration{0, m, 2 * m, 3 * m, 59*m + 30*time.Second} {
			b.mustSend(at(d), "h")
		}
		b.refused(at(59*m+45*time.Second), at(60*m+30*time.Second))
		// Only the gap: at 60m the first send has left the window.
		b.refused(at(60*m), at(60*m+30*time.Second))
		b.mustSend(at(60*m+30*time.Second), "h")
	})
}

func TestSaveOTPNeedsFiveSlots(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, db *store.DB) {
		f := newOTPFixture(t, db)
		req := f.sendReq(t0, "h")
		req.MaxPerWindow = 3
		if ok, _, err := db.SaveOTP(t.Context(), req); err == nil || ok {
			t.Errorf("SaveOTP with MaxPerWindow 3 = %v, %v; want an error", ok, err)
		}
		f.wantAttempt(t0, "", kyc.OTPNone)
	})
}

func TestSaveOTPIsPerTenantAndAddress(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, db *store.DB) {
		f := newOTPFixture(t, db)
		f.mustSend(t0, "a")
		other := f
		other.tenant = "tb"
		other.mustSend(t0, "b") // same address, other tenant
		third := f
		third.address = mkPerson(t, db, "ta", "bob@example.com").Email
		third.mustSend(t0, "c") // same tenant, other address
		f.wantAttempt(t0, "a", kyc.OTPCounted)
		other.wantAttempt(t0, "b", kyc.OTPCounted)
		third.wantAttempt(t0, "c", kyc.OTPCounted)
	})
}

func TestSaveOTPReplacesCodeAndResetsAttempts(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, db *store.DB) {
		f := newOTPFixture(t, db)
		f.mustSend(t0, "old")
		for range maxAttempts {
			f.wantAttempt(at(time.Second), "old", kyc.OTPCounted)
		}
		f.wantAttempt(at(time.Second), "", kyc.OTPNoAttemptsLeft)
		f.mustSend(at(otpGap), "new")
		for i := range maxAttempts {
			f.wantAttempt(at(otpGap+time.Duration(i)*time.Second), "new", kyc.OTPCounted)
		}
		f.wantAttempt(at(otpGap+10*time.Second), "", kyc.OTPNoAttemptsLeft)
		// The replaced code cannot be used.
		if ok, err := db.ConsumeOTP(t.Context(), f.ref(), "old", nil); err != nil || ok {
			t.Errorf("ConsumeOTP(old code) = %v, %v; want false", ok, err)
		}
		// The new code lives ten minutes from its own send.
		f.mustSend(at(2*otpGap), "newer")
		f.wantAttempt(at(2*otpGap+otpTTL-time.Millisecond), "newer", kyc.OTPCounted)
		f.wantAttempt(at(2*otpGap+otpTTL), "", kyc.OTPExpired)
	})
}

func TestSaveOTPConcurrent(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, db *store.DB) {
		f := newOTPFixture(t, db)
		const n = 20
		race := func(now time.Time) {
			t.Helper()
			oks := make([]bool, n)
			errs := make([]error, n)
			together(n, func(i int) {
				oks[i], _, errs[i] = db.SaveOTP(t.Context(), f.sendReq(now, fmt.Sprint("h", i)))
			})
			noErrors(t, errs)
			winner := -1
			for i, ok := range oks {
				if ok {
					if winner >= 0 {
						t.Fatalf("at t0+%v both sends %d and %d were accepted", now.Sub(t0), winner, i)
					}
					winner = i
				}
			}
			if winner < 0 {
				t.Fatalf("at t0+%v no send was accepted", now.Sub(t0))
			}
			f.wantAttempt(now, fmt.Sprint("h", winner), kyc.OTPCounted)
		}
		race(t0)               // no row yet: concurrent inserts
		race(at(2 * otpGap))   // existing row: concurrent conditional updates
		race(at(10 * otpGap))  // and again
		race(at(100 * otpGap)) // and once the window has slid
	})
}

func TestDropOTP(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, db *store.DB) {
		f := newOTPFixture(t, db)
		ctx := t.Context()

		t.Run("wrong hash keeps the code", func(t *testing.T) {
			f.t = t
			f.mustSend(t0, "h0")
			must(t, db.DropOTP(ctx, f.ref(), "other", t0.Add(-time.Hour)))
			f.wantAttempt(at(time.Second), "h0", kyc.OTPCounted)
			f.refused(at(time.Second), at(otpGap))
		})
		t.Run("gives back the gap", func(t *testing.T) {
			f.t = t
			f.mustSend(at(otpGap), "h1")
			must(t, db.DropOTP(ctx, f.ref(), "h1", at(otpGap)))
			f.wantAttempt(at(otpGap+time.Second), "", kyc.OTPNone)
			f.mustSend(at(otpGap+time.Second), "h2") // no wait after a failed delivery
			f.wantAttempt(at(otpGap+2*time.Second), "h2", kyc.OTPCounted)
			f.refused(at(otpGap+2*time.Second), at(2*otpGap+time.Second))
		})
		t.Run("the gap counts from the newest send left", func(t *testing.T) {
			f.t = t
			f.mustSend(at(3*otpGap), "h3")
			must(t, db.DropOTP(ctx, f.ref(), "h3", at(3*otpGap)))
			// h2, sent at otpGap+1s, is the newest delivered send again.
			f.mustSend(at(3*otpGap+time.Second), "h4")
		})
	})
}

// A mail outage costs the address nothing: five failed deliveries in a
// row leave all five places in the window free.
func TestDropOTPGivesBackTheWindow(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, db *store.DB) {
		f := newOTPFixture(t, db)
		ctx := t.Context()
		for i := range 5 {
			now := at(time.Duration(i) * time.Second)
			f.mustSend(now, fmt.Sprint("h", i))
			must(t, db.DropOTP(ctx, f.ref(), fmt.Sprint("h", i), now))
		}
		for i := range 5 {
			f.mustSend(at(time.Duration(5+i)*otpGap), fmt.Sprint("d", i))
		}
		f.refused(at(10*otpGap), at(5*otpGap+otpWindow))
	})
}

// Dropping a send takes out that send, not whichever is newest: a send
// that a later one already replaced changes nothing.
func TestDropOTPOnlyItsOwnSend(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, db *store.DB) {
		f := newOTPFixture(t, db)
		f.mustSend(at(0), "a")
		f.mustSend(at(1000*time.Second), "b")
		must(t, db.DropOTP(t.Context(), f.ref(), "b", at(1000*time.Second)))
		f.mustSend(at(1060*time.Second), "c")
		f.mustSend(at(1120*time.Second), "d")
		f.mustSend(at(1180*time.Second), "e")
		must(t, db.DropOTP(t.Context(), f.ref(), "a", at(0))) // long replaced as the newest
		f.mustSend(at(1240*time.Second), "f")                 // window: a, c, d, e, f (b was given back)
		f.refused(at(1300*time.Second), at(otpWindow))
		f.mustSend(at(otpWindow), "g") // a left the window
	})
}

// A send whose process died mid-delivery (never confirmed, never dropped)
// blocks the address only until its lease lapses; the next send then takes
// its place instead of pushing it into the window.
func TestSaveOTPReplacesALapsedDelivery(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, db *store.DB) {
		f := newOTPFixture(t, db)
		for i := range 4 {
			f.mustSend(at(time.Duration(i)*otpGap), fmt.Sprint("h", i))
		}
		if ok, _ := f.sendUnconfirmed(at(4*otpGap), "lost"); !ok {
			t.Fatal("the fifth send was refused")
		}
		// While the lease runs, the send may still be delivered: it counts.
		f.refused(at(4*otpGap+time.Second), at(4*otpGap+otpLease))
		// Once it lapsed: at once, and in the lost send's place (with the
		// lost send kept in the window this would be the sixth send).
		f.mustSend(at(4*otpGap+otpLease), "again")
		f.wantAttempt(at(4*otpGap+otpLease+time.Second), "again", kyc.OTPCounted)
		f.refused(at(6*otpGap), at(otpWindow))
	})
}

func TestCountOTPAttempt(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, db *store.DB) {
		ctx := t.Context()
		t.Run("never sent", func(t *testing.T) {
			f := newOTPFixture(t, db)
			f.wantAttempt(t0, "", kyc.OTPNone)
			if _, res, err := db.CountOTPAttempt(ctx, kyc.CodeRef{TenantID: "ghost", Address: "ghost"}, maxAttempts, t0); err != nil || res != kyc.OTPNone {
				t.Errorf("unknown tenant and person: %s, %v", attemptName(res), err)
			}
		})

		// Each subtest below uses its own address.
		var n int
		person := func(t *testing.T) otpFixture {
			n++
			p := mkPerson(t, db, "ta", fmt.Sprintf("p%d@example.com", n))
			return otpFixture{t: t, db: db, tenant: "ta", address: p.Email}
		}

		t.Run("counts five then stops", func(t *testing.T) {
			f := person(t)
			f.mustSend(t0, "h")
			for range maxAttempts {
				f.wantAttempt(at(time.Second), "h", kyc.OTPCounted)
			}
			for range 3 {
				f.wantAttempt(at(time.Second), "", kyc.OTPNoAttemptsLeft)
			}
		})
		t.Run("maxAttempts is the caller's", func(t *testing.T) {
			f := person(t)
			f.mustSend(t0, "h")
			for range 2 {
				if h, res, err := db.CountOTPAttempt(ctx, f.ref(), 2, t0); err != nil || res != kyc.OTPCounted || h != "h" {
					t.Fatalf("attempt = %q, %s, %v", h, attemptName(res), err)
				}
			}
			if _, res, _ := db.CountOTPAttempt(ctx, f.ref(), 2, t0); res != kyc.OTPNoAttemptsLeft {
				t.Errorf("third attempt with max 2: %s", attemptName(res))
			}
		})
		t.Run("expired does not count", func(t *testing.T) {
			f := person(t)
			f.mustSend(t0, "h")
			for range maxAttempts - 1 {
				f.wantAttempt(at(time.Second), "h", kyc.OTPCounted)
			}
			for range 3 {
				f.wantAttempt(at(otpTTL), "", kyc.OTPExpired) // expires_at itself is expired
				f.wantAttempt(at(otpTTL+time.Hour), "", kyc.OTPExpired)
			}
			// Had the expired calls counted, no attempt would be left.
			f.wantAttempt(at(otpTTL-time.Millisecond), "h", kyc.OTPCounted)
			f.wantAttempt(at(otpTTL-time.Millisecond), "", kyc.OTPNoAttemptsLeft)
		})
		t.Run("max attempts wins over expiry", func(t *testing.T) {
			f := person(t)
			f.mustSend(t0, "h")
			for range maxAttempts {
				f.wantAttempt(t0, "h", kyc.OTPCounted)
			}
			f.wantAttempt(at(otpTTL+time.Minute), "", kyc.OTPNoAttemptsLeft)
		})
		t.Run("used", func(t *testing.T) {
			f := person(t)
			f.mustSend(t0, "h")
			f.wantAttempt(t0, "h", kyc.OTPCounted)
			ok, err := db.ConsumeOTP(ctx, f.ref(), "h", nil)
			if err != nil || !ok {
				t.Fatalf("ConsumeOTP = %v, %v", ok, err)
			}
			f.wantAttempt(t0, "", kyc.OTPNone)
		})
		t.Run("dropped", func(t *testing.T) {
			f := person(t)
			f.mustSend(t0, "h")
			must(t, db.DropOTP(ctx, f.ref(), "h", t0))
			f.wantAttempt(t0, "", kyc.OTPNone)
		})
	})
}

func TestCountOTPAttemptConcurrent(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, db *store.DB) {
		f := newOTPFixture(t, db)
		f.mustSend(t0, "h")
		const n = 50
		hashes := make([]string, n)
		res := make([]kyc.OTPAttempt, n)
		errs := make([]error, n)
		together(n, func(i int) {
			hashes[i], res[i], errs[i] = db.CountOTPAttempt(t.Context(), f.ref(), maxAttempts, at(time.Second))
		})
		noErrors(t, errs)
		counts := map[string]int{}
		for i := range n {
			counts[attemptName(res[i])]++
			if res[i] == kyc.OTPCounted && hashes[i] != "h" {
				t.Errorf("counted attempt %d returned hash %q", i, hashes[i])
			}
		}
		if d := cmp.Diff(map[string]int{"OTPCounted": maxAttempts, "OTPNoAttemptsLeft": n - maxAttempts}, counts); d != "" {
			t.Errorf("%d concurrent attempts (-want +got):\n%s", n, d)
		}
	})
}

func TestConsumeOTP(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, db *store.DB) {
		ctx := t.Context()
		f := newOTPFixture(t, db)
		if ok, err := db.ConsumeOTP(ctx, f.ref(), "h", nil); err != nil || ok {
			t.Errorf("ConsumeOTP with no code = %v, %v", ok, err)
		}
		f.mustSend(t0, "h")
		if ok, err := db.ConsumeOTP(ctx, f.ref(), "wrong", nil); err != nil || ok {
			t.Errorf("ConsumeOTP(wrong hash) = %v, %v", ok, err)
		}
		if ok, err := db.ConsumeOTP(ctx, kyc.CodeRef{TenantID: "tb", Address: f.address}, "h", nil); err != nil || ok {
			t.Errorf("ConsumeOTP through another tenant = %v, %v", ok, err)
		}
		if enrollmentOf(t, db, "ta", "ann@example.com").EmailVerified {
			t.Fatal("email verified before the code was used")
		}
		if ok, err := db.ConsumeOTP(ctx, f.ref(), "h", nil); err != nil || !ok {
			t.Fatalf("ConsumeOTP = %v, %v; want true", ok, err)
		}
		if !enrollmentOf(t, db, "ta", "ann@example.com").EmailVerified {
			t.Error("email not verified after ConsumeOTP")
		}
		if enrollmentOf(t, db, "tb", "ann@example.com").EmailVerified {
			t.Error("email verified for the other tenant too")
		}
		if ok, err := db.ConsumeOTP(ctx, f.ref(), "h", nil); err != nil || ok {
			t.Errorf("second ConsumeOTP = %v, %v; want false", ok, err)
		}
	})
}

func TestConsumeOTPConcurrent(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, db *store.DB) {
		f := newOTPFixture(t, db)
		f.mustSend(t0, "h")
		other := f
		other.tenant = "tb"
		other.mustSend(t0, "h") // same hash for the other tenant, on purpose
		const n = 20
		oks := make([]bool, n)
		errs := make([]error, n)
		together(n, func(i int) { oks[i], errs[i] = db.ConsumeOTP(t.Context(), f.ref(), "h", nil) })
		noErrors(t, errs)
		won := 0
		for _, ok := range oks {
			if ok {
				won++
			}
		}
		if won != 1 {
			t.Errorf("%d of %d concurrent ConsumeOTP succeeded, want 1", won, n)
		}
		if !enrollmentOf(t, db, "ta", "ann@example.com").EmailVerified {
			t.Error("email not verified for tenant ta")
		}
		if enrollmentOf(t, db, "tb", "ann@example.com").EmailVerified {
			t.Error("tenant tb's enrollment was verified too")
		}
		other.wantAttempt(t0, "h", kyc.OTPCounted) // tb's code untouched
	})
}

func TestChallenges(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, db *store.DB) {
		ctx := t.Context()
		c := kyc.Challenge{Nonce: "n1", TenantID: "ta", Wallet: "0xAbC", Chain: "evm",
			Message: "StarkFi KYC verification\nWallet: 0xAbC\n…", ExpiresAt: at(otpTTL)}
		must(t, db.SaveChallenge(ctx, c))
		if err := db.SaveChallenge(ctx, c); err == nil {
			t.Error("SaveChallenge accepted a nonce twice")
		}
		got, err := db.FindChallenge(ctx, "n1")
		must(t, err)
		if d := cmp.Diff(c, got); d != "" {
			t.Errorf("FindChallenge (-want +got):\n%s", d)
		}
		if _, err := db.FindChallenge(ctx, "nope"); !isNotFound(err) {
			t.Errorf("FindChallenge(unknown) err = %v, want ErrNotFound", err)
		}
		if ok, err := consumeChallenge(t, db, "nope", t0); err != nil || ok {
			t.Errorf("ConsumeChallenge(unknown) = %v, %v", ok, err)
		}
		if ok, err := consumeChallenge(t, db, "n1", at(time.Minute)); err != nil || !ok {
			t.Fatalf("ConsumeChallenge = %v, %v", ok, err)
		}
		if ok, err := consumeChallenge(t, db, "n1", at(2*time.Minute)); err != nil || ok {
			t.Errorf("second ConsumeChallenge = %v, %v", ok, err)
		}
		got, err = db.FindChallenge(ctx, "n1")
		must(t, err)
		if got.UsedAt == nil || !got.UsedAt.Equal(at(time.Minute)) {
			t.Errorf("UsedAt = %v, want the first use, t0+1m", got.UsedAt)
		}
	})
}

func TestConsumeChallengeConcurrent(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, db *store.DB) {
		must(t, db.SaveChallenge(t.Context(), kyc.Challenge{Nonce: "n", TenantID: "ta", Wallet: "w",
			Chain: "solana", Message: "m", ExpiresAt: at(otpTTL)}))
		const n = 20
		oks := make([]bool, n)
		errs := make([]error, n)
		together(n, func(i int) { oks[i], errs[i] = consumeChallenge(t, db, "n", at(time.Duration(i)*time.Second)) })
		noErrors(t, errs)
		winner := -1
		for i, ok := range oks {
			if ok {
				if winner >= 0 {
					t.Fatalf("challenge consumed by %d and %d", winner, i)
				}
				winner = i
			}
		}
		if winner < 0 {
			t.Fatal("nobody consumed the challenge")
		}
		got, err := db.FindChallenge(t.Context(), "n")
		must(t, err)
		if got.UsedAt == nil || !got.UsedAt.Equal(at(time.Duration(winner)*time.Second)) {
			t.Errorf("UsedAt = %v, want the winner's time", got.UsedAt)
		}
	})
}

// consumeChallenge is a transaction that only consumes the challenge.
func consumeChallenge(t *testing.T, db *store.DB, nonce string, at time.Time) (used bool, err error) {
	err = db.InTx(t.Context(), func(tx kyc.Tx) (err error) {
		used, err = tx.ConsumeChallenge(t.Context(), nonce, at)
		return err
	})
	return used, err
}

// A link's code (docs/api.md §6.1) has a slot of its own: it neither replaces
// nor is replaced by the address's own code or another wallet's, its
// attempts are its own, and it proves only its link. The send limits count
// every code mailed to the address at the tenant, whatever it is for.
func TestLinkCodes(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, db *store.DB) {
		ctx := t.Context()
		own := newOTPFixture(t, db)
		w1, w2 := own, own
		w1.wallet, w2.wallet = evmW1, evmW2

		own.mustSend(t0, "own")
		w1.refused(at(time.Second), at(otpGap)) // the address's gap
		w1.mustSend(at(otpGap), "w1")
		own.refused(at(otpGap+time.Second), at(2*otpGap))
		w2.mustSend(at(2*otpGap), "w2")
		// Each slot keeps its code.
		own.wantAttempt(at(2*otpGap), "own", kyc.OTPCounted)
		w1.wantAttempt(at(2*otpGap), "w1", kyc.OTPCounted)
		w2.wantAttempt(at(2*otpGap), "w2", kyc.OTPCounted)
		// Attempts are per slot: w1's code dies alone.
		for range maxAttempts - 1 {
			w1.wantAttempt(at(2*otpGap), "w1", kyc.OTPCounted)
		}
		w1.wantAttempt(at(2*otpGap), "", kyc.OTPNoAttemptsLeft)
		w2.wantAttempt(at(2*otpGap), "w2", kyc.OTPCounted)
		// The window: five sends to the address within the hour, of any kind.
		own.mustSend(at(3*otpGap), "own2")
		w2.mustSend(at(4*otpGap), "w2b")
		w1.refused(at(5*otpGap), t0.Add(otpWindow))
		// ConsumeOTP is for the address's own code only; a link's is used in
		// its transaction, once.
		if ok, err := db.ConsumeOTP(ctx, w2.ref(), "w2b", nil); err == nil || ok {
			t.Errorf("ConsumeOTP of a link code = %v, %v; want an error", ok, err)
		}
		consume := func(f otpFixture, hash string) bool {
			t.Helper()
			var used bool
			must(t, db.InTx(ctx, func(tx kyc.Tx) (err error) { used, err = tx.ConsumeCode(ctx, f.ref(), hash); return err }))
			return used
		}
		if consume(w1, "w2b") || consume(own, "w2b") {
			t.Error("w2's code was used through another slot")
		}
		if !consume(w2, "w2b") || consume(w2, "w2b") {
			t.Error("w2's code: want exactly one use")
		}
		if enrollmentOf(t, db, "ta", own.address).EmailVerified {
			t.Error("a link code's use verified the address's own enrollment")
		}
		own.wantAttempt(at(4*otpGap), "own2", kyc.OTPCounted)
	})
}
