package kyc_test

// Lock ordering on PostgreSQL: a link transaction holds the persons it
// decides on while other requests that only refer to those persons (a
// registration's enrollment, a creation claim, a stored session) run to
// the end instead of queueing behind it. They used to wait, each holding a
// lock the link needed next: deadlocks, answered with 500s. SQLite runs one
// write transaction at a time, so these are PostgreSQL's alone.

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kycgate/kycgate/internal/kyc"
	"github.com/kycgate/kycgate/internal/store"
	"github.com/kycgate/kycgate/internal/store/storetest"
)

// pausingStore is the real store whose identity transactions stop at one
// Tx method (once), holding their locks, until the test lets them go on.
type pausingStore struct {
	*store.DB
	mu     sync.Mutex
	at     string
	paused chan struct{}
	resume chan struct{}
}

func (s *pausingStore) pauseAt(method string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.at, s.paused, s.resume = method, make(chan struct{}), make(chan struct{})
}

func (s *pausingStore) reached(method string) {
	s.mu.Lock()
	hit := s.at == method
	if hit {
		s.at = ""
	}
	paused, resume := s.paused, s.resume
	s.mu.Unlock()
	if hit {
		close(paused)
		<-resume
	}
}

func (s *pausingStore) InTx(ctx context.Context, fn func(kyc.Tx) error) error {
	return s.DB.InTx(ctx, func(tx kyc.Tx) error { return fn(pausingTx{tx, s}) })
}

type pausingTx struct {
	kyc.Tx
	s *pausingStore
}

func (t pausingTx) ConsumeCode(ctx context.Context, c kyc.CodeRef, h string) (bool, error) {
	t.s.reached("ConsumeCode")
	return t.Tx.ConsumeCode(ctx, c, h)
}

func (t pausingTx) MergePerson(ctx context.Context, from, into string, now time.Time) error {
	t.s.reached("MergePerson")
	return t.Tx.MergePerson(ctx, from, into, now)
}

func newPausingRig(t *testing.T) (*idRig, *pausingStore) {
	t.Helper()
	url, ok := storetest.PostgresURL(t)
	if !ok {
		t.Skip("PostgreSQL only: SQLite runs one write transaction at a time")
	}
	r := newIDRig(t, url)
	ps := &pausingStore{DB: r.db}
	svc, err := kyc.NewService(kyc.Deps{Store: ps, Mailer: r.mail, Provider: r.prov, Clock: r.clock},
		kyc.Config{Secret: []byte(strings.Repeat("k", 32))})
	if err != nil {
		t.Fatal(err)
	}
	r.svc = svc
	return r, ps
}

// guard bounds a call that must not wait for the paused transaction: if it
// waits, it fails at the deadline instead of hanging the test.
func guard() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 30*time.Second)
}

// /kyc/prepare of an address, while a link to that address holds its
// person (registered at another tenant), completes; the link then merges
// the new registration into the wallet's: one user.
func TestPrepareDuringALink(t *testing.T) {
	t.Parallel()
	r, ps := newPausingRig(t)
	a, tn := r.tenant(t, "A"), r.tenant(t, "T")
	const email = "during@example.com"
	if _, err := r.svc.Prepare(t.Context(), a, email); err != nil {
		t.Fatal(err)
	}
	wa := newIDWallet(t)
	r.named(t, tn, wa, email, kyc.LinkPending)
	if err := r.send(t, tn, email, wa.addr); err != nil {
		t.Fatal(err)
	}
	ps.pauseAt("ConsumeCode")
	var verr error
	var wg sync.WaitGroup
	wg.Go(func() {
		verr = r.svc.VerifyOTP(context.Background(), tn, kyc.OTPInput{Email: email, Code: r.mail.code(email, wa.addr), Wallet: wa.addr})
	})
	<-ps.paused // the link transaction holds the persons
	ctx, cancel := guard()
	_, perr := r.svc.Prepare(ctx, tn, email)
	cancel()
	close(ps.resume)
	wg.Wait()
	if perr != nil || verr != nil {
		t.Fatalf("prepare during the link: %v; the link: %v", perr, verr)
	}
	wantOutcome(t, "the pair", statusErr(r, t, tn, byEW(email, wa.addr)), kyc.CodeKYCNotFound)
}

// A create for the wallet's person re-takes a claim a dead replica left
// lapsed, and stores its session, after the link read that the person has
// no KYC history and while it is about to merge that person away. The
// create completes; the link sees the history, keeps the person with the
// session, and the two identifiers give that one session.
func TestCreateDuringALinkMerge(t *testing.T) {
	t.Parallel()
	r, ps := newPausingRig(t)
	tn := r.tenant(t, "T", 10)
	const email = "lapsed@example.com"
	r.verifiedEmail(t, tn, email)
	wa := newIDWallet(t)
	r.named(t, tn, wa, email, kyc.LinkPending)
	enr, err := r.db.FindEnrollment(t.Context(), tn.ID, "", wa.addr)
	if err != nil {
		t.Fatal(err)
	}
	past := r.clock.Now().Add(-time.Hour)
	if ok, err := r.db.ClaimSessionCreation(t.Context(), enr.PersonID, "dead-replica", past, past); err != nil || !ok {
		t.Fatalf("leftover claim: %v, %v", ok, err)
	}
	if err := r.send(t, tn, email, wa.addr); err != nil {
		t.Fatal(err)
	}
	ps.pauseAt("MergePerson")
	var verr error
	var wg sync.WaitGroup
	wg.Go(func() {
		verr = r.svc.VerifyOTP(context.Background(), tn, kyc.OTPInput{Email: email, Code: r.mail.code(email, wa.addr), Wallet: wa.addr})
	})
	<-ps.paused // neither person had a history when read: the wallet's is to merge away
	ctx, cancel := guard()
	created, cerr := r.svc.CreateSession(ctx, tn, kyc.KYCTypePublic, byW(wa.addr))
	cancel()
	close(ps.resume)
	wg.Wait()
	if cerr != nil || created.Kind != kyc.CreateNew || verr != nil {
		t.Fatalf("create during the merge: %+v, %v; the link: %v", created, cerr, verr)
	}
	for _, id := range []kyc.Identity{byE(email), byW(wa.addr)} {
		if got := r.mustCreate(t, tn, id, kyc.CreateExisting); got.ID != created.Session.ID {
			t.Fatalf("create %+v: %s, want %s", id, got.ID, created.Session.ID)
		}
	}
	if n := r.prov.created(); n != 1 {
		t.Fatalf("%d provider sessions for one user, want 1", n)
	}
}
