package didit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kycgate/kycgate/internal/kyc"
)

const (
	testAPIKey     = "sk_test_kycgate_SECRET_KEY_123"
	testWorkflowID = "0b1e2d3c-4a5b-6c7d-8e9f-a0b1c2d3e4f5"
)

// createdBody is Didit's 201 answer to a create (docs/didit.md §2.2).
const createdBody = `{
  "session_id": "5f0c8a2e-1b7d-4c3a-9e61-0a4d2b9f7c11",
  "session_number": 1042,
  "session_token": "Qm7ZxP2kT9aL",
  "url": "https://verify.didit.me/session/Qm7ZxP2kT9aL",
  "vendor_data": "user-8812",
  "metadata": {"plan": "pro"},
  "status": "Not Started",
  "callback": "https://app.example.test/kyc/return",
  "workflow_id": "0b1e2d3c-4a5b-6c7d-8e9f-a0b1c2d3e4f5",
  "workflow_version": 3
}`

const htmlBadGateway = "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n</body>\r\n</html>\r\n"

type recorded struct {
	Method, Path string
	Header       http.Header
	Body         []byte
}

// fakeDidit is an httptest server whose n-th request (1-based) is answered
// by reply(n, w, r). It records every request it sees.
type fakeDidit struct {
	*httptest.Server
	mu    sync.Mutex
	calls []recorded
}

func newFakeDidit(t *testing.T, reply func(n int, w http.ResponseWriter, r *http.Request)) *fakeDidit {
	t.Helper()
	f := &fakeDidit{}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		f.calls = append(f.calls, recorded{r.Method, r.URL.EscapedPath(), r.Header.Clone(), body})
		n := len(f.calls)
		f.mu.Unlock()
		reply(n, w, r)
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeDidit) Calls() []recorded {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slicesClone(f.calls)
}

func slicesClone[T any](s []T) []T { return append([]T(nil), s...) }

func writeJSON(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	io.WriteString(w, body)
}

// dropConnection closes the TCP connection without an HTTP response.
func dropConnection(t *testing.T, w http.ResponseWriter) {
	conn, _, err := w.(http.Hijacker).Hijack()
	if err != nil {
		t.Errorf("hijack: %v", err)
		return
	}
	conn.Close()
}

// SleepRecorder is sleepRecorder for the external tests.
type SleepRecorder = sleepRecorder

type sleepRecorder struct {
	mu     sync.Mutex
	sleeps []time.Duration
}

func (s *sleepRecorder) Sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	s.sleeps = append(s.sleeps, d)
	s.mu.Unlock()
	return ctx.Err()
}

func (s *sleepRecorder) Got() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slicesClone(s.sleeps)
}

func newTestClient(t *testing.T, baseURL string, mod ...func(*ClientConfig)) (*Client, *sleepRecorder) {
	t.Helper()
	sr := &sleepRecorder{}
	cfg := ClientConfig{
		BaseURL:    baseURL,
		APIKey:     testAPIKey,
		WorkflowID: testWorkflowID,
		Sleep:      sr.Sleep,
	}
	for _, m := range mod {
		m(&cfg)
	}
	c, err := NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c, sr
}

func wantAttempts(t *testing.T, f *fakeDidit, n int) {
	t.Helper()
	if got := len(f.Calls()); got != n {
		t.Fatalf("server saw %d requests, want %d", got, n)
	}
}

func wantAPIError(t *testing.T, err error, status int, code, detail string) *APIError {
	t.Helper()
	var e *APIError
	if !errors.As(err, &e) {
		t.Fatalf("error %v is not an *APIError", err)
	}
	if e.Status != status || e.Code != code || (detail != "" && e.Detail != detail) {
		t.Fatalf("APIError = %+v, want status %d code %q detail %q", *e, status, code, detail)
	}
	if strings.Contains(err.Error(), testAPIKey) {
		t.Fatalf("error text leaks the API key: %v", err)
	}
	return e
}

func TestCreateSession(t *testing.T) {
	f := newFakeDidit(t, func(n int, w http.ResponseWriter, r *http.Request) { writeJSON(w, http.StatusCreated, createdBody) })
	c, sr := newTestClient(t, f.URL+"/") // a trailing slash on the base is ignored
	got, err := c.CreateSession(context.Background(), kyc.CreateSessionRequest{
		VendorData: "user-8812",
		Callback:   "https://app.example.test/kyc/return",
		Metadata:   map[string]string{"plan": "pro"},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := kyc.ProviderSession{ID: "5f0c8a2e-1b7d-4c3a-9e61-0a4d2b9f7c11", URL: "https://verify.didit.me/session/Qm7ZxP2kT9aL", Status: "Not Started"}
	if got != want {
		t.Errorf("CreateSession = %+v, want %+v", got, want)
	}
	wantAttempts(t, f, 1)
	if len(sr.Got()) != 0 {
		t.Errorf("slept %v", sr.Got())
	}
	call := f.Calls()[0]
	if call.Method != http.MethodPost || call.Path != "/v3/session/" {
		t.Errorf("request %s %s, want POST /v3/session/", call.Method, call.Path)
	}
	for name, want := range map[string]string{
		"X-Api-Key": testAPIKey, "Accept": "application/json", "User-Agent": "kycgate", "Content-Type": "application/json",
	} {
		if got := call.Header.Get(name); got != want {
			t.Errorf("header %s = %q, want %q", name, got, want)
		}
	}
	var body map[string]any
	if err := json.Unmarshal(call.Body, &body); err != nil {
		t.Fatal(err)
	}
	wantBody := map[string]any{
		"workflow_id": testWorkflowID, "vendor_data": "user-8812",
		"callback": "https://app.example.test/kyc/return", "metadata": map[string]any{"plan": "pro"},
	}
	if !jsonEqual(body, wantBody) {
		t.Errorf("request body = %s", call.Body)
	}
}

func jsonEqual(a, b any) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return bytes.Equal(ja, jb)
}

func TestCreateSessionOmitsEmptyFields(t *testing.T) {
	f := newFakeDidit(t, func(n int, w http.ResponseWriter, r *http.Request) { writeJSON(w, http.StatusCreated, createdBody) })
	c, _ := newTestClient(t, f.URL)
	if _, err := c.CreateSession(context.Background(), kyc.CreateSessionRequest{VendorData: "p1"}); err != nil {
		t.Fatal(err)
	}
	if got := string(f.Calls()[0].Body); got != `{"workflow_id":"`+testWorkflowID+`","vendor_data":"p1"}` {
		t.Errorf("body = %s", got)
	}
}

func TestCreateSessionResponseShapes(t *testing.T) {
	cases := []struct {
		name    string
		status  int
		body    string
		wantURL string
		wantErr bool
	}{
		{"200 accepted", 200, `{"session_id":"s1","url":"https://v/1","status":"In Progress"}`, "https://v/1", false},
		{"verification_url fallback", 201, `{"session_id":"s1","verification_url":"https://v/2"}`, "https://v/2", false},
		{"session_url fallback", 201, `{"session_id":"s1","url":"","session_url":"https://v/3"}`, "https://v/3", false},
		{"no link", 201, `{"session_id":"s1"}`, "", true},
		{"no session id", 201, `{"url":"https://v/1"}`, "", true},
		{"not json", 201, `<html>ok</html>`, "", true},
		{"202 unexpected", 202, `{"session_id":"s1","url":"https://v/1"}`, "", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeDidit(t, func(n int, w http.ResponseWriter, r *http.Request) { writeJSON(w, tc.status, tc.body) })
			c, _ := newTestClient(t, f.URL)
			got, err := c.CreateSession(context.Background(), kyc.CreateSessionRequest{VendorData: "p"})
			if tc.wantErr {
				if err == nil {
					t.Fatalf("want error, got %+v", got)
				}
				// A 2xx we cannot use: Didit may well hold the session.
				if !errors.Is(err, ErrCreateUnconfirmed) {
					t.Errorf("error %v does not wrap ErrCreateUnconfirmed", err)
				}
				wantAttempts(t, f, 1)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.URL != tc.wantURL || got.ID != "s1" || got.Status == "" {
				t.Errorf("got %+v", got)
			}
		})
	}
}

func TestGetDecision(t *testing.T) {
	decision, err := os.ReadFile(filepath.Join("testdata", "decisions", "v3_declined_vpn.json"))
	if err != nil {
		t.Fatal(err)
	}
	f := newFakeDidit(t, func(n int, w http.ResponseWriter, r *http.Request) { writeJSON(w, http.StatusOK, string(decision)) })
	c, _ := newTestClient(t, f.URL)
	d, err := c.GetDecision(context.Background(), "5f0c8a2e-1b7d-4c3a-9e61-0a4d2b9f7c11")
	if err != nil {
		t.Fatal(err)
	}
	if d.Status != "Declined" || len(d.IPInfo) != 1 || d.IPInfo[0].IPAddress != "203.0.113.7" || !d.IPInfo[0].IsVPNOrTor || d.Blocklisted {
		t.Errorf("decision = %+v", d)
	}
	if !bytes.Equal(d.Raw, decision) {
		t.Error("Raw is not the response body")
	}
	call := f.Calls()[0]
	if call.Method != http.MethodGet || call.Path != "/v3/session/5f0c8a2e-1b7d-4c3a-9e61-0a4d2b9f7c11/decision/" {
		t.Errorf("request %s %s", call.Method, call.Path)
	}
	if call.Header.Get("X-Api-Key") != testAPIKey || call.Header.Get("Content-Type") != "" || len(call.Body) != 0 {
		t.Errorf("headers %v body %q", call.Header, call.Body)
	}

	// The id is path-escaped, never able to walk to another route.
	if _, err := c.GetDecision(context.Background(), "../a/b c?x"); err != nil {
		t.Fatal(err)
	}
	if got := f.Calls()[1].Path; got != "/v3/session/..%2Fa%2Fb%20c%3Fx/decision/" {
		t.Errorf("escaped path = %s", got)
	}
	if _, err := c.GetDecision(context.Background(), " "); err == nil {
		t.Error("empty id accepted")
	}
	wantAttempts(t, f, 2)
}

func TestRetryOn429WithRetryAfter(t *testing.T) {
	f := newFakeDidit(t, func(n int, w http.ResponseWriter, r *http.Request) {
		if n == 1 {
			w.Header().Set("Retry-After", "7")
			w.Header().Set("X-RateLimit-Limit", "600")
			writeJSON(w, http.StatusTooManyRequests, `{"detail":"Request was throttled. Expected available in 7 seconds."}`)
			return
		}
		writeJSON(w, http.StatusCreated, createdBody)
	})
	c, sr := newTestClient(t, f.URL)
	if _, err := c.CreateSession(context.Background(), kyc.CreateSessionRequest{VendorData: "p"}); err != nil {
		t.Fatal(err)
	}
	wantAttempts(t, f, 2)
	if got := sr.Got(); len(got) != 1 || got[0] != 7*time.Second {
		t.Errorf("sleeps = %v, want [7s]", got)
	}
	a, b := f.Calls()[0], f.Calls()[1]
	if !bytes.Equal(a.Body, b.Body) || len(b.Body) == 0 {
		t.Errorf("retried body differs: %q vs %q", a.Body, b.Body)
	}
}

func TestRetryAfterTooLongGivesUp(t *testing.T) {
	f := newFakeDidit(t, func(n int, w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "120")
		writeJSON(w, http.StatusTooManyRequests, `{"detail":"Request was throttled."}`)
	})
	c, sr := newTestClient(t, f.URL)
	_, err := c.GetDecision(context.Background(), "s")
	wantAPIError(t, err, 429, "", "Request was throttled.")
	wantAttempts(t, f, 1)
	if len(sr.Got()) != 0 {
		t.Errorf("slept %v", sr.Got())
	}
}

func TestRetryAfterBeyondDeadlineGivesUp(t *testing.T) {
	f := newFakeDidit(t, func(n int, w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "25")
		writeJSON(w, http.StatusTooManyRequests, `{"detail":"Request was throttled."}`)
	})
	c, sr := newTestClient(t, f.URL)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := c.GetDecision(ctx, "s")
	wantAPIError(t, err, 429, "", "")
	if !strings.Contains(err.Error(), "deadline") {
		t.Errorf("error = %v", err)
	}
	wantAttempts(t, f, 1)
	if len(sr.Got()) != 0 {
		t.Errorf("slept %v", sr.Got())
	}
}

// A read is retried on a 5xx (a create is not: client_faults_test.go).
func TestRetryOn5xxHTML(t *testing.T) {
	f := newFakeDidit(t, func(n int, w http.ResponseWriter, r *http.Request) {
		if n <= 2 {
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(http.StatusBadGateway)
			io.WriteString(w, htmlBadGateway)
			return
		}
		writeJSON(w, http.StatusOK, `{"session_id":"s","status":"Approved"}`)
	})
	c, sr := newTestClient(t, f.URL)
	if _, err := c.GetDecision(context.Background(), "s"); err != nil {
		t.Fatal(err)
	}
	wantAttempts(t, f, 3)
	got := sr.Got()
	if len(got) != 2 {
		t.Fatalf("sleeps = %v", got)
	}
	// Exponential with jitter in [d/2, d]: 500 ms, then 1 s.
	for i, d := range []time.Duration{backoffBase, 2 * backoffBase} {
		if got[i] < d/2 || got[i] > d {
			t.Errorf("sleep %d = %v, want within [%v, %v]", i, got[i], d/2, d)
		}
	}
}

func TestRetriesExhausted(t *testing.T) {
	f := newFakeDidit(t, func(n int, w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, "upstream connect error or disconnect/reset before headers. key="+testAPIKey)
	})
	c, sr := newTestClient(t, f.URL)
	_, err := c.GetDecision(context.Background(), "s")
	e := wantAPIError(t, err, 503, "", "")
	if !strings.Contains(e.Detail, "upstream connect error") || !strings.Contains(e.Detail, "[redacted]") {
		t.Errorf("Detail = %q", e.Detail)
	}
	wantAttempts(t, f, 1+defaultMaxRetries)
	if len(sr.Got()) != defaultMaxRetries {
		t.Errorf("sleeps = %v", sr.Got())
	}
}

func TestNoRetriesWhenDisabled(t *testing.T) {
	f := newFakeDidit(t, func(n int, w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusInternalServerError) })
	c, _ := newTestClient(t, f.URL, func(cfg *ClientConfig) { cfg.MaxRetries = -1 })
	_, err := c.GetDecision(context.Background(), "s")
	wantAPIError(t, err, 500, "", "Internal Server Error")
	wantAttempts(t, f, 1)
}

// A connection dropped after the request went out: a read is retried, a
// create is not (Didit may have created the session).
func TestDroppedConnection(t *testing.T) {
	for _, method := range []string{http.MethodPost, http.MethodGet} {
		t.Run(method, func(t *testing.T) {
			decision := `{"session_id":"s","status":"Approved","ip_analyses":null}`
			f := newFakeDidit(t, func(n int, w http.ResponseWriter, r *http.Request) {
				switch {
				case n == 1:
					dropConnection(t, w)
				case r.Method == http.MethodPost:
					writeJSON(w, http.StatusCreated, createdBody)
				default:
					writeJSON(w, http.StatusOK, decision)
				}
			})
			c, sr := newTestClient(t, f.URL)
			if method == http.MethodPost {
				_, err := c.CreateSession(context.Background(), kyc.CreateSessionRequest{VendorData: "p"})
				if !errors.Is(err, ErrCreateUnconfirmed) {
					t.Fatalf("error = %v, want ErrCreateUnconfirmed", err)
				}
				wantAttempts(t, f, 1)
				if len(sr.Got()) != 0 {
					t.Errorf("sleeps = %v", sr.Got())
				}
				return
			}
			if _, err := c.GetDecision(context.Background(), "s"); err != nil {
				t.Fatal(err)
			}
			wantAttempts(t, f, 2)
			if len(sr.Got()) != 1 {
				t.Errorf("sleeps = %v", sr.Got())
			}
		})
	}
}

func TestConnectionRefused(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	c, sr := newTestClient(t, url, func(cfg *ClientConfig) { cfg.MaxRetries = 2 })
	_, err := c.CreateSession(context.Background(), kyc.CreateSessionRequest{VendorData: "p"})
	if err == nil || !strings.Contains(err.Error(), "giving up after 3 attempts") {
		t.Fatalf("error = %v", err)
	}
	var e *APIError
	if errors.As(err, &e) {
		t.Errorf("network failure reported as APIError %+v", e)
	}
	if len(sr.Got()) != 2 {
		t.Errorf("sleeps = %v", sr.Got())
	}
}

func TestPerAttemptTimeout(t *testing.T) {
	f := newFakeDidit(t, func(n int, w http.ResponseWriter, r *http.Request) {
		if n == 1 {
			<-r.Context().Done() // hang until the client gives up on this attempt
			return
		}
		writeJSON(w, http.StatusOK, `{"status":"In Review"}`)
	})
	// The timeout bounds every attempt, so the second one (a new connection
	// and a full answer) must fit in it too: 50 ms could run out on a busy
	// machine and cost a third attempt. The first attempt waits it out, so
	// this is also the test's duration.
	c, sr := newTestClient(t, f.URL, func(cfg *ClientConfig) { cfg.Timeout = time.Second })
	d, err := c.GetDecision(context.Background(), "s")
	if err != nil {
		t.Fatal(err)
	}
	if d.Status != "In Review" {
		t.Errorf("status = %q", d.Status)
	}
	wantAttempts(t, f, 2)
	if len(sr.Got()) != 1 {
		t.Errorf("sleeps = %v", sr.Got())
	}
}

func TestCallerCancelStopsRetrying(t *testing.T) {
	f := newFakeDidit(t, func(n int, w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusBadGateway) })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c, _ := newTestClient(t, f.URL, func(cfg *ClientConfig) {
		cfg.Sleep = func(ctx context.Context, d time.Duration) error {
			cancel() // the caller goes away while we wait
			return ctx.Err()
		}
	})
	_, err := c.GetDecision(ctx, "s")
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error = %v, want context.Canceled", err)
	}
	wantAttempts(t, f, 1)
}

func TestClientErrorsAreNotRetried(t *testing.T) {
	cases := []struct {
		name         string
		status       int
		body         string
		code, detail string
		check        func(error) bool
	}{
		{"401 bad key", 401, `{"detail":"Invalid API key."}`, "", "Invalid API key.", IsAuthError},
		{"403 missing key", 403, `{"detail":"Authentication credentials were not provided."}`, "", "Authentication credentials were not provided.", IsAuthError},
		{"403 billing", 403, `{"detail":"Paid services are paused for this contract.","code":"contract_billing_suspended"}`, "contract_billing_suspended", "Paid services are paused for this contract.", IsAuthError},
		{"400 field map", 400, `{"workflow_id":["Must be a valid UUID."],"callback":["Enter a valid URL.","Too long."]}`, "", "callback: Enter a valid URL. Too long.; workflow_id: Must be a valid UUID.", nil},
		{"404", 404, `{"detail":"Not found."}`, "", "Not found.", IsNotFound},
		{"409", 409, `{"message":"Idempotency key reused"}`, "", "Idempotency key reused", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeDidit(t, func(n int, w http.ResponseWriter, r *http.Request) { writeJSON(w, tc.status, tc.body) })
			c, sr := newTestClient(t, f.URL)
			_, err := c.CreateSession(context.Background(), kyc.CreateSessionRequest{VendorData: "p"})
			wantAPIError(t, err, tc.status, tc.code, tc.detail)
			if errors.Is(err, ErrCreateUnconfirmed) {
				t.Errorf("a refusal reported as unconfirmed: %v", err)
			}
			if tc.check != nil && !tc.check(err) {
				t.Errorf("classifier false for %v", err)
			}
			wantAttempts(t, f, 1)
			if len(sr.Got()) != 0 {
				t.Errorf("slept %v", sr.Got())
			}
		})
	}
}

func TestRedirectsAreNotFollowed(t *testing.T) {
	elsewhere := newFakeDidit(t, func(n int, w http.ResponseWriter, r *http.Request) { writeJSON(w, 201, createdBody) })
	f := newFakeDidit(t, func(n int, w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, elsewhere.URL+"/v3/session/", http.StatusMovedPermanently)
	})
	c, _ := newTestClient(t, f.URL)
	_, err := c.CreateSession(context.Background(), kyc.CreateSessionRequest{VendorData: "p"})
	e := wantAPIError(t, err, 301, "", "")
	if !strings.Contains(e.Detail, elsewhere.URL) {
		t.Errorf("Detail = %q", e.Detail)
	}
	wantAttempts(t, f, 1)
	wantAttempts(t, elsewhere, 0)
}

func TestAPIKeyNeverLogged(t *testing.T) {
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	f := newFakeDidit(t, func(n int, w http.ResponseWriter, r *http.Request) {
		switch n {
		case 1:
			writeJSON(w, 503, `{"detail":"busy `+r.Header.Get("x-api-key")+`"}`)
		case 2:
			writeJSON(w, 500, `{"detail":"boom `+r.Header.Get("x-api-key")+`"}`)
		default:
			dropConnection(t, w)
		}
	})
	c, _ := newTestClient(t, f.URL, func(cfg *ClientConfig) { cfg.Logger = logger })
	// 503 (retried), then 500: not confirmed, logged with the error.
	if _, err := c.CreateSession(context.Background(), kyc.CreateSessionRequest{VendorData: "p"}); !errors.Is(err, ErrCreateUnconfirmed) {
		t.Fatalf("error = %v", err)
	}
	if _, err := c.CreateSession(context.Background(), kyc.CreateSessionRequest{VendorData: "p"}); !errors.Is(err, ErrCreateUnconfirmed) {
		t.Fatalf("error = %v", err)
	}
	if logs.Len() == 0 {
		t.Fatal("nothing logged")
	}
	if strings.Contains(logs.String(), testAPIKey) {
		t.Errorf("API key in logs:\n%s", logs.String())
	}
}

func TestNewClientValidation(t *testing.T) {
	bad := []ClientConfig{
		{APIKey: "", WorkflowID: "w"},
		{APIKey: "k", WorkflowID: " "},
		{APIKey: "k", WorkflowID: "w", BaseURL: "verification.didit.me"},
		{APIKey: "k", WorkflowID: "w", BaseURL: "ftp://x"},
		{APIKey: "k", WorkflowID: "w", BaseURL: "https://u:p@x"},
		{APIKey: "k", WorkflowID: "w", BaseURL: "https://x/?a=1"},
	}
	for _, cfg := range bad {
		if _, err := NewClient(cfg); err == nil {
			t.Errorf("NewClient(%+v) accepted", cfg)
		}
	}
	c, err := NewClient(ClientConfig{APIKey: "k", WorkflowID: "w"})
	if err != nil {
		t.Fatal(err)
	}
	if c.base != DefaultBaseURL || c.timeout != defaultTimeout || c.maxRetries != defaultMaxRetries ||
		c.createTimeout != defaultCreateTimeout || c.createMargin != defaultCreateMargin {
		t.Errorf("defaults: %+v", c)
	}
	// The caller's http.Client is copied, not modified.
	hc := &http.Client{}
	if _, err := NewClient(ClientConfig{APIKey: "k", WorkflowID: "w", HTTPClient: hc}); err != nil {
		t.Fatal(err)
	}
	if hc.CheckRedirect != nil {
		t.Error("caller's http.Client was modified")
	}
}

// The one create attempt may wait until CreateMargin before the caller's
// deadline, at most CreateTimeout; with no room left it is not made.
func TestCreateWindow(t *testing.T) {
	now := time.Now()
	c, _ := newTestClient(t, "http://didit.test")
	capped, _ := newTestClient(t, "http://didit.test", func(cfg *ClientConfig) { cfg.CreateTimeout = 5 * time.Second })
	cases := []struct {
		name   string
		c      *Client
		budget time.Duration // 0: no deadline
		want   time.Duration
		ok     bool
	}{
		{"API budget", c, 30 * time.Second, 27 * time.Second, true},
		{"budget partly spent", c, 13 * time.Second, 10 * time.Second, true},
		{"no deadline", c, 0, defaultCreateTimeout, true},
		{"long deadline", c, time.Hour, defaultCreateTimeout, true},
		{"capped", capped, 30 * time.Second, 5 * time.Second, true},
		{"margin only", c, 3 * time.Second, 0, false},
		{"past", c, -time.Second, 0, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			if tc.budget != 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithDeadline(ctx, now.Add(tc.budget))
				defer cancel()
			}
			got, ok := tc.c.createWindow(ctx, now)
			if ok != tc.ok || (ok && got != tc.want) {
				t.Errorf("createWindow = %v, %v; want %v, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	cases := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"", 0, false},
		{"0", 0, true},
		{" 12 ", 12 * time.Second, true},
		{"-3", 0, false},
		{"soon", 0, false},
		{"99999999999", 24 * time.Hour, true},
		{now.Add(20 * time.Second).Format(http.TimeFormat), 20 * time.Second, true},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0, true},
		{"Mon, 02 Mar 2026 10:00:45 GMT", 45 * time.Second, true},
	}
	for _, c := range cases {
		got, ok := parseRetryAfter(c.in, now)
		if got != c.want || ok != c.ok {
			t.Errorf("parseRetryAfter(%q) = %v, %v; want %v, %v", c.in, got, ok, c.want, c.ok)
		}
	}
}

func TestParseAPIError(t *testing.T) {
	long := strings.Repeat("x", 1000)
	cases := []struct {
		name         string
		status       int
		body         string
		code, detail string
	}{
		{"detail", 401, `{"detail":"Invalid API key."}`, "", "Invalid API key."},
		{"message", 400, `{"message":"Bad thing"}`, "", "Bad thing"},
		{"error string", 400, `{"error":"Bad thing","code":"bad_thing"}`, "bad_thing", "Bad thing"},
		{"error object", 400, `{"error":{"message":"Nested","code":"x"}}`, "", "Nested"},
		{"numeric code", 403, `{"detail":"No","code":1234}`, "1234", "No"},
		{"detail list", 400, `{"detail":["one","two"]}`, "", "one two"},
		{"non_field_errors", 400, `{"non_field_errors":["Nope."]}`, "", "non_field_errors: Nope."},
		{"nested field map", 400, `{"expected_details":{"date_of_birth":["Bad date."]}}`, "", "expected_details: date_of_birth: Bad date."},
		{"list body", 400, `["Invalid workflow."]`, "", "Invalid workflow."},
		{"html", 502, htmlBadGateway, "", "502 Bad Gateway 502 Bad Gateway"},
		{"plain text", 503, "Service Unavailable\n", "", "Service Unavailable"},
		{"empty", 504, "", "", "Gateway Timeout"},
		{"empty object", 500, "{}", "", "Internal Server Error"},
		{"key redacted", 500, `{"detail":"bad key ` + testAPIKey + `"}`, "", "bad key [redacted]"},
		{"long", 500, long, "", strings.Repeat("x", maxDetailRunes) + "…"},
		{"binary", 500, "\x00\x01\xff\xfeabc", "", "abc"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := parseAPIError(c.status, []byte(c.body), testAPIKey)
			if e.Status != c.status || e.Code != c.code || e.Detail != c.detail {
				t.Errorf("got %+v, want code %q detail %q", *e, c.code, c.detail)
			}
		})
	}
	e := &APIError{Status: 403, Code: "contract_billing_suspended", Detail: "Paused."}
	if got := e.Error(); got != "didit: HTTP 403 (contract_billing_suspended): Paused." {
		t.Errorf("Error() = %q", got)
	}
}

// TestDeleteSession: DELETE /v3/session/{id}/delete/ with the key; 204,
// 200 and 404 are done; a 503 is retried; a 403 is a failure.
func TestDeleteSession(t *testing.T) {
	const id = "5f0c8a2e-1b7d-4c3a-9e61-0a4d2b9f7c11"
	answers := []int{http.StatusNoContent, http.StatusOK, http.StatusNotFound, http.StatusServiceUnavailable,
		http.StatusNoContent, http.StatusForbidden}
	f := newFakeDidit(t, func(n int, w http.ResponseWriter, r *http.Request) {
		writeJSON(w, answers[n-1], `{"detail":"x"}`)
	})
	c, _ := newTestClient(t, f.URL)
	ctx := context.Background()
	for i := range 3 { // 204, 200, 404
		if err := c.DeleteSession(ctx, id); err != nil {
			t.Fatalf("answer %d: %v", answers[i], err)
		}
	}
	if err := c.DeleteSession(ctx, id); err != nil { // 503, then 204
		t.Fatalf("after a 503: %v", err)
	}
	err := c.DeleteSession(ctx, id)
	wantAPIError(t, err, http.StatusForbidden, "", "x")
	wantAttempts(t, f, 6)
	call := f.Calls()[0]
	if call.Method != http.MethodDelete || call.Path != "/v3/session/"+id+"/delete/" || call.Header.Get("X-Api-Key") != testAPIKey {
		t.Errorf("request %s %s %v", call.Method, call.Path, call.Header)
	}
	if err := c.DeleteSession(ctx, " "); err == nil {
		t.Error("empty id accepted")
	}
}
