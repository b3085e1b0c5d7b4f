package contract

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// recorder stands in for a test so the transport's reports can be inspected. The
// embedded TB is nil: only the methods overridden here may be called.
type recorder struct {
	testing.TB
	mu   sync.Mutex
	errs []string
}

func (r *recorder) Helper() {}

func (r *recorder) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

func (r *recorder) errors() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.errs...)
}

// fakeServer answers like a kycgate whose prepare works and whose status endpoint
// has drifted from the contract.
func fakeServer() *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Request-Id", "r1")
		switch r.URL.Path {
		case "/kyc/prepare", "/api/kyc/prepare":
			w.WriteHeader(201)
			io.WriteString(w, env(201, "user_prepared", "User prepared for KYC, please verify your email", nil))
		case "/kyc/status":
			w.WriteHeader(200)
			io.WriteString(w, `{"statusCode":200,"success":true,"status":"kyc_status_ok","message":"fine","data":{"long":"`+strings.Repeat("x", 2000)+`"}}`)
		default:
			w.WriteHeader(404)
			io.WriteString(w, env(404, "not_found", "Route not found", nil))
		}
	}))
}

func TestTransportPassesGoodResponses(t *testing.T) {
	srv := fakeServer()
	defer srv.Close()
	rec := &recorder{}
	client := &http.Client{Transport: Transport(rec, mustLoad(t), nil)}
	for _, path := range []string{"/kyc/prepare", "/api/kyc/prepare"} {
		resp, err := client.Post(srv.URL+path, "application/json", strings.NewReader(`{"email":"a@b.test"}`))
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(body), `"user_prepared"`) {
			t.Errorf("%s: body not restored for the caller: %q", path, body)
		}
	}
	resp, err := client.Get(srv.URL + "/no/such/route")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if errs := rec.errors(); len(errs) != 0 {
		t.Errorf("good responses reported: %v", errs)
	}
}

func TestTransportReportsMismatches(t *testing.T) {
	srv := fakeServer()
	defer srv.Close()
	rec := &recorder{}
	client := &http.Client{Transport: Transport(rec, mustLoad(t), srv.Client().Transport)}

	// Many goroutines at once: reports must neither race nor get lost.
	const n = 20
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			resp, err := client.Get(srv.URL + "/kyc/status?email=a@b.test")
			if err != nil {
				t.Error(err)
				return
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if !strings.Contains(string(body), "kyc_status_ok") {
				t.Errorf("body not restored: %.80q", body)
			}
		})
	}
	wg.Wait()

	errs := rec.errors()
	if len(errs) != n {
		t.Fatalf("got %d reports, want %d: %v", len(errs), n, errs)
	}
	msg := errs[0]
	for _, want := range []string{"GET /kyc/status", "200", "kyc_status_ok", "body:"} {
		if !strings.Contains(msg, want) {
			t.Errorf("report lacks %q:\n%s", want, msg)
		}
	}
	if len(msg) > 2000 {
		t.Errorf("report does not cut the body short (%d bytes)", len(msg))
	}
}

func TestTransportPassesTransportErrors(t *testing.T) {
	srv := fakeServer()
	url := srv.URL
	srv.Close()
	rec := &recorder{}
	client := &http.Client{Transport: Transport(rec, mustLoad(t), nil)}
	if _, err := client.Get(url + "/healthz"); err == nil {
		t.Error("want a connection error from a closed server")
	}
	if errs := rec.errors(); len(errs) != 0 {
		t.Errorf("a transport error was reported as a contract violation: %v", errs)
	}
}
