package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/kycgate/kycgate/internal/kyc"
	"github.com/kycgate/kycgate/internal/store"
)

// TestPruneOTPRows: codes past their cutoff go, used or not, and so do send
// histories that limit nothing any more; a history with a send in the
// window stays (the next send is still refused), and pruning twice
// deletes nothing more. Before this, otp_codes and otp_sends grew with
// every address ever mailed.
func TestPruneOTPRows(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		send := func(addr string, now time.Time) bool {
			ok, _, err := db.SaveOTP(ctx, kyc.OTPSend{CodeRef: kyc.CodeRef{TenantID: "tn", Address: addr}, CodeHash: "h-" + addr,
				Now: now, LeaseUntil: now.Add(time.Minute), ExpiresAt: now.Add(10 * time.Minute),
				MinGap: time.Minute, Window: time.Hour, MaxPerWindow: 5})
			must(t, err)
			if ok {
				must(t, db.ConfirmOTP(ctx, kyc.CodeRef{TenantID: "tn", Address: addr}, now))
			}
			return ok
		}
		send("spent@example.com", t0)
		used, err := db.ConsumeOTP(ctx, kyc.CodeRef{TenantID: "tn", Address: "spent@example.com"}, "h-spent@example.com", nil)
		must(t, err)
		if !used {
			t.Fatal("code not consumed")
		}
		send("expired@example.com", t0)
		send("recent@example.com", at(2*time.Hour))

		// As the job prunes at t0 + 2h05m: codes expired an hour before,
		// histories with no send in the last hour.
		now := at(2*time.Hour + 5*time.Minute)
		p := kyc.PruneBefore{OTPCodes: now.Add(-time.Hour), OTPSends: now.Add(-time.Hour)}
		n, err := db.Prune(ctx, p)
		must(t, err)
		if n != 4 { // two codes, two histories
			t.Fatalf("pruned %d rows, want 4", n)
		}
		if _, res, err := db.CountOTPAttempt(ctx, kyc.CodeRef{TenantID: "tn", Address: "recent@example.com"}, 5, now); err != nil || res != kyc.OTPCounted {
			t.Fatalf("the recent code: %v, %v; want it kept", res, err)
		}
		if _, res, err := db.CountOTPAttempt(ctx, kyc.CodeRef{TenantID: "tn", Address: "expired@example.com"}, 5, now); err != nil || res != kyc.OTPNone {
			t.Fatalf("the expired code: %v, %v; want it gone", res, err)
		}
		if send("recent@example.com", at(2*time.Hour+30*time.Second)) {
			t.Fatal("the recent history was pruned: a send within the minimum gap went through")
		}
		if n, err := db.Prune(ctx, p); err != nil || n != 0 {
			t.Fatalf("second prune = %d, %v; want 0", n, err)
		}
	})
}

// TestPruneDecisionsBatched: more decided sessions than one batch holds
// are all pruned in one run, each once; a watched session (its decision
// still to fetch) and an open one are left alone.
func TestPruneDecisionsBatched(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		ann, _ := sessionFixture(t, db)
		const n = 1001 // two whole batches and one more row
		for i := range n {
			insertDecided(t, db, ann.ID, i, kyc.StatusApproved, false)
		}
		insertDecided(t, db, ann.ID, n, kyc.StatusApproved, true)
		insertDecided(t, db, ann.ID, n+1, kyc.StatusInProgress, false)
		p := kyc.PruneBefore{Decisions: at(time.Hour), FinalStatuses: []kyc.DiditStatus{kyc.StatusApproved, kyc.StatusDeclined}}
		got, err := db.Prune(ctx, p)
		must(t, err)
		if got != n {
			t.Fatalf("pruned %d, want %d", got, n)
		}
		for i, want := range map[int]bool{0: true, n - 1: true, n: false, n + 1: false} {
			s, err := db.SessionByID(ctx, sessionID(i))
			must(t, err)
			if pruned := string(s.Decision) == "{}" && len(s.IPInfo) == 0; pruned != want {
				t.Errorf("session %d: pruned %v, want %v (%s)", i, pruned, want, s.Decision)
			}
		}
		if got, err := db.Prune(ctx, p); err != nil || got != 0 {
			t.Fatalf("second prune = %d, %v; want 0", got, err)
		}
	})
}

func sessionID(i int) string { return fmt.Sprintf("sess-%04d", i) }

// insertDecided stores session i of the person, decided at t0 with a
// decision and IP facts.
func insertDecided(t *testing.T, db *store.DB, personID string, i int, status kyc.DiditStatus, watch bool) {
	t.Helper()
	s := newSession(sessionID(i), personID, t0)
	s.Status, s.Watch = status, watch
	s.Decision = []byte(`{"ip":"10.0.0.1"}`)
	s.IPInfo = []kyc.IPInfo{{IPAddress: "10.0.0.1", IPCountry: "Spain"}}
	insert(t, db, s)
}
