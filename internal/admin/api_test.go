package admin_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/kycgate/kycgate/api"
	"github.com/kycgate/kycgate/internal/admin"
	"github.com/kycgate/kycgate/internal/contract"
	"github.com/kycgate/kycgate/internal/kyc"
	"github.com/kycgate/kycgate/internal/store"
	"github.com/kycgate/kycgate/internal/webhook"
)

type noMail struct{}

func (noMail) SendCode(context.Context, kyc.CodeMail) error { return nil }

// fixture is the admin listener's handler over a real service on a real
// SQLite store, and a client whose every answer is checked against
// api/openapi.yaml.
type fixture struct {
	t      *testing.T
	url    string
	svc    *kyc.Service
	client *http.Client
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := t.Context()
	db, err := store.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	svc, err := kyc.NewService(kyc.Deps{Store: db, Mailer: noMail{}}, kyc.Config{Secret: []byte(strings.Repeat("k", 32))})
	if err != nil {
		t.Fatal(err)
	}
	s := admin.New(token)
	s.MountAPI(admin.API{Service: svc, CheckWebhookURL: func(u string) error { return webhook.CheckURL(u, false) }})
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	v, err := contract.Load()
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{t: t, url: srv.URL, svc: svc, client: &http.Client{Transport: contract.Transport(t, v, nil)}}
}

type answer struct {
	code int
	h    http.Header
	env  struct {
		StatusCode int             `json:"statusCode"`
		Success    bool            `json:"success"`
		Status     string          `json:"status"`
		Message    string          `json:"message"`
		Data       json.RawMessage `json:"data"`
	}
	raw string
}

// do sends method path with body ("" for none) and the right token.
func (f *fixture) do(method, path, body string) answer {
	return f.doAuth(method, path, body, "Bearer "+token)
}

func (f *fixture) doAuth(method, path, body, auth string) answer {
	f.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, f.url+path, rd)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := f.client.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	a := answer{code: resp.StatusCode, h: resp.Header, raw: string(b)}
	if err := json.Unmarshal(b, &a.env); err != nil {
		f.t.Fatalf("%s %s: not JSON: %s", method, path, b)
	}
	if resp.Header.Get("X-Request-Id") == "" {
		f.t.Errorf("%s %s: no X-Request-Id", method, path)
	}
	return a
}

// want fails unless the answer has HTTP status code and envelope status.
func (a answer) want(t *testing.T, code int, status string) answer {
	t.Helper()
	if a.code != code || a.env.Status != status {
		t.Fatalf("got %d %s, want %d %s", a.code, a.raw, code, status)
	}
	return a
}

func (a answer) data(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(a.env.Data, v); err != nil {
		t.Fatalf("data: %v in %s", err, a.raw)
	}
}

// TestAdminAPIWalk: a tenant's life over the admin API, every answer
// within the OpenAPI document.
func TestAdminAPIWalk(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	var created struct {
		Tenant struct {
			ID                 string `json:"tenant_id"`
			MonthlyQuota       int    `json:"monthly_quota"`
			RateLimitPerMinute int    `json:"rate_limit_per_minute"`
		} `json:"tenant"`
		Key struct {
			KeyID string `json:"key_id"`
		} `json:"key"`
		APIKey string `json:"api_key"`
	}
	f.do("POST", "/admin/v1/tenants", `{"name":"Acme","monthly_quota":5}`).want(t, 201, "ok").data(t, &created)
	if created.Tenant.MonthlyQuota != 5 || created.Tenant.RateLimitPerMinute != kyc.DefaultRatePerMinute || !strings.HasPrefix(created.APIKey, "kg_") {
		t.Fatalf("created %+v", created)
	}
	if got, _, err := f.svc.Authenticate(t.Context(), created.APIKey); err != nil || got.ID != created.Tenant.ID {
		t.Fatalf("the new key does not authenticate: %v", err)
	}
	tp := "/admin/v1/tenants/" + created.Tenant.ID

	var list struct {
		Tenants []struct {
			ID string `json:"tenant_id"`
		} `json:"tenants"`
	}
	f.do("GET", "/admin/v1/tenants", "").want(t, 200, "ok").data(t, &list)
	if len(list.Tenants) != 1 || list.Tenants[0].ID != created.Tenant.ID {
		t.Errorf("list = %+v", list)
	}

	f.do("PATCH", tp, `{"monthly_quota":9,"kyc_enabled":false}`).want(t, 200, "ok")
	var shown struct {
		Tenant struct {
			KYC   bool `json:"kyc_enabled"`
			Quota int  `json:"monthly_quota"`
		} `json:"tenant"`
		Usage struct {
			Sessions  int  `json:"sessions"`
			Remaining *int `json:"sessions_remaining"`
			CodesSent int  `json:"codes_sent"`
		} `json:"usage"`
	}
	f.do("GET", tp, "").want(t, 200, "ok").data(t, &shown)
	if shown.Tenant.KYC || shown.Tenant.Quota != 9 || shown.Usage.Remaining == nil || *shown.Usage.Remaining != 9 {
		t.Errorf("after patch: %+v", shown)
	}
	f.do("PATCH", tp, `{"monthly_quota":0}`).want(t, 200, "ok")
	var usage struct {
		Remaining *int `json:"sessions_remaining"`
	}
	f.do("GET", tp+"/usage", "").want(t, 200, "ok").data(t, &usage)
	if usage.Remaining != nil {
		t.Errorf("unlimited quota has sessions_remaining %d", *usage.Remaining)
	}

	walkKeys(t, f, tp, created.Key.KeyID, created.APIKey)
	walkWebhooks(t, f, tp)
}

func walkKeys(t *testing.T, f *fixture, tp, keyID, plain string) {
	f.do("POST", tp+"/keys", "").want(t, 201, "ok")
	f.do("DELETE", tp+"/keys/"+keyID, "").want(t, 200, "ok")
	f.do("DELETE", tp+"/keys/"+keyID, "").want(t, 404, "not_found")
	if _, _, err := f.svc.Authenticate(t.Context(), plain); err == nil {
		t.Error("the revoked key still authenticates")
	}
	var keys struct {
		Keys []struct {
			ID      string `json:"key_id"`
			Revoked string `json:"revoked_at"`
		} `json:"keys"`
	}
	f.do("GET", tp+"/keys", "").want(t, 200, "ok").data(t, &keys)
	if len(keys.Keys) != 2 || keys.Keys[0].Revoked == "" || keys.Keys[1].Revoked != "" {
		t.Errorf("keys = %+v", keys)
	}
}

func walkWebhooks(t *testing.T, f *fixture, tp string) {
	f.do("POST", tp+"/webhooks", `{"url":"http://127.0.0.1/hook"}`).want(t, 400, "invalid_body")
	f.do("POST", tp+"/webhooks", `{"url":"https://hooks.example.com/x","events":["nope"]}`).want(t, 400, "invalid_body")
	var ep struct {
		Endpoint struct {
			ID     string   `json:"endpoint_id"`
			Events []string `json:"events"`
		} `json:"endpoint"`
		Secret string `json:"secret"`
	}
	f.do("POST", tp+"/webhooks", `{"url":"https://hooks.example.com/x","events":["email.verified"]}`).want(t, 201, "ok").data(t, &ep)
	if !strings.HasPrefix(ep.Secret, "whsec_") || len(ep.Endpoint.Events) != 1 {
		t.Errorf("endpoint = %+v", ep)
	}
	e := tp + "/webhooks/" + ep.Endpoint.ID
	f.do("GET", tp+"/webhooks", "").want(t, 200, "ok")
	f.do("GET", e+"/deliveries?limit=5", "").want(t, 200, "ok")
	f.do("GET", e+"/deliveries?limit=0", "").want(t, 400, "invalid_body")
	f.do("POST", e+"/rotate-secret", "").want(t, 200, "ok")
	f.do("POST", tp+"/events/msg_nope/redeliver", "").want(t, 404, "not_found")
	f.do("DELETE", e, "").want(t, 200, "ok")
	f.do("DELETE", e, "").want(t, 404, "not_found")
	f.do("GET", e+"/deliveries", "").want(t, 404, "not_found")
}

// TestAdminAPIRefusals: bad bodies and unknown names are envelope errors.
func TestAdminAPIRefusals(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	for _, body := range []string{"", "[]", "{", `{"name":"A","extra":1}`, `{"name":7}`, `{"name":"A"} {}`} {
		f.do("POST", "/admin/v1/tenants", body).want(t, 400, "invalid_body")
	}
	f.do("POST", "/admin/v1/tenants", `{"name":"  "}`).want(t, 400, kyc.CodeInvalidRequest)
	f.do("POST", "/admin/v1/tenants", `{"name":"A","monthly_quota":-1}`).want(t, 400, kyc.CodeInvalidRequest)
	f.do("POST", "/admin/v1/tenants", `{"name":"`+strings.Repeat("a", 70<<10)+`"}`).want(t, 413, "payload_too_large")
	for _, p := range []string{"", "/usage", "/keys", "/webhooks"} {
		f.do("GET", "/admin/v1/tenants/tn_nope"+p, "").want(t, 404, "not_found")
	}
	f.do("PATCH", "/admin/v1/tenants/tn_nope", `{"kyc_enabled":true}`).want(t, 404, "not_found")
	f.do("PATCH", "/admin/v1/tenants/tn_nope", `{}`).want(t, 400, "invalid_body")
	f.do("POST", "/admin/v1/tenants/tn_nope/keys", "").want(t, 404, "not_found")
	f.do("POST", "/admin/v1/tenants/tn_nope/webhooks", `{"url":"https://hooks.example.com/x"}`).want(t, 404, "not_found")
	f.do("GET", "/admin/v1/people", "").want(t, 400, "invalid_body")
	f.do("GET", "/admin/v1/people?email=a@example.com&wallet=0x1", "").want(t, 400, "invalid_body")
	f.do("GET", "/admin/v1/audit?since=yesterday", "").want(t, 400, "invalid_body")
	f.do("GET", "/admin/v1/audit?limit=1001", "").want(t, 400, "invalid_body")
	f.do("GET", "/admin/v1/audit?subject_email=a@example.com&subject_wallet=0x1", "").want(t, 400, "invalid_body")
	f.do("GET", "/admin/v1/audit?subject_email=not-an-email", "").want(t, 400, "invalid_email")
	f.do("GET", "/admin/v1/audit?subject_wallet=0x1", "").want(t, 400, "invalid_wallet")
	a := f.do("PUT", "/admin/v1/tenants", "{}").want(t, 405, "method_not_allowed")
	if a.h.Get("Allow") != "GET, POST" {
		t.Errorf("Allow = %q", a.h.Get("Allow"))
	}
}

// TestAdminAPIPeopleAndAuditShapes: the people, erasure and audit routes answer
// in their documented shapes.
func TestAdminAPIPeopleAndAuditShapes(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.do("GET", "/admin/v1/people?email=nobody@example.com", "").want(t, 404, "not_found")
	f.do("DELETE", "/admin/v1/people?wallet=0x0000000000000000000000000000000000000001", "").want(t, 404, "not_found")
	var page struct {
		Entries []json.RawMessage `json:"entries"`
	}
	f.do("GET", "/admin/v1/audit?tenant=tn_x&actor=admin&limit=10&since=2030-01-01T00:00:00Z", "").want(t, 200, "ok").data(t, &page)
	if page.Entries == nil {
		t.Error("entries is not an array")
	}
	var v struct {
		OK    *bool             `json:"ok"`
		Heads map[string]string `json:"heads"`
	}
	f.do("GET", "/admin/v1/audit/verify", "").want(t, 200, "ok").data(t, &v)
	if v.OK == nil || v.Heads == nil {
		t.Errorf("verify = %+v", v)
	}
}

// adminPaths are the admin API's documented paths and their methods.
func adminPaths(t *testing.T) map[string][]string {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(api.OpenAPI)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	for p, item := range doc.Paths.Map() {
		if !strings.HasPrefix(p, "/admin/") {
			continue
		}
		for m := range item.Operations() {
			out[p] = append(out[p], m)
		}
		sort.Strings(out[p])
	}
	if len(out) < 13 {
		t.Fatalf("only %d admin paths documented", len(out))
	}
	return out
}

// TestAdminRoutesMatchOpenAPI: every documented admin path and method is
// served (never the generic "Route not found" or 405), every other method
// answers 405 with exactly the documented ones in Allow, and every route
// refuses a missing or wrong token with 401 and WWW-Authenticate.
func TestAdminRoutesMatchOpenAPI(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.client = http.DefaultClient // wrong methods and ids are what this test sends
	for p, documented := range adminPaths(t) {
		concrete := strings.NewReplacer("{tenant_id}", "tn_x", "{key_id}", "key_x", "{endpoint_id}", "ep_x", "{event_id}", "msg_x").Replace(p)
		for _, m := range []string{"GET", "POST", "PUT", "PATCH", "DELETE"} {
			a := f.do(m, concrete, "{}")
			isDoc := sort.SearchStrings(documented, m) < len(documented) && documented[sort.SearchStrings(documented, m)] == m
			switch {
			case isDoc && (a.code == 405 || a.env.Message == "Route not found"):
				t.Errorf("%s %s is documented but answered %s", m, p, a.raw)
			case !isDoc && (a.code != 405 || a.h.Get("Allow") != strings.Join(documented, ", ")):
				t.Errorf("%s %s is not documented but answered %d Allow %q (documented %v)", m, p, a.code, a.h.Get("Allow"), documented)
			}
			for _, auth := range []string{"", "Bearer wrong", "Bearer " + token + "x"} {
				a := f.doAuth(m, concrete, "{}", auth)
				if a.code != 401 || a.env.Status != "unauthorized" || a.h.Get("WWW-Authenticate") == "" {
					t.Errorf("%s %s with %q = %d %s, want 401", m, p, auth, a.code, a.raw)
				}
			}
		}
	}
}
