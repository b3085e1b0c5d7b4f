package kyc_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kycgate/kycgate/internal/kyc"
	"github.com/kycgate/kycgate/internal/store"
	"github.com/kycgate/kycgate/internal/store/storetest"
)

// hookSender answers every attempt with status and keeps the requests.
type hookSender struct {
	mu     sync.Mutex
	status int
	reqs   []kyc.WebhookRequest
}

func (s *hookSender) Send(_ context.Context, r kyc.WebhookRequest) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reqs = append(s.reqs, r)
	return s.status, nil
}

func (s *hookSender) sent() []kyc.WebhookRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]kyc.WebhookRequest(nil), s.reqs...)
}

// hookRig is sessRig with a webhook sender and one endpoint.
type hookRig struct {
	*sessRig
	sender   *hookSender
	endpoint kyc.WebhookEndpoint
	secret   string
}

func newHookRig(t *testing.T, status int) *hookRig {
	t.Helper()
	return newHookRigOn(t, "sqlite:"+filepath.Join(t.TempDir(), "kyc.db"), status)
}

// newHookRigOn is newHookRig on the database at url.
func newHookRigOn(t *testing.T, url string, status int) *hookRig {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, url, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	prov := &sessProvider{}
	r := &hookRig{sessRig: &sessRig{db: db, clock: &testClock{t: time.Date(2026, 3, 10, 9, 0, 0, 0, time.UTC)},
		mail: &sessMailer{codes: map[string]string{}}}, sender: &hookSender{status: status}}
	r.svc, err = kyc.NewService(kyc.Deps{Store: db, Mailer: r.mail, Provider: prov, Clock: r.clock, Webhooks: r.sender},
		kyc.Config{Secret: []byte(strings.Repeat("k", 32))})
	if err != nil {
		t.Fatal(err)
	}
	zero := 0
	if r.tenant, r.key, err = r.svc.CreateTenant(ctx, kyc.NewTenant{Name: "T", MonthlyQuota: &zero}); err != nil {
		t.Fatal(err)
	}
	if r.endpoint, r.secret, err = r.svc.AddWebhookEndpoint(ctx, r.tenant.ID, "https://hooks.example/kyc", nil); err != nil {
		t.Fatal(err)
	}
	return r
}

func (r *hookRig) deliver(t *testing.T) int {
	t.Helper()
	n, err := r.svc.DeliverWebhooks(context.Background(), 100)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func (r *hookRig) log(t *testing.T) []kyc.DeliveryRecord {
	t.Helper()
	recs, err := r.db.ListDeliveries(context.Background(), r.tenant.ID, r.endpoint.ID, 100)
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

// The secret is stored sealed, and signs as Standard Webhooks says:
// base64 HMAC-SHA256 of "id.timestamp.body" under the decoded secret.
func TestWebhookSecretSealedAndSignature(t *testing.T) {
	r := newHookRig(t, 204)
	ep, err := r.db.WebhookEndpoint(context.Background(), r.tenant.ID, r.endpoint.ID)
	if err != nil {
		t.Fatal(err)
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(r.secret, "whsec_"))
	if err != nil || len(key) != 32 || !strings.HasPrefix(r.secret, "whsec_") {
		t.Fatalf("secret %q: want whsec_ + base64 of 32 bytes", r.secret)
	}
	if strings.Contains(ep.Secret, strings.TrimPrefix(r.secret, "whsec_")) || ep.Secret == "" {
		t.Fatalf("stored secret %q is not sealed", ep.Secret)
	}
	r.verified(t, "sig@example.com")
	if n := r.deliver(t); n != 1 {
		t.Fatalf("delivered %d, want 1", n)
	}
	req := r.sender.sent()[0]
	id, ts := req.Header["webhook-id"], req.Header["webhook-timestamp"]
	if !strings.HasPrefix(id, "msg_") || ts != strconv.FormatInt(r.clock.Now().Unix(), 10) {
		t.Fatalf("headers %v", req.Header)
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id + "." + ts + "." + string(req.Body)))
	if want := "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil)); req.Header["webhook-signature"] != want {
		t.Fatalf("webhook-signature %q, want %q", req.Header["webhook-signature"], want)
	}
	var body struct {
		Type, Timestamp string
		Data            map[string]any
	}
	if err := json.Unmarshal(req.Body, &body); err != nil || body.Type != kyc.EventEmailVerified || body.Data["email"] != "sig@example.com" {
		t.Fatalf("body %s (%v)", req.Body, err)
	}
	if _, err := time.Parse(time.RFC3339, body.Timestamp); err != nil {
		t.Errorf("timestamp %q: %v", body.Timestamp, err)
	}
	if recs := r.log(t); len(recs) != 1 || recs[0].State != kyc.DeliveryDelivered {
		t.Errorf("log %+v", recs)
	}
}

// sigFor is the Standard Webhooks v1 signature of req under secret.
func sigFor(t *testing.T, secret string, req kyc.WebhookRequest) string {
	t.Helper()
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		t.Fatal(err)
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte(req.Header["webhook-id"] + "." + req.Header["webhook-timestamp"] + "." + string(req.Body)))
	return "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// After rotate-secret the old secret signs beside the new one until 24 h
// have passed, and not a moment after: a receiver that has not switched
// yet keeps verifying, and a leaked old secret stops working on time.
func TestWebhookRotationGrace(t *testing.T) {
	r := newHookRig(t, 204)
	newSecret, err := r.svc.RotateWebhookSecret(context.Background(), r.tenant.ID, r.endpoint.ID)
	if err != nil || newSecret == r.secret || !strings.HasPrefix(newSecret, "whsec_") {
		t.Fatalf("RotateWebhookSecret = %q, %v", newSecret, err)
	}
	rotated := r.clock.Now()
	for _, tc := range []struct {
		at   time.Time
		sigs []string // secrets expected to sign, in header order
	}{
		{rotated, []string{newSecret, r.secret}},
		{rotated.Add(kyc.WebhookSecretGrace - time.Second), []string{newSecret, r.secret}},
		{rotated.Add(kyc.WebhookSecretGrace), []string{newSecret}},
	} {
		r.clock.Set(tc.at)
		r.verified(t, fmt.Sprintf("rot-%d@example.com", tc.at.Unix()))
		before := len(r.sender.sent())
		if n := r.deliver(t); n != 1 {
			t.Fatalf("at +%s: delivered %d, want 1", tc.at.Sub(rotated), n)
		}
		req := r.sender.sent()[before]
		var want []string
		for _, s := range tc.sigs {
			want = append(want, sigFor(t, s, req))
		}
		if got := req.Header["webhook-signature"]; got != strings.Join(want, " ") {
			t.Errorf("at +%s: webhook-signature %q, want %d signature(s) %q", tc.at.Sub(rotated), got, len(want), strings.Join(want, " "))
		}
	}
}

// A failing endpoint is retried on the documented schedule (first retry
// within a minute, more than 24 h in all) with the same id each time;
// an endpoint failing for five days is disabled. The clock moves; nothing
// sleeps.
func TestWebhookRetryScheduleAndDisable(t *testing.T) {
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) { retryScheduleAndDisable(t, newHookRigOn(t, e.URL, 503)) })
	}
}

func retryScheduleAndDisable(t *testing.T, r *hookRig) {
	r.verified(t, "retry@example.com")
	first := r.clock.Now()
	var times []time.Time
	for range 100 {
		if r.deliver(t) == 1 {
			times = append(times, r.clock.Now())
		}
		recs := r.log(t)
		if recs[0].State != kyc.DeliveryPending {
			break
		}
		r.clock.Set(recs[0].NextAt)
	}
	if want := 1 + len(kyc.DefaultWebhookRetry); len(times) != want {
		t.Fatalf("%d attempts, want %d", len(times), want)
	}
	for i := 1; i < len(times); i++ {
		gap, sched := times[i].Sub(times[i-1]), kyc.DefaultWebhookRetry[i-1]
		if gap < sched*8/10-time.Millisecond || gap > sched*12/10+time.Millisecond {
			t.Errorf("retry %d after %s, want %s ± 20%%", i, gap, sched)
		}
	}
	if gap := times[1].Sub(times[0]); gap > time.Minute {
		t.Errorf("first retry after %s, want within a minute", gap)
	}
	if span := times[len(times)-1].Sub(first); span < 24*time.Hour {
		t.Errorf("retried for %s, want at least 24 h", span)
	}
	ids := map[string]bool{}
	for _, req := range r.sender.sent() {
		ids[req.Header["webhook-id"]] = true
	}
	if len(ids) != 1 {
		t.Errorf("attempts carried %d webhook-ids, want one", len(ids))
	}
	if recs := r.log(t); recs[0].State != kyc.DeliveryFailed || recs[0].Attempts != len(times) || recs[0].LastStatus != 503 {
		t.Errorf("after the schedule: %+v", recs[0])
	}

	// Still failing five days after the first failure: disabled.
	r.clock.Set(first.Add(kyc.WebhookDisableAfter))
	r.verified(t, "later@example.com")
	if n := r.deliver(t); n != 1 {
		t.Fatalf("delivered %d, want 1", n)
	}
	eps, err := r.db.ListWebhookEndpoints(context.Background(), r.tenant.ID)
	if err != nil {
		t.Fatal(err)
	}
	if eps[0].DisabledAt == nil || !strings.Contains(eps[0].DisabledReason, "5 days") {
		t.Fatalf("endpoint after 5 days failing: %+v", eps[0])
	}
	r.verified(t, "after@example.com")
	r.clock.add(time.Hour)
	if n := r.deliver(t); n != 0 {
		t.Errorf("a disabled endpoint got %d attempts", n)
	}
}

// A Didit webhook delivered twice, or one that changes nothing status
// shows, emits nothing.
func TestWebhookOnlyRealChanges(t *testing.T) {
	r := newHookRig(t, 200)
	r.verified(t, "dup@example.com")
	s := r.create(t, "dup@example.com", kyc.CreateNew)
	ctx := context.Background()
	at := r.clock.Now().Add(time.Second).Truncate(time.Second)
	ev := kyc.SessionEvent{EventID: "ev-1", SessionID: s.ID, Status: kyc.StatusInProgress, At: at}
	for range 2 {
		if err := r.svc.HandleEvent(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	// Same status again under another id: no change.
	ev.EventID = "ev-2"
	if err := r.svc.HandleEvent(ctx, ev); err != nil {
		t.Fatal(err)
	}
	r.deliver(t)
	counts := map[string]int{}
	for _, req := range r.sender.sent() {
		var b struct{ Type string }
		json.Unmarshal(req.Body, &b)
		counts[b.Type]++
	}
	if counts[kyc.EventStatusUpdated] != 1 || counts[kyc.EventSessionCreated] != 1 || counts[kyc.EventEmailVerified] != 1 {
		t.Errorf("events sent %v, want one each of email.verified, kyc.session.created, kyc.status.updated", counts)
	}
}
