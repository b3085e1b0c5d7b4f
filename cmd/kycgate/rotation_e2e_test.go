package main

// Secret rotation as the README's "Rotating the secret" runs it: keys, a
// live code and an idempotent request made under the old secret; a restart
// with the new secret and the old one in KYCGATE_SECRET_PREVIOUS fails no
// request and moves a used key to the new secret; a restart without the
// previous secret then still serves that key, and only the keys never used
// meanwhile stop working.

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/kycgate/kycgate/internal/kyc"
	"github.com/kycgate/kycgate/internal/store"
)

func TestSecretRotation(t *testing.T) {
	t.Parallel()
	mb := newMailbox(t)
	env := newEnv(t, mb.srv.URL())
	oldSecret, newSecret := strings.Repeat("o", 40), strings.Repeat("n", 40)
	env["KYCGATE_SECRET"] = oldSecret
	in := start(t, env)
	_, used := in.tenant("Rotating", "--rate-limit-per-minute", "0")
	_, unused := in.tenant("Idle")
	_, polled := in.tenant("Poller", "--rate-limit-per-minute", "0")

	const email = "rotate@example.com"
	expect(t, in.call("POST", "/kyc/prepare", used, map[string]string{"email": email}), 201, "user_prepared")
	expect(t, in.call("POST", "/security/email/send-otp", used, map[string]string{"email": email}), 201, "otp_sent")
	code := mb.code(email)
	first := in.callKey(t, "/kyc/prepare", used, "rotate-1", map[string]string{"email": "idem@example.com"})
	expect(t, first, 201, "user_prepared")

	// Step 1: every replica restarts with the new secret and the old one
	// as previous.
	env["KYCGATE_SECRET"], env["KYCGATE_SECRET_PREVIOUS"] = newSecret, oldSecret
	in.stop()
	in.boot()
	// The code mailed before the restart proves the address.
	expect(t, in.call("POST", "/security/email/verify-otp", used, map[string]string{"email": email, "code": code}), 200, "email_verified")
	// The request sent before the restart is replayed, not run again.
	expectReplay(t, in.callKey(t, "/kyc/prepare", used, "rotate-1", map[string]string{"email": "idem@example.com"}), first)
	// GET /kyc/status joins the key lookup with the status read: a key
	// under the old secret takes the fallback there too.
	expect(t, in.call("GET", "/kyc/status?email=nobody@example.com", polled, nil), 404, "user_not_found")
	// In the database: the used keys are stored under the new secret only,
	// the unused one under the old secret still.
	stored := storedUnder(t, env)
	for _, c := range []struct {
		key, secret string
		want        bool
	}{{used, newSecret, true}, {used, oldSecret, false}, {polled, newSecret, true}, {polled, oldSecret, false},
		{unused, oldSecret, true}, {unused, newSecret, false}} {
		if got := stored(c.secret, c.key); got != c.want {
			t.Errorf("key %s… stored under the %s secret: %v, want %v", c.key[:10], c.secret[:1], got, c.want)
		}
	}

	// Step 2: the previous secret is dropped.
	delete(env, "KYCGATE_SECRET_PREVIOUS")
	in.restart()
	expect(t, in.call("POST", "/kyc/prepare", used, map[string]string{"email": email}), 200, "user_already_prepared")
	expect(t, in.call("GET", "/kyc/status?email=nobody@example.com", polled, nil), 404, "user_not_found")
	expect(t, in.call("POST", "/kyc/prepare", unused, map[string]string{"email": email}), 403, "invalid_api_key")
}

// storedUnder opens the database as an operator would and reports
// whether a key is stored under a secret's hash (kyc's keyed hash, written
// out again here as the oracle).
func storedUnder(t *testing.T, env map[string]string) func(secret, key string) bool {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, env["KYCGATE_DATABASE_URL"], store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return func(secret, key string) bool {
		h := hmac.New(sha256.New, []byte(secret))
		h.Write([]byte("apikey"))
		h.Write(binary.BigEndian.AppendUint32(nil, uint32(len(key))))
		h.Write([]byte(key))
		_, err := db.TenantByKeyHash(ctx, hex.EncodeToString(h.Sum(nil)))
		if err != nil && !errors.Is(err, kyc.ErrNotFound) {
			t.Fatal(err)
		}
		return err == nil
	}
}
