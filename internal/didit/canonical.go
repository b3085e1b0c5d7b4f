package didit

import (
	"bytes"
	"cmp"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
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
// becomes 309 digits, at ~1 µs each, twice: once to measure it, once to
// write it), so a 1 MiB body of them would cost ~0.3 s and a 50 MB
// canonical form. Real payloads grow by a few bytes at most.
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
	p, err := parseCanonical(body, env)
	if err != nil {
		return nil, err
	}
	if len(p.objs) == 0 && p.marks == 0 {
		return p.out, nil // already the canonical form
	}
	w := &appender{b: make([]byte, 0, len(p.out)-p.marks+p.grown)}
	p.writeTo(w)
	return w.b, nil
}

// canonicalHMAC returns the HMAC-SHA256 under secret of Canonicalize(body),
// filling env as canonicalize does. The canonical form is streamed into the
// MAC rather than assembled, so it costs one copy of the body (the
// canonical text with objects in input order) and the bookkeeping of the
// objects to reorder, not a second copy.
func canonicalHMAC(secret string, body []byte, env *envelope) ([]byte, error) {
	p, err := parseCanonical(body, env)
	if err != nil {
		return nil, err
	}
	m := hmac.New(sha256.New, []byte(secret))
	p.writeTo(m)
	return m.Sum(nil), nil
}

// parseCanonical parses body into p.out, the canonical text except that
// objects keep their members in input order, and records in p.objs the
// objects writeTo must reorder.
func parseCanonical(body []byte, env *envelope) (*canonParser, error) {
	body = bytes.TrimPrefix(body, []byte("\xef\xbb\xbf"))
	// out is never longer than the body but for a numMark (one byte) per
	// number that is longer in canonical form: unless the body is mostly
	// such numbers, out is allocated once.
	p := &canonParser{in: body, out: make([]byte, 0, len(body)), env: env}
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
	// Objects were recorded as they closed, inner ones first.
	slices.SortFunc(p.objs, func(a, b objSpan) int { return cmp.Compare(a.start, b.start) })
	return p, nil
}

// writeTo writes the canonical form to w: p.out with every recorded object's
// members in key order and the numbers behind numMarks in canonical form.
func (p *canonParser) writeTo(w io.Writer) {
	p.emit(w, 0, int32(len(p.out)), p.objs, 0)
}

// write writes p.out[start:end] to w, with the numbers in it behind a
// numMark in canonical form.
func (p *canonParser) write(w io.Writer, start, end int32) {
	for p.marks > 0 {
		i := bytes.IndexByte(p.out[start:end], numMark)
		if i < 0 {
			break
		}
		n := start + int32(i)
		w.Write(p.out[start:n])
		n++
		start = n
		for start < end && isNumberByte(p.out[start]) {
			start++
		}
		// parseCanonical parsed this text, in range, already.
		f, _ := strconv.ParseFloat(string(p.out[n:start]), 64)
		w.Write(appendPyFloat(p.numBuf[:0], f))
	}
	w.Write(p.out[start:end])
}

func isNumberByte(c byte) bool {
	return isDigit(c) || c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-'
}

// appender is an io.Writer onto a byte slice.
type appender struct{ b []byte }

func (a *appender) Write(b []byte) (int, error) {
	a.b = append(a.b, b...)
	return len(b), nil
}

// canonParser is a hand-written JSON parser that writes the canonical text
// as it goes, straight from the input: nothing is allocated per value, key
// or string (a key is referred to by where its canonical text is in out).
// What it allocates is out, about the size of the body; 8 bytes for each
// object whose members are not in canonical order; and, while writeTo
// reorders such an object, 8 bytes for each of its members. See
// TestCanonicalizeAllocationBound.
type canonParser struct {
	in  []byte
	pos int
	out []byte    // canonical text, but objects' members in input order
	env *envelope // optional

	objs  []objSpan // objects to reorder
	marks int       // numMarks in out
	grown int       // bytes numbers add to the document (see maxGrowth)

	levels [][]member         // emitObject's: the members of the object it writes, per level of nesting
	numBuf [maxFloatText]byte // number's and write's: a number's canonical text
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
		return p.str()
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

// objSpan is an object whose members are not in canonical order: its span
// in p.out, braces included. Offsets are int32 to keep the bookkeeping
// small: parseCanonical refuses an output of 2 GiB or more before they are
// used.
type objSpan struct{ start, end int32 }

// member is the span of one member's canonical `"key":value` in p.out; its
// key is the JSON string at start.
type member struct{ start, end int32 }

// object writes the object into p.out with its members in input order and,
// when they are not in canonical order (out of order, or a duplicate key),
// records it for writeTo to write its members in key order at the end.
// Nothing is moved while parsing, so each byte is copied at most twice
// however deep the nesting (rewriting each object in place would cost the
// depth times the size), and the only record is the object's span: whether
// members are in order needs only the previous key, which is in p.out.
func (p *canonParser) object(depth int) error {
	if depth > maxDepth {
		return p.errorf("nesting deeper than %d", maxDepth)
	}
	p.pos++ // '{'
	start := len(p.out)
	p.out = append(p.out, '{')
	p.skipSpace()
	if p.pos < len(p.in) && p.in[p.pos] == '}' {
		p.pos++
		p.out = append(p.out, '}')
		return nil
	}
	prev, sorted := -1, true // prev: where the previous member's key is in p.out
	for {
		p.skipSpace()
		if p.pos >= len(p.in) || p.in[p.pos] != '"' {
			return p.errorf("expected a string key")
		}
		if prev >= 0 {
			p.out = append(p.out, ',')
		}
		key := len(p.out)
		if err := p.str(); err != nil {
			return err
		}
		keyEnd := len(p.out)
		if sorted && prev >= 0 && compareKeys(p.out[prev:], p.out[key:]) >= 0 {
			sorted = false
		}
		prev = key
		p.skipSpace()
		if p.pos >= len(p.in) || p.in[p.pos] != ':' {
			return p.errorf("expected ':' after key")
		}
		p.pos++
		p.skipSpace()
		p.out = append(p.out, ':')
		srcStart := p.pos
		if err := p.value(depth); err != nil {
			return err
		}
		if depth == 1 && p.env != nil {
			// The canonical text of the five envelope keys is the key itself.
			if name := envelopeKey(p.out[key+1 : keyEnd-1]); name != "" {
				p.env.capture(name, p.in[srcStart:p.pos]) // later duplicates overwrite, as in Python
			}
		}
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
	if !sorted {
		if p.objs == nil {
			// There are at most as many objects to reorder as '{' in the
			// body, and one takes at least 10 bytes: {"":0,"":0}, or
			// {"":X,"":0} around another. Room for that many at once costs
			// at most 0.8 times the body, where doubling as they come could
			// cost 3.2 times.
			p.objs = make([]objSpan, 0, min(bytes.Count(p.in, []byte("{")), len(p.in)/10+1))
		}
		p.objs = grow(p.objs)
		p.objs = append(p.objs, objSpan{start: int32(start), end: int32(len(p.out))})
	}
	return nil
}

// compareKeys orders two keys as Python's sort_keys does: by code point,
// which is the byte order of their UTF-8 text. x and y start with the keys
// in canonical form (see appendPyRune), whose few escapes are undone on
// the fly; the form is one-to-one, so equal characters have equal text.
func compareKeys(x, y []byte) int {
	i := 1 // after the opening quotes
	for {
		a, b := x[i], y[i]
		switch {
		case a == b && a != '"' && a != '\\':
			i++
		case a == '\\' && b == '\\':
			ca, next := keyByte(x, i)
			if cb, _ := keyByte(y, i); ca != cb {
				return cmp.Compare(ca, cb)
			}
			i = next // the same escape, so the same length in y
		default: // a difference, or the end of both
			ca, _ := keyByte(x, i)
			cb, _ := keyByte(y, i)
			return cmp.Compare(ca, cb)
		}
	}
}

// keyByte decodes the byte of a key's canonical text at s[i:] and returns
// it with the index of the next one; -1 at the closing quote.
func keyByte(s []byte, i int) (int, int) {
	switch c := s[i]; c {
	case '"':
		return -1, i
	case '\\':
		switch e := s[i+1]; e {
		case 'u': // \u00xx: a control character
			return int(unhex(s[i+4])<<4 | unhex(s[i+5])), i + 6
		case 'b':
			return '\b', i + 2
		case 'f':
			return '\f', i + 2
		case 'n':
			return '\n', i + 2
		case 'r':
			return '\r', i + 2
		case 't':
			return '\t', i + 2
		default: // '"' or '\\'
			return int(e), i + 2
		}
	default:
		return int(c), i + 1
	}
}

// unhex is the value of a lowercase hex digit.
func unhex(c byte) byte {
	if c <= '9' {
		return c - '0'
	}
	return c - 'a' + 10
}

// envelopeKey returns the name of the envelope field a root key's text is,
// or "", without allocating.
func envelopeKey(k []byte) string {
	switch string(k) {
	case "session_id":
		return "session_id"
	case "status":
		return "status"
	case "webhook_type":
		return "webhook_type"
	case "timestamp":
		return "timestamp"
	case "created_at":
		return "created_at"
	}
	return ""
}

// grow makes room for one more element, doubling the capacity: append's
// gentler growth of large slices would allocate about five times the final
// size in all, slices.Grow's rounding up to about 2.4 times the capacity.
// Doubling allocates twice the final capacity in all, at most four times
// the final length.
func grow[S ~[]E, E any](s S) S {
	if len(s) < cap(s) {
		return s
	}
	ns := make(S, len(s), max(2*cap(s), 16))
	copy(ns, s)
	return ns
}

// emit writes p.out[start:end] to w with every recorded object in it
// written in key order; objs are the recorded objects inside that span,
// sorted by start (an object starts before the objects inside it).
// Recursion is bounded by maxDepth.
func (p *canonParser) emit(w io.Writer, start, end int32, objs []objSpan, level int) {
	pos := start
	for len(objs) > 0 {
		o := objs[0]
		n := 1 + firstFrom(objs[1:], o.end)
		p.write(w, pos, o.start)
		p.emitObject(w, o, objs[1:n], level) // objs[1:n]: the recorded objects inside o
		pos, objs = o.end, objs[n:]
	}
	p.write(w, pos, end)
}

// emitObject writes the recorded object o with its members in key order,
// keeping the last of equal keys as a Python dict keeps the last value
// given for a key. level is how many recorded objects o is inside.
//
// Its members are found again by scanning o's canonical text, which jumps
// over the recorded objects inside it, so every byte is scanned by the
// innermost recorded object around it only (twice: to count the members,
// then to note where each is). The members go in p.levels[level], which
// grows to exactly the count when it is too small: all it allocates is at
// most 8 bytes per member of a recorded object, i.e. 1.6 times the body
// (a member takes 5 bytes at least: "":0,).
func (p *canonParser) emitObject(w io.Writer, o objSpan, inner []objSpan, level int) {
	count := 0
	p.eachMember(o, inner, func(member) { count++ })
	if level == len(p.levels) {
		p.levels = append(p.levels, nil)
	}
	ms := p.levels[level][:0]
	if cap(ms) < count {
		ms = make([]member, 0, count)
	}
	p.eachMember(o, inner, func(m member) { ms = append(ms, m) })
	p.levels[level] = ms

	slices.SortStableFunc(ms, func(a, b member) int { return compareKeys(p.out[a.start:], p.out[b.start:]) })
	w.Write(openBrace)
	first := true
	for j, m := range ms {
		if j+1 < len(ms) && compareKeys(p.out[ms[j+1].start:], p.out[m.start:]) == 0 {
			continue
		}
		if !first {
			w.Write(comma)
		}
		first = false
		a := firstFrom(inner, m.start)
		b := a + firstFrom(inner[a:], m.end)
		p.emit(w, m.start, m.end, inner[a:b], level+1)
	}
	w.Write(closeBrace)
}

// eachMember calls f with each member of the recorded object o in input
// order; inner are the recorded objects inside o.
func (p *canonParser) eachMember(o objSpan, inner []objSpan, f func(member)) {
	k := 0 // inner[k:] are the recorded objects not yet passed
	for i := o.start + 1; ; i++ {
		m := member{start: i}
		i = p.skipString(i) + 1 // the key and ':'
		i, k = p.skipValue(i, inner, k)
		m.end = i
		f(m)
		if p.out[i] == '}' {
			return
		}
	}
}

var openBrace, closeBrace, comma = []byte("{"), []byte("}"), []byte(",")

// skipString returns the index just after the canonical JSON string at
// p.out[i], where a '"' inside is always escaped.
func (p *canonParser) skipString(i int32) int32 {
	for i++; ; i++ {
		switch p.out[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
}

// skipValue returns the index just after the canonical value at p.out[i],
// a member's value: the ',' or '}' that follows it. Recorded objects on the
// way (inner[k:], sorted by start) are jumped over; it also returns the
// index in inner of the first not passed.
func (p *canonParser) skipValue(i int32, inner []objSpan, k int) (int32, int) {
	depth := 0
	for {
		switch c := p.out[i]; c {
		case ',', '}':
			if depth == 0 {
				return i, k
			}
			if c == '}' {
				depth--
			}
			i++
		case '[':
			depth++
			i++
		case ']':
			depth--
			i++
		case '"':
			i = p.skipString(i)
		case '{':
			k += firstFrom(inner[k:], i)
			if k < len(inner) && inner[k].start == i {
				i = inner[k].end
				k += 1 + firstFrom(inner[k+1:], i)
				continue
			}
			depth++
			i++
		default:
			i++
		}
	}
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

// str parses a JSON string at p.pos and writes it to p.out as Python's
// encoder does (see appendPyRune). The decoded text must be valid UTF-8
// without surrogates (see Canonicalize for what is refused). Unescaped
// runs are copied as they are: they hold no '"', '\\' or control
// character, so their canonical form is themselves. Kept whole for the
// same reason as number: it is the byte loop every webhook body runs
// through, and its branches are the JSON grammar's, read top to bottom.
func (p *canonParser) str() error {
	p.pos++ // opening quote
	p.out = append(p.out, '"')
	for {
		start := p.pos
		for p.pos < len(p.in) {
			if c := p.in[p.pos]; c == '"' || c == '\\' || c < 0x20 {
				break
			}
			p.pos++
		}
		// Escapes decode to whole characters, so the text is valid UTF-8
		// exactly when every unescaped run is.
		run := p.in[start:p.pos]
		if !utf8.Valid(run) {
			return p.errorf("invalid UTF-8 in string")
		}
		p.out = append(p.out, run...)
		if p.pos >= len(p.in) {
			return p.errorf("unterminated string")
		}
		switch c := p.in[p.pos]; {
		case c == '"':
			p.pos++
			p.out = append(p.out, '"')
			return nil
		case c < 0x20:
			return p.errorf("control character in string")
		}
		// Escape sequence.
		if p.pos+1 >= len(p.in) {
			return p.errorf("unterminated escape")
		}
		e := p.in[p.pos+1]
		p.pos += 2
		var r rune
		switch e {
		case '"', '\\', '/':
			r = rune(e)
		case 'b':
			r = '\b'
		case 'f':
			r = '\f'
		case 'n':
			r = '\n'
		case 'r':
			r = '\r'
		case 't':
			r = '\t'
		case 'u':
			var ok bool
			if r, ok = p.hex4(); !ok {
				return p.errorf("invalid \\u escape")
			}
			if utf16.IsSurrogate(r) {
				// Only a high surrogate immediately followed by an escaped low
				// one makes a character; anything else is a lone surrogate.
				if r >= 0xDC00 || !bytes.HasPrefix(p.in[p.pos:], []byte(`\u`)) {
					return p.errorf("unpaired surrogate")
				}
				p.pos += 2
				r2, ok := p.hex4()
				if !ok {
					return p.errorf("invalid \\u escape")
				}
				if r2 < 0xDC00 || r2 > 0xDFFF {
					return p.errorf("unpaired surrogate")
				}
				r = utf16.DecodeRune(r, r2)
			}
		default:
			return p.errorf("invalid escape \\%c", e)
		}
		p.out = appendPyRune(p.out, r)
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
// NUMBER_RE) and writes it as Python would after shorten_floats. It stays
// one function on purpose: the grammar's states (sign, integer, fraction,
// exponent) and the decision they feed (int, integral float, float) are
// one scan over the bytes, checked as a whole against Python's output by
// the differential tests and the fuzz corpus; split, the states would be
// passed between pieces on the hottest path of verifying a webhook.
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
	var canonLen int
	if f == math.Trunc(f) && f > -(1<<63) && f < 1<<63 {
		// An integer (most floats that get longer are): measure, and write
		// now only if it does not get longer.
		if canonLen = intTextLen(int64(f)); canonLen <= len(text) {
			p.out = strconv.AppendInt(p.out, int64(f), 10)
			return nil
		}
	} else {
		canon := appendPyFloat(p.numBuf[:0], f)
		if canonLen = len(canon); canonLen <= len(text) {
			p.out = append(p.out, canon...)
			return nil
		}
	}
	// Longer in canonical form: keep the input's text behind numMark, and
	// write the canonical one only when writeTo gets there, so that out
	// stays about the size of the body, however long the numbers' canonical
	// form (1e308 is 309 digits).
	if p.grown += canonLen - len(text); p.grown > len(p.in)+maxGrowth {
		return p.errorf("numbers grow the document by more than its size plus %d bytes", maxGrowth)
	}
	p.marks++
	p.out = append(p.out, numMark)
	p.out = append(p.out, text...)
	return nil
}

// numMark in p.out is followed by the input's text of a number that is
// longer in canonical form. Canonical text never holds a raw control
// character, so the mark cannot be mistaken for anything else.
const numMark = 0x01

// intTextLen is len(strconv.AppendInt(nil, i, 10)).
func intTextLen(i int64) int {
	n, u := 1, uint64(i)
	if i < 0 {
		n, u = 2, -u
	}
	for ; u >= 10; u /= 10 {
		n++
	}
	return n
}

// maxFloatText is the longest appendPyFloat writes: int(-1.7976931348623157e308)
// has 309 digits and a sign.
const maxFloatText = 310

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// appendPyFloat writes f as Python's json.dumps does after shorten_floats:
// integral values as exact integers (int(f)), others as repr(f). It
// allocates nothing beyond what dst needs to grow.
func appendPyFloat(dst []byte, f float64) []byte {
	if f == math.Trunc(f) {
		if f > -(1<<63) && f < 1<<63 {
			return strconv.AppendInt(dst, int64(f), 10) // -0.0 becomes 0, as int(-0.0) does
		}
		return appendBigIntegral(dst, f)
	}
	// repr(float) is the shortest round-tripping digit string (as Go's -1
	// precision), in scientific form when the decimal exponent is < -4 or
	// >= 16, with at least two exponent digits and an explicit sign: Go's 'e'
	// format writes exactly that. Non-integral floats are < 2**52, so only
	// the small-exponent side occurs in practice.
	var buf [32]byte
	sci := strconv.AppendFloat(buf[:0], f, 'e', -1, 64)
	ePos := bytes.IndexByte(sci, 'e')
	exp := 0
	for _, c := range sci[ePos+2:] { // after "e+" or "e-"
		exp = exp*10 + int(c-'0')
	}
	if sci[ePos+1] == '-' {
		exp = -exp
	}
	if exp < -4 || exp >= 16 {
		return append(dst, sci...)
	}
	return strconv.AppendFloat(dst, f, 'f', -1, 64)
}

// appendBigIntegral writes the exact value of f, an integral float64 of
// magnitude 2**63 or more, digit for digit, as int(f) does. It is
// strconv.AppendFloat(dst, f, 'f', 0, 64) (or math/big), without the
// allocation of math/big and at a fifth of strconv's time: f is m·2**e
// with m < 2**53 and e <= 971, at most 1024 bits, written out in base 10**9
// by long division.
func appendBigIntegral(dst []byte, f float64) []byte {
	if f < 0 {
		dst = append(dst, '-')
		f = -f
	}
	bits := math.Float64bits(f)
	m := bits&(1<<52-1) | 1<<52
	e := int(bits>>52&0x7ff) - 1075 // f = m·2**e, e >= 11 here
	var limbs [34]uint32            // little-endian, base 2**32
	w, s := e/32, uint(e%32)
	lo, hi := m<<s, uint64(0)
	if s > 0 {
		hi = m >> (64 - s)
	}
	limbs[w], limbs[w+1], limbs[w+2] = uint32(lo), uint32(lo>>32), uint32(hi)
	n := w + 3
	var chunks [35]uint32 // base 10**9, least significant first
	nc := 0
	for n > 0 {
		for n > 0 && limbs[n-1] == 0 {
			n--
		}
		if n == 0 {
			break
		}
		var rem uint64
		for i := n - 1; i >= 0; i-- {
			cur := rem<<32 | uint64(limbs[i])
			limbs[i] = uint32(cur / 1e9)
			rem = cur % 1e9
		}
		chunks[nc] = uint32(rem)
		nc++
	}
	dst = strconv.AppendUint(dst, uint64(chunks[nc-1]), 10)
	for i := nc - 2; i >= 0; i-- {
		var d [9]byte
		for j, c := 8, chunks[i]; j >= 0; j-- {
			d[j] = byte('0' + c%10)
			c /= 10
		}
		dst = append(dst, d[:]...)
	}
	return dst
}

// appendPyRune writes r, a character of a JSON string, as Python's encoder
// does with ensure_ascii=False: only '"', '\\' and C0 controls are escaped,
// with the short forms where JSON has them and lowercase \u00xx otherwise.
// Everything else, including DEL, U+2028/U+2029 and <>&, is raw UTF-8.
// compareKeys reads this form back.
func appendPyRune(dst []byte, r rune) []byte {
	const hexDigits = "0123456789abcdef"
	switch r {
	case '"':
		return append(dst, '\\', '"')
	case '\\':
		return append(dst, '\\', '\\')
	case '\n':
		return append(dst, '\\', 'n')
	case '\r':
		return append(dst, '\\', 'r')
	case '\t':
		return append(dst, '\\', 't')
	case '\b':
		return append(dst, '\\', 'b')
	case '\f':
		return append(dst, '\\', 'f')
	}
	if r < 0x20 {
		return append(dst, '\\', 'u', '0', '0', hexDigits[r>>4], hexDigits[r&0xF])
	}
	return utf8.AppendRune(dst, r)
}
