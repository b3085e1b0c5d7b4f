package kyc_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/kycgate/kycgate/internal/kyc"
)

// AuthenticatedStatus reads key and status together when it can; it must
// answer exactly what Authenticate followed by Status answers, for every
// kind of key and identity, with the auth cache off, cold and warm.
func TestAuthenticatedStatusIsAuthenticateThenStatus(t *testing.T) {
	t.Parallel()
	r := newSessRig(t, &sessProvider{})
	ctx := context.Background()
	r.verified(t, "done@example.com")
	r.create(t, "done@example.com", kyc.CreateNew)
	r.verified(t, "nosession@example.com")
	if _, err := r.svc.Prepare(ctx, r.tenant, "unverified@example.com"); err != nil {
		t.Fatal(err)
	}
	// other's key is good but nobody is enrolled there; revoked's is not.
	_, otherKey, err := r.svc.CreateTenant(ctx, kyc.NewTenant{Name: "Other"})
	if err != nil {
		t.Fatal(err)
	}
	gone, goneKey, err := r.svc.CreateTenant(ctx, kyc.NewTenant{Name: "Gone"})
	if err != nil {
		t.Fatal(err)
	}
	keys, err := r.db.ListAPIKeys(ctx, gone.ID)
	if err != nil || len(keys) != 1 {
		t.Fatalf("keys %v, %v", keys, err)
	}
	if err := r.svc.RevokeAPIKey(ctx, gone.ID, keys[0].ID); err != nil {
		t.Fatal(err)
	}

	withCache := func() *kyc.Service {
		s, err := kyc.NewService(kyc.Deps{Store: r.db, Mailer: r.mail, Clock: r.clock},
			kyc.Config{Secret: []byte(strings.Repeat("k", 32)), AuthCacheTTL: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	const evm = "0x52908400098527886E0F7030069857D2E4169EE7"
	ids := []kyc.Identity{
		{Email: "done@example.com"}, {Email: " DONE@Example.com "}, {Email: "nosession@example.com"},
		{Email: "unverified@example.com"}, {Email: "nobody@example.com"}, {Email: "not an email"},
		{Wallet: evm}, {Wallet: "0xnope"}, {Email: "done@example.com", Wallet: "0xnope"},
		{Email: "nobody@example.com", Wallet: "0xnope"}, {}, {Email: "done@example.com", Wallet: evm},
	}
	seen := map[string]bool{}
	for _, mode := range []string{"no cache", "cache cold", "cache warm"} {
		for _, key := range []string{r.key, otherKey, goneKey, "kg_unknown", "", strings.Repeat("k", 201)} {
			for _, id := range ids {
				tw, hw, ew := r.svc.Authenticate(ctx, key)
				var rw kyc.StatusResult
				if ew == nil {
					rw, ew = r.svc.Status(ctx, tw, id)
				}
				svc := r.svc
				switch mode {
				case "cache cold":
					svc = withCache()
				case "cache warm":
					svc = withCache()
					svc.Authenticate(ctx, key)
				}
				tg, hg, read, rg, eg := svc.AuthenticatedStatus(ctx, key, id)
				// One query only for a single well-formed identity and a key
				// not in the cache; otherwise status is read after the gates.
				email, wallet := strings.TrimSpace(id.Email), id.Wallet
				malformed := email == "not an email" || wallet == "0xnope"
				oneQuery := mode != "cache warm" && (email == "") != (wallet == "") && !malformed
				if tg.ID != "" && read != oneQuery {
					t.Errorf("%s: read with the key = %v, want %v", mode+" "+id.Email+"|"+id.Wallet, read, oneQuery)
				}
				if tg.ID != "" && !read {
					rg, eg = svc.Status(ctx, tg, id)
				}
				name := mode + ", key " + key[:min(len(key), 12)] + ", " + id.Email + "|" + id.Wallet
				if d := cmp.Diff(tw, tg); d != "" || hw != hg {
					t.Errorf("%s: tenant (-want +got):\n%s hash %q, want %q", name, d, hg, hw)
				}
				if d := cmp.Diff(rw, rg); d != "" {
					t.Errorf("%s: result (-want +got):\n%s", name, d)
				}
				if !sameError(ew, eg) {
					t.Errorf("%s: err %v, want %v", name, eg, ew)
				}
				seen[outcome(eg)] = true
			}
		}
	}
	// The cases must reach every answer status gives.
	for _, o := range []string{"ok", "bad key", kyc.CodeUserNotFound, kyc.CodeKYCNotFound, kyc.CodeInvalidEmail,
		kyc.CodeIdentityMismatch, kyc.CodeMissingParams} {
		if !seen[o] {
			t.Errorf("no case answered %s", o)
		}
	}
}

func outcome(err error) string {
	var e *kyc.Error
	switch {
	case err == nil:
		return "ok"
	case errors.As(err, &e):
		return e.Code
	case errors.Is(err, kyc.ErrNotFound):
		return "bad key"
	}
	return err.Error()
}

func sameError(a, b error) bool {
	var ea, eb *kyc.Error
	switch {
	case a == nil || b == nil:
		return a == b
	case errors.As(a, &ea) && errors.As(b, &eb):
		return ea.Code == eb.Code && ea.Message == eb.Message
	default:
		return errors.Is(a, kyc.ErrNotFound) == errors.Is(b, kyc.ErrNotFound)
	}
}

// joinFails is a store whose joined key-and-status read fails while its
// other queries work, as one query can when it alone meets a lock or
// statement timeout.
type joinFails struct{ kyc.Store }

func (joinFails) StatusRead(context.Context, string, string, string) (kyc.Tenant, kyc.Enrollment, *kyc.SessionView, error) {
	return kyc.Tenant{}, kyc.Enrollment{}, nil, errors.New("joined read failed")
}

// When the joined read fails, the key is still checked on its own, so the
// gates answer in their documented order (key, limit, product) before the
// request meets the failure.
func TestAuthenticatedStatusFallsBackToTheKey(t *testing.T) {
	t.Parallel()
	r := newSessRig(t, &sessProvider{})
	ctx := context.Background()
	r.verified(t, "done@example.com")
	r.create(t, "done@example.com", kyc.CreateNew)
	svc, err := kyc.NewService(kyc.Deps{Store: joinFails{r.db}, Mailer: r.mail, Clock: r.clock},
		kyc.Config{Secret: []byte(strings.Repeat("k", 32))})
	if err != nil {
		t.Fatal(err)
	}
	id := kyc.Identity{Email: "done@example.com"}
	tg, hash, read, _, err := svc.AuthenticatedStatus(ctx, r.key, id)
	if err != nil || tg.ID != r.tenant.ID || hash == "" || read {
		t.Fatalf("good key: tenant %q hash %q read %v err %v; want tenant %q, a hash, not read, no error",
			tg.ID, hash, read, err, r.tenant.ID)
	}
	if _, err := svc.Status(ctx, tg, id); err != nil {
		t.Errorf("status after the fallback: %v", err)
	}
	if tg, _, _, _, err := svc.AuthenticatedStatus(ctx, "kg_unknown", id); tg.ID != "" || !errors.Is(err, kyc.ErrNotFound) {
		t.Errorf("unknown key: tenant %q err %v; want the invalid-key answer", tg.ID, err)
	}
}
