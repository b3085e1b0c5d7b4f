package mail

import "testing"

func TestMaskAddress(t *testing.T) {
	for in, want := range map[string]string{
		"john@example.com":               "j***@example.com",
		"  john@example.com ":            "j***@example.com",
		"j@example.com":                  "***@example.com",
		"élodie@example.fr":              "é***@example.fr",
		"John Doe <john@example.com>":    "j***@example.com",
		"\"a@b\"@example.com":            "a***@example.com",
		"no-at-sign":                     "***",
		"@example.com":                   "***@example.com",
		"":                               "",
		"first.last+tag@sub.example.org": "f***@sub.example.org",
	} {
		if got := MaskAddress(in); got != want {
			t.Errorf("MaskAddress(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestRedact(t *testing.T) {
	got := redact("550 5.1.1 <John@Example.com>: no such user; code 123456", "john@example.com", "123456")
	want := "550 5.1.1 <j***@example.com>: no such user; code ******"
	if got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}
