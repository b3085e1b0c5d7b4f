// Package envelope is what kycgate's two HTTP listeners answer alike: the
// partner API (httpapi) and the admin API (admin) share one envelope, one
// rule for X-Request-Id and one way of refusing a method, so one
// client-side error path reads both. It knows nothing of either API's
// codes beyond the 500 it falls back to.
package envelope

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// Body is every envelope (docs/api.md §1); the admin API's answer goes in
// Data too.
type Body struct {
	StatusCode int    `json:"statusCode"`
	Success    bool   `json:"success"`
	Status     string `json:"status"`
	Message    string `json:"message"`
	Data       any    `json:"data,omitempty"`
}

// serverError is written when a body cannot be encoded: the status and
// message both APIs document for an unexpected failure.
const serverError = `{"statusCode":500,"success":false,"status":"server_error","message":"Server failed, try again later"}` + "\n"

// Write answers code with the envelope; success follows from code.
func Write(w http.ResponseWriter, code int, status, message string, data any) {
	WriteJSON(w, code, Body{StatusCode: code, Success: code >= 200 && code < 300, Status: status, Message: message, Data: data})
}

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// WriteJSON encodes v into a pooled buffer first, so a failed encoding
// never leaves a half-written body, and Content-Length is exact.
func WriteJSON(w http.ResponseWriter, code int, v any) {
	buf := bufPool.Get().(*bytes.Buffer)
	buf.Reset()
	defer bufPool.Put(buf)
	if err := json.NewEncoder(buf).Encode(v); err != nil {
		code = http.StatusInternalServerError
		buf.Reset()
		buf.WriteString(serverError)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(code)
	w.Write(buf.Bytes())
}

// RequestID is r's X-Request-Id when it is short and plain, so a caller's
// id cannot inject anything into logs or headers, else a new random one.
// It also sets it on w, so every answer, a refusal too, carries it.
func RequestID(w http.ResponseWriter, r *http.Request) string {
	id := r.Header.Get("X-Request-Id")
	if !plainID(id) {
		var b [12]byte
		rand.Read(b[:])
		id = hex.EncodeToString(b[:])
	}
	w.Header().Set("X-Request-Id", id)
	return id
}

func plainID(id string) bool {
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

// Methods is one route's handlers by method. ServeMux's own 405 is plain
// text without the route's methods; both APIs answer it in the envelope,
// with Allow, instead.
type Methods[H any] struct {
	byMethod map[string]H
	allow    string
}

// NewMethods takes the route's handlers by method ("GET", "POST", …).
func NewMethods[H any](byMethod map[string]H) Methods[H] {
	allowed := make([]string, 0, len(byMethod))
	for m := range byMethod {
		allowed = append(allowed, m)
	}
	sort.Strings(allowed)
	return Methods[H]{byMethod: byMethod, allow: strings.Join(allowed, ", ")}
}

// Lookup returns the handler for r's method (HEAD is served by GET's).
// When there is none it has answered 405 and returns false.
func (m Methods[H]) Lookup(w http.ResponseWriter, r *http.Request) (H, bool) {
	h, ok := m.byMethod[r.Method]
	if !ok && r.Method == http.MethodHead {
		h, ok = m.byMethod[http.MethodGet]
	}
	if !ok {
		w.Header().Set("Allow", m.allow)
		Write(w, http.StatusMethodNotAllowed, "method_not_allowed", "Method not allowed", nil)
	}
	return h, ok
}
