// Package admin is the operator's listener: a handler that routes mount on
// (/metrics now, the admin API later), kept off the partner listener and
// behind one bearer token.
package admin

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
)

// Server authenticates every request, then routes it.
type Server struct {
	mux   *http.ServeMux
	token *[sha256.Size]byte // nil: no token configured, every request passes
}

// New returns a Server requiring "Authorization: Bearer token" on every
// request, or none when token is "" (the caller allows that on loopback
// only).
func New(token string) *Server {
	s := &Server{mux: http.NewServeMux()}
	if token != "" {
		h := sha256.Sum256([]byte(token))
		s.token = &h
	}
	return s
}

// Handle mounts h at pattern (http.ServeMux syntax, e.g. "GET /metrics").
func (s *Server) Handle(pattern string, h http.Handler) { s.mux.Handle(pattern, h) }

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !s.authorized(r) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="kycgate-admin"`)
		respond(w, http.StatusUnauthorized, "unauthorized", "Missing or invalid admin token")
		return
	}
	h, pattern := s.mux.Handler(r)
	if pattern == "" {
		// ServeMux's own 404 and 405 are plain text; the admin API
		// answers in the envelope like the partner API.
		respond(w, http.StatusNotFound, "not_found", "Route not found")
		return
	}
	h.ServeHTTP(w, r)
}

// authorized compares hashes of the token and the presented one, so the
// comparison is constant-time and its length leaks nothing either.
func (s *Server) authorized(r *http.Request) bool {
	if s.token == nil {
		return true
	}
	scheme, got, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	h := sha256.Sum256([]byte(strings.TrimSpace(got)))
	return subtle.ConstantTimeCompare(h[:], s.token[:]) == 1
}

// respond writes the partner API's envelope (statusCode, success, status,
// message), so one client-side error path reads both listeners.
func respond(w http.ResponseWriter, code int, status, message string) {
	b, _ := json.Marshal(struct {
		StatusCode int    `json:"statusCode"`
		Success    bool   `json:"success"`
		Status     string `json:"status"`
		Message    string `json:"message"`
	}{code, code >= 200 && code < 300, status, message})
	b = append(b, '\n')
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(code)
	w.Write(b)
}
