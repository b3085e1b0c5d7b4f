package mailtest_test

import (
	"context"
	"errors"
	"net/smtp"
	"strings"
	"testing"

	"github.com/kycgate/kycgate/internal/mail/mailtest"
)

func send(t *testing.T, srv *mailtest.Server, auth smtp.Auth, to string, raw string) error {
	t.Helper()
	return smtp.SendMail(srv.Addr(), auth, "sender@example.com", []string{to}, []byte(strings.ReplaceAll(raw, "\n", "\r\n")))
}

const qpAlternative = `From: sender@example.com
To: user@example.com
Subject: =?UTF-8?q?Votre_code_v=C3=A9rification?=
MIME-Version: 1.0
Content-Type: multipart/alternative; boundary=BOUND

--BOUND
Content-Type: text/plain; charset=UTF-8
Content-Transfer-Encoding: quoted-printable

Code:=20
    987654
expires in 10 minutes, a very long line that go-mail would wrap with a soft =
break like this one.
--BOUND
Content-Type: text/html; charset=UTF-8
Content-Transfer-Encoding: base64

PHA+OTg3NjU0PC9wPg==
--BOUND--
`

func TestServerParsesMIME(t *testing.T) {
	ctx := context.Background()
	srv := mailtest.NewServer(t)
	if err := send(t, srv, nil, "user@example.com", qpAlternative); err != nil {
		t.Fatal(err)
	}
	m, err := srv.WaitFor(ctx, "USER@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if m.Subject != "Votre code vérification" {
		t.Errorf("subject %q", m.Subject)
	}
	if !strings.Contains(m.Text, "soft break like this") || strings.Contains(m.Text, "=\r\n") {
		t.Errorf("text not decoded: %q", m.Text)
	}
	if m.HTML != "<p>987654</p>" {
		t.Errorf("html %q", m.HTML)
	}
	if code, err := m.Code(); err != nil || code != "987654" {
		t.Errorf("Code() = %q, %v", code, err)
	}
	if m.From != "sender@example.com" || len(m.To) != 1 || m.To[0] != "user@example.com" {
		t.Errorf("envelope %q %q", m.From, m.To)
	}
	if m.TopType != "multipart/alternative" || strings.Join(m.PartTypes, ",") != "text/plain,text/html" {
		t.Errorf("structure %s %v", m.TopType, m.PartTypes)
	}
	if len(m.Raw) == 0 || m.TLS {
		t.Errorf("raw %d bytes, TLS %v", len(m.Raw), m.TLS)
	}
}

func TestServerParsesNestedAndSinglePart(t *testing.T) {
	ctx := context.Background()
	srv := mailtest.NewServer(t)
	nested := `Subject: nested
Content-Type: multipart/mixed; boundary=OUT

--OUT
Content-Type: multipart/alternative; boundary=IN

--IN
Content-Type: text/plain

plain 123456
--IN
Content-Type: text/html

<b>123456</b>
--IN--
--OUT
Content-Type: application/octet-stream
Content-Transfer-Encoding: base64

AAEC
--OUT--
`
	if err := send(t, srv, nil, "n@example.com", nested); err != nil {
		t.Fatal(err)
	}
	if err := send(t, srv, nil, "s@example.com", "Subject: single\n\nonly text 222333\n"); err != nil {
		t.Fatal(err)
	}
	n, err := srv.WaitFor(ctx, "n@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if n.Text != "plain 123456" || n.HTML != "<b>123456</b>" || len(n.PartTypes) != 3 {
		t.Errorf("nested: %q %q %v", n.Text, n.HTML, n.PartTypes)
	}
	s, err := srv.WaitFor(ctx, "s@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if code, _ := s.Code(); code != "222333" || s.HTML != "" {
		t.Errorf("single: %q %q", s.Text, s.HTML)
	}
	if got := len(srv.Messages()); got != 2 {
		t.Errorf("%d messages", got)
	}
}

func TestMessageCode(t *testing.T) {
	for text, want := range map[string]string{
		"code 123456":                  "123456",
		"123456 is it; 1234567 is not": "123456",
		"12345 and 1234567":            "",
		"":                             "",
		"123456 and 654321":            "",
	} {
		got, err := mailtest.Message{Text: text}.Code()
		if got != want || (err == nil) != (want != "") {
			t.Errorf("Code(%q) = %q, %v; want %q", text, got, err, want)
		}
	}
}

func TestWaitFor(t *testing.T) {
	srv := mailtest.NewServer(t)
	got := make(chan mailtest.Message, 1)
	waiting := make(chan struct{})
	go func() {
		close(waiting)
		m, err := srv.WaitFor(context.Background(), "w@example.com")
		if err != nil {
			t.Error(err)
		}
		got <- m
	}()
	<-waiting
	// Mail for someone else does not wake the waiter with the wrong message.
	if err := send(t, srv, nil, "other@example.com", "Subject: other\n\n111111\n"); err != nil {
		t.Fatal(err)
	}
	if err := send(t, srv, nil, "w@example.com", "Subject: one\n\n222222\n"); err != nil {
		t.Fatal(err)
	}
	if err := send(t, srv, nil, "w@example.com", "Subject: two\n\n333333\n"); err != nil {
		t.Fatal(err)
	}
	if m := <-got; m.Subject != "one" {
		t.Errorf("first WaitFor got %q", m.Subject)
	}
	m, err := srv.WaitFor(context.Background(), "w@example.com")
	if err != nil || m.Subject != "two" {
		t.Errorf("second WaitFor got %q, %v", m.Subject, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := srv.WaitFor(ctx, "w@example.com"); !errors.Is(err, context.Canceled) {
		t.Errorf("third WaitFor: %v, want context.Canceled (both messages taken)", err)
	}
}

func TestServerAuthAndFailures(t *testing.T) {
	srv := mailtest.NewServer(t, mailtest.WithAuth("u", "p"),
		mailtest.WithRejectRecipient(func(a string) bool { return a == "bad@example.com" }))
	if err := send(t, srv, nil, "a@example.com", "Subject: x\n\n123456\n"); err == nil {
		t.Error("accepted mail without AUTH")
	}
	if err := send(t, srv, smtp.PlainAuth("", "u", "wrong", "127.0.0.1"), "a@example.com", "Subject: x\n\n123456\n"); err == nil {
		t.Error("accepted a wrong password")
	}
	auth := smtp.PlainAuth("", "u", "p", "127.0.0.1")
	if err := send(t, srv, auth, "bad@example.com", "Subject: x\n\n123456\n"); err == nil || !strings.Contains(err.Error(), "550") {
		t.Errorf("rejected recipient: %v", err)
	}
	srv.FailNext(1, 452, "Try later")
	if err := send(t, srv, auth, "a@example.com", "Subject: x\n\n123456\n"); err == nil || !strings.Contains(err.Error(), "452") {
		t.Errorf("FailNext: %v", err)
	}
	if err := send(t, srv, auth, "a@example.com", "Subject: x\n\n123456\n"); err != nil {
		t.Fatal(err)
	}
	m, err := srv.WaitFor(context.Background(), "a@example.com")
	if err != nil || m.AuthUser != "u" {
		t.Errorf("AuthUser %q, %v", m.AuthUser, err)
	}
	if srv.DataCommands() != 2 {
		t.Errorf("DataCommands %d, want 2", srv.DataCommands())
	}
}

func TestServerURLs(t *testing.T) {
	plain := mailtest.NewServer(t)
	if !strings.HasPrefix(plain.URL(), "smtp://127.0.0.1:") || plain.RootCAs() != nil {
		t.Errorf("plain: %s", plain.URL())
	}
	tlsSrv := mailtest.NewServer(t, mailtest.WithTLS())
	if !strings.HasPrefix(tlsSrv.URL(), "smtp://127.0.0.1:") || tlsSrv.RootCAs() == nil {
		t.Errorf("starttls: %s", tlsSrv.URL())
	}
	implicit := mailtest.NewServer(t, mailtest.WithImplicitTLS())
	if !strings.HasPrefix(implicit.URL(), "smtps://127.0.0.1:") || implicit.RootCAs() == nil {
		t.Errorf("implicit: %s", implicit.URL())
	}
}

func TestServerRcptFailures(t *testing.T) {
	srv := mailtest.NewServer(t, mailtest.FailNextRcpt(1, 451, "Greylisted"))
	if err := send(t, srv, nil, "a@example.com", "Subject: x\n\n123456\n"); err == nil || !strings.Contains(err.Error(), "451") {
		t.Errorf("FailNextRcpt option: %v", err)
	}
	srv.FailNextRcpt(1, 452, "Too many")
	if err := send(t, srv, nil, "a@example.com", "Subject: x\n\n123456\n"); err == nil || !strings.Contains(err.Error(), "452") {
		t.Errorf("FailNextRcpt method: %v", err)
	}
	if err := send(t, srv, nil, "a@example.com", "Subject: x\n\n123456\n"); err != nil {
		t.Fatal(err)
	}
	if srv.DataCommands() != 1 || len(srv.Messages()) != 1 {
		t.Errorf("data=%d messages=%d, want 1/1: refused recipients send no data", srv.DataCommands(), len(srv.Messages()))
	}
}

func TestServerDataHook(t *testing.T) {
	held := make(chan struct{})
	release := make(chan struct{})
	srv := mailtest.NewServer(t, mailtest.WithDataHook(func(ctx context.Context) error {
		close(held)
		select {
		case <-release:
		case <-ctx.Done():
		}
		return nil
	}))
	done := make(chan error, 1)
	go func() { done <- send(t, srv, nil, "h@example.com", "Subject: held\n\n123456\n") }()
	<-held
	// The whole message is in; its answer waits for the hook.
	if srv.DataCommands() != 1 || len(srv.Messages()) != 0 {
		t.Errorf("while held: data=%d messages=%d, want 1/0", srv.DataCommands(), len(srv.Messages()))
	}
	select {
	case err := <-done:
		t.Fatalf("client got its answer while the hook held it: %v", err)
	default:
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if len(srv.Messages()) != 1 {
		t.Errorf("%d messages after release, want 1", len(srv.Messages()))
	}

	// An error drops the connection unanswered and keeps nothing.
	srv.SetDataHook(func(context.Context) error { return errors.New("crash") })
	if err := send(t, srv, nil, "d@example.com", "Subject: dropped\n\n123456\n"); err == nil {
		t.Error("a dropped connection reported success")
	}
	srv.SetDataHook(nil)
	if err := send(t, srv, nil, "n@example.com", "Subject: normal\n\n123456\n"); err != nil {
		t.Fatal(err)
	}
	if srv.DataCommands() != 3 || len(srv.Messages()) != 2 {
		t.Errorf("data=%d messages=%d, want 3/2", srv.DataCommands(), len(srv.Messages()))
	}
}
