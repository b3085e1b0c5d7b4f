package store_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/kycgate/kycgate/internal/kyc"
	"github.com/kycgate/kycgate/internal/store"
)

// TestDiditDeletionQueue: a deletion is leased to one claimer at a time,
// only its holder records the outcome, and a failed one waits for its
// next attempt.
func TestDiditDeletionQueue(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		mkTenant(t, db, "ta")
		p := mkPerson(t, db, "ta", "alive@example.com")
		if q, err := db.QueueOrphanDeletion(ctx, "s-alive", p.ID, t0); err != nil || q {
			t.Fatalf("queued a session of a living person: %v, %v", q, err)
		}
		for i := range 5 {
			if q, err := db.QueueOrphanDeletion(ctx, fmt.Sprintf("s-%d", i), "ps_gone", t0); err != nil || !q {
				t.Fatalf("queue orphan: %v, %v", q, err)
			}
		}
		claim := func(token string, now time.Time) []kyc.DiditDeletion {
			ds, err := db.ClaimDiditDeletions(ctx, kyc.DeletionClaim{Token: token, Now: now, Due: now,
				Until: now.Add(time.Minute), Limit: 10})
			if err != nil {
				t.Fatal(err)
			}
			return ds
		}
		// Eight claimers at once: every deletion goes to exactly one.
		var mu sync.Mutex
		got := map[string]string{}
		together(8, func(i int) {
			tok := fmt.Sprintf("tok-%d", i)
			for _, d := range claim(tok, t0) {
				mu.Lock()
				if prev, dup := got[d.SessionID]; dup {
					t.Errorf("%s claimed by %s and %s", d.SessionID, prev, tok)
				}
				got[d.SessionID] = tok
				mu.Unlock()
			}
		})
		if len(got) != 5 {
			t.Fatalf("claimed %d of 5", len(got))
		}
		if ds := claim("late", at(30*time.Second)); len(ds) != 0 {
			t.Fatalf("claimed leased deletions: %+v", ds)
		}
		tok0 := got["s-0"]
		if err := db.FinishDiditDeletion(ctx, kyc.DeletionOutcome{SessionID: "s-0", Token: "other", Done: true}); !isConflict(err) {
			t.Fatalf("finish by a non-holder: %v", err)
		}
		must(t, db.FinishDiditDeletion(ctx, kyc.DeletionOutcome{SessionID: "s-0", Token: tok0, Error: "HTTP 502",
			NextAt: at(10 * time.Minute)}))
		must(t, db.FinishDiditDeletion(ctx, kyc.DeletionOutcome{SessionID: "s-1", Token: got["s-1"], Done: true}))
		// After the leases lapse: the failed one is not due yet.
		ds := claim("next", at(2*time.Minute))
		if len(ds) != 3 {
			t.Fatalf("after the leases: %+v", ds)
		}
		if again := claim("again", at(150*time.Second)); len(again) != 0 {
			t.Fatalf("claimed leased or undue deletions: %+v", again)
		}
		for _, d := range ds {
			must(t, db.FinishDiditDeletion(ctx, kyc.DeletionOutcome{SessionID: d.SessionID, Token: "next", Done: true}))
		}
		ds = claim("later", at(11*time.Minute))
		if len(ds) != 1 || ds[0].SessionID != "s-0" || ds[0].Attempts != 1 || ds[0].LastError != "HTTP 502" {
			t.Fatalf("the failed one when due: %+v", ds)
		}
		all, err := db.DiditDeletions(ctx)
		if err != nil || len(all) != 1 {
			t.Fatalf("queue: %+v, %v", all, err)
		}
	})
}
