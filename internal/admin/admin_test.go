package admin_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/kycgate/kycgate/internal/admin"
)

const token = "admin-token-0123456789abcdefghijklmnop"

func get(t *testing.T, h http.Handler, path, auth string) (int, http.Header, []byte) {
	t.Helper()
	srv := httptest.NewServer(h)
	defer srv.Close()
	req, _ := http.NewRequest("GET", srv.URL+path, nil)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

func newServer(tok string) *admin.Server {
	s := admin.New(tok)
	s.Handle("GET /metrics", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "up 1\n") }))
	return s
}

// TestAdminToken: with a token configured, a missing, wrong, truncated or
// wrongly-scheme'd token is refused with 401 in the envelope, before any
// route (an unknown path is not told apart from a known one).
func TestAdminToken(t *testing.T) {
	t.Parallel()
	s := newServer(token)
	for _, auth := range []string{"", "Bearer", "Bearer ", "Bearer wrong", "Bearer " + token[:len(token)-1],
		"Bearer " + token + "x", "Basic " + token, token} {
		for _, path := range []string{"/metrics", "/nope"} {
			code, h, body := get(t, s, path, auth)
			var env struct {
				StatusCode int    `json:"statusCode"`
				Success    bool   `json:"success"`
				Status     string `json:"status"`
				Message    string `json:"message"`
			}
			if code != 401 || json.Unmarshal(body, &env) != nil || env.StatusCode != 401 || env.Success || env.Status != "unauthorized" {
				t.Errorf("%s with Authorization %q = %d %s, want 401 unauthorized envelope", path, auth, code, body)
			}
			if h.Get("WWW-Authenticate") == "" {
				t.Errorf("%s with Authorization %q: no WWW-Authenticate", path, auth)
			}
		}
	}
	for _, auth := range []string{"Bearer " + token, "bearer " + token} {
		if code, _, body := get(t, s, "/metrics", auth); code != 200 || string(body) != "up 1\n" {
			t.Errorf("right token (%q) = %d %s", auth[:7], code, body)
		}
	}
	if code, _, body := get(t, s, "/nope", "Bearer "+token); code != 404 || !json.Valid(body) {
		t.Errorf("unknown route with the token = %d %s, want a 404 envelope", code, body)
	}
}

// TestAdminNoToken: without a token (loopback only, config enforces it)
// every request reaches its route.
func TestAdminNoToken(t *testing.T) {
	t.Parallel()
	s := newServer("")
	if code, _, body := get(t, s, "/metrics", ""); code != 200 || string(body) != "up 1\n" {
		t.Errorf("no token configured = %d %s, want 200", code, body)
	}
	if code, _, _ := get(t, s, "/admin/v1/anything", "Bearer whatever"); code != 404 {
		t.Errorf("unknown route = %d, want 404", code)
	}
}
