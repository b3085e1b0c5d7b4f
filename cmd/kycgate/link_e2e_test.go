package main

// Identity linking (docs/api.md §6.1) end to end: an email joins a wallet only
// when the email's owner passes an OTP bound to that link. Wallets are
// played by the real libraries (scripts/wallet/sign.mjs: ethers, tweetnacl)
// with fresh keys, codes travel over real SMTP, and sessions are made at the
// Didit simulator. On SQLite the rig is one kycgate; with
// KYCGATE_TEST_ENGINE=postgres (scripts/test's second run) it is two
// replicas, real processes, on one PostgreSQL database, each request going
// to the next replica, so every rule is shown to hold across processes.

import (
	"crypto/ed25519"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	"github.com/mr-tron/base58"

	"github.com/kycgate/kycgate/internal/store"
	"github.com/kycgate/kycgate/internal/wallet"
)

type linkRig struct {
	mail   *mailbox
	nodes  []*instance
	sim    string  // the simulator's control API
	db     *sql.DB // kycgate's database, to let time pass for the send limits
	tenant func(t *testing.T, name string, flags ...string) (id, key string)
	cli    func(t *testing.T, args ...string) string // a kycgate subcommand against the same database
	turn   atomic.Uint64
}

func newLinkRig(t *testing.T) *linkRig {
	t.Helper()
	needSigner(t)
	if os.Getenv("KYCGATE_TEST_ENGINE") == "postgres" {
		c := rpNewCluster(t)
		c.start(t, 2)
		r := &linkRig{mail: c.mail, sim: c.sim.URL + "/_sim", db: c.openDB(t), tenant: c.tenant, cli: c.command}
		for _, p := range c.procs {
			r.nodes = append(r.nodes, p.instance)
		}
		return r
	}
	mb := newMailbox(t)
	in := start(t, newEnv(t, mb.srv.URL()))
	db, err := sql.Open("sqlite", "file:"+store.SQLitePath(in.env["KYCGATE_DATABASE_URL"])+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return &linkRig{mail: mb, nodes: []*instance{in}, sim: in.URL + "/_didit/_sim", db: db,
		tenant: func(_ *testing.T, name string, flags ...string) (string, string) { return in.tenant(name, flags...) },
		cli: func(t *testing.T, args ...string) string {
			t.Helper()
			out, err := in.cli(args...)
			if err != nil {
				t.Fatalf("kycgate %s: %v", strings.Join(args, " "), err)
			}
			return out
		}}
}

// aMinutePasses moves the send history of an address at a tenant a minute
// and a second into the past, as if that much time had gone by: the send
// limits (60 s apart) count every code mailed to the address, its own and
// link codes alike, and the tests mail both within a second.
func (r *linkRig) aMinutePasses(t testing.TB, tenantID, email string) {
	t.Helper()
	if _, err := r.db.Exec(`UPDATE otp_sends SET gap_from = gap_from - 61000, sent1 = sent1 - 61000,
		sent2 = sent2 - 61000, sent3 = sent3 - 61000, sent4 = sent4 - 61000, sent5 = sent5 - 61000
		WHERE tenant_id = $1 AND address = $2`, tenantID, email); err != nil {
		t.Fatal(err)
	}
}

// newTenant is a tenant with no rate limit.
func (r *linkRig) newTenant(t *testing.T, name string, flags ...string) (id, key string) {
	t.Helper()
	return r.tenant(t, name, append([]string{"--rate-limit-per-minute", "0"}, flags...)...)
}

// node is the replica the next request goes to.
func (r *linkRig) node() *instance { return r.nodes[int(r.turn.Add(1))%len(r.nodes)] }

func (r *linkRig) call(t testing.TB, method, path, key string, body any) reply {
	t.Helper()
	return wcall(t, r.node(), method, path, key, body)
}

// newKey is a fresh wallet: a random seed, and the address the wallet
// libraries derive from it, worked out here independently (sign.mjs checks
// it derives the same one before it signs).
func newKey(t testing.TB, chain string) walletKey {
	t.Helper()
	seed := make([]byte, 32)
	rand.Read(seed)
	k := walletKey{Chain: chain, SeedHex: hex.EncodeToString(seed)}
	switch chain {
	case "solana":
		k.Address = base58.Encode(ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey))
	case "evm":
		pub := secp256k1.PrivKeyFromBytes(seed).PubKey().SerializeUncompressed()
		a, err := wallet.ParseAddress("0x" + hex.EncodeToString(rpKeccak(pub[1:])[12:]))
		if err != nil {
			t.Fatal(err)
		}
		k.Address = a.String
	}
	return k
}

// linkUser is a test user's identifiers: an email and a wallet.
type linkUser struct {
	email string
	key   walletKey
}

var linkSeq atomic.Uint64

// newUser is a fresh address and wallet (EVM and Solana in turn).
func newUser(t testing.TB, tag string) linkUser {
	n := linkSeq.Add(1)
	chain := "evm"
	if n%2 == 0 {
		chain = "solana"
	}
	return linkUser{email: fmt.Sprintf("%s-%d@example.com", tag, n), key: newKey(t, chain)}
}

// prepareWallet proves the wallet at the tenant (challenge from one
// replica, prepare-wallet at the next), naming email when not empty.
func (r *linkRig) prepareWallet(t testing.TB, key string, w walletKey, email string) reply {
	t.Helper()
	msg := challengeFor(t, r.node(), key, w.Address)
	return r.call(t, "POST", "/kyc/prepare-wallet", key, walletBody(w, msg, sign1(t, w, msg), email))
}

func walletBody(w walletKey, msg, sig, email string) map[string]string {
	b := map[string]string{"wallet": w.Address, "message": msg, "signed_bytes": sig}
	if email != "" {
		b["email"] = email
	}
	return b
}

func otpBody(email, wallet string, code ...string) map[string]string {
	b := map[string]string{"email": email}
	if wallet != "" {
		b["wallet"] = wallet
	}
	if len(code) > 0 {
		b["code"] = code[0]
	}
	return b
}

// mailed waits for the next mail to addr and returns its code; a link's
// code mail must name the wallet (grouped in fours), and an address's own
// must name none.
func (r *linkRig) mailed(t testing.TB, addr, wallet string) string {
	t.Helper()
	msg, code := r.mail.next(t, addr)
	names := strings.Contains(msg.Text, "links the crypto wallet")
	if wallet != "" && (!names || !strings.Contains(strings.ReplaceAll(msg.Text, " ", ""), wallet)) {
		t.Fatalf("the link code's mail does not name wallet %s:\n%s", wallet, msg.Text)
	}
	if wallet == "" && names {
		t.Fatalf("an address's own code mail names a wallet:\n%s", msg.Text)
	}
	return code
}

// proveLink sends the link's code and verifies it; wallet "" uses the
// fallback for an address pending on one wallet (the mail then names
// mailWallet).
func (r *linkRig) proveLink(t testing.TB, key, email, wallet, mailWallet string) reply {
	t.Helper()
	expect(t, r.call(t, "POST", "/security/email/send-otp", key, otpBody(email, wallet)), 201, "otp_sent")
	code := r.mailed(t, email, mailWallet)
	return r.call(t, "POST", "/security/email/verify-otp", key, otpBody(email, wallet, code))
}

// verifyOwn registers email at the tenant and proves it by its own code.
func (r *linkRig) verifyOwn(t testing.TB, key, email string) {
	t.Helper()
	if p := r.call(t, "POST", "/kyc/prepare", key, map[string]string{"email": email}); p.Code != 201 && p.Code != 200 {
		t.Fatalf("prepare: %s", p.Raw)
	}
	expect(t, r.call(t, "POST", "/security/email/send-otp", key, otpBody(email, "")), 201, "otp_sent")
	code := r.mailed(t, email, "")
	expect(t, r.call(t, "POST", "/security/email/verify-otp", key, otpBody(email, "", code)), 200, "email_verified")
}

func (r *linkRig) status(t testing.TB, key, email, wallet string) reply {
	t.Helper()
	return r.call(t, "GET", statusQuery(email, wallet), key, nil)
}

// statusOf expects 200 and returns the data.
func (r *linkRig) statusOf(t testing.TB, key, email, wallet string) kycStatusData {
	t.Helper()
	rep := r.status(t, key, email, wallet)
	expect(t, rep, 200, "kyc_status_retrieved")
	var d kycStatusData
	rep.data(t, &d)
	return d
}

func (r *linkRig) create(t testing.TB, key string, id map[string]string) reply {
	t.Helper()
	return r.call(t, "POST", "/kyc/create/verify_public_kyc", key, id)
}

// created expects 201 with data.message kind.
func (r *linkRig) created(t testing.TB, key string, id map[string]string, kind string) createResult {
	t.Helper()
	rep := r.create(t, key, id)
	expect(t, rep, 201, "kyc_session_created")
	var d createResult
	rep.data(t, &d)
	if d.Message != kind {
		t.Fatalf("create %v: %s, want %s", id, rep.Env.Data, kind)
	}
	return d
}

// approve completes a session as approved at the simulator and waits until
// kycgate has the outcome (see approveSession).
func (r *linkRig) approve(t testing.TB, sessionID string) {
	t.Helper()
	approveAt(t, r.sim, sessionID)
}

// sessionsOf counts the Didit sessions created for a tenant.
func (r *linkRig) sessionsOf(t testing.TB, tenantID string) int {
	t.Helper()
	var ss []struct {
		Metadata struct {
			TenantID string `json:"tenant_id"`
		} `json:"metadata"`
	}
	simAt(t, r.sim, "GET", "/sessions", nil, &ss)
	n := 0
	for _, s := range ss {
		if s.Metadata.TenantID == tenantID {
			n++
		}
	}
	return n
}

func byEmail(e string) map[string]string   { return map[string]string{"email": e} }
func byWallet(w string) map[string]string  { return map[string]string{"wallet": w} }
func byBoth(e, w string) map[string]string { return map[string]string{"email": e, "wallet": w} }

const mismatchMsg = "email and wallet do not belong to the same user"

func TestIdentityLinking(t *testing.T) {
	t.Parallel()
	r := newLinkRig(t)

	// A wallet names an address nobody has: the address is a pending link
	// and no identifier until its owner proves it; then email and wallet
	// are one user everywhere at this tenant.
	t.Run("fresh address", func(t *testing.T) {
		t.Parallel()
		tid, key := r.newTenant(t, "Fresh")
		u := newUser(t, "fresh")
		rep := r.prepareWallet(t, key, u.key, u.email)
		expect(t, rep, 201, "user_prepared", "User prepared for KYC via wallet")
		expectWalletState(t, rep, false, false, "pending", "pending")
		expect(t, r.status(t, key, u.email, ""), 404, "user_not_found")
		expect(t, r.create(t, key, byEmail(u.email)), 403, "user_not_prepared")
		expect(t, r.status(t, key, u.email, u.key.Address), 400, "identity_mismatch", mismatchMsg)

		expect(t, r.proveLink(t, key, u.email, u.key.Address, u.key.Address), 200, "email_verified", "Email verified successfully")
		rep = r.prepareWallet(t, key, u.key, u.email)
		expect(t, rep, 200, "user_already_prepared")
		expectWalletState(t, rep, true, false, "pending", "linked")
		c := r.created(t, key, byEmail(u.email), "didit_create_kyc_session")
		for _, id := range []map[string]string{byWallet(u.key.Address), byBoth(u.email, u.key.Address)} {
			if again := r.created(t, key, id, "didit_existing_kyc_session"); again.Session != c.Session {
				t.Fatalf("create %v resumed %+v, want %+v", id, again.Session, c.Session)
			}
		}
		for _, q := range [][2]string{{u.email, ""}, {"", u.key.Address}, {u.email, u.key.Address}} {
			if st := r.statusOf(t, key, q[0], q[1]); st.SessionID != c.Session.ID {
				t.Fatalf("status %v = %+v, want session %s", q, st, c.Session.ID)
			}
		}
		if n := r.sessionsOf(t, tid); n != 1 {
			t.Fatalf("%d Didit sessions, want 1", n)
		}
		// Proven once: the email's own flow knows it, and without a pending
		// link prepare-wallet reports none.
		expect(t, r.call(t, "POST", "/security/email/send-otp", key, otpBody(u.email, "")), 400, "email_already_verified")
		expect(t, r.call(t, "POST", "/security/email/send-otp", key, otpBody(u.email, u.key.Address)), 400, "email_already_verified")
		rep = r.prepareWallet(t, key, u.key, "")
		expectWalletState(t, rep, true, false, "pending")
	})

	// The most common crypto onboarding: a user who signed up by email
	// and passed KYC connects a wallet later. The link needs their OTP
	// (their own flow cannot give it: it is done), and then the wallet
	// shares the approval: no new session, no quota unit.
	t.Run("address registered, verified and approved here", func(t *testing.T) {
		t.Parallel()
		tid, key := r.newTenant(t, "Approved", "--quota", "1")
		u := newUser(t, "approved")
		r.verifyOwn(t, key, u.email)
		s := r.created(t, key, byEmail(u.email), "didit_create_kyc_session")
		r.approve(t, s.Session.ID)

		rep := r.prepareWallet(t, key, u.key, u.email)
		expect(t, rep, 201, "user_prepared")
		expectWalletState(t, rep, false, false, "pending", "pending")
		expect(t, r.status(t, key, u.email, u.key.Address), 400, "identity_mismatch")
		expect(t, r.call(t, "POST", "/security/email/send-otp", key, otpBody(u.email, "")), 400, "email_already_verified")
		r.aMinutePasses(t, tid, u.email)
		expect(t, r.proveLink(t, key, u.email, u.key.Address, u.key.Address), 200, "email_verified")

		d := r.created(t, key, byWallet(u.key.Address), "kyc_already_approved")
		if !d.Approved || d.Session.ID != s.Session.ID {
			t.Fatalf("create by the wallet = %+v, want the approving session %s", d, s.Session.ID)
		}
		for _, q := range [][2]string{{"", u.key.Address}, {u.email, u.key.Address}} {
			if st := r.statusOf(t, key, q[0], q[1]); !st.Approved || st.SessionID != s.Session.ID {
				t.Fatalf("status %v = %+v", q, st)
			}
		}
		rep = r.prepareWallet(t, key, u.key, "")
		expect(t, rep, 200, "user_already_prepared")
		expectWalletState(t, rep, true, true, "approved")
		if n := r.sessionsOf(t, tid); n != 1 {
			t.Fatalf("%d Didit sessions, want 1", n)
		}
		// The quota of one was the email's session: the wallet took none.
		other := newUser(t, "quota")
		r.verifyOwn(t, key, other.email)
		expect(t, r.create(t, key, byEmail(other.email)), 429, "verify_quota_exceeded")
	})

	// An address registered but never verified: the owner's own flow
	// verifies their own registration and leaves the wallet's link
	// pending; the link's proof then makes one user of the two.
	t.Run("address registered here, unverified", func(t *testing.T) {
		t.Parallel()
		tid, key := r.newTenant(t, "Unverified")
		u := newUser(t, "unverified")
		expect(t, r.call(t, "POST", "/kyc/prepare", key, byEmail(u.email)), 201, "user_prepared")
		expect(t, r.prepareWallet(t, key, u.key, u.email), 201, "user_prepared")
		r.verifyOwn(t, key, u.email)
		expectWalletState(t, r.prepareWallet(t, key, u.key, ""), false, false, "pending", "pending")
		expect(t, r.status(t, key, u.email, u.key.Address), 400, "identity_mismatch")

		r.aMinutePasses(t, tid, u.email)
		expect(t, r.proveLink(t, key, u.email, u.key.Address, u.key.Address), 200, "email_verified")
		c := r.created(t, key, byWallet(u.key.Address), "didit_create_kyc_session")
		if again := r.created(t, key, byEmail(u.email), "didit_existing_kyc_session"); again.Session != c.Session {
			t.Fatalf("the email resumed %+v, want %+v", again.Session, c.Session)
		}
		if st := r.statusOf(t, key, u.email, u.key.Address); st.SessionID != c.Session.ID {
			t.Fatalf("status by both = %+v", st)
		}
		if n := r.sessionsOf(t, tid); n != 1 {
			t.Fatalf("%d Didit sessions, want 1", n)
		}
	})

	// An attacker's wallet names a victim's address: the victim's own OTP
	// flow proves only the victim's registration, the victim's codes prove
	// nothing for the attacker, and the attacker gets nothing of theirs.
	t.Run("the owner's own OTP never links an attacker's wallet", func(t *testing.T) {
		t.Parallel()
		_, key := r.newTenant(t, "Takeover")
		victim, attacker := newUser(t, "victim"), newUser(t, "attacker")
		expect(t, r.call(t, "POST", "/kyc/prepare", key, byEmail(victim.email)), 201, "user_prepared")
		expectWalletState(t, r.prepareWallet(t, key, attacker.key, victim.email), false, false, "pending", "pending")
		r.verifyOwn(t, key, victim.email)
		s := r.created(t, key, byEmail(victim.email), "didit_create_kyc_session")
		r.approve(t, s.Session.ID)

		// The victim's proven address, tried on the attacker's link with any
		// code: the link has no code, and a guess costs nothing.
		expect(t, r.call(t, "POST", "/security/email/send-otp", key, otpBody(victim.email, "")), 400, "email_already_verified")
		expect(t, r.call(t, "POST", "/security/email/verify-otp", key, otpBody(victim.email, attacker.key.Address, "000000")), 400, "otp_invalid")
		expect(t, r.status(t, key, victim.email, attacker.key.Address), 400, "identity_mismatch")
		expect(t, r.status(t, key, "", attacker.key.Address), 404, "kyc_not_found")
		x := r.created(t, key, byWallet(attacker.key.Address), "didit_create_kyc_session")
		if x.Session.ID == s.Session.ID {
			t.Fatal("the attacker's wallet resumed the victim's session")
		}
		if st := r.statusOf(t, key, victim.email, ""); !st.Approved || st.SessionID != s.Session.ID {
			t.Fatalf("the victim's status = %+v", st)
		}
		expectWalletState(t, r.prepareWallet(t, key, attacker.key, ""), false, false, "pending", "pending")
	})

	// The first proof wins; a second wallet that proves the same address
	// gets 409, its link stays pending, and the first is untouched.
	t.Run("a second wallet proving an address already linked", func(t *testing.T) {
		t.Parallel()
		tid, key := r.newTenant(t, "Second")
		u, second := newUser(t, "first"), newUser(t, "second")
		expect(t, r.prepareWallet(t, key, u.key, u.email), 201, "user_prepared")
		expect(t, r.prepareWallet(t, key, second.key, u.email), 201, "user_prepared") // naming is harmless
		expect(t, r.proveLink(t, key, u.email, u.key.Address, u.key.Address), 200, "email_verified")
		r.aMinutePasses(t, tid, u.email)
		expect(t, r.proveLink(t, key, u.email, second.key.Address, second.key.Address), 409, "email_wallet_conflict",
			"This email and wallet cannot be linked: one already has another wallet or email, or both have KYC sessions")
		expectWalletState(t, r.prepareWallet(t, key, second.key, ""), false, false, "pending", "pending")
		expect(t, r.status(t, key, u.email, second.key.Address), 400, "identity_mismatch")
		expect(t, r.status(t, key, u.email, u.key.Address), 404, "kyc_not_found")
	})

	// A wallet linked here to one address names another: 409, the
	// challenge is spent, and the link stands.
	t.Run("a linked wallet naming a different email", func(t *testing.T) {
		t.Parallel()
		_, key := r.newTenant(t, "Other")
		u := newUser(t, "linked")
		expect(t, r.prepareWallet(t, key, u.key, u.email), 201, "user_prepared")
		expect(t, r.proveLink(t, key, u.email, u.key.Address, u.key.Address), 200, "email_verified")
		msg := challengeFor(t, r.node(), key, u.key.Address)
		body := walletBody(u.key, msg, sign1(t, u.key, msg), "another-"+u.email)
		expect(t, r.call(t, "POST", "/kyc/prepare-wallet", key, body), 409, "email_wallet_conflict", "This email is already linked to another wallet")
		expect(t, r.call(t, "POST", "/kyc/prepare-wallet", key, body), 400, "challenge_not_found")
		expectWalletState(t, r.prepareWallet(t, key, u.key, u.email), true, false, "pending", "linked")
		expect(t, r.status(t, key, "another-"+u.email, ""), 404, "user_not_found")
	})

	// A client that only knows {email}: an address with no registration of
	// its own here and pending on one wallet is proven for that link; on
	// two it is ambiguous.
	t.Run("send-otp and verify-otp without the wallet", func(t *testing.T) {
		t.Parallel()
		_, key := r.newTenant(t, "Fallback")
		u, v, w := newUser(t, "one"), newUser(t, "two"), newUser(t, "three")
		expect(t, r.prepareWallet(t, key, u.key, u.email), 201, "user_prepared")
		expect(t, r.proveLink(t, key, u.email, "", u.key.Address), 200, "email_verified")
		expect(t, r.status(t, key, u.email, u.key.Address), 404, "kyc_not_found")

		expect(t, r.prepareWallet(t, key, v.key, "shared-"+v.email), 201, "user_prepared")
		expect(t, r.prepareWallet(t, key, w.key, "shared-"+v.email), 201, "user_prepared")
		expect(t, r.call(t, "POST", "/security/email/send-otp", key, otpBody("shared-"+v.email, "")), 404, "user_not_found")
		expect(t, r.proveLink(t, key, "shared-"+v.email, w.key.Address, w.key.Address), 200, "email_verified")
		expect(t, r.status(t, key, "shared-"+v.email, w.key.Address), 404, "kyc_not_found")
	})

	// Two persons who both have KYC histories cannot become one.
	t.Run("two KYC histories", func(t *testing.T) {
		t.Parallel()
		tid, key := r.newTenant(t, "Histories")
		u := newUser(t, "histories")
		r.verifyOwn(t, key, u.email)
		se := r.created(t, key, byEmail(u.email), "didit_create_kyc_session")
		expect(t, r.prepareWallet(t, key, u.key, u.email), 201, "user_prepared")
		sw := r.created(t, key, byWallet(u.key.Address), "didit_create_kyc_session")
		r.aMinutePasses(t, tid, u.email)
		expect(t, r.proveLink(t, key, u.email, u.key.Address, u.key.Address), 409, "email_wallet_conflict", "This email and wallet cannot be linked: one already has another wallet or email, or both have KYC sessions")
		if st := r.statusOf(t, key, u.email, ""); st.SessionID != se.Session.ID {
			t.Fatalf("the email's status = %+v", st)
		}
		if st := r.statusOf(t, key, "", u.key.Address); st.SessionID != sw.Session.ID {
			t.Fatalf("the wallet's status = %+v", st)
		}
		expect(t, r.status(t, key, u.email, u.key.Address), 400, "identity_mismatch")
		if n := r.sessionsOf(t, tid); n != 2 {
			t.Fatalf("%d Didit sessions, want 2", n)
		}
	})

	// Tenants B (the email's, proven there) and C (the wallet's) see the
	// same answers before and after a link proven at A: identifiers stay
	// each tenant's own.
	t.Run("another tenant learns nothing", func(t *testing.T) {
		t.Parallel()
		_, a := r.newTenant(t, "A")
		_, b := r.newTenant(t, "B")
		_, c := r.newTenant(t, "C")
		u := newUser(t, "isolated")
		r.verifyOwn(t, b, u.email)
		expect(t, r.prepareWallet(t, c, u.key, ""), 201, "user_prepared")
		snapshot := func() string {
			var out []string
			for _, q := range []struct {
				key, method, path string
				body              any
			}{
				{b, "GET", statusQuery(u.email, ""), nil},
				{b, "GET", statusQuery("", u.key.Address), nil},
				{b, "GET", statusQuery(u.email, u.key.Address), nil},
				{b, "POST", "/kyc/create/verify_public_kyc", byWallet(u.key.Address)},
				{b, "POST", "/kyc/prepare", byEmail(u.email)},
				{c, "GET", statusQuery("", u.key.Address), nil},
				{c, "GET", statusQuery(u.email, ""), nil},
				{c, "GET", statusQuery(u.email, u.key.Address), nil},
				{c, "POST", "/kyc/create/verify_public_kyc", byEmail(u.email)},
				{c, "POST", "/security/email/send-otp", otpBody(u.email, "")},
				{c, "POST", "/security/email/send-otp", otpBody(u.email, u.key.Address)},
			} {
				rep := r.call(t, q.method, q.path, q.key, q.body)
				out = append(out, fmt.Sprintf("%s %s: %d %s %s", q.method, q.path, rep.Code, rep.Env.Status, rep.Env.Data))
			}
			return strings.Join(out, "\n")
		}
		before := snapshot()
		expect(t, r.call(t, "POST", "/kyc/prepare", a, byEmail(u.email)), 201, "user_prepared")
		expect(t, r.prepareWallet(t, a, u.key, u.email), 201, "user_prepared")
		expect(t, r.proveLink(t, a, u.email, u.key.Address, u.key.Address), 200, "email_verified")
		expect(t, r.status(t, a, u.email, u.key.Address), 404, "kyc_not_found")
		if after := snapshot(); after != before {
			t.Fatalf("answers at the other tenants changed with a link at A:\nbefore:\n%s\nafter:\n%s", before, after)
		}
		expect(t, r.status(t, b, "", u.key.Address), 404, "user_not_found")
	})

	// A person approved through tenant A is approved for tenant B once B
	// holds its own proof of the wallet; B still sees email and wallet as
	// two users until it proves the link itself.
	t.Run("shared approval across tenants", func(t *testing.T) {
		t.Parallel()
		_, a := r.newTenant(t, "SharedA")
		_, b := r.newTenant(t, "SharedB")
		u := newUser(t, "shared")
		expect(t, r.prepareWallet(t, a, u.key, u.email), 201, "user_prepared")
		expect(t, r.proveLink(t, a, u.email, u.key.Address, u.key.Address), 200, "email_verified")
		s := r.created(t, a, byWallet(u.key.Address), "didit_create_kyc_session")
		r.approve(t, s.Session.ID)

		expect(t, r.status(t, b, "", u.key.Address), 404, "user_not_found")
		expect(t, r.call(t, "POST", "/kyc/prepare", b, byEmail(u.email)), 201, "user_prepared")
		expect(t, r.status(t, b, u.email, ""), 404, "kyc_not_found")
		expect(t, r.status(t, b, "", u.key.Address), 404, "user_not_found")
		expect(t, r.create(t, b, byWallet(u.key.Address)), 403, "user_not_prepared")

		rep := r.prepareWallet(t, b, u.key, "")
		expect(t, rep, 201, "user_prepared")
		expectWalletState(t, rep, false, true, "approved")
		if d := r.created(t, b, byWallet(u.key.Address), "kyc_already_approved"); d.Session.ID != s.Session.ID {
			t.Fatalf("B's create = %+v", d)
		}
		expect(t, r.status(t, b, u.email, u.key.Address), 400, "identity_mismatch")
		expect(t, r.status(t, b, u.email, ""), 404, "kyc_not_found")
		// B proves the email too: now it sees one user.
		expect(t, r.call(t, "POST", "/security/email/send-otp", b, otpBody(u.email, "")), 201, "otp_sent")
		code := r.mailed(t, u.email, "")
		expect(t, r.call(t, "POST", "/security/email/verify-otp", b, otpBody(u.email, "", code)), 200, "email_verified")
		if st := r.statusOf(t, b, u.email, ""); !st.Approved || st.SessionID != s.Session.ID {
			t.Fatalf("B's status by the email = %+v", st)
		}
	})

	// A malformed wallet is the caller's mistake on every endpoint.
	t.Run("malformed wallets", func(t *testing.T) {
		t.Parallel()
		_, key := r.newTenant(t, "Malformed")
		const bad = "0x5aaeb6053F3E94C9b9A09f33669435E7Ef1BeAed" // mixed case, wrong checksum
		msg := "Wallet is not a valid EVM or Solana address"
		expect(t, r.status(t, key, "", bad), 400, "invalid_wallet", msg)
		expect(t, r.status(t, key, "a@example.com", bad), 400, "invalid_wallet", msg)
		expect(t, r.create(t, key, byWallet("nope")), 400, "invalid_wallet", msg)
		expect(t, r.call(t, "POST", "/security/email/send-otp", key, otpBody("a@example.com", bad)), 400, "invalid_wallet", msg)
		expect(t, r.call(t, "POST", "/security/email/verify-otp", key, otpBody("a@example.com", "nope", "123456")), 400, "invalid_wallet", msg)
		expect(t, r.call(t, "POST", "/security/email/send-otp", key, otpBody("nope", bad)), 400, "invalid_email")
	})
}

// TestIdentityLinkingRaces: the link's proof racing itself, a registration
// and creates, each request at once on the next replica.
func TestIdentityLinkingRaces(t *testing.T) {
	t.Parallel()
	r := newLinkRig(t)

	// Two wallets proving one address at the same moment (each through its
	// own tenant, where each holds a live code): one links, the other 409.
	t.Run("two wallets prove one address", func(t *testing.T) {
		for round := range 3 {
			_, a := r.newTenant(t, fmt.Sprint("RaceA", round))
			_, b := r.newTenant(t, fmt.Sprint("RaceB", round))
			u, v := newUser(t, "race"), newUser(t, "race")
			expect(t, r.prepareWallet(t, a, u.key, u.email), 201, "user_prepared")
			expect(t, r.prepareWallet(t, b, v.key, u.email), 201, "user_prepared")
			codes := map[string]string{}
			for _, x := range []struct{ key, wallet string }{{a, u.key.Address}, {b, v.key.Address}} {
				expect(t, r.call(t, "POST", "/security/email/send-otp", x.key, otpBody(u.email, x.wallet)), 201, "otp_sent")
				codes[x.key] = r.mailed(t, u.email, x.wallet)
			}
			reps := r.together(t, []linkReq{
				{"POST", "/security/email/verify-otp", a, otpBody(u.email, u.key.Address, codes[a])},
				{"POST", "/security/email/verify-otp", b, otpBody(u.email, v.key.Address, codes[b])},
			})
			if got := rpTally(reps); got["200 email_verified"] != 1 || got["409 email_wallet_conflict"] != 1 {
				t.Fatalf("round %d: %v, want one 200 and one 409", round, got)
			}
			linked := 0
			for _, x := range []struct{ key, wallet string }{{a, u.key.Address}, {b, v.key.Address}} {
				if r.status(t, x.key, u.email, x.wallet).Env.Status == "kyc_not_found" {
					linked++
				}
			}
			if linked != 1 {
				t.Fatalf("round %d: %d wallets hold the address, want 1", round, linked)
			}
		}
	})

	// The proof racing /kyc/prepare of the same address: one user either
	// way (prepare registers the address first and the proof merges it,
	// or the proof first and prepare finds it).
	t.Run("proof and prepare", func(t *testing.T) {
		for round := range 3 {
			tid, key := r.newTenant(t, fmt.Sprint("RacePrepare", round))
			u := newUser(t, "raceprep")
			expect(t, r.prepareWallet(t, key, u.key, u.email), 201, "user_prepared")
			expect(t, r.call(t, "POST", "/security/email/send-otp", key, otpBody(u.email, u.key.Address)), 201, "otp_sent")
			code := r.mailed(t, u.email, u.key.Address)
			reps := r.together(t, []linkReq{
				{"POST", "/security/email/verify-otp", key, otpBody(u.email, u.key.Address, code)},
				{"POST", "/kyc/prepare", key, byEmail(u.email)},
			})
			if reps[0].Code != 200 || (reps[1].Code != 201 && reps[1].Code != 200) {
				t.Fatalf("round %d: verify %d %s, prepare %d %s", round, reps[0].Code, reps[0].Raw, reps[1].Code, reps[1].Raw)
			}
			c := r.created(t, key, byEmail(u.email), "didit_create_kyc_session")
			if again := r.created(t, key, byWallet(u.key.Address), "didit_existing_kyc_session"); again.Session != c.Session {
				t.Fatalf("round %d: two users after the race", round)
			}
			if n := r.sessionsOf(t, tid); n != 1 {
				t.Fatalf("round %d: %d Didit sessions, want 1", round, n)
			}
		}
	})

	// The proof racing creates for both persons: whatever the order, never
	// two open sessions for one user. Linked → one session for the two
	// identifiers; refused (both were creating) → two users, one each.
	t.Run("proof and creates", func(t *testing.T) {
		outcomes := map[string]int{}
		for round := range 4 {
			tid, key := r.newTenant(t, fmt.Sprint("RaceCreate", round))
			u := newUser(t, "racecreate")
			r.verifyOwn(t, key, u.email)
			expect(t, r.prepareWallet(t, key, u.key, u.email), 201, "user_prepared")
			r.aMinutePasses(t, tid, u.email)
			expect(t, r.call(t, "POST", "/security/email/send-otp", key, otpBody(u.email, u.key.Address)), 201, "otp_sent")
			code := r.mailed(t, u.email, u.key.Address)
			reps := r.together(t, []linkReq{
				{"POST", "/security/email/verify-otp", key, otpBody(u.email, u.key.Address, code)},
				{"POST", "/kyc/create/verify_public_kyc", key, byEmail(u.email)},
				{"POST", "/kyc/create/verify_public_kyc", key, byWallet(u.key.Address)},
			})
			for _, c := range reps[1:] {
				expect(t, c, 201, "kyc_session_created")
			}
			outcomes[reps[0].Env.Status]++
			se := r.statusOf(t, key, u.email, "")
			sw := r.statusOf(t, key, "", u.key.Address)
			switch reps[0].Env.Status {
			case "email_verified":
				if se.SessionID != sw.SessionID || r.sessionsOf(t, tid) != 1 {
					t.Fatalf("round %d: linked, but sessions %s and %s (%d at Didit)", round, se.SessionID, sw.SessionID, r.sessionsOf(t, tid))
				}
			case "email_wallet_conflict":
				if se.SessionID == sw.SessionID || r.sessionsOf(t, tid) != 2 {
					t.Fatalf("round %d: refused, but sessions %s and %s (%d at Didit)", round, se.SessionID, sw.SessionID, r.sessionsOf(t, tid))
				}
			default:
				t.Fatalf("round %d: verify %d %s", round, reps[0].Code, reps[0].Raw)
			}
		}
		t.Logf("proof outcomes under the race: %v", outcomes)
	})
}

type linkReq struct {
	method, path, key string
	body              any
}

// together sends every request at the same moment, each to the next
// replica, and returns the replies in order.
func (r *linkRig) together(t testing.TB, reqs []linkReq) []reply {
	t.Helper()
	out := make([]reply, len(reqs))
	errs := make([]error, len(reqs))
	nodes := make([]*instance, len(reqs))
	for i := range reqs {
		nodes[i] = r.node()
	}
	gate := make(chan struct{})
	var wg sync.WaitGroup
	for i, q := range reqs {
		wg.Go(func() {
			<-gate
			out[i], errs[i] = nodes[i].try(q.method, q.path, q.key, q.body)
		})
	}
	close(gate)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// simAt calls a Didit simulator's control API (base ends in /_sim) with a
// plain client and expects 200.
func simAt(t testing.TB, base, method, path string, body, out any) {
	t.Helper()
	var raw []byte
	if body != nil {
		var err error
		if raw, err = json.Marshal(body); err != nil {
			t.Fatal(err)
		}
	}
	simDo(t, base+path, method, raw, out)
}

// approveAt completes a session as approved at the simulator whose control
// API is base, then has it deliver the Approved webhook once more,
// synchronously: once that delivery has been answered 200, kycgate has
// stored the approval (from it, or from the first delivery it deduplicates).
func approveAt(t testing.TB, base, sessionID string) {
	t.Helper()
	simAt(t, base, "POST", "/sessions/"+url.PathEscape(sessionID)+"/complete", map[string]string{"outcome": "approved"}, nil)
	var evs []struct {
		ID          string `json:"event_id"`
		Status      string `json:"status"`
		WebhookType string `json:"webhook_type"`
	}
	simAt(t, base, "GET", "/events?session_id="+url.QueryEscape(sessionID), nil, &evs)
	eventID := ""
	for _, ev := range evs {
		if ev.Status == "Approved" && ev.WebhookType == "status.updated" {
			eventID = ev.ID
		}
	}
	if eventID == "" {
		t.Fatalf("no Approved status.updated event for %s: %+v", sessionID, evs)
	}
	var ds []struct {
		ResponseStatus int    `json:"response_status"`
		Error          string `json:"error"`
	}
	simAt(t, base, "POST", "/webhooks/reorder", map[string]string{"event_id": eventID}, &ds)
	if len(ds) == 0 {
		t.Fatal("the simulator delivered the Approved webhook nowhere")
	}
	for _, d := range ds {
		if d.ResponseStatus != 200 {
			t.Fatalf("webhook delivery answered %d %s", d.ResponseStatus, d.Error)
		}
	}
}
