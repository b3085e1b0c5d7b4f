package diditsim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Didit's backend is Python. Its JSON differs from Go's in ways that matter
// for X-Signature-V2 (docs/didit.md §6.4), so the simulator writes bytes the way
// Python would rather than the way encoding/json would.

// Float is a JSON number written like Python's repr(float): an
// integer-valued float keeps its ".0" (40.0), and exponent form is used below
// 1e-4 and from 1e16 on (5e-05, 1e+16). encoding/json would write 40 and
// 0.00005, hiding exactly the cases a canonicaliser must get right.
type Float float64

// MarshalJSON implements json.Marshaler.
func (f Float) MarshalJSON() ([]byte, error) {
	v := float64(f)
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return nil, fmt.Errorf("diditsim: cannot encode %v as JSON", v)
	}
	return []byte(pyFloatRepr(v)), nil
}

// pyFloatRepr formats v as Python 3's repr(float) does: the shortest
// round-tripping digits, fixed notation when the decimal exponent is in
// [-4, 16), else d.ddde±XX.
func pyFloatRepr(v float64) string {
	if v == 0 {
		if math.Signbit(v) {
			return "-0.0"
		}
		return "0.0"
	}
	e := strconv.FormatFloat(v, 'e', -1, 64) // e.g. "-4.041e+01"
	mant, expText, _ := strings.Cut(e, "e")
	exp, _ := strconv.Atoi(expText)
	if exp < -4 || exp >= 16 {
		sign := "+"
		if exp < 0 {
			sign, exp = "-", -exp
		}
		return fmt.Sprintf("%se%s%02d", mant, sign, exp)
	}
	s := strconv.FormatFloat(v, 'f', -1, 64)
	if !strings.Contains(s, ".") {
		s += ".0"
	}
	return s
}

// marshalCompact is what Didit's REST API (Django REST framework) sends:
// compact separators, raw UTF-8, no HTML escaping, Python float text.
func marshalCompact(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}

// marshalPythonDefault is what Python's json.dumps(obj) writes with its
// default arguments, which is how a Python sender (requests' json=)
// serialises a webhook: ", " and ": " separators, keys in insertion order,
// and ensure_ascii (every non-ASCII character as a lowercase \uXXXX escape,
// astral ones as surrogate pairs). The raw body therefore differs from the
// canonical form in spacing, escaping and floats, as Didit's real bodies do.
func marshalPythonDefault(v any) ([]byte, error) {
	compact, err := marshalCompact(v)
	if err != nil {
		return nil, err
	}
	return pythonDefaultStyle(compact), nil
}

// pythonDefaultStyle rewrites compact JSON into json.dumps' default style.
func pythonDefaultStyle(compact []byte) []byte {
	out := make([]byte, 0, len(compact)+len(compact)/8)
	inString, escaped := false, false
	for i := 0; i < len(compact); {
		c := compact[i]
		if !inString {
			switch c {
			case '"':
				inString = true
				out = append(out, c)
			case ',':
				out = append(out, ',', ' ')
			case ':':
				out = append(out, ':', ' ')
			default:
				out = append(out, c)
			}
			i++
			continue
		}
		switch {
		case escaped:
			escaped = false
			out = append(out, c)
			i++
		case c == '\\':
			escaped = true
			out = append(out, c)
			i++
		case c == '"':
			inString = false
			out = append(out, c)
			i++
		case c < 0x7f:
			out = append(out, c)
			i++
		default:
			r, size := utf8.DecodeRune(compact[i:])
			i += size
			if r >= 0x10000 {
				r -= 0x10000
				out = fmt.Appendf(out, `\u%04x\u%04x`, 0xd800+(r>>10), 0xdc00+(r&0x3ff))
			} else {
				out = fmt.Appendf(out, `\u%04x`, r)
			}
		}
	}
	return out
}

// pyReencode re-serialises a client's JSON value the way Didit's Python
// backend would after json.loads: object keys keep their order, strings are
// re-escaped, integers stay as written and every other number becomes a
// Python float (so 1e-5 turns into 1e-05 and 2.50 into 2.5). Storing the
// client's bytes verbatim instead would leak its escaping choices (Go's
// \u003c for "<", say) into the webhook body.
func pyReencode(raw []byte) (json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var out bytes.Buffer
	if err := reencodeValue(dec, &out); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

func reencodeValue(dec *json.Decoder, out *bytes.Buffer) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	switch t := tok.(type) {
	case json.Delim:
		open, end := byte(t), byte('}')
		if t == '[' {
			end = ']'
		}
		out.WriteByte(open)
		for i := 0; dec.More(); i++ {
			if i > 0 {
				out.WriteByte(',')
			}
			if open == '{' {
				key, err := dec.Token()
				if err != nil {
					return err
				}
				if err := writeJSONString(out, key.(string)); err != nil {
					return err
				}
				out.WriteByte(':')
			}
			if err := reencodeValue(dec, out); err != nil {
				return err
			}
		}
		if _, err := dec.Token(); err != nil { // the closing delimiter
			return err
		}
		out.WriteByte(end)
	case string:
		return writeJSONString(out, t)
	case json.Number:
		s := t.String()
		if !strings.ContainsAny(s, ".eE") {
			if s == "-0" {
				s = "0" // Python's int has no negative zero
			}
			out.WriteString(s)
			return nil
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return fmt.Errorf("number %s: %w", s, err)
		}
		out.WriteString(pyFloatRepr(f))
	case bool:
		out.WriteString(strconv.FormatBool(t))
	case nil:
		out.WriteString("null")
	}
	return nil
}

func writeJSONString(out *bytes.Buffer, s string) error {
	b, err := marshalCompact(s)
	if err != nil {
		return err
	}
	out.Write(b)
	return nil
}
