package main

import (
	"bytes"
	"context"
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestHealthcheck: `kycgate healthcheck` passes against a serving replica,
// fails on /readyz (but not --live) once shutdown has begun, and fails
// when nothing listens; it asks the address the server was configured
// with.
func TestHealthcheck(t *testing.T) {
	t.Parallel()
	mb := newMailbox(t)
	env := newEnv(t, mb.srv.URL())
	env["KYCGATE_SHUTDOWN_DELAY"] = "10m" // ended below by the second signal
	in := start(t, env)
	u, err := url.Parse(in.URL)
	if err != nil {
		t.Fatal(err)
	}
	probeEnv := map[string]string{"KYCGATE_ADDR": u.Host}
	check := func(args ...string) (string, error) {
		var out, errb bytes.Buffer
		err := run(context.Background(), append([]string{"healthcheck"}, args...), getenvFrom(probeEnv), &out, &errb)
		return out.String(), err
	}
	if out, err := check(); err != nil || !strings.Contains(out, "/readyz") {
		t.Fatalf("healthcheck of a serving replica: %q, %v", out, err)
	}

	in.cancel() // SIGTERM: /readyz turns 503, the server keeps serving
	in.cancel = nil
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := check()
		if err != nil && strings.Contains(err.Error(), "503") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("healthcheck still passes (%v) after shutdown began", err)
		}
	}
	if out, err := check("--live"); err != nil {
		t.Fatalf("healthcheck --live while draining: %q, %v", out, err)
	}
	close(in.hurry)
	if err := <-in.done; err != nil {
		t.Fatalf("kycgate exited with error: %v", err)
	}
	if _, err := check("--live"); err == nil {
		t.Fatal("healthcheck --live passes with no server")
	}
}

// TestProbeURL: a wildcard listener is probed on loopback; a port the
// probe cannot know is refused.
func TestProbeURL(t *testing.T) {
	t.Parallel()
	for addr, want := range map[string]string{
		"0.0.0.0:8080":   "http://127.0.0.1:8080/readyz",
		":8080":          "http://127.0.0.1:8080/readyz",
		"[::]:8080":      "http://[::1]:8080/readyz",
		"127.0.0.1:9000": "http://127.0.0.1:9000/readyz",
		"10.0.0.5:8080":  "http://10.0.0.5:8080/readyz",
	} {
		if got, err := probeURL(addr, "/readyz"); err != nil || got != want {
			t.Errorf("probeURL(%q) = %q, %v; want %q", addr, got, err, want)
		}
	}
	for _, addr := range []string{"127.0.0.1:0", "8080", ""} {
		if got, err := probeURL(addr, "/readyz"); err == nil {
			t.Errorf("probeURL(%q) = %q, want an error", addr, got)
		}
	}
}
