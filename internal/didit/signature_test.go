package didit

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

const testSecret = "whsec_kycgate-test"

var testNow = time.Unix(1772446504, 0)

const signedBody = `{"session_id":"5f0c8a2e-1b7d-4c3a-9e61-0a4d2b9f7c11","status":"Approved","webhook_type":"status.updated",` +
	`"timestamp":1772446504,"created_at":1772446504,"vendor_data":"user-8812","metadata":{"name":"José Müller"},` +
	`"decision":{"status":"Approved","ip_analyses":[{"ip_address":"203.0.113.7","latitude":40.0,"longitude":-3.7,"score":5e-05}]}}`

// reserialised is signedBody as a proxy might re-encode it: other key order,
// whitespace, \u escapes, 40 instead of 40.0. Only X-Signature-V2 survives.
const reserialised = `{ "webhook_type": "status.updated", "status": "Approved", "timestamp": 1772446504,
  "session_id": "5f0c8a2e-1b7d-4c3a-9e61-0a4d2b9f7c11", "created_at": 1772446504, "vendor_data": "user-8812",
  "metadata": {"name": "Jos\u00e9 M\u00fcller"},
  "decision": {"ip_analyses": [{"score": 0.00005, "longitude": -3.70, "latitude": 40, "ip_address": "203.0.113.7"}], "status": "Approved"} }`

func signedHeaders(t *testing.T, body string, ts int64) http.Header {
	t.Helper()
	sig, err := Sign(testSecret, []byte(body), ts)
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{}
	sig.SetHeaders(h)
	return h
}

func TestSignSetHeaders(t *testing.T) {
	sig, err := Sign(testSecret, []byte(signedBody), 1772446504)
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{}
	sig.SetHeaders(h)
	for name, want := range map[string]string{
		"X-Signature":        sig.Raw,
		"X-Signature-V2":     sig.V2,
		"X-Signature-Simple": sig.Simple,
		"X-Timestamp":        "1772446504",
	} {
		if got := h.Get(name); got != want || got == "" {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	if sig.Raw == sig.V2 {
		t.Error("raw and V2 signatures should differ for a non-canonical body")
	}
	want := hexHMAC(testSecret, []byte("1772446504:5f0c8a2e-1b7d-4c3a-9e61-0a4d2b9f7c11:Approved:status.updated"))
	if sig.Simple != want {
		t.Errorf("Simple = %s, want %s", sig.Simple, want)
	}
	// Same data, other encoding: same V2.
	sig2, err := Sign(testSecret, []byte(reserialised), 1772446504)
	if err != nil {
		t.Fatal(err)
	}
	if sig2.V2 != sig.V2 || sig2.Simple != sig.Simple || sig2.Raw == sig.Raw {
		t.Errorf("re-serialised body: got %+v, original %+v", sig2, sig)
	}
}

func TestSignSimpleFields(t *testing.T) {
	// No timestamp in the body: ts is used. Missing fields are "".
	sig, err := Sign(testSecret, []byte(`{"session_id":"s1"}`), 42)
	if err != nil {
		t.Fatal(err)
	}
	if want := hexHMAC(testSecret, []byte("42:s1::")); sig.Simple != want {
		t.Errorf("Simple = %s, want HMAC of %q", sig.Simple, "42:s1::")
	}
	// Non-object body still signs.
	if _, err := Sign(testSecret, []byte(`[1,2]`), 42); err != nil {
		t.Errorf("Sign(array): %v", err)
	}
	if _, err := Sign(testSecret, []byte(`{"x":NaN}`), 42); !errors.Is(err, ErrNotCanonicalizable) {
		t.Errorf("Sign(NaN) error = %v, want ErrNotCanonicalizable", err)
	}
}

func TestVerifyWebhook(t *testing.T) {
	good := signedHeaders(t, signedBody, 1772446504)
	with := func(mod func(h http.Header)) http.Header {
		h := good.Clone()
		mod(h)
		return h
	}
	// at is h with X-Timestamp moved by d seconds from the body's timestamp.
	at := func(h http.Header, d int64) http.Header {
		h = h.Clone()
		h.Set("X-Timestamp", strconv.FormatInt(testNow.Unix()+d, 10))
		return h
	}
	cases := []struct {
		name string
		h    http.Header
		body string
		now  time.Time
		want error
	}{
		{"all headers", good, signedBody, testNow, nil},
		{"v2 only", with(func(h http.Header) { h.Del("X-Signature"); h.Del("X-Signature-Simple") }), signedBody, testNow, nil},
		{"raw only", with(func(h http.Header) { h.Del("X-Signature-V2") }), signedBody, testNow, nil},
		{"v2 survives re-serialisation", good, reserialised, testNow, nil},
		{"raw does not survive re-serialisation", with(func(h http.Header) { h.Del("X-Signature-V2") }), reserialised, testNow, ErrBadSignature},
		{"bad v2, good raw", with(func(h http.Header) { h.Set("X-Signature-V2", strings.Repeat("0", 64)) }), signedBody, testNow, nil},
		{"upper-case hex", with(func(h http.Header) { h.Set("X-Signature-V2", strings.ToUpper(h.Get("X-Signature-V2"))) }), signedBody, testNow, nil},
		{"not hex", with(func(h http.Header) { h.Set("X-Signature-V2", "zz"); h.Del("X-Signature") }), signedBody, testNow, ErrBadSignature},
		{"both bad", with(func(h http.Header) {
			h.Set("X-Signature-V2", strings.Repeat("a", 64))
			h.Set("X-Signature", strings.Repeat("b", 64))
		}), signedBody, testNow, ErrBadSignature},
		{"tampered body", good, strings.Replace(signedBody, `"Approved","webhook`, `"Declined","webhook`, 1), testNow, ErrBadSignature},
		{"simple only", with(func(h http.Header) { h.Del("X-Signature"); h.Del("X-Signature-V2") }), signedBody, testNow, ErrOnlySimpleSignature},
		{"no signatures", with(func(h http.Header) {
			h.Del("X-Signature")
			h.Del("X-Signature-V2")
			h.Del("X-Signature-Simple")
		}), signedBody, testNow, ErrMissingSignature},
		{"no timestamp", with(func(h http.Header) { h.Del("X-Timestamp") }), signedBody, testNow, ErrMissingTimestamp},
		{"timestamp not integer", with(func(h http.Header) { h.Set("X-Timestamp", "1772446504.5") }), signedBody, testNow, ErrBadTimestamp},
		{"timestamp garbage", with(func(h http.Header) { h.Set("X-Timestamp", "yesterday") }), signedBody, testNow, ErrBadTimestamp},
		{"300 s late is fine", good, signedBody, testNow.Add(300 * time.Second), nil},
		{"300 s early is fine", good, signedBody, testNow.Add(-300 * time.Second), nil},
		{"301 s late", good, signedBody, testNow.Add(301 * time.Second), ErrStaleTimestamp},
		{"301 s early", good, signedBody, testNow.Add(-301 * time.Second), ErrStaleTimestamp},
		// X-Timestamp is not signed: the signed body's own timestamp is what
		// dates a delivery, so an old body under a fresh header is refused.
		{"replayed body, fresh header", at(good, 1000), signedBody, testNow.Add(1000 * time.Second), ErrStaleTimestamp},
		{"replayed body, fresh header, raw only", at(with(func(h http.Header) { h.Del("X-Signature-V2") }), 1000), signedBody, testNow.Add(1000 * time.Second), ErrStaleTimestamp},
		{"replayed body, fresh header, v2 only", at(with(func(h http.Header) { h.Del("X-Signature") }), 1000), signedBody, testNow.Add(1000 * time.Second), ErrStaleTimestamp},
		{"body 301 s old, header fresh", at(good, 301), signedBody, testNow.Add(301 * time.Second), ErrStaleTimestamp},
		{"body 301 s ahead, header fresh", at(good, -301), signedBody, testNow.Add(-301 * time.Second), ErrStaleTimestamp},
		// Didit may re-sign a retry with a new X-Timestamp: the header need
		// not equal the body's timestamp, only both be fresh.
		{"retry with a newer header", at(good, 200), signedBody, testNow.Add(200 * time.Second), nil},
		{"retry with a newer header, raw only", at(with(func(h http.Header) { h.Del("X-Signature-V2") }), 300), signedBody, testNow.Add(300 * time.Second), nil},
		{"header older than body", at(good, -250), signedBody, testNow, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := VerifyWebhook(testSecret, c.h, []byte(c.body), c.now)
			if !errors.Is(err, c.want) || (c.want == nil && err != nil) {
				t.Fatalf("VerifyWebhook = %v, want %v", err, c.want)
			}
		})
	}
	if err := VerifyWebhook("", good, []byte(signedBody), testNow); !errors.Is(err, ErrNoSecret) {
		t.Errorf("empty secret: %v, want ErrNoSecret", err)
	}
	if err := VerifyWebhook("other-secret", good, []byte(signedBody), testNow); !errors.Is(err, ErrBadSignature) {
		t.Errorf("wrong secret: %v, want ErrBadSignature", err)
	}
	// A body without its own time is refused however fresh and well signed
	// its header: X-Timestamp is not signed, so it could be replayed later.
	body := `{"session_id":"s","status":"In Progress","webhook_type":"status.updated"}`
	if err := VerifyWebhook(testSecret, signedHeaders(t, body, testNow.Unix()), []byte(body), testNow); !errors.Is(err, ErrNoEventTime) {
		t.Errorf("body without timestamp: %v, want ErrNoEventTime", err)
	}
}

// TestVerifyWebhookBodyTime: the body's integer `timestamp`, or else its
// `created_at`, must be fresh; X-Timestamp (fresh in every case) is not
// compared with it.
func TestVerifyWebhookBodyTime(t *testing.T) {
	now := testNow.Unix()
	cases := []struct {
		name, body string
		want       error
	}{
		{"timestamp fresh", fmt.Sprintf(`{"timestamp":%d}`, now-299), nil},
		{"timestamp stale", fmt.Sprintf(`{"timestamp":%d}`, now-301), ErrStaleTimestamp},
		{"timestamp as float", fmt.Sprintf(`{"timestamp":%d.0}`, now-301), ErrStaleTimestamp},
		{"timestamp far future", `{"timestamp":9223372036854775807}`, ErrStaleTimestamp},
		{"created_at only, fresh", fmt.Sprintf(`{"created_at":%d}`, now+299), nil},
		{"created_at only, stale", fmt.Sprintf(`{"created_at":%d}`, now-301), ErrStaleTimestamp},
		{"timestamp wins over created_at", fmt.Sprintf(`{"timestamp":%d,"created_at":%d}`, now, now-86400), nil},
		{"stale timestamp, fresh created_at", fmt.Sprintf(`{"timestamp":%d,"created_at":%d}`, now-86400, now), ErrStaleTimestamp},
		{"non-integer timestamp falls back", fmt.Sprintf(`{"timestamp":"%d","created_at":%d}`, now, now-301), ErrStaleTimestamp},
		{"created_at as a date is no event time", `{"created_at":"2026-03-02T10:15:04Z"}`, ErrNoEventTime},
		{"no time at all", `{"session_id":"s"}`, ErrNoEventTime},
		{"duplicate timestamp: the last counts", fmt.Sprintf(`{"timestamp":%d,"timestamp":%d}`, now, now-301), ErrStaleTimestamp},
		{"BOM", fmt.Sprintf("\ufeff{\"timestamp\":%d}", now-301), ErrStaleTimestamp},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sig, err := Sign(testSecret, []byte(c.body), now)
			if err != nil {
				t.Fatal(err)
			}
			for _, only := range []string{HeaderSignature, HeaderSignatureV2} {
				h := http.Header{}
				h.Set(HeaderTimestamp, strconv.FormatInt(now, 10))
				if only == HeaderSignature {
					h.Set(only, sig.Raw)
				} else {
					h.Set(only, sig.V2)
				}
				err := VerifyWebhook(testSecret, h, []byte(c.body), testNow)
				if !errors.Is(err, c.want) || (c.want == nil && err != nil) {
					t.Errorf("%s only: VerifyWebhook = %v, want %v", only, err, c.want)
				}
			}
		})
	}
}

func BenchmarkCanonicalizeAndSign(b *testing.B) {
	body := []byte(benchWebhookBody(b))
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Sign(testSecret, body, 1772446504); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyWebhook(b *testing.B) {
	body := []byte(benchWebhookBody(b))
	sig, err := Sign(testSecret, body, 1772446504)
	if err != nil {
		b.Fatal(err)
	}
	h := http.Header{}
	sig.SetHeaders(h)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if err := VerifyWebhook(testSecret, h, body, testNow); err != nil {
			b.Fatal(err)
		}
	}
}

// benchWebhookBody is the full Declined webhook from the Python vectors
// (a realistic ~3.5 KB delivery with a v3 decision).
func benchWebhookBody(b testing.TB) string {
	for _, v := range loadVectors(b).Vectors {
		if v.Name == "webhook_full_declined" {
			return v.Input
		}
	}
	b.Fatal("vector webhook_full_declined missing")
	return ""
}
