package mail

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/kycgate/kycgate/internal/kyc"
)

var sixDigits = regexp.MustCompile(`\d{6,}`)

func TestRenderDefault(t *testing.T) {
	m, err := Render(Config{}, kyc.CodeMail{To: "User@Example.com", Code: "093174"})
	if err != nil {
		t.Fatal(err)
	}
	if m.To != "User@Example.com" || m.Subject != DefaultSubject {
		t.Errorf("To/Subject = %q/%q", m.To, m.Subject)
	}
	if got := sixDigits.FindAllString(m.Text, -1); len(got) != 1 || got[0] != "093174" {
		t.Errorf("text numbers of 6+ digits = %q, want just the code", got)
	}
	for _, want := range []string{"10 minutes", DefaultProduct} {
		if !strings.Contains(m.Text, want) {
			t.Errorf("text lacks %q:\n%s", want, m.Text)
		}
	}
	if !strings.Contains(m.HTML, ">093174<") || !strings.Contains(m.HTML, "10 minutes") {
		t.Errorf("html lacks the code or the expiry:\n%s", m.HTML)
	}
	// No tracking pixels, remote fonts or scripts: nothing to fetch.
	lower := strings.ToLower(m.HTML)
	for _, bad := range []string{"<img", "src=", "http:", "https:", "<script", "<link", "url("} {
		if strings.Contains(lower, bad) {
			t.Errorf("html contains %q", bad)
		}
	}
}

func TestRenderConfigured(t *testing.T) {
	m, err := Render(Config{Subject: "Code de vérification", Product: "Acme <Pay>"}, kyc.CodeMail{To: "a@b.co", Code: "111111"})
	if err != nil {
		t.Fatal(err)
	}
	if m.Subject != "Code de vérification" {
		t.Errorf("subject %q", m.Subject)
	}
	if !strings.Contains(m.Text, "Acme <Pay>") {
		t.Errorf("text lacks the product:\n%s", m.Text)
	}
	if !strings.Contains(m.HTML, "Acme &lt;Pay&gt;") || strings.Contains(m.HTML, "<Pay>") {
		t.Errorf("html does not escape the product:\n%s", m.HTML)
	}
}

func TestRenderRejectsBadInput(t *testing.T) {
	for _, tc := range []struct {
		to, code string
		want     error
	}{
		{"not-an-address", "123456", ErrInvalidAddress},
		{"", "123456", ErrInvalidAddress},
		{"a@example.com\r\nBcc: x@example.com", "123456", ErrInvalidAddress},
		{"a@example.com", "12345", ErrInvalidCode},
		{"a@example.com", "1234567", ErrInvalidCode},
		{"a@example.com", "12345a", ErrInvalidCode},
		{"a@example.com", "١٢٣٤٥٦", ErrInvalidCode},
	} {
		_, err := Render(Config{}, kyc.CodeMail{To: tc.to, Code: tc.code})
		if !errors.Is(err, tc.want) {
			t.Errorf("Render(%q, %q) = %v, want %v", tc.to, tc.code, err, tc.want)
		}
	}
	if _, err := Render(Config{Subject: "a\nBcc: x"}, kyc.CodeMail{To: "a@example.com", Code: "123456"}); err == nil {
		t.Error("subject with a line break accepted")
	}
}

func TestRenderRejectsProductWithSixDigits(t *testing.T) {
	if _, err := NewMailboxWithConfig(Config{Product: "Shop 202405"}); err == nil {
		t.Fatal("product with a 6-digit number accepted")
	}
}

func TestTemplateDir(t *testing.T) {
	write := func(t *testing.T, files map[string]string) string {
		dir := t.TempDir()
		for name, body := range files {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		return dir
	}
	t.Run("overrides both", func(t *testing.T) {
		dir := write(t, map[string]string{
			"code.txt":  "Code: {{.Code}} ({{.ExpiresIn}}) for {{.Product}}",
			"code.html": "<p>{{.Code}} — {{.Product}}</p>",
		})
		m, err := Render(Config{TemplateDir: dir, Product: "X"}, kyc.CodeMail{To: "a@example.com", Code: "246810"})
		if err != nil {
			t.Fatal(err)
		}
		if m.Text != "Code: 246810 (10 minutes) for X" || m.HTML != "<p>246810 — X</p>" {
			t.Fatalf("got %q / %q", m.Text, m.HTML)
		}
	})
	t.Run("overrides text only", func(t *testing.T) {
		dir := write(t, map[string]string{"code.txt": "{{.Code}}"})
		m, err := Render(Config{TemplateDir: dir}, kyc.CodeMail{To: "a@example.com", Code: "246810"})
		if err != nil {
			t.Fatal(err)
		}
		if m.Text != "246810" || !strings.Contains(m.HTML, "<!DOCTYPE html>") {
			t.Fatalf("got %q / html from disk?", m.Text)
		}
	})
	bad := map[string]map[string]string{
		"empty dir":          {},
		"parse error":        {"code.txt": "{{.Code"},
		"unknown field":      {"code.txt": "{{.Code}} {{.Nope}}"},
		"other 6-digit":      {"code.txt": "{{.Code}} ref 20240101"},
		"code twice":         {"code.txt": "{{.Code}} again {{.Code}}"},
		"no code":            {"code.txt": "hello"},
		"html without code":  {"code.html": "<p>hello</p>"},
		"html unknown field": {"code.html": "{{.Code}}{{.To}}"},
	}
	for name, files := range bad {
		t.Run(name, func(t *testing.T) {
			dir := write(t, files)
			if _, err := NewSMTP(Config{URL: "smtp://127.0.0.1:1", From: "k <k@example.com>", TemplateDir: dir}); err == nil {
				t.Fatal("NewSMTP accepted bad templates")
			}
			if _, err := NewMailboxWithConfig(Config{TemplateDir: dir}); err == nil {
				t.Fatal("NewMailboxWithConfig accepted bad templates")
			}
		})
	}
	t.Run("missing dir", func(t *testing.T) {
		if _, err := NewMailboxWithConfig(Config{TemplateDir: filepath.Join(t.TempDir(), "nope")}); err == nil {
			t.Fatal("missing dir accepted")
		}
	})
	t.Run("file not dir", func(t *testing.T) {
		dir := write(t, map[string]string{"code.txt": "{{.Code}}"})
		if _, err := NewMailboxWithConfig(Config{TemplateDir: filepath.Join(dir, "code.txt")}); err == nil {
			t.Fatal("file accepted as template dir")
		}
	})
}

func TestRenderAddressForms(t *testing.T) {
	for to, ok := range map[string]bool{
		"a@example.com":                true,
		"  a@example.com ":             true,
		`"john doe"@example.com`:       true,
		"<a@example.com>":              false,
		"John <a@example.com>":         false,
		"a@example.com, b@example.com": false,
		"a@":                           false,
		"@example.com":                 false,
	} {
		m, err := Render(Config{}, kyc.CodeMail{To: to, Code: "123456"})
		if (err == nil) != ok {
			t.Errorf("Render(%q): err=%v, want ok=%v", to, err, ok)
		}
		if ok && m.To != strings.TrimSpace(to) {
			t.Errorf("Render(%q).To = %q", to, m.To)
		}
	}
}
