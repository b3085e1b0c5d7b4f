package diditsim

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"time"
)

// The /_sim/ endpoints drive the simulator from tests written in any
// language. They need no auth and are never rate limited or faulted. Errors
// are {"error": "..."}; 404 unknown session, 409 transition not allowed,
// 400 bad input.

func writeSimError(w http.ResponseWriter, err error) {
	status := http.StatusInternalServerError
	switch {
	case errors.Is(err, ErrNotFound):
		status = http.StatusNotFound
	case errors.Is(err, ErrInvalidTransition):
		status = http.StatusConflict
	case errors.Is(err, ErrInvalidInput):
		status = http.StatusBadRequest
	}
	writeJSON(w, status, map[string]string{"error": err.Error()})
}

// decodeSim reads an optional JSON body into v; an empty body leaves v as is.
func decodeSim(r *http.Request, v any) error {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("%w: read body: %v", ErrInvalidInput, err)
	}
	if len(body) == 0 {
		return nil
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidInput, err)
	}
	return nil
}

func (s *Sim) handleSimIndex(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{
		"endpoints": []string{
			"GET /_sim/presets",
			"GET /_sim/sessions", "GET /_sim/sessions/{id}",
			"POST /_sim/sessions/{id}/start", "POST /_sim/sessions/{id}/complete",
			"POST /_sim/sessions/{id}/abandon", "POST /_sim/sessions/{id}/expire",
			"POST /_sim/sessions/{id}/kyc_expire", "POST /_sim/sessions/{id}/resubmit",
			"POST /_sim/sessions/{id}/status", "POST /_sim/sessions/{id}/data",
			"GET /_sim/events", "GET /_sim/webhooks", "POST /_sim/webhooks/{id}/resend",
			"POST /_sim/webhooks/tamper", "POST /_sim/webhooks/hold", "POST /_sim/webhooks/release",
			"POST /_sim/webhooks/reorder", "GET|POST /_sim/clock", "GET|POST|DELETE /_sim/faults",
			"GET|POST /_sim/ratelimit",
		},
		"presets": Presets(),
	})
}

func (s *Sim) handleSimPresets(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, Presets())
}

func (s *Sim) handleSimSessions(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.Sessions())
}

func (s *Sim) handleSimSession(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	info, err := s.Session(id)
	if err != nil {
		writeSimError(w, err)
		return
	}
	dec, err := s.Decision(id)
	if err != nil {
		writeSimError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"session":  info,
		"decision": dec,
		"events":   s.Events(id),
	})
}

// handleSimAction runs one control operation on a session:
//
//	start, abandon, expire, kyc_expire, resubmit  (no body; abandon takes {"ip":{...}})
//	complete  {"outcome": "<preset>", "ip": {...}, "extra_ips": [{...}]}
//	status    {"status": "<one of the ten>"}
//	data      {"id_verification": {"first_name": "..."}, "ip": {...}}  → data.updated
func (s *Sim) handleSimAction(w http.ResponseWriter, r *http.Request) {
	ctx, id := r.Context(), r.PathValue("id")
	var err error
	switch r.PathValue("action") {
	case "start":
		err = s.Start(ctx, id)
	case "complete":
		var o Outcome
		if err = decodeSim(r, &o); err == nil {
			err = s.Complete(ctx, id, o)
		}
	case "abandon":
		var body struct {
			IP IPFields `json:"ip"`
		}
		if err = decodeSim(r, &body); err == nil {
			err = s.withSession(ctx, id, func(sess *session) error { return s.abandonLocked(sess, body.IP) })
		}
	case "expire":
		err = s.Expire(ctx, id)
	case "kyc_expire", "kyc-expire":
		err = s.KycExpire(ctx, id)
	case "resubmit":
		err = s.Resubmit(ctx, id)
	case "status":
		var body struct {
			Status string `json:"status"`
		}
		if err = decodeSim(r, &body); err == nil {
			err = s.SetStatus(ctx, id, body.Status)
		}
	case "data":
		var edit DataEdit
		if err = decodeSim(r, &edit); err == nil {
			err = s.UpdateData(ctx, id, edit)
		}
	default:
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "unknown action"})
		return
	}
	if err != nil {
		writeSimError(w, err)
		return
	}
	info, err := s.Session(id)
	if err != nil {
		writeSimError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, info)
}

func (s *Sim) handleSimEvents(w http.ResponseWriter, r *http.Request) {
	evs := s.Events(r.URL.Query().Get("session_id"))
	if evs == nil {
		evs = []EventInfo{}
	}
	writeJSON(w, http.StatusOK, evs)
}

// deliveryView is a Delivery on the wire: the body as the exact text sent.
type deliveryView struct {
	ID             string            `json:"id"`
	EventID        string            `json:"event_id"`
	SessionID      string            `json:"session_id"`
	Status         string            `json:"status"`
	WebhookType    string            `json:"webhook_type"`
	URL            string            `json:"url"`
	Attempt        int               `json:"attempt"`
	Resend         bool              `json:"resend"`
	Tamper         string            `json:"tamper,omitempty"`
	Timestamp      int64             `json:"timestamp"`
	ResponseStatus int               `json:"response_status"`
	Error          string            `json:"error,omitempty"`
	Headers        map[string]string `json:"headers"`
	Body           string            `json:"body"`
	SentAt         time.Time         `json:"sent_at"`
}

func viewDeliveries(ds []Delivery) []deliveryView {
	out := make([]deliveryView, 0, len(ds))
	for _, d := range ds {
		hdr := make(map[string]string, len(d.Header))
		for k := range d.Header {
			hdr[k] = d.Header.Get(k)
		}
		out = append(out, deliveryView{
			ID: d.ID, EventID: d.EventID, SessionID: d.SessionID, Status: d.Status,
			WebhookType: d.WebhookType, URL: d.URL, Attempt: d.Attempt, Resend: d.Resend,
			Tamper: d.Tamper, Timestamp: d.Timestamp, ResponseStatus: d.ResponseStatus,
			Error: d.Error, Headers: hdr, Body: string(d.Body), SentAt: d.SentAt,
		})
	}
	return out
}

// handleSimWebhooks lists attempts; ?session_id= filters.
func (s *Sim) handleSimWebhooks(w http.ResponseWriter, r *http.Request) {
	ds := s.Deliveries()
	if sid := r.URL.Query().Get("session_id"); sid != "" {
		ds = slices.DeleteFunc(ds, func(d Delivery) bool { return d.SessionID != sid })
	}
	writeJSON(w, http.StatusOK, viewDeliveries(ds))
}

// handleSimResend: {"tamper": "" | bad_signature | stale_timestamp |
// duplicate | drop | replay}. It answers once the attempts are made.
func (s *Sim) handleSimResend(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Tamper string `json:"tamper"`
	}
	if err := decodeSim(r, &body); err != nil {
		writeSimError(w, err)
		return
	}
	ds, err := s.Resend(r.Context(), r.PathValue("id"), body.Tamper)
	if err != nil {
		writeSimError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, viewDeliveries(ds))
}

// handleSimTamper queues tampering for upcoming deliveries:
// {"tamper": "drop", "count": 1, "session_id": ""}.
func (s *Sim) handleSimTamper(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Tamper    string `json:"tamper"`
		Count     int    `json:"count"`
		SessionID string `json:"session_id"`
	}
	if err := decodeSim(r, &body); err != nil {
		writeSimError(w, err)
		return
	}
	if err := s.TamperNext(body.Tamper, body.Count, body.SessionID); err != nil {
		writeSimError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"ok": true})
}

// handleSimHold: {"session_id": ""} holds new deliveries ("" = all sessions).
func (s *Sim) handleSimHold(w http.ResponseWriter, r *http.Request) {
	var body struct {
		SessionID string `json:"session_id"`
	}
	if err := decodeSim(r, &body); err != nil {
		writeSimError(w, err)
		return
	}
	s.HoldWebhooks(body.SessionID)
	writeJSON(w, http.StatusOK, map[string]any{"ok": true})
}

// handleSimRelease: {"session_id": "", "reverse": true} sends held
// deliveries, newest first when reverse.
func (s *Sim) handleSimRelease(w http.ResponseWriter, r *http.Request) {
	var body struct {
		SessionID string `json:"session_id"`
		Reverse   bool   `json:"reverse"`
	}
	if err := decodeSim(r, &body); err != nil {
		writeSimError(w, err)
		return
	}
	n := s.ReleaseWebhooks(body.SessionID, body.Reverse)
	writeJSON(w, http.StatusOK, map[string]any{"released": n})
}

// handleSimReorder delivers an older event again after newer ones:
// {"event_id": "..."} or {"session_id": "..."} (then the session's
// second-newest status.updated event), with an optional "tamper".
func (s *Sim) handleSimReorder(w http.ResponseWriter, r *http.Request) {
	var body struct {
		EventID   string `json:"event_id"`
		SessionID string `json:"session_id"`
		Tamper    string `json:"tamper"`
	}
	if err := decodeSim(r, &body); err != nil {
		writeSimError(w, err)
		return
	}
	eventID := body.EventID
	if eventID == "" {
		var status []EventInfo
		for _, ev := range s.Events(body.SessionID) {
			if ev.WebhookType == EventStatusUpdated {
				status = append(status, ev)
			}
		}
		if body.SessionID == "" || len(status) < 2 {
			writeSimError(w, fmt.Errorf("%w: need event_id, or a session_id with at least two status events", ErrInvalidInput))
			return
		}
		eventID = status[len(status)-2].ID
	}
	ds, err := s.Redeliver(r.Context(), eventID, body.Tamper)
	if err != nil {
		writeSimError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, viewDeliveries(ds))
}

// handleSimClock: GET reads; POST {"set": RFC 3339} or {"advance": "5m"} or
// {"advance_seconds": 600}.
func (s *Sim) handleSimClock(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost {
		var body struct {
			Set            *time.Time `json:"set"`
			Advance        string     `json:"advance"`
			AdvanceSeconds float64    `json:"advance_seconds"`
		}
		if err := decodeSim(r, &body); err != nil {
			writeSimError(w, err)
			return
		}
		var d time.Duration
		if body.Advance != "" {
			var err error
			if d, err = time.ParseDuration(body.Advance); err != nil {
				writeSimError(w, fmt.Errorf("%w: advance: %v", ErrInvalidInput, err))
				return
			}
		}
		d += time.Duration(body.AdvanceSeconds * float64(time.Second))
		if body.Set != nil {
			s.SetClock(*body.Set)
		}
		s.AdvanceClock(d)
	}
	now := s.Now()
	writeJSON(w, http.StatusOK, map[string]any{"now": now.UTC().Format(time.RFC3339Nano), "unix": now.Unix()})
}

// faultView is a Fault on the wire, with latency in milliseconds.
type faultView struct {
	Kind       string `json:"kind"`
	PathPrefix string `json:"path_prefix,omitempty"`
	Method     string `json:"method,omitempty"`
	Count      int    `json:"count"`
	Status     int    `json:"status,omitempty"`
	LatencyMS  int64  `json:"latency_ms,omitempty"`
	RetryAfter int    `json:"retry_after,omitempty"`
}

func (v faultView) fault() Fault {
	return Fault{Kind: v.Kind, PathPrefix: v.PathPrefix, Method: v.Method, Count: v.Count,
		Status: v.Status, Latency: time.Duration(v.LatencyMS) * time.Millisecond, RetryAfter: v.RetryAfter}
}

// handleSimFaults: GET lists; POST adds one fault object or an array of
// them; DELETE clears.
func (s *Sim) handleSimFaults(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodPost:
		var raw json.RawMessage
		if err := decodeSim(r, &raw); err != nil {
			writeSimError(w, err)
			return
		}
		var views []faultView
		if len(raw) > 0 && raw[0] == '[' {
			if err := json.Unmarshal(raw, &views); err != nil {
				writeSimError(w, fmt.Errorf("%w: %v", ErrInvalidInput, err))
				return
			}
		} else {
			var v faultView
			if err := json.Unmarshal(raw, &v); err != nil {
				writeSimError(w, fmt.Errorf("%w: %v", ErrInvalidInput, err))
				return
			}
			views = append(views, v)
		}
		for _, v := range views {
			if err := v.fault().validate(); err != nil {
				writeSimError(w, err)
				return
			}
		}
		for _, v := range views {
			_ = s.AddFault(v.fault())
		}
	case http.MethodDelete:
		s.ClearFaults()
	}
	fs := s.Faults()
	out := make([]faultView, 0, len(fs))
	for _, f := range fs {
		out = append(out, faultView{f.Kind, f.PathPrefix, f.Method, f.Count, f.Status, f.Latency.Milliseconds(), f.RetryAfter})
	}
	writeJSON(w, http.StatusOK, out)
}

// handleSimRateLimit: GET reads; POST {"create": 2, "get": 600, "write": 300,
// "reset": true} changes the given limits (0 = unlimited) and optionally
// clears the counters.
func (s *Sim) handleSimRateLimit(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost {
		var body struct {
			Create, Get, Write *int
			Reset              bool
		}
		if err := decodeSim(r, &body); err != nil {
			writeSimError(w, err)
			return
		}
		l := s.RateLimits()
		for _, p := range []struct {
			v   *int
			dst *int
		}{{body.Create, &l.Create}, {body.Get, &l.Get}, {body.Write, &l.Write}} {
			if p.v != nil {
				if *p.v < 0 {
					writeSimError(w, fmt.Errorf("%w: negative limit", ErrInvalidInput))
					return
				}
				*p.dst = *p.v
			}
		}
		s.SetRateLimits(l)
		if body.Reset {
			s.ResetRateLimits()
		}
	}
	writeJSON(w, http.StatusOK, s.RateLimits())
}
