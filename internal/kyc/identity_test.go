package kyc_test

// The identity rules (docs/api.md §6.1) on the real service and a real store, on
// every engine: linking an email to a wallet only by the email owner's OTP
// bound to that link, one user after it, nothing learned elsewhere, and
// exact under concurrency.

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mr-tron/base58"

	"github.com/kycgate/kycgate/internal/kyc"
	"github.com/kycgate/kycgate/internal/store"
	"github.com/kycgate/kycgate/internal/store/storetest"
)

// idMail keeps the last code mailed for each (address, link).
type idMail struct {
	mu   sync.Mutex
	last map[[2]string]string
	sent map[string]int
}

func (m *idMail) SendCode(_ context.Context, cm kyc.CodeMail) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.last[[2]string{cm.To, cm.Wallet}] = cm.Code
	m.sent[cm.To]++
	return nil
}

func (m *idMail) code(to, wallet string) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.last[[2]string{to, wallet}]
}

// idProvider makes sessions; with hold set, each create waits for a
// release after telling entered, so a test can hold a creation claim open.
type idProvider struct {
	mu      sync.Mutex
	n       int
	hold    bool
	entered chan struct{}
	release chan struct{}
	deleted []string // sessions deleted at the provider
}

func (p *idProvider) CreateSession(ctx context.Context, _ kyc.CreateSessionRequest) (kyc.ProviderSession, error) {
	p.mu.Lock()
	p.n++
	id, hold := fmt.Sprintf("sess-%d", p.n), p.hold
	p.mu.Unlock()
	if hold {
		p.entered <- struct{}{}
		select {
		case <-p.release:
		case <-ctx.Done():
			return kyc.ProviderSession{}, ctx.Err()
		}
	}
	return kyc.ProviderSession{ID: id, URL: "https://verify.example/" + id, Status: kyc.StatusNotStarted}, nil
}

func (p *idProvider) DeleteSession(_ context.Context, id string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.deleted = append(p.deleted, id)
	return nil
}

func (p *idProvider) deletions() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.deleted...)
}

func (p *idProvider) GetDecision(context.Context, string) (kyc.Decision, error) {
	return kyc.Decision{}, errors.New("not used")
}

func (p *idProvider) created() int { p.mu.Lock(); defer p.mu.Unlock(); return p.n }

type idRig struct {
	svc   *kyc.Service
	db    *store.DB
	clock *testClock
	mail  *idMail
	prov  *idProvider
}

func newIDRig(t *testing.T, url string) *idRig {
	t.Helper()
	db, err := store.Open(t.Context(), url, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	r := &idRig{db: db, clock: &testClock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)},
		mail: &idMail{last: map[[2]string]string{}, sent: map[string]int{}},
		prov: &idProvider{entered: make(chan struct{}), release: make(chan struct{})}}
	r.svc, err = kyc.NewService(kyc.Deps{Store: db, Mailer: r.mail, Provider: r.prov, Clock: r.clock},
		kyc.Config{Secret: []byte(strings.Repeat("k", 32))})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// forEachEngineRig runs fn on a fresh rig per engine.
func forEachEngineRig(t *testing.T, fn func(t *testing.T, r *idRig)) {
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) { fn(t, newIDRig(t, e.URL)) })
	}
}

func (r *idRig) tenant(t *testing.T, name string, quota ...int) kyc.Tenant {
	t.Helper()
	nt := kyc.NewTenant{Name: name}
	if len(quota) > 0 {
		nt.MonthlyQuota = &quota[0]
	}
	tn, _, err := r.svc.CreateTenant(t.Context(), nt)
	if err != nil {
		t.Fatal(err)
	}
	return tn
}

type idWallet struct {
	addr string
	key  ed25519.PrivateKey
}

func newIDWallet(t testing.TB) idWallet {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return idWallet{addr: base58.Encode(pub), key: priv}
}

func (r *idRig) prepareWallet(t testing.TB, tn kyc.Tenant, w idWallet, email string) (kyc.PrepareResult, error) {
	t.Helper()
	ch, err := r.svc.Challenge(t.Context(), tn, w.addr, "")
	if err != nil {
		t.Fatal(err)
	}
	return r.svc.PrepareWallet(t.Context(), tn, kyc.PrepareWalletInput{Wallet: w.addr, Message: ch.Message,
		SignedBytes: base58.Encode(ed25519.Sign(w.key, []byte(ch.Message))), Email: email})
}

// named proves the wallet naming email, and expects where the link stands.
func (r *idRig) named(t testing.TB, tn kyc.Tenant, w idWallet, email, link string) kyc.PrepareResult {
	t.Helper()
	res, err := r.prepareWallet(t, tn, w, email)
	if err != nil || res.State.EmailLink != link {
		t.Fatalf("prepare-wallet %s naming %q: %+v, %v; want email_link %q", w.addr, email, res, err, link)
	}
	return res
}

// send mails a code (a minute after the last, clear of the send gap).
func (r *idRig) send(t testing.TB, tn kyc.Tenant, email, wallet string) error {
	t.Helper()
	r.clock.add(61 * time.Second)
	return r.svc.SendOTP(t.Context(), tn, kyc.OTPInput{Email: email, Wallet: wallet})
}

// prove sends a code for (email, wallet) and verifies it; mailedFor is the
// link the code is mailed for ("" for the address's own), when the fallback
// decides it.
func (r *idRig) prove(t testing.TB, tn kyc.Tenant, email, wallet, mailedFor string) error {
	t.Helper()
	if err := r.send(t, tn, email, wallet); err != nil {
		t.Fatalf("send-otp %s %s: %v", email, wallet, err)
	}
	return r.svc.VerifyOTP(t.Context(), tn, kyc.OTPInput{Email: email, Wallet: wallet, Code: r.mail.code(email, mailedFor)})
}

// verifiedEmail registers email at tn and proves it by its own code.
func (r *idRig) verifiedEmail(t testing.TB, tn kyc.Tenant, email string) {
	t.Helper()
	if _, err := r.svc.Prepare(t.Context(), tn, email); err != nil {
		t.Fatal(err)
	}
	if err := r.prove(t, tn, email, "", ""); err != nil {
		t.Fatalf("own proof of %s: %v", email, err)
	}
}

func (r *idRig) create(t testing.TB, tn kyc.Tenant, id kyc.Identity) (kyc.CreateResult, error) {
	t.Helper()
	return r.svc.CreateSession(t.Context(), tn, kyc.KYCTypePublic, id)
}

func (r *idRig) mustCreate(t testing.TB, tn kyc.Tenant, id kyc.Identity, kind string) kyc.SessionView {
	t.Helper()
	res, err := r.create(t, tn, id)
	if err != nil || res.Kind != kind {
		t.Fatalf("create %+v: %+v, %v; want %s", id, res, err, kind)
	}
	return res.Session
}

func (r *idRig) approve(t testing.TB, sessionID string) {
	t.Helper()
	if err := r.svc.HandleEvent(t.Context(), kyc.SessionEvent{SessionID: sessionID, Status: kyc.StatusApproved,
		At: r.clock.Now(), Decision: &kyc.Decision{Status: kyc.StatusApproved}}); err != nil {
		t.Fatal(err)
	}
}

// statusCode is status's answer for id: its error code, or the session id.
func (r *idRig) status(t testing.TB, tn kyc.Tenant, id kyc.Identity) string {
	t.Helper()
	st, err := r.svc.Status(t.Context(), tn, id)
	if err != nil {
		return code(err)
	}
	return st.Session.ID
}

func wantOutcome(t testing.TB, what string, err error, want string) {
	t.Helper()
	if got := code(err); got != want {
		t.Fatalf("%s: %s, want %s", what, got, want)
	}
}

func byE(email string) kyc.Identity          { return kyc.Identity{Email: email} }
func byW(wallet string) kyc.Identity         { return kyc.Identity{Wallet: wallet} }
func byEW(email, wallet string) kyc.Identity { return kyc.Identity{Email: email, Wallet: wallet} }

func TestLinkMakesOneUser(t *testing.T) {
	t.Parallel()
	forEachEngineRig(t, func(t *testing.T, r *idRig) {
		tn := r.tenant(t, "T", 10)
		const email = "ann@example.com"
		wa := newIDWallet(t)
		r.named(t, tn, wa, email, kyc.LinkPending)
		// Not an identifier while pending.
		if got := r.status(t, tn, byE(email)); got != kyc.CodeUserNotFound {
			t.Fatalf("status by the pending address: %s", got)
		}
		wantOutcome(t, "create by the pending address", func() error { _, err := r.create(t, tn, byE(email)); return err }(), kyc.CodeUserNotPrepared)

		wantOutcome(t, "the link's proof", r.prove(t, tn, email, wa.addr, wa.addr), "ok")
		res := r.named(t, tn, wa, email, kyc.LinkLinked)
		if !res.State.EmailVerified || res.Created {
			t.Fatalf("prepare-wallet after the proof: %+v", res)
		}
		s := r.mustCreate(t, tn, byE(email), kyc.CreateNew)
		for _, id := range []kyc.Identity{byW(wa.addr), byEW(email, wa.addr)} {
			if got := r.mustCreate(t, tn, id, kyc.CreateExisting); got.ID != s.ID {
				t.Fatalf("create %+v resumed %s, want %s", id, got.ID, s.ID)
			}
			if got := r.status(t, tn, id); got != s.ID {
				t.Fatalf("status %+v: %s, want %s", id, got, s.ID)
			}
		}
		if n := r.prov.created(); n != 1 {
			t.Fatalf("%d provider sessions, want 1", n)
		}
		if used, err := r.db.QuotaUsed(t.Context(), tn.ID, r.clock.Now().Format("2006-01")); err != nil || used != 1 {
			t.Fatalf("quota used %d, %v; want 1", used, err)
		}
	})
}

// A user who signed up by email and was approved links a wallet: the
// wallet shares the approval, without a session or a quota unit.
func TestLinkSharesTheApproval(t *testing.T) {
	t.Parallel()
	forEachEngineRig(t, func(t *testing.T, r *idRig) {
		tn := r.tenant(t, "T", 10)
		const email = "ann@example.com"
		r.verifiedEmail(t, tn, email)
		s := r.mustCreate(t, tn, byE(email), kyc.CreateNew)
		r.approve(t, s.ID)
		wa := newIDWallet(t)
		r.named(t, tn, wa, email, kyc.LinkPending)
		wantOutcome(t, "own send for a proven address", r.send(t, tn, email, ""), kyc.CodeEmailAlreadyVerified)
		wantOutcome(t, "the link's proof", r.prove(t, tn, email, wa.addr, wa.addr), "ok")
		res, err := r.create(t, tn, byW(wa.addr))
		if err != nil || res.Kind != kyc.CreateApproved || !res.Approved || res.Session.ID != s.ID {
			t.Fatalf("create by the wallet: %+v, %v", res, err)
		}
		if n := r.prov.created(); n != 1 {
			t.Fatalf("%d provider sessions, want 1", n)
		}
		if used, _ := r.db.QuotaUsed(t.Context(), tn.ID, r.clock.Now().Format("2006-01")); used != 1 {
			t.Fatalf("quota used %d, want 1", used)
		}
		if st := r.named(t, tn, wa, "", ""); !st.State.KYCApproved || !st.State.EmailVerified {
			t.Fatalf("prepare-wallet without an email after the link: %+v", st)
		}
	})
}

// The refusals, each leaving everything but the spent code as it was.
func TestLinkConflicts(t *testing.T) {
	t.Parallel()
	forEachEngineRig(t, func(t *testing.T, r *idRig) {
		tn := r.tenant(t, "T")
		t.Run("a second wallet proving a linked address", func(t *testing.T) {
			w1, w2 := newIDWallet(t), newIDWallet(t)
			r.named(t, tn, w1, "one@example.com", kyc.LinkPending)
			r.named(t, tn, w2, "one@example.com", kyc.LinkPending) // naming is harmless
			wantOutcome(t, "first proof", r.prove(t, tn, "one@example.com", w1.addr, w1.addr), "ok")
			wantOutcome(t, "second proof", r.prove(t, tn, "one@example.com", w2.addr, w2.addr), kyc.CodeEmailWalletConflict)
			r.named(t, tn, w2, "", kyc.LinkPending) // the loser's link stays pending
			wantOutcome(t, "the pair", statusErr(r, t, tn, byEW("one@example.com", w2.addr)), kyc.CodeIdentityMismatch)
		})
		t.Run("a linked wallet naming another address", func(t *testing.T) {
			wa := newIDWallet(t)
			r.named(t, tn, wa, "two@example.com", kyc.LinkPending)
			wantOutcome(t, "proof", r.prove(t, tn, "two@example.com", wa.addr, wa.addr), "ok")
			_, err := r.prepareWallet(t, tn, wa, "other@example.com")
			wantOutcome(t, "naming another address", err, kyc.CodeEmailWalletConflict)
			r.named(t, tn, wa, "two@example.com", kyc.LinkLinked)
		})
		t.Run("the address's person has another wallet", func(t *testing.T) {
			other := r.tenant(t, "Other")
			w1, w2 := newIDWallet(t), newIDWallet(t)
			r.named(t, other, w1, "three@example.com", kyc.LinkPending)
			wantOutcome(t, "proof elsewhere", r.prove(t, other, "three@example.com", w1.addr, w1.addr), "ok")
			r.named(t, tn, w2, "three@example.com", kyc.LinkPending) // nothing of the other tenant shows
			wantOutcome(t, "proof here", r.prove(t, tn, "three@example.com", w2.addr, w2.addr), kyc.CodeEmailWalletConflict)
		})
		t.Run("the wallet's person has another address", func(t *testing.T) {
			other := r.tenant(t, "Another")
			wa := newIDWallet(t)
			r.named(t, other, wa, "four@example.com", kyc.LinkPending)
			wantOutcome(t, "proof elsewhere", r.prove(t, other, "four@example.com", wa.addr, wa.addr), "ok")
			r.named(t, tn, wa, "five@example.com", kyc.LinkPending) // linked elsewhere: no 409 here
			wantOutcome(t, "proof here", r.prove(t, tn, "five@example.com", wa.addr, wa.addr), kyc.CodeEmailWalletConflict)
			if got := r.status(t, tn, byE("five@example.com")); got != kyc.CodeUserNotFound {
				t.Fatalf("the refused address: %s", got)
			}
		})
		t.Run("two KYC histories", func(t *testing.T) {
			r.verifiedEmail(t, tn, "six@example.com")
			se := r.mustCreate(t, tn, byE("six@example.com"), kyc.CreateNew)
			wa := newIDWallet(t)
			r.named(t, tn, wa, "six@example.com", kyc.LinkPending)
			sw := r.mustCreate(t, tn, byW(wa.addr), kyc.CreateNew)
			wantOutcome(t, "proof", r.prove(t, tn, "six@example.com", wa.addr, wa.addr), kyc.CodeEmailWalletConflict)
			if r.status(t, tn, byE("six@example.com")) != se.ID || r.status(t, tn, byW(wa.addr)) != sw.ID {
				t.Fatal("a refused link changed the sessions")
			}
		})
	})
}

func statusErr(r *idRig, t testing.TB, tn kyc.Tenant, id kyc.Identity) error {
	_, err := r.svc.Status(t.Context(), tn, id)
	return err
}

// Codes prove only what they were sent for: the owner's own flow never
// completes a wallet's link, and a link's code proves nothing else.
func TestLinkCodesAreBound(t *testing.T) {
	t.Parallel()
	forEachEngineRig(t, func(t *testing.T, r *idRig) {
		tn := r.tenant(t, "T")
		const email = "victim@example.com"
		attacker := newIDWallet(t)
		if _, err := r.svc.Prepare(t.Context(), tn, email); err != nil {
			t.Fatal(err)
		}
		r.named(t, tn, attacker, email, kyc.LinkPending)
		if err := r.send(t, tn, email, ""); err != nil {
			t.Fatal(err)
		}
		own := r.mail.code(email, "")
		wantOutcome(t, "the own code on the link", r.svc.VerifyOTP(t.Context(), tn, kyc.OTPInput{Email: email, Code: own, Wallet: attacker.addr}), kyc.CodeOTPInvalid)
		wantOutcome(t, "the own code", r.svc.VerifyOTP(t.Context(), tn, kyc.OTPInput{Email: email, Code: own}), "ok")
		wantOutcome(t, "the pair after the own proof", statusErr(r, t, tn, byEW(email, attacker.addr)), kyc.CodeIdentityMismatch)
		r.named(t, tn, attacker, "", kyc.LinkPending)

		// And a link's code, tried on the owner's own flow.
		w2 := newIDWallet(t)
		r.named(t, tn, w2, "other@example.com", kyc.LinkPending)
		if err := r.send(t, tn, "other@example.com", w2.addr); err != nil {
			t.Fatal(err)
		}
		if _, err := r.svc.Prepare(t.Context(), tn, "other@example.com"); err != nil {
			t.Fatal(err)
		}
		link := r.mail.code("other@example.com", w2.addr)
		wantOutcome(t, "a link code on the own flow", r.svc.VerifyOTP(t.Context(), tn, kyc.OTPInput{Email: "other@example.com", Code: link}), kyc.CodeOTPInvalid)
		wantOutcome(t, "the link code on its link", r.svc.VerifyOTP(t.Context(), tn, kyc.OTPInput{Email: "other@example.com", Code: link, Wallet: w2.addr}), "ok")
		// The link merged the address's own registration into the wallet's.
		wantOutcome(t, "the pair after the link", statusErr(r, t, tn, byEW("other@example.com", w2.addr)), kyc.CodeKYCNotFound)
	})
}

// Without a wallet, send-otp and verify-otp act on the address's own
// registration, or on the one wallet it is pending on; on several they
// find nobody.
func TestLinkFallback(t *testing.T) {
	t.Parallel()
	forEachEngineRig(t, func(t *testing.T, r *idRig) {
		tn := r.tenant(t, "T")
		w1, w2 := newIDWallet(t), newIDWallet(t)
		r.named(t, tn, w1, "one@example.com", kyc.LinkPending)
		wantOutcome(t, "fallback proof", r.prove(t, tn, "one@example.com", "", w1.addr), "ok")
		wantOutcome(t, "the pair", statusErr(r, t, tn, byEW("one@example.com", w1.addr)), kyc.CodeKYCNotFound)

		r.named(t, tn, w1, "", "")
		r.named(t, tn, w2, "two@example.com", kyc.LinkPending)
		w3 := newIDWallet(t)
		r.named(t, tn, w3, "two@example.com", kyc.LinkPending)
		wantOutcome(t, "ambiguous", r.send(t, tn, "two@example.com", ""), kyc.CodeUserNotFound)
		wantOutcome(t, "no such link", r.send(t, tn, "three@example.com", w2.addr), kyc.CodeUserNotFound)
		wantOutcome(t, "an unknown wallet", r.send(t, tn, "two@example.com", newIDWallet(t).addr), kyc.CodeUserNotFound)
		// A later name replaces the pending one: the old link is gone.
		r.named(t, tn, w3, "four@example.com", kyc.LinkPending)
		wantOutcome(t, "a replaced link", r.send(t, tn, "two@example.com", w3.addr), kyc.CodeUserNotFound)
		wantOutcome(t, "now unambiguous", r.prove(t, tn, "two@example.com", "", w2.addr), "ok")
	})
}

// A link proven at tenant A changes no answer at B (which registered the
// email) or C (which verified the wallet): identifiers are each tenant's
// own. With sessions made at B and C, the two persons have KYC histories
// and the proof refuses; without, they merge, and B and C still find only
// what they registered.
func TestLinkChangesNoOtherTenant(t *testing.T) {
	t.Parallel()
	for _, histories := range []bool{true, false} {
		t.Run(fmt.Sprintf("histories=%v", histories), func(t *testing.T) {
			forEachEngineRig(t, func(t *testing.T, r *idRig) {
				a, b, c := r.tenant(t, "A"), r.tenant(t, "B"), r.tenant(t, "C")
				const email = "ann@example.com"
				wa := newIDWallet(t)
				r.verifiedEmail(t, b, email)
				r.named(t, c, wa, "", "")
				if histories {
					r.mustCreate(t, b, byE(email), kyc.CreateNew)
					r.mustCreate(t, c, byW(wa.addr), kyc.CreateNew)
				}
				answers := func() string {
					var out []string
					for _, q := range []struct {
						tn kyc.Tenant
						id kyc.Identity
					}{{b, byE(email)}, {b, byW(wa.addr)}, {b, byEW(email, wa.addr)}, {c, byW(wa.addr)}, {c, byE(email)}, {c, byEW(email, wa.addr)}} {
						line := fmt.Sprintf("%s %+v: status %s", q.tn.Name, q.id, r.status(t, q.tn, q.id))
						if histories { // a create then only resumes
							res, cerr := r.create(t, q.tn, q.id)
							line += fmt.Sprintf(", create %s %s", code(cerr), res.Session.ID)
						}
						out = append(out, line)
					}
					out = append(out, "C send-otp: "+code(r.send(t, c, email, "")), "C send-otp for the wallet: "+code(r.send(t, c, email, wa.addr)))
					return strings.Join(out, "\n")
				}
				before := answers()
				if _, err := r.svc.Prepare(t.Context(), a, email); err != nil {
					t.Fatal(err)
				}
				r.named(t, a, wa, email, kyc.LinkPending)
				want := "ok"
				if histories {
					want = kyc.CodeEmailWalletConflict
				}
				wantOutcome(t, "proof at A", r.prove(t, a, email, wa.addr, wa.addr), want)
				if after := answers(); after != before {
					t.Fatalf("answers changed:\nbefore:\n%s\nafter:\n%s", before, after)
				}
				if histories {
					return
				}
				// One person now: a session made through A is B's and C's to
				// see, each through what it verified itself (shared
				// verification).
				s := r.mustCreate(t, a, byW(wa.addr), kyc.CreateNew)
				if r.status(t, b, byE(email)) != s.ID || r.status(t, c, byW(wa.addr)) != s.ID {
					t.Fatal("the merged person's session does not show at B and C")
				}
				if got := r.status(t, b, byW(wa.addr)); got != kyc.CodeUserNotFound {
					t.Fatalf("B by the wallet: %s", got)
				}
			})
		})
	}
}

// Several wallets prove one address at one tenant at the same moment, each
// with its own live code: exactly one links, every other gets 409.
func TestLinkRaceOneAddress(t *testing.T) {
	t.Parallel()
	forEachEngineRig(t, func(t *testing.T, r *idRig) {
		tn := r.tenant(t, "T")
		const email = "race@example.com"
		const n = 5
		ws := make([]idWallet, n)
		codes := make([]string, n)
		for i := range ws {
			ws[i] = newIDWallet(t)
			r.named(t, tn, ws[i], email, kyc.LinkPending)
			if err := r.send(t, tn, email, ws[i].addr); err != nil {
				t.Fatal(err)
			}
			codes[i] = r.mail.code(email, ws[i].addr)
		}
		errs := make([]error, n)
		var wg sync.WaitGroup
		gate := make(chan struct{})
		for i := range ws {
			wg.Go(func() {
				<-gate
				errs[i] = r.svc.VerifyOTP(context.Background(), tn, kyc.OTPInput{Email: email, Code: codes[i], Wallet: ws[i].addr})
			})
		}
		close(gate)
		wg.Wait()
		tally := map[string]int{}
		for _, err := range errs {
			tally[code(err)]++
		}
		if tally["ok"] != 1 || tally[kyc.CodeEmailWalletConflict] != n-1 {
			t.Fatalf("outcomes %v, want one ok and %d email_wallet_conflict", tally, n-1)
		}
	})
}

// A proof racing /kyc/prepare of its address: one user either way. In odd
// rounds the address's person exists already (registered at another
// tenant), so the proof merges while prepare registers the address on that
// person: on PostgreSQL that once deadlocked (see TestPrepareDuringALink).
func TestLinkRaceWithPrepare(t *testing.T) {
	t.Parallel()
	forEachEngineRig(t, func(t *testing.T, r *idRig) {
		tn, other := r.tenant(t, "T"), r.tenant(t, "Other")
		for round := range 10 {
			email := fmt.Sprintf("race%d@example.com", round)
			if round%2 == 1 {
				if _, err := r.svc.Prepare(t.Context(), other, email); err != nil {
					t.Fatal(err)
				}
			}
			wa := newIDWallet(t)
			r.named(t, tn, wa, email, kyc.LinkPending)
			if err := r.send(t, tn, email, wa.addr); err != nil {
				t.Fatal(err)
			}
			var verr, perr error
			var wg sync.WaitGroup
			gate := make(chan struct{})
			wg.Go(func() {
				<-gate
				verr = r.svc.VerifyOTP(context.Background(), tn, kyc.OTPInput{Email: email, Code: r.mail.code(email, wa.addr), Wallet: wa.addr})
			})
			wg.Go(func() { <-gate; _, perr = r.svc.Prepare(context.Background(), tn, email) })
			close(gate)
			wg.Wait()
			if verr != nil || perr != nil {
				t.Fatalf("round %d: verify %v, prepare %v", round, verr, perr)
			}
			wantOutcome(t, "the pair", statusErr(r, t, tn, byEW(email, wa.addr)), kyc.CodeKYCNotFound)
		}
	})
}

// A proof while a create is under way for one of the two persons: that
// person stays (its session is coming), the other joins it, and the two
// identifiers then give that one session. While creates are under way for
// both, the proof refuses: they will be two KYC histories.
func TestLinkDuringCreate(t *testing.T) {
	t.Parallel()
	forEachEngineRig(t, func(t *testing.T, r *idRig) {
		tn := r.tenant(t, "T")
		for _, creating := range []string{"email", "wallet", "both"} {
			t.Run(creating, func(t *testing.T) {
				email := creating + "@example.com"
				wa := newIDWallet(t)
				r.verifiedEmail(t, tn, email)
				r.named(t, tn, wa, email, kyc.LinkPending)
				if err := r.send(t, tn, email, wa.addr); err != nil {
					t.Fatal(err)
				}
				ids := map[string][]kyc.Identity{"email": {byE(email)}, "wallet": {byW(wa.addr)}, "both": {byE(email), byW(wa.addr)}}[creating]
				r.prov.mu.Lock()
				r.prov.hold = true
				r.prov.mu.Unlock()
				created := make([]kyc.CreateResult, len(ids))
				cerrs := make([]error, len(ids))
				var wg sync.WaitGroup
				for i, id := range ids {
					wg.Go(func() { created[i], cerrs[i] = r.svc.CreateSession(context.Background(), tn, kyc.KYCTypePublic, id) })
					<-r.prov.entered // the claim is held, the provider call under way
				}
				verr := r.svc.VerifyOTP(context.Background(), tn, kyc.OTPInput{Email: email, Code: r.mail.code(email, wa.addr), Wallet: wa.addr})
				r.prov.mu.Lock()
				r.prov.hold = false
				r.prov.mu.Unlock()
				for range ids {
					r.prov.release <- struct{}{}
				}
				wg.Wait()
				for i := range ids {
					if cerrs[i] != nil || created[i].Kind != kyc.CreateNew {
						t.Fatalf("create %d: %+v, %v", i, created[i], cerrs[i])
					}
				}
				if creating == "both" {
					wantOutcome(t, "proof", verr, kyc.CodeEmailWalletConflict)
					return
				}
				wantOutcome(t, "proof", verr, "ok")
				for _, id := range []kyc.Identity{byE(email), byW(wa.addr), byEW(email, wa.addr)} {
					if got := r.mustCreate(t, tn, id, kyc.CreateExisting); got.ID != created[0].Session.ID {
						t.Fatalf("create %+v: %s, want the session made during the proof, %s", id, got.ID, created[0].Session.ID)
					}
				}
			})
		}
	})
}

// A create that resolved a person a link then merged away claims a person
// that is gone: it resolves the user again and creates the one session.
func TestCreateAfterMerge(t *testing.T) {
	t.Parallel()
	forEachEngineRig(t, func(t *testing.T, r *idRig) {
		tn := r.tenant(t, "T")
		const email = "late@example.com"
		wa := newIDWallet(t)
		r.verifiedEmail(t, tn, email)
		r.named(t, tn, wa, email, kyc.LinkPending)
		// Neither person has a history: the wallet's joins the email's.
		gone, err := r.db.FindEnrollment(t.Context(), tn.ID, "", wa.addr)
		if err != nil {
			t.Fatal(err)
		}
		wantOutcome(t, "proof", r.prove(t, tn, email, wa.addr, wa.addr), "ok")
		if now, err := r.db.FindEnrollment(t.Context(), tn.ID, "", wa.addr); err != nil || now.PersonID == gone.PersonID {
			t.Fatalf("the wallet's enrollment after the merge: %+v, %v; want it on the email's person", now, err)
		}
		// What a create that read before the proof holds: the old person.
		if ok, err := r.db.ClaimSessionCreation(t.Context(), gone.PersonID, "stale", r.clock.Now().Add(time.Minute), r.clock.Now()); !errors.Is(err, kyc.ErrNotFound) || ok {
			t.Fatalf("claim for the merged-away person: %v, %v", ok, err)
		}
		s := r.mustCreate(t, tn, byW(wa.addr), kyc.CreateNew)
		if got := r.mustCreate(t, tn, byE(email), kyc.CreateExisting); got.ID != s.ID {
			t.Fatalf("two sessions after the merge: %s, %s", s.ID, got.ID)
		}
	})
}

// Naming an address takes nothing: a wallet that names an approved
// person's email, at that person's tenant or any other, learns and gets
// nothing of theirs; one that named an address before its owner came
// neither gets the owner's later approval nor locks the owner out.
func TestNamingAnAddressTakesNothing(t *testing.T) {
	t.Parallel()
	forEachEngineRig(t, func(t *testing.T, r *idRig) {
		a, b := r.tenant(t, "A"), r.tenant(t, "B")
		const victim, later = "victim@example.com", "later@example.com"
		r.verifiedEmail(t, a, victim)
		s := r.mustCreate(t, a, byE(victim), kyc.CreateNew)
		r.approve(t, s.ID)

		squatter := newIDWallet(t)
		r.named(t, b, squatter, later, kyc.LinkPending)
		for _, tn := range []kyc.Tenant{a, b} {
			attacker := newIDWallet(t)
			res := r.named(t, tn, attacker, victim, kyc.LinkPending)
			if res.State.KYCApproved || res.State.EmailVerified {
				t.Fatalf("%s: prepare-wallet told the attacker %+v", tn.Name, res.State)
			}
			if c := r.mustCreate(t, tn, byW(attacker.addr), kyc.CreateNew); c.ID == s.ID {
				t.Fatalf("%s: the attacker's wallet resumed the victim's session", tn.Name)
			}
		}

		// The owner of the squatted address comes later, passes KYC, and
		// links their own wallet at A.
		r.verifiedEmail(t, a, later)
		s2 := r.mustCreate(t, a, byE(later), kyc.CreateNew)
		r.approve(t, s2.ID)
		if got := r.status(t, b, byW(squatter.addr)); got != kyc.CodeKYCNotFound {
			t.Fatalf("the squatter's status at B: %s", got)
		}
		own := newIDWallet(t)
		r.named(t, a, own, later, kyc.LinkPending)
		wantOutcome(t, "the owner's link", r.prove(t, a, later, own.addr, own.addr), "ok")
		if got := r.status(t, a, byW(own.addr)); got != s2.ID {
			t.Fatalf("the owner's wallet: %s, want %s", got, s2.ID)
		}
	})
}

// prepare-wallet answers a tenant the same for an address another
// tenant's user proved as for one nobody has: no oracle across tenants.
func TestNamingAnAddressRevealsNothing(t *testing.T) {
	t.Parallel()
	forEachEngineRig(t, func(t *testing.T, r *idRig) {
		a, b := r.tenant(t, "A"), r.tenant(t, "B")
		wa := newIDWallet(t)
		r.named(t, a, wa, "known@example.com", kyc.LinkPending)
		wantOutcome(t, "proof at A", r.prove(t, a, "known@example.com", wa.addr, wa.addr), "ok")
		known, err1 := r.prepareWallet(t, b, newIDWallet(t), "known@example.com")
		unknown, err2 := r.prepareWallet(t, b, newIDWallet(t), "nobody@example.com")
		if err1 != nil || err2 != nil || known != unknown {
			t.Fatalf("B is told %+v, %v for A's user and %+v, %v for nobody", known, err1, unknown, err2)
		}
	})
}

// The send limits belong to the address: naming it on one wallet after
// another, or mailing its own code and link codes, never mails it more
// than once a minute and five times an hour.
func TestSendLimitsFollowTheAddress(t *testing.T) {
	t.Parallel()
	forEachEngineRig(t, func(t *testing.T, r *idRig) {
		tn := r.tenant(t, "T")
		const target = "target@example.com"
		if _, err := r.svc.Prepare(t.Context(), tn, target); err != nil {
			t.Fatal(err)
		}
		if err := r.svc.SendOTP(t.Context(), tn, kyc.OTPInput{Email: target}); err != nil {
			t.Fatal(err)
		}
		for i := range 3 {
			wi := newIDWallet(t)
			r.named(t, tn, wi, target, kyc.LinkPending)
			err := r.svc.SendOTP(t.Context(), tn, kyc.OTPInput{Email: target, Wallet: wi.addr})
			wantOutcome(t, fmt.Sprintf("link code %d within the minute", i), err, kyc.CodeOTPSendRateLimited)
		}
		for i := range 4 { // four more, a minute apart: five in the hour
			wantOutcome(t, fmt.Sprintf("send %d", i+2), r.send(t, tn, target, ""), "ok")
		}
		wi := newIDWallet(t)
		r.named(t, tn, wi, target, kyc.LinkPending)
		wantOutcome(t, "a sixth within the hour", r.send(t, tn, target, wi.addr), kyc.CodeOTPSendRateLimited)
		if n := r.mail.sent[target]; n != 5 {
			t.Fatalf("%d mails to %s, want 5", n, target)
		}
	})
}

// An enrollment carried over by migration 6 can hold a wallet and the
// person's email without this tenant's proof of it (the earlier rule let a
// wallet's tenant look the person up by an email proven elsewhere). That
// email is no link proven here: naming it again is pending, naming another
// is pending too (no 409), and its code (the address's own: it is
// registered on this enrollment) proves it.
func TestLegacyUnprovenEmailOnAWallet(t *testing.T) {
	t.Parallel()
	forEachEngineRig(t, func(t *testing.T, r *idRig) {
		tn := r.tenant(t, "T")
		const email = "legacy@example.com"
		wa := newIDWallet(t)
		r.named(t, tn, wa, "", "")
		enr, err := r.db.FindEnrollment(t.Context(), tn.ID, "", wa.addr)
		if err != nil {
			t.Fatal(err)
		}
		ctx := t.Context()
		if err := r.db.InTx(ctx, func(tx kyc.Tx) error {
			p, err := tx.PersonByID(ctx, enr.PersonID)
			if err != nil {
				return err
			}
			p.Email, enr.Email = email, email
			if err := tx.UpdatePerson(ctx, p); err != nil {
				return err
			}
			return tx.UpdateEnrollment(ctx, enr)
		}); err != nil {
			t.Fatal(err)
		}
		r.named(t, tn, wa, "other@example.com", kyc.LinkPending)
		r.named(t, tn, wa, email, kyc.LinkPending)
		wantOutcome(t, "the proof", r.prove(t, tn, email, wa.addr, ""), "ok")
		if res := r.named(t, tn, wa, email, kyc.LinkLinked); !res.State.EmailVerified {
			t.Fatalf("after the proof: %+v", res.State)
		}
		r.named(t, tn, wa, "", "") // nothing pending any more
	})
}
