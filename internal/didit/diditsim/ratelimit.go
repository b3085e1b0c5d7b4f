package diditsim

import (
	"fmt"
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Rate-limit scopes (docs/didit.md §7). Each is a 60 s sliding window per API key.
const (
	ScopeCreate = "create" // session-v2-create: POST /v2|v3/session/
	ScopeGet    = "get"    // generic-get: every GET
	ScopeWrite  = "write"  // generic-write: POST, PATCH, DELETE
)

const rateWindow = 60 * time.Second

// RateLimits are requests per 60 s window per key. Zero means unlimited.
type RateLimits struct {
	Create int `json:"create"`
	Get    int `json:"get"`
	Write  int `json:"write"`
}

// DefaultRateLimits are Didit's documented numbers.
var DefaultRateLimits = RateLimits{Create: 600, Get: 600, Write: 300}

type limiter struct {
	mu     sync.Mutex
	limits RateLimits
	hits   map[string][]time.Time // key + "\x00" + scope → request times, oldest first
}

func newLimiter() *limiter {
	return &limiter{limits: DefaultRateLimits, hits: make(map[string][]time.Time)}
}

func (l *limiter) limit(scope string) int {
	switch scope {
	case ScopeCreate:
		return l.limits.Create
	case ScopeGet:
		return l.limits.Get
	default:
		return l.limits.Write
	}
}

// throttle says whether the request may proceed. When every scope has room
// the request is counted in all of them; otherwise, like DRF, the refused
// request is not counted and the first exhausted scope is reported.
type throttle struct {
	ok    bool
	limit int
	reset time.Time
	waitS int
	scope string
}

func (l *limiter) allow(key string, scopes []string, now time.Time) throttle {
	l.mu.Lock()
	defer l.mu.Unlock()
	cutoff := now.Add(-rateWindow)
	for _, sc := range scopes {
		lim := l.limit(sc)
		if lim <= 0 {
			continue
		}
		k := key + "\x00" + sc
		hs := l.hits[k]
		i := 0
		for i < len(hs) && !hs[i].After(cutoff) {
			i++
		}
		hs = hs[i:]
		l.hits[k] = hs
		if len(hs) >= lim {
			// The window frees a slot when its len(hs)-lim+1'th oldest hit
			// ages out; with an unchanged limit that is the oldest one.
			reset := hs[len(hs)-lim].Add(rateWindow)
			wait := int(math.Ceil(reset.Sub(now).Seconds()))
			if wait < 1 {
				wait = 1
			}
			return throttle{ok: false, limit: lim, reset: reset, waitS: wait, scope: sc}
		}
	}
	for _, sc := range scopes {
		if l.limit(sc) > 0 {
			k := key + "\x00" + sc
			l.hits[k] = append(l.hits[k], now)
		}
	}
	return throttle{ok: true}
}

// SetRateLimits replaces the per-scope limits (zero = unlimited). Counters
// are kept; call ResetRateLimits to clear them.
func (s *Sim) SetRateLimits(r RateLimits) {
	s.limiter.mu.Lock()
	s.limiter.limits = r
	s.limiter.mu.Unlock()
}

// RateLimits returns the current limits.
func (s *Sim) RateLimits() RateLimits {
	s.limiter.mu.Lock()
	defer s.limiter.mu.Unlock()
	return s.limiter.limits
}

// ResetRateLimits forgets every counted request.
func (s *Sim) ResetRateLimits() {
	s.limiter.mu.Lock()
	clear(s.limiter.hits)
	s.limiter.mu.Unlock()
}

// writeThrottled answers 429 the way DRF's throttling does, plus the
// X-RateLimit-* headers Didit documents for 429s only.
func writeThrottled(w http.ResponseWriter, limit, waitS int, reset time.Time) {
	h := w.Header()
	h.Set("Retry-After", strconv.Itoa(waitS))
	h.Set("X-RateLimit-Limit", strconv.Itoa(limit))
	h.Set("X-RateLimit-Remaining", "0")
	h.Set("X-RateLimit-Reset", strconv.FormatInt(reset.Unix(), 10))
	unit := "seconds"
	if waitS == 1 {
		unit = "second"
	}
	writeJSON(w, http.StatusTooManyRequests, detail(fmt.Sprintf("Request was throttled. Expected available in %d %s.", waitS, unit)))
}
