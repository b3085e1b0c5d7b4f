package store_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kycgate/kycgate/internal/kyc"
	"github.com/kycgate/kycgate/internal/store"
)

// idemLease is a claim's lease in these tests: a request's budget and grace.
const idemLease = 35 * time.Second

func idemClaim(key, fp, token string, now time.Time) kyc.IdempotencyClaim {
	return kyc.IdempotencyClaim{TenantID: "ta", KeyHash: key, Fingerprint: fp, Token: token,
		LeaseUntil: now.Add(idemLease), ExpiresAt: now.Add(kyc.IdempotencyTTL), Now: now}
}

func claimIdem(t *testing.T, db *store.DB, c kyc.IdempotencyClaim) (bool, kyc.IdempotencyRecord) {
	t.Helper()
	won, rec, err := db.ClaimIdempotencyKey(t.Context(), c)
	must(t, err)
	return won, rec
}

// TestIdempotencyClaim: claim, complete, replay, release, take-over of a
// lapsed lease, expiry, tenants apart, and only the holder's token acts.
func TestIdempotencyClaim(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, db *store.DB) {
		ctx := t.Context()
		answer := kyc.StoredAnswer{Status: 201, ContentType: "application/json; charset=utf-8", RetryAfter: "7",
			Body: []byte(`{"statusCode":201}` + "\n")}

		if won, _ := claimIdem(t, db, idemClaim("k1", "fp", "tok1", t0)); !won {
			t.Fatal("first claim lost")
		}
		won, rec := claimIdem(t, db, idemClaim("k1", "fp", "tok2", at(time.Second)))
		if won || rec.Fingerprint != "fp" || rec.Answer != nil {
			t.Fatalf("claim while running: won %v, %+v; want the running row", won, rec)
		}
		// Another tenant's same key is another key.
		other := idemClaim("k1", "fp", "tokB", at(time.Second))
		other.TenantID = "tb"
		if won, _ := claimIdem(t, db, other); !won {
			t.Fatal("tenant tb's claim lost to tenant ta's key")
		}

		// Only the holder completes.
		must(t, db.CompleteIdempotencyKey(ctx, "ta", "k1", "tok2", kyc.StoredAnswer{Status: 400, Body: []byte("x")}))
		must(t, db.CompleteIdempotencyKey(ctx, "ta", "k1", "tok1", answer))
		won, rec = claimIdem(t, db, idemClaim("k1", "other", "tok3", at(2*time.Second)))
		if won || rec.Fingerprint != "fp" || rec.Answer == nil {
			t.Fatalf("claim after completion: won %v, %+v", won, rec)
		}
		if got := *rec.Answer; got.Status != answer.Status || got.ContentType != answer.ContentType ||
			got.RetryAfter != answer.RetryAfter || string(got.Body) != string(answer.Body) {
			t.Fatalf("stored answer %+v, want %+v", got, answer)
		}
		// A completed key outlives any lease, and a late release of it
		// does nothing.
		must(t, db.ReleaseIdempotencyKey(ctx, "ta", "k1", "tok1"))
		if won, rec := claimIdem(t, db, idemClaim("k1", "fp", "tok4", at(time.Hour))); won || rec.Answer == nil {
			t.Fatalf("completed key taken an hour later: won %v", won)
		}
		// After its 24 h the key is new again.
		if won, _ := claimIdem(t, db, idemClaim("k1", "fp2", "tok5", t0.Add(kyc.IdempotencyTTL))); !won {
			t.Fatal("expired key not taken")
		}

		// Release frees a running key at once, for its holder only.
		claimIdem(t, db, idemClaim("k2", "fp", "r1", t0))
		must(t, db.ReleaseIdempotencyKey(ctx, "ta", "k2", "intruder"))
		if won, _ := claimIdem(t, db, idemClaim("k2", "fp", "r2", at(time.Second))); won {
			t.Fatal("a stranger's release freed the key")
		}
		must(t, db.ReleaseIdempotencyKey(ctx, "ta", "k2", "r1"))
		if won, _ := claimIdem(t, db, idemClaim("k2", "fp", "r3", at(time.Second))); !won {
			t.Fatal("released key not taken")
		}

		// A holder that died: its lease lapses, a retry takes over, and
		// the dead holder's late completion stores nothing.
		claimIdem(t, db, idemClaim("k3", "fp", "dead", t0))
		if won, _ := claimIdem(t, db, idemClaim("k3", "fp", "early", at(idemLease-time.Millisecond))); won {
			t.Fatal("key taken before its lease lapsed")
		}
		if won, _ := claimIdem(t, db, idemClaim("k3", "fp", "heir", at(idemLease))); !won {
			t.Fatal("lapsed lease not taken over")
		}
		must(t, db.CompleteIdempotencyKey(ctx, "ta", "k3", "dead", answer))
		if _, rec := claimIdem(t, db, idemClaim("k3", "fp", "x", at(idemLease+time.Second))); rec.Answer != nil {
			t.Fatal("the dead holder's completion was stored")
		}
	})
}

// TestIdempotencyConcurrentClaims: 20 claims on one key at the same
// moment, on pooled connections: exactly one wins.
func TestIdempotencyConcurrentClaims(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, db *store.DB) {
		warm(t, db, 20)
		for round := range 3 {
			key := fmt.Sprintf("race%d", round)
			var wins atomic.Int32
			errs := make([]error, 20)
			together(20, func(i int) {
				won, rec, err := db.ClaimIdempotencyKey(context.Background(), idemClaim(key, "fp", fmt.Sprintf("t%d", i), t0))
				if err != nil {
					errs[i] = err
					return
				}
				if won {
					wins.Add(1)
				} else if rec.Fingerprint != "fp" {
					errs[i] = fmt.Errorf("loser read %+v", rec)
				}
			})
			noErrors(t, errs)
			if n := wins.Load(); n != 1 {
				t.Fatalf("round %d: %d claims won, want 1", round, n)
			}
		}
	})
}

// TestIdempotencyPrune: the prune job deletes keys whose 24 h ended, and
// only those.
func TestIdempotencyPrune(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, db *store.DB) {
		ctx := t.Context()
		claimIdem(t, db, idemClaim("old", "fp", "a", t0))
		must(t, db.CompleteIdempotencyKey(ctx, "ta", "old", "a", kyc.StoredAnswer{Status: 200, Body: []byte("{}")}))
		claimIdem(t, db, idemClaim("new", "fp", "b", at(time.Hour)))
		must(t, db.CompleteIdempotencyKey(ctx, "ta", "new", "b", kyc.StoredAnswer{Status: 200, Body: []byte("{}")}))
		n, err := db.Prune(ctx, kyc.PruneBefore{Idempotency: t0.Add(kyc.IdempotencyTTL)})
		must(t, err)
		if n != 1 {
			t.Fatalf("pruned %d rows, want 1", n)
		}
		if _, rec := claimIdem(t, db, idemClaim("new", "fp", "c", at(2*time.Hour))); rec.Answer == nil {
			t.Fatal("the younger key was pruned")
		}
		if won, _ := claimIdem(t, db, idemClaim("old", "fp", "d", at(2*time.Hour))); !won {
			t.Fatal("the pruned key is still held")
		}
	})
}
