package kyc_test

// Review tests (hostile review): identity takeover through prepare-wallet's
// email linking. Delete or keep as the lead decides.

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

type rvMail struct {
	mu    sync.Mutex
	codes map[string]string
}

func (m *rvMail) SendCode(_ context.Context, to, code string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.codes[to] = code
	return nil
}

type rvProvider struct {
	mu sync.Mutex
	n  int
}

func (p *rvProvider) CreateSession(context.Context, kyc.CreateSessionRequest) (kyc.ProviderSession, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.n++
	id := fmt.Sprintf("sess-%d", p.n)
	return kyc.ProviderSession{ID: id, URL: "https://verify.example/" + id, Status: kyc.StatusNotStarted}, nil
}

func (p *rvProvider) GetDecision(context.Context, string) (kyc.Decision, error) {
	return kyc.Decision{}, errors.New("not used")
}

type rvRig struct {
	svc  *kyc.Service
	mail *rvMail
}

func newRVRig(t *testing.T, url string) *rvRig {
	t.Helper()
	db, err := store.Open(t.Context(), url, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	m := &rvMail{codes: map[string]string{}}
	svc, err := kyc.NewService(kyc.Deps{Store: db, Mailer: m, Provider: &rvProvider{}},
		kyc.Config{Secret: []byte(strings.Repeat("k", 32))})
	if err != nil {
		t.Fatal(err)
	}
	return &rvRig{svc: svc, mail: m}
}

func (r *rvRig) tenant(t *testing.T, name string) kyc.Tenant {
	t.Helper()
	tn, _, err := r.svc.CreateTenant(t.Context(), kyc.NewTenant{Name: name})
	if err != nil {
		t.Fatal(err)
	}
	return tn
}

// emailApproved enrolls email at tn, proves it by OTP, opens a session and
// has the provider approve it.
func (r *rvRig) emailApproved(t *testing.T, tn kyc.Tenant, email string) {
	t.Helper()
	ctx := t.Context()
	if _, err := r.svc.Prepare(ctx, tn, email); err != nil {
		t.Fatal(err)
	}
	if err := r.svc.SendOTP(ctx, tn, email); err != nil {
		t.Fatal(err)
	}
	r.mail.mu.Lock()
	code := r.mail.codes[email]
	r.mail.mu.Unlock()
	if err := r.svc.VerifyOTP(ctx, tn, email, code); err != nil {
		t.Fatal(err)
	}
	res, err := r.svc.CreateSession(ctx, tn, kyc.KYCTypePublic, kyc.Identity{Email: email})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.svc.HandleEvent(ctx, kyc.SessionEvent{SessionID: res.Session.ID, Status: kyc.StatusApproved,
		At: time.Now().UTC(), Decision: &kyc.Decision{Status: kyc.StatusApproved}}); err != nil {
		t.Fatal(err)
	}
}

// solanaWallet is a fresh key the attacker owns.
type solanaWallet struct {
	addr string
	key  ed25519.PrivateKey
}

func newSolanaWallet(t *testing.T) solanaWallet {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return solanaWallet{addr: base58.Encode(pub), key: priv}
}

// proveWallet runs challenge + prepare-wallet at tn, linking email.
func (r *rvRig) proveWallet(t *testing.T, tn kyc.Tenant, w solanaWallet, email string) (kyc.PrepareResult, error) {
	t.Helper()
	ch, err := r.svc.Challenge(t.Context(), tn, w.addr, "")
	if err != nil {
		t.Fatal(err)
	}
	sig := base58.Encode(ed25519.Sign(w.key, []byte(ch.Message)))
	return r.svc.PrepareWallet(t.Context(), tn, kyc.PrepareWalletInput{
		Wallet: w.addr, Message: ch.Message, SignedBytes: sig, Email: email})
}

// A victim is KYC-approved through tenant A by email. An attacker, through
// any other tenant B (or A itself), signs a challenge with their OWN wallet
// and passes the victim's email, which they never proved. The wallet joins
// the victim's person, B's enrollment is wallet_verified, and B is told the
// attacker is approved: no OTP, no Didit session, no quota.
// api.md §10: "no tenant can learn another tenant's users' KYC results by
// guessing emails"; §6: "A linked email is not thereby verified".
func TestWalletLinkTakesOverApprovedEmailPerson(t *testing.T) {
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			r := newRVRig(t, e.URL)
			ta, tb := r.tenant(t, "A"), r.tenant(t, "B")
			r.emailApproved(t, ta, "victim@example.com")

			attacker := newSolanaWallet(t)
			res, err := r.proveWallet(t, tb, attacker, "victim@example.com")
			if err != nil {
				t.Fatalf("prepare-wallet: %v", err)
			}
			if res.State.KYCApproved {
				t.Errorf("tenant B learned the victim's result by guessing the email: prepare-wallet says kyc_approved=true, kyc_status=%q", res.State.KYCStatus)
			}
			cr, err := r.svc.CreateSession(t.Context(), tb, kyc.KYCTypePublic, kyc.Identity{Wallet: attacker.addr})
			if err == nil && cr.Approved {
				t.Errorf("attacker's wallet got %s from create at tenant B (no session, no quota): the victim's approval was claimed", cr.Kind)
			}
			st, err := r.svc.Status(t.Context(), tb, kyc.Identity{Wallet: attacker.addr})
			if err == nil && st.Approved {
				t.Errorf("status?wallet=<attacker> at tenant B = approved (session %s was the victim's)", st.Session.ID)
			}
		})
	}
}

// Squatting: the attacker first links a victim's email to their own wallet.
// When the victim later registers and passes KYC by email (at any tenant),
// the approval lands on the attacker's person, so the attacker's wallet is
// approved too; the victim can never link their own wallet.
func TestWalletLinkSquatsEmailBeforeVictim(t *testing.T) {
	r := newRVRig(t, storetest.SQLiteURL(t))
	ta, tb := r.tenant(t, "A"), r.tenant(t, "B")
	attacker := newSolanaWallet(t)
	if _, err := r.proveWallet(t, tb, attacker, "later@example.com"); err != nil {
		t.Fatal(err)
	}
	r.emailApproved(t, ta, "later@example.com") // the victim's own, honest flow at A

	st, err := r.svc.Status(t.Context(), tb, kyc.Identity{Wallet: attacker.addr})
	if err == nil && st.Approved {
		t.Errorf("attacker's wallet is approved at tenant B by the victim's later KYC at tenant A (session %s)", st.Session.ID)
	}
	victimWallet := newSolanaWallet(t)
	if _, err := r.proveWallet(t, ta, victimWallet, "later@example.com"); err != nil {
		t.Logf("victim can no longer link their own wallet: %v", err)
	}
}
