// Package client is a Go client for kycgate's partner API: one method per
// endpoint, the envelope's status as errors (see Error), retries that are
// safe because every POST carries an Idempotency-Key, and VerifyWebhook
// for the events kycgate sends to partners.
//
//	c := client.New("https://kyc.example.com", os.Getenv("KYCGATE_API_KEY"))
//	if _, err := c.Prepare(ctx, "ada@example.com"); err != nil { … }
//	if err := c.SendOTP(ctx, client.OTPRequest{Email: "ada@example.com"}); err != nil { … }
package client

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Client calls one kycgate server with one API key. It is safe for
// concurrent use.
type Client struct {
	base        string
	apiKey      string
	hc          *http.Client
	maxAttempts int
	maxWait     time.Duration
}

// Option changes a Client made by New.
type Option func(*Client)

// WithHTTPClient sends requests through hc (default: a client with a 30 s
// timeout per attempt).
func WithHTTPClient(hc *http.Client) Option { return func(c *Client) { c.hc = hc } }

// WithRetries sets how many times a request is retried after a network
// error, a 5xx answer, a request with the same Idempotency-Key still
// running, or the per-key rate limit (default 2; 0 turns retries off).
func WithRetries(n int) Option { return func(c *Client) { c.maxAttempts = 1 + max(0, n) } }

// WithMaxRetryWait bounds the wait before one retry (default 10 s). An
// answer that asks for a longer wait (Retry-After) is returned instead.
func WithMaxRetryWait(d time.Duration) Option { return func(c *Client) { c.maxWait = d } }

// New returns a client for the server at baseURL (e.g.
// "https://kyc.example.com", or with the "/api" prefix) using apiKey.
func New(baseURL, apiKey string, opts ...Option) *Client {
	c := &Client{
		base:        strings.TrimRight(baseURL, "/"),
		apiKey:      apiKey,
		hc:          &http.Client{Timeout: 30 * time.Second},
		maxAttempts: 3,
		maxWait:     10 * time.Second,
	}
	for _, o := range opts {
		o(c)
	}
	return c
}

type idemKey struct{}

// WithIdempotencyKey makes the next call with ctx send key as its
// Idempotency-Key, instead of one the client makes up. Use it to make a
// request safe to repeat across restarts of your own program: the same key
// with the same request replays kycgate's first answer for 24 hours.
func WithIdempotencyKey(ctx context.Context, key string) context.Context {
	return context.WithValue(ctx, idemKey{}, key)
}

// envelope is every kycgate answer's body.
type envelope struct {
	StatusCode int             `json:"statusCode"`
	Success    bool            `json:"success"`
	Status     string          `json:"status"`
	Message    string          `json:"message"`
	Data       json.RawMessage `json:"data"`
	// The per-key rate limit answers in StarkFi's other shape.
	Code *int `json:"code"`
}

// reply is a success: the envelope's status and HTTP status, and whether
// kycgate replayed a stored answer.
type reply struct {
	code     int
	status   string
	replayed bool
}

// maxAnswer bounds what is read of an answer: kycgate's are small.
const maxAnswer = 1 << 20

// do sends one request, retrying where that cannot do the work twice: a
// POST carries the same Idempotency-Key on every attempt. out, if not nil,
// receives the envelope's data.
func (c *Client) do(ctx context.Context, method, path string, in, out any) (reply, error) {
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return reply{}, fmt.Errorf("kycgate: encode request: %w", err)
		}
	}
	key, _ := ctx.Value(idemKey{}).(string)
	if method == http.MethodPost && key == "" {
		key = crand.Text()
	}
	var last error
	for attempt := 0; attempt < c.maxAttempts; attempt++ {
		if attempt > 0 {
			wait := backoff(attempt, last)
			if wait > c.maxWait {
				return reply{}, last
			}
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return reply{}, fmt.Errorf("kycgate: %w (last answer: %w)", ctx.Err(), last)
			case <-t.C:
			}
		}
		r, err := c.once(ctx, method, path, key, body, out)
		if err == nil || !retryable(err) || ctx.Err() != nil {
			return r, err
		}
		last = err
	}
	return reply{}, last
}

// once sends one attempt.
func (c *Client) once(ctx context.Context, method, path, key string, body []byte, out any) (reply, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return reply{}, fmt.Errorf("kycgate: %w", err)
	}
	req.Header.Set("x-api-key", c.apiKey)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return reply{}, &netError{err}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return reply{}, &netError{err}
	}
	var env envelope
	if err := json.Unmarshal(raw, &env); err != nil {
		if resp.StatusCode >= 500 {
			// A proxy's own error page: the request may not have reached kycgate.
			return reply{}, &Error{HTTPStatus: resp.StatusCode, Status: "server_error", Message: http.StatusText(resp.StatusCode)}
		}
		return reply{}, fmt.Errorf("kycgate: %d answer is not JSON: %w", resp.StatusCode, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		e := &Error{HTTPStatus: resp.StatusCode, Status: env.Status, Message: env.Message, RetryAfter: retryAfter(resp.Header)}
		if env.Code != nil && e.Status == "" {
			e.Status = "rate_limited"
		}
		return reply{}, e
	}
	if out != nil && len(env.Data) > 0 && string(env.Data) != "null" {
		if err := json.Unmarshal(env.Data, out); err != nil {
			return reply{}, fmt.Errorf("kycgate: decode %s data: %w", env.Status, err)
		}
	}
	return reply{code: resp.StatusCode, status: env.Status, replayed: resp.Header.Get("Idempotent-Replayed") == "true"}, nil
}

// netError is a request that got no answer: it may or may not have
// reached the server.
type netError struct{ err error }

func (e *netError) Error() string { return "kycgate: " + e.err.Error() }
func (e *netError) Unwrap() error { return e.err }

// retryable says whether another attempt may help and cannot do the work
// twice (the Idempotency-Key sees to the second).
func retryable(err error) bool {
	var ne *netError
	if errors.As(err, &ne) {
		return true
	}
	var e *Error
	if !errors.As(err, &e) {
		return false
	}
	switch {
	case e.HTTPStatus >= 500:
		return true
	case e.Status == "idempotency_key_in_use", e.Status == "rate_limited":
		return true
	}
	return false
}

// backoff is the wait before attempt n (1, 2, …): the server's Retry-After
// when it named one, else 250 ms doubling, with jitter so that clients
// failed together do not come back together.
func backoff(n int, last error) time.Duration {
	var e *Error
	if errors.As(last, &e) && e.RetryAfter > 0 {
		return e.RetryAfter
	}
	d := 250 * time.Millisecond << (n - 1)
	return d/2 + rand.N(d/2+1)
}

func retryAfter(h http.Header) time.Duration {
	s, err := strconv.Atoi(h.Get("Retry-After"))
	if err != nil || s < 0 {
		return 0
	}
	return time.Duration(s) * time.Second
}

func query(kv ...string) string {
	q := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] != "" {
			q.Set(kv[i], kv[i+1])
		}
	}
	if len(q) == 0 {
		return ""
	}
	return "?" + q.Encode()
}
