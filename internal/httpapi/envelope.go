package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/kycgate/kycgate/internal/envelope"
	"github.com/kycgate/kycgate/internal/kyc"
)

// writeJSON and respond are the envelope package's, by their short local
// names, which every handler uses.
func writeJSON(w http.ResponseWriter, code int, v any) { envelope.WriteJSON(w, code, v) }

func respond(w http.ResponseWriter, code int, status, message string, data any) {
	envelope.Write(w, code, status, message, data)
}

// httpStatus maps every error code to its one HTTP status.
var httpStatus = map[string]int{
	kyc.CodeInvalidBody:          400,
	codePayloadTooLarge:          413,
	kyc.CodeMissingParams:        400,
	kyc.CodeInvalidEmail:         400,
	kyc.CodeInvalidWallet:        400,
	kyc.CodeInvalidPurpose:       400,
	kyc.CodeUserNotFound:         404,
	kyc.CodeEmailAlreadyVerified: 400,
	kyc.CodeOTPInvalid:           400,
	kyc.CodeOTPExpired:           400,
	kyc.CodeOTPMaxAttempts:       400,
	kyc.CodeOTPSendRateLimited:   429,
	kyc.CodeChallengeNotFound:    400,
	kyc.CodeChallengeExpired:     400,
	kyc.CodeInvalidSignature:     400,
	kyc.CodeEmailWalletConflict:  409,
	kyc.CodeIdentityMismatch:     400,
	kyc.CodeMethodNotFound:       404,
	kyc.CodeUserNotPrepared:      403,
	kyc.CodeIdentityNotVerified:  403,
	kyc.CodeQuotaExceeded:        429,
	kyc.CodeKYCNotFound:          404,
	kyc.CodeServerFailed:         500,
	kyc.CodeServerError:          500,
	codeInvalidAPIKey:            403,
	codeProductNotEnabled:        403,
	codeNotFound:                 404,
	codeMethodNotAllowed:         405,
	codeWebhookSignature:         401,
	codeServerBusy:               503,

	kyc.CodeInvalidIdempotencyKey: 400,
	kyc.CodeIdempotencyKeyInUse:   409,
	kyc.CodeIdempotencyKeyReused:  422,
}

const (
	codePayloadTooLarge   = "payload_too_large"
	codeInvalidAPIKey     = "invalid_api_key"
	codeProductNotEnabled = "product_not_enabled"
	codeNotFound          = "not_found"
	codeMethodNotAllowed  = "method_not_allowed"
	codeWebhookSignature  = "invalid_webhook_signature"
	codeServerBusy        = "server_busy"
)

// fail writes err as the envelope. Unexpected errors become fallback, the
// endpoint's documented 500; their cause goes to the log, never the client.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error, fallbackCode, fallbackMsg string) {
	var e *kyc.Error
	if !errors.As(err, &e) {
		e = &kyc.Error{Code: fallbackCode, Message: fallbackMsg, Err: err}
	}
	code, ok := httpStatus[e.Code]
	if !ok {
		code = http.StatusInternalServerError
	}
	if code >= 500 {
		s.log.ErrorContext(r.Context(), "request failed", "request_id", requestID(r.Context()), "status", e.Code, "err", e.Err)
		if s.fault != nil && e.Err != nil && s.fault(e.Err) {
			s.probe.forget() // the next /readyz asks again
		}
	}
	if e.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int((e.RetryAfter+999_999_999)/1_000_000_000)))
	}
	respond(w, code, e.Code, e.Message, nil)
}

const maxBody = 64 << 10

// body is a decoded JSON object whose fields are read by type on demand, so
// a wrong type is reported by name and unknown fields are ignored.
type body map[string]json.RawMessage

// decodeBody reads a request body of at most 64 KiB that must be a JSON object.
func decodeBody(w http.ResponseWriter, r *http.Request) (body, *kyc.Error) {
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, kyc.NewError(codePayloadTooLarge, "Request body is too large")
		}
		return nil, kyc.NewError(kyc.CodeInvalidBody, "Request body must be a JSON object")
	}
	return parseBody(raw)
}

// fields reads the request's JSON object and the named string fields of
// it, in order (absent or null: ""). Its errors are the envelope's 400s.
func fields(w http.ResponseWriter, r *http.Request, names ...string) ([]string, error) {
	b, berr := decodeBody(w, r)
	if berr != nil {
		return nil, berr
	}
	f, berr := b.strs(names...)
	if berr != nil {
		return nil, berr
	}
	return f, nil
}

func parseBody(raw []byte) (body, *kyc.Error) {
	var b body
	raw = bytes.Trim(raw, " \t\r\n") // JSON whitespace only (RFC 8259 §2)
	if len(raw) == 0 || raw[0] != '{' || json.Unmarshal(raw, &b) != nil || b == nil {
		return nil, kyc.NewError(kyc.CodeInvalidBody, "Request body must be a JSON object")
	}
	return b, nil
}

// str returns a string field; absent and null read as "".
func (b body) str(name string) (string, *kyc.Error) {
	v, ok := b[name]
	if !ok || string(v) == "null" {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		return "", kyc.NewError(kyc.CodeInvalidBody, fmt.Sprintf("%s must be a string", name))
	}
	return s, nil
}

// strs reads several string fields, stopping at the first wrong type.
func (b body) strs(names ...string) ([]string, *kyc.Error) {
	out := make([]string, len(names))
	for i, n := range names {
		v, err := b.str(n)
		if err != nil {
			return nil, err
		}
		out[i] = v
	}
	return out, nil
}
