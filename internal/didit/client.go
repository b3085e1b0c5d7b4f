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
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/kycgate/kycgate/internal/kyc"
)

// DefaultBaseURL is Didit's verification API.
const DefaultBaseURL = "https://verification.didit.me"

const (
	defaultTimeout    = 10 * time.Second
	defaultMaxRetries = 3
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
	Timeout    time.Duration // per attempt; default 10 s
	MaxRetries int           // retries after the first attempt; 0 means 3, negative means none
	Logger     *slog.Logger  // default: discard
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
	}
	if c.timeout <= 0 {
		c.timeout = defaultTimeout
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
		c.sleep = sleepCtx
	}
	return c, nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

type createSessionBody struct {
	WorkflowID string            `json:"workflow_id"`
	VendorData string            `json:"vendor_data,omitempty"`
	Callback   string            `json:"callback,omitempty"` // absent: Didit uses the workflow's default
	Metadata   map[string]string `json:"metadata,omitempty"`
}

type createSessionResponse struct {
	SessionID       string `json:"session_id"`
	URL             string `json:"url"`
	VerificationURL string `json:"verification_url"`
	SessionURL      string `json:"session_url"`
	Status          string `json:"status"`
}

// CreateSession creates a verification session: POST /v3/session/.
//
// Retrying a create that may have reached Didit (a 5xx, a dropped
// connection, a timeout) is considered safe: Didit answers a create for the
// same vendor_data with the existing unfinished session instead of a new one
// (per Didit's OpenAPI description; not confirmed in the prose docs). At
// worst an extra session stays "Not Started" and expires unused.
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
	status, resp, err := c.do(ctx, http.MethodPost, "/v3/session/", body, http.StatusCreated, http.StatusOK)
	if err != nil {
		return kyc.ProviderSession{}, fmt.Errorf("didit: create session: %w", err)
	}
	var r createSessionResponse
	if err := json.Unmarshal(resp, &r); err != nil {
		return kyc.ProviderSession{}, fmt.Errorf("didit: create session: HTTP %d with unreadable body: %w", status, err)
	}
	link := firstNonEmpty(r.URL, r.VerificationURL, r.SessionURL)
	if r.SessionID == "" || link == "" {
		return kyc.ProviderSession{}, fmt.Errorf("didit: create session: HTTP %d without session_id or url", status)
	}
	if r.Status == "" {
		r.Status = kyc.StatusNotStarted // a fresh session; Didit always says so itself
	}
	return kyc.ProviderSession{ID: r.SessionID, URL: link, Status: r.Status}, nil
}

// GetDecision reads a session's decision: GET /v3/session/{id}/decision/.
// A 404 (unknown or deleted session) is an *APIError; see IsNotFound.
func (c *Client) GetDecision(ctx context.Context, sessionID string) (kyc.Decision, error) {
	if strings.TrimSpace(sessionID) == "" {
		return kyc.Decision{}, errors.New("didit: get decision: empty session id")
	}
	_, resp, err := c.do(ctx, http.MethodGet, "/v3/session/"+url.PathEscape(sessionID)+"/decision/", nil, http.StatusOK)
	if err != nil {
		return kyc.Decision{}, fmt.Errorf("didit: get decision %s: %w", sessionID, err)
	}
	d, err := SummarizeDecision(resp)
	if err != nil {
		return kyc.Decision{}, fmt.Errorf("didit: get decision %s: %w", sessionID, err)
	}
	return d, nil
}

// do runs one API call with retries and returns the status and body of the
// first response whose status is in ok.
func (c *Client) do(ctx context.Context, method, path string, body []byte, ok ...int) (int, []byte, error) {
	endpoint := c.base + path
	for attempt := 0; ; attempt++ {
		start := time.Now()
		status, header, resp, err := c.attempt(ctx, method, endpoint, body)
		if ctx.Err() != nil {
			// The caller gave up; whatever this attempt produced is moot.
			return 0, nil, fmt.Errorf("%s %s: %w", method, path, context.Cause(ctx))
		}
		log := c.log.With("method", method, "path", path, "attempt", attempt+1)
		if err == nil && slices.Contains(ok, status) {
			log.DebugContext(ctx, "didit call", "status", status, "duration", time.Since(start))
			return status, resp, nil
		}

		var (
			lastErr    error
			retryable  bool
			retryAfter time.Duration
			hasRA      bool
		)
		switch {
		case err != nil:
			lastErr, retryable = err, true // refused, reset, dropped, timed out
		case status == http.StatusTooManyRequests || status >= 500:
			lastErr, retryable = parseAPIError(status, resp, c.apiKey), true
			retryAfter, hasRA = parseRetryAfter(header.Get("Retry-After"), time.Now())
		case status >= 200 && status < 300:
			lastErr = fmt.Errorf("unexpected HTTP %d", status)
		default:
			apiErr := parseAPIError(status, resp, c.apiKey)
			if status >= 300 && status < 400 {
				apiErr.Detail = "unexpected redirect to " + header.Get("Location")
			}
			lastErr = apiErr
		}
		if !retryable || attempt >= c.maxRetries {
			log.WarnContext(ctx, "didit call failed", "status", status, "error", lastErr, "duration", time.Since(start))
			if retryable {
				return 0, nil, fmt.Errorf("%s %s: giving up after %d attempts: %w", method, path, attempt+1, lastErr)
			}
			return 0, nil, fmt.Errorf("%s %s: %w", method, path, lastErr)
		}

		delay := backoff(attempt)
		if hasRA {
			if retryAfter > maxRetryAfter {
				return 0, nil, fmt.Errorf("%s %s: Retry-After %s exceeds our %s limit: %w", method, path, retryAfter, maxRetryAfter, lastErr)
			}
			delay = max(delay, retryAfter)
		}
		if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < delay {
			return 0, nil, fmt.Errorf("%s %s: next attempt (in %s) would pass the deadline: %w", method, path, delay, lastErr)
		}
		log.WarnContext(ctx, "didit call failed, retrying", "status", status, "error", lastErr, "retry_in", delay)
		if err := c.sleep(ctx, delay); err != nil {
			return 0, nil, fmt.Errorf("%s %s: %w (while waiting to retry after: %v)", method, path, err, lastErr)
		}
	}
}

// attempt makes one HTTP request under its own timeout. A transport error
// or an unreadable body comes back as err; any HTTP status as status.
func (c *Client) attempt(ctx context.Context, method, endpoint string, body []byte) (int, http.Header, []byte, error) {
	actx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(actx, method, endpoint, rd)
	if err != nil {
		return 0, nil, nil, err
	}
	req.Header.Set("x-api-key", c.apiKey)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", userAgent)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
	if err != nil {
		return 0, nil, nil, fmt.Errorf("reading HTTP %d response: %w", resp.StatusCode, err)
	}
	if len(data) > maxResponseBytes {
		return 0, nil, nil, fmt.Errorf("HTTP %d response larger than %d bytes", resp.StatusCode, maxResponseBytes)
	}
	return resp.StatusCode, resp.Header, data, nil
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
