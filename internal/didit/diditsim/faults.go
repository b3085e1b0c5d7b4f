package diditsim

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Fault kinds.
const (
	// FaultError answers a 5xx with an HTML body, as a load balancer in front
	// of Didit would: clients must not assume JSON on 5xx (docs/didit.md §8).
	FaultError = "error"
	// FaultLatency delays the request, then serves it normally.
	FaultLatency = "latency"
	// FaultDrop reads the request, then closes the connection without any
	// response and without acting on it.
	FaultDrop = "drop"
	// FaultDropAfter serves the request (a create creates its session),
	// then closes the connection instead of sending the answer: the client
	// cannot tell it from FaultDrop, yet Didit now holds the session.
	FaultDropAfter = "drop_after"
	// FaultThrottle answers 429 as the rate limiter would.
	FaultThrottle = "throttle"
)

// Fault is an injected failure for the next Count matching requests. Faults
// apply to every route except /_sim/.
type Fault struct {
	Kind       string        `json:"kind"`
	PathPrefix string        `json:"path_prefix,omitempty"` // e.g. "/v3/session/"; "" matches all
	Method     string        `json:"method,omitempty"`      // "" matches all
	Count      int           `json:"count"`                 // 0 means 1; negative means until cleared
	Status     int           `json:"status,omitempty"`      // FaultError: default 502
	Latency    time.Duration `json:"-"`                     // FaultLatency
	RetryAfter int           `json:"retry_after,omitempty"` // FaultThrottle: seconds, default 1
}

func (f Fault) validate() error {
	switch f.Kind {
	case FaultError:
		if f.Status != 0 && (f.Status < 500 || f.Status > 599) {
			return fmt.Errorf("%w: fault status %d is not 5xx", ErrInvalidInput, f.Status)
		}
	case FaultLatency:
		if f.Latency <= 0 {
			return fmt.Errorf("%w: latency fault needs a positive latency", ErrInvalidInput)
		}
	case FaultDrop, FaultDropAfter, FaultThrottle:
	default:
		return fmt.Errorf("%w: unknown fault kind %q", ErrInvalidInput, f.Kind)
	}
	return nil
}

type faultSet struct {
	mu     sync.Mutex
	faults []*Fault
	calls  map[string]int // "METHOD /path" → requests that arrived
}

// count records that a request arrived, faulted or not.
func (fs *faultSet) count(r *http.Request) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.calls == nil {
		fs.calls = make(map[string]int)
	}
	fs.calls[r.Method+" "+r.URL.Path]++
}

// Calls is how many requests for method and path (exactly, e.g. "POST",
// "/v3/session/") reached the simulator, whatever became of them: served,
// throttled, rejected, or lost to an injected fault. Control endpoints are
// not counted. Tests use it to see how often a client sent a create.
func (s *Sim) Calls(method, path string) int {
	s.faults.mu.Lock()
	defer s.faults.mu.Unlock()
	return s.faults.calls[strings.ToUpper(method)+" "+path]
}

// take returns the first fault matching r, consuming one of its uses.
func (fs *faultSet) take(r *http.Request) (Fault, bool) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	for i, f := range fs.faults {
		if f.PathPrefix != "" && !strings.HasPrefix(r.URL.Path, f.PathPrefix) {
			continue
		}
		if f.Method != "" && !strings.EqualFold(f.Method, r.Method) {
			continue
		}
		got := *f
		if f.Count > 0 {
			f.Count--
			if f.Count == 0 {
				fs.faults = append(fs.faults[:i], fs.faults[i+1:]...)
			}
		}
		return got, true
	}
	return Fault{}, false
}

// SetFaults replaces the injected faults.
func (s *Sim) SetFaults(faults ...Fault) error {
	list := make([]*Fault, 0, len(faults))
	for _, f := range faults {
		if err := f.validate(); err != nil {
			return err
		}
		if f.Count == 0 {
			f.Count = 1
		}
		list = append(list, &f)
	}
	s.faults.mu.Lock()
	s.faults.faults = list
	s.faults.mu.Unlock()
	return nil
}

// AddFault appends one injected fault.
func (s *Sim) AddFault(f Fault) error {
	if err := f.validate(); err != nil {
		return err
	}
	if f.Count == 0 {
		f.Count = 1
	}
	s.faults.mu.Lock()
	s.faults.faults = append(s.faults.faults, &f)
	s.faults.mu.Unlock()
	return nil
}

// Faults lists the faults still pending.
func (s *Sim) Faults() []Fault {
	s.faults.mu.Lock()
	defer s.faults.mu.Unlock()
	out := make([]Fault, len(s.faults.faults))
	for i, f := range s.faults.faults {
		out[i] = *f
	}
	return out
}

// ClearFaults removes every injected fault.
func (s *Sim) ClearFaults() { _ = s.SetFaults() }

// withFaults injects the configured faults in front of next.
func (s *Sim) withFaults(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/_sim/") {
			next.ServeHTTP(w, r)
			return
		}
		s.faults.count(r)
		f, ok := s.faults.take(r)
		if !ok {
			next.ServeHTTP(w, r)
			return
		}
		s.logger.Info("diditsim: injecting fault", "kind", f.Kind, "method", r.Method, "path", r.URL.Path)
		switch f.Kind {
		case FaultError:
			status := f.Status
			if status == 0 {
				status = http.StatusBadGateway
			}
			text := fmt.Sprintf("%d %s", status, http.StatusText(status))
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(status)
			fmt.Fprintf(w, "<html>\r\n<head><title>%s</title></head>\r\n<body>\r\n<center><h1>%s</h1></center>\r\n</body>\r\n</html>\r\n", text, text)
		case FaultLatency:
			// Read the body now, as Didit has it before it is slow: the
			// server only notices a client that hangs up once the body
			// has been read, and the handler must end with the client.
			body, err := io.ReadAll(io.LimitReader(r.Body, maxBodyBytes+1))
			if err != nil {
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
			t := time.NewTimer(f.Latency)
			defer t.Stop()
			select {
			case <-t.C:
				next.ServeHTTP(w, r)
			case <-r.Context().Done():
				// The client gave up (its timeout); nothing to answer.
			}
		case FaultDrop:
			// The whole request is read first: it reached "Didit".
			_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, maxBodyBytes))
			dropConnection(w)
		case FaultDropAfter:
			next.ServeHTTP(discardWriter{h: http.Header{}}, r)
			dropConnection(w)
		case FaultThrottle:
			wait := f.RetryAfter
			if wait <= 0 {
				wait = 1
			}
			limit := s.RateLimits().Get
			writeThrottled(w, limit, wait, s.Now().Add(time.Duration(wait)*time.Second))
		}
	})
}

// discardWriter takes a handler's answer and throws it away.
type discardWriter struct{ h http.Header }

func (d discardWriter) Header() http.Header       { return d.h }
func (discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (discardWriter) WriteHeader(int)             {}

// dropConnection closes the connection with no response at all, so the
// client sees an EOF / connection reset rather than an HTTP status.
func dropConnection(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		// Not hijackable (HTTP/2): abort the stream instead.
		panic(http.ErrAbortHandler)
	}
	conn.Close()
}
