package mail

// Session reuse (pool.go): behaviour tests, and the per-message cost with
// and without reuse against the in-process SMTP server.

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kycgate/kycgate/internal/kyc"
	"github.com/kycgate/kycgate/internal/mail/mailtest"
)

func TestPoolReusesSessions(t *testing.T) {
	ctx := testContext(t)
	srv := mailtest.NewServer(t)
	s, _ := newTestSMTP(t, srv, "")
	for i := range 5 {
		if err := s.SendCode(ctx, kyc.CodeMail{To: fmt.Sprintf("u%d@example.com", i), Code: fmt.Sprintf("%06d", 100000+i)}); err != nil {
			t.Fatal(err)
		}
	}
	if srv.Sessions() != 1 || srv.DataCommands() != 5 || len(srv.Messages()) != 5 {
		t.Fatalf("sessions=%d data=%d messages=%d, want 1/5/5", srv.Sessions(), srv.DataCommands(), len(srv.Messages()))
	}
	for i := range 5 {
		m, err := srv.WaitFor(ctx, fmt.Sprintf("u%d@example.com", i))
		if err != nil {
			t.Fatal(err)
		}
		if code, _ := m.Code(); code != fmt.Sprintf("%06d", 100000+i) {
			t.Errorf("u%d got %q", i, code)
		}
	}
}

// A pooled session whose connection died fails at MAIL FROM; the message
// goes out on a fresh session within the same attempt.
func TestPoolReplacesDeadSession(t *testing.T) {
	ctx := testContext(t)
	srv := mailtest.NewServer(t)
	s, logs := newTestSMTP(t, srv, "")
	if err := s.SendCode(ctx, kyc.CodeMail{To: "a@example.com", Code: "111111"}); err != nil {
		t.Fatal(err)
	}
	p := s.tr.(*poolTransport)
	p.mu.Lock()
	if len(p.idle) != 1 {
		t.Fatalf("%d idle sessions, want 1", len(p.idle))
	}
	_ = p.idle[0].conn.Close()
	p.mu.Unlock()
	if err := s.SendCode(ctx, kyc.CodeMail{To: "b@example.com", Code: "222222"}); err != nil {
		t.Fatal(err)
	}
	if srv.Sessions() != 2 || srv.DataCommands() != 2 {
		t.Errorf("sessions=%d data=%d, want 2/2", srv.Sessions(), srv.DataCommands())
	}
	if m, err := srv.WaitFor(ctx, "b@example.com"); err != nil {
		t.Fatal(err)
	} else if code, _ := m.Code(); code != "222222" {
		t.Errorf("code %q", code)
	}
	if out := logs.String(); !strings.Contains(out, "attempt=1") {
		t.Errorf("the dead session cost a retry:\n%s", out)
	}
}

func TestPoolDropsIdleSessions(t *testing.T) {
	ctx := testContext(t)
	srv := mailtest.NewServer(t)
	s, _ := newTestSMTP(t, srv, "")
	if err := s.SendCode(ctx, kyc.CodeMail{To: "a@example.com", Code: "111111"}); err != nil {
		t.Fatal(err)
	}
	p := s.tr.(*poolTransport)
	p.mu.Lock()
	p.idle[0].used = time.Now().Add(-poolIdleTimeout)
	p.mu.Unlock()
	if err := s.SendCode(ctx, kyc.CodeMail{To: "b@example.com", Code: "222222"}); err != nil {
		t.Fatal(err)
	}
	if srv.Sessions() != 2 {
		t.Errorf("sessions=%d, want 2 (the idle one expired)", srv.Sessions())
	}
}

func TestPoolOff(t *testing.T) {
	ctx := testContext(t)
	srv := mailtest.NewServer(t)
	s, _ := newTestSMTP(t, srv, "", func(c *Config) { c.MaxIdleSessions = -1 })
	for i := range 3 {
		if err := s.SendCode(ctx, kyc.CodeMail{To: fmt.Sprintf("u%d@example.com", i), Code: "123456"}); err != nil {
			t.Fatal(err)
		}
	}
	if srv.Sessions() != 3 {
		t.Errorf("sessions=%d, want one per message", srv.Sessions())
	}
}

func TestPoolCloseEndsIdleSessions(t *testing.T) {
	ctx := testContext(t)
	srv := mailtest.NewServer(t)
	s, _ := newTestSMTP(t, srv, "")
	if err := s.SendCode(ctx, kyc.CodeMail{To: "a@example.com", Code: "111111"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	p := s.tr.(*poolTransport)
	p.mu.Lock()
	n := len(p.idle)
	p.mu.Unlock()
	if n != 0 {
		t.Errorf("%d idle sessions after Close", n)
	}
}

// BenchmarkSendCodeReuse compares one SMTP session per message with
// reused sessions, serially, against the in-process server.
func BenchmarkSendCodeReuse(b *testing.B) {
	for _, c := range []struct {
		name    string
		maxIdle int
	}{{"new-session-per-message", -1}, {"reused-sessions", 0}} {
		b.Run(c.name, func(b *testing.B) {
			ctx := testContext(b)
			srv := mailtest.NewServer(b)
			s, _ := newTestSMTP(b, srv, "", func(cfg *Config) { cfg.MaxIdleSessions = c.maxIdle })
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				i++
				if err := s.SendCode(ctx, kyc.CodeMail{To: fmt.Sprintf("u%d@example.com", i), Code: "123456"}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
