package diditsim_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kycgate/kycgate/internal/didit/diditsim"
)

const (
	testKey      = "sim-test-key"
	testSandbox  = "sim-sandbox-key"
	testSecret   = "whsec_sim_secret"
	testWorkflow = "0b1e2d3c-4a5b-4c7d-8e9f-a0b1c2d3e4f5"
	mountPrefix  = "/_didit"
)

// testClock is a settable clock; tick > 0 makes every reading advance.
type testClock struct {
	mu   sync.Mutex
	t    time.Time
	tick time.Duration
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.t
	c.t = c.t.Add(c.tick)
	return now
}

// received is one request the webhook receiver got.
type received struct {
	Header http.Header
	Body   []byte
}

// receiver is a webhook endpoint answering scripted statuses (then 200).
type receiver struct {
	srv    *httptest.Server
	mu     sync.Mutex
	script []int
	reqs   []received
}

func newReceiver(t *testing.T, script ...int) *receiver {
	t.Helper()
	rc := &receiver{script: script}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		rc.reqs = append(rc.reqs, received{Header: r.Header.Clone(), Body: body})
		status := http.StatusOK
		if len(rc.script) > 0 {
			status, rc.script = rc.script[0], rc.script[1:]
		}
		rc.mu.Unlock()
		w.WriteHeader(status)
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) requests() []received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]received(nil), rc.reqs...)
}

// harness is a simulator served over real HTTP under /_didit, the way the
// server mounts it, plus a webhook receiver.
type harness struct {
	t     *testing.T
	sim   *diditsim.Sim
	srv   *httptest.Server
	base  string
	rcv   *receiver
	clock *testClock
	http  *http.Client // does not follow redirects
}

type option func(*diditsim.Config)

func withRetry(ds ...time.Duration) option {
	return func(c *diditsim.Config) { c.RetrySchedule = ds }
}

func newHarness(t *testing.T, rcv *receiver, opts ...option) *harness {
	t.Helper()
	if rcv == nil {
		rcv = newReceiver(t)
	}
	srv := httptest.NewUnstartedServer(nil)
	base := "http://" + srv.Listener.Addr().String() + mountPrefix
	clock := &testClock{t: time.Date(2026, 3, 2, 10, 15, 4, 120000000, time.UTC)}
	cfg := diditsim.DefaultConfig()
	cfg.APIKey = testKey
	cfg.SandboxKey = testSandbox
	cfg.WorkflowIDs = []string{testWorkflow}
	cfg.BaseURL = base
	cfg.Webhooks = []diditsim.Destination{{URL: rcv.srv.URL + "/webhooks/didit", Secret: testSecret}}
	cfg.RetrySchedule = []time.Duration{0, 0} // retries happen at once in tests
	cfg.Now = clock.Now
	cfg.Logger = slog.New(slog.DiscardHandler)
	for _, o := range opts {
		o(&cfg)
	}
	sim, err := diditsim.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	mux := http.NewServeMux()
	mux.Handle(mountPrefix+"/", http.StripPrefix(mountPrefix, sim.Handler()))
	srv.Config.Handler = mux
	srv.Start()
	t.Cleanup(func() {
		srv.Close()
		if err := sim.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return &harness{
		t: t, sim: sim, srv: srv, base: base, rcv: rcv, clock: clock,
		http: &http.Client{
			Timeout:       10 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}
}

type response struct {
	Status int
	Header http.Header
	Body   []byte
}

func (r response) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("response is not a JSON object: %v: %s", err, r.Body)
	}
	return m
}

// do sends a request to the simulator; path is relative to the base URL.
// key "" sends no x-api-key.
func (h *harness) do(method, path, key string, body any) response {
	h.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			h.t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, h.base+path, rd)
	if err != nil {
		h.t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header["x-api-key"] = []string{key} // lower-case on the wire
	}
	resp, err := h.http.Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return response{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

func (h *harness) form(path string, values map[string]string) response {
	h.t.Helper()
	var sb strings.Builder
	for k, v := range values {
		if sb.Len() > 0 {
			sb.WriteByte('&')
		}
		sb.WriteString(k + "=" + urlQueryEscape(v))
	}
	req, _ := http.NewRequest(http.MethodPost, h.base+path, strings.NewReader(sb.String()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := h.http.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return response{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

// create makes a session via the API and returns its 201 body.
func (h *harness) create(body map[string]any) map[string]any {
	h.t.Helper()
	if body == nil {
		body = map[string]any{}
	}
	if _, ok := body["workflow_id"]; !ok {
		body["workflow_id"] = testWorkflow
	}
	r := h.do(http.MethodPost, "/v3/session/", testKey, body)
	if r.Status != http.StatusCreated {
		h.t.Fatalf("create: %d %s", r.Status, r.Body)
	}
	return r.json(h.t)
}

func (h *harness) decision(id string) (map[string]any, []byte) {
	h.t.Helper()
	r := h.do(http.MethodGet, "/v3/session/"+id+"/decision/", testKey, nil)
	if r.Status != http.StatusOK {
		h.t.Fatalf("decision: %d %s", r.Status, r.Body)
	}
	return r.json(h.t), r.Body
}

func (h *harness) wait(n int) []diditsim.Delivery {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ds, err := h.sim.WaitDeliveries(ctx, n)
	if err != nil {
		h.t.Fatalf("%v; deliveries: %s", err, summarize(ds))
	}
	return ds
}

func summarize(ds []diditsim.Delivery) string {
	var parts []string
	for _, d := range ds {
		parts = append(parts, d.Status+"#"+strconv.Itoa(d.Attempt)+"→"+strconv.Itoa(d.ResponseStatus)+d.Error)
	}
	return strings.Join(parts, ", ")
}

func urlQueryEscape(s string) string {
	r := strings.NewReplacer("%", "%25", "&", "%26", "=", "%3D", "+", "%2B", " ", "+")
	return r.Replace(s)
}

func hmacHex(secret string, msg []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(msg)
	return hex.EncodeToString(m.Sum(nil))
}

// path walks decoded JSON: path(m, "ip_analyses", 0, "ip_address").
func path(v any, keys ...any) any {
	for _, k := range keys {
		switch k := k.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				return nil
			}
			v = m[k]
		case int:
			a, ok := v.([]any)
			if !ok || k >= len(a) {
				return nil
			}
			v = a[k]
		}
	}
	return v
}

func risks(item any) []string {
	var out []string
	ws, _ := path(item, "warnings").([]any)
	for _, w := range ws {
		out = append(out, path(w, "risk").(string)+"/"+path(w, "log_type").(string))
	}
	return out
}

// deadAddr returns a URL nobody listens on.
func deadAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr + "/hook"
}
