package main

// The admin listener end to end: /metrics there and not on the partner
// listener, its token, the runtime, process and pool metrics, and the
// business counters moving as real requests go through kycgate, a real
// SMTP server and the Didit simulator. The deploy/ files are checked
// against what a live kycgate exports.

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/kycgate/kycgate/internal/didit/diditsim"
	"github.com/kycgate/kycgate/internal/testenv"
)

// adminGet GETs path on the admin listener, with "Bearer token" when token
// is not "".
func adminGet(t testing.TB, adminURL, path, token string) (int, []byte) {
	t.Helper()
	if adminURL == "" {
		t.Fatal("no admin listener announced")
	}
	req, err := http.NewRequest("GET", adminURL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

// scrapeText is the admin listener's /metrics page, which must answer 200.
func scrapeText(t testing.TB, adminURL, token string) string {
	t.Helper()
	code, b := adminGet(t, adminURL, "/metrics", token)
	if code != http.StatusOK {
		t.Fatalf("admin /metrics = %d %s", code, b)
	}
	return string(b)
}

// scrape parses the admin listener's /metrics.
func scrape(t testing.TB, adminURL, token string) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(scrapeText(t, adminURL, token)))
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return fams
}

// sample sums the counters, gauges and histogram counts of name whose
// labels include want; ok is false when no series matched.
func sample(fams map[string]*dto.MetricFamily, name string, want map[string]string) (v float64, ok bool) {
	f := fams[name]
	if f == nil {
		return 0, false
	}
	for _, m := range f.GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		match := true
		for k, w := range want {
			match = match && labels[k] == w
		}
		if !match {
			continue
		}
		ok = true
		switch {
		case m.Counter != nil:
			v += m.Counter.GetValue()
		case m.Gauge != nil:
			v += m.Gauge.GetValue()
		case m.Histogram != nil:
			v += float64(m.Histogram.GetSampleCount())
		}
	}
	return v, ok
}

// eventually scrapes until check passes or 10 s pass. It is for what is
// counted after the answer went out (request latencies, webhook results):
// the client can read the answer before the count.
func eventually(t *testing.T, adminURL string, check func(map[string]*dto.MetricFamily) string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		problem := check(scrape(t, adminURL, ""))
		if problem == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(problem)
		}
		time.Sleep(20 * time.Millisecond) // polling a condition with a deadline, not synchronising
	}
}

// TestMetricsAdminListenerToken: with KYCGATE_ADMIN_TOKEN set, the admin
// listener refuses a missing or wrong token; the partner listener has no
// /metrics at all.
func TestMetricsAdminListenerToken(t *testing.T) {
	t.Parallel()
	const token = "metrics-admin-token-0123456789abcdefghij"
	env := newEnv(t, newMailbox(t).srv.URL())
	env["KYCGATE_ADMIN_TOKEN"] = token
	in := start(t, env)
	for _, p := range []string{"/metrics", "/api/metrics"} {
		expect(t, in.call("GET", p, "", nil), 404, "not_found", "Route not found")
	}
	for _, tok := range []string{"", "wrong", token[1:]} {
		code, b := adminGet(t, in.AdminURL, "/metrics", tok)
		var env struct {
			StatusCode int    `json:"statusCode"`
			Status     string `json:"status"`
		}
		if code != 401 || json.Unmarshal(b, &env) != nil || env.StatusCode != 401 || env.Status != "unauthorized" {
			t.Errorf("admin /metrics with token %q = %d %s, want the 401 envelope", tok, code, b)
		}
	}
	if m := scrapeText(t, in.AdminURL, token); !strings.Contains(m, "go_goroutines ") {
		t.Fatalf("admin /metrics with the token lacks the runtime metrics:\n%.2000s", m)
	}
}

// TestMetricsBusinessCounters drives codes, sessions and webhooks through
// kycgate and reads each counter move on the admin listener, with the
// runtime, process and database pool metrics beside them.
func TestMetricsBusinessCounters(t *testing.T) {
	t.Parallel()
	r := startDidit(t)
	in := r.in
	_, key := in.tenant("metrics", "--quota", "1", "--rate-limit-per-minute", "0")
	const create = "/kyc/create/verify_public_kyc"

	in.verifyEmail(r.mb, key, "one@example.com")
	// A second address: a send within the gap, and a wrong code.
	expect(t, in.call("POST", "/kyc/prepare", key, map[string]string{"email": "two@example.com"}), 201, "user_prepared")
	expect(t, in.call("POST", "/security/email/send-otp", key, map[string]string{"email": "two@example.com"}), 201, "otp_sent")
	expect(t, in.call("POST", "/security/email/send-otp", key, map[string]string{"email": "two@example.com"}), 429, "otp_send_rate_limited")
	wrong := "000000"
	if r.mb.code("two@example.com") == wrong {
		wrong = "111111"
	}
	expect(t, in.call("POST", "/security/email/verify-otp", key, map[string]string{"email": "two@example.com", "code": wrong}), 400, "otp_invalid")

	c := r.newSession(t, create, key, "one@example.com") // the tenant's one unit
	r.create(t, create, key, "one@example.com", "didit_existing_kyc_session")
	r.complete(t, c.Session.SessionID, diditsim.Outcome{Preset: diditsim.PresetApproved})
	r.create(t, create, key, "one@example.com", "kyc_already_approved")
	in.verifyEmail(r.mb, key, "three@example.com")
	expect(t, in.call("POST", create, key, map[string]string{"email": "three@example.com"}), 429, "verify_quota_exceeded")
	body := diditHookBody(t, c.Session.SessionID, "Approved", "status.updated", time.Now().Unix(), nil)
	expectHookRejected(t, r.postHook(t, body, diditSigned(t, "whsec_not-the-secret", body, time.Now().Unix())))

	fams := scrape(t, in.AdminURL, "")
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"kycgate_codes_sent_total", nil, 3},
		{"kycgate_codes_verified_total", nil, 2},
		{"kycgate_codes_send_failed_total", nil, 0},
		{"kycgate_codes_refused_total", map[string]string{"reason": "rate_limited"}, 1},
		{"kycgate_codes_refused_total", map[string]string{"reason": "invalid"}, 1},
		{"kycgate_codes_refused_total", map[string]string{"reason": "expired"}, 0},
		{"kycgate_sessions_created_total", map[string]string{"kind": "new"}, 1},
		{"kycgate_sessions_created_total", map[string]string{"kind": "resumed"}, 1},
		{"kycgate_sessions_created_total", map[string]string{"kind": "already_approved"}, 1},
		{"kycgate_quota_refusals_total", nil, 1},
		{"kycgate_didit_api_errors_total", nil, 0},
		{"kycgate_reconcile_lag_seconds", nil, 0},
	} {
		if got, ok := sample(fams, c.name, c.labels); !ok || got != c.want {
			t.Errorf("%s%v = %v (present %v), want %v", c.name, c.labels, got, ok, c.want)
		}
	}
	pool := map[string]string{"db_name": "sqlite_write"}
	if strings.HasPrefix(in.env["KYCGATE_DATABASE_URL"], "postgres") {
		pool = map[string]string{"db_name": "postgres"}
	}
	for _, name := range []string{"go_goroutines", "go_memstats_heap_inuse_bytes", "process_resident_memory_bytes",
		"process_cpu_seconds_total", "go_sql_open_connections", "go_sql_wait_count_total"} {
		want := map[string]string(nil)
		if strings.HasPrefix(name, "go_sql_") {
			want = pool
		}
		if _, ok := sample(fams, name, want); !ok {
			t.Errorf("%s%v missing from /metrics", name, want)
		}
	}
	if v, _ := sample(fams, "go_sql_max_open_connections", pool); pool["db_name"] == "sqlite_write" && v != 1 {
		t.Errorf("the SQLite writer pool's max open connections = %v, want 1", v)
	}

	// Counted once the answer is out: poll.
	eventually(t, in.AdminURL, func(f map[string]*dto.MetricFamily) string {
		for _, c := range []struct {
			name   string
			labels map[string]string
			min    float64
		}{
			{"kycgate_didit_webhooks_total", map[string]string{"result": "accepted"}, 2},
			{"kycgate_didit_webhooks_total", map[string]string{"result": "bad_signature"}, 1},
			{"kycgate_http_request_duration_seconds", map[string]string{"route": "/kyc/prepare", "method": "POST", "status": "2xx"}, 2},
			{"kycgate_http_request_duration_seconds", map[string]string{"route": createPattern, "method": "POST", "status": "4xx"}, 1},
			{"kycgate_http_requests_total", map[string]string{"route": "/security/email/send-otp", "code": "429"}, 1},
		} {
			if got, _ := sample(f, c.name, c.labels); got < c.min {
				return c.name + " " + labelString(c.labels) + " below its count"
			}
		}
		return ""
	})
	if strings.Contains(scrapeText(t, in.AdminURL, ""), "example.com") {
		t.Error("an email address appears in /metrics")
	}
}

// createPattern is how the create route is labelled: its pattern.
const createPattern = "/kyc/create/{kyc_type}"

func labelString(l map[string]string) string {
	b, _ := json.Marshal(l)
	return string(b)
}

// metricName finds the metric names in PromQL text: kycgate's own and the
// runtime, process and pool collectors'.
var metricName = regexp.MustCompile(`\b(?:kycgate|go|process)_[a-z0-9_]+\b`)

// TestDeployFilesUseExportedMetrics: every metric the Grafana dashboard
// and the alert rules query is one a live kycgate exports (histograms by
// their _bucket, _sum and _count series).
func TestDeployFilesUseExportedMetrics(t *testing.T) {
	t.Parallel()
	r := startDidit(t)
	_, key := r.in.tenant("deploy", "--rate-limit-per-minute", "0")
	r.in.verifyEmail(r.mb, key, "deploy@example.com")
	eventually(t, r.in.AdminURL, func(f map[string]*dto.MetricFamily) string {
		if _, ok := sample(f, "kycgate_http_requests_total", map[string]string{"route": "/security/email/verify-otp"}); !ok {
			return "the verify-otp request is not counted yet"
		}
		return ""
	})
	fams := scrape(t, r.in.AdminURL, "")
	exported := map[string]bool{}
	for name, f := range fams {
		exported[name] = true
		if f.GetType() == dto.MetricType_HISTOGRAM || f.GetType() == dto.MetricType_SUMMARY {
			for _, s := range []string{"_bucket", "_sum", "_count"} {
				exported[name+s] = true
			}
		}
	}

	raw, err := os.ReadFile(filepath.Join("..", "..", "deploy", "grafana", "kycgate.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Title  string            `json:"title"`
		Panels []json.RawMessage `json:"panels"`
	}
	if err := json.Unmarshal(raw, &dash); err != nil || dash.Title == "" || len(dash.Panels) == 0 {
		t.Fatalf("deploy/grafana/kycgate.json is not a dashboard: %v", err)
	}
	var exprs []string
	collectExprs(t, raw, &exprs)
	if len(exprs) < 10 {
		t.Fatalf("the dashboard has %d queries", len(exprs))
	}
	checkNames(t, "deploy/grafana/kycgate.json", strings.Join(exprs, "\n"), exported)

	rules, err := os.ReadFile(filepath.Join("..", "..", "deploy", "prometheus", "alerts.yml"))
	if err != nil {
		t.Fatal(err)
	}
	checkNames(t, "deploy/prometheus/alerts.yml", string(rules), exported)
}

// collectExprs gathers every "expr" string anywhere in the dashboard.
func collectExprs(t *testing.T, raw []byte, out *[]string) {
	t.Helper()
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	var walk func(any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				if s, ok := x.(string); ok && k == "expr" {
					*out = append(*out, s)
				}
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(v)
}

func checkNames(t *testing.T, file, text string, exported map[string]bool) {
	t.Helper()
	seen := map[string]bool{}
	for _, n := range metricName.FindAllString(text, -1) {
		seen[n] = true
	}
	if len(seen) == 0 {
		t.Fatalf("%s queries no kycgate metric", file)
	}
	var unknown []string
	for n := range seen {
		if !exported[n] {
			unknown = append(unknown, n)
		}
	}
	sort.Strings(unknown)
	if len(unknown) > 0 {
		t.Errorf("%s queries metrics kycgate does not export: %v", file, unknown)
	}
}

// TestAlertRulesPromtool runs Prometheus's own checker on the rules.
func TestAlertRulesPromtool(t *testing.T) {
	t.Parallel()
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		testenv.Missing(t, "promtool", "Debian: apt-get install prometheus")
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, promtool, "check", "rules", filepath.Join("..", "..", "deploy", "prometheus", "alerts.yml")).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check rules: %v\n%s", err, out)
	}
}

// TestAdminListenerLifecycle: a busy admin address stops start-up with a
// line naming the variable; a running server's admin listener closes with
// it on shutdown.
func TestAdminListenerLifecycle(t *testing.T) {
	t.Parallel()
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	env := newEnv(t, newMailbox(t).srv.URL())
	env["KYCGATE_ADMIN_ADDR"] = busy.Addr().String()
	if err := run(t.Context(), []string{"serve"}, getenvFrom(env), io.Discard, io.Discard); err == nil ||
		!strings.HasPrefix(err.Error(), "KYCGATE_ADMIN_ADDR: ") {
		t.Fatalf("serve with the admin address taken = %v, want an error naming KYCGATE_ADMIN_ADDR", err)
	}

	env = newEnv(t, newMailbox(t).srv.URL())
	in := start(t, env)
	adminURL := in.AdminURL
	scrapeText(t, adminURL, "")
	in.stop()
	if resp, err := http.Get(adminURL + "/metrics"); err == nil {
		resp.Body.Close()
		t.Fatalf("admin listener still answers after shutdown: %d", resp.StatusCode)
	}

	env = newEnv(t, newMailbox(t).srv.URL())
	env["KYCGATE_ADMIN_ADDR"] = "off"
	if in := start(t, env); in.AdminURL != "" {
		t.Fatalf("KYCGATE_ADMIN_ADDR=off, yet an admin listener at %s", in.AdminURL)
	}
}
