package didit

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/kycgate/kycgate/internal/kyc"
)

// Webhook types kycgate handles. Didit sends others (user.*, business.*,
// transaction.*, activity.created) to the same URL if they are subscribed.
const (
	WebhookStatusUpdated = "status.updated"
	WebhookDataUpdated   = "data.updated"
)

var (
	// ErrIgnoredEvent: a well-formed delivery of a webhook_type kycgate does
	// not handle. The HTTP layer acknowledges it (200) and drops it, so Didit
	// does not retry.
	ErrIgnoredEvent = kyc.ErrIgnoredEvent
	// ErrMalformedWebhook is wrapped when the body lacks what a session event
	// needs (not JSON, no session_id, unknown status, bad decision).
	ErrMalformedWebhook = errors.New("didit webhook: malformed body")
)

// ParseWebhook turns an already verified webhook body into a session event.
//
// webhook_type must be status.updated or data.updated (absent is taken as
// status.updated, as in Didit's older payloads); other types give
// ErrIgnoredEvent. session_id and status are required, status being one of
// the ten exact strings. At comes from `timestamp`, else `created_at` (Unix
// seconds, or an RFC 3339 string defensively); it is zero if neither is
// usable, and the caller may fall back to X-Timestamp. Decision is set when
// `decision` is present and not null; its Status falls back to the event's.
func ParseWebhook(body []byte) (kyc.SessionEvent, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(body, &top); err != nil || top == nil {
		if err == nil {
			err = errors.New("not an object")
		}
		return kyc.SessionEvent{}, fmt.Errorf("%w: %v", ErrMalformedWebhook, err)
	}
	switch wt := rawString(top["webhook_type"]); wt {
	case WebhookStatusUpdated, WebhookDataUpdated:
	case "":
		if _, present := top["webhook_type"]; present {
			return kyc.SessionEvent{}, fmt.Errorf("%w: webhook_type is not a non-empty string", ErrMalformedWebhook)
		}
	default:
		return kyc.SessionEvent{}, fmt.Errorf("%w: %q", ErrIgnoredEvent, wt)
	}

	ev := kyc.SessionEvent{
		EventID:   rawString(top["event_id"]),
		SessionID: strings.TrimSpace(rawString(top["session_id"])),
		Status:    kyc.DiditStatus(rawString(top["status"])),
	}
	if ev.SessionID == "" {
		return kyc.SessionEvent{}, fmt.Errorf("%w: missing session_id", ErrMalformedWebhook)
	}
	if !kyc.ValidStatus(ev.Status) {
		return kyc.SessionEvent{}, fmt.Errorf("%w: unknown status %q", ErrMalformedWebhook, ev.Status)
	}
	ev.At = eventTime(top["timestamp"])
	if ev.At.IsZero() {
		ev.At = eventTime(top["created_at"])
	}
	if raw, ok := top["decision"]; ok && !isNull(raw) {
		d, err := SummarizeDecision(raw)
		if err != nil {
			return kyc.SessionEvent{}, fmt.Errorf("%w: decision: %v", ErrMalformedWebhook, err)
		}
		if d.Status == "" {
			d.Status = ev.Status
		}
		ev.Decision = &d
	}
	return ev, nil
}

func eventTime(raw json.RawMessage) time.Time {
	raw = bytes.TrimSpace(raw)
	if sec, ok := rawInt(raw); ok && sec > 0 {
		return time.Unix(sec, 0).UTC()
	}
	if s := rawString(raw); s != "" {
		if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
			return t.UTC()
		}
	}
	return time.Time{}
}

// Webhooks verifies and parses Didit's deliveries signed with Secret: the
// webhook verifier the HTTP layer takes.
type Webhooks struct{ Secret string }

// CheckHeaders is CheckWebhookHeaders: what can be refused before the body
// is read.
func (w Webhooks) CheckHeaders(h http.Header, now time.Time) error {
	return CheckWebhookHeaders(h, now)
}

// Verify is VerifyWebhook under w's secret.
func (w Webhooks) Verify(h http.Header, body []byte, now time.Time) error {
	return VerifyWebhook(w.Secret, h, body, now)
}

// Parse is ParseWebhook.
func (w Webhooks) Parse(body []byte) (kyc.SessionEvent, error) { return ParseWebhook(body) }
