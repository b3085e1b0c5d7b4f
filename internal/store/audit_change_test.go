package store_test

import (
	"testing"
	"time"

	"github.com/kycgate/kycgate/internal/kyc"
	"github.com/kycgate/kycgate/internal/store"
)

// auditedOnce fails unless the log holds want (matched by its action)
// exactly once, field for field.
func auditedOnce(t *testing.T, db *store.DB, want kyc.AuditEntry) {
	t.Helper()
	auditedTimes(t, db, want, 1)
}

func auditedTimes(t *testing.T, db *store.DB, want kyc.AuditEntry, n int) {
	t.Helper()
	got, err := db.ListAudit(t.Context(), kyc.AuditFilter{Action: want.Action, Limit: 10})
	must(t, err)
	if len(got) != n {
		t.Fatalf("%s: %d audit entries, want %d", want.Action, len(got), n)
	}
	for _, e := range got {
		e.ID = 0
		if e != want {
			t.Errorf("%s: entry %+v\nwant %+v", want.Action, e, want)
		}
	}
}

// The hottest changes write their audit entry themselves, in their own
// transaction (or statement): the entry is there when the change is, and
// never when it is not.
func TestAuditWrittenWithItsChange(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, db *store.DB) {
		ctx := t.Context()
		f := newOTPFixture(t, db)
		rec := func(action string) kyc.AuditEntry {
			e := auditEntry("ta", 1, 0)
			e.Action = action
			return e
		}

		// ConsumeOTP: only when the code is used.
		used := rec("test.code_used")
		f.mustSend(t0, "h")
		if ok, err := db.ConsumeOTP(ctx, f.ref(), "wrong", nil, &used); err != nil || ok {
			t.Fatalf("ConsumeOTP(wrong hash) = %v, %v", ok, err)
		}
		auditedTimes(t, db, used, 0)
		if ok, err := db.ConsumeOTP(ctx, f.ref(), "h", nil, &used); err != nil || !ok {
			t.Fatalf("ConsumeOTP = %v, %v", ok, err)
		}
		auditedOnce(t, db, used)
		if ok, err := db.ConsumeOTP(ctx, f.ref(), "h", nil, &used); err != nil || ok {
			t.Fatalf("second ConsumeOTP = %v, %v", ok, err)
		}
		auditedOnce(t, db, used)

		// ConfirmOTP: whether or not the send was still leased (the mail
		// went either way), and the send counted once.
		sent := rec("test.code_sent")
		later := t0.Add(2 * otpGap)
		if ok, _ := f.sendUnconfirmed(later, "h2"); !ok {
			t.Fatal("second send refused")
		}
		must(t, db.ConfirmOTP(ctx, f.ref(), later, &sent))
		auditedOnce(t, db, sent)
		must(t, db.ConfirmOTP(ctx, f.ref(), later, &sent))
		auditedTimes(t, db, sent, 2)
		usage, err := db.MonthUsage(ctx, "ta", later.UTC().Format("2006-01"))
		must(t, err)
		if usage.CodesSent != 2 {
			t.Errorf("codes sent = %d, want 2 (the first send and this one, once)", usage.CodesSent)
		}

		// SaveChallenge: a refused insert (the nonce is taken) leaves no entry.
		issued := rec("test.challenge_issued")
		c := kyc.Challenge{Nonce: "nonce-audit", TenantID: "ta", Wallet: "w", Chain: "evm", Message: "m",
			ExpiresAt: t0.Add(time.Minute)}
		must(t, db.SaveChallenge(ctx, c, &issued))
		auditedOnce(t, db, issued)
		if err := db.SaveChallenge(ctx, c, &issued); err == nil {
			t.Fatal("SaveChallenge with a taken nonce succeeded")
		}
		auditedOnce(t, db, issued)
	})
}

// UseOTP counts, compares and uses in one primitive: on SQLite one
// transaction that carries the attempt's entry whether it matched or not;
// on PostgreSQL the entry goes with the use, and a miss is the caller's to
// log.
func TestUseOTP(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, db *store.DB) {
		ctx := t.Context()
		f := newOTPFixture(t, db)
		sqlite := db.Dialect() == store.SQLite
		used, missed := auditEntry("ta", 1, 0), auditEntry("ta", 2, 0)
		used.Action, missed.Action = "test.use_ok", "test.use_missed"
		is := func(want string) func(string) bool { return func(h string) bool { return h == want } }
		use := func(match func(string) bool) kyc.OTPUse {
			t.Helper()
			u, err := db.UseOTP(ctx, f.ref(), 5, t0, match, nil, &used, &missed)
			must(t, err)
			return u
		}

		if u := use(is("h")); u != (kyc.OTPUse{Attempt: kyc.OTPNone}) {
			t.Fatalf("no code: %+v", u)
		}
		f.mustSend(t0, "h")
		for i := range 4 {
			if u := use(is("wrong")); u != (kyc.OTPUse{Attempt: kyc.OTPCounted, Audited: sqlite}) {
				t.Fatalf("miss %d: %+v", i+1, u)
			}
		}
		if sqlite {
			auditedTimes(t, db, missed, 4)
		} else {
			auditedTimes(t, db, missed, 0)
		}
		if enrollmentOf(t, db, "ta", "ann@example.com").EmailVerified {
			t.Fatal("verified by a miss")
		}
		// The fifth attempt is the last: it counts, and it matches.
		if u := use(is("h")); u != (kyc.OTPUse{Attempt: kyc.OTPCounted, Used: true, Audited: true}) {
			t.Fatalf("match: %+v", u)
		}
		auditedOnce(t, db, used)
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
			if _, err := db.UseOTP(ctx, g.ref(), 5, t0, is("wrong"), nil, nil, nil); err != nil {
				t.Fatal(err)
			}
		}
		if u, err := db.UseOTP(ctx, g.ref(), 5, t0, is("hb"), nil, nil, nil); err != nil || u.Attempt != kyc.OTPNoAttemptsLeft || u.Used {
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
		together(n, func(i int) { us[i], errs[i] = db.UseOTP(t.Context(), h.ref(), n, t0, is("hc"), nil, nil, nil) })
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
		if _, err := db.UseOTP(ctx, kyc.CodeRef{TenantID: "ta", Address: f.address, Wallet: "0xabc"}, 5, t0, is("h"), nil, nil, nil); err == nil {
			t.Error("UseOTP took a link's code")
		}
	})
}
