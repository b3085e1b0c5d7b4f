// Package httpapi is the only package that knows HTTP: routes, the StarkFi
// envelope, authentication, rate limits, and the Didit webhook endpoint.
package httpapi

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kycgate/kycgate/internal/envelope"
	"github.com/kycgate/kycgate/internal/kyc"
)

// WebhookVerifier checks and parses a Didit webhook delivery.
type WebhookVerifier interface {
	// CheckHeaders is the part of Verify that needs only the headers,
	// cheap enough to run on every request before its body is read. It
	// must refuse nothing Verify would accept.
	CheckHeaders(h http.Header, now time.Time) error
	Verify(h http.Header, body []byte, now time.Time) error
	Parse(body []byte) (kyc.SessionEvent, error)
}

// ErrIgnoredEvent is returned by WebhookVerifier.Parse for event types we do
// not act on; they are acknowledged and dropped.
var ErrIgnoredEvent = kyc.ErrIgnoredEvent

// Config wires a Server.
type Config struct {
	Service  *kyc.Service
	Logger   *slog.Logger
	Counter  Counter         // rate-limit counter; nil = in-process
	Webhooks WebhookVerifier // nil = webhook endpoint answers 401
	Clock    kyc.Clock       // nil = wall clock
	// Ready reports whether the server can take traffic (the database
	// takes writes). /readyz asks it at most once a second.
	Ready func(ctx context.Context) error
	// Fault is told the cause of every 5xx answered, so readiness can
	// notice writes failing (a full disk) between its own probes; it
	// reports whether the cause is such a fault.
	Fault func(error) bool
	// Mounts are extra handlers by path prefix ("/_dev/mail/", "/_didit/"),
	// served as they are, outside the API's auth and envelope.
	Mounts map[string]http.Handler
	// RequestTimeout bounds one request's work (default 30 s).
	RequestTimeout time.Duration
	// Metrics is told of every request and webhook; nil = none. It is
	// served elsewhere (the admin listener), never on this handler.
	Metrics Recorder
}

// Server is the HTTP face of the service.
type Server struct {
	svc      *kyc.Service
	log      *slog.Logger
	counter  Counter
	webhooks WebhookVerifier
	clock    kyc.Clock
	ready    func(ctx context.Context) error
	fault    func(error) bool
	probe    readyCache
	timeout  time.Duration
	draining atomic.Bool
	handler  http.Handler
	metrics  Recorder
	// holders and verifiers hold a token per webhook request holding a
	// body, and per webhook check running (see webhookHolders).
	holders, verifiers chan struct{}
}

// New builds the server and its routes.
func New(cfg Config) *Server {
	s := &Server{svc: cfg.Service, log: cfg.Logger, counter: cfg.Counter, webhooks: cfg.Webhooks,
		clock: cfg.Clock, ready: cfg.Ready, fault: cfg.Fault, timeout: cfg.RequestTimeout, metrics: cfg.Metrics,
		holders: make(chan struct{}, webhookHolders), verifiers: make(chan struct{}, webhookVerifiers())}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.counter == nil {
		s.counter = NewMemory()
	}
	if s.clock == nil {
		s.clock = kyc.SystemClock{}
	}
	if s.metrics == nil {
		s.metrics = nopRecorder{}
	}
	if s.timeout == 0 {
		s.timeout = 30 * time.Second
	}
	s.handler = s.routes(cfg.Mounts)
	return s
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// Drain makes /readyz fail so load balancers stop sending traffic while
// in-flight requests finish.
func (s *Server) Drain() { s.draining.Store(true) }

// route is one path with its handlers by method.
type route struct {
	path    string
	methods map[string]http.Handler
}

// methodRouter answers 405 with Allow in the envelope, which ServeMux's
// built-in 405 cannot do.
func (s *Server) methodRouter(rt route) http.Handler {
	methods := envelope.NewMethods(rt.methods)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		infoOf(r.Context()).route = rt.path
		if h, ok := methods.Lookup(w, r); ok {
			h.ServeHTTP(w, r)
		}
	})
}

func (s *Server) notFound(w http.ResponseWriter, r *http.Request) {
	respond(w, http.StatusNotFound, codeNotFound, "Route not found", nil)
}

func (s *Server) now() time.Time { return s.clock.Now() }

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if s.draining.Load() {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "error": "shutting down"})
		return
	}
	if s.ready != nil {
		if err := s.probe.check(r.Context(), s.ready); err != nil {
			s.log.WarnContext(r.Context(), "not ready", "err", err)
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "error": "database cannot take writes"})
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

// readyCache runs the readiness probe (a database write) at most once per
// readyEvery, whoever asks and however often: /readyz is unauthenticated,
// and a flood of it must not become a flood of writes.
type readyCache struct {
	mu  sync.Mutex
	at  time.Time
	err error
}

const readyEvery = time.Second

func (c *readyCache) forget() {
	c.mu.Lock()
	c.at = time.Time{}
	c.mu.Unlock()
}

func (c *readyCache) check(ctx context.Context, probe func(context.Context) error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.at.IsZero() && time.Since(c.at) < readyEvery {
		return c.err
	}
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	c.err, c.at = probe(pctx), time.Now()
	return c.err
}

func fmtLimit(perMinute int) string {
	perSecond := (perMinute + 59) / 60
	return fmt.Sprintf("Too many requests. The limit is %d request per minute and %d requests per second.", perMinute, perSecond)
}
