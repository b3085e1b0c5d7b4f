package didit

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Header names Didit uses on webhook deliveries.
const (
	HeaderSignature       = "X-Signature"
	HeaderSignatureV2     = "X-Signature-V2"
	HeaderSignatureSimple = "X-Signature-Simple"
	HeaderTimestamp       = "X-Timestamp"
)

// MaxWebhookSkew is how far X-Timestamp, and the body's own timestamp, may
// be from our clock, either way.
const MaxWebhookSkew = 300 * time.Second

// Errors from VerifyWebhook. The HTTP layer answers 401 for all of them; they
// are distinct so the log says why a delivery was refused.
var (
	// ErrNoSecret: VerifyWebhook was called without a secret. Anyone can
	// compute an HMAC under the empty key, so this is a misconfiguration,
	// never a pass.
	ErrNoSecret = errors.New("didit webhook: no webhook secret configured")
	// ErrMissingTimestamp: no X-Timestamp header.
	ErrMissingTimestamp = errors.New("didit webhook: missing X-Timestamp")
	// ErrBadTimestamp: X-Timestamp is not integer Unix seconds.
	ErrBadTimestamp = errors.New("didit webhook: malformed X-Timestamp")
	// ErrStaleTimestamp: X-Timestamp, or the signed body's own timestamp,
	// is more than MaxWebhookSkew from now.
	ErrStaleTimestamp = errors.New("didit webhook: timestamp outside the allowed window")
	// ErrMissingSignature: neither X-Signature-V2 nor X-Signature is present.
	ErrMissingSignature = errors.New("didit webhook: missing X-Signature-V2 and X-Signature")
	// ErrOnlySimpleSignature: only X-Signature-Simple was sent; it does not
	// cover the decision, so it is never enough.
	ErrOnlySimpleSignature = errors.New("didit webhook: only X-Signature-Simple present, which is not accepted")
	// ErrBadSignature: a signature was present but none matched.
	ErrBadSignature = errors.New("didit webhook: signature mismatch")
	// ErrNoEventTime: the signed body carries neither an integer
	// `timestamp` nor `created_at`. X-Timestamp is not signed, so without
	// one the event could be replayed at any time under a fresh header.
	ErrNoEventTime = errors.New("didit webhook: signed body has no timestamp")
)

// Signatures are the header values Didit puts on one webhook delivery.
type Signatures struct {
	Raw       string // X-Signature: hex HMAC-SHA256 of the raw body
	V2        string // X-Signature-V2: hex HMAC-SHA256 of Canonicalize(body)
	Simple    string // X-Signature-Simple: hex HMAC-SHA256 of "ts:session_id:status:webhook_type"
	Timestamp int64  // X-Timestamp, Unix seconds
}

// Sign computes all three signatures of body, as Didit does, at timestamp ts.
// The key is the secret's UTF-8 bytes: Didit secrets are opaque strings and
// are never base64-decoded.
//
// X-Signature-Simple signs "timestamp:session_id:status:webhook_type" from
// the body, missing or non-string fields as "". Its timestamp is the body's
// integer `timestamp` (as Didit's code reads it), or ts when the body has
// none; Didit always sends both equal.
//
// It fails only when body cannot be canonicalised (see Canonicalize).
func Sign(secret string, body []byte, ts int64) (Signatures, error) {
	var env envelope
	canon, err := canonicalize(body, &env)
	if err != nil {
		return Signatures{}, fmt.Errorf("didit: sign webhook: %w", err)
	}
	tsText := strconv.FormatInt(ts, 10)
	if env.hasTimestamp {
		tsText = strconv.FormatInt(env.timestamp, 10)
	}
	simple := tsText + ":" + env.sessionID + ":" + env.status + ":" + env.webhookType
	return Signatures{
		Raw:       hexHMAC(secret, body),
		V2:        hexHMAC(secret, canon),
		Simple:    hexHMAC(secret, []byte(simple)),
		Timestamp: ts,
	}, nil
}

// SetHeaders writes the signature headers onto h.
func (s Signatures) SetHeaders(h http.Header) {
	h.Set(HeaderSignature, s.Raw)
	h.Set(HeaderSignatureV2, s.V2)
	h.Set(HeaderSignatureSimple, s.Simple)
	h.Set(HeaderTimestamp, strconv.FormatInt(s.Timestamp, 10))
}

// VerifyWebhook accepts a delivery when X-Signature (checked first: one HMAC
// of the raw body) or else X-Signature-V2 matches, and X-Timestamp is within
// 300 s of now. X-Signature-Simple alone is refused: it does not cover the
// decision.
//
// X-Timestamp itself is not covered by any signature, so a captured body
// could be replayed under a fresh header. The signed body must therefore
// carry its own time, an integer `timestamp` (Didit's always do) or else
// `created_at`, within 300 s of now: it is what stops the replay of an old
// body, and the event time that orders decisions comes from it alone. The
// two need not be equal: Didit may re-sign a retry with a new X-Timestamp.
// Errors are the Err* sentinels above (possibly wrapped).
//
// The cheap checks come first, so a forged delivery costs as little as
// possible before it is refused: the headers (CheckWebhookHeaders), then
// X-Signature, and only then the canonical form X-Signature-V2 needs (one
// parse of the body, about its size in memory; see canonicalHMAC). A
// signature header that is not 64 hex digits cannot match and is ignored:
// a malformed X-Signature-V2 never costs a canonicalisation.
func VerifyWebhook(secret string, h http.Header, body []byte, now time.Time) error {
	if secret == "" {
		return ErrNoSecret
	}
	raw, v2, err := checkHeaders(h, now)
	if err != nil {
		return err
	}
	var env envelope
	haveEnv, ok := false, false
	if raw != "" {
		ok = hexEqual(raw, hmacSum(secret, body))
	}
	if !ok && v2 != "" {
		// A body we cannot canonicalise cannot match V2.
		if sum, err := canonicalHMAC(secret, body, &env); err == nil {
			haveEnv = true
			ok = hexEqual(v2, sum)
		}
	}
	if !ok {
		return ErrBadSignature
	}

	if !haveEnv {
		env = parseEnvelope(body)
	}
	bodyTS, ok := env.time()
	if !ok {
		return ErrNoEventTime
	}
	skew := int64(MaxWebhookSkew / time.Second)
	if !withinSkew(bodyTS, now.Unix(), skew) {
		return fmt.Errorf("%w: body timestamp %d, now %d", ErrStaleTimestamp, bodyTS, now.Unix())
	}
	return nil
}

// CheckWebhookHeaders is the part of VerifyWebhook that needs neither the
// body nor the secret: X-Timestamp present, an integer, within 300 s of
// now; and X-Signature or X-Signature-V2 present as 64 hex digits (the
// length of a hex HMAC-SHA256). A delivery it refuses, VerifyWebhook
// refuses with the same error, so a server may call it before reading the
// body. It hashes nothing, and allocates nothing unless it refuses.
func CheckWebhookHeaders(h http.Header, now time.Time) error {
	_, _, err := checkHeaders(h, now)
	return err
}

// checkHeaders is CheckWebhookHeaders, returning the signatures that can
// match: each is "" when absent or not 64 hex digits.
func checkHeaders(h http.Header, now time.Time) (raw, v2 string, err error) {
	skew := int64(MaxWebhookSkew / time.Second)
	tsHeader := strings.TrimSpace(h.Get(HeaderTimestamp))
	if tsHeader == "" {
		return "", "", ErrMissingTimestamp
	}
	ts, err := strconv.ParseInt(tsHeader, 10, 64)
	if err != nil {
		return "", "", ErrBadTimestamp
	}
	if !withinSkew(ts, now.Unix(), skew) {
		return "", "", fmt.Errorf("%w: X-Timestamp %d, now %d", ErrStaleTimestamp, ts, now.Unix())
	}

	v2 = strings.TrimSpace(h.Get(HeaderSignatureV2))
	raw = strings.TrimSpace(h.Get(HeaderSignature))
	if v2 == "" && raw == "" {
		if h.Get(HeaderSignatureSimple) != "" {
			return "", "", ErrOnlySimpleSignature
		}
		return "", "", ErrMissingSignature
	}
	if !isMACHex(raw) {
		raw = ""
	}
	if !isMACHex(v2) {
		v2 = ""
	}
	if raw == "" && v2 == "" {
		return "", "", fmt.Errorf("%w: no signature is 64 hex digits", ErrBadSignature)
	}
	return raw, v2, nil
}

// isMACHex reports whether s is a hex HMAC-SHA256: 64 hex digits, either case.
func isMACHex(s string) bool {
	if len(s) != 2*sha256.Size {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

// withinSkew reports |ts-now| <= skew without overflowing on hostile values.
func withinSkew(ts, now, skew int64) bool {
	if ts >= now {
		return uint64(ts)-uint64(now) <= uint64(skew)
	}
	return uint64(now)-uint64(ts) <= uint64(skew)
}

func hmacSum(secret string, msg []byte) []byte {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(msg)
	return m.Sum(nil)
}

func hexHMAC(secret string, msg []byte) string { return hex.EncodeToString(hmacSum(secret, msg)) }

// hexEqual compares a received hex signature with the expected MAC in
// constant time. Decoding first makes upper-case hex acceptable.
func hexEqual(got string, want []byte) bool {
	b, err := hex.DecodeString(got)
	if err != nil {
		return false
	}
	return hmac.Equal(b, want)
}

// envelope is the handful of top-level webhook fields the signatures need.
type envelope struct {
	sessionID, status, webhookType string
	timestamp, createdAt           int64
	hasTimestamp, hasCreatedAt     bool
}

// time is the body's own Unix time: its integer `timestamp`, or else its
// integer `created_at`.
func (e envelope) time() (int64, bool) {
	if e.hasTimestamp {
		return e.timestamp, true
	}
	return e.createdAt, e.hasCreatedAt
}

// capture records one root member if it is an envelope field.
func (e *envelope) capture(key string, raw []byte) {
	switch key {
	case "session_id":
		e.sessionID = rawString(raw)
	case "status":
		e.status = rawString(raw)
	case "webhook_type":
		e.webhookType = rawString(raw)
	case "timestamp":
		e.timestamp, e.hasTimestamp = rawInt(raw)
	case "created_at":
		e.createdAt, e.hasCreatedAt = rawInt(raw)
	}
}

// parseEnvelope reads the envelope leniently: a body that is not an object,
// or fields of the wrong type, just leave the fields empty. A UTF-8 BOM is
// skipped, as canonicalize does.
func parseEnvelope(body []byte) envelope {
	var m map[string]json.RawMessage
	if json.Unmarshal(bytes.TrimPrefix(body, []byte("\xef\xbb\xbf")), &m) != nil {
		return envelope{}
	}
	var env envelope
	for _, k := range []string{"session_id", "status", "webhook_type", "timestamp", "created_at"} {
		env.capture(k, m[k])
	}
	return env
}

// rawString returns the JSON string in raw, or "" for anything else.
func rawString(raw json.RawMessage) string {
	if len(raw) == 0 || raw[0] != '"' {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return ""
	}
	return s
}

// rawInt returns raw as an int64 when it is an integer-valued JSON number
// (1772446504 or 1772446504.0).
func rawInt(raw json.RawMessage) (int64, bool) {
	if len(raw) == 0 || !(raw[0] == '-' || (raw[0] >= '0' && raw[0] <= '9')) {
		return 0, false
	}
	if i, err := strconv.ParseInt(string(raw), 10, 64); err == nil {
		return i, true
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	if err != nil || f != float64(int64(f)) {
		return 0, false
	}
	return int64(f), true
}
