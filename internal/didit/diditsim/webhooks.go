package diditsim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/kycgate/kycgate/internal/didit"
)

// UserAgent is the User-Agent of Didit's webhook sender.
const UserAgent = "DiditWebhook/2.0 +https://didit.me"

// Tampering applied to a delivery, for testing a receiver's defences.
const (
	TamperNone = ""
	// TamperBadSignature signs with the wrong secret.
	TamperBadSignature = "bad_signature"
	// TamperStaleTimestamp dates the body and X-Timestamp 10 minutes back
	// (correctly signed), past the 300 s freshness window.
	TamperStaleTimestamp = "stale_timestamp"
	// TamperDuplicate sends the same bytes and headers twice in a row.
	TamperDuplicate = "duplicate"
	// TamperDrop records the attempt but never sends it: a lost webhook.
	TamperDrop = "drop"
	// TamperReplay (resend only) re-sends the original attempt byte for
	// byte, with its original headers and timestamp.
	TamperReplay = "replay"
)

// staleBy is how far back TamperStaleTimestamp dates a delivery.
const staleBy = 10 * time.Minute

// maxPending bounds the deliveries waiting in queues.
const maxPending = 10000

// Delivery is one webhook attempt as the receiver saw it (or would have).
type Delivery struct {
	ID             string      // unique per attempt
	EventID        string      // stable across retries and resends of one event
	SessionID      string      //
	Status         string      // session status carried by the event
	WebhookType    string      // status.updated or data.updated
	URL            string      // destination
	Attempt        int         // 1 for the first try, 2.. for retries
	Resend         bool        // sent by Resend/Redeliver rather than the queue
	Tamper         string      // Tamper* applied, if any
	Timestamp      int64       // X-Timestamp
	ResponseStatus int         // receiver's HTTP status; 0 when none
	Error          string      // transport error, or why nothing was sent
	Header         http.Header // request headers sent
	Body           []byte      // raw request body sent
	SentAt         time.Time   // simulator clock
}

func (d Delivery) clone() Delivery {
	d.Header = d.Header.Clone()
	d.Body = bytes.Clone(d.Body)
	return d
}

// event is one emitted webhook event: a snapshot of the session at the
// transition, so retries and resends carry the same data.
type event struct {
	id          string
	seq         int
	sessionID   string
	status      string
	webhookType string
	vendorData  *string
	workflowID  string
	metadata    json.RawMessage
	environment string
	resubmit    any // resubmit_info, for Resubmitted events
	decisionV3  json.RawMessage
	decisionV2  json.RawMessage
	at          time.Time
}

// EventInfo describes an emitted event.
type EventInfo struct {
	ID          string    `json:"event_id"`
	Seq         int       `json:"seq"`
	SessionID   string    `json:"session_id"`
	Status      string    `json:"status"`
	WebhookType string    `json:"webhook_type"`
	At          time.Time `json:"at"`
}

// webhookPayload is the body of a session webhook (docs/didit.md §6.3), fields in
// the order Didit's examples show them.
type webhookPayload struct {
	EventID     string          `json:"event_id"`
	WebhookType string          `json:"webhook_type"`
	SessionID   string          `json:"session_id"`
	Status      string          `json:"status"`
	VendorData  *string         `json:"vendor_data,omitempty"`
	WorkflowID  string          `json:"workflow_id,omitempty"`
	Metadata    json.RawMessage `json:"metadata,omitempty"`
	Environment string          `json:"environment"`
	// ResubmitInfo is reported [3p, unverified] on Resubmitted events.
	ResubmitInfo any             `json:"resubmit_info,omitempty"`
	Timestamp    int64           `json:"timestamp"`
	CreatedAt    int64           `json:"created_at"`
	Decision     json.RawMessage `json:"decision,omitempty"`
}

// emitLocked records an event for sess's current state and queues it for
// every subscribed destination. Called with s.mu held, so events of one
// session are queued in transition order.
func (s *Sim) emitLocked(sess *session, webhookType string, resubmit any) {
	ev := &event{
		id:          newUUID(),
		seq:         len(s.events) + 1,
		sessionID:   sess.id,
		status:      sess.status,
		webhookType: webhookType,
		vendorData:  sess.vendorData,
		workflowID:  sess.workflowID,
		metadata:    sess.metadata,
		environment: sess.env,
		resubmit:    resubmit,
		at:          s.nowLocked(),
	}
	if slices.Contains(decisionStatuses, sess.status) {
		var err error
		if ev.decisionV3, err = marshalCompact(s.decisionV3Locked(sess)); err != nil {
			s.logger.Error("diditsim: encode decision", "session_id", sess.id, "err", err)
		}
		if ev.decisionV2, err = marshalCompact(s.decisionV2Locked(sess)); err != nil {
			s.logger.Error("diditsim: encode v2 decision", "session_id", sess.id, "err", err)
		}
	}
	s.events = append(s.events, ev)
	s.hooks.enqueue(ev)
}

// Events lists emitted events, oldest first; sessionID "" means all.
func (s *Sim) Events(sessionID string) []EventInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []EventInfo
	for _, ev := range s.events {
		if sessionID == "" || ev.sessionID == sessionID {
			out = append(out, EventInfo{ev.id, ev.seq, ev.sessionID, ev.status, ev.webhookType, ev.at})
		}
	}
	return out
}

func (s *Sim) eventByID(id string) *event {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ev := range s.events {
		if ev.id == id {
			return ev
		}
	}
	return nil
}

type destination struct{ Destination }

type queueKey struct {
	dest    *destination
	session string
}

type job struct {
	dest   *destination
	ev     *event
	tamper string
}

type tamperRule struct {
	kind      string
	remaining int
	sessionID string
}

// attempt is a recorded Delivery plus what is needed to resend it.
type attempt struct {
	Delivery
	dest *destination
	ev   *event
}

// hub sends webhooks. Each (destination, session) pair has its own FIFO
// queue drained by one goroutine, so one session's events arrive in order
// while a slow retry of one session never delays another.
type hub struct {
	sim      *Sim
	client   *http.Client
	logger   *slog.Logger
	schedule []time.Duration
	resign   bool

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex
	closed   bool
	dests    []*destination
	queues   map[queueKey][]*job
	active   map[queueKey]bool
	pending  int
	held     map[string]bool // session id, or "" for every session
	heldJobs []*job
	tampers  []*tamperRule
	attempts []attempt
	changed  chan struct{} // closed and replaced whenever attempts grows
}

func newHub(s *Sim, cfg Config) *hub {
	ctx, cancel := context.WithCancel(context.Background())
	h := &hub{
		sim:      s,
		client:   cfg.HTTPClient,
		logger:   cfg.Logger,
		schedule: append([]time.Duration(nil), cfg.RetrySchedule...),
		resign:   cfg.ResignOnRetry,
		ctx:      ctx,
		cancel:   cancel,
		queues:   make(map[queueKey][]*job),
		active:   make(map[queueKey]bool),
		held:     make(map[string]bool),
		changed:  make(chan struct{}),
	}
	h.setDestinations(cfg.Webhooks)
	return h
}

func (h *hub) setDestinations(ds []Destination) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.dests = h.dests[:0:0]
	for _, d := range ds {
		h.dests = append(h.dests, &destination{d})
	}
}

func (h *hub) close() {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return
	}
	h.closed = true
	h.cancel()
	h.heldJobs = nil
	h.mu.Unlock()
	h.wg.Wait()
}

func (h *hub) enqueue(ev *event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	for _, d := range h.dests {
		if !slices.Contains(d.Events, ev.webhookType) {
			continue
		}
		j := &job{dest: d, ev: ev, tamper: h.takeTamperLocked(ev.sessionID)}
		if h.held[""] || h.held[ev.sessionID] {
			h.heldJobs = append(h.heldJobs, j)
			continue
		}
		h.pushLocked(j)
	}
}

func (h *hub) pushLocked(j *job) {
	if h.closed {
		return
	}
	if h.pending >= maxPending {
		h.logger.Error("diditsim: webhook queue full, event dropped", "event_id", j.ev.id, "session_id", j.ev.sessionID)
		return
	}
	k := queueKey{j.dest, j.ev.sessionID}
	h.queues[k] = append(h.queues[k], j)
	h.pending++
	if !h.active[k] {
		h.active[k] = true
		h.wg.Add(1) // safe: close sets closed under h.mu before Wait
		go h.run(k)
	}
}

func (h *hub) run(k queueKey) {
	defer h.wg.Done()
	for {
		h.mu.Lock()
		q := h.queues[k]
		if len(q) == 0 || h.ctx.Err() != nil {
			h.pending -= len(q)
			delete(h.queues, k)
			delete(h.active, k)
			h.mu.Unlock()
			return
		}
		j := q[0]
		h.queues[k] = q[1:]
		h.pending--
		h.mu.Unlock()
		h.deliver(j)
	}
}

func (h *hub) takeTamperLocked(sessionID string) string {
	for i, t := range h.tampers {
		if t.sessionID != "" && t.sessionID != sessionID {
			continue
		}
		t.remaining--
		if t.remaining <= 0 {
			h.tampers = slices.Delete(h.tampers, i, i+1)
		}
		return t.kind
	}
	return TamperNone
}

// prepared is one signed request, ready to send.
type prepared struct {
	body   []byte
	header http.Header
	ts     int64
}

// prepare builds and signs the body of ev for d at the simulator's now.
func (h *hub) prepare(d *destination, ev *event, tamper string) (prepared, error) {
	now := h.sim.Now()
	if tamper == TamperStaleTimestamp {
		now = now.Add(-staleBy)
	}
	ts := now.Unix()
	p := webhookPayload{
		EventID:      ev.id,
		WebhookType:  ev.webhookType,
		SessionID:    ev.sessionID,
		Status:       ev.status,
		VendorData:   ev.vendorData,
		WorkflowID:   ev.workflowID,
		Metadata:     ev.metadata,
		Environment:  ev.environment,
		ResubmitInfo: ev.resubmit,
		Timestamp:    ts,
		CreatedAt:    ts,
		Decision:     ev.decisionV3,
	}
	if d.Version == "v2" {
		p.Decision = ev.decisionV2
	}
	body, err := marshalPythonDefault(p)
	if err != nil {
		return prepared{}, fmt.Errorf("encode webhook: %w", err)
	}
	secret := d.Secret
	if tamper == TamperBadSignature {
		secret += "-tampered"
	}
	sigs, err := didit.Sign(secret, body, ts)
	if err != nil {
		return prepared{}, fmt.Errorf("sign webhook: %w", err)
	}
	hdr := make(http.Header)
	hdr.Set("Content-Type", "application/json")
	hdr.Set("User-Agent", UserAgent)
	sigs.SetHeaders(hdr) // X-Signature, -V2, -Simple and X-Timestamp
	return prepared{body: body, header: hdr, ts: ts}, nil
}

// deliver makes the initial attempt and the scheduled retries of one job.
func (h *hub) deliver(j *job) {
	var fixed *prepared
	for n := 1; n <= 1+len(h.schedule); n++ {
		if n > 1 && !h.wait(h.schedule[n-2]) {
			return
		}
		if h.ctx.Err() != nil {
			return
		}
		var p prepared
		if fixed != nil {
			p = *fixed
		} else {
			var err error
			if p, err = h.prepare(j.dest, j.ev, j.tamper); err != nil {
				h.logger.Error("diditsim: webhook not sent", "event_id", j.ev.id, "err", err)
				h.record(j.dest, j.ev, n, false, j.tamper, prepared{}, 0, err)
				return
			}
			if !h.resign {
				fixed = &p
			}
		}
		if j.tamper == TamperDrop {
			h.record(j.dest, j.ev, n, false, j.tamper, p, 0, errDropped)
			return
		}
		status, err := h.post(h.ctx, j.dest.URL, p)
		h.record(j.dest, j.ev, n, false, j.tamper, p, status, err)
		if j.tamper == TamperDuplicate && n == 1 {
			status, err = h.post(h.ctx, j.dest.URL, p)
			h.record(j.dest, j.ev, n, false, j.tamper, p, status, err)
		}
		if !retryable(status, err) {
			return
		}
		if h.ctx.Err() != nil {
			return
		}
	}
}

var errDropped = errors.New("dropped by tamper: never sent")

// retryable is Didit's rule: retry on 5xx, 404, timeouts and connection
// errors; any other status counts as delivered.
func retryable(status int, err error) bool {
	return err != nil || status >= 500 || status == http.StatusNotFound
}

// wait sleeps d unless the hub closes first.
func (h *hub) wait(d time.Duration) bool {
	if d <= 0 {
		return h.ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-h.ctx.Done():
		return false
	}
}

func (h *hub) post(ctx context.Context, url string, p prepared) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(p.body))
	if err != nil {
		return 0, err
	}
	req.Header = p.header.Clone()
	resp, err := h.client.Do(req)
	if err != nil {
		return 0, err
	}
	// Drain a little so the connection can be reused; the body is ignored.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	return resp.StatusCode, nil
}

func (h *hub) record(d *destination, ev *event, n int, resend bool, tamper string, p prepared, status int, err error) Delivery {
	del := Delivery{
		ID:             newUUID(),
		EventID:        ev.id,
		SessionID:      ev.sessionID,
		Status:         ev.status,
		WebhookType:    ev.webhookType,
		URL:            d.URL,
		Attempt:        n,
		Resend:         resend,
		Tamper:         tamper,
		Timestamp:      p.ts,
		ResponseStatus: status,
		Header:         p.header.Clone(),
		Body:           bytes.Clone(p.body),
		SentAt:         h.sim.Now(),
	}
	if err != nil {
		del.Error = err.Error()
	}
	level := slog.LevelDebug
	if err != nil || status >= 300 {
		level = slog.LevelInfo
	}
	h.logger.Log(context.Background(), level, "diditsim: webhook attempt",
		"event_id", ev.id, "session_id", ev.sessionID, "status", ev.status, "url", d.URL,
		"attempt", n, "response_status", status, "err", del.Error)
	h.mu.Lock()
	h.attempts = append(h.attempts, attempt{Delivery: del, dest: d, ev: ev})
	close(h.changed)
	h.changed = make(chan struct{})
	h.mu.Unlock()
	return del.clone()
}
