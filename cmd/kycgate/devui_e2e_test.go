package main

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

// getPage fetches a development page without the contract check: the pages
// are not part of the API.
func getPage(t *testing.T, url string) (int, string, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header.Get("Content-Type"), string(body)
}

func demoTenants(t *testing.T, in *instance) int {
	t.Helper()
	out, err := in.cli("tenant", "list", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var rows []struct{ Name string }
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatalf("tenant list --json: %v\n%s", err, out)
	}
	n := 0
	for _, r := range rows {
		if r.Name == "Demo" {
			n++
		}
	}
	return n
}

// TestDevPagesInDevelopment: the pages answer in development mode, the
// demo tenant is made once however often the server starts, and the key the
// demo page gets works against the API.
func TestDevPagesInDevelopment(t *testing.T) {
	t.Parallel()
	in := startDev(t)
	for _, path := range []string{"/", "/_dev/api/", "/_dev/demo/", "/_didit/", "/_dev/static/demo.js", "/_dev/api/openapi.yaml"} {
		if code, _, body := getPage(t, in.URL+path); code != 200 {
			t.Errorf("GET %s: %d %.200s", path, code, body)
		}
	}
	// Only / itself is the landing page: other unknown paths keep the
	// API's JSON 404, checked against the contract.
	expect(t, in.call("GET", "/no-such-page", "", nil), 404, "not_found")
	expect(t, in.call("POST", "/", "", "{}"), 404, "not_found")

	code, _, body := getPage(t, in.URL+"/_dev/demo/key")
	type demoKey struct {
		APIKey   string `json:"api_key"`
		TenantID string `json:"tenant_id"`
	}
	var demo demoKey
	if err := json.Unmarshal([]byte(body), &demo); code != 200 || err != nil || demo.APIKey == "" {
		t.Fatalf("demo key: %d %s", code, body)
	}
	expect(t, in.call("GET", "/config/products", demo.APIKey, nil), 200, "products_retrieved")
	if strings.Contains(in.logs.String(), demo.APIKey) {
		t.Error("the demo key is in the log")
	}
	if n := demoTenants(t, in); n != 1 {
		t.Fatalf("%d Demo tenants after the first start, want 1", n)
	}
	in.restart()
	if n := demoTenants(t, in); n != 1 {
		t.Errorf("%d Demo tenants after a restart, want 1", n)
	}
	_, _, body = getPage(t, in.URL+"/_dev/demo/key")
	var again demoKey
	if err := json.Unmarshal([]byte(body), &again); err != nil || again.TenantID != demo.TenantID {
		t.Errorf("after a restart the demo key is for %q, want the same tenant %q", again.TenantID, demo.TenantID)
	}
	expect(t, in.call("GET", "/config/products", again.APIKey, nil), 200, "products_retrieved")
}

// TestDevPagesNotInProduction: outside development mode / stays the API's
// 404 and none of the pages, nor the demo tenant, exist.
func TestDevPagesNotInProduction(t *testing.T) {
	t.Parallel()
	ss := startDiditSim(t)
	mb := newMailbox(t)
	env := newEnv(t, mb.srv.URL())
	env["KYCGATE_DEV"] = "0"
	env["KYCGATE_DIDIT_URL"] = ss.URL
	env["KYCGATE_DIDIT_API_KEY"] = ss.apiKey
	env["KYCGATE_DIDIT_WORKFLOW_ID"] = ss.workflow
	env["KYCGATE_DIDIT_WEBHOOK_SECRET"] = ss.secret
	in := start(t, env)
	for _, path := range []string{"/", "/_dev/api/", "/_dev/demo/", "/_dev/demo/key", "/_didit/", "/_dev/static/demo.js"} {
		expect(t, in.call("GET", path, "", nil), 404, "not_found")
	}
	if n := demoTenants(t, in); n != 0 {
		t.Errorf("%d Demo tenants in production mode, want 0", n)
	}
}
