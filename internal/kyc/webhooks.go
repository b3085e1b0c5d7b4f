package kyc

import (
	"bytes"
	"encoding/json"
	"time"
)

// Outbound webhook event types (README "Receiving webhooks").
const (
	EventSessionCreated = "kyc.session.created"
	EventStatusUpdated  = "kyc.status.updated"
	EventEmailVerified  = "email.verified"
	EventWalletVerified = "wallet.verified"
	EventIdentityLinked = "identity.linked"
)

// WebhookEventTypes lists every event type, in documentation order.
var WebhookEventTypes = []string{EventSessionCreated, EventStatusUpdated, EventEmailVerified, EventWalletVerified, EventIdentityLinked}

// OutboxEvent is one event for one tenant. It is written in the
// transaction of the change it reports, so a crash can neither lose it nor
// leave it behind for a change that rolled back; Body is the exact JSON
// every attempt sends.
type OutboxEvent struct {
	ID       string // msg_…: the webhook-id of every attempt
	TenantID string
	// PersonID is the person the event is about (its body names their
	// identifiers): an erasure deletes the person's events by it.
	PersonID  string
	Type      string
	Body      []byte
	CreatedAt time.Time
}

// Audience is what a store reads inside a change's transaction so kyc can
// decide who hears of the change: every enrollment of the person, and for
// a session change whether that session is the person's latest (the one
// status shows).
type Audience struct {
	Enrollments []Enrollment
	Latest      bool
}

// Fanout decides the events a change emits from its audience. The store
// calls it inside the change's transaction and writes what it returns; a
// nil Fanout emits nothing.
type Fanout func(Audience) []OutboxEvent

// identifiers is what a tenant knows a user by: its own enrollment's.
type identifiers struct {
	Email  string `json:"email,omitempty"`
	Wallet string `json:"wallet,omitempty"`
}

func idsOf(e Enrollment) identifiers { return identifiers{Email: e.Email, Wallet: e.Wallet} }

// sessionCreatedData is kyc.session.created's data.
type sessionCreatedData struct {
	SessionID  string `json:"session_id"`
	SessionURL string `json:"session_url"`
	identifiers
}

// StatusData is GET /kyc/status's data; kyc.status.updated carries the
// same object (plus the identifiers), so both are built from one type.
type StatusData struct {
	Status        string          `json:"status"`
	Approved      bool            `json:"approved"`
	SessionID     string          `json:"session_id"`
	SessionStatus DiditStatus     `json:"session_status"`
	SessionURL    string          `json:"session_url"`
	IPInfo        json.RawMessage `json:"ip_info"`
	IsBlocklisted bool            `json:"is_blocklisted"`
}

// StatusDataOf is the status object for a status result.
func StatusDataOf(res StatusResult) StatusData {
	ip := res.Session.IPInfo
	if len(ip) == 0 {
		ip = json.RawMessage("[]")
	}
	return StatusData{Status: res.Status, Approved: res.Approved, SessionID: res.Session.ID,
		SessionStatus: res.Session.Status, SessionURL: res.Session.URL, IPInfo: ip, IsBlocklisted: res.Session.Blocklisted}
}

type statusUpdatedData struct {
	StatusData
	identifiers
}

// walletVerifiedData is wallet.verified's data.
type walletVerifiedData struct {
	Chain string `json:"chain"`
	identifiers
}

// newEvent builds one event's row: its id and its body, fixed now.
func newEvent(e Enrollment, typ string, data any, now time.Time) OutboxEvent {
	body, err := json.Marshal(struct {
		Type      string `json:"type"`
		Timestamp string `json:"timestamp"`
		Data      any    `json:"data"`
	}{typ, now.UTC().Format(time.RFC3339Nano), data})
	if err != nil {
		panic("kyc: webhook event does not marshal: " + err.Error()) // only our own types go in
	}
	return OutboxEvent{ID: newID("msg_"), TenantID: e.TenantID, PersonID: e.PersonID, Type: typ, Body: body, CreatedAt: now}
}

// sessionCreatedFanout tells every tenant that may see the person's new
// session (its enrollment is verified, as status requires) about it, one
// event per enrollment: a tenant that registered the email and the wallet
// separately sees two users until it proves the link itself, and one event
// naming both would tell it the link proven elsewhere.
func (s *Service) sessionCreatedFanout(sess Session) Fanout {
	return func(a Audience) []OutboxEvent {
		var out []OutboxEvent
		for _, e := range a.Enrollments {
			if !e.Verified() {
				continue
			}
			out = append(out, newEvent(e, EventSessionCreated,
				sessionCreatedData{SessionID: sess.ID, SessionURL: sess.URL, identifiers: idsOf(e)}, s.now()))
		}
		return out
	}
}

// statusFanout tells every tenant whose status call would show the change
// (a verified enrollment: the same rule as statusOf) the new status, when
// what status shows changed and the session is the person's latest.
func (s *Service) statusFanout(old, next Session) Fanout {
	if !statusChanged(old, next) {
		return nil
	}
	return func(a Audience) []OutboxEvent {
		if !a.Latest {
			return nil // status shows a newer session; this one changes nothing there
		}
		v := viewOf(next)
		v.IPInfo, _ = json.Marshal(orEmpty(next.IPInfo))
		var out []OutboxEvent
		for _, e := range a.Enrollments {
			res, err := statusOf(e, &v)
			if err != nil {
				continue // not verified here: it learns nothing
			}
			out = append(out, newEvent(e, EventStatusUpdated,
				statusUpdatedData{StatusData: StatusDataOf(res), identifiers: idsOf(e)}, s.now()))
		}
		return out
	}
}

func orEmpty(v []IPInfo) []IPInfo {
	if v == nil {
		return []IPInfo{}
	}
	return v
}

// statusChanged reports whether status would answer differently.
func statusChanged(old, next Session) bool {
	if old.Status != next.Status || old.Blocklisted != next.Blocklisted || old.URL != next.URL {
		return true
	}
	a, _ := json.Marshal(orEmpty(old.IPInfo))
	b, _ := json.Marshal(orEmpty(next.IPInfo))
	return !bytes.Equal(a, b)
}

// emailVerifiedFanout tells the tenant its user proved the address.
func (s *Service) emailVerifiedFanout() Fanout {
	return func(a Audience) []OutboxEvent {
		var out []OutboxEvent
		for _, e := range a.Enrollments {
			out = append(out, newEvent(e, EventEmailVerified, idsOf(e), s.now()))
		}
		return out
	}
}
