// Package contract checks real HTTP responses against api/openapi.yaml, so every test that
// talks to kycgate over HTTP also proves the server keeps to its published contract.
package contract

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"

	"github.com/kycgate/kycgate/api"
)

// Validator checks responses against the embedded OpenAPI document. It is safe for
// concurrent use: after Load nothing in it is written.
type Validator struct {
	doc    *openapi3.T
	router routers.Router

	// The document lists no operation for an unknown path or a wrong method, so the
	// answers to those live in components and are applied here.
	notFound         *openapi3.ResponseRef
	methodNotAllowed *openapi3.ResponseRef

	cases []Case
}

// Case is one documented (HTTP status, status, message) triple of an envelope.
type Case struct {
	HTTP    int
	Status  string
	Message string // "" when the document gives a pattern instead of a fixed message
}

// Load parses and validates api.OpenAPI. The work is done once per process and the
// Validator shared, since it is read-only and many tests ask for it.
func Load() (*Validator, error) {
	return loadOnce()
}

var loadOnce = sync.OnceValues(func() (*Validator, error) { return load(api.OpenAPI) })

func load(data []byte) (*Validator, error) {
	ctx := context.Background()
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(data)
	if err != nil {
		return nil, fmt.Errorf("contract: load openapi.yaml: %w", err)
	}
	if err := doc.Validate(ctx); err != nil {
		return nil, fmt.Errorf("contract: openapi.yaml is not valid: %w", err)
	}
	// Route on the path alone: the document's server names where kycgate usually
	// listens, not the httptest address a test talks to. The doc is private to us.
	doc.Servers = nil
	router, err := legacy.NewRouter(doc)
	if err != nil {
		return nil, fmt.Errorf("contract: build router: %w", err)
	}
	v := &Validator{doc: doc, router: router}
	if doc.Components != nil {
		v.notFound = doc.Components.Responses["NotFound"]
		v.methodNotAllowed = doc.Components.Responses["MethodNotAllowed"]
	}
	if v.notFound == nil || v.methodNotAllowed == nil {
		return nil, errors.New("contract: openapi.yaml lacks components/responses NotFound or MethodNotAllowed")
	}
	v.cases = collectCases(doc)
	return v, nil
}

// Check returns nil when a response with this status, header and body is one the
// document allows for req's method and path. It fails for an undocumented route,
// an undocumented status code, a body or header that does not match the schema,
// and an envelope whose statusCode or success disagrees with the HTTP status.
// Errors start with "contract: METHOD PATH → STATUS:".
func (v *Validator) Check(req *http.Request, status int, header http.Header, body []byte) error {
	if req == nil || req.URL == nil {
		return errors.New("contract: no request")
	}
	if err := v.check(req, status, header, body); err != nil {
		return fmt.Errorf("contract: %s %s → %d: %w", req.Method, req.URL.Path, status, err)
	}
	return nil
}

func (v *Validator) check(req *http.Request, status int, header http.Header, body []byte) error {
	if header == nil {
		header = http.Header{}
	}
	route, params, err := v.findRoute(req.Method, req.URL.Path, status)
	if err != nil {
		return err
	}
	if err := checkEnvelope(status, body); err != nil {
		return err
	}
	if err := checkRateLimitHeaders(status, header, body); err != nil {
		return err
	}
	// For HEAD, kin-openapi checks no body, which is right: there is none.
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{
			Request:    req,
			PathParams: params,
			Route:      route,
		},
		Status:  status,
		Header:  header,
		Body:    io.NopCloser(bytes.NewReader(body)),
		Options: &openapi3filter.Options{IncludeResponseStatus: true},
	}
	if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
		msg := simplify(err).Error()
		// A oneOf failure names only one branch it missed; listing the documented
		// cases makes a wrong status or message obvious at a glance.
		if r := route.Operation.Responses.Status(status); r != nil {
			if cases := responseCases(r); len(cases) > 0 {
				msg += "\n  documented for " + strconv.Itoa(status) + " here: " + strings.Join(cases, "; ")
			}
		}
		return errors.New(msg)
	}
	return nil
}

// responseCases lists the status/message pairs one response documents.
func responseCases(r *openapi3.ResponseRef) []string {
	if r.Value == nil {
		return nil
	}
	var out []string
	for _, mt := range r.Value.Content {
		if mt.Schema == nil {
			continue
		}
		_ = mt.Schema.WalkSubtree(func(_ string, ref *openapi3.SchemaRef) error {
			props := ref.Value.Properties
			if props["statusCode"] == nil || props["status"] == nil || props["status"].Value == nil {
				return nil
			}
			message := "(any message)"
			if m := props["message"]; m != nil && m.Value != nil {
				if c, ok := m.Value.Const.(string); ok {
					message = strconv.Quote(c)
				} else if m.Value.Pattern != "" {
					message = "matching /" + m.Value.Pattern + "/"
				}
			}
			for _, st := range stringValues(props["status"].Value) {
				out = append(out, st+" "+message)
			}
			return nil
		})
	}
	sort.Strings(out)
	return out
}

// findRoute maps method and path to the operation whose responses apply. A path the
// document does not list may only answer 404 not_found, and a listed path with an
// unlisted method only 405 method_not_allowed; both are checked against components.
func (v *Validator) findRoute(method, path string, status int) (*routers.Route, map[string]string, error) {
	lookup := method
	if lookup == http.MethodHead {
		lookup = http.MethodGet // net/http serves HEAD with the GET handler
	}
	if route, params, ok := v.match(lookup, path); ok {
		return route, params, nil
	}
	known := false
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions} {
		if _, _, ok := v.match(m, path); ok {
			known = true
			break
		}
	}
	resp, want := v.notFound, http.StatusNotFound
	if known {
		resp, want = v.methodNotAllowed, http.StatusMethodNotAllowed
	}
	if status != want {
		if known {
			return nil, nil, fmt.Errorf("the path is documented but not for %s, which may only answer %d %s",
				method, want, http.StatusText(want))
		}
		return nil, nil, fmt.Errorf("undocumented route; an unknown path may only answer %d %s", want, http.StatusText(want))
	}
	op := &openapi3.Operation{Responses: openapi3.NewResponses(openapi3.WithStatus(want, resp))}
	return &routers.Route{Spec: v.doc, Path: path, Method: method, Operation: op}, nil, nil
}

// match finds the operation for method and path. The legacy router forgives a
// trailing slash that net/http.ServeMux does not, so the match is confirmed against
// the path template: /kyc/prepare/ is an unknown route, as the server treats it.
func (v *Validator) match(method, path string) (*routers.Route, map[string]string, bool) {
	route, params, err := v.router.FindRoute(&http.Request{Method: method, URL: &url.URL{Path: path}})
	if err != nil || !templateMatches(route.Path, path) {
		return nil, nil, false
	}
	return route, params, true
}

func templateMatches(template, path string) bool {
	ts, ps := strings.Split(template, "/"), strings.Split(path, "/")
	if len(ts) != len(ps) {
		return false
	}
	for i, t := range ts {
		if strings.HasPrefix(t, "{") && strings.HasSuffix(t, "}") {
			if ps[i] == "" {
				return false
			}
			continue
		}
		if t != ps[i] {
			return false
		}
	}
	return true
}

// checkEnvelope enforces §1's invariants directly: the schema would reject the same
// bodies, but with a oneOf error far harder to read than this.
func checkEnvelope(status int, body []byte) error {
	var env struct {
		StatusCode *json.RawMessage `json:"statusCode"`
		Success    *bool            `json:"success"`
	}
	if json.Unmarshal(body, &env) != nil || env.StatusCode == nil {
		return nil // not an envelope; the schema decides
	}
	var code int
	if err := json.Unmarshal(*env.StatusCode, &code); err != nil {
		return fmt.Errorf("envelope statusCode %s is not an integer", *env.StatusCode)
	}
	if code != status {
		return fmt.Errorf("envelope statusCode %d differs from the HTTP status", code)
	}
	if env.Success != nil && *env.Success != (status >= 200 && status < 300) {
		return fmt.Errorf("envelope success=%t with HTTP status %d", *env.Success, status)
	}
	return nil
}

// checkRateLimitHeaders covers what a response object cannot say: where a 429 may be
// either the rate-limit body or an envelope, the RateLimit-* headers are documented
// as optional, yet the rate-limit body must always come with all of them.
func checkRateLimitHeaders(status int, header http.Header, body []byte) error {
	if status != http.StatusTooManyRequests {
		return nil
	}
	var rl struct {
		Code *int `json:"code"`
	}
	if json.Unmarshal(body, &rl) != nil || rl.Code == nil {
		return nil
	}
	var missing []string
	for _, h := range []string{"Retry-After", "RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"} {
		if header.Get(h) == "" {
			missing = append(missing, h)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("rate-limit body without header(s) %s", strings.Join(missing, ", "))
	}
	return nil
}

// simplify drops kin-openapi's copy of the whole schema from its error text, which
// for an envelope with a dozen cases runs to pages and hides the reason.
func simplify(err error) error {
	var re *openapi3filter.ResponseError
	if errors.As(err, &re) {
		msg := re.Reason
		if re.Err != nil {
			msg += ": " + trimSchemaDump(re.Err.Error())
		}
		return errors.New(msg)
	}
	return err
}

func trimSchemaDump(s string) string {
	if i := strings.Index(s, "\nSchema:"); i >= 0 {
		s = s[:i]
	}
	// Each nested allOf/oneOf level adds the same prefix; one says as much.
	const nested = "validation failed due to: "
	for strings.Contains(s, nested+nested) {
		s = strings.ReplaceAll(s, nested+nested, nested)
	}
	return strings.TrimSpace(s)
}

// Statuses returns every envelope `status` string the document names, success and
// error alike. The health routes' own "status" fields (ok, ready, unavailable) and
// the KYC status values inside `data` are not envelope statuses and are left out.
func (v *Validator) Statuses() map[string]bool {
	out := make(map[string]bool)
	for _, c := range v.cases {
		out[c.Status] = true
	}
	return out
}

// Cases returns every documented envelope case, sorted by HTTP status, status and
// message, for tests that want to know which messages go with which status.
func (v *Validator) Cases() []Case {
	return append([]Case(nil), v.cases...)
}

// collectCases finds each schema that pins an envelope's statusCode and status: the
// success bodies and the error cases. A schema without statusCode is not an envelope.
func collectCases(doc *openapi3.T) []Case {
	seen := make(map[Case]bool)
	_ = doc.WalkSchemas(func(_ string, ref *openapi3.SchemaRef) error {
		props := ref.Value.Properties
		code, status := props["statusCode"], props["status"]
		if code == nil || code.Value == nil || status == nil || status.Value == nil {
			return nil
		}
		httpCode, ok := asInt(code.Value.Const)
		if !ok {
			return nil
		}
		message := ""
		if m := props["message"]; m != nil && m.Value != nil {
			message, _ = m.Value.Const.(string)
		}
		for _, s := range stringValues(status.Value) {
			seen[Case{HTTP: httpCode, Status: s, Message: message}] = true
		}
		return nil
	})
	cases := make([]Case, 0, len(seen))
	for c := range seen {
		cases = append(cases, c)
	}
	sort.Slice(cases, func(i, j int) bool {
		a, b := cases[i], cases[j]
		if a.HTTP != b.HTTP {
			return a.HTTP < b.HTTP
		}
		if a.Status != b.Status {
			return a.Status < b.Status
		}
		return a.Message < b.Message
	})
	return cases
}

func stringValues(s *openapi3.Schema) []string {
	var out []string
	if c, ok := s.Const.(string); ok {
		out = append(out, c)
	}
	for _, e := range s.Enum {
		if c, ok := e.(string); ok {
			out = append(out, c)
		}
	}
	return out
}

func asInt(v any) (int, bool) {
	switch n := v.(type) {
	case int:
		return n, true
	case int64:
		return int(n), true
	case float64:
		return int(n), n == float64(int(n))
	case json.Number:
		i, err := n.Int64()
		return int(i), err == nil
	}
	return 0, false
}

// Transport wraps next (http.DefaultTransport when nil) so that every response is read
// in full, checked against the contract, and handed on with its body restored.
// Mismatches go to tb.Errorf, which is safe from many goroutines; the test carries on,
// so one run shows every mismatch. Use it only while tb's test is running.
func Transport(tb testing.TB, v *Validator, next http.RoundTripper) http.RoundTripper {
	if next == nil {
		next = http.DefaultTransport
	}
	return &transport{tb: tb, v: v, next: next}
}

type transport struct {
	tb   testing.TB
	v    *Validator
	next http.RoundTripper
}

const snippetLen = 512

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("contract: read response body of %s %s: %w", req.Method, req.URL.Path, err)
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	if err := t.v.Check(req, resp.StatusCode, resp.Header, body); err != nil {
		snippet := string(body)
		if len(snippet) > snippetLen {
			snippet = strings.ToValidUTF8(snippet[:snippetLen], "") + "…"
		}
		t.tb.Errorf("%v\n  body: %s", err, snippet)
	}
	return resp, nil
}

// CheckWebhook returns nil when body is a request body the document's
// top-level `webhooks` allows for the event type: what kycgate POSTs to a
// partner's endpoint.
func (v *Validator) CheckWebhook(eventType string, body []byte) error {
	item := v.doc.Webhooks[eventType]
	if item == nil || item.Post == nil || item.Post.RequestBody == nil || item.Post.RequestBody.Value == nil {
		return fmt.Errorf("contract: webhook %q is not documented", eventType)
	}
	mt := item.Post.RequestBody.Value.Content.Get("application/json")
	if mt == nil || mt.Schema == nil || mt.Schema.Value == nil {
		return fmt.Errorf("contract: webhook %q has no JSON schema", eventType)
	}
	var val any
	if err := json.Unmarshal(body, &val); err != nil {
		return fmt.Errorf("contract: webhook %q: body is not JSON: %w", eventType, err)
	}
	if err := mt.Schema.Value.VisitJSON(val, openapi3.EnableJSONSchema2020()); err != nil {
		return fmt.Errorf("contract: webhook %q: %w", eventType, simplify(err))
	}
	return nil
}
