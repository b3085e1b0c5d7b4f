package kyc

import (
	"errors"
	"strings"
	"testing"
)

func TestParseIdempotencyKey(t *testing.T) {
	long := strings.Repeat("k", MaxIdempotencyKey)
	for _, tc := range []struct {
		in   []string
		want string // "" = invalid
	}{
		{[]string{"abc-123"}, "abc-123"},
		{[]string{`"abc-123"`}, "abc-123"},
		{[]string{` "a b" `}, "a b"},
		{[]string{`"say \"hi\" \\ ok"`}, `say "hi" \ ok`},
		{[]string{long}, long},
		{[]string{`"` + long + `"`}, long},
		{[]string{`a"b`}, `a"b`}, // a bare token need not be an sf-token
		{[]string{""}, ""},
		{[]string{`""`}, ""},
		{[]string{"   "}, ""},
		{[]string{long + "k"}, ""},
		{[]string{"caf\u00e9"}, ""},
		{[]string{"a\x01b"}, ""},
		{[]string{"a\x7fb"}, ""},
		{[]string{`"a"b"`}, ""},
		{[]string{`"a\b"`}, ""},
		{[]string{`"a\"`}, ""},
		{[]string{"a", "b"}, ""},
		{nil, ""},
	} {
		got, err := ParseIdempotencyKey(tc.in)
		if tc.want == "" {
			var e *Error
			if !errors.As(err, &e) || e.Code != CodeInvalidIdempotencyKey || !strings.Contains(e.Message, "Idempotency-Key") {
				t.Errorf("%q: got %q, %v; want invalid_idempotency_key", tc.in, got, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%q: got %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestStorable(t *testing.T) {
	for status, want := range map[int]bool{200: true, 201: true, 400: true, 403: true, 404: true, 409: true,
		413: true, 422: true, 429: false, 500: false, 503: false, 0: false, 302: false} {
		if Storable(status) != want {
			t.Errorf("Storable(%d) = %v, want %v", status, !want, want)
		}
	}
}

// TestFingerprint: method, path and body each count, and no two of them
// can be shifted into one another.
func TestFingerprint(t *testing.T) {
	base := IdempotentRequest{Method: "POST", Path: "/kyc/prepare", Body: []byte(`{"email":"a@b.co"}`)}
	seen := map[string]IdempotentRequest{}
	for _, r := range []IdempotentRequest{base,
		{Method: "PUT", Path: base.Path, Body: base.Body},
		{Method: base.Method, Path: "/kyc/prepare-wallet", Body: base.Body},
		{Method: base.Method, Path: base.Path, Body: []byte(`{"email": "a@b.co"}`)},
		{Method: "POST/kyc", Path: "/prepare", Body: base.Body},
		{Method: base.Method, Path: base.Path + `{"email"`, Body: []byte(`:"a@b.co"}`)},
	} {
		fp := r.fingerprint()
		if prev, dup := seen[fp]; dup {
			t.Errorf("%+v and %+v share a fingerprint", prev, r)
		}
		seen[fp] = r
	}
	if base.fingerprint() != (IdempotentRequest{Method: "POST", Path: "/kyc/prepare", Body: []byte(`{"email":"a@b.co"}`)}).fingerprint() {
		t.Error("the same request gave two fingerprints")
	}
}
