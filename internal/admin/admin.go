// Package admin is the operator's listener: /metrics and the admin API
// (/admin/v1, api.go), kept off the partner listener and behind one
// bearer token. It holds no rules and no SQL: every route calls a kyc
// service method.
package admin

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"

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
	// Every answer, a refusal too, carries the request's id, as on the
	// partner listener; the admin API's routes log and audit under it.
	id := r.Header.Get("X-Request-Id")
	if !validRequestID(id) {
		var b [12]byte
		rand.Read(b[:])
		id = hex.EncodeToString(b[:])
	}
	w.Header().Set("X-Request-Id", id)
	r = r.WithContext(kyc.WithRequestID(r.Context(), id))
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

// validRequestID accepts a caller's id only when it is short and plain, so
// it cannot inject anything into logs or headers (the partner API's rule).
func validRequestID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, c := range []byte(id) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// envelope is the partner API's (statusCode, success, status, message),
// with the admin API's answer in data, so one client-side error path
// reads both listeners.
type envelope struct {
	StatusCode int    `json:"statusCode"`
	Success    bool   `json:"success"`
	Status     string `json:"status"`
	Message    string `json:"message"`
	Data       any    `json:"data,omitempty"`
}

func respond(w http.ResponseWriter, code int, status, message string) {
	writeEnvelope(w, code, status, message, nil)
}

// writeEnvelope encodes the whole body before writing, so a failed
// encoding never leaves half a body, and Content-Length is exact.
func writeEnvelope(w http.ResponseWriter, code int, status, message string, data any) {
	b, err := json.Marshal(envelope{code, code >= 200 && code < 300, status, message, data})
	if err != nil {
		code = http.StatusInternalServerError
		b, _ = json.Marshal(envelope{code, false, codeServerError, msgServerError, nil})
	}
	b = append(b, '\n')
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(code)
	w.Write(b)
}
