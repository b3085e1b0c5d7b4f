package httpapi_test

// Regression test (security review): the request-method label of the
// metrics, and the method in the access log, used to be taken verbatim from
// the request, so unauthenticated clients could grow the metrics map (and
// /metrics output) without bound with made-up methods of up to ~1 MiB.

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/kycgate/kycgate/internal/httpapi"
	"github.com/kycgate/kycgate/internal/metrics"
)

// syncBuffer is a bytes.Buffer safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestMetricsMethodCardinalityBounded(t *testing.T) {
	var logs syncBuffer
	m := metrics.New(nil)
	srv := httptest.NewServer(httpapi.New(httpapi.Config{Logger: slog.New(slog.NewJSONHandler(&logs, nil)), Metrics: m}))
	defer srv.Close()
	adm := httptest.NewServer(m.Handler())
	defer adm.Close()
	const n = 200
	long := strings.Repeat("A", 64<<10)
	for i := range n {
		req, _ := http.NewRequest(fmt.Sprintf("X%d%s", i, long), srv.URL+"/healthz", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	for _, m := range []string{http.MethodGet, http.MethodHead, "get", http.MethodTrace} {
		req, _ := http.NewRequest(m, srv.URL+"/healthz", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	resp, err := http.Get(adm.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	page := string(b)
	series := strings.Count(page, "kycgate_http_requests_total{")
	if series > 20 || len(b) > 1<<20 {
		t.Errorf("%d unauthenticated requests with made-up methods left %d series and a %d KiB /metrics page", n, series, len(b)>>10)
	}
	if strings.Contains(page, long[:64]) {
		t.Error("a made-up method appears verbatim in /metrics")
	}
	for _, m := range []string{"GET", "HEAD", "OTHER"} {
		if !strings.Contains(page, `method="`+m+`"`) {
			t.Errorf("/metrics has no method=%q series:\n%s", m, page)
		}
	}
	for _, m := range []string{"get", "TRACE"} {
		if strings.Contains(page, `method="`+m+`"`) {
			t.Errorf("/metrics labels %q as itself, want OTHER", m)
		}
	}

	log := logs.String()
	if strings.Contains(log, long[:64]) {
		t.Error("a made-up method appears verbatim in the access log")
	}
	if !strings.Contains(log, `"method":"OTHER"`) || !strings.Contains(log, `"method":"GET"`) {
		t.Errorf("access log lacks the bounded method values:\n%.2000s", log)
	}
}

// TestMetricsNotOnPartnerListener: /metrics is the admin listener's; the
// partner API answers it as any unknown route, whatever the method.
func TestMetricsNotOnPartnerListener(t *testing.T) {
	srv := httptest.NewServer(httpapi.New(httpapi.Config{Metrics: metrics.New(nil)}))
	defer srv.Close()
	for _, p := range []string{"/metrics", "/api/metrics"} {
		resp, err := http.Get(srv.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound || !strings.Contains(string(b), `"status":"not_found"`) {
			t.Errorf("GET %s on the partner listener = %d %s, want the 404 envelope", p, resp.StatusCode, b)
		}
	}
}
