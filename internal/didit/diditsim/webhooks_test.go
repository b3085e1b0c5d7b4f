package diditsim_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kycgate/kycgate/internal/didit"
	"github.com/kycgate/kycgate/internal/didit/diditsim"
)

// checkSigned verifies every signature header of one delivery independently
// of the simulator: X-Signature and X-Signature-Simple with a local HMAC,
// X-Signature-V2 through the didit package's verifier.
func checkSigned(t *testing.T, hdr http.Header, body []byte, now time.Time) {
	t.Helper()
	if got, want := hdr.Get("X-Signature"), hmacHex(testSecret, body); got != want {
		t.Errorf("X-Signature = %s, want HMAC of raw body %s", got, want)
	}
	var env struct {
		SessionID   string `json:"session_id"`
		Status      string `json:"status"`
		WebhookType string `json:"webhook_type"`
		Timestamp   int64  `json:"timestamp"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		t.Fatal(err)
	}
	simple := strconv.FormatInt(env.Timestamp, 10) + ":" + env.SessionID + ":" + env.Status + ":" + env.WebhookType
	if got := hdr.Get("X-Signature-Simple"); got != hmacHex(testSecret, []byte(simple)) {
		t.Errorf("X-Signature-Simple does not sign %q", simple)
	}
	canon, err := didit.Canonicalize(body)
	if err != nil {
		t.Fatalf("Canonicalize: %v", err)
	}
	if got := hdr.Get("X-Signature-V2"); got != hmacHex(testSecret, canon) {
		t.Errorf("X-Signature-V2 is not the HMAC of the canonical body")
	}
	if err := didit.VerifyWebhook(testSecret, hdr, body, now); err != nil {
		t.Errorf("VerifyWebhook: %v", err)
	}
}

func TestWebhookBodyAndHeaders(t *testing.T) {
	h := newHarness(t, nil)
	s := h.create(map[string]any{"vendor_data": "user-8812", "metadata": map[string]any{"plan": "pro"}})
	id := s["session_id"].(string)
	if err := h.sim.Complete(context.Background(), id, diditsim.Outcome{}); err != nil {
		t.Fatal(err)
	}
	ds := h.wait(3)
	got := h.rcv.requests()
	if len(got) != 3 || len(ds) != 3 {
		t.Fatalf("received %d, recorded %d", len(got), len(ds))
	}
	statuses := []string{ds[0].Status, ds[1].Status, ds[2].Status}
	if !slices.Equal(statuses, []string{"Not Started", "In Progress", "Approved"}) {
		t.Fatalf("statuses = %v", statuses)
	}
	eventIDs := map[string]bool{}
	for i, req := range got {
		if !bytes.Equal(req.Body, ds[i].Body) {
			t.Errorf("delivery %d: recorded body differs from the one received", i)
		}
		hdr := req.Header
		if hdr.Get("Content-Type") != "application/json" || hdr.Get("User-Agent") != "DiditWebhook/2.0 +https://didit.me" {
			t.Errorf("headers: %v", hdr)
		}
		checkSigned(t, hdr, req.Body, h.sim.Now())

		var body map[string]any
		dec := json.NewDecoder(bytes.NewReader(req.Body))
		dec.UseNumber()
		if err := dec.Decode(&body); err != nil {
			t.Fatal(err)
		}
		ts := body["timestamp"].(json.Number).String()
		if body["created_at"].(json.Number).String() != ts || hdr.Get("X-Timestamp") != ts {
			t.Errorf("timestamp %s, created_at %v, X-Timestamp %s must be equal", ts, body["created_at"], hdr.Get("X-Timestamp"))
		}
		if body["session_id"] != id || body["webhook_type"] != "status.updated" || body["vendor_data"] != "user-8812" ||
			body["workflow_id"] != testWorkflow || body["environment"] != "live" || path(body, "metadata", "plan") != "pro" {
			t.Errorf("envelope: %s", req.Body)
		}
		evID, _ := body["event_id"].(string)
		if !uuidV4Re.MatchString(evID) || eventIDs[evID] {
			t.Errorf("event_id %q not a fresh UUID", evID)
		}
		eventIDs[evID] = true
		_, hasDecision := body["decision"]
		if hasDecision != (body["status"] == "Approved") {
			t.Errorf("status %v: decision present = %v", body["status"], hasDecision)
		}
	}

	raw := string(got[2].Body)
	// Python json.dumps defaults: spaced separators, ASCII escapes, float text.
	for _, want := range []string{`"status": "Approved"`, `Jos\u00e9 M\u00fcller`, `"latitude": 40.0`, `"score": 97.1`, `5e-05`, `"face_quality": 89.0`} {
		if !strings.Contains(raw, want) {
			t.Errorf("raw body lacks %s", want)
		}
	}
	canon, err := didit.Canonicalize(got[2].Body)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"latitude":40,`, `"score":97.1`, `5e-05`, `José Müller`} {
		if !strings.Contains(string(canon), want) {
			t.Errorf("canonical body lacks %s", want)
		}
	}
	var payload map[string]any
	_ = json.Unmarshal(got[2].Body, &payload)
	if path(payload, "decision", "id_verifications", 0, "full_name") != "José Müller" {
		t.Errorf("full_name did not survive the ASCII escaping")
	}
	if path(payload, "decision", "id_verifications", 0, "full_name") != "José Müller" || path(payload, "decision", "status") != "Approved" {
		t.Errorf("decision in webhook: %v", payload["decision"])
	}
}

// Metadata is echoed verbatim, so a client can put any text into a signed
// body: astral characters (surrogate pairs when ASCII-escaped), U+2028 (Go
// escapes it, Python's canonical form does not) and HTML-special characters
// (Go escapes them by default).
func TestWebhookSigningSurvivesAwkwardText(t *testing.T) {
	h := newHarness(t, nil)
	note := "😀 <a&b> line\u2028sep \"q\" \\ tab\t"
	h.create(map[string]any{"vendor_data": "u", "metadata": map[string]any{"note": note, "n": 1.0, "tiny": 0.00001}})
	d := h.wait(1)[0]
	raw := string(d.Body)
	for _, want := range []string{`\ud83d\ude00`, `<a&b>`, `\u2028`, `\"q\"`, `\t`} {
		if !strings.Contains(raw, want) {
			t.Errorf("raw body lacks %s: %s", want, raw)
		}
	}
	checkSigned(t, d.Header, d.Body, h.sim.Now())
	canon, err := didit.Canonicalize(d.Body)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"😀 <a&b> line\u2028sep", `"n":1,`, `"tiny":1e-05`} {
		if !strings.Contains(string(canon), want) {
			t.Errorf("canonical body lacks %q: %s", want, canon)
		}
	}
}

func TestWebhookV2DestinationAndSubscriptions(t *testing.T) {
	v2 := newReceiver(t)
	onlyData := newReceiver(t)
	h := newHarness(t, nil, func(c *diditsim.Config) {
		c.Webhooks = append(c.Webhooks,
			diditsim.Destination{URL: v2.srv.URL, Secret: testSecret, Version: "v2"},
			diditsim.Destination{URL: onlyData.srv.URL, Secret: testSecret, Events: []string{"data.updated"}})
	})
	id := h.create(map[string]any{"vendor_data": "v"})["session_id"].(string)
	ctx := context.Background()
	if err := h.sim.Complete(ctx, id, diditsim.Outcome{Preset: diditsim.PresetVPN}); err != nil {
		t.Fatal(err)
	}
	if err := h.sim.UpdateData(ctx, id, diditsim.DataEdit{ID: map[string]string{"first_name": "Josefa"}}); err != nil {
		t.Fatal(err)
	}
	h.wait(4*2 + 1) // 4 events × (v3, v2) + data.updated to onlyData
	var last map[string]any
	reqs := v2.requests()
	_ = json.Unmarshal(reqs[2].Body, &last)
	if path(last, "decision", "ip_analysis", "is_vpn_or_tor") != true || path(last, "decision", "ip_analyses") != nil {
		t.Errorf("v2 decision shape: %v", last["decision"])
	}
	if got := onlyData.requests(); len(got) != 1 || !strings.Contains(string(got[0].Body), `"webhook_type": "data.updated"`) {
		t.Errorf("data.updated-only destination got %d requests", len(got))
	} else {
		var body map[string]any
		_ = json.Unmarshal(got[0].Body, &body)
		if path(body, "decision", "id_verifications", 0, "first_name") != "Josefa" || body["status"] != "Declined" {
			t.Errorf("data.updated body: %v", body)
		}
	}
}

func TestWebhookRetries(t *testing.T) {
	t.Run("500 twice then 200", func(t *testing.T) {
		h := newHarness(t, newReceiver(t, 500, 500, 200))
		h.create(map[string]any{"vendor_data": "r"})
		ds := h.wait(3)
		if len(h.sim.Deliveries()) != 3 {
			t.Fatalf("attempts = %d", len(h.sim.Deliveries()))
		}
		for i, d := range ds {
			if d.Attempt != i+1 || d.EventID != ds[0].EventID {
				t.Errorf("attempt %d: %+v", i, d)
			}
		}
		if ds[0].ResponseStatus != 500 || ds[2].ResponseStatus != 200 {
			t.Errorf("statuses: %s", summarize(ds))
		}
		assertSettled(t, h, 3)
	})
	t.Run("404 is retried", func(t *testing.T) {
		h := newHarness(t, newReceiver(t, 404, 404, 404))
		h.create(map[string]any{"vendor_data": "r"})
		h.wait(3)
		assertSettled(t, h, 3)
	})
	t.Run("400 is not retried", func(t *testing.T) {
		h := newHarness(t, newReceiver(t, 400))
		h.create(map[string]any{"vendor_data": "r"})
		ds := h.wait(1)
		if ds[0].ResponseStatus != 400 {
			t.Errorf("status %d", ds[0].ResponseStatus)
		}
		assertSettled(t, h, 1)
	})
	t.Run("connection refused is retried", func(t *testing.T) {
		h := newHarness(t, nil, func(c *diditsim.Config) {
			c.Webhooks = []diditsim.Destination{{URL: deadAddr(t), Secret: testSecret}}
		})
		h.create(map[string]any{"vendor_data": "r"})
		ds := h.wait(3)
		for _, d := range ds {
			if d.Error == "" || d.ResponseStatus != 0 {
				t.Errorf("attempt %d: %+v", d.Attempt, d)
			}
		}
		assertSettled(t, h, 3)
	})
}

// assertSettled checks, after the sender has gone quiet, that exactly n
// attempts were made. It closes the simulator first so no worker can still
// be about to add one: Close waits for the workers.
func assertSettled(t *testing.T, h *harness, n int) {
	t.Helper()
	_ = h.sim.Close()
	if got := len(h.sim.Deliveries()); got != n {
		t.Errorf("attempts = %d, want %d: %s", got, n, summarize(h.sim.Deliveries()))
	}
}

func TestResignOnRetry(t *testing.T) {
	for _, resign := range []bool{true, false} {
		t.Run(strconv.FormatBool(resign), func(t *testing.T) {
			h := newHarness(t, newReceiver(t, 503, 200), func(c *diditsim.Config) { c.ResignOnRetry = resign })
			h.clock.mu.Lock()
			h.clock.tick = time.Second // every clock reading moves on
			h.clock.mu.Unlock()
			h.create(map[string]any{"vendor_data": "r"})
			ds := h.wait(2)
			same := bytes.Equal(ds[0].Body, ds[1].Body) && ds[0].Header.Get("X-Signature-V2") == ds[1].Header.Get("X-Signature-V2")
			if same == resign {
				t.Errorf("ResignOnRetry=%v but retry identical=%v (ts %d, %d)", resign, same, ds[0].Timestamp, ds[1].Timestamp)
			}
			if ds[0].EventID != ds[1].EventID {
				t.Errorf("event_id changed on retry")
			}
		})
	}
}

func TestCloseInterruptsRetryWait(t *testing.T) {
	h := newHarness(t, newReceiver(t, 500), withRetry(time.Hour))
	h.create(map[string]any{"vendor_data": "r"})
	h.wait(1)
	// The worker now waits an hour for retry 1; Close must not.
	if err := h.sim.Close(); err != nil {
		t.Fatal(err)
	}
	if n := len(h.sim.Deliveries()); n != 1 {
		t.Errorf("attempts after Close = %d", n)
	}
	// Events after Close are recorded but not sent.
	h.create(map[string]any{"vendor_data": "after-close"})
	if n := len(h.sim.Deliveries()); n != 1 {
		t.Errorf("delivery after Close")
	}
}

func TestResendAndTamper(t *testing.T) {
	h := newHarness(t, nil)
	ctx := context.Background()
	id := h.create(map[string]any{"vendor_data": "t"})["session_id"].(string)
	orig := h.wait(1)[0]
	now := h.sim.Now()

	plain, err := h.sim.Resend(ctx, orig.ID, "")
	if err != nil || len(plain) != 1 {
		t.Fatalf("resend: %v %v", plain, err)
	}
	if plain[0].EventID != orig.EventID || !plain[0].Resend {
		t.Errorf("resend: %+v", plain[0])
	}
	checkSigned(t, plain[0].Header, plain[0].Body, now)

	bad, _ := h.sim.Resend(ctx, orig.ID, diditsim.TamperBadSignature)
	if err := didit.VerifyWebhook(testSecret, bad[0].Header, bad[0].Body, now); !errors.Is(err, didit.ErrBadSignature) {
		t.Errorf("bad_signature verified as %v", err)
	}

	stale, _ := h.sim.Resend(ctx, orig.ID, diditsim.TamperStaleTimestamp)
	if err := didit.VerifyWebhook(testSecret, stale[0].Header, stale[0].Body, now); !errors.Is(err, didit.ErrStaleTimestamp) {
		t.Errorf("stale_timestamp verified as %v", err)
	}
	if stale[0].Header.Get("X-Signature") != hmacHex(testSecret, stale[0].Body) {
		t.Errorf("stale delivery should still be correctly signed")
	}

	dup, _ := h.sim.Resend(ctx, orig.ID, diditsim.TamperDuplicate)
	if len(dup) != 2 || !bytes.Equal(dup[0].Body, dup[1].Body) || dup[0].Header.Get("X-Signature-V2") != dup[1].Header.Get("X-Signature-V2") {
		t.Errorf("duplicate: %d attempts", len(dup))
	}

	// Replay: the original bytes and headers, once the clock has moved on.
	h.sim.AdvanceClock(10 * time.Minute)
	replay, _ := h.sim.Resend(ctx, orig.ID, diditsim.TamperReplay)
	if !bytes.Equal(replay[0].Body, orig.Body) || replay[0].Header.Get("X-Timestamp") != orig.Header.Get("X-Timestamp") {
		t.Errorf("replay differs from the original")
	}
	if err := didit.VerifyWebhook(testSecret, replay[0].Header, replay[0].Body, h.sim.Now()); !errors.Is(err, didit.ErrStaleTimestamp) {
		t.Errorf("replayed old delivery verified as %v", err)
	}

	before := len(h.rcv.requests())
	dropped, _ := h.sim.Resend(ctx, orig.ID, diditsim.TamperDrop)
	if dropped[0].Error == "" || len(h.rcv.requests()) != before {
		t.Errorf("drop sent something")
	}

	// Queued tampering: the next delivery is lost, the one after arrives.
	if err := h.sim.TamperNext(diditsim.TamperDrop, 1, id); err != nil {
		t.Fatal(err)
	}
	received := len(h.rcv.requests())
	attempts := len(h.sim.Deliveries())
	if err := h.sim.Start(ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := h.sim.Complete(ctx, id, diditsim.Outcome{}); err != nil {
		t.Fatal(err)
	}
	ds := h.wait(attempts + 2)
	reqs := h.rcv.requests()
	if len(reqs) != received+1 || !strings.Contains(string(reqs[len(reqs)-1].Body), `"status": "Approved"`) {
		t.Errorf("after drop: received %d new; deliveries %s", len(reqs)-received, summarize(ds))
	}

	if _, err := h.sim.Resend(ctx, "no-such-id", ""); !errors.Is(err, diditsim.ErrNotFound) {
		t.Errorf("unknown delivery: %v", err)
	}
	if _, err := h.sim.Resend(ctx, orig.ID, "garble"); !errors.Is(err, diditsim.ErrInvalidInput) {
		t.Errorf("unknown tamper: %v", err)
	}
}

func TestHoldAndReleaseOutOfOrder(t *testing.T) {
	h := newHarness(t, nil)
	ctx := context.Background()
	id := h.create(map[string]any{"vendor_data": "o"})["session_id"].(string)
	h.wait(1)
	h.sim.HoldWebhooks(id)
	if err := h.sim.Complete(ctx, id, diditsim.Outcome{}); err != nil {
		t.Fatal(err)
	}
	if n := len(h.sim.Deliveries()); n != 1 {
		t.Fatalf("held deliveries were sent: %d", n)
	}
	if n := h.sim.ReleaseWebhooks(id, true); n != 2 {
		t.Fatalf("released %d", n)
	}
	ds := h.wait(3)
	if ds[1].Status != "Approved" || ds[2].Status != "In Progress" {
		t.Errorf("reverse release order: %s", summarize(ds))
	}
}

func TestAttemptLogViaControlEndpoint(t *testing.T) {
	h := newHarness(t, newReceiver(t, 500, 200))
	id := h.create(map[string]any{"vendor_data": "l"})["session_id"].(string)
	h.wait(2)
	r := h.do(http.MethodGet, "/_sim/webhooks?session_id="+id, "", nil)
	var list []map[string]any
	if err := json.Unmarshal(r.Body, &list); err != nil || len(list) != 2 {
		t.Fatalf("list: %v %s", err, r.Body)
	}
	first := list[0]
	if first["attempt"] != float64(1) || first["response_status"] != float64(500) || first["event_id"] != list[1]["event_id"] ||
		path(first, "headers", "X-Signature") == nil || !strings.HasPrefix(first["body"].(string), `{"event_id": `) {
		t.Errorf("attempt view: %v", first)
	}
	// Resend through HTTP with tampering.
	r = h.do(http.MethodPost, "/_sim/webhooks/"+first["id"].(string)+"/resend", "", map[string]string{"tamper": "bad_signature"})
	if r.Status != http.StatusOK || !strings.Contains(string(r.Body), `"tamper":"bad_signature"`) {
		t.Errorf("resend: %d %s", r.Status, r.Body)
	}
	if r := h.do(http.MethodPost, "/_sim/webhooks/nope/resend", "", nil); r.Status != http.StatusNotFound {
		t.Errorf("resend unknown: %d", r.Status)
	}
}

func TestReorderEndpoint(t *testing.T) {
	h := newHarness(t, nil)
	id := h.create(map[string]any{"vendor_data": "o"})["session_id"].(string)
	if err := h.sim.Complete(context.Background(), id, diditsim.Outcome{}); err != nil {
		t.Fatal(err)
	}
	ds := h.wait(3)
	r := h.do(http.MethodPost, "/_sim/webhooks/reorder", "", map[string]string{"session_id": id})
	if r.Status != http.StatusOK {
		t.Fatalf("reorder: %d %s", r.Status, r.Body)
	}
	reqs := h.rcv.requests()
	last := reqs[len(reqs)-1]
	if !strings.Contains(string(last.Body), `"status": "In Progress"`) || !strings.Contains(string(last.Body), ds[1].EventID) {
		t.Errorf("reorder should resend the In Progress event after Approved: %s", last.Body)
	}
	checkSigned(t, last.Header, last.Body, h.sim.Now())
}
