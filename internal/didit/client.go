package didit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/kycgate/kycgate/internal/kyc"
)

// DefaultBaseURL is Didit's verification API.
const DefaultBaseURL = "https://verification.didit.me"

const (
	defaultTimeout    = 10 * time.Second
	defaultMaxRetries = 3
	// defaultCreateTimeout bounds the one create attempt when the caller's
	// context sets no earlier limit (the API's request budget, 30 s, always
	// does).
	defaultCreateTimeout = 30 * time.Second
	// defaultCreateMargin is kept back from the caller's deadline when a
	// create is sent, for storing what Didit answers: with the API's 30 s
	// budget a create waits for Didit up to 27 s, less what the request
	// spent before it.
	defaultCreateMargin = 3 * time.Second
	// Backoff between attempts: base·2^n, capped, with jitter in [d/2, d].
	backoffBase = 500 * time.Millisecond
	backoffMax  = 8 * time.Second
	// maxRetryAfter bounds how long we wait on a 429's Retry-After. A longer
	// wait is better reported to the caller (who is usually serving an HTTP
	// request) than slept through.
	maxRetryAfter = 30 * time.Second
	// maxResponseBytes bounds what we read from Didit. Decisions carry media
	// as URLs, so real ones are tens of KB.
	maxResponseBytes = 16 << 20
	userAgent        = "kycgate"
)

// ClientConfig configures a Client. Only APIKey and WorkflowID are required.
type ClientConfig struct {
	BaseURL    string        // default DefaultBaseURL; a trailing slash is ignored
	APIKey     string        // sent as x-api-key
	WorkflowID string        // workflow used for every session we create
	HTTPClient *http.Client  // default: a new http.Client; redirects are never followed
	Timeout    time.Duration // per GetDecision attempt; default 10 s
	MaxRetries int           // retries after the first attempt; 0 means 3, negative means none
	Logger     *slog.Logger  // default: discard
	// CreateTimeout caps the create attempt, default 30 s; it is what ends
	// one when the caller's context has no deadline. A create is sent
	// once, so its attempt may use the caller's whole budget: see
	// CreateMargin.
	CreateTimeout time.Duration
	// CreateMargin is how much of the caller's remaining time a create
	// leaves for storing its result: the attempt ends CreateMargin before
	// the caller's deadline. Default 3 s. When no more than that remains,
	// CreateSession fails without calling Didit.
	CreateMargin time.Duration
	// Sleep waits between attempts; tests inject one that does not really
	// wait. It must return early with ctx.Err() when ctx is done.
	Sleep func(ctx context.Context, d time.Duration) error
}

// Client calls Didit's v3 session API. It implements kyc.Provider and is
// safe for concurrent use.
type Client struct {
	base       string
	apiKey     string
	workflowID string
	hc         *http.Client
	timeout    time.Duration
	maxRetries int
	log        *slog.Logger
	sleep      func(ctx context.Context, d time.Duration) error

	createTimeout time.Duration
	createMargin  time.Duration
}

var _ kyc.Provider = (*Client)(nil)

// NewClient validates cfg and returns a Client.
func NewClient(cfg ClientConfig) (*Client, error) {
	if strings.TrimSpace(cfg.APIKey) == "" {
		return nil, errors.New("didit: API key is required")
	}
	if strings.TrimSpace(cfg.WorkflowID) == "" {
		return nil, errors.New("didit: workflow id is required")
	}
	base := strings.TrimRight(strings.TrimSpace(cfg.BaseURL), "/")
	if base == "" {
		base = DefaultBaseURL
	}
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("didit: base URL %q must be an absolute http(s) URL", cfg.BaseURL)
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return nil, fmt.Errorf("didit: base URL %q must not carry a query, fragment or credentials", cfg.BaseURL)
	}
	hc := &http.Client{}
	if cfg.HTTPClient != nil {
		copied := *cfg.HTTPClient
		hc = &copied
	}
	// Go forwards custom headers such as x-api-key across redirects, even to
	// other hosts, and turns a redirected POST into a GET. Didit's routes do
	// not redirect when the path is right, so a redirect is reported instead.
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

	c := &Client{
		base:       base,
		apiKey:     cfg.APIKey,
		workflowID: cfg.WorkflowID,
		hc:         hc,
		timeout:    cfg.Timeout,
		maxRetries: cfg.MaxRetries,
		log:        cfg.Logger,
		sleep:      cfg.Sleep,

		createTimeout: cfg.CreateTimeout,
		createMargin:  cfg.CreateMargin,
	}
	if c.timeout <= 0 {
		c.timeout = defaultTimeout
	}
	if c.createTimeout <= 0 {
		c.createTimeout = defaultCreateTimeout
	}
	if c.createMargin <= 0 {
		c.createMargin = defaultCreateMargin
	}
	switch {
	case c.maxRetries == 0:
		c.maxRetries = defaultMaxRetries
	case c.maxRetries < 0:
		c.maxRetries = 0
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.sleep == nil {
		c.sleep = kyc.Sleep
	}
	return c, nil
}

type createSessionBody struct {
	WorkflowID string            `json:"workflow_id"`
	VendorData string            `json:"vendor_data,omitempty"`
	Callback   string            `json:"callback,omitempty"` // absent: Didit uses the workflow's default
	Metadata   map[string]string `json:"metadata,omitempty"`
}

type createSessionResponse struct {
	SessionID       string          `json:"session_id"`
	URL             string          `json:"url"`
	VerificationURL string          `json:"verification_url"`
	SessionURL      string          `json:"session_url"`
	Status          kyc.DiditStatus `json:"status"`
}

// ErrCreateUnconfirmed marks a create whose outcome is unknown: the request
// may have reached Didit (it was written, then the answer never came, came
// unreadable, or was a 5xx other than 503), so Didit may hold a session —
// and bill it — that we did not get. Such a create is never resent. The
// session is not lost for good: Didit answers a later create for the same
// vendor_data with that unfinished session (docs/didit.md §2.2, from Didit's
// OpenAPI description), so the partner's retry resumes it rather than
// opening another.
var ErrCreateUnconfirmed = errors.New("create not confirmed (Didit may hold the session)")

// CreateSession creates a verification session: POST /v3/session/.
//
// A create is not idempotent (Didit bills every session), so it is sent at
// most once unless Didit certainly did not receive it:
//
//   - The connection could not be made (refused, DNS, TLS handshake: the
//     request was not written): retried with backoff, up to MaxRetries.
//   - 429 and 503 say nothing was created: retried after Retry-After (or
//     the backoff) if that wait still leaves time for an attempt within
//     the caller's deadline, otherwise reported at once.
//   - Anything else that may follow a request Didit received is final and
//     wraps ErrCreateUnconfirmed: a timeout, reset or EOF after the request
//     was written, an unreadable answer, any other 5xx (a 500 may come
//     after the insert; a proxy's 502/504 after the backend got it), a 2xx
//     we cannot use.
//   - Other statuses (4xx, redirects) are final: nothing was created.
//
// Since it is not repeated, the one attempt may wait for Didit until
// CreateMargin (3 s) before the caller's deadline, capped by CreateTimeout
// (30 s): with the API's 30 s request budget, a Didit that answers in 12 s
// gets one call and the partner its session. With CreateMargin or less
// left, nothing is sent. If the caller's context ends during the attempt,
// the error wraps ErrCreateUnconfirmed too once the request was written;
// a session Didit did return in time is returned even then, for the
// caller to store or at least count.
//
// "Written" is told by net/http/httptrace: a request whose headers the
// transport never finished writing (it failed to connect) cannot have
// been acted on. One race stays ambiguous by nature: a kept-alive
// connection the server closes just as the create goes out. It is
// reported as unconfirmed, not resent.
func (c *Client) CreateSession(ctx context.Context, req kyc.CreateSessionRequest) (kyc.ProviderSession, error) {
	body, err := json.Marshal(createSessionBody{
		WorkflowID: c.workflowID,
		VendorData: req.VendorData,
		Callback:   req.Callback,
		Metadata:   req.Metadata,
	})
	if err != nil {
		return kyc.ProviderSession{}, fmt.Errorf("didit: create session: encode request: %w", err)
	}
	ps, err := c.createSession(ctx, body)
	if errors.Is(err, ErrCreateUnconfirmed) {
		// The operator's lead to a session Didit may hold (and bill)
		// without us: vendor_data is our person id, never an email.
		c.log.WarnContext(ctx, "didit create not confirmed; Didit may hold a session we did not store",
			"vendor_data", req.VendorData, "error", err)
	}
	return ps, err
}

func (c *Client) createSession(ctx context.Context, body []byte) (kyc.ProviderSession, error) {
	status, resp, err := c.do(ctx, call{method: http.MethodPost, path: "/v3/session/", body: body, create: true,
		ok: []int{http.StatusCreated, http.StatusOK}})
	if err != nil {
		return kyc.ProviderSession{}, fmt.Errorf("didit: create session: %w", err)
	}
	var r createSessionResponse
	if err := json.Unmarshal(resp, &r); err != nil {
		return kyc.ProviderSession{}, fmt.Errorf("didit: create session: %w: HTTP %d with unreadable body: %w", ErrCreateUnconfirmed, status, err)
	}
	link := firstNonEmpty(r.URL, r.VerificationURL, r.SessionURL)
	if r.SessionID == "" || link == "" {
		return kyc.ProviderSession{}, fmt.Errorf("didit: create session: %w: HTTP %d without session_id or url", ErrCreateUnconfirmed, status)
	}
	if r.Status == "" {
		r.Status = kyc.StatusNotStarted // a fresh session; Didit always says so itself
	}
	return kyc.ProviderSession{ID: r.SessionID, URL: link, Status: r.Status}, nil
}

// GetDecision reads a session's decision: GET /v3/session/{id}/decision/.
// A 404 (unknown or deleted session) is an *APIError; see IsNotFound.
// Being a read, it is retried on any network failure, 429 or 5xx, each
// attempt under Timeout.
func (c *Client) GetDecision(ctx context.Context, sessionID string) (kyc.Decision, error) {
	if strings.TrimSpace(sessionID) == "" {
		return kyc.Decision{}, errors.New("didit: get decision: empty session id")
	}
	_, resp, err := c.do(ctx, call{method: http.MethodGet, path: "/v3/session/" + url.PathEscape(sessionID) + "/decision/",
		ok: []int{http.StatusOK}})
	if err != nil {
		return kyc.Decision{}, fmt.Errorf("didit: get decision %s: %w", sessionID, err)
	}
	d, err := SummarizeDecision(resp)
	if err != nil {
		return kyc.Decision{}, fmt.Errorf("didit: get decision %s: %w", sessionID, err)
	}
	return d, nil
}

// DeleteSession deletes a session at Didit: DELETE
// /v3/session/{id}/delete/ (docs/didit.md §5.2), for an erasure. Any 2xx is
// done (Didit's pages say 204, other descriptions 200 with a body), and so
// is 404: the session is gone already (deleted before, or by an attempt
// whose answer was lost). The delete is idempotent, so it is retried like
// a read: on any network failure, 429 or 5xx, each attempt under Timeout.
func (c *Client) DeleteSession(ctx context.Context, sessionID string) error {
	if strings.TrimSpace(sessionID) == "" {
		return errors.New("didit: delete session: empty session id")
	}
	_, _, err := c.do(ctx, call{method: http.MethodDelete, path: "/v3/session/" + url.PathEscape(sessionID) + "/delete/",
		ok: []int{http.StatusOK, http.StatusAccepted, http.StatusNoContent}})
	if IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("didit: delete session %s: %w", sessionID, err)
	}
	return nil
}

// call is one API call.
type call struct {
	method, path string
	body         []byte
	ok           []int // statuses that are success
	// create: not idempotent. Never resent once it may have reached Didit,
	// and its attempt runs until shortly before the caller's deadline
	// instead of under Timeout.
	create bool
}

// outcome is what one attempt produced.
type outcome struct {
	status int
	header http.Header
	body   []byte
	err    error // transport failure or unreadable response; status is then 0
	// sent: the request may have reached Didit. False only when the
	// transport began a try (httptrace GetConn) and never finished writing
	// the request's headers: a dial, DNS or TLS failure.
	sent bool
}

// errNoTimeForCreate: the caller's deadline leaves no time for a create
// and for storing its result.
var errNoTimeForCreate = errors.New("too little time left before the deadline to create a session")

// do runs one API call with retries and returns the status and body of the
// first response whose status is in cl.ok.
func (c *Client) do(ctx context.Context, cl call) (int, []byte, error) {
	method, path := cl.method, cl.path
	endpoint := c.base + path
	for attempt := 0; ; attempt++ {
		timeout := c.timeout
		if cl.create {
			var ok bool
			if timeout, ok = c.createWindow(ctx, time.Now()); !ok {
				return 0, nil, fmt.Errorf("%s %s: %w (%s kept for storing the result)", method, path, errNoTimeForCreate, c.createMargin)
			}
		}
		start := time.Now()
		o := c.attempt(ctx, timeout, method, endpoint, cl.body)
		succeeded := o.err == nil && slices.Contains(cl.ok, o.status)
		// A create Didit may have acted on, without an answer we can use.
		unconfirmed := cl.create && o.sent && !succeeded && (o.err != nil || !createRejected(o.status))
		log := c.log.With("method", method, "path", path, "attempt", attempt+1)
		if ctx.Err() != nil && !(cl.create && succeeded) {
			// The caller gave up; whatever this attempt produced is moot.
			// (A session Didit did create is still returned: the caller
			// may yet store it, or at least count it.)
			if unconfirmed {
				return 0, nil, fmt.Errorf("%s %s: %w: %w", method, path, ErrCreateUnconfirmed, context.Cause(ctx))
			}
			return 0, nil, fmt.Errorf("%s %s: %w", method, path, context.Cause(ctx))
		}
		if succeeded {
			log.DebugContext(ctx, "didit call", "status", o.status, "duration", time.Since(start))
			return o.status, o.body, nil
		}

		f := c.failure(o, unconfirmed, timeout)
		lastErr := f.err
		if !f.retryable || attempt >= c.maxRetries {
			log.WarnContext(ctx, "didit call failed", "status", o.status, "error", lastErr, "duration", time.Since(start))
			if f.retryable {
				return 0, nil, fmt.Errorf("%s %s: giving up after %d attempts: %w", method, path, attempt+1, lastErr)
			}
			return 0, nil, fmt.Errorf("%s %s: %w", method, path, lastErr)
		}

		delay := backoff(attempt)
		if f.hasRetryAfter {
			if f.retryAfter > maxRetryAfter {
				return 0, nil, fmt.Errorf("%s %s: Retry-After %s exceeds our %s limit: %w", method, path, f.retryAfter, maxRetryAfter, lastErr)
			}
			delay = max(delay, f.retryAfter)
		}
		if deadline, ok := ctx.Deadline(); ok {
			left := time.Until(deadline)
			if cl.create {
				left -= c.createMargin // the next attempt needs time of its own
			}
			if left <= delay {
				return 0, nil, fmt.Errorf("%s %s: next attempt (in %s) would pass the deadline: %w", method, path, delay, lastErr)
			}
		}
		log.WarnContext(ctx, "didit call failed, retrying", "status", o.status, "error", lastErr, "retry_in", delay)
		if err := c.sleep(ctx, delay); err != nil {
			return 0, nil, fmt.Errorf("%s %s: %w (while waiting to retry after: %v)", method, path, err, lastErr)
		}
	}
}

// failedAttempt is what a failed attempt means for the call.
type failedAttempt struct {
	err           error
	retryable     bool // certainly not acted on, or a read
	retryAfter    time.Duration
	hasRetryAfter bool
}

// failure reads a failed attempt: an unconfirmed create is final and says
// so; a refused connection, a 429 and a 5xx may be retried; anything else
// is final.
func (c *Client) failure(o outcome, unconfirmed bool, timeout time.Duration) failedAttempt {
	var f failedAttempt
	switch status := o.status; {
	case unconfirmed && o.err != nil && errors.Is(o.err, context.DeadlineExceeded):
		f.err = fmt.Errorf("%w: no answer within %s: %w", ErrCreateUnconfirmed, timeout.Round(time.Millisecond), o.err)
	case unconfirmed && o.err != nil:
		f.err = fmt.Errorf("%w: %w", ErrCreateUnconfirmed, o.err)
	case unconfirmed && status >= 500:
		f.err = fmt.Errorf("%w: %w", ErrCreateUnconfirmed, parseAPIError(status, o.body, c.apiKey))
	case unconfirmed:
		f.err = fmt.Errorf("%w: unexpected HTTP %d", ErrCreateUnconfirmed, status)
	case o.err != nil:
		f.err, f.retryable = o.err, true // refused; for a read also reset, dropped, timed out
	case status == http.StatusTooManyRequests || status >= 500:
		f.err, f.retryable = parseAPIError(status, o.body, c.apiKey), true
		f.retryAfter, f.hasRetryAfter = parseRetryAfter(o.header.Get("Retry-After"), time.Now())
	case status >= 200 && status < 300:
		f.err = fmt.Errorf("unexpected HTTP %d", status)
	default:
		apiErr := parseAPIError(status, o.body, c.apiKey)
		if status >= 300 && status < 400 {
			apiErr.Detail = "unexpected redirect to " + o.header.Get("Location")
		}
		f.err = apiErr
	}
	return f
}

// createRejected reports whether an answer to a create says Didit created
// nothing: its rate limiter's 429, a 503 (no backend took the request), a
// redirect (not followed), or any other 4xx (a refusal). A 500 may come
// after the session was stored, and a proxy's 502 or 504 after the backend
// got the request, so no other 5xx qualifies; nor does a 1xx or 2xx.
func createRejected(status int) bool {
	return status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable ||
		(status >= 300 && status < 500)
}

// createWindow is how long a create attempt started at now may wait for
// Didit: until createMargin before the caller's deadline, and at most
// createTimeout. ok is false when that leaves nothing.
func (c *Client) createWindow(ctx context.Context, now time.Time) (time.Duration, bool) {
	d := c.createTimeout
	if deadline, ok := ctx.Deadline(); ok {
		d = min(d, deadline.Sub(now)-c.createMargin)
	}
	return d, d > 0
}

// attempt makes one HTTP request under its own timeout. A transport error
// or an unreadable body comes back as err; any HTTP status as status.
func (c *Client) attempt(ctx context.Context, timeout time.Duration, method, endpoint string, body []byte) outcome {
	actx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	// Whether the request may have reached Didit. The transport calls
	// GetConn before each try (it retries on its own only a request it
	// wrote nothing of: a POST is not "replayable" to net/http, as we send
	// no Idempotency-Key), and WroteHeaders once the request's headers are
	// complete, maybe before they leave its buffer: counting that as sent
	// errs on the side of not resending. A transport that reports neither
	// leaves every failure counted as sent.
	var began, wrote atomic.Bool
	actx = httptrace.WithClientTrace(actx, &httptrace.ClientTrace{
		GetConn:      func(string) { wrote.Store(false); began.Store(true) },
		WroteHeaders: func() { wrote.Store(true) },
	})
	sent := func() bool { return !began.Load() || wrote.Load() }

	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(actx, method, endpoint, rd)
	if err != nil {
		return outcome{err: err}
	}
	req.Header.Set("x-api-key", c.apiKey)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", userAgent)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return outcome{err: err, sent: sent()}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
	if err != nil {
		return outcome{err: fmt.Errorf("reading HTTP %d response: %w", resp.StatusCode, err), sent: true}
	}
	if len(data) > maxResponseBytes {
		return outcome{err: fmt.Errorf("HTTP %d response larger than %d bytes", resp.StatusCode, maxResponseBytes), sent: true}
	}
	return outcome{status: resp.StatusCode, header: resp.Header, body: data, sent: true}
}

// backoff is the wait before retry n+1: exponential with jitter in [d/2, d],
// so concurrent clients spread out.
func backoff(n int) time.Duration {
	d := backoffMax
	if n < 10 {
		d = min(backoffBase<<n, backoffMax)
	}
	return d/2 + rand.N(d/2+1)
}

// parseRetryAfter reads Retry-After as delta-seconds or an HTTP-date.
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs < 0 {
			return 0, false
		}
		if secs > int64(24*time.Hour/time.Second) {
			secs = int64(24 * time.Hour / time.Second) // avoid overflow; far over the cap anyway
		}
		return time.Duration(secs) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if strings.TrimSpace(v) != "" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// APIError is a non-success HTTP answer from Didit.
type APIError struct {
	Status int    // HTTP status
	Code   string // Didit's machine-readable code when it sent one, e.g. "contract_billing_suspended"
	Detail string // human-readable message, or a short snippet of a non-JSON body
}

func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "didit: HTTP %d", e.Status)
	if e.Code != "" {
		fmt.Fprintf(&b, " (%s)", e.Code)
	}
	if e.Detail != "" {
		b.WriteString(": ")
		b.WriteString(e.Detail)
	}
	return b.String()
}

// Is makes a 404 match kyc.ErrNotFound, so the domain can tell a deleted
// session from a failing Didit without importing this package.
func (e *APIError) Is(target error) bool {
	return target == kyc.ErrNotFound && e.Status == http.StatusNotFound
}

// IsNotFound reports whether err is Didit's 404 (unknown or deleted session).
func IsNotFound(err error) bool {
	var e *APIError
	return errors.As(err, &e) && e.Status == http.StatusNotFound
}

// IsAuthError reports whether err is a 401 or 403: a bad, missing or
// under-privileged API key (Didit uses both codes for this, inconsistently).
func IsAuthError(err error) bool {
	var e *APIError
	return errors.As(err, &e) && (e.Status == http.StatusUnauthorized || e.Status == http.StatusForbidden)
}

const maxDetailRunes = 200

// parseAPIError reads Didit's error body, which has no single envelope:
// {"detail": ...} (DRF), {"message"|"error": ...}, an optional "code", a
// field→messages map for validation errors, or no JSON at all (5xx pages).
// The API key is scrubbed in case a proxy echoes request headers.
func parseAPIError(status int, body []byte, apiKey string) *APIError {
	e := &APIError{Status: status}
	var obj map[string]any
	var list []any
	switch trimmed := bytes.TrimSpace(body); {
	case len(trimmed) == 0:
	case json.Unmarshal(trimmed, &obj) == nil && obj != nil:
		e.Code = scalarText(obj["code"])
		for _, k := range []string{"detail", "message", "error", "error_description"} {
			if s := messageText(obj[k]); s != "" {
				e.Detail = s
				break
			}
		}
		if e.Detail == "" {
			e.Detail = fieldErrors(obj)
		}
	case json.Unmarshal(trimmed, &list) == nil:
		e.Detail = messageText(list)
	default:
		e.Detail = snippet(string(trimmed))
	}
	if e.Detail == "" {
		e.Detail = http.StatusText(status)
	}
	if apiKey != "" {
		e.Detail = strings.ReplaceAll(e.Detail, apiKey, "[redacted]")
		e.Code = strings.ReplaceAll(e.Code, apiKey, "[redacted]")
	}
	e.Detail = truncateRunes(e.Detail, maxDetailRunes)
	return e
}

// fieldErrors renders a DRF validation map, {"workflow_id": ["..."]}, as
// "workflow_id: ...", fields sorted for stable messages.
func fieldErrors(obj map[string]any) string {
	keys := make([]string, 0, len(obj))
	for k := range obj {
		if k != "code" && k != "status" && k != "status_code" {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	var parts []string
	for _, k := range keys {
		if s := messageText(obj[k]); s != "" {
			parts = append(parts, k+": "+s)
		}
	}
	return strings.Join(parts, "; ")
}

// messageText flattens a message that may be a string, a list of them, or a
// nested object such as {"message": ...}.
func messageText(v any) string {
	switch x := v.(type) {
	case string:
		return strings.TrimSpace(x)
	case []any:
		var parts []string
		for _, it := range x {
			if s := messageText(it); s != "" {
				parts = append(parts, s)
			}
		}
		return strings.Join(parts, " ")
	case map[string]any:
		for _, k := range []string{"detail", "message", "error"} {
			if s := messageText(x[k]); s != "" {
				return s
			}
		}
		return fieldErrors(x)
	}
	return ""
}

func scalarText(v any) string {
	switch x := v.(type) {
	case string:
		return strings.TrimSpace(x)
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	}
	return ""
}

// snippet turns a non-JSON body (often an HTML error page from a proxy) into
// one short line: tags dropped, whitespace collapsed.
func snippet(s string) string {
	var b strings.Builder
	inTag := false
	for _, r := range s {
		switch {
		case r == '<':
			inTag = true
			b.WriteByte(' ')
		case r == '>' && inTag:
			inTag = false
		case inTag:
		case r < 0x20 || r == 0x7f || r == utf8.RuneError:
			b.WriteByte(' ')
		default:
			b.WriteRune(r)
		}
		if b.Len() > 4*maxDetailRunes {
			break
		}
	}
	return strings.Join(strings.Fields(b.String()), " ")
}

func truncateRunes(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n]) + "…"
}
