package client_test

import (
	"errors"
	"io"
	"log"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kycgate/kycgate/client"
	"github.com/kycgate/kycgate/internal/kyc"
)

const (
	oldSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	newSecret = "whsec_3Kfz2Gk7pTqfC7xXq0m6YVZ3J9pNw2Rr"
)

// delivery is a request as kycgate signs it, at `at`, with secrets.
func delivery(t *testing.T, at time.Time, body string, secrets ...string) http.Header {
	t.Helper()
	ts := strconv.FormatInt(at.Unix(), 10)
	sig, err := kyc.SignWebhook(secrets, "msg_1", ts, []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{}
	h.Set("webhook-id", "msg_1")
	h.Set("webhook-timestamp", ts)
	h.Set("webhook-signature", sig)
	return h
}

// TestClientVerifyWebhook: what the partner-side verifier accepts and what
// it refuses, each refusal as its own sentinel. (The end-to-end tests
// check it against real deliveries beside the Standard Webhooks reference
// library.)
func TestClientVerifyWebhook(t *testing.T) {
	now := time.Date(2026, 3, 10, 9, 0, 0, 0, time.UTC)
	body := `{"type":"email.verified","timestamp":"2026-03-10T09:00:00Z","data":{"email":"ann@example.com"}}`
	verifier := func(secrets ...string) *client.WebhookVerifier {
		v, err := client.NewWebhookVerifier(secrets...)
		if err != nil {
			t.Fatal(err)
		}
		v.Now = func() time.Time { return now }
		return v
	}

	ev, err := verifier(oldSecret).Verify(delivery(t, now, body, oldSecret), []byte(body))
	if err != nil || ev.ID != "msg_1" || ev.Type != "email.verified" || !ev.Timestamp.Equal(now) ||
		string(ev.Data) != `{"email":"ann@example.com"}` {
		t.Fatalf("Verify = %+v, %v", ev, err)
	}

	// During a rotation kycgate signs with both secrets: a receiver that
	// knows either one accepts, and one that holds both accepts a delivery
	// signed by either alone.
	both := delivery(t, now, body, newSecret, oldSecret)
	for _, v := range []*client.WebhookVerifier{verifier(oldSecret), verifier(newSecret), verifier(newSecret, oldSecret)} {
		if _, err := v.Verify(both, []byte(body)); err != nil {
			t.Errorf("a delivery signed with both secrets: %v", err)
		}
	}
	if _, err := verifier(newSecret, oldSecret).Verify(delivery(t, now, body, oldSecret), []byte(body)); err != nil {
		t.Errorf("old-secret delivery with both secrets configured: %v", err)
	}

	for name, tc := range map[string]struct {
		h    http.Header
		body string
		v    *client.WebhookVerifier
		want error
	}{
		"another secret":       {delivery(t, now, body, newSecret), body, verifier(oldSecret), client.ErrWebhookSignature},
		"body changed":         {delivery(t, now, body, oldSecret), strings.Replace(body, "ann", "bob", 1), verifier(oldSecret), client.ErrWebhookSignature},
		"timestamp too old":    {delivery(t, now.Add(-client.WebhookTolerance-time.Second), body, oldSecret), body, verifier(oldSecret), client.ErrWebhookTimestamp},
		"timestamp too far on": {delivery(t, now.Add(client.WebhookTolerance+time.Second), body, oldSecret), body, verifier(oldSecret), client.ErrWebhookTimestamp},
		"no signature":         {func() http.Header { h := delivery(t, now, body, oldSecret); h.Del("webhook-signature"); return h }(), body, verifier(oldSecret), client.ErrWebhookHeaders},
		"timestamp not seconds": {func() http.Header {
			h := delivery(t, now, body, oldSecret)
			h.Set("webhook-timestamp", "soon")
			return h
		}(), body, verifier(oldSecret), client.ErrWebhookHeaders},
		"v2 only": {func() http.Header {
			h := delivery(t, now, body, oldSecret)
			h.Set("webhook-signature", "v2"+h.Get("webhook-signature")[2:])
			return h
		}(), body, verifier(oldSecret), client.ErrWebhookSignature},
	} {
		if _, err := tc.v.Verify(tc.h, []byte(tc.body)); !errors.Is(err, tc.want) {
			t.Errorf("%s: Verify = %v, want %v", name, err, tc.want)
		}
	}
	if _, err := client.NewWebhookVerifier("whsec_not base64!"); err == nil {
		t.Error("NewWebhookVerifier took a secret that is not base64")
	}
}

// The receiver of README "Receiving webhooks", compiled so that the README
// cannot drift from the package.
func ExampleWebhookVerifier() {
	alreadySeen := func(id string) bool { return false }
	handle := func(typ string, data []byte) {}

	verifier, err := client.NewWebhookVerifier(os.Getenv("KYCGATE_WEBHOOK_SECRET")) // during a rotation: old and new
	if err != nil {
		log.Fatal(err) // not "whsec_" followed by base64
	}
	http.HandleFunc("POST /kyc-hooks", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20)) // the raw bytes, before any JSON decoding
		ev, err := verifier.Verify(r.Header, body)           // a bad signature, or a timestamp 5 min off: an error
		if err != nil {
			http.Error(w, "bad signature", http.StatusBadRequest)
			return
		}
		if !alreadySeen(ev.ID) { // ev.ID is the webhook-id
			handle(ev.Type, ev.Data)
		}
		w.WriteHeader(http.StatusNoContent)
	})
}
