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
