package kyc_test

// Review tests (hostile review) of the pending-email design (8a3c558).
// Self-contained helpers (prefix p2) so they do not depend on other files.

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/mr-tron/base58"

	"github.com/kycgate/kycgate/internal/kyc"
	"github.com/kycgate/kycgate/internal/store"
	"github.com/kycgate/kycgate/internal/store/storetest"
)

type p2Mail struct {
	mu    sync.Mutex
	sent  map[string]int
	codes map[string]string
}

func (m *p2Mail) SendCode(_ context.Context, to, code string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sent[to]++
	m.codes[to] = code
	return nil
}

type p2Rig struct {
	svc  *kyc.Service
	mail *p2Mail
}

func newP2Rig(t *testing.T, url string) *p2Rig {
	t.Helper()
	db, err := store.Open(t.Context(), url, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	m := &p2Mail{sent: map[string]int{}, codes: map[string]string{}}
	svc, err := kyc.NewService(kyc.Deps{Store: db, Mailer: m}, kyc.Config{Secret: []byte(strings.Repeat("k", 32))})
	if err != nil {
		t.Fatal(err)
	}
	return &p2Rig{svc: svc, mail: m}
}

func (r *p2Rig) tenant(t *testing.T, name string) kyc.Tenant {
	t.Helper()
	tn, _, err := r.svc.CreateTenant(t.Context(), kyc.NewTenant{Name: name})
	if err != nil {
		t.Fatal(err)
	}
	return tn
}

type p2Wallet struct {
	addr string
	key  ed25519.PrivateKey
}

func newP2Wallet(t *testing.T) p2Wallet {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return p2Wallet{addr: base58.Encode(pub), key: priv}
}

func (r *p2Rig) prepareWallet(t *testing.T, tn kyc.Tenant, w p2Wallet, email string) error {
	t.Helper()
	ch, err := r.svc.Challenge(t.Context(), tn, w.addr, "")
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.svc.PrepareWallet(t.Context(), tn, kyc.PrepareWalletInput{Wallet: w.addr, Message: ch.Message,
		SignedBytes: base58.Encode(ed25519.Sign(w.key, []byte(ch.Message))), Email: email})
	return err
}

func p2Code(err error) string {
	var e *kyc.Error
	if errors.As(err, &e) {
		return e.Code
	}
	if err != nil {
		return err.Error()
	}
	return ""
}

// api.md §4: "Sends for one email and tenant: at least 60 s apart, at most 5
// per hour". The limit is kept per (tenant, person); a pending email moves
// from wallet person to wallet person, each with a fresh send history, so
// one tenant (or its end users) can mail a third party's address without
// limit.
func TestPendingEmailRotationBypassesSendLimit(t *testing.T) {
	r := newP2Rig(t, storetest.SQLiteURL(t))
	tn := r.tenant(t, "T")
	const target = "target@example.com"
	var prev *p2Wallet
	for i := range 4 {
		if prev != nil { // free the pending address by pointing the previous wallet elsewhere
			if err := r.prepareWallet(t, tn, *prev, fmt.Sprintf("elsewhere%d@example.com", i)); err != nil {
				t.Fatal(err)
			}
		}
		w := newP2Wallet(t)
		if err := r.prepareWallet(t, tn, w, target); err != nil {
			t.Fatal(err)
		}
		err := r.svc.SendOTP(t.Context(), tn, target)
		if i > 0 && err == nil {
			t.Errorf("send %d to %s at one tenant within a second was accepted (want otp_send_rate_limited)", i+1, target)
		}
		prev = &w
	}
	t.Logf("codes mailed to %s: %d", target, r.mail.sent[target])
}

// §10: "no tenant can learn another tenant's users". Tenant B, with any
// wallet it controls, asks prepare-wallet to link a guessed email: 409 when
// the address belongs to a wallet user of some other tenant, 201 otherwise.
func TestWalletConflictRevealsOtherTenantsUsers(t *testing.T) {
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			r := newP2Rig(t, e.URL)
			ta, tb := r.tenant(t, "A"), r.tenant(t, "B")
			// The victim at A: wallet plus email, email proven by OTP.
			victim := newP2Wallet(t)
			if err := r.prepareWallet(t, ta, victim, "victim@example.com"); err != nil {
				t.Fatal(err)
			}
			if err := r.svc.SendOTP(t.Context(), ta, "victim@example.com"); err != nil {
				t.Fatal(err)
			}
			if err := r.svc.VerifyOTP(t.Context(), ta, "victim@example.com", r.mail.codes["victim@example.com"]); err != nil {
				t.Fatal(err)
			}
			// Tenant B probes two addresses with fresh wallets.
			known := r.prepareWallet(t, tb, newP2Wallet(t), "victim@example.com")
			unknown := r.prepareWallet(t, tb, newP2Wallet(t), "nobody@example.com")
			if p2Code(known) != p2Code(unknown) {
				t.Errorf("prepare-wallet at tenant B answers %q for A's user and %q for an unknown address: an enumeration oracle across tenants",
					p2Code(known), p2Code(unknown))
			}
		})
	}
}

// Residual of the 8a3c558 fix: "proven at that tenant" is a property of the
// tenant's enrollment, not of the caller. Once the owner verified their email
// at tenant T, ANY wallet T submits with that email joins the owner's person
// (and sees their KYC); the owner's own wallet is then refused with 409.
func TestProvenEmailIsABearerCredentialForAnyWallet(t *testing.T) {
	r := newP2Rig(t, storetest.SQLiteURL(t))
	tn := r.tenant(t, "T")
	const email = "owner@example.com"
	if _, err := r.svc.Prepare(t.Context(), tn, email); err != nil {
		t.Fatal(err)
	}
	if err := r.svc.SendOTP(t.Context(), tn, email); err != nil {
		t.Fatal(err)
	}
	if err := r.svc.VerifyOTP(t.Context(), tn, email, r.mail.codes[email]); err != nil {
		t.Fatal(err)
	}
	attacker := newP2Wallet(t)
	if err := r.prepareWallet(t, tn, attacker, email); err != nil {
		t.Fatal(err)
	}
	owner := newP2Wallet(t)
	err := r.prepareWallet(t, tn, owner, email)
	t.Logf("attacker's wallet joined the owner's person without any fresh proof; owner's own wallet now gets %q", p2Code(err))
	if p2Code(err) == kyc.CodeEmailWalletConflict {
		t.Errorf("first wallet to name a tenant-verified email takes the person; the owner's wallet is refused")
	}
}
