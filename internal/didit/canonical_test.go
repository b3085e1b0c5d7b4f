package didit

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/kycgate/kycgate/internal/testenv"
)

type canonVector struct {
	Name       string `json:"name"`
	Input      string `json:"input"`
	Canonical  string `json:"canonical"`
	Error      string `json:"error"`
	HMACV2     string `json:"hmac_v2"`
	HMACRaw    string `json:"hmac_raw"`
	HMACSimple string `json:"hmac_simple"`
	Timestamp  int64  `json:"timestamp"`
}

type canonVectorFile struct {
	Secret  string        `json:"secret"`
	Vectors []canonVector `json:"vectors"`
}

func loadVectors(t testing.TB) canonVectorFile {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "canonical_vectors.json"))
	if err != nil {
		t.Fatal(err)
	}
	var f canonVectorFile
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	if len(f.Vectors) == 0 || f.Secret == "" {
		t.Fatal("empty vector file; run scripts/didit/canonical_vectors.py")
	}
	return f
}

// TestCanonicalizeMatchesPython checks every vector produced by
// scripts/didit/canonical_vectors.py, i.e. by real Python.
func TestCanonicalizeMatchesPython(t *testing.T) {
	f := loadVectors(t)
	for _, v := range f.Vectors {
		t.Run(v.Name, func(t *testing.T) {
			got, err := Canonicalize([]byte(v.Input))
			if v.Error != "" {
				if err == nil {
					t.Fatalf("Python refuses this input (%s); we produced %q", v.Error, got)
				}
				if !errors.Is(err, ErrNotCanonicalizable) {
					t.Fatalf("error %v does not wrap ErrNotCanonicalizable", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Canonicalize: %v", err)
			}
			if string(got) != v.Canonical {
				t.Fatalf("canonical mismatch\n got: %s\nwant: %s", got, v.Canonical)
			}
			mac := hmac.New(sha256.New, []byte(f.Secret))
			mac.Write(got)
			if h := hex.EncodeToString(mac.Sum(nil)); h != v.HMACV2 {
				t.Fatalf("hmac_v2 = %s, want %s", h, v.HMACV2)
			}
			sig, err := Sign(f.Secret, []byte(v.Input), v.Timestamp)
			if err != nil {
				t.Fatalf("Sign: %v", err)
			}
			if sig.V2 != v.HMACV2 || sig.Raw != v.HMACRaw {
				t.Fatalf("Sign = %+v, want V2 %s Raw %s", sig, v.HMACV2, v.HMACRaw)
			}
			if v.HMACSimple != "" && sig.Simple != v.HMACSimple {
				t.Fatalf("Sign.Simple = %s, want %s", sig.Simple, v.HMACSimple)
			}
		})
	}
}

// TestCanonicalizeRefusals covers inputs Python accepts but we refuse on
// purpose (documented on Canonicalize), and a few edge cases of our own.
func TestCanonicalizeRefusals(t *testing.T) {
	bad := map[string]string{
		"nan":               `{"x":NaN}`,
		"infinity":          `[Infinity]`,
		"neg_infinity":      `[-Infinity]`,
		"overflow":          `{"x":1e400}`,
		"neg_overflow":      `-1.5e309`,
		"invalid_utf8":      "{\"a\":\"\xff\"}",
		"invalid_utf8_key":  "{\"\xc3\":1}",
		"encoded_surrogate": "\"\xed\xa0\x80\"",
		"utf16_input":       "\x00[\x001\x00]",
		"empty":             ``,
		"only_space":        ` `,
		"deep":              strings.Repeat("[", maxDepth+1) + strings.Repeat("]", maxDepth+1),
		"deep_objects":      strings.Repeat(`{"a":`, maxDepth+1) + "1" + strings.Repeat("}", maxDepth+1),
		"form_feed_space":   "\f1",
		"dot_no_digit":      `1.`,
		"exp_no_digit":      `1e+`,
		"plus_sign":         `+1`,
		"bare_minus":        `-`,
		"single_quote":      `{'a':1}`,
		"short_u":           `"\u12"`,
		"true_prefix":       `tru`,
	}
	for name, in := range bad {
		t.Run(name, func(t *testing.T) {
			out, err := Canonicalize([]byte(in))
			if err == nil {
				t.Fatalf("accepted, produced %q", out)
			}
			if !errors.Is(err, ErrNotCanonicalizable) {
				t.Fatalf("error %v does not wrap ErrNotCanonicalizable", err)
			}
		})
	}
}

func TestCanonicalizeEdgeCases(t *testing.T) {
	cases := []struct{ in, want string }{
		{"\xef\xbb\xbf{\"a\":1}", `{"a":1}`}, // Python's utf-8-sig drops a BOM
		{strings.Repeat("[", maxDepth) + strings.Repeat("]", maxDepth), strings.Repeat("[", maxDepth) + strings.Repeat("]", maxDepth)},
		{strings.Repeat("1", maxIntDigits), strings.Repeat("1", maxIntDigits)},
		{`9.223372036854775807e18`, `9223372036854775808`}, // just past int64: big.Int path
		{`-9.223372036854775808e18`, `-9223372036854775808`},
		{`{"a":1,"a":2,"a":3}`, `{"a":3}`},
		{`[1.5e-5,-1.5e-5]`, `[1.5e-05,-1.5e-05]`},
	}
	for _, c := range cases {
		got, err := Canonicalize([]byte(c.in))
		if err != nil {
			t.Errorf("Canonicalize(%.40q): %v", c.in, err)
			continue
		}
		if string(got) != c.want {
			t.Errorf("Canonicalize(%.40q) = %.80s, want %.80s", c.in, got, c.want)
		}
	}
}

func FuzzCanonicalize(f *testing.F) {
	for _, v := range loadVectors(f).Vectors {
		f.Add([]byte(v.Input))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		out, err := Canonicalize(in)
		if err != nil {
			if !errors.Is(err, ErrNotCanonicalizable) {
				t.Fatalf("error %v does not wrap ErrNotCanonicalizable", err)
			}
			return
		}
		if !utf8.Valid(out) {
			t.Fatalf("output is not UTF-8: %q", out)
		}
		if !json.Valid(out) {
			t.Fatalf("output is not valid JSON: %q", out)
		}
		again, err := Canonicalize(out)
		if err != nil {
			t.Fatalf("canonical output refused: %v\n%q", err, out)
		}
		if !bytes.Equal(again, out) {
			t.Fatalf("not a fixpoint:\n once: %q\ntwice: %q", out, again)
		}
		// Same data before and after, numbers compared as float64 (shortening
		// changes a number's text, never its value).
		a, err := decodeNumbers(bytes.TrimPrefix(in, []byte("\xef\xbb\xbf")))
		if err != nil {
			t.Fatalf("we accepted what encoding/json refuses (%v): %q", err, in)
		}
		b, err := decodeNumbers(out)
		if err != nil {
			t.Fatal(err)
		}
		if !sameJSON(a, b) {
			t.Fatalf("value changed:\n in: %q\nout: %q", in, out)
		}

		// Whatever we can canonicalise we can sign, and verify what we signed.
		var env envelope
		if out2, err := canonicalize(in, &env); err != nil || !bytes.Equal(out2, out) {
			t.Fatalf("canonicalize with envelope differs: %v", err)
		}
		ts := int64(1772446504)
		bodyTS, timed := env.time()
		if timed {
			ts = bodyTS
		}
		sig, err := Sign("fuzz-secret", in, ts)
		if err != nil {
			t.Fatalf("Sign: %v", err)
		}
		h := http.Header{}
		sig.SetHeaders(h)
		// A body without its own time is refused even when signed.
		if err := VerifyWebhook("fuzz-secret", h, in, time.Unix(ts, 0)); timed && err != nil {
			t.Fatalf("VerifyWebhook of our own signature: %v", err)
		} else if !timed && !errors.Is(err, ErrNoEventTime) {
			t.Fatalf("VerifyWebhook of an untimed body: %v, want ErrNoEventTime", err)
		}
		// These only must not panic.
		_, _ = ParseWebhook(in)
		_, _ = SummarizeDecision(in)
	})
}

func decodeNumbers(b []byte) (any, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, err
	}
	return v, nil
}

// sameJSON compares decoded values, numbers by their float64 value (±Inf
// for huge integers, which are copied digit for digit anyway).
func sameJSON(a, b any) bool {
	switch x := a.(type) {
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, v := range x {
			if !sameJSON(v, y[k]) {
				return false
			}
		}
		return true
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !sameJSON(x[i], y[i]) {
				return false
			}
		}
		return true
	case json.Number:
		y, ok := b.(json.Number)
		if !ok {
			return false
		}
		fx, _ := strconv.ParseFloat(string(x), 64)
		fy, _ := strconv.ParseFloat(string(y), 64)
		return fx == fy
	default:
		return a == b
	}
}

// TestCanonicalizeDifferentialPython compares Canonicalize with real Python
// on random documents rich in floats and awkward strings. It skips when
// python3 is not installed.
func TestCanonicalizeDifferentialPython(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		testenv.Missing(t, "python3", "apt-get install python3")
	}
	if testing.Short() {
		t.Skip("short mode")
	}
	rng := rand.New(rand.NewPCG(1, 2))
	const n = 3000
	docs := make([]string, n)
	for i := range docs {
		var sb strings.Builder
		randJSON(rng, &sb, 0)
		docs[i] = sb.String()
	}
	in, _ := json.Marshal(docs)
	const script = `
import json, sys
def sf(v):
    if isinstance(v, dict): return {k: sf(x) for k, x in v.items()}
    if isinstance(v, list): return [sf(x) for x in v]
    if isinstance(v, float) and v.is_integer(): return int(v)
    return v
out = []
for d in json.load(sys.stdin):
    try:
        out.append(json.dumps(sf(json.loads(d.encode("utf-8"))), sort_keys=True, ensure_ascii=False, separators=(",", ":")))
    except Exception as e:
        out.append(None)
json.dump(out, sys.stdout)
`
	cmd := exec.Command(py, "-c", script)
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	res, err := cmd.Output()
	if err != nil {
		t.Fatalf("python3: %v\n%s", err, stderr.String())
	}
	var want []*string
	if err := json.Unmarshal(res, &want); err != nil {
		t.Fatal(err)
	}
	if len(want) != n {
		t.Fatalf("python returned %d results, want %d", len(want), n)
	}
	for i, d := range docs {
		got, err := Canonicalize([]byte(d))
		switch {
		case want[i] == nil && err == nil:
			t.Errorf("doc %d: Python refused, we produced %q\ninput: %q", i, got, d)
		case want[i] != nil && err != nil:
			t.Errorf("doc %d: we refused (%v), Python produced %q", i, err, *want[i])
		case want[i] != nil && string(got) != *want[i]:
			t.Errorf("doc %d:\n got: %s\nwant: %s\ninput: %s", i, got, *want[i], d)
		}
	}
}

// randJSON writes a random document. Numbers are biased towards the places
// where Python's and Go's formatting differ; strings towards escapes.
func randJSON(rng *rand.Rand, sb *strings.Builder, depth int) {
	k := rng.IntN(10)
	if depth > 3 {
		k = 4 + rng.IntN(6)
	}
	switch k {
	case 0, 1:
		sb.WriteByte('{')
		for i := range rng.IntN(5) {
			if i > 0 {
				sb.WriteByte(',')
			}
			writeRandString(rng, sb)
			sb.WriteByte(':')
			randJSON(rng, sb, depth+1)
		}
		sb.WriteByte('}')
	case 2, 3:
		sb.WriteByte('[')
		for i := range rng.IntN(5) {
			if i > 0 {
				sb.WriteString(" , ")
			}
			randJSON(rng, sb, depth+1)
		}
		sb.WriteByte(']')
	case 4, 5, 6:
		sb.WriteString(randNumber(rng))
	case 7, 8:
		writeRandString(rng, sb)
	default:
		sb.WriteString([]string{"true", "false", "null"}[rng.IntN(3)])
	}
}

func randNumber(rng *rand.Rand) string {
	switch rng.IntN(8) {
	case 0: // any finite double, via its shortest text
		for {
			f := math.Float64frombits(rng.Uint64())
			if !math.IsNaN(f) && !math.IsInf(f, 0) {
				return fmt.Sprint(f)
			}
		}
	case 1: // decimal exponent near the repr switch points
		return fmt.Sprintf("%de%d", rng.IntN(2000)-1000, rng.IntN(30)-10)
	case 2:
		return fmt.Sprintf("%d.%de%d", rng.IntN(100), rng.IntN(1000), rng.IntN(50)-25)
	case 3: // integers, some beyond int64
		return fmt.Sprintf("%d%d", rng.Int64()-rng.Int64(), rng.Uint64())
	case 4:
		return fmt.Sprintf("%d.%d", rng.IntN(1e6)-5e5, rng.IntN(100))
	case 5: // many digits: correct rounding matters
		var sb strings.Builder
		sb.WriteString("0.")
		for range 1 + rng.IntN(30) {
			sb.WriteByte(byte('0' + rng.IntN(10)))
		}
		return sb.String()
	case 6:
		return []string{"-0", "-0.0", "0.0", "1.0", "1e16", "1e-5", "0.00005", "1E-7", "-1e-400", "1e308", "9007199254740993.0"}[rng.IntN(11)]
	default:
		return fmt.Sprintf("%d", rng.IntN(100))
	}
}

func writeRandString(rng *rand.Rand, sb *strings.Builder) {
	pool := []string{"a", "Z", "é", "ü", "中", "😀", "\u2028", "\u2029", "<", ">", "&", "\x7f",
		`\"`, `\\`, `\/`, `\n`, `\t`, `\b`, `\f`, `\r`, `\u0000`, `\u001f`, `\u00e9`, `\ud83d\ude00`, `\uFFFF`, " "}
	sb.WriteByte('"')
	for range rng.IntN(6) {
		sb.WriteString(pool[rng.IntN(len(pool))])
	}
	sb.WriteByte('"')
}

// TestAppendBigIntegral: the exact digits of integral floats of 2**63 and
// more, as math/big writes them (and Python's int(f)), without allocating.
func TestAppendBigIntegral(t *testing.T) {
	fs := []float64{1 << 63, -(1 << 63), 1e19, 1e23, 9.999999999999999e22, 1e308, -1e308, math.MaxFloat64, -math.MaxFloat64, 0x1p1023, 0x1.fffffffffffffp+1000}
	rng := rand.New(rand.NewPCG(3, 4))
	for range 20000 {
		// Random mantissa, exponent 63..1023: always integral.
		f := math.Ldexp(1+rng.Float64(), 63+rng.IntN(961))
		if rng.IntN(2) == 0 {
			f = -f
		}
		fs = append(fs, f)
	}
	buf := make([]byte, 0, maxFloatText)
	for _, f := range fs {
		i, _ := new(big.Float).SetFloat64(f).Int(nil)
		if got, want := string(appendBigIntegral(buf[:0], f)), i.String(); got != want {
			t.Fatalf("appendBigIntegral(%g) = %s, want %s", f, got, want)
		}
	}
	if n := testing.AllocsPerRun(100, func() { buf = appendPyFloat(buf[:0], -math.MaxFloat64) }); n != 0 {
		t.Errorf("appendPyFloat(-MaxFloat64) allocates %v times", n)
	}
	if len(appendPyFloat(nil, -math.MaxFloat64)) != maxFloatText {
		t.Errorf("maxFloatText is not the length of int(-MaxFloat64)")
	}
}
