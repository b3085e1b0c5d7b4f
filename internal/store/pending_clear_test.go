package store

import (
	"context"
	"database/sql"
	"testing"
	"time"

	"github.com/kycgate/kycgate/internal/kyc"
	"github.com/kycgate/kycgate/internal/store/storetest"
)

// A pending email that its OTP proves becomes the person's and leaves the
// enrollment; one that stays pending (its address has another owner) keeps
// its link. The API cannot see the column, so this reads it.
func TestConsumeOTPClearsPromotedPendingEmail(t *testing.T) {
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			ctx := context.Background()
			db, err := Open(ctx, e.URL, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
			if err := db.CreateTenant(ctx, kyc.Tenant{ID: "ta", Name: "A", KYCEnabled: true, CreatedAt: now},
				kyc.APIKey{ID: "k", TenantID: "ta", Hash: "h", Prefix: "kg_a", CreatedAt: now}); err != nil {
				t.Fatal(err)
			}
			if err := db.CreateTenant(ctx, kyc.Tenant{ID: "tb", Name: "B", KYCEnabled: true, CreatedAt: now},
				kyc.APIKey{ID: "kb", TenantID: "tb", Hash: "hb", Prefix: "kg_b", CreatedAt: now}); err != nil {
				t.Fatal(err)
			}
			pending := func(personID string) sql.NullString {
				t.Helper()
				var p sql.NullString
				if err := db.r.QueryRowContext(ctx, `SELECT pending_email FROM enrollments
					WHERE tenant_id = 'ta' AND person_id = $1`, personID).Scan(&p); err != nil {
					t.Fatal(err)
				}
				return p
			}
			for _, tc := range []struct {
				person, wallet, email string
				takenMeanwhile        bool // another person owns the address by the time of the proof
				want                  sql.NullString
			}{
				{"ps_free", "0x1111111111111111111111111111111111111111", "free@example.com", false, sql.NullString{}},
				{"ps_taken", "0x2222222222222222222222222222222222222222", "taken@example.com", true,
					sql.NullString{String: "taken@example.com", Valid: true}},
			} {
				p, _, _, err := db.PrepareWallet(ctx, "ta", tc.person, kyc.WalletProof{Wallet: tc.wallet, Chain: "evm"}, tc.email, now)
				if err != nil {
					t.Fatal(err)
				}
				if got := pending(p.ID); got.String != tc.email {
					t.Fatalf("%s: pending_email before the proof = %v", tc.email, got)
				}
				if tc.takenMeanwhile {
					if _, _, _, err := db.PrepareEmail(ctx, "tb", "ps_owner", tc.email, now); err != nil {
						t.Fatal(err)
					}
				}
				if ok, _, err := db.SaveOTP(ctx, kyc.OTPSend{TenantID: "ta", Subject: tc.email, CodeHash: "c", Now: now,
					ExpiresAt: now.Add(time.Minute), Window: time.Hour, MaxPerWindow: 5}); err != nil || !ok {
					t.Fatalf("SaveOTP = %v, %v", ok, err)
				}
				if ok, err := db.ConsumeOTP(ctx, "ta", tc.email, p.ID, "c"); err != nil || !ok {
					t.Fatalf("ConsumeOTP = %v, %v", ok, err)
				}
				if got := pending(p.ID); got != tc.want {
					t.Errorf("%s: pending_email after the proof = %v, want %v", tc.email, got, tc.want)
				}
			}
		})
	}
}
