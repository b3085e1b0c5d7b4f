package httpapi_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kycgate/kycgate/internal/contract"
	"github.com/kycgate/kycgate/internal/httpapi"
	"github.com/kycgate/kycgate/internal/kyc"
	"github.com/kycgate/kycgate/internal/store"
)

type noMail struct{}

func (noMail) SendCode(context.Context, kyc.CodeMail) error { return nil }

// TestDatabaseOutage: with the database gone, every endpoint answers its
// own documented 500 (they differ per endpoint), readiness fails, and
// liveness does not.
func TestDatabaseOutage(t *testing.T) {
	ctx := context.Background()
	db, err := store.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := kyc.NewService(kyc.Deps{Store: db, Mailer: noMail{}}, kyc.Config{Secret: []byte(strings.Repeat("k", 32))})
	if err != nil {
		t.Fatal(err)
	}
	_, key, err := svc.CreateTenant(ctx, kyc.NewTenant{Name: "T"})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(httpapi.New(httpapi.Config{Service: svc, Ready: db.Ready}))
	defer srv.Close()
	v, err := contract.Load()
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Transport: contract.Transport(t, v, nil)}
	db.Close()

	for _, tc := range []struct{ method, path, status string }{
		{"POST", "/kyc/prepare", "server_failed"},
		{"POST", "/kyc/prepare-wallet", "server_failed"},
		{"POST", "/security/email/send-otp", "server_error"},
		{"POST", "/api/security/email/verify-otp", "server_error"},
		{"POST", "/security/wallet/challenge", "server_error"},
		{"POST", "/kyc/create/verify_public_kyc", "server_failed"},
		{"GET", "/kyc/status?email=a@example.com", "server_failed"},
		{"GET", "/config/products", "server_error"},
	} {
		req, _ := http.NewRequest(tc.method, srv.URL+tc.path, strings.NewReader(`{"email":"a@example.com"}`))
		req.Header.Set("x-api-key", key)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 500 || !strings.Contains(string(body), `"status":"`+tc.status+`"`) {
			t.Errorf("%s %s = %d %s, want 500 %s", tc.method, tc.path, resp.StatusCode, body, tc.status)
		}
	}
	for path, want := range map[string]int{"/healthz": 200, "/readyz": 503} {
		resp, err := client.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("%s = %d, want %d", path, resp.StatusCode, want)
		}
	}
}
