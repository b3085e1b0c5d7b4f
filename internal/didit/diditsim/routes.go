package diditsim

import (
	"net/http"
	"strings"
)

// Handler serves the simulated API, the hosted session page and the /_sim/
// control endpoints, all relative to BaseURL's path (mount it with
// http.StripPrefix when BaseURL has a path).
func (s *Sim) Handler() http.Handler {
	mux := http.NewServeMux()
	s.routes(mux)
	return s.withFaults(mux)
}

func (s *Sim) routes(mux *http.ServeMux) {
	get := []string{ScopeGet}
	write := []string{ScopeWrite}
	create := []string{ScopeCreate, ScopeWrite}

	// Didit's v3 API (docs/didit.md §2–§5). v2 create and decision share the
	// handlers; only the decision shape differs.
	api := []struct {
		method, path string
		scopes       []string
		h            apiFunc
	}{
		{"POST", "/v3/session/{$}", create, s.handleCreate},
		{"POST", "/v2/session/{$}", create, s.handleCreate},
		{"GET", "/v3/session/{id}/decision/{$}", get, s.handleDecision("v3")},
		{"GET", "/v2/session/{id}/decision/{$}", get, s.handleDecision("v2")},
		{"PATCH", "/v3/session/{id}/update-status/{$}", write, s.handleUpdateStatus},
		{"DELETE", "/v3/session/{id}/delete/{$}", write, s.handleDelete},
		{"GET", "/v3/sessions/{$}", get, s.handleList},
		{"POST", "/v3/sessions/delete/{$}", write, s.handleBatchDelete},
	}
	for _, a := range api {
		mux.Handle(a.method+" "+a.path, s.api(a.scopes, a.h))
		// Any other method on a known path: DRF's 405, after auth as DRF
		// does it.
		mux.Handle(a.path, s.api(nil, methodNotAllowed(a.method)))
		// Like Django's APPEND_SLASH: the path minus its trailing slash
		// answers 301 to the slashed URL, whatever the method. Registering
		// it also stops ServeMux from issuing its own (prefix-unaware)
		// redirect.
		mux.HandleFunc(strings.TrimSuffix(a.path, "/{$}"), s.appendSlash)
	}

	// Hosted verification page (verify.didit.me), with or without a
	// language prefix.
	mux.HandleFunc("GET /session/{token}", s.handleHostedGet)
	mux.HandleFunc("POST /session/{token}", s.handleHostedPost)
	mux.HandleFunc("GET /{lang}/session/{token}", s.handleHostedGet)
	mux.HandleFunc("POST /{lang}/session/{token}", s.handleHostedPost)

	// Test-only control endpoints: no auth, JSON in and out.
	mux.HandleFunc("GET /_sim/{$}", s.handleSimIndex)
	mux.HandleFunc("GET /_sim/presets", s.handleSimPresets)
	mux.HandleFunc("GET /_sim/sessions", s.handleSimSessions)
	mux.HandleFunc("GET /_sim/sessions/{id}", s.handleSimSession)
	mux.HandleFunc("POST /_sim/sessions/{id}/{action}", s.handleSimAction)
	mux.HandleFunc("GET /_sim/events", s.handleSimEvents)
	mux.HandleFunc("GET /_sim/webhooks", s.handleSimWebhooks)
	mux.HandleFunc("POST /_sim/webhooks/{id}/resend", s.handleSimResend)
	mux.HandleFunc("POST /_sim/webhooks/tamper", s.handleSimTamper)
	mux.HandleFunc("POST /_sim/webhooks/hold", s.handleSimHold)
	mux.HandleFunc("POST /_sim/webhooks/release", s.handleSimRelease)
	mux.HandleFunc("POST /_sim/webhooks/reorder", s.handleSimReorder)
	mux.HandleFunc("GET /_sim/clock", s.handleSimClock)
	mux.HandleFunc("POST /_sim/clock", s.handleSimClock)
	mux.HandleFunc("GET /_sim/faults", s.handleSimFaults)
	mux.HandleFunc("POST /_sim/faults", s.handleSimFaults)
	mux.HandleFunc("DELETE /_sim/faults", s.handleSimFaults)
	mux.HandleFunc("GET /_sim/ratelimit", s.handleSimRateLimit)
	mux.HandleFunc("POST /_sim/ratelimit", s.handleSimRateLimit)
	mux.HandleFunc("GET /_sim/media/{session}/{file}", s.handleMedia)

	// Everything else: DRF's 404.
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) { notFound(w) })
}

// appendSlash redirects to the same URL with a trailing slash, under
// BaseURL so a mount prefix is kept.
func (s *Sim) appendSlash(w http.ResponseWriter, r *http.Request) {
	loc := s.base() + r.URL.EscapedPath() + "/"
	if r.URL.RawQuery != "" {
		loc += "?" + r.URL.RawQuery
	}
	http.Redirect(w, r, loc, http.StatusMovedPermanently)
}

func methodNotAllowed(allow string) apiFunc {
	return func(w http.ResponseWriter, r *http.Request, _ string) {
		w.Header().Set("Allow", allow+", OPTIONS")
		writeJSON(w, http.StatusMethodNotAllowed, detail(`Method "`+r.Method+`" not allowed.`))
	}
}
