package didit_test

// Regression test (security review): the cost of canonicalising a hostile,
// unauthenticated webhook body (the V2 check must canonicalise before it
// can reject). Each nested object used to copy everything below it, so a
// 1 MiB body of 499 nested objects cost ~0.5 s and ~500 MB of allocation.
// Cost is measured in bytes allocated, which does not depend on the load of
// the machine running the test.

import (
	"fmt"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kycgate/kycgate/internal/didit"
)

// nestedBody is depth nested objects, each with keys out of order (so all
// must be sorted), around one string of pad bytes.
func nestedBody(depth, pad int) []byte {
	var sb strings.Builder
	for range depth {
		sb.WriteString(`{"b":0,"a":`)
	}
	sb.WriteString(`"` + strings.Repeat("x", pad) + `"`)
	sb.WriteString(strings.Repeat("}", depth))
	return []byte(sb.String())
}

// fill repeats unit inside open/close up to about n bytes.
func fill(open, unit, sep, close string, n int) []byte {
	var sb strings.Builder
	sb.WriteString(open)
	for i := 0; sb.Len()+len(unit)+len(sep)+len(close) <= n; i++ {
		if i > 0 {
			sb.WriteString(sep)
		}
		sb.WriteString(unit)
	}
	sb.WriteString(close)
	return []byte(sb.String())
}

// allocBytes returns the fewest bytes one call of f allocated over a few
// runs (the minimum discards anything another goroutine allocated).
func allocBytes(f func()) uint64 {
	f() // warm up
	best := ^uint64(0)
	var a, b runtime.MemStats
	for range 3 {
		runtime.ReadMemStats(&a)
		f()
		runtime.ReadMemStats(&b)
		best = min(best, b.TotalAlloc-a.TotalAlloc)
	}
	return best
}

func TestCanonicalizeHostileBodyCost(t *testing.T) {
	const size = 1 << 20
	keys := make([]string, 0, 50000)
	for i := range cap(keys) {
		keys = append(keys, fmt.Sprintf(`"k%06d":0`, cap(keys)-i)) // descending: all must be sorted
	}
	wide := []byte("{" + strings.Join(keys, ",") + "}")
	// Per body, the most it may allocate, in multiples of its size (the
	// bounds were 4 to 20 before the canonicaliser stopped allocating per
	// key and per string; TestCanonicalizeAllocationBound holds it to 3
	// on more shapes). Nesting costs nothing extra.
	bodies := map[string]struct {
		body  []byte
		bound uint64
	}{
		"499 nested objects":         {nestedBody(499, size-499*12-10), 4},
		"64 nested objects (max)":    {nestedBody(64, size-64*12-10), 4},
		"array of unsorted objects":  {fill("[", `{"b":0,"a":0}`, ",", "]", size), 4},
		"array of empty objects":     {fill("[", `{}`, ",", "]", size), 4},
		"unsorted object, many keys": {wide, 4},
		"duplicate keys":             {fill("{", `"a":{"b":0,"a":1}`, ",", "}", size), 4},
		// 1e308 is written as 309 digits: refused once numbers have grown
		// the document by its size plus 1 MiB.
		"integral floats": {fill("[", `1e308`, ",", "]", size), 4},
	}
	h := http.Header{}
	h.Set("X-Timestamp", strconv.FormatInt(time.Now().Unix(), 10))
	h.Set("X-Signature-V2", strings.Repeat("0", 64))
	h.Set("X-Signature", strings.Repeat("0", 64))
	for name, c := range bodies {
		t.Run(name, func(t *testing.T) {
			body := c.body
			if len(body) > size {
				t.Fatalf("body %d bytes", len(body))
			}
			n := allocBytes(func() {
				if err := didit.VerifyWebhook("secret", h, body, time.Now()); err == nil {
					t.Fatal("verified")
				}
			})
			t.Logf("one rejected %d KiB webhook: %d KiB allocated (%.1f× the body)", len(body)>>10, n>>10, float64(n)/float64(len(body)))
			if n > c.bound*uint64(len(body)) {
				t.Errorf("an unauthenticated %d KiB body costs %d KiB of allocation before the signature is rejected", len(body)>>10, n>>10)
			}
		})
	}
}

// TestCanonicalizeNumberGrowth: thousands of huge integral floats are still
// canonicalised as Python does (int(1e308), digit for digit) up to the
// growth bound; a 1 MiB body of them is refused.
func TestCanonicalizeNumberGrowth(t *testing.T) {
	const py1e308 = "100000000000000001097906362944045541740492309677311846336810682903157585404911491537163328978494688899061249669721172515611590283743140088328307009198146046031271664502933027185697489699588559043338384466165001178426897626212945177628091195786707458122783970171784415105291802893207873272974885715430223118336"
	const n = 3000 // 3000*304 bytes of growth: under the 1 MiB bound
	out, err := didit.Canonicalize([]byte("[" + strings.Repeat("1e308,", n-1) + "1e308]"))
	if err != nil {
		t.Fatal(err)
	}
	if want := "[" + strings.Repeat(py1e308+",", n-1) + py1e308 + "]"; string(out) != want {
		t.Fatalf("output %.80s... (%d bytes), want %d copies of int(1e308)", out, len(out), n)
	}
	if _, err := didit.Canonicalize(fill("[", "1e308", ",", "]", 1<<20)); err == nil {
		t.Fatal("a 1 MiB body of 1e308 was canonicalised (~50 MB of output)")
	}
}
