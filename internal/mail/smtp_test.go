package mail

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/mail"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kycgate/kycgate/internal/kyc"
	"github.com/kycgate/kycgate/internal/mail/mailtest"
)

func TestSendCodePlain(t *testing.T) {
	ctx := testContext(t)
	srv := mailtest.NewServer(t)
	s, logs := newTestSMTP(t, srv, "", func(c *Config) { c.Subject = "Ton code kycgate" })

	if err := s.SendCode(ctx, kyc.CodeMail{To: "User@Example.com", Code: "042917"}); err != nil {
		t.Fatalf("SendCode: %v", err)
	}
	m, err := srv.WaitFor(ctx, "user@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if code, err := m.Code(); err != nil || code != "042917" {
		t.Fatalf("Code() = %q, %v", code, err)
	}
	if !strings.Contains(m.HTML, "042917") {
		t.Errorf("html part lacks the code:\n%s", m.HTML)
	}
	if m.Subject != "Ton code kycgate" {
		t.Errorf("subject %q", m.Subject)
	}
	if m.TLS || m.AuthUser != "" {
		t.Errorf("TLS=%v auth=%q on a plain server", m.TLS, m.AuthUser)
	}
	if m.From != "no-reply@kycgate.test" || len(m.To) != 1 || m.To[0] != "User@Example.com" {
		t.Errorf("envelope %q -> %q", m.From, m.To)
	}
	if m.TopType != "multipart/alternative" || strings.Join(m.PartTypes, ",") != "text/plain,text/html" {
		t.Errorf("structure %s %v, want multipart/alternative with text then html", m.TopType, m.PartTypes)
	}

	h := m.Header
	if _, err := h.Date(); err != nil {
		t.Errorf("Date: %v", err)
	}
	if id := h.Get("Message-Id"); !strings.HasPrefix(id, "<") || !strings.HasSuffix(id, "@kycgate.test>") {
		t.Errorf("Message-ID %q", id)
	}
	if from, err := mail.ParseAddress(h.Get("From")); err != nil || from.Name != "kycgate" || from.Address != "no-reply@kycgate.test" {
		t.Errorf("From %q (%v)", h.Get("From"), err)
	}
	if to, err := mail.ParseAddress(h.Get("To")); err != nil || to.Address != "User@Example.com" {
		t.Errorf("To %q (%v)", h.Get("To"), err)
	}
	if got := h.Get("Auto-Submitted"); got != "auto-generated" {
		t.Errorf("Auto-Submitted %q", got)
	}
	if got := h.Get("Mime-Version"); got != "1.0" {
		t.Errorf("MIME-Version %q", got)
	}
	for _, k := range []string{"User-Agent", "X-Mailer"} {
		if v := h.Get(k); v != "" {
			t.Errorf("%s: %q advertises the library", k, v)
		}
	}
	if srv.Sessions() != 1 || srv.DataCommands() != 1 {
		t.Errorf("sessions=%d data=%d, want 1/1", srv.Sessions(), srv.DataCommands())
	}
	out := logs.String()
	if strings.Contains(out, "042917") || strings.Contains(strings.ToLower(out), "user@example.com") {
		t.Errorf("log leaks the code or the address:\n%s", out)
	}
	if !strings.Contains(out, "U***@Example.com") || !strings.Contains(out, "code mail delivered") {
		t.Errorf("log lacks the masked delivery line:\n%s", out)
	}
}

func TestSendCodeAuth(t *testing.T) {
	ctx := testContext(t)
	srv := mailtest.NewServer(t, mailtest.WithAuth("kyc@relay", "p@ss:w rd"))
	u := "smtp://" + url.UserPassword("kyc@relay", "p@ss:w rd").String() + "@" + srv.Addr()
	s, logs := newTestSMTP(t, srv, u)

	if err := s.SendCode(ctx, kyc.CodeMail{To: "a@example.com", Code: "123456"}); err != nil {
		t.Fatalf("SendCode: %v", err)
	}
	m, err := srv.WaitFor(ctx, "a@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if m.AuthUser != "kyc@relay" {
		t.Errorf("AuthUser %q", m.AuthUser)
	}
	if strings.Contains(logs.String(), "p@ss:w rd") {
		t.Error("log leaks the password")
	}
}

func TestSendCodeAuthFailures(t *testing.T) {
	ctx := testContext(t)
	t.Run("wrong password", func(t *testing.T) {
		srv := mailtest.NewServer(t, mailtest.WithAuth("kyc", "right"))
		s, _ := newTestSMTP(t, srv, "smtp://kyc:wrong-secret@"+srv.Addr())
		err := s.SendCode(ctx, kyc.CodeMail{To: "a@example.com", Code: "123456"})
		de := mustDeliveryError(t, err)
		if de.Temporary || de.Attempts != 1 || de.Code != 535 {
			t.Errorf("got %+v, want permanent 535 after 1 attempt", de)
		}
		if strings.Contains(err.Error(), "wrong-secret") {
			t.Errorf("error leaks the password: %v", err)
		}
	})
	t.Run("no credentials", func(t *testing.T) {
		srv := mailtest.NewServer(t, mailtest.WithAuth("kyc", "right"))
		s, _ := newTestSMTP(t, srv, "")
		de := mustDeliveryError(t, s.SendCode(ctx, kyc.CodeMail{To: "a@example.com", Code: "123456"}))
		if de.Temporary || de.Attempts != 1 || de.Code/100 != 5 {
			t.Errorf("got %+v, want a permanent 5xx after 1 attempt", de)
		}
	})
	t.Run("server without AUTH", func(t *testing.T) {
		srv := mailtest.NewServer(t)
		s, _ := newTestSMTP(t, srv, "smtp://kyc:pw@"+srv.Addr())
		de := mustDeliveryError(t, s.SendCode(ctx, kyc.CodeMail{To: "a@example.com", Code: "123456"}))
		if de.Temporary || de.Attempts != 1 {
			t.Errorf("got %+v, want permanent after 1 attempt", de)
		}
		if srv.DataCommands() != 0 {
			t.Error("message sent without the configured authentication")
		}
	})
}

func TestSendCodeTLS(t *testing.T) {
	ctx := testContext(t)
	cases := []struct {
		name   string
		opts   []mailtest.Option
		suffix string // appended to the server URL
		user   bool
	}{
		{"starttls opportunistic", []mailtest.Option{mailtest.WithTLS()}, "", false},
		{"starttls required", []mailtest.Option{mailtest.WithTLS()}, "?starttls=required", false},
		{"starttls required with auth", []mailtest.Option{mailtest.WithTLS(), mailtest.WithAuth("u", "p")}, "?starttls=required", true},
		{"implicit tls", []mailtest.Option{mailtest.WithImplicitTLS()}, "", false},
		{"implicit tls with auth", []mailtest.Option{mailtest.WithImplicitTLS(), mailtest.WithAuth("u", "p")}, "", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := mailtest.NewServer(t, tc.opts...)
			u := srv.URL() + tc.suffix
			if tc.user {
				u = strings.Replace(u, "://", "://u:p@", 1)
			}
			s, _ := newTestSMTP(t, srv, u)
			if err := s.SendCode(ctx, kyc.CodeMail{To: "tls@example.com", Code: "654321"}); err != nil {
				t.Fatalf("SendCode: %v", err)
			}
			m, err := srv.WaitFor(ctx, "tls@example.com")
			if err != nil {
				t.Fatal(err)
			}
			if !m.TLS {
				t.Error("message travelled in clear text")
			}
			if tc.user && m.AuthUser != "u" {
				t.Errorf("AuthUser %q", m.AuthUser)
			}
			if code, _ := m.Code(); code != "654321" {
				t.Errorf("code %q", code)
			}
		})
	}
}

func TestSendCodeTLSRefusals(t *testing.T) {
	ctx := testContext(t)
	t.Run("starttls required but not offered", func(t *testing.T) {
		srv := mailtest.NewServer(t)
		s, _ := newTestSMTP(t, srv, srv.URL()+"?starttls=required")
		de := mustDeliveryError(t, s.SendCode(ctx, kyc.CodeMail{To: "a@example.com", Code: "123456"}))
		if de.Temporary || de.Attempts != 1 || !strings.Contains(de.Error(), "STARTTLS") {
			t.Errorf("got %v (%+v), want permanent STARTTLS failure after 1 attempt", de, de)
		}
		if srv.DataCommands() != 0 || len(srv.Messages()) != 0 {
			t.Error("message delivered in clear text")
		}
	})
	for _, tc := range []struct {
		name   string
		opt    mailtest.Option
		suffix string
	}{
		{"untrusted certificate, opportunistic", mailtest.WithTLS(), ""},
		{"untrusted certificate, required", mailtest.WithTLS(), "?starttls=required"},
		{"untrusted certificate, implicit", mailtest.WithImplicitTLS(), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := mailtest.NewServer(t, tc.opt)
			// No RootCAs: the self-signed certificate must be refused, and
			// an offered STARTTLS that fails must not fall back to plain.
			s, _ := newTestSMTP(t, srv, srv.URL()+tc.suffix, func(c *Config) { c.TLSConfig = nil })
			de := mustDeliveryError(t, s.SendCode(ctx, kyc.CodeMail{To: "a@example.com", Code: "123456"}))
			if de.Temporary || de.Attempts != 1 {
				t.Errorf("got %v, want permanent after 1 attempt", de)
			}
			if len(srv.Messages()) != 0 {
				t.Error("message delivered despite the bad certificate")
			}
		})
	}
	t.Run("smtps to a plain server", func(t *testing.T) {
		srv := mailtest.NewServer(t)
		s, _ := newTestSMTP(t, srv, "smtps://"+srv.Addr())
		de := mustDeliveryError(t, s.SendCode(ctx, kyc.CodeMail{To: "a@example.com", Code: "123456"}))
		if de.Attempts != 1 || de.Temporary {
			t.Errorf("got %v, want permanent after 1 attempt", de)
		}
	})
}

func TestSendCodeRetriesTransient(t *testing.T) {
	ctx := testContext(t)
	srv := mailtest.NewServer(t, mailtest.FailNext(2, 451, "Try again later"))
	s, logs := newTestSMTP(t, srv, "")
	if err := s.SendCode(ctx, kyc.CodeMail{To: "retry@example.com", Code: "111222"}); err != nil {
		t.Fatalf("SendCode: %v", err)
	}
	if n := srv.DataCommands(); n != 3 {
		t.Errorf("DATA commands = %d, want 3 attempts", n)
	}
	m, err := srv.WaitFor(ctx, "retry@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if code, _ := m.Code(); code != "111222" {
		t.Errorf("code %q", code)
	}
	if len(srv.Messages()) != 1 {
		t.Errorf("%d messages stored, want 1", len(srv.Messages()))
	}
	if got := strings.Count(logs.String(), "retrying"); got != 2 {
		t.Errorf("%d retry log lines, want 2:\n%s", got, logs.String())
	}
}

func TestSendCodeGivesUpAfterThreeTransientFailures(t *testing.T) {
	ctx := testContext(t)
	srv := mailtest.NewServer(t, mailtest.FailNext(3, 451, "Greylisted"))
	s, _ := newTestSMTP(t, srv, "")
	de := mustDeliveryError(t, s.SendCode(ctx, kyc.CodeMail{To: "grey@example.com", Code: "111222"}))
	if !de.Temporary || de.Attempts != 3 || de.Code != 451 {
		t.Errorf("got %+v, want transient 451 after 3 attempts", de)
	}
	if n := srv.DataCommands(); n != 3 {
		t.Errorf("DATA commands = %d, want 3", n)
	}
}

func TestSendCodePermanentRejection(t *testing.T) {
	ctx := testContext(t)
	srv := mailtest.NewServer(t, mailtest.FailNext(1, 550, "Mailbox unavailable perm@example.com"))
	s, _ := newTestSMTP(t, srv, "")
	err := s.SendCode(ctx, kyc.CodeMail{To: "perm@example.com", Code: "333444"})
	de := mustDeliveryError(t, err)
	if de.Temporary || de.Attempts != 1 || de.Code != 550 {
		t.Errorf("got %+v, want permanent 550 after 1 attempt", de)
	}
	if n := srv.DataCommands(); n != 1 {
		t.Errorf("DATA commands = %d, want 1", n)
	}
	msg := err.Error()
	if strings.Contains(msg, "perm@example.com") || strings.Contains(msg, "333444") {
		t.Errorf("error leaks the address or code: %s", msg)
	}
	for _, want := range []string{"p***@example.com", "permanent", "550", "1 attempt"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q lacks %q", msg, want)
		}
	}
}

func TestSendCodeRejectedRecipient(t *testing.T) {
	ctx := testContext(t)
	srv := mailtest.NewServer(t, mailtest.WithRejectRecipient(func(a string) bool { return strings.HasPrefix(a, "nobody@") }))
	s, logs := newTestSMTP(t, srv, "")
	err := s.SendCode(ctx, kyc.CodeMail{To: "nobody@example.com", Code: "555666"})
	de := mustDeliveryError(t, err)
	if de.Temporary || de.Attempts != 1 || de.Code != 550 {
		t.Errorf("got %+v, want permanent 550 after 1 attempt", de)
	}
	if srv.DataCommands() != 0 {
		t.Error("DATA sent after a rejected recipient")
	}
	for _, text := range []string{err.Error(), logs.String()} {
		if strings.Contains(text, "nobody@example.com") || strings.Contains(text, "555666") {
			t.Errorf("leak: %s", text)
		}
	}
	// Other recipients still go through.
	if err := s.SendCode(ctx, kyc.CodeMail{To: "somebody@example.com", Code: "555666"}); err != nil {
		t.Fatal(err)
	}
}

func TestSendCodeConnectionRefusedIsRetried(t *testing.T) {
	ctx := testContext(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	logs := newLogBuffer()
	s, err := NewSMTP(Config{URL: "smtp://" + addr, From: testFrom, Logger: slog.New(logs)})
	if err != nil {
		t.Fatal(err)
	}
	s.backoff = fastBackoff
	de := mustDeliveryError(t, s.SendCode(ctx, kyc.CodeMail{To: "a@example.com", Code: "123456"}))
	if !de.Temporary || de.Attempts != 3 || de.Code != 0 {
		t.Errorf("got %+v, want transient after 3 attempts", de)
	}
}

func TestSendCodeAttemptTimeout(t *testing.T) {
	ctx := testContext(t)
	addr, accepted := silentServer(t)
	s, err := NewSMTP(Config{URL: "smtp://" + addr, From: testFrom, Timeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	s.backoff = fastBackoff
	de := mustDeliveryError(t, s.SendCode(ctx, kyc.CodeMail{To: "a@example.com", Code: "123456"}))
	if !de.Temporary || de.Attempts != 3 || !strings.Contains(de.Error(), "timed out") {
		t.Errorf("got %v, want transient timeout after 3 attempts", de)
	}
	if errors.Is(de, context.DeadlineExceeded) {
		t.Error("an attempt timeout must not look like the caller's deadline")
	}
	// All three connections were made before SendCode returned; the accept
	// loop may still be catching up, so receive rather than count.
	for range 3 {
		<-accepted
	}
	if n := len(accepted); n != 0 {
		t.Errorf("%d connections beyond the 3 attempts", n)
	}
}

func TestSendCodeContextCancelledDuringSession(t *testing.T) {
	addr, accepted := silentServer(t)
	s, err := NewSMTP(Config{URL: "smtp://" + addr, From: testFrom, Timeout: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- s.SendCode(ctx, kyc.CodeMail{To: "a@example.com", Code: "123456"}) }()
	<-accepted // the client now waits for a greeting that never comes
	cancel()
	err = <-done // with an hour's timeout, only the cancellation can end this
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	if de := mustDeliveryError(t, err); de.Attempts != 1 {
		t.Errorf("attempts %d, want 1", de.Attempts)
	}
}

func TestSendCodeContextCancelledWhileWaitingToRetry(t *testing.T) {
	srv := mailtest.NewServer(t, mailtest.FailNext(3, 421, "Busy"))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s, logs := newTestSMTP(t, srv, "")
	s.backoff = []time.Duration{time.Hour, time.Hour}
	logs.onRecord = func(r slog.Record) {
		if strings.Contains(r.Message, "retrying") {
			cancel()
		}
	}
	err := s.SendCode(ctx, kyc.CodeMail{To: "a@example.com", Code: "123456"})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	if de := mustDeliveryError(t, err); de.Attempts != 1 || de.Code != 421 {
		t.Errorf("got %+v, want 1 attempt ending in 421", de)
	}
	if srv.DataCommands() != 1 {
		t.Errorf("DATA commands %d, want 1", srv.DataCommands())
	}
}

func TestSendCodeContextAlreadyDone(t *testing.T) {
	srv := mailtest.NewServer(t)
	s, _ := newTestSMTP(t, srv, "")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.SendCode(ctx, kyc.CodeMail{To: "a@example.com", Code: "123456"}); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	if srv.Sessions() != 0 {
		t.Error("connected despite a cancelled context")
	}
}

func TestSendCodeBadInputDoesNotConnect(t *testing.T) {
	ctx := testContext(t)
	srv := mailtest.NewServer(t)
	s, _ := newTestSMTP(t, srv, "")
	if err := s.SendCode(ctx, kyc.CodeMail{To: "not an address", Code: "123456"}); !errors.Is(err, ErrInvalidAddress) {
		t.Errorf("got %v, want ErrInvalidAddress", err)
	}
	err := s.SendCode(ctx, kyc.CodeMail{To: "a@example.com", Code: "98765"})
	if !errors.Is(err, ErrInvalidCode) || strings.Contains(err.Error(), "98765") {
		t.Errorf("got %v, want ErrInvalidCode without the value", err)
	}
	if srv.Sessions() != 0 {
		t.Error("connected for invalid input")
	}
}

func TestSendCodeAfterClose(t *testing.T) {
	srv := mailtest.NewServer(t)
	s, _ := newTestSMTP(t, srv, "")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := s.SendCode(testContext(t), kyc.CodeMail{To: "a@example.com", Code: "123456"}); !errors.Is(err, ErrClosed) {
		t.Fatalf("got %v, want ErrClosed", err)
	}
}

func TestSendCodeConcurrent(t *testing.T) {
	ctx := testContext(t)
	srv := mailtest.NewServer(t)
	s, _ := newTestSMTP(t, srv, "")
	const n = 24
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- s.SendCode(ctx, kyc.CodeMail{To: fmt.Sprintf("user%d@example.com", i), Code: fmt.Sprintf("%06d", 100000+i)})
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	for i := range n {
		m, err := srv.WaitFor(ctx, fmt.Sprintf("user%d@example.com", i))
		if err != nil {
			t.Fatal(err)
		}
		if code, _ := m.Code(); code != fmt.Sprintf("%06d", 100000+i) {
			t.Errorf("user%d got code %q", i, code)
		}
	}
}

func TestNewSMTPConfigErrors(t *testing.T) {
	for name, cfg := range map[string]Config{
		"no url":        {From: testFrom},
		"bad scheme":    {URL: "http://localhost:25", From: testFrom},
		"no from":       {URL: "smtp://localhost:25"},
		"bad from":      {URL: "smtp://localhost:25", From: "not an address"},
		"negative time": {URL: "smtp://localhost:25", From: testFrom, Timeout: -time.Second},
		"subject crlf":  {URL: "smtp://localhost:25", From: testFrom, Subject: "x\r\nBcc: y@z"},
	} {
		if _, err := NewSMTP(cfg); err == nil {
			t.Errorf("%s: NewSMTP accepted %+v", name, cfg)
		}
	}
	s, err := NewSMTP(Config{URL: "smtps://u:topsecret@mail.example.com", From: testFrom})
	if err != nil {
		t.Fatal(err)
	}
	if ep := s.Endpoint(); ep.Port != 465 || ep.TLS != ImplicitTLS || strings.Contains(ep.String(), "topsecret") {
		t.Errorf("endpoint %v", ep)
	}
}

func TestDefaultBackoff(t *testing.T) {
	// Three attempts in all, the waits short enough for an API call.
	if len(defaultBackoff) != 2 || defaultBackoff[0] != 200*time.Millisecond || defaultBackoff[1] != 800*time.Millisecond {
		t.Fatalf("defaultBackoff = %v", defaultBackoff)
	}
}

func mustDeliveryError(t *testing.T, err error) *DeliveryError {
	t.Helper()
	var de *DeliveryError
	if !errors.As(err, &de) {
		t.Fatalf("got %v (%T), want a *DeliveryError", err, err)
	}
	return de
}
