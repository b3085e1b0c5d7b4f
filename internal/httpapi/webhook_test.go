package httpapi_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kycgate/kycgate/internal/contract"
	"github.com/kycgate/kycgate/internal/didit"
	"github.com/kycgate/kycgate/internal/httpapi"
	"github.com/kycgate/kycgate/internal/kyc"
)

// maxWebhookBody is the endpoint's documented limit (api/openapi.yaml).
const maxWebhookBody = 256 << 10

// fakeVerifier counts what the handler asks of it.
type fakeVerifier struct {
	headerErr error
	verify    func(body []byte) error // nil: accept
	checks    atomic.Int32
	verifies  atomic.Int32
}

func (f *fakeVerifier) CheckHeaders(http.Header, time.Time) error {
	f.checks.Add(1)
	return f.headerErr
}

func (f *fakeVerifier) Verify(_ http.Header, body []byte, _ time.Time) error {
	f.verifies.Add(1)
	if f.verify == nil {
		return nil
	}
	return f.verify(body)
}

func (f *fakeVerifier) Parse([]byte) (kyc.SessionEvent, error) {
	return kyc.SessionEvent{}, httpapi.ErrIgnoredEvent
}

// countingReader is a body that counts the bytes read from it.
type countingReader struct {
	r    io.Reader
	read atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.read.Add(int64(n))
	return n, err
}

// postWebhook serves one webhook delivery of body, with its length
// declared or not (chunked), and returns the recorder and how much of the
// body the server read.
func postWebhook(t *testing.T, srv http.Handler, body []byte, declared bool) (*httptest.ResponseRecorder, int64) {
	t.Helper()
	cr := &countingReader{r: bytes.NewReader(body)}
	req := httptest.NewRequest("POST", "/webhooks/didit", cr)
	req.ContentLength = -1
	if declared {
		req.ContentLength = int64(len(body))
	}
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, req)
	return rec, cr.read.Load()
}

func checkEnvelope(t *testing.T, rec *httptest.ResponseRecorder, code int, status string) {
	t.Helper()
	var e struct {
		StatusCode int    `json:"statusCode"`
		Status     string `json:"status"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || rec.Code != code || e.StatusCode != code || e.Status != status {
		t.Fatalf("answer %d %s, want %d %s", rec.Code, rec.Body, code, status)
	}
}

// TestWebhookBodyLimit: a delivery declaring more than 256 KiB is refused
// with the usual 413 envelope before its headers are checked or its body
// read; one that turns out longer than declared-or-not is refused when it
// passes the limit; one of exactly 256 KiB is verified.
func TestWebhookBodyLimit(t *testing.T) {
	f := &fakeVerifier{}
	srv := httpapi.New(httpapi.Config{Webhooks: f})
	big := bytes.Repeat([]byte("x"), maxWebhookBody+1)

	rec, read := postWebhook(t, srv, big, true)
	checkEnvelope(t, rec, 413, "payload_too_large")
	if read != 0 || f.checks.Load() != 0 {
		t.Errorf("declared oversize body: %d bytes read, %d header checks; want none", read, f.checks.Load())
	}

	rec, read = postWebhook(t, srv, big, false)
	checkEnvelope(t, rec, 413, "payload_too_large")
	if read > maxWebhookBody+1 || f.verifies.Load() != 0 {
		t.Errorf("chunked oversize body: %d bytes read, %d verifications", read, f.verifies.Load())
	}

	var got int
	f.verify = func(body []byte) error { got = len(body); return nil }
	for _, declared := range []bool{true, false} {
		rec, _ = postWebhook(t, srv, big[:maxWebhookBody], declared)
		checkEnvelope(t, rec, 200, "webhook_received")
		if got != maxWebhookBody {
			t.Errorf("declared %v: verified a body of %d bytes, want %d", declared, got, maxWebhookBody)
		}
	}
}

// TestWebhookHeadersCheckedFirst: headers the verifier refuses are
// answered 401 without reading the body or verifying anything.
func TestWebhookHeadersCheckedFirst(t *testing.T) {
	f := &fakeVerifier{headerErr: didit.ErrMissingSignature}
	srv := httpapi.New(httpapi.Config{Webhooks: f})
	rec, read := postWebhook(t, srv, []byte(`{"session_id":"s"}`), true)
	checkEnvelope(t, rec, 401, "invalid_webhook_signature")
	if read != 0 || f.verifies.Load() != 0 {
		t.Errorf("%d bytes read, %d verifications; want none", read, f.verifies.Load())
	}
}

// TestWebhookVerificationsBounded: at most half the CPUs' worth of
// verifications run at once (at least one); the others wait, and those
// still waiting when their request's time runs out get 503 server_busy
// with Retry-After, as documented.
func TestWebhookVerificationsBounded(t *testing.T) {
	slots := max(1, runtime.GOMAXPROCS(0)/2)
	release := make(chan struct{})
	var running, peak atomic.Int32
	f := &fakeVerifier{verify: func([]byte) error {
		n := running.Add(1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		<-release
		running.Add(-1)
		return didit.ErrBadSignature
	}}
	srv := httptest.NewServer(httpapi.New(httpapi.Config{Webhooks: f, RequestTimeout: 300 * time.Millisecond}))
	defer srv.Close()
	v, err := contract.Load()
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Transport: contract.Transport(t, v, nil)}

	const n = 8
	codes := make(chan int, n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			resp, err := client.Post(srv.URL+"/webhooks/didit", "application/json", strings.NewReader(`{}`))
			if err != nil {
				t.Error(err)
				codes <- 0
				return
			}
			if resp.StatusCode == 503 && resp.Header.Get("Retry-After") == "" {
				t.Error("503 without Retry-After")
			}
			resp.Body.Close()
			codes <- resp.StatusCode
		})
	}
	// The waiting requests give up at their deadline (300 ms); then let
	// the running verifications finish.
	time.Sleep(600 * time.Millisecond)
	close(release)
	wg.Wait()
	close(codes)
	byCode := map[int]int{}
	for c := range codes {
		byCode[c]++
	}
	if p := peak.Load(); int(p) != min(slots, n) {
		t.Errorf("%d verifications ran at once, want %d", p, min(slots, n))
	}
	if byCode[401] != min(slots, n) || byCode[503] != n-min(slots, n) {
		t.Errorf("answers %v, want %d × 401 and %d × 503", byCode, min(slots, n), n-min(slots, n))
	}
}

// TestWebhookSignatureForms: through the handler, Didit's deliveries pass
// with either signature alone or both, and forged or malformed ones get
// 401; a body of the documented limit is verified like any other.
func TestWebhookSignatureForms(t *testing.T) {
	const secret = "whsec-test"
	srv := httptest.NewServer(httpapi.New(httpapi.Config{Webhooks: didit.Webhooks{Secret: secret}}))
	defer srv.Close()
	v, err := contract.Load()
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Transport: contract.Transport(t, v, nil)}
	now := time.Now().Unix()
	// An event type kycgate acknowledges and drops: no service needed.
	small := []byte(`{"webhook_type":"user.data.updated","session_id":"s1","status":"Approved","timestamp":` + strconv.FormatInt(now, 10) + `}`)
	pad := strings.Repeat("x", maxWebhookBody-len(small)-len(`,"note":""`))
	limit := append(append(small[:len(small)-1:len(small)-1], `,"note":"`+pad+`"`...), '}')
	if len(limit) != maxWebhookBody {
		t.Fatalf("limit body is %d bytes", len(limit))
	}
	for _, body := range [][]byte{small, limit} {
		sig, err := didit.Sign(secret, body, now)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			name string
			set  func(h http.Header)
			want int
		}{
			{"both", func(h http.Header) {}, 200},
			{"X-Signature only", func(h http.Header) { h.Del(didit.HeaderSignatureV2) }, 200},
			{"X-Signature-V2 only", func(h http.Header) { h.Del(didit.HeaderSignature) }, 200},
			{"forged V2", func(h http.Header) {
				h.Del(didit.HeaderSignature)
				h.Set(didit.HeaderSignatureV2, strings.Repeat("0", 64))
			}, 401},
			{"malformed V2", func(h http.Header) { h.Del(didit.HeaderSignature); h.Set(didit.HeaderSignatureV2, "zz") }, 401},
			{"stale", func(h http.Header) { h.Set(didit.HeaderTimestamp, strconv.FormatInt(now-3600, 10)) }, 401},
		} {
			req, _ := http.NewRequest("POST", srv.URL+"/webhooks/didit", bytes.NewReader(body))
			sig.SetHeaders(req.Header)
			c.set(req.Header)
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != c.want {
				t.Errorf("%d-byte body, %s: %d, want %d", len(body), c.name, resp.StatusCode, c.want)
			}
		}
	}
}

// stalledBody is a body that blocks on its first read until release is
// closed, then ends.
type stalledBody struct {
	started chan<- struct{}
	release <-chan struct{}
	once    sync.Once
}

func (b *stalledBody) Read([]byte) (int, error) {
	b.once.Do(func() { b.started <- struct{}{} })
	<-b.release
	return 0, io.EOF
}

// TestWebhookBodiesBounded: at most 128 deliveries hold a body at once
// (reading it, waiting for or running its check), 32 MiB at most: another
// waits for a turn, without reading its body, and gets 503 server_busy
// with Retry-After when its time runs out; the slots come back as
// requests end.
func TestWebhookBodiesBounded(t *testing.T) {
	const holders = 128
	f := &fakeVerifier{verify: func([]byte) error { return didit.ErrBadSignature }}
	srv := httpapi.New(httpapi.Config{Webhooks: f, RequestTimeout: 200 * time.Millisecond})
	started, release := make(chan struct{}), make(chan struct{})
	var wg sync.WaitGroup
	for range holders {
		wg.Go(func() {
			req := httptest.NewRequest("POST", "/webhooks/didit", &stalledBody{started: started, release: release})
			req.ContentLength = maxWebhookBody
			srv.ServeHTTP(httptest.NewRecorder(), req)
		})
	}
	for range holders {
		<-started // every one of them is reading its body
	}
	t0 := time.Now()
	rec, read := postWebhook(t, srv, []byte(`{}`), true)
	checkEnvelope(t, rec, 503, "server_busy")
	if rec.Header().Get("Retry-After") == "" || read != 0 || time.Since(t0) < 150*time.Millisecond {
		t.Errorf("over the bound: Retry-After %q, %d bytes read, answered after %s (want after the request's 200 ms)",
			rec.Header().Get("Retry-After"), read, time.Since(t0))
	}
	close(release)
	wg.Wait()
	rec, _ = postWebhook(t, srv, []byte(`{}`), false)
	checkEnvelope(t, rec, 401, "invalid_webhook_signature")
}
