package httpapi

import (
	"net/http"
	"time"
)

// Recorder is told of every answered request and of every Didit webhook's
// fate, for metrics (internal/metrics implements it). It is called on
// every request: it must be cheap and must not block.
type Recorder interface {
	// ObserveRequest: route is the matched pattern or "unmatched", never
	// the raw path; method is bounded by methodLabel.
	ObserveRequest(route, method string, code int, took time.Duration)
	Webhook(result string)
}

type nopRecorder struct{}

func (nopRecorder) ObserveRequest(string, string, int, time.Duration) {}
func (nopRecorder) Webhook(string)                                    {}

// methodLabel bounds the method label: Go's server accepts any token of up
// to ~1 MiB as a method, so a raw label would let unauthenticated clients
// grow the series (and the log's values) without limit.
func methodLabel(method string) string {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut,
		http.MethodPatch, http.MethodDelete, http.MethodOptions:
		return method
	}
	return "OTHER"
}
