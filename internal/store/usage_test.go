package store_test

import (
	"testing"
	"time"

	"github.com/kycgate/kycgate/internal/kyc"
	"github.com/kycgate/kycgate/internal/store"
)

// TestMonthUsageCountsConfirmedCodes: a code counts once, when its send is
// confirmed, in its tenant and the month of the send; an unconfirmed or
// dropped send and a second confirmation count nothing.
func TestMonthUsageCountsConfirmedCodes(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, db *store.DB) {
		ctx := t.Context()
		f := newOTPFixture(t, db)
		month := t0.Format("2006-01")
		want := func(tenant string, sessions, codes int) {
			t.Helper()
			u, err := db.MonthUsage(ctx, tenant, month)
			must(t, err)
			if u != (kyc.MonthUsage{Month: month, Sessions: sessions, CodesSent: codes}) {
				t.Errorf("MonthUsage(%s) = %+v, want %d sessions, %d codes", tenant, u, sessions, codes)
			}
		}
		want("ta", 0, 0)
		f.mustSend(t0, "h1")
		want("ta", 0, 1)
		must(t, db.ConfirmOTP(ctx, f.ref(), t0)) // again: already confirmed
		want("ta", 0, 1)

		f.sendUnconfirmed(at(2*time.Minute), "h2")
		want("ta", 0, 1)
		must(t, db.DropOTP(ctx, f.ref(), "h2", at(2*time.Minute)))
		must(t, db.ConfirmOTP(ctx, f.ref(), at(2*time.Minute))) // dropped: nothing to confirm
		want("ta", 0, 1)

		f.mustSend(at(4*time.Minute), "h3")
		want("ta", 0, 2)
		want("tb", 0, 0)
		if u, err := db.MonthUsage(ctx, "ta", "2030-04"); err != nil || u.CodesSent != 0 {
			t.Errorf("next month: %+v, %v", u, err)
		}
	})
}

func TestTenantByID(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, db *store.DB) {
		ctx := t.Context()
		a := kyc.Tenant{ID: "ten_a", Name: "Alpha", KYCEnabled: true, MonthlyQuota: 7, RateLimitPerMinute: 9, CreatedAt: t0}
		must(t, db.CreateTenant(ctx, a, kyc.APIKey{ID: "k_a", TenantID: "ten_a", Hash: "h_a", Prefix: "kg_a", CreatedAt: t0}))
		got, err := db.Tenant(ctx, "ten_a")
		must(t, err)
		if got != a {
			t.Errorf("Tenant = %+v, want %+v", got, a)
		}
		if _, err := db.Tenant(ctx, "ten_nope"); !isNotFound(err) {
			t.Errorf("unknown tenant: err = %v, want ErrNotFound", err)
		}
	})
}
