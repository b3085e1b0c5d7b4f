package didit_test

// Differential test: targeted edge cases (duplicate keys, BOM, surrogates,
// huge ints, depth) of Canonicalize against real Python.

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"

	"github.com/kycgate/kycgate/internal/testenv"

	"github.com/kycgate/kycgate/internal/didit"
)

func TestCanonicalEdgeCasesVsPython(t *testing.T) {
	docs := []string{
		`{"a":1,"a":2}`, `{"a":2,"\u0061":1}`, `{"b":{"x":1,"x":[1]},"a":0}`,
		"\ufeff{\"a\":1}", ` {"a":1} `, "{\"a\":1}\n", `{"a":"\ud800"}`, `{"a":"\udc00"}`, `{"a":"\ud800\u0041"}`,
		"{\"a\":\"\xed\xa0\x80\"}", `{"a":1.7976931348623157e308}`, `{"a":5e-324}`,
		`{"a":` + strings.Repeat("9", 4300) + `}`, `{"a":` + strings.Repeat("9", 4301) + `}`,
		`{"a":-0}`, `{"a":-0.0}`, `{"a":0.1e1}`, `{"a":1E+2}`, // NaN/Infinity/1e400: refused by design (see Canonicalize)

		`{"\uffff":1,"😀":2,"\ud83d\ude00x":3}`, `{"a":"\u2028\u2029<>&\u007f"}`, "{\"a\":\"\x7f\"}",
		`[1,2,]`, `{"a":1,}`, `{"a" : 1}`, "{\"a\":\f1}", `{"a":01}`, `{"a":.1}`, `{"a":1.}`, `{"a":+1}`,
		`{"timestamp":1772446504.0}`, `{"timestamp":1772446504.000000000000000001}`, `1`, `"x"`, `null`,
		"{\"a\":\"\x00\"}", `{"a":"\/"}`, `{"a":"\U0041"}`, "{\"a\":1}\x00", `{"a":1e16}`, `{"a":1.5e16}`, `{"a":123456789012345678.5}`,
		`{"a":1e-5}`, `{"a":0.0001}`, `{"a":0.00001}`, `{"a":1e22}`, `{"a":-1.5}`, `{"a":true,"a":false}`,
		// Up to our maxDepth (64) we match Python; deeper documents are
		// refused by design (TestCanonicalizeRefusals), though Python takes
		// a few hundred levels.
		strings.Repeat("[", 64) + strings.Repeat("]", 64),
		strings.Repeat(`{"b":1,"a":`, 61) + `{"z":[{"y":1,"x":2}]}` + strings.Repeat("}", 61),
	}
	b64 := make([]string, len(docs))
	for i, d := range docs {
		b64[i] = base64.StdEncoding.EncodeToString([]byte(d))
	}
	in, _ := json.Marshal(b64)
	script := `
import json, sys, base64
def sf(v):
    if isinstance(v, dict): return {k: sf(x) for k, x in v.items()}
    if isinstance(v, list): return [sf(x) for x in v]
    if isinstance(v, float) and v.is_integer(): return int(v)
    return v
out = []
for d in json.load(sys.stdin):
    try:
        out.append(json.dumps(sf(json.loads(base64.b64decode(d))), sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode("utf-8").decode("utf-8"))
    except Exception as e:
        out.append(None)
json.dump(out, sys.stdout)
`
	py, err := exec.LookPath("python3")
	if err != nil {
		testenv.Missing(t, "python3", "apt-get install python3")
	}
	cmd := exec.Command(py, "-c", script)
	cmd.Stdin = bytes.NewReader(in)
	var se bytes.Buffer
	cmd.Stderr = &se
	res, err := cmd.Output()
	if err != nil {
		t.Fatal(err, se.String())
	}
	var want []*string
	json.Unmarshal(res, &want)
	for i, d := range docs {
		got, err := didit.Canonicalize([]byte(d))
		w := "<refused>"
		if want[i] != nil {
			w = *want[i]
		}
		g := "<refused>"
		if err == nil {
			g = string(got)
		}
		if g != w {
			if len(d) > 80 {
				d = d[:80]
			}
			if len(g) > 80 {
				g = g[:80]
			}
			if len(w) > 80 {
				w = w[:80]
			}
			t.Errorf("%q: go=%q py=%q", d, g, w)
		}
	}
}
