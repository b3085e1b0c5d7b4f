package main

// Hostile HTTP spoken over a raw socket: what a client can put on the wire
// that net/http's client would clean up before sending.

import (
	"bufio"
	"encoding/json"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

// rawExchange writes req byte for byte to the server and reads one reply.
func rawExchange(t *testing.T, base, req string) *http.Response {
	t.Helper()
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := c.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// accessLine returns the access-log record of the request with id.
func accessLine(t *testing.T, in *instance, id string) map[string]any {
	t.Helper()
	for _, line := range strings.Split(in.logs.String(), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) == nil && rec["msg"] == "request" && rec["request_id"] == id {
			return rec
		}
	}
	t.Fatalf("no access-log line for request %s", id)
	return nil
}

// TestRawPaths: unclean paths get the 404 envelope, not ServeMux's bare
// redirect; whatever a client puts in a path, the access log shows no
// email, key or code.
func TestRawPaths(t *testing.T) {
	t.Parallel()
	mb := newMailbox(t)
	in := start(t, newEnv(t, mb.srv.URL()))
	_, key := in.tenant("Raw")

	unclean := []string{
		"POST //kyc/prepare",
		"POST /api/../kyc/prepare",
		"POST /api/%2e%2e/kyc/prepare",
		"POST /kyc/./prepare",
		"GET /kyc//status?email=a@example.com",
		"GET /api//kyc/status",
		"POST /webhooks//didit",
	}
	for i, line := range unclean {
		id := "unclean-" + string(rune('a'+i))
		body := `{"email":"unclean@example.com"}`
		resp := rawExchange(t, in.URL, line+" HTTP/1.1\r\nHost: kycgate\r\nx-api-key: "+key+
			"\r\nX-Request-Id: "+id+"\r\nContent-Type: application/json\r\nContent-Length: "+
			strconv.Itoa(len(body))+"\r\nConnection: close\r\n\r\n"+body)
		var env struct {
			StatusCode int    `json:"statusCode"`
			Success    *bool  `json:"success"`
			Status     string `json:"status"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&env); err != nil {
			t.Fatalf("%s: %d, body not the envelope: %v", line, resp.StatusCode, err)
		}
		if resp.StatusCode != 404 || env.StatusCode != 404 || env.Success == nil || *env.Success || env.Status != "not_found" {
			t.Fatalf("%s: %d %+v, want the 404 not_found envelope", line, resp.StatusCode, env)
		}
		if loc := resp.Header.Get("Location"); loc != "" {
			t.Fatalf("%s: redirected to %s", line, loc)
		}
	}
	if r := in.call("GET", "/kyc/status?email=unclean@example.com", key, nil); r.Code != 404 || r.Env.Status != "user_not_found" {
		t.Fatalf("an unclean request registered somebody: %d %s", r.Code, r.Raw)
	}

	secrets := []string{"alice@example.com", key, "123456", "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266"}
	paths := map[string]string{
		"email-in-path":  "/kyc/status/alice@example.com",
		"key-in-path":    "/kyc/" + key,
		"code-in-path":   "/security/email/verify-otp/123456",
		"wallet-in-path": "/api/kyc/status/0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266/x",
		"encoded-email":  "/kyc/status/alice%40example.com",
	}
	for id, p := range paths {
		resp := rawExchange(t, in.URL, "GET "+p+" HTTP/1.1\r\nHost: kycgate\r\nX-Request-Id: "+id+"\r\nConnection: close\r\n\r\n")
		if resp.StatusCode != 404 {
			t.Fatalf("%s: %d", p, resp.StatusCode)
		}
		rec := accessLine(t, in, id)
		logged, _ := rec["path"].(string)
		if logged == "" {
			t.Fatalf("%s: access line has no path: %v", p, rec)
		}
		for _, s := range secrets {
			if strings.Contains(strings.ToLower(logged), strings.ToLower(s)) {
				t.Fatalf("%s: the access log shows %q", p, logged)
			}
		}
	}
	// A matched route is logged by its pattern, not by what was sent.
	in.call("POST", "/kyc/create/kyc", key, map[string]string{"email": "nobody@example.com"})
	in.call("POST", "/kyc/create/not-a-type", key, map[string]string{"email": "nobody@example.com"})
	logs := in.logs.String()
	if strings.Contains(logs, "not-a-type") || !strings.Contains(logs, `"path":"/kyc/create/{kyc_type}"`) {
		t.Fatal("the access log does not show the route pattern for /kyc/create")
	}
	for _, s := range []string{"alice@example.com", key, key[3:13], "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266"} {
		if strings.Contains(strings.ToLower(logs), strings.ToLower(s)) {
			t.Fatalf("the logs show %q", s)
		}
	}
}
