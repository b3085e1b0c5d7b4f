package httpapi

import (
	"context"
	"errors"
	"net/http"
	"path"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/kycgate/kycgate/internal/envelope"
	"github.com/kycgate/kycgate/internal/kyc"
)

type ctxKey int

const keyInfo ctxKey = iota

// reqInfo is the one context value of a request: its id, and facts learnt
// deep in the handler chain (the caller's tenant, the matched route) that
// the handlers and the access log read. One value and one context per
// request, instead of a context and a request copy per fact.
type reqInfo struct {
	id     string
	route  string
	tenant kyc.Tenant // set once authed resolved the API key
}

func infoOf(ctx context.Context) *reqInfo {
	info, _ := ctx.Value(keyInfo).(*reqInfo)
	if info == nil {
		return &reqInfo{}
	}
	return info
}

func requestID(ctx context.Context) string { return infoOf(ctx).id }

func tenantOf(ctx context.Context) kyc.Tenant { return infoOf(ctx).tenant }

// statusWriter remembers what was written, for the access log.
type statusWriter struct {
	http.ResponseWriter
	code  int
	bytes int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += n
	return n, err
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// common wraps every request: id, timeout, panic recovery and the access
// log. The log holds the matched route pattern, or for an unmatched path a
// masked one (logPath), never a query, body, key or code.
func (s *Server) common(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := envelope.RequestID(w, r)
		info := &reqInfo{id: id}
		ctx, cancel := context.WithTimeout(context.WithValue(r.Context(), keyInfo, info), s.timeout)
		defer cancel()
		r = r.WithContext(ctx)
		sw := &statusWriter{ResponseWriter: w}
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				s.log.ErrorContext(ctx, "panic", "request_id", id, "panic", p, "stack", string(debug.Stack()))
				if sw.code == 0 {
					respond(sw, http.StatusInternalServerError, kyc.CodeServerError, "Server failed, try again later", nil)
				}
			}
			route, path := info.route, info.route
			if route == "" {
				route, path = "unmatched", logPath(r.URL.Path)
			}
			took := time.Since(start)
			method := methodLabel(r.Method)
			s.metrics.ObserveRequest(route, method, sw.code, took)
			s.accessLog(ctx, levelFor(sw.code),
				slogStr("request_id", id), slogStr("method", method), slogStr("path", path),
				slogInt("status", sw.code), slogInt("bytes", sw.bytes),
				slogDur("duration_ms", took), slogStr("tenant", info.tenant.ID))
		}()
		if !cleanPath(r.URL.Path) {
			// ServeMux would answer a bare redirect to the cleaned path;
			// the API answers every unknown route with the envelope.
			s.notFound(sw, r)
			return
		}
		next.ServeHTTP(sw, r)
	})
}

// cleanPath reports whether p is already in the form ServeMux routes
// without redirecting: absolute, no empty, "." or ".." segment (a trailing
// slash is allowed: subtree mounts use it).
func cleanPath(p string) bool {
	if p == "" || p[0] != '/' {
		return false
	}
	c := path.Clean(p)
	if strings.HasSuffix(p, "/") && c != "/" {
		c += "/"
	}
	return c == p
}

// logPath is what the access log shows of a path no route matched: clients
// put anything there, an email or a key included, so only segments that
// are plainly words stay; any other becomes "*".
func logPath(p string) string {
	if len(p) > 256 {
		p = p[:256]
	}
	segs := strings.Split(p, "/")
	for i, seg := range segs {
		if !plainWord(seg) {
			segs[i] = "*"
		}
	}
	return strings.Join(segs, "/")
}

// plainWord: at most 32 letters, '_', '-' or '.'. Codes and keys hold
// digits, emails an '@'; a 32-letter run of random characters without a
// digit is too unlikely to matter.
func plainWord(s string) bool {
	if len(s) > 32 {
		return false
	}
	for _, c := range []byte(s) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// authed resolves x-api-key to a tenant and applies its rate limit.
func (s *Server) authed(next handler, fail fail500) http.Handler {
	return s.gated(next, fail, false)
}

// kyc is authed plus the product gate.
func (s *Server) kyc(next handler, fail fail500) http.Handler {
	return s.gated(next, fail, true)
}

// handler is an endpoint that answers success itself and returns its
// failure: a *kyc.Error is written as it is, anything else as the route's
// documented 500 (fail), in one place.
type handler func(http.ResponseWriter, *http.Request) error

func (s *Server) gated(next handler, fail fail500, product bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t, keyHash, err := s.svc.Authenticate(r.Context(), r.Header.Get("x-api-key"))
		if t.ID == "" {
			s.refuse(w, r, err, fail)
			return
		}
		// Only the key's tenant may use or see its idempotency keys, so
		// they come after authentication; they come before the rate
		// limit, so a replay costs the partner no request of its limit.
		if keys := r.Header.Values("Idempotency-Key"); len(keys) > 0 && r.Method == http.MethodPost {
			s.idempotent(w, r, t, keys, fail, func(w http.ResponseWriter, r *http.Request) bool {
				return s.admitAndServe(w, r, t, keyHash, next, fail, product)
			})
			return
		}
		s.admitAndServe(w, r, t, keyHash, next, fail, product)
	})
}

// admitAndServe runs next if admit lets the request on; it reports whether
// next ran (the answer is the endpoint's, not the gate's).
func (s *Server) admitAndServe(w http.ResponseWriter, r *http.Request, t kyc.Tenant, keyHash string, next handler, fail fail500, product bool) bool {
	if !s.admit(w, r, t, keyHash, product) {
		return false
	}
	if r.Method != http.MethodGet {
		// What may change state is audited under the key's id; reads do
		// without the context value and the request copy.
		r = r.WithContext(kyc.WithActorRequest(r.Context(),
			kyc.Actor{Kind: kyc.ActorAPIKey, ID: t.KeyID}, requestID(r.Context())))
	}
	if err := next(w, r); err != nil {
		s.fail(w, r, err, fail.code, fail.message)
	}
	return true
}

// refuse answers a request whose key lookup found no tenant: the
// invalid-key 403, or the lookup's 500.
func (s *Server) refuse(w http.ResponseWriter, r *http.Request, err error, fail fail500) {
	if errors.Is(err, kyc.ErrNotFound) {
		respond(w, http.StatusForbidden, codeInvalidAPIKey, "Invalid or missing API key", nil)
	} else {
		s.fail(w, r, err, fail.code, fail.message)
	}
}

// admit answers for an authenticated request: the rate limit's 429 and,
// with product, the product gate's 403, in that order. It reports whether
// the request may go on.
func (s *Server) admit(w http.ResponseWriter, r *http.Request, t kyc.Tenant, keyHash string, product bool) bool {
	if !s.allow(w, r, t, keyHash) {
		return false
	}
	infoOf(r.Context()).tenant = t
	if product && !t.KYCEnabled {
		respond(w, http.StatusForbidden, codeProductNotEnabled, "The kyc product is not enabled for this API key", nil)
		return false
	}
	return true
}

// allow applies the per-key limits (docs/api.md §1): N per minute and ⌈N/60⌉ per
// second in fixed windows. Over the limit the body is StarkFi's documented
// shape, not the envelope.
func (s *Server) allow(w http.ResponseWriter, r *http.Request, t kyc.Tenant, bucket string) bool {
	perMin := t.RateLimitPerMinute
	if perMin == 0 {
		return true
	}
	perSec := (perMin + 59) / 60
	now := s.now()
	minStart, secStart := now.Truncate(time.Minute), now.Truncate(time.Second)
	minHits, secHits, err := s.counter.HitRate(r.Context(), bucket, minStart, secStart)
	if err != nil {
		// A limiter we cannot reach must not turn into an outage: let the
		// request through and say so loudly.
		s.log.ErrorContext(r.Context(), "rate limiter unavailable", "err", err)
		return true
	}
	h := w.Header()
	resetMin := int(minStart.Add(time.Minute).Sub(now).Seconds() + 0.999)
	h.Set("RateLimit-Limit", strconv.Itoa(perMin))
	h.Set("RateLimit-Remaining", strconv.Itoa(max(0, perMin-minHits)))
	h.Set("RateLimit-Reset", strconv.Itoa(max(1, resetMin)))
	if minHits <= perMin && secHits <= perSec {
		return true
	}
	retry := 1
	if minHits > perMin {
		retry = max(1, resetMin)
	}
	h.Set("Retry-After", strconv.Itoa(retry))
	writeJSON(w, http.StatusTooManyRequests, map[string]any{
		"code": 429, "message": fmtLimit(perMin), "docs": "https://docs.starkfi.io/",
	})
	return false
}
