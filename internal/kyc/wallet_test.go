package kyc_test

// Service-level tests of the wallet flow (docs/api.md §5, §6) where the clock
// matters, on a real SQLite store. Signatures come from the committed
// vectors (made by ethers and @solana/web3.js + tweetnacl), whose challenge
// messages are stored here as if the service had issued them.

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kycgate/kycgate/internal/kyc"
	"github.com/kycgate/kycgate/internal/store"
)

type noMailer struct{}

func (noMailer) SendCode(context.Context, kyc.CodeMail) error {
	return errors.New("no mail in these tests")
}

type walletRig struct {
	svc    *kyc.Service
	db     *store.DB
	clock  *testClock
	tenant kyc.Tenant
}

func newWalletRig(t *testing.T, now time.Time) *walletRig {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	clock := &testClock{t: now}
	svc, err := kyc.NewService(kyc.Deps{Store: db, Mailer: noMailer{}, Clock: clock},
		kyc.Config{Secret: []byte(strings.Repeat("s", 32))})
	if err != nil {
		t.Fatal(err)
	}
	tn, _, err := svc.CreateTenant(ctx, kyc.NewTenant{Name: "T"})
	if err != nil {
		t.Fatal(err)
	}
	return &walletRig{svc: svc, db: db, clock: clock, tenant: tn}
}

type walletVector struct {
	Name, Chain, Address, Message, Signature, Want string
}

func loadWalletVector(t *testing.T, name string) walletVector {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "wallet", "testdata", "vectors.json"))
	if err != nil {
		t.Fatal(err)
	}
	var vf struct{ Vectors []walletVector }
	if err := json.Unmarshal(b, &vf); err != nil {
		t.Fatal(err)
	}
	for _, v := range vf.Vectors {
		if v.Name == name {
			return v
		}
	}
	t.Fatalf("no vector %q", name)
	return walletVector{}
}

// vectorTimes reads the Issued At and Expiration Time lines of a challenge
// vector's message.
func vectorTimes(t *testing.T, msg string) (nonce string, issued, exp time.Time) {
	t.Helper()
	for line := range strings.SplitSeq(msg, "\n") {
		var err error
		if v, ok := strings.CutPrefix(line, "Nonce: "); ok {
			nonce = v
		} else if v, ok := strings.CutPrefix(line, "Issued At: "); ok {
			issued, err = time.Parse(time.RFC3339, v)
		} else if v, ok := strings.CutPrefix(line, "Expiration Time: "); ok {
			exp, err = time.Parse(time.RFC3339, v)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if nonce == "" || issued.IsZero() || exp.IsZero() {
		t.Fatalf("not a challenge message: %q", msg)
	}
	return nonce, issued, exp
}

// issueVector stores a vector's challenge message as one the service issued
// to the rig's tenant, expiring when the message says.
func (r *walletRig) issueVector(t *testing.T, v walletVector) {
	t.Helper()
	nonce, _, exp := vectorTimes(t, v.Message)
	if err := r.db.SaveChallenge(context.Background(), kyc.Challenge{Nonce: nonce, TenantID: r.tenant.ID,
		Wallet: v.Address, Chain: v.Chain, Message: v.Message, ExpiresAt: exp}); err != nil {
		t.Fatal(err)
	}
}

func (r *walletRig) prepare(sig string, v walletVector) (kyc.PrepareResult, error) {
	return r.svc.PrepareWallet(context.Background(), r.tenant,
		kyc.PrepareWalletInput{Wallet: v.Address, Message: v.Message, SignedBytes: sig})
}

func wantCode(t *testing.T, err error, code, msg string) {
	t.Helper()
	var e *kyc.Error
	if !errors.As(err, &e) || e.Code != code || e.Message != msg {
		t.Fatalf("err = %v, want %s %q", err, code, msg)
	}
}

func wantPrepared(t *testing.T, res kyc.PrepareResult, err error, created bool) {
	t.Helper()
	if err != nil {
		t.Fatalf("PrepareWallet: %v", err)
	}
	want := kyc.State{WalletVerified: true, KYCStatus: "pending"}
	if res.Created != created || res.State != want {
		t.Fatalf("PrepareWallet = %+v, want created=%v state %+v", res, created, want)
	}
}

const (
	msgExpired   = "Challenge expired, request a new one"
	msgNotFound  = "No matching challenge; request a new one"
	msgSignature = "Signature does not match the wallet"
)

// TestWalletChallengeExpiry: a challenge is accepted strictly before its
// expiry and refused from that instant on; an expired attempt does not use
// it, and a used one is not found even once expired.
func TestWalletChallengeExpiry(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"evm/key0/challenge", "solana/key0/challenge"} {
		t.Run(name, func(t *testing.T) {
			v := loadWalletVector(t, name)
			_, issued, exp := vectorTimes(t, v.Message)
			if exp.Sub(issued) != 10*time.Minute {
				t.Fatalf("vector lifetime %v", exp.Sub(issued))
			}
			r := newWalletRig(t, exp)
			r.issueVector(t, v)
			for _, at := range []time.Time{exp, exp.Add(time.Millisecond), exp.Add(24 * time.Hour)} {
				r.clock.Set(at)
				_, err := r.prepare(v.Signature, v)
				wantCode(t, err, kyc.CodeChallengeExpired, msgExpired)
			}
			// The lookup comes before the signature: a bad signature on an
			// expired challenge is still "expired".
			r.clock.Set(exp)
			_, err := r.prepare(strings.Repeat("1", 10), v)
			wantCode(t, err, kyc.CodeChallengeExpired, msgExpired)

			r.clock.Set(exp.Add(-time.Millisecond))
			res, err := r.prepare(v.Signature, v)
			wantPrepared(t, res, err, true)
			for _, at := range []time.Time{exp.Add(-time.Millisecond), exp, exp.Add(time.Hour)} {
				r.clock.Set(at)
				_, err = r.prepare(v.Signature, v)
				wantCode(t, err, kyc.CodeChallengeNotFound, msgNotFound)
			}
		})
	}
}

// TestWalletChallengeIssued: the service's own challenge expires ten
// minutes after its (whole-second) issue time, both in the message and in
// what PrepareWallet enforces.
func TestWalletChallengeIssued(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 3, 4, 5, 6, 7, 890_000_000, time.FixedZone("X", 3600))
	r := newWalletRig(t, t0)
	v := loadWalletVector(t, "evm/key0/challenge")
	res, err := r.svc.Challenge(context.Background(), r.tenant, strings.ToLower(v.Address), "")
	if err != nil {
		t.Fatal(err)
	}
	issued := t0.UTC().Truncate(time.Second)
	lines := strings.Split(res.Message, "\n")
	if len(lines) != 7 || res.Wallet != v.Address || res.Chain != "evm" ||
		lines[1] != "Wallet: "+v.Address ||
		lines[5] != "Issued At: "+issued.Format(time.RFC3339) ||
		lines[6] != "Expiration Time: "+issued.Add(10*time.Minute).Format(time.RFC3339) {
		t.Fatalf("Challenge = %+v", res)
	}
	nonce := strings.TrimPrefix(lines[4], "Nonce: ")
	c, err := r.db.FindChallenge(context.Background(), nonce)
	if err != nil {
		t.Fatal(err)
	}
	if !c.ExpiresAt.Equal(issued.Add(10*time.Minute)) || c.TenantID != r.tenant.ID || c.Wallet != v.Address ||
		c.Message != res.Message || c.UsedAt != nil {
		t.Fatalf("stored challenge %+v", c)
	}
	// Expired by the clock, whatever the signature: the check precedes it.
	r.clock.Set(issued.Add(10 * time.Minute))
	_, err = r.svc.PrepareWallet(context.Background(), r.tenant,
		kyc.PrepareWalletInput{Wallet: v.Address, Message: res.Message, SignedBytes: v.Signature})
	wantCode(t, err, kyc.CodeChallengeExpired, msgExpired)
	r.clock.Set(issued.Add(10*time.Minute - time.Nanosecond))
	_, err = r.svc.PrepareWallet(context.Background(), r.tenant,
		kyc.PrepareWalletInput{Wallet: v.Address, Message: res.Message, SignedBytes: v.Signature})
	wantCode(t, err, kyc.CodeInvalidSignature, msgSignature)
}

// TestWalletVForms: every accepted recovery-byte form (0, 1, 27, 28), with
// or without 0x and in either case, registers the wallet; a refused
// signature leaves the challenge usable. key2's ethers signature has v = 27
// and key0's v = 28, so both recovery ids are covered.
func TestWalletVForms(t *testing.T) {
	t.Parallel()
	type tc struct {
		name, vector string
		sig          func(string) string
	}
	same := func(s string) string { return s }
	cases := []tc{
		{"key0 v28", "evm/key0/challenge", same},
		{"key0 v1", "evm/key0/challenge/v01", same},
		{"key0 v28 no 0x", "evm/key0/challenge/no-0x", same},
		{"key0 v28 upper", "evm/key0/challenge/uppercase-hex", same},
		{"key2 v27", "evm/key2/challenge", same},
		{"key2 v0", "evm/key2/challenge/v01", same},
		{"key2 v0 upper", "evm/key2/challenge/v01", func(s string) string { return "0x" + strings.ToUpper(s[2:]) }},
		{"key2 v0 no 0x", "evm/key2/challenge/v01", func(s string) string { return strings.TrimPrefix(s, "0x") }},
	}
	seenV := map[byte]bool{}
	for _, c := range cases {
		// Subtest names avoid '#': the SQLite DSN would cut the path there.
		t.Run(c.name, func(t *testing.T) {
			v := loadWalletVector(t, c.vector)
			if v.Want != "ok" {
				t.Fatalf("vector %s is %s", c.vector, v.Want)
			}
			sig := c.sig(v.Signature)
			raw, err := hex.DecodeString(strings.TrimPrefix(strings.ToLower(sig), "0x"))
			if err != nil || len(raw) != 65 {
				t.Fatalf("signature %q", sig)
			}
			seenV[raw[64]] = true
			_, issued, _ := vectorTimes(t, v.Message)
			r := newWalletRig(t, issued)
			r.issueVector(t, v)
			// Refused first: the malleable twin, a flipped recovery id, a
			// stray v, the right signature of another key.
			base := strings.Join(strings.Split(c.vector, "/")[:3], "/") // evm/keyN/challenge
			for _, bad := range []string{"/high-s", "/high-s-v01", "/flipped-v", "/other-key"} {
				_, err := r.prepare(loadWalletVector(t, base+bad).Signature, v)
				wantCode(t, err, kyc.CodeInvalidSignature, msgSignature)
			}
			for _, stray := range []byte{2, 3, 26, 29, 255} {
				c := append([]byte(nil), raw...)
				c[64] = stray
				_, err := r.prepare("0x"+hex.EncodeToString(c), v)
				wantCode(t, err, kyc.CodeInvalidSignature, msgSignature)
			}
			res, err := r.prepare(sig, v)
			wantPrepared(t, res, err, true)
		})
	}
	for _, b := range []byte{0, 1, 27, 28} {
		if !seenV[b] {
			t.Errorf("no case used v = %d", b)
		}
	}
}

// TestWalletSolanaVector: a stored Solana challenge takes the library's
// signature after refusing malformed and mismatched ones.
func TestWalletSolanaVector(t *testing.T) {
	t.Parallel()
	v := loadWalletVector(t, "solana/key1/challenge")
	_, issued, _ := vectorTimes(t, v.Message)
	r := newWalletRig(t, issued)
	r.issueVector(t, v)
	for _, bad := range []string{"/s-plus-l", "/flipped-r", "/other-key"} {
		_, err := r.prepare(loadWalletVector(t, "solana/key1/challenge"+bad).Signature, v)
		wantCode(t, err, kyc.CodeInvalidSignature, msgSignature)
	}
	// Another tenant: not found, even with the right signature.
	other, _, err := r.svc.CreateTenant(context.Background(), kyc.NewTenant{Name: "Other"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.svc.PrepareWallet(context.Background(), other,
		kyc.PrepareWalletInput{Wallet: v.Address, Message: v.Message, SignedBytes: v.Signature})
	wantCode(t, err, kyc.CodeChallengeNotFound, msgNotFound)
	res, err := r.prepare(v.Signature, v)
	wantPrepared(t, res, err, true)
}
