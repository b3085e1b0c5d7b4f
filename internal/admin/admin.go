// Package admin is the operator's listener: /metrics and the admin API
// (/admin/v1, api.go), kept off the partner listener and behind one
// bearer token. It holds no rules and no SQL: every route calls a kyc
// service method.
package admin

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"

	"github.com/kycgate/kycgate/internal/envelope"
	"github.com/kycgate/kycgate/internal/kyc"
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
	// The admin API's routes log and audit under the request's id.
	r = r.WithContext(kyc.WithRequestID(r.Context(), envelope.RequestID(w, r)))
	if !s.authorized(r) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="kycgate-admin"`)
		respond(w, http.StatusUnauthorized, "unauthorized", "Missing or invalid admin token")
		return
	}
	if _, pattern := s.mux.Handler(r); pattern == "" {
		// ServeMux's own 404 and 405 are plain text; the admin API
		// answers in the envelope like the partner API.
		respond(w, http.StatusNotFound, "not_found", "Route not found")
		return
	}
	s.mux.ServeHTTP(w, r) // routes again, setting the path's values on r
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

func respond(w http.ResponseWriter, code int, status, message string) {
	envelope.Write(w, code, status, message, nil)
}
