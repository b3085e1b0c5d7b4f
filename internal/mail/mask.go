package mail

import (
	"net/mail"
	"regexp"
	"strings"
	"unicode/utf8"
)

// MaskAddress hides the local part of an email address for logs and errors:
// "john@example.com" becomes "j***@example.com". The domain stays, since it
// is what matters when diagnosing delivery. One-letter local parts and
// strings without an @ are masked entirely.
func MaskAddress(addr string) string {
	addr = strings.TrimSpace(addr)
	if addr == "" {
		return ""
	}
	// Accept "Name <addr>" too, and never echo the display name.
	if a, err := mail.ParseAddress(addr); err == nil {
		addr = a.Address
	}
	at := strings.LastIndexByte(addr, '@')
	if at < 0 {
		return "***"
	}
	local, domain := addr[:at], addr[at+1:]
	r, size := utf8.DecodeRuneInString(local)
	if size == len(local) || r == utf8.RuneError || r == '"' {
		return "***@" + domain
	}
	return string(r) + "***@" + domain
}

// redact removes the recipient address and the code from text that came from
// somewhere else (a server reply, a library error), before it reaches an
// error message or a log line.
func redact(text, to, code string) string {
	if to != "" {
		text = regexp.MustCompile(`(?i)`+regexp.QuoteMeta(to)).ReplaceAllLiteralString(text, MaskAddress(to))
	}
	if code != "" {
		text = strings.ReplaceAll(text, code, "******")
	}
	return text
}
