package didit

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"math"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// ErrNotCanonicalizable is wrapped by every Canonicalize error: the body is
// not JSON that Didit's Python canonicaliser could have produced a signature
// for (or that we deliberately refuse, see Canonicalize).
var ErrNotCanonicalizable = errors.New("didit: body cannot be canonicalised")

// Limits. maxDepth is 64: Didit's payloads nest about 6 deep (webhook plus
// decision, see testdata), and a low bound keeps the work spent on an
// unauthenticated body small. It is also far below CPython's recursion limit
// (1000), where Didit's own json.loads/shorten_floats would give up, so we
// never accept a document Didit could not have signed; documents nested
// 65 to several hundred deep are refused although Python would canonicalise
// them. maxIntDigits is CPython's int_max_str_digits default: json.loads
// refuses longer integers.
//
// maxGrowth bounds how much numbers may lengthen the document beyond its own
// size: an integral float in exponent form is written out in full (1e308
// becomes 309 digits, at ~3 µs and ~1 KB of allocation each), so a 1 MiB
// body of them would cost ~0.5 s and ~400 MB. Real payloads grow by a few
// bytes at most.
const (
	maxDepth     = 64
	maxIntDigits = 4300
	maxGrowth    = 1 << 20
)

// Canonicalize returns Didit's canonical form of a JSON document: the input of
// X-Signature-V2. It is byte-for-byte what Python produces with
//
//	json.dumps(shorten_floats(json.loads(body)), sort_keys=True,
//	           ensure_ascii=False, separators=(",", ":")).encode("utf-8")
//
// where shorten_floats turns every float with an integral value into an int.
// It is a hand-written parser and writer because encoding/json differs from
// Python in float formatting, in escaping U+2028/U+2029 and <>&, and would
// round large integers.
//
// Any JSON value is accepted at the root, as Python does. Where Python would
// produce output that is not JSON, or fail, we return an error wrapping
// ErrNotCanonicalizable instead:
//   - NaN, Infinity, -Infinity literals (Python accepts them; JSON does not);
//   - numbers that overflow float64, e.g. 1e400 (Python writes "Infinity");
//   - invalid UTF-8, and \uXXXX escapes of unpaired surrogates (Python fails
//     when it encodes the result to UTF-8);
//   - raw control characters inside strings (Python's strict mode refuses);
//   - integers longer than 4300 digits (CPython's int_max_str_digits);
//   - nesting deeper than 64 (Didit's payloads are shallow; see maxDepth);
//   - numbers that lengthen the output by more than the input's size plus
//     1 MiB, e.g. thousands of 1e308 (see maxGrowth);
//   - input that is not UTF-8: Python also sniffs UTF-16/32 from NUL bytes;
//     we do not. A leading UTF-8 BOM is skipped, as Python's utf-8-sig does.
func Canonicalize(body []byte) ([]byte, error) { return canonicalize(body, nil) }

// canonicalize is Canonicalize that also fills env, when not nil, from the
// root object's members, sparing Sign and VerifyWebhook a second parse.
func canonicalize(body []byte, env *envelope) ([]byte, error) {
	body = bytes.TrimPrefix(body, []byte("\xef\xbb\xbf"))
	p := canonParser{in: body, out: make([]byte, 0, len(body)), env: env}
	p.skipSpace()
	if err := p.value(0); err != nil {
		return nil, err
	}
	p.skipSpace()
	if p.pos != len(p.in) {
		return nil, p.errorf("extra data after the JSON value")
	}
	if len(p.out) >= math.MaxInt32 {
		return nil, p.errorf("canonical form of 2 GiB or more")
	}
	if len(p.objs) == 0 {
		return p.out, nil // every object was already in canonical order
	}
	// Objects were recorded as they closed, inner ones first.
	slices.SortFunc(p.objs, func(a, b objSpan) int { return cmp.Compare(a.start, b.start) })
	return p.emit(make([]byte, 0, len(p.out)), 0, int32(len(p.out)), p.objs), nil
}

type canonParser struct {
	in  []byte
	pos int
	out []byte    // canonical text, but objects' members in input order
	env *envelope // optional

	objs    []objSpan // objects to reorder
	members []member  // their members, sorted per object
	open    []member  // members of the objects still being parsed
	grown   int       // bytes numbers added to the document (see maxGrowth)
}

func (p *canonParser) errorf(format string, args ...any) error {
	return fmt.Errorf("%w: offset %d: %s", ErrNotCanonicalizable, p.pos, fmt.Sprintf(format, args...))
}

// skipSpace skips JSON whitespace: exactly the four characters Python's
// scanner allows.
func (p *canonParser) skipSpace() {
	for p.pos < len(p.in) {
		switch p.in[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

func (p *canonParser) value(depth int) error {
	if p.pos >= len(p.in) {
		return p.errorf("unexpected end of input")
	}
	switch c := p.in[p.pos]; {
	case c == '{':
		return p.object(depth + 1)
	case c == '[':
		return p.array(depth + 1)
	case c == '"':
		s, err := p.str()
		if err != nil {
			return err
		}
		p.out = appendPyString(p.out, s)
		return nil
	case c == '-' || (c >= '0' && c <= '9'):
		return p.number()
	case c == 't':
		return p.literal("true")
	case c == 'f':
		return p.literal("false")
	case c == 'n':
		return p.literal("null")
	default:
		return p.errorf("unexpected character %q", c)
	}
}

func (p *canonParser) literal(lit string) error {
	if !bytes.HasPrefix(p.in[p.pos:], []byte(lit)) {
		return p.errorf("invalid literal")
	}
	p.pos += len(lit)
	p.out = append(p.out, lit...)
	return nil
}

func (p *canonParser) array(depth int) error {
	if depth > maxDepth {
		return p.errorf("nesting deeper than %d", maxDepth)
	}
	p.pos++ // '['
	p.out = append(p.out, '[')
	p.skipSpace()
	if p.pos < len(p.in) && p.in[p.pos] == ']' {
		p.pos++
		p.out = append(p.out, ']')
		return nil
	}
	for {
		p.skipSpace()
		if err := p.value(depth); err != nil {
			return err
		}
		p.skipSpace()
		if p.pos >= len(p.in) {
			return p.errorf("unterminated array")
		}
		switch p.in[p.pos] {
		case ',':
			p.pos++
			p.out = append(p.out, ',')
		case ']':
			p.pos++
			p.out = append(p.out, ']')
			return nil
		default:
			return p.errorf("expected ',' or ']' in array")
		}
	}
}

// member is one member of an object being parsed or to be reordered.
// Offsets are int32 to keep the bookkeeping small: canonicalize refuses an
// output of 2 GiB or more before it uses them.
type member struct {
	key        string
	start, end int32 // span of the canonical `"key":value` in p.out
}

// objSpan is an object whose members are not in canonical order.
type objSpan struct {
	start, end int32 // span of the object in p.out, braces included
	m0, m1     int32 // its members, sorted: p.members[m0:m1]
}

// object writes the object into p.out with its members in input order, and
// when they are not in canonical order records where each member is, for
// emit to write them in key order at the end. Nothing is moved while
// parsing, so each byte is copied at most twice however deep the nesting
// (rewriting each object in place would cost the depth times the size).
func (p *canonParser) object(depth int) error {
	if depth > maxDepth {
		return p.errorf("nesting deeper than %d", maxDepth)
	}
	p.pos++ // '{'
	start := len(p.out)
	p.out = append(p.out, '{')
	mark := len(p.open)
	p.skipSpace()
	if p.pos < len(p.in) && p.in[p.pos] == '}' {
		p.pos++
		p.out = append(p.out, '}')
		return nil
	}
	for {
		p.skipSpace()
		if p.pos >= len(p.in) || p.in[p.pos] != '"' {
			return p.errorf("expected a string key")
		}
		key, err := p.str()
		if err != nil {
			return err
		}
		p.skipSpace()
		if p.pos >= len(p.in) || p.in[p.pos] != ':' {
			return p.errorf("expected ':' after key")
		}
		p.pos++
		p.skipSpace()
		if len(p.open) > mark {
			p.out = append(p.out, ',')
		}
		mStart, srcStart := len(p.out), p.pos
		p.out = appendPyString(p.out, key)
		p.out = append(p.out, ':')
		if err := p.value(depth); err != nil {
			return err
		}
		if depth == 1 && p.env != nil {
			p.env.capture(key, p.in[srcStart:p.pos]) // later duplicates overwrite, as in Python
		}
		p.open = grow(p.open)
		p.open = append(p.open, member{key: key, start: int32(mStart), end: int32(len(p.out))})
		p.skipSpace()
		if p.pos >= len(p.in) {
			return p.errorf("unterminated object")
		}
		if p.in[p.pos] == '}' {
			p.pos++
			break
		}
		if p.in[p.pos] != ',' {
			return p.errorf("expected ',' or '}' in object")
		}
		p.pos++
	}
	p.out = append(p.out, '}')

	// Nested objects took their members off p.open when they closed, so
	// p.open[mark:] holds exactly this object's.
	ms := p.open[mark:]
	p.open = p.open[:mark]
	for i := 1; i < len(ms); i++ {
		if ms[i-1].key < ms[i].key {
			continue
		}
		// Out of order, or a duplicate key. Stable sort, then keep the last
		// of each run of equal keys, as a Python dict keeps the last value
		// given for a key.
		slices.SortStableFunc(ms, func(a, b member) int { return strings.Compare(a.key, b.key) })
		m0 := len(p.members)
		for j, m := range ms {
			if j+1 < len(ms) && ms[j+1].key == m.key {
				continue
			}
			p.members = grow(p.members)
			p.members = append(p.members, m)
		}
		p.objs = grow(p.objs)
		p.objs = append(p.objs, objSpan{start: int32(start), end: int32(len(p.out)), m0: int32(m0), m1: int32(len(p.members))})
		break
	}
	return nil
}

// grow makes room for one more element, doubling: append's gentler growth
// of large slices would allocate about five times the final size in all.
func grow[S ~[]E, E any](s S) S {
	if len(s) < cap(s) {
		return s
	}
	return slices.Grow(s, max(len(s), 16))
}

// emit appends p.out[start:end] to dst with every recorded object in it
// written in key order; objs are the recorded objects inside that span,
// sorted by start (an object starts before the objects inside it).
// Recursion is bounded by maxDepth.
func (p *canonParser) emit(dst []byte, start, end int32, objs []objSpan) []byte {
	pos := start
	for len(objs) > 0 {
		o := objs[0]
		n := 1 + firstFrom(objs[1:], o.end)
		inner := objs[1:n] // the recorded objects inside o
		dst = append(dst, p.out[pos:o.start]...)
		dst = append(dst, '{')
		for j, m := range p.members[o.m0:o.m1] {
			if j > 0 {
				dst = append(dst, ',')
			}
			a := firstFrom(inner, m.start)
			b := a + firstFrom(inner[a:], m.end)
			dst = p.emit(dst, m.start, m.end, inner[a:b])
		}
		dst = append(dst, '}')
		pos, objs = o.end, objs[n:]
	}
	return append(dst, p.out[pos:end]...)
}

// firstFrom returns the index of the first of objs that starts at or after
// pos, or len(objs).
func firstFrom(objs []objSpan, pos int32) int {
	lo, hi := 0, len(objs)
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if objs[mid].start < pos {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo
}

// str parses a JSON string at p.pos and returns its decoded value, which is
// always valid UTF-8 without surrogates (see Canonicalize for what is refused).
func (p *canonParser) str() (string, error) {
	p.pos++ // opening quote
	start := p.pos
	// Fast path: no escapes.
	for p.pos < len(p.in) {
		c := p.in[p.pos]
		if c == '"' {
			raw := p.in[start:p.pos]
			if !utf8.Valid(raw) {
				return "", p.errorf("invalid UTF-8 in string")
			}
			p.pos++
			return string(raw), nil
		}
		if c == '\\' {
			break
		}
		if c < 0x20 {
			return "", p.errorf("control character in string")
		}
		p.pos++
	}
	var sb []byte
	sb = append(sb, p.in[start:p.pos]...)
	for {
		if p.pos >= len(p.in) {
			return "", p.errorf("unterminated string")
		}
		c := p.in[p.pos]
		switch {
		case c == '"':
			p.pos++
			if !utf8.Valid(sb) {
				return "", p.errorf("invalid UTF-8 in string")
			}
			return string(sb), nil
		case c < 0x20:
			return "", p.errorf("control character in string")
		case c != '\\':
			sb = append(sb, c)
			p.pos++
			continue
		}
		// Escape sequence.
		if p.pos+1 >= len(p.in) {
			return "", p.errorf("unterminated escape")
		}
		e := p.in[p.pos+1]
		p.pos += 2
		switch e {
		case '"', '\\', '/':
			sb = append(sb, e)
		case 'b':
			sb = append(sb, '\b')
		case 'f':
			sb = append(sb, '\f')
		case 'n':
			sb = append(sb, '\n')
		case 'r':
			sb = append(sb, '\r')
		case 't':
			sb = append(sb, '\t')
		case 'u':
			r, ok := p.hex4()
			if !ok {
				return "", p.errorf("invalid \\u escape")
			}
			if utf16.IsSurrogate(r) {
				// Only a high surrogate immediately followed by an escaped low
				// one makes a character; anything else is a lone surrogate.
				if r >= 0xDC00 || !bytes.HasPrefix(p.in[p.pos:], []byte(`\u`)) {
					return "", p.errorf("unpaired surrogate")
				}
				p.pos += 2
				r2, ok := p.hex4()
				if !ok {
					return "", p.errorf("invalid \\u escape")
				}
				if r2 < 0xDC00 || r2 > 0xDFFF {
					return "", p.errorf("unpaired surrogate")
				}
				r = utf16.DecodeRune(r, r2)
			}
			sb = utf8.AppendRune(sb, r)
		default:
			return "", p.errorf("invalid escape \\%c", e)
		}
	}
}

func (p *canonParser) hex4() (rune, bool) {
	if p.pos+4 > len(p.in) {
		return 0, false
	}
	var r rune
	for _, c := range p.in[p.pos : p.pos+4] {
		var d byte
		switch {
		case c >= '0' && c <= '9':
			d = c - '0'
		case c >= 'a' && c <= 'f':
			d = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			d = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(d)
	}
	p.pos += 4
	return r, true
}

// number scans a number with the JSON grammar (which is also Python's
// NUMBER_RE) and writes it as Python would after shorten_floats.
func (p *canonParser) number() error {
	start := p.pos
	if p.in[p.pos] == '-' {
		p.pos++
	}
	intStart := p.pos
	switch {
	case p.pos < len(p.in) && p.in[p.pos] == '0':
		p.pos++
	case p.pos < len(p.in) && p.in[p.pos] >= '1' && p.in[p.pos] <= '9':
		for p.pos < len(p.in) && isDigit(p.in[p.pos]) {
			p.pos++
		}
	default:
		// "-Infinity" lands here too: we refuse non-finite literals.
		return p.errorf("invalid number")
	}
	intDigits := p.pos - intStart
	isFloat := false
	if p.pos < len(p.in) && p.in[p.pos] == '.' {
		p.pos++
		if p.pos >= len(p.in) || !isDigit(p.in[p.pos]) {
			return p.errorf("invalid number: digit expected after '.'")
		}
		for p.pos < len(p.in) && isDigit(p.in[p.pos]) {
			p.pos++
		}
		isFloat = true
	}
	if p.pos < len(p.in) && (p.in[p.pos] == 'e' || p.in[p.pos] == 'E') {
		p.pos++
		if p.pos < len(p.in) && (p.in[p.pos] == '+' || p.in[p.pos] == '-') {
			p.pos++
		}
		if p.pos >= len(p.in) || !isDigit(p.in[p.pos]) {
			return p.errorf("invalid number: digit expected in exponent")
		}
		for p.pos < len(p.in) && isDigit(p.in[p.pos]) {
			p.pos++
		}
		isFloat = true
	}
	text := p.in[start:p.pos]
	if !isFloat {
		// Python ints are exact: copy the digits, except that -0 is 0.
		if intDigits > maxIntDigits {
			return p.errorf("integer has more than %d digits", maxIntDigits)
		}
		if string(text) == "-0" {
			text = text[1:]
		}
		p.out = append(p.out, text...)
		return nil
	}
	f, err := strconv.ParseFloat(string(text), 64)
	if err != nil || math.IsInf(f, 0) {
		return p.errorf("number %.40s does not fit a float64", text)
	}
	n := len(p.out)
	p.out = appendPyFloat(p.out, f)
	if d := len(p.out) - n - len(text); d > 0 {
		if p.grown += d; p.grown > len(p.in)+maxGrowth {
			return p.errorf("numbers grow the document by more than its size plus %d bytes", maxGrowth)
		}
	}
	return nil
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// appendPyFloat writes f as Python's json.dumps does after shorten_floats:
// integral values as exact integers (int(f)), others as repr(f).
func appendPyFloat(dst []byte, f float64) []byte {
	if f == math.Trunc(f) {
		if f > -(1<<63) && f < 1<<63 {
			return strconv.AppendInt(dst, int64(f), 10) // -0.0 becomes 0, as int(-0.0) does
		}
		i, _ := new(big.Float).SetFloat64(f).Int(nil)
		return i.Append(dst, 10)
	}
	// repr(float) is the shortest round-tripping digit string (as Go's -1
	// precision), in scientific form when the decimal exponent is < -4 or
	// >= 16, with at least two exponent digits and an explicit sign: Go's 'e'
	// format writes exactly that. Non-integral floats are < 2**52, so only
	// the small-exponent side occurs in practice.
	sci := strconv.AppendFloat(nil, f, 'e', -1, 64)
	ePos := bytes.IndexByte(sci, 'e')
	exp, _ := strconv.Atoi(string(sci[ePos+1:]))
	if exp < -4 || exp >= 16 {
		return append(dst, sci...)
	}
	return strconv.AppendFloat(dst, f, 'f', -1, 64)
}

// appendPyString writes s as a JSON string the way Python's encoder does
// with ensure_ascii=False: only '"', '\\' and C0 controls are escaped, with
// the short forms where JSON has them and lowercase \u00xx otherwise.
// Everything else, including DEL, U+2028/U+2029 and <>&, is raw UTF-8.
func appendPyString(dst []byte, s string) []byte {
	const hexDigits = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		dst = append(dst, s[start:i]...)
		switch c {
		case '"':
			dst = append(dst, '\\', '"')
		case '\\':
			dst = append(dst, '\\', '\\')
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, '\\', 't')
		case '\b':
			dst = append(dst, '\\', 'b')
		case '\f':
			dst = append(dst, '\\', 'f')
		default:
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
		}
		start = i + 1
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
