package kyc

import (
	"strings"
	"testing"
)

func TestNormalizeEmail(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"User@Example.COM", "user@example.com"},
		{"  a.b+tag@sub.example.org \n", "a.b+tag@sub.example.org"},
		{"x@y.io", "x@y.io"},
		{"", ""},
		{"plain", ""},
		{"a@b", ""},                                   // no dot in the domain
		{"a@b.", ""},                                  // trailing dot
		{"Name <a@b.co>", ""},                         // display names are not addresses
		{"a@b.co (comment)", ""},                      // nor are comments
		{"a@[127.0.0.1]", ""},                         // domain literals
		{"a b@c.co", ""},                              // unquoted space
		{"josé@example.com", ""},                      // non-ASCII local part
		{"a@exämple.com", ""},                         // IDN without punycode
		{"a@@b.co", ""},                               // two @
		{"a@b.co\x00", ""},                            // NUL
		{strings.Repeat("a", 65) + "@b.co", ""},       // local part > 64
		{"a@" + strings.Repeat("b", 250) + ".co", ""}, // > 254
	} {
		got, ok := NormalizeEmail(tc.in)
		if got != tc.want || ok != (tc.want != "") {
			t.Errorf("NormalizeEmail(%q) = %q, %v; want %q", tc.in, got, ok, tc.want)
		}
	}
}

func TestMaskEmail(t *testing.T) {
	t.Parallel()
	if got := maskEmail("alice@example.com"); got != "a***@example.com" {
		t.Fatalf("maskEmail = %q", got)
	}
	if got := maskEmail("x"); got != "***" {
		t.Fatalf("maskEmail = %q", got)
	}
}

func TestRandomCode(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	var digits [10]int
	for range 5000 {
		c := randomCode()
		if len(c) != 6 || strings.Trim(c, "0123456789") != "" {
			t.Fatalf("code %q is not six digits", c)
		}
		seen[c] = true
		for _, d := range c {
			digits[d-'0']++
		}
	}
	// 5000 draws from a million: a broken generator repeats far more.
	if len(seen) < 4950 {
		t.Fatalf("only %d distinct codes in 5000", len(seen))
	}
	// Each digit should appear ~3000 times in 30000; a gross bias shows.
	for d, n := range digits {
		if n < 2500 || n > 3500 {
			t.Fatalf("digit %d appears %d times in 30000", d, n)
		}
	}
}

// FuzzNormalizeEmail: never panics; the result is idempotent, lowercase,
// at most 254 bytes, and contains exactly one @ outside quotes.
func FuzzNormalizeEmail(f *testing.F) {
	for _, s := range []string{"User@Example.com", "a@b.co", `"a b"@c.co`, "a@b", "<a@b.co>", "a@b.co,c@d.co", "\u00e9@x.io", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := NormalizeEmail(s)
		if !ok {
			if got != "" {
				t.Fatalf("rejected %q but returned %q", s, got)
			}
			return
		}
		if len(got) > 254 || got != strings.ToLower(got) {
			t.Fatalf("NormalizeEmail(%q) = %q", s, got)
		}
		again, ok2 := NormalizeEmail(got)
		if !ok2 || again != got {
			t.Fatalf("not idempotent: %q -> %q -> %q, %v", s, got, again, ok2)
		}
	})
}
