package didit

import (
	"errors"
	"testing"
	"time"

	"github.com/kycgate/kycgate/internal/kyc"
)

func TestParseWebhookFullDecision(t *testing.T) {
	body := []byte(benchWebhookBody(t))
	ev, err := ParseWebhook(body)
	if err != nil {
		t.Fatal(err)
	}
	if ev.EventID != "8d3c6f0e-2a41-4b8e-9a57-3f1e0c2b7d90" || ev.SessionID != "5f0c8a2e-1b7d-4c3a-9e61-0a4d2b9f7c11" || ev.Status != kyc.StatusDeclined {
		t.Errorf("envelope = %+v", ev)
	}
	if !ev.At.Equal(time.Unix(1772446504, 0)) {
		t.Errorf("At = %v", ev.At)
	}
	if ev.Decision == nil {
		t.Fatal("Decision is nil")
	}
	if ev.Decision.Status != kyc.StatusDeclined || len(ev.Decision.IPInfo) != 1 || !ev.Decision.IPInfo[0].IsVPNOrTor || ev.Decision.Blocklisted {
		t.Errorf("Decision = %+v", *ev.Decision)
	}
}

func TestParseWebhook(t *testing.T) {
	cases := []struct {
		name     string
		body     string
		want     error
		status   kyc.DiditStatus
		at       int64
		decision bool
	}{
		{"not started, no decision", `{"session_id":"s","status":"Not Started","webhook_type":"status.updated","timestamp":100,"created_at":100}`, nil, "Not Started", 100, false},
		{"null decision", `{"session_id":"s","status":"In Progress","webhook_type":"status.updated","timestamp":100,"decision":null}`, nil, "In Progress", 100, false},
		{"data.updated", `{"session_id":"s","status":"Approved","webhook_type":"data.updated","created_at":200,"decision":{"status":"Approved"}}`, nil, "Approved", 200, true},
		{"no webhook_type (old payload)", `{"session_id":"s","status":"Kyc Expired","created_at":"2026-03-02T10:15:04Z"}`, nil, "Kyc Expired", 1772446504, false},
		{"decision without status", `{"session_id":"s","status":"Abandoned","webhook_type":"status.updated","timestamp":5,"decision":{"ip_analyses":null}}`, nil, "Abandoned", 5, true},
		{"no time", `{"session_id":"s","status":"Expired","webhook_type":"status.updated"}`, nil, "Expired", 0, false},
		{"user event ignored", `{"webhook_type":"user.status.updated","status":"ACTIVE"}`, ErrIgnoredEvent, "", 0, false},
		{"transaction event ignored", `{"webhook_type":"transaction.created","session_id":"s","status":"Approved"}`, ErrIgnoredEvent, "", 0, false},
		{"missing session_id", `{"status":"Approved","webhook_type":"status.updated"}`, ErrMalformedWebhook, "", 0, false},
		{"missing status", `{"session_id":"s","webhook_type":"status.updated"}`, ErrMalformedWebhook, "", 0, false},
		{"wrong case status", `{"session_id":"s","status":"KYC Expired","webhook_type":"status.updated"}`, ErrMalformedWebhook, "", 0, false},
		{"unknown status", `{"session_id":"s","status":"Done","webhook_type":"status.updated"}`, ErrMalformedWebhook, "", 0, false},
		{"non-string webhook_type", `{"session_id":"s","status":"Approved","webhook_type":1}`, ErrMalformedWebhook, "", 0, false},
		{"decision not an object", `{"session_id":"s","status":"Approved","webhook_type":"status.updated","decision":"yes"}`, ErrMalformedWebhook, "", 0, false},
		{"not json", `status=Approved`, ErrMalformedWebhook, "", 0, false},
		{"array", `[]`, ErrMalformedWebhook, "", 0, false},
		{"null", `null`, ErrMalformedWebhook, "", 0, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ev, err := ParseWebhook([]byte(c.body))
			if c.want != nil {
				if !errors.Is(err, c.want) {
					t.Fatalf("error = %v, want %v", err, c.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if ev.Status != c.status || ev.SessionID != "s" || ev.EventID != "" {
				t.Errorf("event = %+v", ev)
			}
			if c.at == 0 && !ev.At.IsZero() || c.at != 0 && !ev.At.Equal(time.Unix(c.at, 0)) {
				t.Errorf("At = %v, want unix %d", ev.At, c.at)
			}
			if (ev.Decision != nil) != c.decision {
				t.Fatalf("Decision = %v, want present=%v", ev.Decision, c.decision)
			}
			if ev.Decision != nil && ev.Decision.Status != c.status {
				t.Errorf("Decision.Status = %q, want %q", ev.Decision.Status, c.status)
			}
		})
	}
}

func TestIsStatus(t *testing.T) {
	for _, s := range []kyc.DiditStatus{"Not Started", "In Progress", "Approved", "Declined", "In Review", "Awaiting User", "Resubmitted", "Expired", "Abandoned", "Kyc Expired"} {
		if !kyc.ValidStatus(s) {
			t.Errorf("ValidStatus(%q) = false", s)
		}
	}
	for _, s := range []kyc.DiditStatus{"", "approved", "KYC Expired", "Not started", " Approved"} {
		if kyc.ValidStatus(s) {
			t.Errorf("ValidStatus(%q) = true", s)
		}
	}
}
