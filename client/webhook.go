package client

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// WebhookEvent is one event kycgate sent to your endpoint, in the Standard
// Webhooks format.
type WebhookEvent struct {
	// ID is stable across retries of one event: use it to drop duplicates.
	ID        string          `json:"-"`
	Type      string          `json:"type"` // e.g. "kyc.status.updated"
	Timestamp time.Time       `json:"timestamp"`
	Data      json.RawMessage `json:"data"`
}

// The reasons VerifyWebhook refuses a delivery.
var (
	ErrWebhookHeaders   = errors.New("kycgate webhook: missing or malformed webhook-id, webhook-timestamp or webhook-signature")
	ErrWebhookTimestamp = errors.New("kycgate webhook: timestamp outside the tolerance")
	ErrWebhookSignature = errors.New("kycgate webhook: no signature matches")
)

// WebhookTolerance is how far a delivery's timestamp may be from now, in
// either direction, before it is refused as a replay.
const WebhookTolerance = 5 * time.Minute

// WebhookVerifier checks deliveries against one or more endpoint secrets
// (more than one while you rotate yours).
type WebhookVerifier struct {
	keys [][]byte
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// NewWebhookVerifier takes the endpoint's secrets as kycgate printed them
// ("whsec_…").
func NewWebhookVerifier(secrets ...string) (*WebhookVerifier, error) {
	if len(secrets) == 0 {
		return nil, errors.New("kycgate webhook: no secret")
	}
	v := &WebhookVerifier{Now: time.Now}
	for _, s := range secrets {
		k, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(s, "whsec_"))
		if err != nil || len(k) == 0 {
			return nil, errors.New("kycgate webhook: a secret is not whsec_ followed by base64")
		}
		v.keys = append(v.keys, k)
	}
	return v, nil
}

// VerifyWebhook checks one delivery with one secret; see
// WebhookVerifier.Verify.
func VerifyWebhook(secret string, h http.Header, body []byte) (WebhookEvent, error) {
	v, err := NewWebhookVerifier(secret)
	if err != nil {
		return WebhookEvent{}, err
	}
	return v.Verify(h, body)
}

// Verify checks a delivery's headers and raw body (read it whole, exactly
// as received, before any JSON decoding) and returns the event it carries.
func (v *WebhookVerifier) Verify(h http.Header, body []byte) (WebhookEvent, error) {
	id, ts, sigs := h.Get("webhook-id"), h.Get("webhook-timestamp"), h.Get("webhook-signature")
	if id == "" || ts == "" || sigs == "" {
		return WebhookEvent{}, ErrWebhookHeaders
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return WebhookEvent{}, ErrWebhookHeaders
	}
	now := v.Now()
	if at := time.Unix(sec, 0); at.Before(now.Add(-WebhookTolerance)) || at.After(now.Add(WebhookTolerance)) {
		return WebhookEvent{}, ErrWebhookTimestamp
	}
	if !v.signed(id, ts, body, sigs) {
		return WebhookEvent{}, ErrWebhookSignature
	}
	var ev WebhookEvent
	if err := json.Unmarshal(body, &ev); err != nil {
		return WebhookEvent{}, fmt.Errorf("kycgate webhook: body: %w", err)
	}
	ev.ID = id
	return ev, nil
}

// signed reports whether any "v1,<base64>" entry of sigs is the HMAC of
// "id.timestamp.body" under any key.
func (v *WebhookVerifier) signed(id, ts string, body []byte, sigs string) bool {
	for _, key := range v.keys {
		m := hmac.New(sha256.New, key)
		m.Write([]byte(id + "." + ts + "."))
		m.Write(body)
		want := m.Sum(nil)
		for _, s := range strings.Fields(sigs) {
			ver, b64, ok := strings.Cut(s, ",")
			if !ok || ver != "v1" {
				continue
			}
			got, err := base64.StdEncoding.DecodeString(b64)
			if err == nil && hmac.Equal(got, want) {
				return true
			}
		}
	}
	return false
}
