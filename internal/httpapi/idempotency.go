package httpapi

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/kycgate/kycgate/internal/kyc"
)

// idempotent runs a POST under its Idempotency-Key (the rules are
// kyc.BeginIdempotent's): a replay or a refusal is answered here, and
// otherwise serve runs with its answer recorded and stored, or the key
// released, by kyc.FinishIdempotent. serve reports whether the endpoint
// itself answered: the gate's answers (rate limit, product) are about the
// tenant's state, not the request, so they release the key.
func (s *Server) idempotent(w http.ResponseWriter, r *http.Request, t kyc.Tenant, keys []string, fail fail500,
	serve func(http.ResponseWriter, *http.Request) bool) {
	infoOf(r.Context()).tenant = t // for the access log, whatever the answer
	key, err := kyc.ParseIdempotencyKey(keys)
	if err != nil {
		s.fail(w, r, err, fail.code, fail.message)
		return
	}
	// The fingerprint needs the body now; the handler reads it again from
	// memory. Too large a body is refused before it touches the store.
	raw, rerr := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if rerr != nil {
		var tooBig *http.MaxBytesError
		if errors.As(rerr, &tooBig) {
			s.fail(w, r, kyc.NewError(codePayloadTooLarge, "Request body is too large"), fail.code, fail.message)
		} else {
			s.fail(w, r, kyc.NewError(kyc.CodeInvalidBody, "Request body must be a JSON object"), fail.code, fail.message)
		}
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(raw))
	req := kyc.IdempotentRequest{Method: r.Method, Path: unmounted(r.URL.Path), Body: raw}
	call, replay, err := s.svc.BeginIdempotent(r.Context(), t.ID, key, req)
	if err != nil {
		s.fail(w, r, err, fail.code, fail.message)
		return
	}
	if replay != nil {
		writeReplay(w, replay)
		return
	}
	rec := &answerRecorder{ResponseWriter: w}
	served := false
	// Deferred, so that a panicking handler releases the key too.
	defer func() {
		var a *kyc.StoredAnswer
		if served && !rec.overflow {
			a = &kyc.StoredAnswer{Status: rec.code, ContentType: rec.contentType, RetryAfter: rec.retryAfter, Body: rec.body.Bytes()}
		}
		s.svc.FinishIdempotent(r.Context(), call, a)
	}()
	served = serve(rec, r)
}

// unmounted is path without the /api mount: both forms are one endpoint.
func unmounted(path string) string {
	if rest, ok := strings.CutPrefix(path, "/api/"); ok {
		return "/" + rest
	}
	return path
}

// writeReplay answers with a stored answer as it was first given.
func writeReplay(w http.ResponseWriter, a *kyc.StoredAnswer) {
	h := w.Header()
	if a.ContentType != "" {
		h.Set("Content-Type", a.ContentType)
	}
	if a.RetryAfter != "" {
		h.Set("Retry-After", a.RetryAfter)
	}
	h.Set("Idempotent-Replayed", "true")
	h.Set("Content-Length", strconv.Itoa(len(a.Body)))
	w.WriteHeader(a.Status)
	w.Write(a.Body)
}

// answerRecorder passes an answer through and keeps what a replay needs:
// the status, two headers as they were when it was written, and the body
// up to kyc.MaxStoredAnswer (past that it is not stored at all).
type answerRecorder struct {
	http.ResponseWriter
	code                    int
	contentType, retryAfter string
	body                    bytes.Buffer
	overflow                bool
}

func (w *answerRecorder) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
		h := w.Header()
		w.contentType, w.retryAfter = h.Get("Content-Type"), h.Get("Retry-After")
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *answerRecorder) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if !w.overflow {
		if w.body.Len()+len(b) > kyc.MaxStoredAnswer {
			w.overflow = true
			w.body = bytes.Buffer{}
		} else {
			w.body.Write(b)
		}
	}
	return w.ResponseWriter.Write(b)
}

func (w *answerRecorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }
