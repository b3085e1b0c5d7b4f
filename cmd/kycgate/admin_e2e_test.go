package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"sort"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/kycgate/kycgate/api"
)

const adminToken = "admin-api-e2e-token-0123456789abcdefghij"

// adminCall sends one request to the admin listener with token ("" for
// none), through the client that checks every answer against
// api/openapi.yaml.
func (in *instance) adminCall(method, path, token, body string) reply {
	in.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, in.AdminURL+path, rd)
	if err != nil {
		in.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := in.client.Do(req)
	if err != nil {
		in.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r := reply{Code: resp.StatusCode, Header: resp.Header, Raw: raw}
	if err := json.Unmarshal(raw, &r.Env); err != nil {
		in.t.Fatalf("%s %s: body is not JSON: %s", method, path, raw)
	}
	return r
}

// admin is adminCall with the right token.
func (in *instance) admin(method, path, body string) reply {
	in.t.Helper()
	return in.adminCall(method, path, adminToken, body)
}

func startAdmin(t *testing.T) (*instance, *mailbox) {
	mb := newMailbox(t)
	env := newEnv(t, mb.srv.URL())
	env["KYCGATE_ADMIN_TOKEN"] = adminToken
	return start(t, env), mb
}

// TestAdminAPIRefusesTokens: every documented /admin/v1 route and method
// answers a missing or wrong token with the 401 envelope and
// WWW-Authenticate, and none of them exists on the partner listener.
func TestAdminAPIRefusesTokens(t *testing.T) {
	t.Parallel()
	in, _ := startAdmin(t)
	doc, err := openapi3.NewLoader().LoadFromData(api.OpenAPI)
	if err != nil {
		t.Fatal(err)
	}
	ids := strings.NewReplacer("{tenant_id}", "tn_x", "{key_id}", "key_x", "{endpoint_id}", "ep_x", "{event_id}", "msg_x")
	var paths []string
	for p := range doc.Paths.Map() {
		if strings.HasPrefix(p, "/admin/v1/") {
			paths = append(paths, p)
		}
	}
	sort.Strings(paths)
	if len(paths) < 13 {
		t.Fatalf("only %d admin paths documented", len(paths))
	}
	for _, p := range paths {
		for m := range doc.Paths.Value(p).Operations() {
			for _, tok := range []string{"", "wrong", adminToken[1:], adminToken + "x"} {
				r := in.adminCall(m, ids.Replace(p), tok, "")
				expect(t, r, 401, "unauthorized", "Missing or invalid admin token")
				if r.Header.Get("WWW-Authenticate") == "" {
					t.Errorf("%s %s: 401 without WWW-Authenticate", m, p)
				}
			}
			// The partner listener: no admin API, whatever the key or token.
			req, _ := http.NewRequest(m, in.URL+ids.Replace(p), nil)
			req.Header.Set("Authorization", "Bearer "+adminToken)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 404 {
				t.Errorf("partner listener: %s %s = %d, want 404", m, p, resp.StatusCode)
			}
		}
	}
}

// TestAdminAPIWalk: a tenant created over the admin API works on the
// partner API; its limits change, its usage counts what the partner did,
// keys come and go (a revoked one is refused at once), webhook endpoints
// come and go, a person is looked up and erased, and the audit log holds
// all of it. Every answer is checked against the OpenAPI file.
func TestAdminAPIWalk(t *testing.T) {
	t.Parallel()
	in, mb := startAdmin(t)
	var created struct {
		Tenant struct {
			ID string `json:"tenant_id"`
		} `json:"tenant"`
		Key struct {
			ID string `json:"key_id"`
		} `json:"key"`
		APIKey string `json:"api_key"`
	}
	r := in.admin("POST", "/admin/v1/tenants", `{"name":"Walk","monthly_quota":10}`)
	expect(t, r, 201, "ok")
	r.data(t, &created)
	tp, key := "/admin/v1/tenants/"+created.Tenant.ID, created.APIKey

	email := "walker@example.com"
	in.verifyEmail(mb, key, email)
	expect(t, in.call("POST", "/kyc/create/verify_public_kyc", key, map[string]string{"email": email}), 201, "kyc_session_created")

	expect(t, in.admin("PATCH", tp, `{"monthly_quota":1,"rate_limit_per_minute":6000}`), 200, "ok")
	var shown struct {
		Tenant struct {
			Quota int `json:"monthly_quota"`
			Rate  int `json:"rate_limit_per_minute"`
		} `json:"tenant"`
		Usage struct {
			Sessions  int  `json:"sessions"`
			Remaining *int `json:"sessions_remaining"`
			CodesSent int  `json:"codes_sent"`
		} `json:"usage"`
	}
	r = in.admin("GET", tp, "")
	expect(t, r, 200, "ok")
	r.data(t, &shown)
	if shown.Tenant.Quota != 1 || shown.Tenant.Rate != 6000 || shown.Usage.Sessions != 1 || shown.Usage.CodesSent != 1 ||
		shown.Usage.Remaining == nil || *shown.Usage.Remaining != 0 {
		t.Errorf("tenant after one session: %s", r.Env.Data)
	}
	expect(t, in.admin("GET", tp+"/usage", ""), 200, "ok")
	// The quota of 1 is used up: a second person's session is refused.
	other := "second@example.com"
	in.verifyEmail(mb, key, other)
	expect(t, in.call("POST", "/kyc/create/verify_public_kyc", key, map[string]string{"email": other}), 429, "verify_quota_exceeded")

	var added struct {
		APIKey string `json:"api_key"`
	}
	r = in.admin("POST", tp+"/keys", "")
	expect(t, r, 201, "ok")
	r.data(t, &added)
	expect(t, in.call("GET", "/config/products", added.APIKey, nil), 200, "products_retrieved")
	expect(t, in.admin("DELETE", tp+"/keys/"+created.Key.ID, ""), 200, "ok")
	expect(t, in.call("GET", "/config/products", key, nil), 403, "invalid_api_key")
	expect(t, in.admin("GET", tp+"/keys", ""), 200, "ok")

	walkAdminWebhooks(t, in, tp)
	walkAdminPeople(t, in, email)
}

func walkAdminWebhooks(t *testing.T, in *instance, tp string) {
	t.Helper()
	var ep struct {
		Endpoint struct {
			ID string `json:"endpoint_id"`
		} `json:"endpoint"`
	}
	r := in.admin("POST", tp+"/webhooks", `{"url":"http://127.0.0.1:9/hook","events":["kyc.status.updated"]}`)
	expect(t, r, 201, "ok")
	r.data(t, &ep)
	var list struct {
		Endpoints []struct {
			ID string `json:"endpoint_id"`
		} `json:"endpoints"`
	}
	r = in.admin("GET", tp+"/webhooks", "")
	expect(t, r, 200, "ok")
	r.data(t, &list)
	if len(list.Endpoints) != 1 || list.Endpoints[0].ID != ep.Endpoint.ID {
		t.Errorf("endpoints: %s", r.Env.Data)
	}
	expect(t, in.admin("GET", tp+"/webhooks/"+ep.Endpoint.ID+"/deliveries", ""), 200, "ok")
	expect(t, in.admin("POST", tp+"/webhooks/"+ep.Endpoint.ID+"/rotate-secret", ""), 200, "ok")
	expect(t, in.admin("DELETE", tp+"/webhooks/"+ep.Endpoint.ID, ""), 200, "ok")
	r = in.admin("GET", tp+"/webhooks", "")
	r.data(t, &list)
	if len(list.Endpoints) != 0 {
		t.Errorf("endpoint still listed after removal: %s", r.Env.Data)
	}
}

// walkAdminPeople looks the walker up (the session, no decision), erases
// them (the built-in simulator deletes at once: 200), finds nobody after,
// and reads the audit log: every change the walk made over the admin API
// is there under the admin actor, the erasure naming nobody, and the
// chains verify.
func walkAdminPeople(t *testing.T, in *instance, email string) {
	t.Helper()
	for _, method := range []string{"GET", "DELETE"} {
		expect(t, in.admin(method, "/admin/v1/people", ""), 400, "invalid_body")
	}
	var p struct {
		Email    string `json:"email"`
		Sessions []struct {
			ID string `json:"session_id"`
		} `json:"sessions"`
	}
	r := in.admin("GET", "/admin/v1/people?email="+email, "")
	expect(t, r, 200, "ok")
	r.data(t, &p)
	if p.Email != email || len(p.Sessions) != 1 || bytes.Contains(r.Raw, []byte("ip_address")) {
		t.Errorf("lookup: %s", r.Raw)
	}
	expect(t, in.admin("DELETE", "/admin/v1/people?email="+email, ""), 200, "ok")
	expect(t, in.admin("GET", "/admin/v1/people?email="+email, ""), 404, "not_found")
	expect(t, in.admin("DELETE", "/admin/v1/people?email="+email, ""), 404, "not_found")

	var page struct {
		Entries []struct {
			Actor, Action, Subject string
		} `json:"entries"`
	}
	r = in.admin("GET", "/admin/v1/audit?limit=100&actor=admin", "")
	expect(t, r, 200, "ok")
	r.data(t, &page)
	seen := map[string]bool{}
	for _, e := range page.Entries {
		if e.Actor != "admin" {
			t.Errorf("actor filter let through %+v", e)
		}
		if e.Action == "person.erased" && e.Subject != "" {
			t.Errorf("the erasure entry names a subject: %+v", e)
		}
		seen[e.Action] = true
	}
	for _, a := range []string{"tenant.created", "tenant.limits_changed", "api_key.added", "api_key.revoked",
		"webhook_endpoint.added", "webhook_endpoint.secret_rotated", "webhook_endpoint.removed", "person.erased"} {
		if !seen[a] {
			t.Errorf("no admin %s entry in %s", a, r.Raw)
		}
	}
	if bytes.Contains(r.Raw, []byte(email)) {
		t.Errorf("the audit log shows the email: %s", r.Raw)
	}
	var v struct {
		OK bool `json:"ok"`
	}
	r = in.admin("GET", "/admin/v1/audit/verify", "")
	expect(t, r, 200, "ok")
	r.data(t, &v)
	if !v.OK {
		t.Errorf("verify: %s", r.Raw)
	}
}
