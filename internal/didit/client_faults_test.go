package didit_test

// A faulty Didit, over real HTTP: the simulator (diditsim) with injected
// faults, a closed port, a TLS server we do not trust. What is checked is
// how many creates reached Didit, how many sessions it holds and what the
// caller gets. The client's waits between attempts are injected
// (ClientConfig.Sleep) and return at once; the only real delays are the
// slowness of a slow Didit, and no assertion depends on how long anything
// took.

import (
	"context"
	"errors"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kycgate/kycgate/internal/didit"
	"github.com/kycgate/kycgate/internal/didit/diditsim"
	"github.com/kycgate/kycgate/internal/kyc"
)

const (
	simKey      = "sk_sim_faults_KEY_42"
	simWorkflow = "0b1e2d3c-4a5b-4c7d-8e9f-a0b1c2d3e4f5"
	createPath  = "/v3/session/"
	// budget stands for the API's per-request budget (30 s) in tests where
	// it is not what runs out; no test waits for it.
	budget = 30 * time.Second
)

// simDidit is the simulator served over real HTTP.
type simDidit struct {
	*diditsim.Sim
	URL  string
	addr string
}

func newSimDidit(t *testing.T) *simDidit {
	t.Helper()
	srv := httptest.NewUnstartedServer(nil)
	base := "http://" + srv.Listener.Addr().String()
	cfg := diditsim.DefaultConfig()
	cfg.APIKey = simKey
	cfg.WorkflowIDs = []string{simWorkflow}
	cfg.BaseURL = base
	cfg.Logger = slog.New(slog.DiscardHandler)
	sim, err := diditsim.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv.Config.Handler = sim.Handler()
	srv.Start()
	t.Cleanup(func() {
		srv.Close()
		sim.Close()
	})
	return &simDidit{Sim: sim, URL: base, addr: srv.Listener.Addr().String()}
}

func (s *simDidit) fault(t *testing.T, f diditsim.Fault) {
	t.Helper()
	f.Method, f.PathPrefix = http.MethodPost, createPath
	if err := s.AddFault(f); err != nil {
		t.Fatal(err)
	}
}

// wantCreates checks how many creates reached the simulator and how many
// sessions it holds.
func (s *simDidit) wantCreates(t *testing.T, calls, sessions int) {
	t.Helper()
	if got := s.Calls(http.MethodPost, createPath); got != calls {
		t.Errorf("Didit got %d create calls, want %d", got, calls)
	}
	if got := len(s.Sessions()); got != sessions {
		t.Errorf("Didit holds %d sessions, want %d", got, sessions)
	}
}

func newClient(t *testing.T, base string, mod ...func(*didit.ClientConfig)) (*didit.Client, *didit.SleepRecorder) {
	t.Helper()
	sl := &didit.SleepRecorder{}
	cfg := didit.ClientConfig{BaseURL: base, APIKey: simKey, WorkflowID: simWorkflow, Sleep: sl.Sleep,
		Logger: slog.New(slog.DiscardHandler)}
	for _, m := range mod {
		m(&cfg)
	}
	c, err := didit.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c, sl
}

// impatient gives reads the 20 ms attempt timeout the old client also used
// for creates: any create answer slower than that was resent.
func impatient(cfg *didit.ClientConfig) { cfg.Timeout = 20 * time.Millisecond }

func create(t *testing.T, c *didit.Client, ctx context.Context, vendor string) (kyc.ProviderSession, error) {
	t.Helper()
	return c.CreateSession(ctx, kyc.CreateSessionRequest{VendorData: vendor})
}

func budgetCtx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// Didit answers the create later than a read attempt may take (the old
// client's fixed per-attempt timeout, 10 s, against a 12 s Didit; here
// 20 ms against 300 ms): the create is sent once and its answer awaited
// within the caller's budget.
func TestCreateSlowDiditOneCall(t *testing.T) {
	d := newSimDidit(t)
	d.fault(t, diditsim.Fault{Kind: diditsim.FaultLatency, Latency: 300 * time.Millisecond, Count: -1})
	c, sl := newClient(t, d.URL, impatient)
	ps, err := create(t, c, budgetCtx(t, budget), "person-slow")
	d.wantCreates(t, 1, 1)
	if err != nil {
		t.Fatalf("create against a slow Didit: %v", err)
	}
	if got := d.Sessions(); len(got) == 1 && (got[0].ID != ps.ID || got[0].URL != ps.URL) {
		t.Errorf("got %+v, Didit holds %+v", ps, got[0])
	}
	if len(sl.Got()) != 0 {
		t.Errorf("waited to retry: %v", sl.Got())
	}
}

// Didit never answers: the one create is abandoned CreateMargin before the
// caller's deadline, and reported as unconfirmed, not resent.
func TestCreateHangsPastBudget(t *testing.T) {
	d := newSimDidit(t)
	d.fault(t, diditsim.Fault{Kind: diditsim.FaultLatency, Latency: time.Hour, Count: -1})
	c, sl := newClient(t, d.URL, impatient, func(cfg *didit.ClientConfig) { cfg.CreateMargin = 200 * time.Millisecond })
	_, err := create(t, c, budgetCtx(t, time.Second), "person-hang")
	d.wantCreates(t, 1, 0)
	if !errors.Is(err, didit.ErrCreateUnconfirmed) {
		t.Fatalf("error = %v, want ErrCreateUnconfirmed", err)
	}
	if len(sl.Got()) != 0 {
		t.Errorf("waited to retry: %v", sl.Got())
	}
}

// A create that cannot be done within the budget once CreateMargin is kept
// for storing its result is not sent at all.
func TestCreateNoTimeLeftNotSent(t *testing.T) {
	d := newSimDidit(t)
	c, _ := newClient(t, d.URL) // CreateMargin 3 s
	_, err := create(t, c, budgetCtx(t, 2*time.Second), "person-late")
	d.wantCreates(t, 0, 0)
	if err == nil || errors.Is(err, didit.ErrCreateUnconfirmed) {
		t.Fatalf("error = %v, want a confirmed failure", err)
	}
}

// closedAddr is a local address nothing listens on: dialing it is refused.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// Didit down: a refused connection carried no request, so it is retried,
// then reported (not as unconfirmed).
func TestCreateConnectionRefusedRetried(t *testing.T) {
	c, sl := newClient(t, "http://"+closedAddr(t), func(cfg *didit.ClientConfig) { cfg.MaxRetries = 2 })
	_, err := create(t, c, budgetCtx(t, budget), "person-down")
	if err == nil || errors.Is(err, didit.ErrCreateUnconfirmed) || !strings.Contains(err.Error(), "giving up after 3 attempts") {
		t.Fatalf("error = %v", err)
	}
	var apiErr *didit.APIError
	if errors.As(err, &apiErr) {
		t.Errorf("network failure reported as APIError %+v", apiErr)
	}
	if len(sl.Got()) != 2 {
		t.Errorf("sleeps = %v, want 2", sl.Got())
	}
}

// Refused once, then up: the retry creates the one session.
func TestCreateRefusedThenUp(t *testing.T) {
	d := newSimDidit(t)
	down := closedAddr(t)
	var mu sync.Mutex
	dials := 0
	tr := &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
		mu.Lock()
		dials++
		first := dials == 1
		mu.Unlock()
		addr := d.addr
		if first {
			addr = down
		}
		var dl net.Dialer
		return dl.DialContext(ctx, network, addr)
	}}
	t.Cleanup(tr.CloseIdleConnections)
	c, sl := newClient(t, d.URL, func(cfg *didit.ClientConfig) { cfg.HTTPClient = &http.Client{Transport: tr} })
	_, err := create(t, c, budgetCtx(t, budget), "person-flaky")
	d.wantCreates(t, 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(sl.Got()) != 1 {
		t.Errorf("sleeps = %v, want 1", sl.Got())
	}
}

// A TLS handshake that fails (a certificate we do not trust) happens before
// the request is written: retried, and no request ever reaches the server.
func TestCreateTLSHandshakeFailureRetried(t *testing.T) {
	var mu sync.Mutex
	requests := 0
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		requests++
		mu.Unlock()
		w.WriteHeader(http.StatusCreated)
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the handshake errors are the point
	srv.StartTLS()
	t.Cleanup(srv.Close)
	c, sl := newClient(t, srv.URL, func(cfg *didit.ClientConfig) { cfg.MaxRetries = 1 })
	_, err := create(t, c, budgetCtx(t, budget), "person-tls")
	if err == nil || errors.Is(err, didit.ErrCreateUnconfirmed) || !strings.Contains(err.Error(), "giving up after 2 attempts") {
		t.Fatalf("error = %v", err)
	}
	if len(sl.Got()) != 1 {
		t.Errorf("sleeps = %v, want 1", sl.Got())
	}
	mu.Lock()
	defer mu.Unlock()
	if requests != 0 {
		t.Errorf("server got %d requests", requests)
	}
}

// 429 and 503 say nothing was created: retried after Retry-After when that
// leaves time for another attempt.
func TestCreateRejectedRetried(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fault diditsim.Fault
		sleep time.Duration // 0: backoff
	}{
		{"429 Retry-After", diditsim.Fault{Kind: diditsim.FaultThrottle, RetryAfter: 7}, 7 * time.Second},
		{"503", diditsim.Fault{Kind: diditsim.FaultError, Status: http.StatusServiceUnavailable}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := newSimDidit(t)
			d.fault(t, tc.fault)
			c, sl := newClient(t, d.URL)
			_, err := create(t, c, budgetCtx(t, budget), "person-busy")
			d.wantCreates(t, 2, 1)
			if err != nil {
				t.Fatal(err)
			}
			got := sl.Got()
			if len(got) != 1 || (tc.sleep != 0 && got[0] != tc.sleep) {
				t.Errorf("sleeps = %v, want one of %v", got, tc.sleep)
			}
		})
	}
}

// A Retry-After that leaves no time for another attempt before the
// caller's deadline (less CreateMargin) is reported at once.
func TestCreateRetryAfterPastBudget(t *testing.T) {
	d := newSimDidit(t)
	d.fault(t, diditsim.Fault{Kind: diditsim.FaultThrottle, RetryAfter: 5})
	c, sl := newClient(t, d.URL) // CreateMargin 3 s: 6 s leave under 3 s for waiting
	_, err := create(t, c, budgetCtx(t, 6*time.Second), "person-throttled")
	d.wantCreates(t, 1, 0)
	var apiErr *didit.APIError
	if !errors.As(err, &apiErr) || apiErr.Status != http.StatusTooManyRequests || errors.Is(err, didit.ErrCreateUnconfirmed) {
		t.Fatalf("error = %v, want the 429", err)
	}
	if len(sl.Got()) != 0 {
		t.Errorf("waited: %v", sl.Got())
	}
}

// Any other 5xx may come after Didit stored the session: one call, and the
// error says the outcome is unknown.
func TestCreate5xxNotRetried(t *testing.T) {
	for _, status := range []int{http.StatusInternalServerError, http.StatusBadGateway, http.StatusGatewayTimeout} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			d := newSimDidit(t)
			d.fault(t, diditsim.Fault{Kind: diditsim.FaultError, Status: status, Count: -1})
			c, sl := newClient(t, d.URL)
			_, err := create(t, c, budgetCtx(t, budget), "person-5xx")
			d.wantCreates(t, 1, 0)
			var apiErr *didit.APIError
			if !errors.Is(err, didit.ErrCreateUnconfirmed) || !errors.As(err, &apiErr) || apiErr.Status != status {
				t.Fatalf("error = %v, want an unconfirmed HTTP %d", err, status)
			}
			if len(sl.Got()) != 0 {
				t.Errorf("waited to retry: %v", sl.Got())
			}
		})
	}
}

// The connection drops after Didit read the request: never resent. With
// drop_after Didit did create the session; the partner's next create (the
// same vendor_data) gets that session back rather than a second one.
func TestCreateDroppedAfterRequestNotRetried(t *testing.T) {
	for _, tc := range []struct {
		kind     string
		sessions int
	}{
		{diditsim.FaultDrop, 0},
		{diditsim.FaultDropAfter, 1},
	} {
		t.Run(tc.kind, func(t *testing.T) {
			d := newSimDidit(t)
			d.fault(t, diditsim.Fault{Kind: tc.kind, Count: -1})
			c, sl := newClient(t, d.URL)
			_, err := create(t, c, budgetCtx(t, budget), "person-dropped")
			d.wantCreates(t, 1, tc.sessions)
			if !errors.Is(err, didit.ErrCreateUnconfirmed) {
				t.Fatalf("error = %v, want ErrCreateUnconfirmed", err)
			}
			if len(sl.Got()) != 0 {
				t.Errorf("waited to retry: %v", sl.Got())
			}

			d.ClearFaults()
			ps, err := create(t, c, budgetCtx(t, budget), "person-dropped")
			if err != nil {
				t.Fatal(err)
			}
			d.wantCreates(t, 2, 1)
			if got := d.Sessions(); len(got) == 1 && got[0].ID != ps.ID {
				t.Errorf("second create got %s, Didit holds %s", ps.ID, got[0].ID)
			}
		})
	}
}
