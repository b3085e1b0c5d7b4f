package store_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/kycgate/kycgate/internal/kyc"
	"github.com/kycgate/kycgate/internal/store"
)

// sessionFixture makes tenant ta and two persons, ann and bob.
func sessionFixture(t *testing.T, db *store.DB) (ann, bob kyc.Person) {
	mkTenant(t, db, "ta")
	return mkPerson(t, db, "ta", "ann@example.com"), mkPerson(t, db, "ta", "bob@example.com")
}

func newSession(id, personID string, created time.Time) kyc.Session {
	return kyc.Session{ID: id, PersonID: personID, TenantID: "ta", URL: "https://verify.example/" + id,
		Status: kyc.StatusNotStarted, EventAt: time.Unix(0, 0).UTC(), CreatedAt: created, UpdatedAt: created,
		CheckedAt: created, Watch: true}
}

// insert stores s the way CreateSession does: under a creation claim.
func insert(t *testing.T, db *store.DB, s kyc.Session) {
	t.Helper()
	token := "claim-" + s.ID
	if ok, err := db.ClaimSessionCreation(t.Context(), s.PersonID, token, s.CreatedAt.Add(time.Minute), s.CreatedAt); err != nil || !ok {
		t.Fatalf("claim for %s = %v, %v", s.ID, ok, err)
	}
	must(t, db.InsertSession(t.Context(), s, token, nil))
}

var sessionCmp = cmpopts.EquateEmpty()

func TestInsertSessionAndSessionByID(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, db *store.DB) {
		ctx := t.Context()
		ann, _ := sessionFixture(t, db)
		full := kyc.Session{ID: "s1", PersonID: ann.ID, TenantID: "ta", URL: "https://verify.example/s1?x=1&y=ü",
			Status: kyc.StatusInReview, Blocklisted: true,
			IPInfo: []kyc.IPInfo{
				{IPAddress: "203.0.113.7", IPCountry: "PT", IPState: "Lisboa", IPCity: "Lisbon", Platform: "mobile",
					DeviceBrand: "Apple", DeviceModel: "iPhone", IsVPNOrTor: true, IsDataCenter: false},
				{IPAddress: "2001:db8::1", IsDataCenter: true},
			},
			Decision: []byte(`{"status":"In Review","warnings":[{"risk":"FACE_IN_BLOCKLIST"}],"note":"ü\u2028"}`),
			EventAt:  at(1500 * time.Millisecond), CreatedAt: at(time.Second), UpdatedAt: at(2 * time.Second),
			CheckedAt: at(3 * time.Second), Watch: false, Version: 7}
		insert(t, db, full)
		got, err := db.SessionByID(ctx, "s1")
		must(t, err)
		if d := cmp.Diff(full, got); d != "" {
			t.Errorf("SessionByID (-want +got):\n%s", d)
		}

		bare := newSession("s2", ann.ID, at(time.Minute))
		insert(t, db, bare)
		got, err = db.SessionByID(ctx, "s2")
		must(t, err)
		if d := cmp.Diff(bare, got, sessionCmp); d != "" || got.Decision != nil {
			t.Errorf("SessionByID (-want +got):\n%s (decision %q)", d, got.Decision)
		}

		if _, err := db.SessionByID(ctx, "nope"); !isNotFound(err) {
			t.Errorf("SessionByID(unknown) err = %v, want ErrNotFound", err)
		}
		if err := db.InsertSession(ctx, newSession("s1", ann.ID, t0), "x", nil); !errors.Is(err, kyc.ErrExists) {
			t.Errorf("InsertSession of a stored id = %v, want ErrExists", err)
		}
		if err := db.InsertSession(ctx, newSession("s9", "ghost", t0), "x", nil); err == nil {
			t.Error("InsertSession accepted an unknown person")
		}
	})
}

func TestLatestSession(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, db *store.DB) {
		ctx := t.Context()
		ann, bob := sessionFixture(t, db)
		if _, err := db.LatestSession(ctx, ann.ID); !isNotFound(err) {
			t.Errorf("no sessions: err = %v, want ErrNotFound", err)
		}
		insert(t, db, newSession("a-old", ann.ID, at(time.Minute)))
		insert(t, db, newSession("a-new", ann.ID, at(3*time.Minute)))
		insert(t, db, newSession("a-mid", ann.ID, at(2*time.Minute)))
		insert(t, db, newSession("b-newest", bob.ID, at(time.Hour)))
		latest := func(p kyc.Person) string {
			t.Helper()
			s, err := db.LatestSession(ctx, p.ID)
			must(t, err)
			return s.ID
		}
		if got := latest(ann); got != "a-new" {
			t.Errorf("LatestSession(ann) = %s, want a-new", got)
		}
		if got := latest(bob); got != "b-newest" {
			t.Errorf("LatestSession(bob) = %s, want b-newest", got)
		}
		// Same creation time: the greater id wins, so the answer is stable.
		insert(t, db, newSession("a-tie-1", ann.ID, at(4*time.Minute)))
		insert(t, db, newSession("a-tie-2", ann.ID, at(4*time.Minute)))
		if got := latest(ann); got != "a-tie-2" {
			t.Errorf("LatestSession(ann) on a tie = %s, want a-tie-2", got)
		}
		// Updates do not reorder: creation time decides.
		old, err := db.SessionByID(ctx, "a-old")
		must(t, err)
		old.Status, old.UpdatedAt = kyc.StatusApproved, at(time.Hour)
		if _, err := db.ApplyEvent(ctx, "ev", old, at(time.Hour), nil); err != nil {
			t.Fatal(err)
		}
		if got := latest(ann); got != "a-tie-2" {
			t.Errorf("LatestSession(ann) after updating an old one = %s", got)
		}
	})
}

func TestClaimSessionCreation(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, db *store.DB) {
		ctx := t.Context()
		ann, bob := sessionFixture(t, db)
		claim := func(p kyc.Person, token string, until, now time.Time) bool {
			t.Helper()
			ok, err := db.ClaimSessionCreation(ctx, p.ID, token, until, now)
			must(t, err)
			return ok
		}
		ttl := 30 * time.Second
		if !claim(ann, "t1", at(ttl), t0) {
			t.Fatal("first claim refused")
		}
		if claim(ann, "t2", at(ttl), at(time.Second)) {
			t.Error("second token took a live claim")
		}
		if !claim(bob, "t2", at(ttl), at(time.Second)) {
			t.Error("claim for another person refused")
		}
		if !claim(ann, "t1", at(2*ttl), at(time.Second)) {
			t.Error("holder could not renew its claim")
		}
		if claim(ann, "t2", at(3*ttl), at(ttl)) {
			t.Error("renewed claim taken at its old expiry")
		}
		// Release by a non-holder does nothing.
		must(t, db.ReleaseSessionClaim(ctx, ann.ID, "t2"))
		if claim(ann, "t3", at(3*ttl), at(ttl)) {
			t.Error("claim taken after a non-holder's release")
		}
		// An expired claim (until <= now) can be taken.
		if claim(ann, "t3", at(3*ttl), at(2*ttl-time.Millisecond)) {
			t.Error("claim taken a millisecond before it expired")
		}
		if !claim(ann, "t3", at(3*ttl), at(2*ttl)) {
			t.Error("expired claim could not be taken")
		}
		if claim(ann, "t1", at(4*ttl), at(2*ttl)) {
			t.Error("the previous holder took back a claim it lost")
		}
		// Release then re-claim.
		must(t, db.ReleaseSessionClaim(ctx, ann.ID, "t3"))
		if !claim(ann, "t4", at(4*ttl), at(2*ttl)) {
			t.Error("claim refused after release")
		}

		t.Run("InsertSession releases the claim", func(t *testing.T) {
			s := newSession("s1", ann.ID, at(2*ttl))
			if err := db.InsertSession(ctx, s, "not-the-holder", nil); !isConflict(err) {
				t.Fatalf("InsertSession without the claim = %v, want ErrConflict", err)
			}
			if _, err := db.SessionByID(ctx, "s1"); !isNotFound(err) {
				t.Errorf("a refused InsertSession stored the session: %v", err)
			}
			if claim(ann, "t5", at(5*ttl), at(2*ttl)) {
				t.Error("InsertSession with another token released the claim")
			}
			must(t, db.InsertSession(ctx, newSession("s2", ann.ID, at(2*ttl)), "t4", nil))
			if !claim(ann, "t5", at(5*ttl), at(2*ttl)) {
				t.Error("claim still held after the holder's InsertSession")
			}
		})
		t.Run("InsertSession after the lease lapsed", func(t *testing.T) {
			// t5 holds the claim until 5*ttl; at 6*ttl it has lapsed.
			if err := db.InsertSession(ctx, newSession("s3", ann.ID, at(6*ttl)), "t5", nil); !isConflict(err) {
				t.Fatalf("InsertSession on a lapsed lease = %v, want ErrConflict", err)
			}
		})
		t.Run("failed InsertSession keeps the claim", func(t *testing.T) {
			if err := db.InsertSession(ctx, newSession("s2", ann.ID, at(2*ttl)), "t5", nil); err == nil {
				t.Fatal("duplicate InsertSession succeeded")
			}
			if claim(ann, "t6", at(5*ttl), at(2*ttl)) {
				t.Error("a failed InsertSession released the claim")
			}
		})
	})
}

func TestClaimSessionCreationConcurrent(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, db *store.DB) {
		ann, _ := sessionFixture(t, db)
		const n = 20
		race := func(now time.Time) {
			t.Helper()
			oks := make([]bool, n)
			errs := make([]error, n)
			together(n, func(i int) {
				oks[i], errs[i] = db.ClaimSessionCreation(t.Context(), ann.ID, fmt.Sprint("tok", now.Unix(), "_", i), now.Add(time.Minute), now)
			})
			noErrors(t, errs)
			won := 0
			for _, ok := range oks {
				if ok {
					won++
				}
			}
			if won != 1 {
				t.Errorf("at t0+%v: %d of %d concurrent claims won, want 1", now.Sub(t0), won, n)
			}
		}
		race(t0)                // no claim yet
		race(at(time.Minute))   // the previous claim just expired
		race(at(5 * time.Hour)) // long expired
	})
}

func TestApplyEvent(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, db *store.DB) {
		ctx := t.Context()
		ann, _ := sessionFixture(t, db)
		orig := newSession("s1", ann.ID, t0)
		insert(t, db, orig)
		get := func() kyc.Session {
			t.Helper()
			s, err := db.SessionByID(ctx, "s1")
			must(t, err)
			return s
		}

		next := orig
		next.Status = kyc.StatusApproved
		next.IPInfo = []kyc.IPInfo{{IPAddress: "198.51.100.1", IPCountry: "DE"}}
		next.Blocklisted = true
		next.Decision = []byte(`{"status":"Approved"}`)
		next.EventAt = at(time.Minute)
		next.UpdatedAt = at(2 * time.Minute)
		next.Watch = false
		// Fields ApplyEvent must not write:
		next.URL, next.CreatedAt, next.CheckedAt, next.TenantID = "https://evil.example", at(time.Hour), at(time.Hour), "tb"

		dup, err := db.ApplyEvent(ctx, "ev1", next, at(2*time.Minute), nil)
		if err != nil || dup {
			t.Fatalf("ApplyEvent = %v, %v", dup, err)
		}
		want := next
		want.URL, want.CreatedAt, want.CheckedAt, want.TenantID = orig.URL, orig.CreatedAt, orig.CheckedAt, orig.TenantID
		want.Version = 1
		if d := cmp.Diff(want, get()); d != "" {
			t.Errorf("after ApplyEvent (-want +got):\n%s", d)
		}

		t.Run("duplicate key changes nothing", func(t *testing.T) {
			again := get()
			again.Status = kyc.StatusDeclined
			dup, err := db.ApplyEvent(ctx, "ev1", again, at(3*time.Minute), nil)
			if err != nil || !dup {
				t.Fatalf("ApplyEvent(same key) = %v, %v; want duplicate", dup, err)
			}
			if d := cmp.Diff(want, get()); d != "" {
				t.Errorf("a duplicate changed the session (-want +got):\n%s", d)
			}
		})
		t.Run("stale version conflicts and records nothing", func(t *testing.T) {
			stale := next // Version 0; stored is 1
			stale.Status = kyc.StatusDeclined
			if _, err := db.ApplyEvent(ctx, "ev2", stale, at(4*time.Minute), nil); !isConflict(err) {
				t.Fatalf("ApplyEvent(stale) err = %v, want ErrConflict", err)
			}
			if d := cmp.Diff(want, get()); d != "" {
				t.Errorf("a conflicting event changed the session (-want +got):\n%s", d)
			}
			// ev2 was rolled back with the update: with the right version it applies.
			fresh := get()
			fresh.Status = kyc.StatusDeclined
			fresh.Decision = nil
			dup, err := db.ApplyEvent(ctx, "ev2", fresh, at(5*time.Minute), nil)
			if err != nil || dup {
				t.Fatalf("ApplyEvent(ev2, current version) = %v, %v; the key must not have been recorded", dup, err)
			}
			got := get()
			if got.Status != kyc.StatusDeclined || got.Version != 2 || got.Decision != nil {
				t.Errorf("after ev2: status %q version %d decision %q", got.Status, got.Version, got.Decision)
			}
		})
		t.Run("unknown session", func(t *testing.T) {
			ghost := newSession("ghost", ann.ID, t0)
			if _, err := db.ApplyEvent(ctx, "ev3", ghost, t0, nil); err == nil {
				t.Fatal("ApplyEvent on an unknown session succeeded")
			}
			insert(t, db, ghost)
			if dup, err := db.ApplyEvent(ctx, "ev3", ghost, t0, nil); err != nil || dup {
				t.Errorf("ev3 after the session exists = %v, %v; the key must not have been recorded", dup, err)
			}
		})
	})
}

func TestApplyEventConcurrent(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, db *store.DB) {
		ctx := t.Context()
		ann, _ := sessionFixture(t, db)
		base := newSession("s1", ann.ID, t0)
		base.Version = 3
		insert(t, db, base)
		const n = 20
		warm(t, db, n)
		event := func(i int, version int64) kyc.Session {
			s := base
			s.Version = version
			s.Status = kyc.StatusInProgress
			s.URL = "ignored"
			s.Decision = fmt.Appendf(nil, `{"i":%d}`, i)
			s.UpdatedAt = at(time.Duration(i+1) * time.Second)
			return s
		}

		t.Run("distinct keys, same version", func(t *testing.T) {
			dups := make([]bool, n)
			errs := make([]error, n)
			together(n, func(i int) { dups[i], errs[i] = db.ApplyEvent(ctx, fmt.Sprint("k", i), event(i, 3), t0, nil) })
			winner := -1
			for i := range n {
				switch {
				case dups[i]:
					t.Errorf("event %d reported as a duplicate", i)
				case errs[i] == nil && winner >= 0:
					t.Errorf("events %d and %d both applied", winner, i)
				case errs[i] == nil:
					winner = i
				case !isConflict(errs[i]):
					t.Errorf("event %d: %v, want nil or ErrConflict", i, errs[i])
				}
			}
			if winner < 0 {
				t.Fatal("no event applied")
			}
			got, err := db.SessionByID(ctx, "s1")
			must(t, err)
			if got.Version != 4 || string(got.Decision) != fmt.Sprintf(`{"i":%d}`, winner) {
				t.Errorf("stored version %d decision %s; want 4 and the winner's (%d)", got.Version, got.Decision, winner)
			}
			// None of the losers' keys was recorded: each applies now.
			v := int64(4)
			for i := range n {
				if i == winner {
					continue
				}
				dup, err := db.ApplyEvent(ctx, fmt.Sprint("k", i), event(i, v), t0, nil)
				if err != nil || dup {
					t.Errorf("loser %d re-applied = %v, %v", i, dup, err)
				}
				v++
			}
		})
		t.Run("same key", func(t *testing.T) {
			cur, err := db.SessionByID(ctx, "s1")
			must(t, err)
			dups := make([]bool, n)
			errs := make([]error, n)
			together(n, func(i int) { dups[i], errs[i] = db.ApplyEvent(ctx, "same", event(i, cur.Version), t0, nil) })
			noErrors(t, errs)
			applied := 0
			for _, d := range dups {
				if !d {
					applied++
				}
			}
			if applied != 1 {
				t.Errorf("%d of %d deliveries of one event applied, want 1", applied, n)
			}
			got, err := db.SessionByID(ctx, "s1")
			must(t, err)
			if got.Version != cur.Version+1 {
				t.Errorf("version %d, want %d", got.Version, cur.Version+1)
			}
		})
	})
}

func TestWatchedSessions(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, db *store.DB) {
		ctx := t.Context()
		ann, bob := sessionFixture(t, db)
		mk := func(id string, p kyc.Person, checked time.Duration, watch bool) {
			s := newSession(id, p.ID, t0)
			s.CheckedAt, s.Watch = at(checked), watch
			insert(t, db, s)
		}
		mk("a", ann, 10*time.Second, true)
		mk("b", bob, 5*time.Second, true)
		mk("c", ann, 1*time.Second, false) // not watched
		mk("d", bob, 20*time.Second, true) // checked at `before`: not listed
		mk("e", ann, 15*time.Second, true)
		ids := func(before time.Time, limit int) []string {
			t.Helper()
			list, err := db.WatchedSessions(ctx, before, limit)
			must(t, err)
			var out []string
			for _, s := range list {
				out = append(out, s.ID)
			}
			return out
		}
		check := func(before time.Time, limit int, want ...string) {
			t.Helper()
			if d := cmp.Diff(want, ids(before, limit), cmpopts.EquateEmpty()); d != "" {
				t.Errorf("WatchedSessions(t0+%v, %d) (-want +got):\n%s", before.Sub(t0), limit, d)
			}
		}
		check(at(20*time.Second), 10, "b", "a", "e")
		check(at(20*time.Second), 2, "b", "a")
		check(at(20*time.Second+time.Millisecond), 10, "b", "a", "e", "d")
		check(at(5*time.Second), 10)

		must(t, db.MarkSessionChecked(ctx, "b", at(30*time.Second)))
		check(at(20*time.Second), 10, "a", "e")
		check(at(time.Minute), 10, "a", "e", "d", "b")
		s, err := db.SessionByID(ctx, "b")
		must(t, err)
		if !s.CheckedAt.Equal(at(30*time.Second)) || s.Version != 0 {
			t.Errorf("after MarkSessionChecked: checked %v version %d", s.CheckedAt, s.Version)
		}

		// An event that ends the watch removes the session from the list.
		a, err := db.SessionByID(ctx, "a")
		must(t, err)
		a.Status, a.Watch = kyc.StatusApproved, false
		_, err = db.ApplyEvent(ctx, "ev-a", a, t0, nil)
		must(t, err)
		check(at(time.Minute), 10, "e", "d", "b")
	})
}

// quotaFixture makes claims to hold quota units: each holder is a fresh
// person registered at the tenant, with a live creation claim.
type quotaFixture struct {
	t  *testing.T
	db *store.DB
	n  int
}

func newQuotaFixture(t *testing.T, db *store.DB) *quotaFixture {
	for _, id := range []string{"ta", "tb", "tc", "td"} {
		mkTenant(t, db, id)
	}
	return &quotaFixture{t: t, db: db}
}

// holder claims a new person's creation until `until`.
func (f *quotaFixture) holder(tenant, month string, until time.Time) kyc.QuotaHold {
	f.t.Helper()
	f.n++
	p := mkPerson(f.t, f.db, tenant, fmt.Sprintf("holder%d@example.com", f.n))
	q := kyc.QuotaHold{PersonID: p.ID, Token: fmt.Sprint("tok", f.n), TenantID: tenant, Month: month}
	if ok, err := f.db.ClaimSessionCreation(f.t.Context(), q.PersonID, q.Token, until, t0); err != nil || !ok {
		f.t.Fatalf("claim = %v, %v", ok, err)
	}
	return q
}

func (f *quotaFixture) reserve(q kyc.QuotaHold, limit int) bool {
	f.t.Helper()
	ok, err := f.db.ReserveQuota(f.t.Context(), q, limit)
	must(f.t, err)
	return ok
}

func (f *quotaFixture) used(tenant, month string) int {
	f.t.Helper()
	n, err := f.db.QuotaUsed(f.t.Context(), tenant, month)
	must(f.t, err)
	return n
}

func TestQuota(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, db *store.DB) {
		ctx := t.Context()
		f := newQuotaFixture(t, db)
		live := at(time.Hour)
		if n := f.used("ta", "2030-03"); n != 0 {
			t.Errorf("fresh QuotaUsed = %d", n)
		}
		hs := make([]kyc.QuotaHold, 4)
		for i := range hs {
			hs[i] = f.holder("ta", "2030-03", live)
		}
		for i := range 3 {
			if !f.reserve(hs[i], 3) {
				t.Fatalf("reservation %d of 3 refused", i+1)
			}
		}
		if f.reserve(hs[3], 3) {
			t.Error("fourth reservation with limit 3 accepted")
		}
		if n := f.used("ta", "2030-03"); n != 3 {
			t.Errorf("QuotaUsed = %d, want 3 (a refused reservation takes nothing)", n)
		}
		// A claim that holds the unit keeps it: asking again takes nothing.
		if !f.reserve(hs[0], 3) || f.used("ta", "2030-03") != 3 {
			t.Error("a second reservation by the same claim")
		}
		// Releasing a claim gives back what it holds, once.
		must(t, db.ReleaseSessionClaim(ctx, hs[0].PersonID, hs[0].Token))
		if n := f.used("ta", "2030-03"); n != 2 {
			t.Errorf("after release QuotaUsed = %d, want 2", n)
		}
		must(t, db.ReleaseSessionClaim(ctx, hs[0].PersonID, hs[0].Token)) // holds nothing now
		if n := f.used("ta", "2030-03"); n != 2 {
			t.Errorf("a second release gave back another unit: QuotaUsed = %d", n)
		}
		must(t, db.ReleaseSessionClaim(ctx, hs[1].PersonID, hs[1].Token))
		if n := f.used("ta", "2030-03"); n != 1 {
			t.Errorf("after the second claim's release QuotaUsed = %d, want 1", n)
		}
		hs[0] = f.holder("ta", "2030-03", live)
		if !f.reserve(hs[3], 3) || !f.reserve(hs[0], 3) || f.reserve(f.holder("ta", "2030-03", live), 3) {
			t.Error("releases did not give back exactly two units")
		}
		// A lowered limit below what is used refuses without changing anything.
		if f.reserve(f.holder("ta", "2030-03", live), 1) || f.used("ta", "2030-03") != 3 {
			t.Error("lowered limit")
		}
		// A raised one allows more.
		if !f.reserve(f.holder("ta", "2030-03", live), 4) || f.used("ta", "2030-03") != 4 {
			t.Error("raised limit")
		}
		// Months and tenants are independent.
		if !f.reserve(f.holder("ta", "2030-04", live), 1) || !f.reserve(f.holder("tb", "2030-03", live), 1) {
			t.Error("another month or tenant shares the count")
		}
		if f.used("ta", "2030-04") != 1 || f.used("tb", "2030-03") != 1 || f.used("ta", "2030-03") != 4 {
			t.Error("counts mixed up")
		}
		// A zero limit allows nothing and takes nothing.
		if f.reserve(f.holder("td", "2030-03", live), 0) || f.used("td", "2030-03") != 0 {
			t.Error("reservation with limit 0")
		}
		// A claim no longer held reserves nothing.
		gone := f.holder("tc", "2030-03", live)
		must(t, db.ReleaseSessionClaim(ctx, gone.PersonID, gone.Token))
		if ok, err := db.ReserveQuota(ctx, gone, 5); !isConflict(err) || ok {
			t.Errorf("ReserveQuota on a released claim = %v, %v; want ErrConflict", ok, err)
		}
		if n := f.used("tc", "2030-03"); n != 0 {
			t.Errorf("QuotaUsed = %d after a refused claim", n)
		}
	})
}

// TestQuotaOfADeadHolder: a unit reserved by a process that died with its
// claim is never lost and never counted twice, however the claim ends.
func TestQuotaOfADeadHolder(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, db *store.DB) {
		ctx := t.Context()
		f := newQuotaFixture(t, db)
		lapses := at(time.Minute)
		after := at(2 * time.Minute)

		t.Run("the next creator inherits it", func(t *testing.T) {
			dead := f.holder("ta", "2030-03", lapses)
			if !f.reserve(dead, 5) {
				t.Fatal("refused")
			}
			next := dead
			next.Token = "next"
			if ok, err := db.ClaimSessionCreation(ctx, next.PersonID, next.Token, after.Add(time.Minute), after); err != nil || !ok {
				t.Fatalf("take over = %v, %v", ok, err)
			}
			if !f.reserve(next, 5) || f.used("ta", "2030-03") != 1 {
				t.Fatalf("after the take-over QuotaUsed = %d, want 1", f.used("ta", "2030-03"))
			}
			s := newSession("inherited", next.PersonID, after)
			must(t, db.InsertSession(ctx, s, next.Token, nil))
			if _, err := db.SweepLapsedClaims(ctx, at(time.Hour)); err != nil {
				t.Fatal(err)
			}
			if n := f.used("ta", "2030-03"); n != 1 {
				t.Errorf("a stored session's unit: QuotaUsed = %d, want 1", n)
			}
		})
		t.Run("another month trades it", func(t *testing.T) {
			dead := f.holder("tb", "2030-03", lapses)
			f.reserve(dead, 5)
			next := dead
			next.Token, next.Month = "next", "2030-04"
			if ok, err := db.ClaimSessionCreation(ctx, next.PersonID, next.Token, after.Add(time.Minute), after); err != nil || !ok {
				t.Fatalf("take over = %v, %v", ok, err)
			}
			if !f.reserve(next, 5) || f.used("tb", "2030-03") != 0 || f.used("tb", "2030-04") != 1 {
				t.Errorf("QuotaUsed = %d (March), %d (April); want 0, 1", f.used("tb", "2030-03"), f.used("tb", "2030-04"))
			}
		})
		t.Run("another tenant's unit goes back when the session is stored", func(t *testing.T) {
			dead := f.holder("tc", "2030-03", lapses)
			f.reserve(dead, 5)
			// tb (unlimited: no reservation) takes over the person's claim.
			next := dead
			next.Token = "next"
			if ok, err := db.ClaimSessionCreation(ctx, next.PersonID, next.Token, after.Add(time.Minute), after); err != nil || !ok {
				t.Fatalf("take over = %v, %v", ok, err)
			}
			s := newSession("other-tenant", next.PersonID, after)
			s.TenantID = "tb"
			must(t, db.InsertSession(ctx, s, next.Token, nil))
			if n := f.used("tc", "2030-03"); n != 0 {
				t.Errorf("tc's QuotaUsed = %d, want 0", n)
			}
		})
		t.Run("the sweep gives it back", func(t *testing.T) {
			dead := f.holder("td", "2030-03", lapses)
			alive := f.holder("td", "2030-03", at(time.Hour))
			f.reserve(dead, 5)
			f.reserve(alive, 5)
			n, err := db.SweepLapsedClaims(ctx, after)
			must(t, err)
			if n != 1 {
				t.Errorf("swept %d claims, want 1", n)
			}
			if u := f.used("td", "2030-03"); u != 1 {
				t.Errorf("after the sweep QuotaUsed = %d, want 1 (the live claim's)", u)
			}
			// Swept again, or released late by its holder: nothing more.
			n, err = db.SweepLapsedClaims(ctx, after)
			must(t, err)
			must(t, db.ReleaseSessionClaim(ctx, dead.PersonID, dead.Token))
			if u := f.used("td", "2030-03"); n != 0 || u != 1 {
				t.Errorf("second sweep: %d claims, QuotaUsed = %d; want 0, 1", n, u)
			}
			// Its holder, back from a pause, cannot store a session now.
			if err := db.InsertSession(ctx, newSession("late", dead.PersonID, lapses.Add(-time.Second)), dead.Token, nil); !isConflict(err) {
				t.Errorf("InsertSession after the sweep = %v, want ErrConflict", err)
			}
			// Prune sweeps the same way.
			if _, err := db.Prune(ctx, kyc.PruneBefore{Claims: at(2 * time.Hour)}); err != nil {
				t.Fatal(err)
			}
			if u := f.used("td", "2030-03"); u != 0 {
				t.Errorf("after Prune QuotaUsed = %d, want 0", u)
			}
		})
	})
}

func TestReserveQuotaConcurrent(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, db *store.DB) {
		const n, limit = 100, 10
		f := newQuotaFixture(t, db)
		hs := make([]kyc.QuotaHold, n)
		for i := range hs {
			hs[i] = f.holder("ta", "2030-03", at(time.Hour))
		}
		oks := make([]bool, n)
		errs := make([]error, n)
		together(n, func(i int) { oks[i], errs[i] = db.ReserveQuota(t.Context(), hs[i], limit) })
		noErrors(t, errs)
		won := 0
		for _, ok := range oks {
			if ok {
				won++
			}
		}
		if won != limit {
			t.Errorf("%d of %d concurrent reservations with limit %d succeeded", won, n, limit)
		}
		if used, err := db.QuotaUsed(t.Context(), "ta", "2030-03"); err != nil || used != limit {
			t.Errorf("QuotaUsed = %d, %v; want %d", used, err, limit)
		}
	})
}

// FindEnrollmentLatest must answer exactly what FindEnrollment and
// LatestSession answer separately, by email and by wallet; and
// StatusRead what TenantByKeyHash and FindEnrollmentLatest answer. A
// pending email is no way in.
func TestFindEnrollmentLatest(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, db *store.DB) {
		ctx := t.Context()
		ann, _ := sessionFixture(t, db)
		mkTenant(t, db, "tb")
		w := mkWallet(t, db, "ta", evmW1, "pending@example.com")
		check := func(name, email, wallet, owner string) {
			t.Helper()
			e, sess, err := db.FindEnrollmentLatest(ctx, "ta", email, wallet)
			must(t, err)
			e0, err := db.FindEnrollment(ctx, "ta", email, wallet)
			must(t, err)
			if e != e0 || e.PersonID != owner {
				t.Errorf("%s: enrollment %+v; FindEnrollment says %+v; want person %s", name, e, e0, owner)
			}
			tk, ek, sk, err := db.StatusRead(ctx, "hash_ta", email, wallet)
			must(t, err)
			tn, err := db.TenantByKeyHash(ctx, "hash_ta")
			must(t, err)
			if d := cmp.Diff(tn, tk); d != "" {
				t.Errorf("%s: StatusRead tenant (-TenantByKeyHash +got):\n%s", name, d)
			}
			if ek != e || !reflect.DeepEqual(sk, sess) {
				t.Errorf("%s: StatusRead %+v %v; FindEnrollmentLatest says %+v %v", name, ek, sk, e, sess)
			}
			want, err := db.LatestSession(ctx, owner)
			if isNotFound(err) {
				if sess != nil {
					t.Errorf("%s: no sessions, got %+v", name, *sess)
				}
				return
			}
			must(t, err)
			if sess == nil {
				t.Fatalf("%s: session nil, want %s", name, want.ID)
			}
			var ips []kyc.IPInfo
			if err := json.Unmarshal(sess.IPInfo, &ips); err != nil {
				t.Fatalf("%s: ip_info %q: %v", name, sess.IPInfo, err)
			}
			if d := cmp.Diff(want.IPInfo, ips, sessionCmp); d != "" {
				t.Errorf("%s: ip_info (-LatestSession +got):\n%s", name, d)
			}
			view := kyc.SessionView{ID: want.ID, Status: want.Status, URL: want.URL, IPInfo: sess.IPInfo, Blocklisted: want.Blocklisted}
			if d := cmp.Diff(view, *sess); d != "" {
				t.Errorf("%s: latest session (-LatestSession +got):\n%s", name, d)
			}
		}
		check("email, no session", "ann@example.com", "", ann.ID)
		check("wallet, no session", "", evmW1, w.PersonID)

		insert(t, db, newSession("a-old", ann.ID, at(time.Minute)))
		s := newSession("a-new", ann.ID, at(2*time.Minute))
		s.IPInfo = []kyc.IPInfo{{IPAddress: "192.0.2.1", IPCountry: "FR"}}
		s.Decision, s.Blocklisted = []byte(`{"status":"Approved"}`), true
		insert(t, db, s)
		insert(t, db, newSession("w-1", w.PersonID, at(time.Minute)))
		check("email", "ann@example.com", "", ann.ID)
		check("wallet", "", evmW1, w.PersonID)

		for _, id := range [][2]string{{"ann@example.com", ""}, {"", evmW1}} {
			if _, s, err := db.FindEnrollmentLatest(ctx, "tb", id[0], id[1]); !isNotFound(err) || s != nil {
				t.Errorf("tenant tb, %q: session %v err %v, want ErrNotFound", id, s, err)
			}
		}
		for _, email := range []string{"nobody@example.com", "pending@example.com"} {
			if _, _, err := db.FindEnrollmentLatest(ctx, "ta", email, ""); !isNotFound(err) {
				t.Errorf("%s: err %v, want ErrNotFound", email, err)
			}
		}

		// A good key with nobody registered under the identifier gives the
		// tenant and a zero enrollment; a bad or revoked key gives
		// ErrNotFound.
		for _, c := range []struct{ key, email, wallet string }{
			{"hash_tb", "ann@example.com", ""}, {"hash_tb", "", evmW1}, {"hash_tb", "nobody@example.com", ""},
			{"hash_ta", "pending@example.com", ""}, {"hash_ta", "", evmW2},
		} {
			tk, e, s, err := db.StatusRead(ctx, c.key, c.email, c.wallet)
			if err != nil || "hash_"+tk.ID != c.key || e != (kyc.Enrollment{}) || s != nil {
				t.Errorf("key %s, %q %q: tenant %q enrollment %+v session %v err %v; want the tenant and nobody", c.key, c.email, c.wallet, tk.ID, e, s, err)
			}
		}
		if _, _, _, err := db.StatusRead(ctx, "no such hash", "ann@example.com", ""); !isNotFound(err) {
			t.Errorf("unknown key: err %v, want ErrNotFound", err)
		}
		must(t, db.RevokeAPIKey(ctx, "ta", "key_ta", at(time.Hour)))
		if _, e, _, err := db.StatusRead(ctx, "hash_ta", "ann@example.com", ""); !isNotFound(err) || e.ID != "" {
			t.Errorf("revoked key: enrollment %q err %v, want ErrNotFound", e.ID, err)
		}
	})
}

// TestDeadHoldersUnitsUnderConcurrency: lapsed claims holding units are
// swept, taken over and released at the same time, on one process or many;
// afterwards every unit still counted belongs to a stored session.
func TestDeadHoldersUnitsUnderConcurrency(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, db *store.DB) {
		const n = 40
		f := newQuotaFixture(t, db)
		dead := make([]kyc.QuotaHold, n)
		for i := range dead {
			dead[i] = f.holder("ta", "2030-03", at(time.Minute))
			if !f.reserve(dead[i], n) {
				t.Fatal("refused")
			}
		}
		now := at(2 * time.Minute)
		errs := make([]error, 2*n)
		stored := make([]bool, n)
		together(2*n, func(i int) {
			ctx := t.Context()
			if i >= n { // sweepers and late releases by the dead holders
				if i%2 == 0 {
					_, errs[i] = db.SweepLapsedClaims(ctx, now)
				} else {
					errs[i] = db.ReleaseSessionClaim(ctx, dead[i-n].PersonID, dead[i-n].Token)
				}
				return
			}
			next := dead[i]
			next.Token = "next"
			ok, err := db.ClaimSessionCreation(ctx, next.PersonID, next.Token, now.Add(time.Minute), now)
			if err != nil || !ok {
				errs[i] = err
				return
			}
			if ok, err := db.ReserveQuota(ctx, next, n); err != nil || !ok {
				errs[i] = err
				return
			}
			if i%3 == 0 { // gives up
				errs[i] = db.ReleaseSessionClaim(ctx, next.PersonID, next.Token)
				return
			}
			errs[i] = db.InsertSession(ctx, newSession(fmt.Sprint("s", i), next.PersonID, now), next.Token, nil)
			stored[i] = errs[i] == nil
		})
		noErrors(t, errs)
		_, err := db.SweepLapsedClaims(t.Context(), at(time.Hour))
		must(t, err)
		want := 0
		for _, ok := range stored {
			if ok {
				want++
			}
		}
		if got := f.used("ta", "2030-03"); got != want {
			t.Errorf("QuotaUsed = %d with %d sessions stored", got, want)
		}
	})
}
