package diditsim_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kycgate/kycgate/internal/didit/diditsim"
)

func TestControlEndpoints(t *testing.T) {
	h := newHarness(t, nil)
	id := h.create(map[string]any{"vendor_data": "ctl"})["session_id"].(string)
	sim := func(method, p string, body any) response { return h.do(method, "/_sim"+p, "", body) }

	if r := sim(http.MethodPost, "/sessions/"+id+"/kyc_expire", nil); r.Status != http.StatusConflict {
		t.Errorf("kyc_expire from Not Started: %d %s", r.Status, r.Body)
	}
	if r := sim(http.MethodPost, "/sessions/"+id+"/start", nil); r.Status != http.StatusOK || r.json(t)["status"] != "In Progress" {
		t.Errorf("start: %d %s", r.Status, r.Body)
	}
	r := sim(http.MethodPost, "/sessions/"+id+"/complete", map[string]any{
		"outcome": "data_center", "ip": map[string]any{"ip_address": "192.0.2.99", "ip_city": "Reston"},
		"extra_ips": []map[string]any{{"ip_address": "192.0.2.100"}},
	})
	if r.Status != http.StatusOK || r.json(t)["status"] != "In Review" || r.json(t)["outcome"] != "data_center" {
		t.Fatalf("complete: %d %s", r.Status, r.Body)
	}
	detail := sim(http.MethodGet, "/sessions/"+id, nil).json(t)
	if path(detail, "decision", "ip_analyses", 0, "ip_city") != "Reston" || path(detail, "decision", "ip_analyses", 1, "ip_address") != "192.0.2.100" {
		t.Errorf("decision via /_sim: %v", path(detail, "decision", "ip_analyses"))
	}
	if evs := path(detail, "events").([]any); len(evs) != 3 {
		t.Errorf("events: %v", evs)
	}
	if r := sim(http.MethodPost, "/sessions/"+id+"/data", map[string]any{"id_verification": map[string]string{"last_name": "Müller-Łukasz"}}); r.Status != http.StatusOK {
		t.Errorf("data: %d %s", r.Status, r.Body)
	}
	if r := sim(http.MethodPost, "/sessions/"+id+"/data", map[string]any{"id_verification": map[string]string{"portrait_image": "x"}}); r.Status != http.StatusBadRequest {
		t.Errorf("data bad field: %d %s", r.Status, r.Body)
	}
	if r := sim(http.MethodPost, "/sessions/"+id+"/resubmit", nil); r.Status != http.StatusOK || r.json(t)["status"] != "Resubmitted" {
		t.Errorf("resubmit: %d %s", r.Status, r.Body)
	}
	if r := sim(http.MethodPost, "/sessions/"+id+"/complete", map[string]any{"outcome": "approved"}); r.json(t)["status"] != "Approved" {
		t.Errorf("complete after resubmit: %s", r.Body)
	}
	if r := sim(http.MethodPost, "/sessions/"+id+"/kyc_expire", nil); r.json(t)["status"] != "Kyc Expired" {
		t.Errorf("kyc_expire: %s", r.Body)
	}
	if r := sim(http.MethodPost, "/sessions/"+id+"/status", map[string]string{"status": "Awaiting User"}); r.json(t)["status"] != "Awaiting User" {
		t.Errorf("status: %s", r.Body)
	}
	if r := sim(http.MethodPost, "/sessions/"+id+"/status", map[string]string{"status": "approved"}); r.Status != http.StatusBadRequest {
		t.Errorf("status with a wrong-case value: %d", r.Status)
	}
	if r := sim(http.MethodPost, "/sessions/"+id+"/expire", nil); r.Status != http.StatusConflict {
		t.Errorf("expire from Awaiting User: %d", r.Status)
	}
	if r := sim(http.MethodPost, "/sessions/5f0c8a2e-1b7d-4c3a-9e61-0a4d2b9f7c11/start", nil); r.Status != http.StatusNotFound {
		t.Errorf("unknown session: %d", r.Status)
	}
	if r := sim(http.MethodPost, "/sessions/"+id+"/complete", "{bad"); r.Status != http.StatusBadRequest {
		t.Errorf("bad JSON: %d", r.Status)
	}

	// The webhooks, in order: every transition plus data.updated.
	ds := h.wait(8)
	var got []string
	for _, d := range ds {
		got = append(got, d.WebhookType+":"+d.Status)
	}
	want := []string{"status.updated:Not Started", "status.updated:In Progress", "status.updated:In Review",
		"data.updated:In Review", "status.updated:Resubmitted", "status.updated:Approved",
		"status.updated:Kyc Expired", "status.updated:Awaiting User"}
	if !slices.Equal(got, want) {
		t.Errorf("webhooks:\n got %v\nwant %v", got, want)
	}
	list := sim(http.MethodGet, "/sessions", nil)
	var sessions []map[string]any
	if err := json.Unmarshal(list.Body, &sessions); err != nil || len(sessions) != 1 {
		t.Errorf("sessions list: %s", list.Body)
	}
	if r := sim(http.MethodGet, "/presets", nil); !strings.Contains(string(r.Body), `"duplicate_device"`) {
		t.Errorf("presets: %s", r.Body)
	}
}

func TestClock(t *testing.T) {
	h := newHarness(t, nil)
	r := h.do(http.MethodPost, "/_sim/clock", "", map[string]string{"set": "2030-01-01T00:00:00Z"})
	if r.json(t)["now"] != "2030-01-01T00:00:00Z" {
		t.Fatalf("set: %s", r.Body)
	}
	r = h.do(http.MethodPost, "/_sim/clock", "", map[string]any{"advance": "90s", "advance_seconds": 10})
	if r.json(t)["unix"] != float64(time.Date(2030, 1, 1, 0, 1, 40, 0, time.UTC).Unix()) {
		t.Errorf("advance: %s", r.Body)
	}
	h.create(map[string]any{"vendor_data": "clock"})
	d := h.wait(1)[0]
	if d.Timestamp != time.Date(2030, 1, 1, 0, 1, 40, 0, time.UTC).Unix() {
		t.Errorf("webhook timestamp %d does not follow the clock", d.Timestamp)
	}
}

func TestRateLimit(t *testing.T) {
	h := newHarness(t, nil)
	h.sim.SetRateLimits(diditsim.RateLimits{Create: 2, Get: 600, Write: 300})
	body := map[string]any{"workflow_id": testWorkflow}
	for i := range 2 {
		if r := h.do(http.MethodPost, "/v3/session/", testKey, body); r.Status != http.StatusCreated {
			t.Fatalf("create %d: %d", i, r.Status)
		}
	}
	h.sim.AdvanceClock(20 * time.Second)
	r := h.do(http.MethodPost, "/v3/session/", testKey, body)
	if r.Status != http.StatusTooManyRequests {
		t.Fatalf("third create: %d %s", r.Status, r.Body)
	}
	if string(r.Body) != `{"detail":"Request was throttled. Expected available in 40 seconds."}` {
		t.Errorf("body: %s", r.Body)
	}
	wantReset := strconv.FormatInt(h.sim.Now().Add(40*time.Second).Unix(), 10)
	if r.Header.Get("Retry-After") != "40" || r.Header.Get("X-RateLimit-Limit") != "2" ||
		r.Header.Get("X-RateLimit-Remaining") != "0" || r.Header.Get("X-RateLimit-Reset") != wantReset {
		t.Errorf("headers: %v (reset want %s)", r.Header, wantReset)
	}
	// Other scopes are unaffected; keys are counted separately.
	if r := h.do(http.MethodGet, "/v3/sessions/", testKey, nil); r.Status != http.StatusOK {
		t.Errorf("GET while create throttled: %d", r.Status)
	}
	if r := h.do(http.MethodPost, "/v3/session/", testSandbox, body); r.Status != http.StatusCreated {
		t.Errorf("other key throttled: %d", r.Status)
	}
	// The window slides: 41 s later the first two hits have aged out.
	h.sim.AdvanceClock(41 * time.Second)
	if r := h.do(http.MethodPost, "/v3/session/", testKey, body); r.Status != http.StatusCreated {
		t.Errorf("after the window: %d", r.Status)
	}

	// The same through /_sim/ratelimit: one GET per window.
	r = h.do(http.MethodPost, "/_sim/ratelimit", "", map[string]any{"get": 1, "reset": true})
	if r.json(t)["get"] != float64(1) || r.json(t)["create"] != float64(2) {
		t.Errorf("ratelimit control: %s", r.Body)
	}
	h.do(http.MethodGet, "/v3/sessions/", testKey, nil)
	r = h.do(http.MethodGet, "/v3/sessions/", testKey, nil)
	if r.Status != http.StatusTooManyRequests || r.Header.Get("Retry-After") != "60" {
		t.Errorf("GET limit: %d %v", r.Status, r.Header)
	}
}

func TestFaultInjection(t *testing.T) {
	h := newHarness(t, nil)
	body := map[string]any{"workflow_id": testWorkflow}

	if err := h.sim.AddFault(diditsim.Fault{Kind: diditsim.FaultError, PathPrefix: "/v3/session/", Method: "POST", Count: 1, Status: 503}); err != nil {
		t.Fatal(err)
	}
	if r := h.do(http.MethodGet, "/v3/sessions/", testKey, nil); r.Status != http.StatusOK {
		t.Errorf("non-matching request faulted: %d", r.Status)
	}
	r := h.do(http.MethodPost, "/v3/session/", testKey, body)
	if r.Status != http.StatusServiceUnavailable || json.Valid(r.Body) || !strings.HasPrefix(r.Header.Get("Content-Type"), "text/html") {
		t.Errorf("5xx fault: %d %q %s", r.Status, r.Header.Get("Content-Type"), r.Body)
	}
	if r := h.do(http.MethodPost, "/v3/session/", testKey, body); r.Status != http.StatusCreated {
		t.Errorf("fault not consumed: %d", r.Status)
	}

	// Dropped connection: the client sees a transport error, no response.
	if err := h.sim.SetFaults(diditsim.Fault{Kind: diditsim.FaultDrop}); err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodGet, h.base+"/v3/sessions/", nil)
	req.Header.Set("X-API-Key", testKey)
	// A fresh connection: Go's transport would transparently retry an
	// idempotent request that failed on a reused one.
	fresh := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	if resp, err := fresh.Do(req); err == nil {
		resp.Body.Close()
		t.Errorf("drop fault answered %d", resp.StatusCode)
	}

	// Throttle, configured over HTTP.
	r = h.do(http.MethodPost, "/_sim/faults", "", []map[string]any{{"kind": "throttle", "retry_after": 7, "count": 2}})
	if r.Status != http.StatusOK || !strings.Contains(string(r.Body), `"count":2`) {
		t.Fatalf("faults control: %d %s", r.Status, r.Body)
	}
	for range 2 {
		r = h.do(http.MethodGet, "/v3/sessions/", testKey, nil)
		if r.Status != http.StatusTooManyRequests || r.Header.Get("Retry-After") != "7" {
			t.Errorf("throttle fault: %d %v", r.Status, r.Header)
		}
	}
	if r := h.do(http.MethodGet, "/v3/sessions/", testKey, nil); r.Status != http.StatusOK {
		t.Errorf("after throttle faults: %d", r.Status)
	}

	// Latency longer than the client's patience: the client times out and
	// the handler gives up with it (the minute is never waited).
	if r := h.do(http.MethodPost, "/_sim/faults", "", map[string]any{"kind": "latency", "latency_ms": 60000}); r.Status != http.StatusOK {
		t.Fatalf("latency fault: %d %s", r.Status, r.Body)
	}
	impatient := &http.Client{Timeout: 100 * time.Millisecond}
	req, _ = http.NewRequest(http.MethodGet, h.base+"/v3/sessions/", nil)
	req.Header.Set("X-API-Key", testKey)
	resp, err := impatient.Do(req)
	if err == nil {
		resp.Body.Close()
		t.Errorf("latency fault answered in time: %d", resp.StatusCode)
	}

	if r := h.do(http.MethodPost, "/_sim/faults", "", map[string]any{"kind": "gremlins"}); r.Status != http.StatusBadRequest {
		t.Errorf("bad fault kind: %d", r.Status)
	}
	if r := h.do(http.MethodDelete, "/_sim/faults", "", nil); string(r.Body) != "[]" {
		t.Errorf("clear faults: %s", r.Body)
	}
	// Control endpoints are never faulted.
	_ = h.sim.SetFaults(diditsim.Fault{Kind: diditsim.FaultError, Count: -1})
	if r := h.do(http.MethodGet, "/_sim/sessions", "", nil); r.Status != http.StatusOK {
		t.Errorf("control faulted: %d", r.Status)
	}
	h.sim.ClearFaults()
}

// drop_after acts on the request, then loses the answer: the client gets
// no response, yet the session exists. Calls counts every request that
// arrived, whatever the fault did with it.
func TestFaultDropAfterAndCalls(t *testing.T) {
	h := newHarness(t, nil)
	r := h.do(http.MethodPost, "/_sim/faults", "", map[string]any{"kind": "drop_after", "method": "POST", "path_prefix": "/v3/session/"})
	if r.Status != http.StatusOK || !strings.Contains(string(r.Body), `"kind":"drop_after"`) {
		t.Fatalf("faults control: %d %s", r.Status, r.Body)
	}
	raw, _ := json.Marshal(map[string]any{"workflow_id": testWorkflow, "vendor_data": "p-drop-after"})
	req, _ := http.NewRequest(http.MethodPost, h.base+"/v3/session/", bytes.NewReader(raw))
	req.Header.Set("X-API-Key", testKey)
	req.Header.Set("Content-Type", "application/json")
	fresh := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	if resp, err := fresh.Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("drop_after fault answered %d", resp.StatusCode)
	}
	if got := h.sim.Sessions(); len(got) != 1 {
		t.Fatalf("sessions after drop_after = %d, want 1", len(got))
	}
	if r := h.do(http.MethodPost, "/v3/session/", testKey, map[string]any{"workflow_id": testWorkflow, "vendor_data": "p2"}); r.Status != http.StatusCreated {
		t.Errorf("fault not consumed: %d", r.Status)
	}
	h.do(http.MethodGet, "/v3/sessions/", testKey, nil)
	h.do(http.MethodGet, "/_sim/sessions", "", nil)
	if got := h.sim.Calls("POST", "/v3/session/"); got != 2 {
		t.Errorf("create calls = %d, want 2", got)
	}
	if got := h.sim.Calls("get", "/v3/sessions/"); got != 1 {
		t.Errorf("list calls = %d, want 1", got)
	}
	if got := h.sim.Calls("GET", "/_sim/sessions"); got != 0 {
		t.Errorf("control calls counted: %d", got)
	}
}

func TestConfigFromEnv(t *testing.T) {
	env := map[string]string{
		"DIDITSIM_API_KEY":        "k",
		"DIDITSIM_BASE_URL":       "http://127.0.0.1:8080/_didit/",
		"DIDITSIM_WEBHOOK_URL":    "http://127.0.0.1:8080/webhooks/didit",
		"DIDITSIM_WEBHOOK_SECRET": "s",
		"DIDITSIM_WORKFLOW_ID":    testWorkflow,
		"DIDITSIM_RETRY_SCALE":    "0.001",
	}
	getenv := func(k string) string { return env[k] }
	cfg, err := diditsim.ConfigFromEnv(getenv)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.APIKey != "k" || len(cfg.Webhooks) != 1 || cfg.Webhooks[0].Secret != "s" || len(cfg.WorkflowIDs) != 1 || !cfg.ResignOnRetry {
		t.Errorf("cfg = %+v", cfg)
	}
	if len(cfg.RetrySchedule) != 2 || cfg.RetrySchedule[0] != 60*time.Millisecond || cfg.RetrySchedule[1] != 240*time.Millisecond {
		t.Errorf("schedule = %v", cfg.RetrySchedule)
	}
	sim, err := diditsim.New(cfg)
	if err != nil {
		t.Fatalf("New(ConfigFromEnv): %v", err)
	}
	_ = sim.Close()

	delete(env, "DIDITSIM_RETRY_SCALE")
	if cfg, _ := diditsim.ConfigFromEnv(getenv); cfg.RetrySchedule[1] != 4*time.Minute {
		t.Errorf("default schedule = %v", cfg.RetrySchedule)
	}
	for k, v := range map[string]string{
		"DIDITSIM_API_KEY":        "",
		"DIDITSIM_RETRY_SCALE":    "-1",
		"DIDITSIM_WEBHOOK_SECRET": "",
		"DIDITSIM_WORKFLOW_ID":    "nope",
		"DIDITSIM_BASE_URL":       "ftp://x",
	} {
		saved := env[k]
		env[k] = v
		if _, err := diditsim.ConfigFromEnv(getenv); err == nil {
			t.Errorf("%s=%q accepted", k, v)
		}
		env[k] = saved
	}
}

func TestNewValidates(t *testing.T) {
	good := diditsim.Config{APIKey: "k", BaseURL: "http://x"}
	for name, mut := range map[string]func(*diditsim.Config){
		"no key":       func(c *diditsim.Config) { c.APIKey = "" },
		"no base":      func(c *diditsim.Config) { c.BaseURL = "" },
		"bad workflow": func(c *diditsim.Config) { c.WorkflowIDs = []string{"x"} },
		"bad hook":     func(c *diditsim.Config) { c.Webhooks = []diditsim.Destination{{URL: "x", Secret: "s"}} },
		"no secret":    func(c *diditsim.Config) { c.Webhooks = []diditsim.Destination{{URL: "http://h"}} },
		"bad version": func(c *diditsim.Config) {
			c.Webhooks = []diditsim.Destination{{URL: "http://h", Secret: "s", Version: "v9"}}
		},
		"bad status": func(c *diditsim.Config) { c.WrongKeyStatus = 500 },
		"bad mode":   func(c *diditsim.Config) { c.NotStartedWebhook = "later" },
	} {
		cfg := good
		mut(&cfg)
		if s, err := diditsim.New(cfg); err == nil {
			_ = s.Close()
			t.Errorf("%s: accepted", name)
		}
	}
	s, err := diditsim.New(good)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Complete(context.Background(), "nope", diditsim.Outcome{}); !errors.Is(err, diditsim.ErrNotFound) {
		t.Errorf("Complete unknown: %v", err)
	}
	// A Handler works without any server around it.
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v3/sessions/", nil))
	if rec.Code != http.StatusForbidden {
		t.Errorf("no key: %d", rec.Code)
	}
}
