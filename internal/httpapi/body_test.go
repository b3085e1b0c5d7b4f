package httpapi

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestParseBody(t *testing.T) {
	for _, tc := range []struct {
		in      string
		wantErr bool
	}{
		{`{}`, false},
		{` {"email":"a@b.co"} `, false},
		{`{"email":"a@b.co","extra":[1,{"x":null}]}`, false},
		{``, true},
		{`null`, true},
		{`[]`, true},
		{`"s"`, true},
		{`{`, true},
		{`{"a":1} {"b":2}`, true},
		{`{"a":1} x`, true},
		{"\xef\xbb\xbf{}", true}, // a BOM is not JSON
	} {
		_, err := parseBody([]byte(tc.in))
		if (err != nil) != tc.wantErr {
			t.Errorf("parseBody(%q) err = %v, want error %v", tc.in, err, tc.wantErr)
		}
	}
}

func TestBodyStr(t *testing.T) {
	b, err := parseBody([]byte(`{"s":"x","n":1,"null":null,"arr":[],"obj":{},"b":true,"esc":"\u00e9\n"}`))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		field   string
		want    string
		wantErr bool
	}{
		{"s", "x", false}, {"missing", "", false}, {"null", "", false}, {"esc", "é\n", false},
		{"n", "", true}, {"arr", "", true}, {"obj", "", true}, {"b", "", true},
	} {
		got, err := b.str(tc.field)
		if got != tc.want || (err != nil) != tc.wantErr {
			t.Errorf("str(%q) = %q, %v", tc.field, got, err)
		}
		if err != nil && !strings.Contains(err.Message, tc.field) {
			t.Errorf("error %q does not name %q", err.Message, tc.field)
		}
	}
}

func TestLimitMessage(t *testing.T) {
	// The documented default, byte for byte (docs/api.md §1).
	if got, want := fmtLimit(600), "Too many requests. The limit is 600 request per minute and 10 requests per second."; got != want {
		t.Fatalf("fmtLimit(600) = %q", got)
	}
	if got := fmtLimit(61); !strings.Contains(got, "61 request per minute and 2 requests per second") {
		t.Fatalf("fmtLimit(61) = %q", got)
	}
}

// FuzzParseBody: decoding never panics; whatever is accepted is a JSON
// object whose string fields read back without error or panic.
func FuzzParseBody(f *testing.F) {
	for _, s := range []string{`{}`, `{"email":"a@b.co"}`, `{"email":1}`, `[]`, `null`, ``, `{"a":"\ud800"}`, `{"a":{"b":[1,2,{"c":"d"}]}}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		b, err := parseBody(raw)
		if err != nil {
			if b != nil {
				t.Fatal("error with a body")
			}
			return
		}
		var m map[string]any
		if json.Unmarshal(raw, &m) != nil || m == nil {
			t.Fatalf("accepted %q, which is not a JSON object", raw)
		}
		for k := range b {
			v, e := b.str(k)
			if _, isStr := m[k].(string); isStr != (e == nil) && m[k] != nil {
				t.Fatalf("field %q: value %v, str() = %q, %v", k, m[k], v, e)
			}
		}
	})
}
