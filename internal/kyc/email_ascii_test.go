package kyc_test

// Regression test (security review): NormalizeEmail used to lowercase and
// trim before its "printable ASCII only" check, so non-ASCII input that
// lowercases to ASCII (U+212A KELVIN SIGN -> "k") and Unicode spaces
// (trimmed by TrimSpace) were accepted and silently merged with another
// address.

import (
	"testing"

	"github.com/kycgate/kycgate/internal/kyc"
)

func TestNormalizeEmailRejectsNonASCIIInput(t *testing.T) {
	t.Parallel()
	for _, in := range []string{
		"\u212Aevin@example.com", "\u00a0kevin@example.com", "kevin@example.com\u3000",
		"kevin@example.com\u0085", "\u2028kevin@example.com", "kevin@\u212Aelvin.com", "kevin@example.co\u017F",
		"kevin@example.com\xff", "\xc0kevin@example.com",
	} {
		if got, ok := kyc.NormalizeEmail(in); ok {
			t.Errorf("NormalizeEmail(%q) = %q, accepted: a visually different input is merged with %q", in, got, got)
		}
	}
	// ASCII whitespace is still trimmed and ASCII letters lowercased.
	for in, want := range map[string]string{" \tKevin@Example.COM\r\n": "kevin@example.com", "KELVIN@EXAMPLE.COM": "kelvin@example.com"} {
		if got, ok := kyc.NormalizeEmail(in); !ok || got != want {
			t.Errorf("NormalizeEmail(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
}
