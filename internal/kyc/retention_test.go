package kyc_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/kycgate/kycgate/internal/kyc"
	"github.com/kycgate/kycgate/internal/store"
	"github.com/kycgate/kycgate/internal/store/storetest"
)

// retentionRig is a sessRig on any engine whose service keeps decisions
// for retain.
func retentionRig(t *testing.T, url string, retain time.Duration) *sessRig {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, url, store.Options{})
	must(t, err)
	t.Cleanup(func() { db.Close() })
	r := &sessRig{db: db, clock: &testClock{t: time.Date(2026, 3, 10, 9, 0, 0, 0, time.UTC)},
		mail: &sessMailer{codes: map[string]string{}}}
	r.svc, err = kyc.NewService(kyc.Deps{Store: db, Mailer: r.mail, Provider: &sessProvider{}, Clock: r.clock},
		kyc.Config{Secret: []byte(strings.Repeat("k", 32)), DecisionRetention: retain})
	must(t, err)
	zero := 0
	r.tenant, r.key, err = r.svc.CreateTenant(ctx, kyc.NewTenant{Name: "T", MonthlyQuota: &zero})
	must(t, err)
	return r
}

// decided verifies email, opens its session and decides it now.
func (r *sessRig) decided(t *testing.T, email string, status kyc.DiditStatus) string {
	t.Helper()
	r.verified(t, email)
	s := r.create(t, email, kyc.CreateNew)
	must(t, r.svc.HandleEvent(context.Background(), kyc.SessionEvent{SessionID: s.ID, Status: status,
		At: r.clock.Now(), Decision: ipDecision(status, "10.1.2.3", false)}))
	return s.ID
}

// TestRetentionPrunesOldDecisions: a decision older than the retention
// loses its blob and IP/device facts and keeps its status; a newer one is
// kept whole; pruning again changes nothing.
func TestRetentionPrunesOldDecisions(t *testing.T) {
	t.Parallel()
	const year = 365 * 24 * time.Hour
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			ctx := context.Background()
			r := retentionRig(t, e.URL, year)
			oldID := r.decided(t, "old@example.com", kyc.StatusApproved)
			r.clock.add(200 * 24 * time.Hour)
			newID := r.decided(t, "new@example.com", kyc.StatusDeclined)
			r.clock.add(year - 100*24*time.Hour) // old: 465 days, new: 265 days

			if _, err := r.svc.Prune(ctx); err != nil {
				t.Fatal(err)
			}
			old := r.session(t, oldID)
			if old.Status != kyc.StatusApproved || string(old.Decision) != "{}" || len(old.IPInfo) != 0 || old.Watch {
				t.Fatalf("old session after prune: status %s, decision %s, ip_info %v, watch %v", old.Status, old.Decision, old.IPInfo, old.Watch)
			}
			st := r.status(t, "old@example.com")
			if !st.Approved || st.Status != "approved" || string(st.Session.IPInfo) != "[]" {
				t.Fatalf("status of the pruned session: %+v (ip_info %s)", st, st.Session.IPInfo)
			}
			kept := r.session(t, newID)
			if kept.Status != kyc.StatusDeclined || !strings.Contains(string(kept.Decision), "10.1.2.3") || len(kept.IPInfo) != 1 {
				t.Fatalf("new session after prune: decision %s, ip_info %v", kept.Decision, kept.IPInfo)
			}
			if n, err := r.svc.Prune(ctx); err != nil || n != 0 {
				t.Fatalf("second prune = %d, %v; want nothing left to prune", n, err)
			}
			// A year past the newer decision it goes too.
			r.clock.add(101 * 24 * time.Hour)
			if n, err := r.svc.Prune(ctx); err != nil || n != 1 {
				t.Fatalf("prune a year after the newer decision = %d, %v; want 1", n, err)
			}
			if st := r.status(t, "new@example.com"); st.Status != "declined" || string(st.Session.IPInfo) != "[]" {
				t.Fatalf("status of the second pruned session: %+v", st)
			}
		})
	}
}

// TestRetentionForever: with no retention decisions stay, however old.
func TestRetentionForever(t *testing.T) {
	t.Parallel()
	r := retentionRig(t, storetest.SQLiteURL(t), 0)
	id := r.decided(t, "kept@example.com", kyc.StatusApproved)
	r.clock.add(10 * 365 * 24 * time.Hour)
	if _, err := r.svc.Prune(context.Background()); err != nil {
		t.Fatal(err)
	}
	if s := r.session(t, id); len(s.IPInfo) != 1 || !strings.Contains(string(s.Decision), "10.1.2.3") {
		t.Fatalf("decision pruned without a retention: %s %v", s.Decision, s.IPInfo)
	}
}
