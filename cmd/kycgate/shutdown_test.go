package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/kycgate/kycgate/internal/didit/diditsim"
)

// TestGracefulShutdown: a request in flight when shutdown starts still
// completes, new connections are refused, and run() returns cleanly.
func TestGracefulShutdown(t *testing.T) {
	t.Parallel()
	const apiKey, workflow, secret = "sim-key-shutdown", "0b1e2d3c-4a5b-4c7d-8e9f-a0b1c2d3e4f5", "whsec-shutdown-test"
	cfg := diditsim.DefaultConfig()
	cfg.APIKey = apiKey
	cfg.WorkflowIDs = []string{workflow}
	arrived := make(chan struct{})
	release := make(chan struct{})
	var once sync.Once
	var sim *diditsim.Sim
	// The real simulator behind a gate that holds session creation, so the
	// request is provably in flight when shutdown begins.
	gated := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == "POST" && strings.HasPrefix(r.URL.Path, "/v3/session") {
			once.Do(func() { close(arrived) })
			<-release
		}
		sim.Handler().ServeHTTP(w, r)
	}))
	defer gated.Close()
	cfg.BaseURL = gated.URL
	var err error
	if sim, err = diditsim.New(cfg); err != nil {
		t.Fatal(err)
	}
	defer sim.Close()

	mb := newMailbox(t)
	env := newEnv(t, mb.srv.URL())
	env["KYCGATE_DIDIT_URL"] = gated.URL
	env["KYCGATE_DIDIT_API_KEY"] = apiKey
	env["KYCGATE_DIDIT_WORKFLOW_ID"] = workflow
	env["KYCGATE_DIDIT_WEBHOOK_SECRET"] = secret
	in := start(t, env)
	_, key := in.tenant("Drain")
	in.verifyEmail(mb, key, "drain@example.com")

	got := make(chan reply, 1)
	go func() {
		r, err := in.try("POST", "/kyc/create/verify_public_kyc", key, map[string]string{"email": "drain@example.com"})
		if err != nil {
			t.Error(err)
		}
		got <- r
	}()
	<-arrived
	in.cancel() // SIGTERM
	in.cancel = nil
	// The listener closes first: new connections are refused.
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	for {
		resp, err := client.Get(in.URL + "/healthz")
		if err != nil {
			break
		}
		resp.Body.Close()
	}
	select {
	case err := <-in.done:
		t.Fatalf("run returned (%v) while a request was in flight", err)
	default:
	}
	close(release)
	r := <-got
	expect(t, r, 201, "kyc_session_created")
	if err := <-in.done; err != nil {
		t.Fatalf("run after drain: %v", err)
	}
	if n := len(sim.Sessions()); n != 1 {
		t.Fatalf("%d sessions at the simulator, want 1", n)
	}
}

// TestShutdownDelay: after the shutdown signal, /readyz answers 503 while
// the API goes on serving, for KYCGATE_SHUTDOWN_DELAY (or until a second
// signal); only then does the listener close.
func TestShutdownDelay(t *testing.T) {
	t.Parallel()
	mb := newMailbox(t)
	env := newEnv(t, mb.srv.URL())
	env["KYCGATE_SHUTDOWN_DELAY"] = "10m" // ended by the second signal below
	in := start(t, env)
	_, key := in.tenant("Delay")
	if r := in.call("GET", "/readyz", "", nil); r.Code != 200 {
		t.Fatalf("/readyz before shutdown: %d %s", r.Code, r.Raw)
	}
	in.cancel() // SIGTERM
	in.cancel = nil
	// Drain is asynchronous to the signal: wait for /readyz to turn.
	for {
		r, err := in.try("GET", "/readyz", "", nil)
		if err != nil {
			t.Fatalf("/readyz during the delay: %v (the listener closed early)", err)
		}
		if r.Code == 503 {
			break
		}
	}
	// Still serving: new connections, real work.
	fresh := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := fresh.Get(in.URL + "/healthz")
	if err != nil {
		t.Fatalf("a new connection during the delay: %v", err)
	}
	resp.Body.Close()
	expect(t, in.call("POST", "/kyc/prepare", key, map[string]string{"email": "late@example.com"}), 201, "user_prepared")
	select {
	case err := <-in.done:
		t.Fatalf("run returned (%v) during the delay", err)
	default:
	}
	close(in.hurry) // the second signal
	if err := <-in.done; err != nil {
		t.Fatalf("run after the delay: %v", err)
	}
	if _, err := fresh.Get(in.URL + "/healthz"); err == nil {
		t.Fatal("the listener still accepts after shutdown")
	}
	if !strings.Contains(in.logs.String(), "still serving until the delay ends") {
		t.Errorf("the log does not say the delay started:\n%s", in.logs)
	}
}

// TestBadConfiguration: run() refuses a bad setting with one line naming it.
func TestBadConfiguration(t *testing.T) {
	t.Parallel()
	env := map[string]string{"KYCGATE_ADDR": "127.0.0.1:0", "KYCGATE_DATABASE_URL": "sqlite:" + t.TempDir() + "/db",
		"KYCGATE_SMTP_URL": "gopher://nope"}
	err := run(t.Context(), []string{"serve"}, getenvFrom(env), nil, nil)
	if err == nil || !strings.HasPrefix(err.Error(), "KYCGATE_SMTP_URL: ") || strings.Contains(err.Error(), "\n") {
		t.Fatalf("run = %v, want one line naming KYCGATE_SMTP_URL", err)
	}
	if err := run(t.Context(), []string{"bogus"}, getenvFrom(env), nil, nil); err == nil {
		t.Fatal("unknown command accepted")
	}
}
