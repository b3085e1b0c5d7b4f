// Package diditsim is a local simulator of Didit's v3 verification API
// (docs/didit.md §12): the REST surface kycgate calls, a hosted
// session page where a person picks an outcome, signed webhooks with Didit's
// retry behaviour, and test-only control endpoints under /_sim/.
//
// Everything lives in memory behind one mutex. The simulator is meant for
// tests and local development, never for production traffic.
package diditsim

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Webhook event types the simulator emits.
const (
	EventStatusUpdated = "status.updated"
	EventDataUpdated   = "data.updated"
)

// Destination is one webhook receiver, like a Didit webhook destination.
type Destination struct {
	URL    string
	Secret string
	// Version is the webhook_version: "v3" (default) or "v2". It picks the
	// decision shape carried by the payload.
	Version string
	// Events are the subscribed webhook types; empty means status.updated and
	// data.updated.
	Events []string
}

// Config configures a Sim. Build it from DefaultConfig so the defaults that a
// zero value cannot express (ResignOnRetry, Didit's retry schedule) are set.
type Config struct {
	APIKey string // required x-api-key
	// SandboxKey is an optional second key: a separate "sandbox application"
	// whose sessions carry environment "sandbox" and are invisible to APIKey.
	SandboxKey string
	// WorkflowIDs are the accepted workflow ids (UUIDs); empty accepts any
	// valid UUID.
	WorkflowIDs []string
	// BaseURL is the public URL where Handler is reachable, e.g.
	// "http://127.0.0.1:8080/_didit". It prefixes session urls, hosted-page
	// form actions, redirects and list next/previous links.
	BaseURL  string
	Webhooks []Destination
	// RetrySchedule holds the delays before retry 1, 2, ...; nil means
	// Didit's 1 min, 4 min. A non-nil empty slice means no retries.
	RetrySchedule []time.Duration
	// ResignOnRetry makes each retry carry a fresh timestamp and signature;
	// when false a retry repeats the first attempt byte for byte.
	// DefaultConfig sets it to true.
	ResignOnRetry bool
	// NotStartedWebhook says when the "Not Started" status.updated fires:
	// "create" (default) or "open" (when the hosted page is first opened).
	NotStartedWebhook string
	Now               func() time.Time // injectable clock; default time.Now
	HTTPClient        *http.Client     // webhook delivery; default 10 s timeout
	Logger            *slog.Logger     // default slog.Default()
	WrongKeyStatus    int              // 401 (default) or 403 for a wrong key
}

// DefaultRetrySchedule is Didit's: the initial attempt, then retries after
// about 1 and 4 minutes (docs/didit.md §6.5).
var DefaultRetrySchedule = []time.Duration{time.Minute, 4 * time.Minute}

// DefaultConfig returns a Config with Didit's defaults filled in.
func DefaultConfig() Config {
	return Config{
		RetrySchedule:     append([]time.Duration(nil), DefaultRetrySchedule...),
		ResignOnRetry:     true,
		NotStartedWebhook: NotStartedOnCreate,
		WrongKeyStatus:    http.StatusUnauthorized,
	}
}

// Values of Config.NotStartedWebhook.
const (
	NotStartedOnCreate = "create"
	NotStartedOnOpen   = "open"
)

// Sim is a running simulator. All methods are safe for concurrent use.
type Sim struct {
	cfg    Config
	logger *slog.Logger

	mu          sync.Mutex
	baseURL     string
	clockOffset time.Duration
	sessions    map[string]*session // by session_id
	byToken     map[string]*session
	order       []*session // creation order
	nextNumber  int
	workflows   map[string]bool
	events      []*event // every event ever emitted, in order

	limiter *limiter
	faults  *faultSet
	hooks   *hub
}

// New validates cfg and returns a simulator with its webhook workers running.
// Call Close to stop them.
func New(cfg Config) (*Sim, error) {
	cfg, err := normalize(cfg)
	if err != nil {
		return nil, err
	}
	s := &Sim{
		cfg:        cfg,
		logger:     cfg.Logger,
		baseURL:    cfg.BaseURL,
		sessions:   make(map[string]*session),
		byToken:    make(map[string]*session),
		nextNumber: 1001,
		workflows:  make(map[string]bool),
		limiter:    newLimiter(),
		faults:     &faultSet{},
	}
	for _, id := range cfg.WorkflowIDs {
		s.workflows[id] = true
	}
	s.hooks = newHub(s, cfg)
	return s, nil
}

// normalize fills defaults and validates cfg.
func normalize(cfg Config) (Config, error) {
	if cfg.APIKey == "" {
		return cfg, errors.New("diditsim: APIKey is required")
	}
	if cfg.SandboxKey == cfg.APIKey {
		return cfg, errors.New("diditsim: SandboxKey must differ from APIKey")
	}
	base, err := cleanBaseURL(cfg.BaseURL)
	if err != nil {
		return cfg, err
	}
	cfg.BaseURL = base
	ids := make([]string, 0, len(cfg.WorkflowIDs))
	for _, id := range cfg.WorkflowIDs {
		n, ok := normalizeUUID(id)
		if !ok {
			return cfg, fmt.Errorf("diditsim: workflow id %q is not a UUID", id)
		}
		ids = append(ids, n)
	}
	cfg.WorkflowIDs = ids
	dests, err := normalizeDestinations(cfg.Webhooks)
	if err != nil {
		return cfg, err
	}
	cfg.Webhooks = dests
	if cfg.RetrySchedule == nil {
		cfg.RetrySchedule = append([]time.Duration(nil), DefaultRetrySchedule...)
	}
	for _, d := range cfg.RetrySchedule {
		if d < 0 {
			return cfg, errors.New("diditsim: negative retry delay")
		}
	}
	switch cfg.NotStartedWebhook {
	case "":
		cfg.NotStartedWebhook = NotStartedOnCreate
	case NotStartedOnCreate, NotStartedOnOpen:
	default:
		return cfg, fmt.Errorf("diditsim: NotStartedWebhook must be %q or %q", NotStartedOnCreate, NotStartedOnOpen)
	}
	switch cfg.WrongKeyStatus {
	case 0:
		cfg.WrongKeyStatus = http.StatusUnauthorized
	case http.StatusUnauthorized, http.StatusForbidden:
	default:
		return cfg, errors.New("diditsim: WrongKeyStatus must be 401 or 403")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return cfg, nil
}

func cleanBaseURL(raw string) (string, error) {
	if raw == "" {
		return "", errors.New("diditsim: BaseURL is required")
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("diditsim: BaseURL %q must be an absolute http(s) URL", raw)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("diditsim: BaseURL %q must not have a query or fragment", raw)
	}
	return strings.TrimRight(raw, "/"), nil
}

func normalizeDestinations(in []Destination) ([]Destination, error) {
	out := make([]Destination, 0, len(in))
	for i, d := range in {
		u, err := url.Parse(d.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("diditsim: webhook %d: URL %q must be an absolute http(s) URL", i, d.URL)
		}
		if d.Secret == "" {
			return nil, fmt.Errorf("diditsim: webhook %d: Secret is required", i)
		}
		switch d.Version {
		case "":
			d.Version = "v3"
		case "v2", "v3":
		default:
			return nil, fmt.Errorf("diditsim: webhook %d: Version must be v2 or v3", i)
		}
		if len(d.Events) == 0 {
			d.Events = []string{EventStatusUpdated, EventDataUpdated}
		} else {
			d.Events = append([]string(nil), d.Events...)
		}
		out = append(out, d)
	}
	return out, nil
}

// Close stops the webhook workers and waits for them. Queued deliveries that
// have not started are dropped. The HTTP handler keeps answering.
func (s *Sim) Close() error {
	s.hooks.close()
	return nil
}

// SetBaseURL changes the public base URL, for callers that learn their
// listen address only after building the handler. Existing sessions keep
// their url.
func (s *Sim) SetBaseURL(raw string) error {
	base, err := cleanBaseURL(raw)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.baseURL = base
	s.mu.Unlock()
	return nil
}

// SetWebhooks replaces the webhook destinations for events emitted from now
// on; deliveries already queued keep their destination.
func (s *Sim) SetWebhooks(dests []Destination) error {
	d, err := normalizeDestinations(dests)
	if err != nil {
		return err
	}
	s.hooks.setDestinations(d)
	return nil
}

func (s *Sim) base() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.baseURL
}

// Now is the simulator's clock: Config.Now shifted by SetClock/AdvanceClock.
func (s *Sim) Now() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.nowLocked()
}

func (s *Sim) nowLocked() time.Time { return s.cfg.Now().Add(s.clockOffset) }

// SetClock makes Now return t (and then move on with the real clock).
func (s *Sim) SetClock(t time.Time) {
	s.mu.Lock()
	s.clockOffset = t.Sub(s.cfg.Now())
	s.mu.Unlock()
}

// AdvanceClock moves the simulator's clock forward by d (backward if d < 0).
func (s *Sim) AdvanceClock(d time.Duration) {
	s.mu.Lock()
	s.clockOffset += d
	s.mu.Unlock()
}

// newUUID returns a random (version 4) UUID.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go ≥ 1.24)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// normalizeUUID accepts the canonical 8-4-4-4-12 hex form in either case and
// returns it in lower case.
func normalizeUUID(s string) (string, bool) {
	if len(s) != 36 {
		return "", false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return "", false
			}
		default:
			if !isHex(c) {
				return "", false
			}
		}
	}
	return strings.ToLower(s), true
}

func isHex(c byte) bool {
	return ('0' <= c && c <= '9') || ('a' <= c && c <= 'f') || ('A' <= c && c <= 'F')
}

const tokenAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// newToken returns a 12-character URL-safe session token, like Didit's.
func newToken() string {
	out := make([]byte, 0, 12)
	var buf [32]byte
	for len(out) < 12 {
		_, _ = rand.Read(buf[:])
		for _, b := range buf {
			// Rejection sampling keeps the alphabet uniform: 248 = 4*62.
			if b < 248 && len(out) < 12 {
				out = append(out, tokenAlphabet[int(b)%len(tokenAlphabet)])
			}
		}
	}
	return string(out)
}

// ctxErr lets Go-API methods honour an already-cancelled context.
func ctxErr(ctx context.Context) error {
	if ctx == nil {
		return nil
	}
	return ctx.Err()
}
