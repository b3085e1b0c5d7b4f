package admin

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"

	"github.com/kycgate/kycgate/internal/envelope"
	"github.com/kycgate/kycgate/internal/kyc"
)

// API is what the admin API's routes need.
type API struct {
	Service *kyc.Service
	// CheckWebhookURL checks an endpoint URL against the outbound webhook
	// destination rules before it is stored.
	CheckWebhookURL func(url string) error
	Log             *slog.Logger
}

// The admin API's envelope statuses besides the partner API's not_found
// and method_not_allowed (api/openapi.yaml, AdminError).
const (
	codeOK              = "ok"
	codeUnauthorized    = "unauthorized"
	codeInvalidBody     = "invalid_body"
	codePayloadTooLarge = "payload_too_large"
	codeNotFound        = "not_found"
	codeServerError     = "server_error"
	msgServerError      = "Server failed, try again later"
)

// reply is a route's successful answer.
type reply struct {
	code    int
	message string
	data    any
}

// handler is one route: its error, if any, becomes the envelope in one
// place (fail).
type handler func(r *http.Request) (reply, error)

// route is a path and the handler of each of its methods.
type route struct {
	path    string
	methods map[string]handler
}

// MountAPI serves the admin API under /admin/v1 (api/openapi.yaml, tag
// admin).
func (s *Server) MountAPI(a API) {
	if a.Log == nil {
		a.Log = slog.New(slog.DiscardHandler)
	}
	for _, rt := range a.routes() {
		s.mux.Handle(rt.path, a.methodRouter(rt))
	}
}

func (a API) routes() []route {
	const t = "/admin/v1/tenants/{tenant_id}"
	return []route{
		{"/admin/v1/tenants", map[string]handler{"GET": a.listTenants, "POST": a.createTenant}},
		{t, map[string]handler{"GET": a.showTenant, "PATCH": a.patchTenant}},
		{t + "/usage", map[string]handler{"GET": a.usage}},
		{t + "/keys", map[string]handler{"GET": a.listKeys, "POST": a.addKey}},
		{t + "/keys/{key_id}", map[string]handler{"DELETE": a.revokeKey}},
		{t + "/webhooks", map[string]handler{"GET": a.listEndpoints, "POST": a.addEndpoint}},
		{t + "/webhooks/{endpoint_id}", map[string]handler{"DELETE": a.removeEndpoint}},
		{t + "/webhooks/{endpoint_id}/rotate-secret", map[string]handler{"POST": a.rotateSecret}},
		{t + "/webhooks/{endpoint_id}/deliveries", map[string]handler{"GET": a.deliveries}},
		{t + "/events/{event_id}/redeliver", map[string]handler{"POST": a.redeliver}},
		{"/admin/v1/people", map[string]handler{"GET": a.lookupPerson, "DELETE": a.erasePerson}},
		{"/admin/v1/audit", map[string]handler{"GET": a.auditLog}},
		{"/admin/v1/audit/verify", map[string]handler{"GET": a.verifyAudit}},
	}
}

// methodRouter runs the method's handler with the admin actor in its
// context, or answers 405 with Allow, in the envelope.
func (a API) methodRouter(rt route) http.Handler {
	methods := envelope.NewMethods(rt.methods)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h, ok := methods.Lookup(w, r)
		if !ok {
			return
		}
		r = r.WithContext(kyc.WithActor(r.Context(), kyc.Actor{Kind: kyc.ActorAdmin}))
		rep, err := h(r)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		envelope.Write(w, rep.code, codeOK, rep.message, rep.data)
	})
}

// apiError is a refusal with its HTTP status, envelope status and message.
type apiError struct {
	code        int
	status, msg string
	cause       error // for the log only
}

func (e *apiError) Error() string { return e.status + ": " + e.msg }
func (e *apiError) Unwrap() error { return e.cause }

func badRequest(msg string) error { return &apiError{code: 400, status: codeInvalidBody, msg: msg} }

// notFound names what was not found when err is the store's ErrNotFound,
// and passes any other error on.
func notFound(err error, what string) error {
	if errors.Is(err, kyc.ErrNotFound) {
		return &apiError{code: 404, status: codeNotFound, msg: what + " not found", cause: err}
	}
	return err
}

// kycStatus is the HTTP status of each kyc.Error code an operator's
// request can meet; any other is a server error.
var kycStatus = map[string]int{
	kyc.CodeInvalidRequest: 400,
	kyc.CodeInvalidEmail:   400,
	kyc.CodeInvalidWallet:  400,
	kyc.CodeMissingParams:  400,
	kyc.CodeInvalidBody:    400,
}

// fail writes err as the envelope; an unexpected one is a 500 whose cause
// goes to the log, never to the client.
func (a API) fail(w http.ResponseWriter, r *http.Request, err error) {
	var ae *apiError
	var ke *kyc.Error
	switch {
	case errors.As(err, &ae):
	case errors.As(err, &ke) && kycStatus[ke.Code] != 0:
		ae = &apiError{code: kycStatus[ke.Code], status: ke.Code, msg: ke.Message}
	case errors.Is(err, kyc.ErrNotFound):
		ae = &apiError{code: 404, status: codeNotFound, msg: "Not found"}
	default:
		ae = &apiError{code: 500, status: codeServerError, msg: msgServerError}
		a.Log.ErrorContext(r.Context(), "admin request failed", "request_id", kyc.RequestIDOf(r.Context()),
			"method", r.Method, "route", r.Pattern, "err", err)
	}
	respond(w, ae.code, ae.status, ae.msg)
}

const maxBody = 64 << 10

// decode reads a JSON object of at most 64 KiB into v, refusing unknown
// fields, wrong types and anything after the object.
func decode(r *http.Request, v any) error {
	raw, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, maxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return &apiError{code: 413, status: codePayloadTooLarge, msg: "Request body is too large"}
		}
		return badRequest("Request body could not be read")
	}
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '{' {
		return badRequest("Request body must be a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return badRequest(bodyError(err))
	}
	if _, err := dec.Token(); err != io.EOF {
		return badRequest("Request body must be one JSON object")
	}
	return nil
}

// bodyError says what is wrong with a body in the caller's terms, without
// Go type names.
func bodyError(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		return fmt.Sprintf("%s has the wrong type", te.Field)
	}
	if f, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		return "unknown field " + f
	}
	return "Request body must be a JSON object"
}
