package kyc

import (
	"net/mail"
	"strings"
)

// NormalizeEmail trims ASCII whitespace and lowercases an address, then
// checks it is a bare addr-spec of at most 254 characters (docs/api.md §1).
// Any non-ASCII byte is refused before lowercasing, so no Unicode folding
// (U+212A KELVIN SIGN to "k") or Unicode space trimming can make a visually
// different input equal to another address.
func NormalizeEmail(raw string) (string, bool) {
	e := strings.Trim(raw, " \t\r\n")
	for i := 0; i < len(e); i++ {
		if e[i] >= 0x80 {
			return "", false
		}
	}
	e = strings.ToLower(e) // ASCII only here: no Unicode folding
	if e == "" || len(e) > 254 {
		return "", false
	}
	a, err := mail.ParseAddress(e)
	// ParseAddress also accepts "Name <addr>" and comments; only a bare
	// addr-spec that survives unchanged is an email we will send to.
	if err != nil || a.Name != "" || a.Address != e {
		return "", false
	}
	at := strings.LastIndexByte(e, '@')
	local, domain := e[:at], e[at+1:]
	if len(local) > 64 || strings.HasPrefix(domain, "[") || !strings.Contains(domain, ".") ||
		strings.HasSuffix(domain, ".") {
		return "", false
	}
	for _, r := range e {
		if r < 0x21 || r > 0x7e { // printable ASCII only: no IDN/SMTPUTF8 surprises
			if r != ' ' || !strings.HasPrefix(local, `"`) {
				return "", false
			}
		}
	}
	return e, true
}

// maskEmail keeps enough of an address for an operator to correlate logs
// without the logs holding full addresses.
func maskEmail(e string) string {
	at := strings.LastIndexByte(e, '@')
	if at < 1 {
		return "***"
	}
	return e[:1] + "***" + e[at:]
}
