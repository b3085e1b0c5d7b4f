package store_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/kycgate/kycgate/internal/kyc"
	"github.com/kycgate/kycgate/internal/store"
)

func auditEntry(tenant string, i int, d time.Duration) kyc.AuditEntry {
	return kyc.AuditEntry{TenantID: tenant, At: at(d), Actor: fmt.Sprintf("api_key:k%d", i%2), Action: fmt.Sprintf("act.%d", i%3),
		Subject: fmt.Sprintf("subj%d", i%4), Result: "ok", RequestID: fmt.Sprintf("rq%d", i)}
}

// checkChains reads every chain and fails unless each runs 1..n with
// every link and hash right, and nothing is left unsealed; it returns the
// length of each.
func checkChains(t *testing.T, db *store.DB) map[string]int {
	t.Helper()
	ctx := t.Context()
	chains, err := db.AuditChains(ctx)
	must(t, err)
	out := map[string]int{}
	for _, c := range chains {
		if c.Unsealed != 0 {
			t.Errorf("tenant %q: %d unsealed", c.TenantID, c.Unsealed)
		}
		var prev kyc.AuditEntry
		for after := int64(0); ; {
			page, err := db.AuditChain(ctx, c.TenantID, after, 7)
			must(t, err)
			for _, e := range page {
				if e.Seq != prev.Seq+1 || e.PrevHash != prev.Hash || e.Hash != kyc.AuditHash(e) || e.TenantID != c.TenantID {
					t.Fatalf("tenant %q: entry %+v after %+v", c.TenantID, e, prev)
				}
				prev = e
			}
			if len(page) < 7 {
				break
			}
			after = page[len(page)-1].Seq
		}
		out[c.TenantID] = int(prev.Seq)
	}
	return out
}

func TestAuditAppendSealList(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, db *store.DB) {
		ctx := t.Context()
		for i := range 12 {
			must(t, db.AppendAudit(ctx, auditEntry([]string{"tn_a", "tn_b", ""}[i%3], i, time.Duration(i)*time.Minute)))
		}
		list := func(f kyc.AuditFilter) []string {
			t.Helper()
			if f.Limit == 0 {
				f.Limit = 100
			}
			es, err := db.ListAudit(ctx, f)
			must(t, err)
			var rq []string
			for _, e := range es {
				rq = append(rq, e.RequestID)
			}
			return rq
		}
		lists := func(when string) {
			t.Helper()
			for name, c := range map[string]struct {
				f    kyc.AuditFilter
				want string
			}{
				"all":         {kyc.AuditFilter{}, "[rq11 rq10 rq9 rq8 rq7 rq6 rq5 rq4 rq3 rq2 rq1 rq0]"},
				"tenant":      {kyc.AuditFilter{TenantID: "tn_b"}, "[rq10 rq7 rq4 rq1]"},
				"actor kind":  {kyc.AuditFilter{Actor: "api_key", Limit: 3}, "[rq11 rq10 rq9]"},
				"actor":       {kyc.AuditFilter{Actor: "api_key:k1"}, "[rq11 rq9 rq7 rq5 rq3 rq1]"},
				"other kind":  {kyc.AuditFilter{Actor: "api"}, "[]"},
				"action":      {kyc.AuditFilter{Action: "act.2", TenantID: "tn_c"}, "[]"},
				"subject":     {kyc.AuditFilter{Subject: "subj3"}, "[rq11 rq7 rq3]"},
				"since until": {kyc.AuditFilter{Since: at(3 * time.Minute), Until: at(6 * time.Minute)}, "[rq5 rq4 rq3]"},
				"before":      {kyc.AuditFilter{BeforeID: 3, Limit: 1}, "[rq1]"},
				"across":      {kyc.AuditFilter{BeforeID: 9, Limit: 4}, "[rq7 rq6 rq5 rq4]"},
			} {
				if got := fmt.Sprint(list(c.f)); got != c.want {
					t.Errorf("%s, %s: %s, want %s", when, name, got, c.want)
				}
			}
		}
		// Listing reads sealed and pending entries as one log: before any
		// sealing, with the first 6 sealed (a page then spans both), and
		// after.
		lists("none sealed")
		n, err := db.SealAudit(ctx, 6, kyc.AuditHash)
		must(t, err)
		if n != 6 {
			t.Fatalf("sealed %d, want 6", n)
		}
		lists("6 sealed")
		chains, err := db.AuditChains(ctx)
		must(t, err)
		if fmt.Sprint(chains) != "[{ 2} {tn_a 2} {tn_b 2}]" {
			t.Errorf("chains with 6 of 12 sealed: %v", chains)
		}
		// Sealed in batches; a batch ends mid-chain and the next goes on.
		for {
			n, err := db.SealAudit(ctx, 5, kyc.AuditHash)
			must(t, err)
			if n == 0 {
				break
			}
		}
		if got := checkChains(t, db); got["tn_a"] != 4 || got["tn_b"] != 4 || got[""] != 4 {
			t.Fatalf("chains %v; want 4 each", got)
		}
		lists("all sealed")
	})
}

// Sealers on several connections (replicas) while entries keep coming:
// every entry is sealed once, each chain without a gap or a repeat.
func TestAuditConcurrentSealers(t *testing.T) {
	t.Parallel()
	forEachEngineURL(t, func(t *testing.T, url string) {
		dbs := []*store.DB{openDB(t, url), openDB(t, url)}
		ctx := t.Context()
		const writers, each = 4, 40
		var appended sync.WaitGroup
		done := make(chan struct{})
		for w := range writers {
			appended.Go(func() {
				for i := range each {
					must(t, dbs[w%2].AppendAudit(ctx, auditEntry([]string{"tn_a", "tn_b"}[i%2], w*each+i, time.Duration(i)*time.Second)))
				}
			})
		}
		go func() { appended.Wait(); close(done) }()
		var sealers sync.WaitGroup
		sealed := make([]int, 4)
		for s := range sealed {
			sealers.Go(func() {
				for {
					select {
					case <-done:
						// One more pass after the last append.
						for {
							n, err := dbs[s%2].SealAudit(ctx, 3, kyc.AuditHash)
							if err != nil {
								t.Error(err)
								return
							}
							sealed[s] += n
							if n == 0 {
								return
							}
						}
					default:
					}
					n, err := dbs[s%2].SealAudit(ctx, 3, kyc.AuditHash)
					if err != nil {
						t.Error(err)
						return
					}
					sealed[s] += n
				}
			})
		}
		sealers.Wait()
		total := 0
		for _, n := range sealed {
			total += n
		}
		if total != writers*each {
			t.Errorf("sealed %d entries in all, want %d", total, writers*each)
		}
		if got := checkChains(t, dbs[0]); got["tn_a"] != writers*each/2 || got["tn_b"] != writers*each/2 {
			t.Errorf("chains %v; want %d each", got, writers*each/2)
		}
	})
}

func TestPruneAudit(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, db *store.DB) {
		ctx := t.Context()
		// tn_a: entries at 0..9 h; tn_b: two at 0 h; one unsealed old one.
		for i := range 10 {
			must(t, db.AppendAudit(ctx, auditEntry("tn_a", i, time.Duration(i)*time.Hour)))
		}
		must(t, db.AppendAudit(ctx, auditEntry("tn_b", 0, 0)))
		must(t, db.AppendAudit(ctx, auditEntry("tn_b", 1, 0)))
		_, err := db.SealAudit(ctx, 100, kyc.AuditHash)
		must(t, err)
		// An entry sealed after a newer one (a replica's clock behind):
		// the prefix ends before it, not after.
		must(t, db.AppendAudit(ctx, auditEntry("tn_a", 10, 2*time.Hour)))
		_, err = db.SealAudit(ctx, 1, kyc.AuditHash)
		must(t, err)
		must(t, db.AppendAudit(ctx, auditEntry("tn_c", 0, 0)))

		n, err := db.Prune(ctx, kyc.PruneBefore{Audit: at(5 * time.Hour)})
		must(t, err)
		// tn_a: seq 1-5 (0-4 h) go, 6-11 stay; tn_b: both older, the head stays;
		// tn_c: unsealed, stays.
		if n != 6 {
			t.Errorf("pruned %d, want 6", n)
		}
		chains, err := db.AuditChains(ctx)
		must(t, err)
		if fmt.Sprint(chains) != "[{tn_a 0} {tn_b 0} {tn_c 1}]" {
			t.Errorf("chains %v", chains)
		}
		a, err := db.AuditChain(ctx, "tn_a", 0, 100)
		must(t, err)
		if len(a) != 6 || a[0].Seq != 6 || a[5].Seq != 11 {
			t.Errorf("tn_a left %d entries from seq %d", len(a), a[0].Seq)
		}
		b, err := db.AuditChain(ctx, "tn_b", 0, 100)
		must(t, err)
		if len(b) != 1 || b[0].Seq != 2 {
			t.Errorf("tn_b left %+v; want its head", b)
		}
		// Idempotent: again, nothing.
		if n, err := db.Prune(ctx, kyc.PruneBefore{Audit: at(5 * time.Hour)}); err != nil || n != 0 {
			t.Errorf("second prune = %d, %v", n, err)
		}
		// Zero keeps everything.
		if n, err := db.Prune(ctx, kyc.PruneBefore{}); err != nil || n != 0 {
			t.Errorf("prune without retention = %d, %v", n, err)
		}
	})
}

// TestAuditAppendConcurrent: entries appended at once by many callers
// are written in shared batches (more than one batch's worth, so the
// queue is split), each exactly once and whole, and every caller hears
// back only after its entry is in the table.
func TestAuditAppendConcurrent(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, db *store.DB) {
		ctx := t.Context()
		const n = 700
		want := map[string]kyc.AuditEntry{}
		for i := range n {
			e := auditEntry([]string{"tn_a", "tn_b"}[i%2], i, time.Duration(i)*time.Second)
			want[e.RequestID] = e
		}
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for _, e := range want {
			wg.Go(func() {
				if err := db.AppendAudit(ctx, e); err != nil {
					errs <- err
					return
				}
				// Committed before AppendAudit returned: visible now.
				got, err := db.ListAudit(ctx, kyc.AuditFilter{TenantID: e.TenantID, Actor: e.Actor, Since: e.At, Until: e.At.Add(time.Millisecond), Limit: 10})
				if err != nil || len(got) != 1 || got[0].RequestID != e.RequestID {
					errs <- fmt.Errorf("entry %s after its append: %+v, %v", e.RequestID, got, err)
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		for before := int64(0); ; {
			page, err := db.ListAudit(ctx, kyc.AuditFilter{BeforeID: before, Limit: 1000})
			must(t, err)
			for _, e := range page {
				w, ok := want[e.RequestID]
				if !ok || seen[e.RequestID] || e.TenantID != w.TenantID || !e.At.Equal(w.At) || e.Actor != w.Actor ||
					e.Action != w.Action || e.Subject != w.Subject || e.Result != w.Result {
					t.Fatalf("entry %+v: want %+v, seen before %v", e, w, seen[e.RequestID])
				}
				seen[e.RequestID] = true
				before = e.ID
			}
			if len(page) < 1000 {
				break
			}
		}
		if len(seen) != n {
			t.Fatalf("%d entries in the table, want %d", len(seen), n)
		}
	})
}

// TestAuditAppendClosed: a failed write answers every caller with the
// error; none waits for ever.
func TestAuditAppendClosed(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, db *store.DB) {
		must(t, db.Close())
		var wg sync.WaitGroup
		for i := range 20 {
			wg.Go(func() {
				if err := db.AppendAudit(t.Context(), auditEntry("tn_a", i, 0)); err == nil {
					t.Error("append on a closed database succeeded")
				}
			})
		}
		wg.Wait()
	})
}
