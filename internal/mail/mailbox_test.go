package mail

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/kycgate/kycgate/internal/kyc"
)

var _ kyc.Mailer = NewMailbox()

func TestMailboxStoresNewestFirst(t *testing.T) {
	mb := NewMailbox()
	ctx := context.Background()
	if got := mb.Messages(); len(got) != 0 {
		t.Fatalf("new mailbox holds %d messages", len(got))
	}
	for i, to := range []string{"a@example.com", "b@example.com", "c@example.com"} {
		if err := mb.SendCode(ctx, kyc.CodeMail{To: to, Code: fmt.Sprintf("10000%d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	msgs := mb.Messages()
	if len(msgs) != 3 {
		t.Fatalf("%d messages, want 3", len(msgs))
	}
	for i, want := range []string{"c@example.com", "b@example.com", "a@example.com"} {
		if msgs[i].To != want {
			t.Errorf("msgs[%d].To = %q, want %q", i, msgs[i].To, want)
		}
	}
	m := msgs[0]
	if m.ID == "" || m.At.IsZero() || m.Subject != DefaultSubject || !strings.Contains(m.Text, "100002") || !strings.Contains(m.HTML, "100002") {
		t.Errorf("incomplete message %+v", m)
	}
	if msgs[0].ID == msgs[1].ID {
		t.Error("IDs repeat")
	}
	// Messages is a copy.
	msgs[0].To = "changed"
	if mb.Messages()[0].To != "c@example.com" {
		t.Error("Messages shares its slice")
	}
}

func TestMailboxCap(t *testing.T) {
	mb := NewMailbox()
	ctx := context.Background()
	total := MailboxCapacity + 25
	for i := range total {
		if err := mb.SendCode(ctx, kyc.CodeMail{To: fmt.Sprintf("u%d@example.com", i), Code: fmt.Sprintf("%06d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	msgs := mb.Messages()
	if len(msgs) != MailboxCapacity || MailboxCapacity != 200 {
		t.Fatalf("%d messages kept, want 200", len(msgs))
	}
	if msgs[0].To != fmt.Sprintf("u%d@example.com", total-1) || msgs[len(msgs)-1].To != "u25@example.com" {
		t.Errorf("kept %s .. %s, want the newest 200", msgs[0].To, msgs[len(msgs)-1].To)
	}
}

func TestMailboxRejects(t *testing.T) {
	mb := NewMailbox()
	if err := mb.SendCode(context.Background(), kyc.CodeMail{To: "bad", Code: "123456"}); !errors.Is(err, ErrInvalidAddress) {
		t.Errorf("got %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := mb.SendCode(ctx, kyc.CodeMail{To: "a@example.com", Code: "123456"}); !errors.Is(err, context.Canceled) {
		t.Errorf("got %v", err)
	}
	if len(mb.Messages()) != 0 {
		t.Error("stored a rejected message")
	}
}

func TestMailboxConfigured(t *testing.T) {
	mb, err := NewMailboxWithConfig(Config{Subject: "Dev code", Product: "Acme"})
	if err != nil {
		t.Fatal(err)
	}
	if err := mb.SendCode(context.Background(), kyc.CodeMail{To: "a@example.com", Code: "123456"}); err != nil {
		t.Fatal(err)
	}
	if m := mb.Messages()[0]; m.Subject != "Dev code" || !strings.Contains(m.Text, "Acme") {
		t.Errorf("got %+v", m)
	}
}

func TestMailboxHandler(t *testing.T) {
	mb := NewMailbox()
	ctx := context.Background()
	if err := mb.SendCode(ctx, kyc.CodeMail{To: "first@example.com", Code: "111111"}); err != nil {
		t.Fatal(err)
	}
	// An address that is valid but full of markup must come out escaped.
	evil := `"<script>alert(1)</script>"@example.com`
	if err := mb.SendCode(ctx, kyc.CodeMail{To: evil, Code: "222222"}); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/_dev/mail/", http.StripPrefix("/_dev/mail", mb.Handler()))
	mux.Handle("/_dev/mail", http.StripPrefix("/_dev/mail", mb.Handler()))
	get := func(target string, hdr ...string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodGet, target, nil)
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, req)
		return rec
	}

	t.Run("html list", func(t *testing.T) {
		rec := get("/_dev/mail/")
		body := rec.Body.String()
		if rec.Code != 200 || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/html") {
			t.Fatalf("status %d, type %q", rec.Code, rec.Header().Get("Content-Type"))
		}
		if rec.Header().Get("Cache-Control") != "no-store" {
			t.Error("list is cacheable")
		}
		if strings.Contains(body, "<script>") || !strings.Contains(body, "&lt;script&gt;") {
			t.Error("address not escaped")
		}
		i2, i1 := strings.Index(body, "222222"), strings.Index(body, "111111")
		if i2 < 0 || i1 < 0 || i2 > i1 {
			t.Error("list does not show both texts, newest first")
		}
		newest := mb.Messages()[0]
		if !strings.Contains(body, `href="`+newest.ID+`"`) {
			t.Errorf("no relative link to %s", newest.ID)
		}
	})
	t.Run("html list without trailing slash", func(t *testing.T) {
		rec := get("/_dev/mail")
		newest := mb.Messages()[0]
		if rec.Code != 200 || !strings.Contains(rec.Body.String(), `href="mail/`+newest.ID+`"`) {
			t.Fatalf("status %d, links do not resolve under /_dev/mail/", rec.Code)
		}
	})
	checkJSON := func(t *testing.T, rec *httptest.ResponseRecorder) {
		t.Helper()
		if rec.Code != 200 || rec.Header().Get("Content-Type") != "application/json" {
			t.Fatalf("status %d, type %q", rec.Code, rec.Header().Get("Content-Type"))
		}
		var got []Message
		if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || got[0].To != evil || got[1].To != "first@example.com" || got[0].ID == "" || got[0].At.IsZero() || !strings.Contains(got[1].Text, "111111") {
			t.Fatalf("got %+v", got)
		}
		if strings.Contains(rec.Body.String(), "<script>") {
			t.Error("JSON carries raw markup that a careless viewer could run")
		}
	}
	t.Run("json by query", func(t *testing.T) { checkJSON(t, get("/_dev/mail/?format=json")) })
	t.Run("json by accept", func(t *testing.T) {
		checkJSON(t, get("/_dev/mail/", "Accept", "text/plain;q=0.5, application/json"))
	})
	// ?to= keeps only the mail to one address (any case), so a script
	// reading "the newest code" gets its own user's, not the newest anyone got.
	t.Run("json filtered by to", func(t *testing.T) {
		for _, target := range []string{"/_dev/mail/?format=json&to=first@example.com", "/_dev/mail/?format=json&to=First@Example.COM"} {
			rec := get(target)
			var got []Message
			if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
				t.Fatal(err)
			}
			if rec.Code != 200 || len(got) != 1 || got[0].To != "first@example.com" || !strings.Contains(got[0].Text, "111111") {
				t.Fatalf("%s: status %d, got %+v: want only first@example.com's mail", target, rec.Code, got)
			}
		}
		var none []Message
		if err := json.Unmarshal(get("/_dev/mail/?format=json&to=nobody@example.com").Body.Bytes(), &none); err != nil || none == nil || len(none) != 0 {
			t.Fatalf("no mail to the address: got %v (%v), want []", none, err)
		}
	})
	t.Run("html filtered by to", func(t *testing.T) {
		body := get("/_dev/mail/?to=first@example.com").Body.String()
		if !strings.Contains(body, "111111") || strings.Contains(body, "222222") || !strings.Contains(body, "to first@example.com") {
			t.Fatalf("the list for first@example.com:\n%s", body)
		}
	})
	t.Run("one message", func(t *testing.T) {
		first := mb.Messages()[1]
		rec := get("/_dev/mail/" + first.ID)
		if rec.Code != 200 || rec.Body.String() != first.HTML {
			t.Fatalf("status %d, body differs from the HTML part", rec.Code)
		}
		if !strings.Contains(rec.Header().Get("Content-Security-Policy"), "default-src 'none'") {
			t.Error("no CSP on the message view")
		}
	})
	t.Run("unknown message", func(t *testing.T) {
		if rec := get("/_dev/mail/nope"); rec.Code != 404 {
			t.Fatalf("status %d", rec.Code)
		}
	})
	t.Run("method", func(t *testing.T) {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/_dev/mail/", nil))
		if rec.Code != 405 || rec.Header().Get("Allow") != "GET, HEAD" {
			t.Fatalf("status %d, Allow %q", rec.Code, rec.Header().Get("Allow"))
		}
	})
	t.Run("empty", func(t *testing.T) {
		rec := httptest.NewRecorder()
		NewMailbox().Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/?format=json", nil))
		if strings.TrimSpace(rec.Body.String()) != "[]" {
			t.Fatalf("empty mailbox JSON = %q, want []", rec.Body.String())
		}
	})
}
