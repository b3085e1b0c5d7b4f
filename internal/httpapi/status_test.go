package httpapi_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kycgate/kycgate/internal/contract"
	"github.com/kycgate/kycgate/internal/httpapi"
	"github.com/kycgate/kycgate/internal/kyc"
	"github.com/kycgate/kycgate/internal/store"
)

type fixedClock time.Time

func (c fixedClock) Now() time.Time { return time.Time(c) }

// Status authenticates itself (key and status are one store read), so its
// gates are not the shared middleware's: they must still answer in the
// documented order, key, rate limit, product, then the request itself.
func TestStatusGates(t *testing.T) {
	ctx := context.Background()
	db, err := store.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// Mid-minute and fixed, so the one-per-minute limit below cannot reset.
	clock := fixedClock(time.Date(2026, 5, 1, 12, 0, 30, 0, time.UTC))
	svc, err := kyc.NewService(kyc.Deps{Store: db, Mailer: noMail{}, Clock: clock}, kyc.Config{Secret: []byte(strings.Repeat("k", 32))})
	if err != nil {
		t.Fatal(err)
	}
	tenant := func(name string, perMin int) (kyc.Tenant, string) {
		tn, key, err := svc.CreateTenant(ctx, kyc.NewTenant{Name: name, RatePerMinute: &perMin})
		if err != nil {
			t.Fatal(err)
		}
		return tn, key
	}
	_, key := tenant("Open", 0)
	off, offKey := tenant("NoKYC", 0)
	if err := db.SetKYCEnabled(ctx, off.ID, false); err != nil {
		t.Fatal(err)
	}
	_, slowKey := tenant("Slow", 1)
	gone, goneKey := tenant("Gone", 0)
	keys, err := db.ListAPIKeys(ctx, gone.ID)
	if err != nil || len(keys) != 1 {
		t.Fatalf("keys %v %v", keys, err)
	}
	if err := svc.RevokeAPIKey(ctx, gone.ID, keys[0].ID); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Prepare(ctx, kyc.Tenant{ID: off.ID}, "known@example.com"); err != nil {
		t.Fatal(err)
	}

	srv := httptest.NewServer(httpapi.New(httpapi.Config{Service: svc, Counter: db, Clock: clock, Ready: db.Ready}))
	defer srv.Close()
	v, err := contract.Load()
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Transport: contract.Transport(t, v, nil)}

	for _, tc := range []struct {
		name, key, query string
		code             int
		status           string
	}{
		// A wallet that is no address is the caller's mistake, said as
		// such (docs/api.md §1, §7 step 2), as a malformed email is.
		{"create, bad wallet", key, "POST /kyc/create/verify_public_kyc", 400, "invalid_wallet"},
		{"no key, no params", "", "", 403, "invalid_api_key"},
		{"unknown key", "kg_unknown", "email=a@example.com", 403, "invalid_api_key"},
		{"unknown key, bad email", "kg_unknown", "email=nope", 403, "invalid_api_key"},
		{"revoked key", goneKey, "email=a@example.com", 403, "invalid_api_key"},
		{"kyc off", offKey, "email=known@example.com", 403, "product_not_enabled"},
		{"kyc off, no params", offKey, "", 403, "product_not_enabled"},
		{"no params", key, "", 400, "missing_params"},
		{"bad email", key, "email=nope", 400, "invalid_email"},
		{"bad wallet", key, "wallet=0xnope", 400, "invalid_wallet"},
		{"bad email and bad wallet", key, "email=nope&wallet=0xnope", 400, "invalid_email"},
		{"enrolled at another tenant", key, "email=known@example.com", 404, "user_not_found"},
		{"unknown wallet", key, "wallet=0x52908400098527886E0F7030069857D2E4169EE7", 404, "user_not_found"},
		{"first of the minute", slowKey, "email=a@example.com", 404, "user_not_found"},
		{"over the limit", slowKey, "email=a@example.com", 429, ""},
		{"over the limit, no params", slowKey, "", 429, ""},
	} {
		req, _ := http.NewRequest("GET", srv.URL+"/kyc/status?"+tc.query, nil)
		if path, ok := strings.CutPrefix(tc.query, "POST "); ok {
			req, _ = http.NewRequest("POST", srv.URL+path, strings.NewReader(`{"wallet":"0xnope"}`))
		}
		req.Header.Set("x-api-key", tc.key)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var env struct {
			Status string `json:"status"`
		}
		json.Unmarshal(body, &env)
		if resp.StatusCode != tc.code || env.Status != tc.status {
			t.Errorf("%s: %d %s, want %d %q", tc.name, resp.StatusCode, body, tc.code, tc.status)
		}
	}
}
