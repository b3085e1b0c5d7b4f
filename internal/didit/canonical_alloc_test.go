package didit_test

// The memory a forged webhook costs before its X-Signature-V2 is refused:
// the canonicaliser must allocate a small multiple of the body whatever
// its shape. Measured in bytes allocated per byte of input (not time), so
// the load of the machine running the test does not matter.

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kycgate/kycgate/internal/didit"
)

// hostileBodies are adversarial documents of about n bytes, each aimed at
// one part of the canonicaliser's bookkeeping. Every one is canonicalisable
// (or, integral floats 1e308, refused only near its end, at maxGrowth), so
// the whole body is worked through; TestCanonicalizeAllocationBound checks
// that Canonicalize accepts them.
func hostileBodies(n int) map[string][]byte {
	deep := func(unit string) []byte {
		// As many chains of 63 nested objects (64 levels with the array
		// around them, the most accepted), each level out of order, as fit
		// in n.
		one := strings.Repeat(`{"b":0,"a":`, 63) + unit + strings.Repeat("}", 63)
		return fill("[", one, ",", "]", n)
	}
	return map[string][]byte{
		"deep nesting, one chain":        nestedBody(64, n-64*12-10),
		"deep nesting, many chains":      deep("0"),
		"deep nesting in arrays":         fill("[", strings.Repeat(`[{"b":[],"a":`, 31)+"0"+strings.Repeat("}]", 31), ",", "]", n),
		"tiny unsorted objects":          fill("[", `{"b":0,"a":0}`, ",", "]", n),
		"tiny duplicate-key objects":     fill("[", `{"":0,"":0}`, ",", "]", n),
		"one object, duplicate keys":     fill("{", `"":0`, ",", "}", n),
		"one object, many keys":          descendingKeys(n),
		"duplicate keys, nested objects": fill("{", `"a":{"b":0,"a":1}`, ",", "}", n),
		"long integers":                  fill("[", strings.Repeat("9", 4300), ",", "]", n),
		"integral floats 1e308":          fill("[", "1e308", ",", "]", n),
		"integral floats 1e9":            fill("[", "1e9", ",", "]", n),
		"many escapes":                   fill("[", `{"\u0062\n":"\u00e9\"\\\t\u0001\ud83d\ude00\/","\u0061":"\u2028"}`, ",", "]", n),
		"one long string":                []byte(`"` + strings.Repeat("x", n-2) + `"`),
		"one long escaped string":        []byte(`"` + strings.Repeat(`\u00e9`, (n-2)/6) + `"`),
	}
}

// descendingKeys is one object of distinct keys in descending order, all to
// be sorted.
func descendingKeys(n int) []byte {
	count := n / 12
	keys := make([]string, 0, count)
	for i := range count {
		keys = append(keys, `"k`+strconv.Itoa(10_000_000 - i)[1:]+`":0`)
	}
	b := []byte("{" + strings.Join(keys, ",") + "}")
	for len(b) > n {
		keys = keys[:len(keys)-1]
		b = []byte("{" + strings.Join(keys, ",") + "}")
	}
	return b
}

// TestCanonicalizeAllocationBound: refusing a forged webhook whose only
// signature is X-Signature-V2 (so the body must be canonicalised) allocates
// at most maxRatio bytes per byte of body, plus a little, for every shape
// above at the webhook endpoint's limit (256 KiB) and at 1 MiB; and
// Canonicalize, which also returns the canonical form, one more body's
// worth (the output; numbers that are longer in canonical form aside).
func TestCanonicalizeAllocationBound(t *testing.T) {
	const (
		maxRatio = 3       // the body's canonical text, the bookkeeping of reordering
		slack    = 8 << 10 // fixed costs: the MAC, the parser
	)
	h := http.Header{}
	h.Set("X-Timestamp", strconv.FormatInt(time.Now().Unix(), 10))
	h.Set("X-Signature-V2", strings.Repeat("0", 64))
	sizes := []int{256 << 10, 1 << 20}
	if raceEnabled {
		sizes = sizes[:1] // the ratio does not depend on the size
	}
	for _, size := range sizes {
		for name, body := range hostileBodies(size) {
			t.Run(strconv.Itoa(size>>10)+"KiB/"+name, func(t *testing.T) {
				if len(body) > size || len(body) < size*9/10 {
					t.Fatalf("body is %d bytes, want about %d", len(body), size)
				}
				n := allocBytes(func() {
					if err := didit.VerifyWebhook("secret", h, body, time.Now()); err == nil {
						t.Fatal("verified")
					}
				})
				ratio := float64(n) / float64(len(body))
				t.Logf("VerifyWebhook: %d KiB allocated for %d KiB (%.2f×)", n>>10, len(body)>>10, ratio)
				if n > uint64(maxRatio*len(body)+slack) {
					t.Errorf("refusing a forged %d KiB body allocated %d KiB (%.2f× the body), want at most %d×", len(body)>>10, n>>10, ratio, maxRatio)
				}
				var out []byte
				var err error
				n = allocBytes(func() { out, err = didit.Canonicalize(body) })
				if (err == nil) == strings.HasPrefix(name, "integral floats 1e308") {
					t.Fatalf("Canonicalize: %v", err)
				}
				ratio = float64(n) / float64(len(body))
				t.Logf("Canonicalize: %d KiB allocated, output %d KiB (%.2f×)", n>>10, len(out)>>10, ratio)
				if n > uint64(maxRatio*len(body)+max(len(out), len(body))+slack) {
					t.Errorf("Canonicalize of a %d KiB body allocated %d KiB (%.2f× the body)", len(body)>>10, n>>10, ratio)
				}
			})
		}
	}
}

// BenchmarkRefuseForgedWebhook is the CPU and allocation of refusing a
// forged 256 KiB webhook signed with X-Signature-V2 only, per shape.
func BenchmarkRefuseForgedWebhook(b *testing.B) {
	h := http.Header{}
	h.Set("X-Signature-V2", strings.Repeat("0", 64))
	now := time.Now()
	h.Set("X-Timestamp", strconv.FormatInt(now.Unix(), 10))
	bodies := hostileBodies(256 << 10)
	names := make([]string, 0, len(bodies))
	for name := range bodies {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		body := bodies[name]
		b.Run(strings.ReplaceAll(name, " ", "_"), func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				if didit.VerifyWebhook("secret", h, body, now) == nil {
					b.Fatal("verified")
				}
			}
		})
	}
}
