package contract

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
)

func mustLoad(t *testing.T) *Validator {
	t.Helper()
	v, err := Load()
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return v
}

// env writes an envelope the way the server should; data is left out when nil.
func env(code int, status, message string, data any) string {
	m := map[string]any{
		"statusCode": code,
		"success":    code >= 200 && code < 300,
		"status":     status,
		"message":    message,
	}
	if data != nil {
		m["data"] = data
	}
	b, err := json.Marshal(m)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func jsonHeader(extra ...string) http.Header {
	h := http.Header{
		"Content-Type": {"application/json; charset=utf-8"},
		"X-Request-Id": {"01J9Z7TESTREQUESTID"},
	}
	for i := 0; i+1 < len(extra); i += 2 {
		h.Set(extra[i], extra[i+1])
	}
	return h
}

var rateLimitHeaders = []string{"Retry-After", "1", "RateLimit-Limit", "600", "RateLimit-Remaining", "0", "RateLimit-Reset", "1"}

const rateLimitBody = `{"code":429,"message":"Too many requests. The limit is 600 request per minute and 10 requests per second.","docs":"https://docs.starkfi.io/"}`

type example struct {
	name   string
	status int
	body   string
	header http.Header // jsonHeader() when nil
}

func (e example) headers() http.Header {
	if e.header == nil {
		return jsonHeader()
	}
	return e.header
}

// common is what every KYC endpoint may answer whatever it does (§1).
func common(withBody bool) []example {
	ex := []example{
		{"invalid_api_key", 403, env(403, "invalid_api_key", "Invalid or missing API key", nil), nil},
		{"product_not_enabled", 403, env(403, "product_not_enabled", "The kyc product is not enabled for this API key", nil), nil},
		{"rate limited", 429, rateLimitBody, jsonHeader(rateLimitHeaders...)},
		{"rate limited, other limits", 429, `{"code":429,"message":"Too many requests. The limit is 60 request per minute and 1 requests per second.","docs":"https://docs.starkfi.io/"}`, jsonHeader(rateLimitHeaders...)},
	}
	if withBody {
		ex = append(ex,
			example{"invalid_body", 400, env(400, "invalid_body", "Request body must be a JSON object", nil), nil},
			example{"payload_too_large", 413, env(413, "payload_too_large", "Request body is too large", nil), nil},
			example{"invalid_idempotency_key", 400, env(400, "invalid_idempotency_key", "Idempotency-Key must be 1 to 255 characters", nil), nil},
			example{"idempotency_key_in_use", 409, env(409, "idempotency_key_in_use", "A request with this Idempotency-Key is still running", nil), jsonHeader("Retry-After", "1")},
			example{"idempotency_key_reused", 422, env(422, "idempotency_key_reused", "Idempotency-Key was already used for a different request", nil), nil},
		)
	}
	return ex
}

func stateData(emailVerified, approved bool, status string) map[string]any {
	return map[string]any{"email_verified": emailVerified, "kyc_approved": approved, "kyc_status": status}
}

func walletStateData(emailVerified, approved bool, status string) map[string]any {
	d := stateData(emailVerified, approved, status)
	d["wallet_verified"] = true
	return d
}

// linkData is prepare-wallet's data with data.email_link (docs/api.md §6.1).
func linkData(emailVerified bool, link string) map[string]any {
	d := walletStateData(emailVerified, false, "pending")
	d["email_link"] = link
	return d
}

const (
	evmWallet    = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"
	solanaWallet = "FmTGYpzX27fDqaiytXUdFVaphC5o68G61Q3uhVM2d8bm"
)

func challengeMessage(wallet, chain string) string {
	return "StarkFi KYC verification\nWallet: " + wallet + "\nChain: " + chain +
		"\nPurpose: kyc\nNonce: 7fJ2kLq9ZxW4mNp8RtY3vB6cD1\nIssued At: 2026-05-01T10:00:00Z\nExpiration Time: 2026-05-01T10:10:00Z"
}

func session(extra map[string]any) map[string]any {
	d := map[string]any{
		"success": true,
		"message": "didit_create_kyc_session",
		"session": map[string]any{"session_id": "5f0c8a2e-1b7d-4c3a-9e61-0a4d2b9f7c11", "session_url": "https://verify.didit.me/session/Qm7ZxP2kT9aL"},
	}
	for k, v := range extra {
		d[k] = v
	}
	return d
}

func ipInfo() map[string]any {
	return map[string]any{
		"ip_address": "203.0.113.7", "ip_country": "Portugal", "ip_state": "Lisbon", "ip_city": "Lisbon",
		"platform": "mobile", "device_brand": "Apple", "device_model": "iPhone 15",
		"is_vpn_or_tor": false, "is_data_center": false,
	}
}

func statusData(status, sessionStatus string, ip []any) map[string]any {
	if ip == nil {
		ip = []any{}
	}
	return map[string]any{
		"status":         status,
		"approved":       status == "approved",
		"session_id":     "5f0c8a2e-1b7d-4c3a-9e61-0a4d2b9f7c11",
		"session_status": sessionStatus,
		"session_url":    "https://verify.didit.me/session/Qm7ZxP2kT9aL",
		"ip_info":        ip,
		"is_blocklisted": false,
	}
}

type endpoint struct {
	method, path string // the bare path; the /api twin is checked too unless bareOnly
	bareOnly     bool
	examples     []example
}

// endpoints holds, per endpoint, every documented answer of docs/api.md §1–§11.
func endpoints() []endpoint {
	nullIP := ipInfo()
	for _, k := range []string{"ip_country", "ip_state", "ip_city", "platform", "device_brand", "device_model"} {
		nullIP[k] = nil
	}
	blocked := statusData("declined", "Declined", []any{ipInfo()})
	blocked["is_blocklisted"] = true

	return []endpoint{
		{method: "POST", path: "/kyc/prepare", examples: append(common(true),
			example{"user_prepared", 201, env(201, "user_prepared", "User prepared for KYC, please verify your email", nil), nil},
			example{"already, pending", 200, env(200, "user_already_prepared", "User already prepared for KYC", stateData(false, false, "pending")), nil},
			example{"already, approved", 200, env(200, "user_already_prepared", "User already prepared for KYC", stateData(true, true, "approved")), nil},
			example{"already, declined", 200, env(200, "user_already_prepared", "User already prepared for KYC", stateData(true, false, "declined")), nil},
			example{"wrong type", 400, env(400, "invalid_body", "email must be a string", nil), nil},
			example{"missing", 400, env(400, "missing_params", "email is required", nil), nil},
			example{"invalid email", 400, env(400, "invalid_email", "email is not a valid address", nil), nil},
			example{"server_failed", 500, env(500, "server_failed", "Server failed on KYC prepare", nil), nil},
		)},
		{method: "POST", path: "/security/email/send-otp", examples: append(common(true),
			example{"otp_sent", 201, env(201, "otp_sent", "Verification code sent to your email", nil), nil},
			example{"wrong type", 400, env(400, "invalid_body", "field email must be a string", nil), nil},
			example{"missing", 400, env(400, "missing_params", "email is required", nil), nil},
			example{"invalid email", 400, env(400, "invalid_email", "email is not a valid address", nil), nil},
			example{"invalid wallet", 400, env(400, "invalid_wallet", "Wallet is not a valid EVM or Solana address", nil), nil},
			example{"wallet of the wrong type", 400, env(400, "invalid_body", "wallet must be a string", nil), nil},
			example{"verified", 400, env(400, "email_already_verified", "Email is already verified", nil), nil},
			example{"not found", 404, env(404, "user_not_found", "User not found in whitelist", nil), nil},
			example{"not found, details", 404, `{"statusCode":404,"success":false,"status":"user_not_found","message":"User not found in whitelist","details":{"email":"a@b.test"}}`, nil},
			example{"send limited", 429, env(429, "otp_send_rate_limited", "Please wait before requesting a new code", nil), jsonHeader("Retry-After", "42")},
			example{"server_error", 500, env(500, "server_error", "Server failed, try again later", nil), nil},
		)},
		{method: "POST", path: "/security/email/verify-otp", examples: append(common(true),
			example{"verified", 200, env(200, "email_verified", "Email verified successfully", nil), nil},
			example{"wrong type", 400, env(400, "invalid_body", "code must be a string", nil), nil},
			example{"missing", 400, env(400, "missing_params", "email and code are required", nil), nil},
			example{"invalid email", 400, env(400, "invalid_email", "email is not a valid address", nil), nil},
			example{"invalid wallet", 400, env(400, "invalid_wallet", "Wallet is not a valid EVM or Solana address", nil), nil},
			example{"otp_invalid", 400, env(400, "otp_invalid", "Invalid code", nil), nil},
			example{"otp_expired", 400, env(400, "otp_expired", "Code expired, please request a new one", nil), nil},
			example{"otp_max_attempts", 400, env(400, "otp_max_attempts", "Max attempts reached, please request a new code", nil), nil},
			example{"already verified", 400, env(400, "email_already_verified", "Email is already verified", nil), nil},
			example{"not found", 404, env(404, "user_not_found", "User not found in whitelist", nil), nil},
			example{"link conflict", 409, env(409, "email_wallet_conflict", "This email and wallet cannot be linked: one already has another wallet or email, or both have KYC sessions", nil), nil},
			example{"server_error", 500, env(500, "server_error", "Server failed, try again later", nil), nil},
		)},
		{method: "POST", path: "/security/wallet/challenge", examples: append(common(true),
			example{"evm", 201, env(201, "challenge_created", "Sign this message with your wallet",
				map[string]any{"message": challengeMessage(evmWallet, "evm"), "wallet": evmWallet, "wallet_chain": "evm"}), nil},
			example{"solana", 201, env(201, "challenge_created", "Sign this message with your wallet",
				map[string]any{"message": challengeMessage(solanaWallet, "solana"), "wallet": solanaWallet, "wallet_chain": "solana"}), nil},
			example{"wrong type", 400, env(400, "invalid_body", "purpose must be a string", nil), nil},
			example{"missing", 400, env(400, "missing_params", "wallet is required", nil), nil},
			example{"invalid wallet", 400, env(400, "invalid_wallet", "Wallet challenge failed", nil), nil},
			example{"invalid purpose", 400, env(400, "invalid_purpose", "purpose must be kyc", nil), nil},
			example{"server_error", 500, env(500, "server_error", "Server failed, try again later", nil), nil},
		)},
		{method: "POST", path: "/kyc/prepare-wallet", examples: append(common(true),
			example{"prepared", 201, env(201, "user_prepared", "User prepared for KYC via wallet", walletStateData(false, false, "pending")), nil},
			example{"already", 200, env(200, "user_already_prepared", "User already prepared for KYC", walletStateData(true, true, "approved")), nil},
			example{"link pending", 201, env(201, "user_prepared", "User prepared for KYC via wallet", linkData(false, "pending")), nil},
			example{"linked", 200, env(200, "user_already_prepared", "User already prepared for KYC", linkData(true, "linked")), nil},
			example{"wrong type", 400, env(400, "invalid_body", "signed_bytes must be a string", nil), nil},
			example{"missing", 400, env(400, "missing_params", "wallet, message and signed_bytes are required", nil), nil},
			example{"invalid wallet", 400, env(400, "invalid_wallet", "Wallet is not a valid EVM or Solana address", nil), nil},
			example{"invalid email", 400, env(400, "invalid_email", "email is not a valid address", nil), nil},
			example{"no challenge", 400, env(400, "challenge_not_found", "No matching challenge; request a new one", nil), nil},
			example{"challenge expired", 400, env(400, "challenge_expired", "Challenge expired, request a new one", nil), nil},
			example{"bad signature", 400, env(400, "invalid_signature", "Signature does not match the wallet", nil), nil},
			example{"conflict", 409, env(409, "email_wallet_conflict", "This email is already linked to another wallet", nil), nil},
			example{"server_failed", 500, env(500, "server_failed", "Server failed on KYC prepare", nil), nil},
		)},
		{method: "POST", path: "/kyc/create/verify_public_kyc", examples: append(common(true),
			example{"new", 201, env(201, "kyc_session_created", "KYC session created", session(nil)), nil},
			example{"existing", 201, env(201, "kyc_session_created", "KYC session created", session(map[string]any{"message": "didit_existing_kyc_session"})), nil},
			example{"existing, approved false", 201, env(201, "kyc_session_created", "KYC session created", session(map[string]any{"message": "didit_existing_kyc_session", "approved": false})), nil},
			example{"approved", 201, env(201, "kyc_session_created", "KYC session created", session(map[string]any{"message": "kyc_already_approved", "approved": true})), nil},
			example{"wrong type", 400, env(400, "invalid_body", "wallet must be a string", nil), nil},
			example{"missing", 400, env(400, "missing_params", "email or wallet is required", nil), nil},
			example{"invalid email", 400, env(400, "invalid_email", "email is not a valid address", nil), nil},
			example{"invalid wallet", 400, env(400, "invalid_wallet", "Wallet is not a valid EVM or Solana address", nil), nil},
			example{"mismatch", 400, env(400, "identity_mismatch", "email and wallet do not belong to the same user", nil), nil},
			example{"not prepared", 403, env(403, "user_not_prepared", "Complete KYC prepare and verify your email or wallet before starting a session", nil), nil},
			example{"not verified", 403, env(403, "identity_not_verified", "You must verify your email or wallet before starting KYC", nil), nil},
			example{"quota", 429, env(429, "verify_quota_exceeded", "Monthly KYC session quota exceeded", nil), nil},
			example{"server_failed", 500, env(500, "server_failed", "Server failed on KYC", nil), nil},
		)},
		{method: "POST", path: "/kyc/create/verify_aml", examples: []example{
			{"unknown kyc_type", 404, env(404, "method_not_found", "KYC method not found", nil), nil},
		}},
		{method: "GET", path: "/kyc/status", examples: append(common(false),
			example{"pending", 200, env(200, "kyc_status_retrieved", "KYC status retrieved", statusData("pending", "In Progress", nil)), nil},
			example{"awaiting user", 200, env(200, "kyc_status_retrieved", "KYC status retrieved", statusData("pending", "Awaiting User", nil)), nil},
			example{"in review", 200, env(200, "kyc_status_retrieved", "KYC status retrieved", statusData("in_review", "In Review", []any{ipInfo()})), nil},
			example{"approved", 200, env(200, "kyc_status_retrieved", "KYC status retrieved", statusData("approved", "Approved", []any{ipInfo(), nullIP})), nil},
			example{"declined, blocklisted", 200, env(200, "kyc_status_retrieved", "KYC status retrieved", blocked), nil},
			example{"expired", 200, env(200, "kyc_status_retrieved", "KYC status retrieved", statusData("expired", "Expired", nil)), nil},
			example{"abandoned", 200, env(200, "kyc_status_retrieved", "KYC status retrieved", statusData("abandoned", "Abandoned", nil)), nil},
			example{"kyc expired", 200, env(200, "kyc_status_retrieved", "KYC status retrieved", statusData("kyc_expired", "Kyc Expired", nil)), nil},
			example{"missing", 400, env(400, "missing_params", "email or wallet is required", nil), nil},
			example{"invalid email", 400, env(400, "invalid_email", "email is not a valid address", nil), nil},
			example{"invalid wallet", 400, env(400, "invalid_wallet", "Wallet is not a valid EVM or Solana address", nil), nil},
			example{"mismatch", 400, env(400, "identity_mismatch", "email and wallet do not belong to the same user", nil), nil},
			example{"user not found", 404, env(404, "user_not_found", "User not found", nil), nil},
			example{"kyc not found", 404, env(404, "kyc_not_found", "No KYC session found for this user", nil), nil},
			example{"server_failed", 500, env(500, "server_failed", "Server failed on KYC status", nil), nil},
		)},
		{method: "GET", path: "/config/products", examples: []example{
			{"on", 200, env(200, "products_retrieved", "Products retrieved", map[string]any{"kyc": true}), nil},
			{"off", 200, env(200, "products_retrieved", "Products retrieved", map[string]any{"kyc": false}), nil},
			{"invalid_api_key", 403, env(403, "invalid_api_key", "Invalid or missing API key", nil), nil},
			{"rate limited", 429, rateLimitBody, jsonHeader(rateLimitHeaders...)},
			{"server_error", 500, env(500, "server_error", "Server failed, try again later", nil), nil},
		}},
		{method: "POST", path: "/webhooks/didit", bareOnly: true, examples: []example{
			{"received", 200, env(200, "webhook_received", "Webhook received", nil), nil},
			{"invalid_body", 400, env(400, "invalid_body", "Request body must be a JSON object", nil), nil},
			{"wrong type", 400, env(400, "invalid_body", "session_id must be a string", nil), nil},
			{"bad signature", 401, env(401, "invalid_webhook_signature", "Invalid webhook signature", nil), nil},
			{"too large", 413, env(413, "payload_too_large", "Request body is too large", nil), nil},
			{"server_error", 500, env(500, "server_error", "Server failed, try again later", nil), nil},
			{"busy", 503, env(503, "server_busy", "Server busy, try again later", nil), jsonHeader("Retry-After", "1")},
		}},
		{method: "GET", path: "/healthz", bareOnly: true, examples: []example{
			{"ok", 200, `{"status":"ok"}`, nil},
		}},
		{method: "GET", path: "/readyz", bareOnly: true, examples: []example{
			{"ready", 200, `{"status":"ready"}`, nil},
			{"unavailable", 503, `{"status":"unavailable","error":"database: connection refused"}`, nil},
		}},
	}
}

func TestLoad(t *testing.T) {
	v := mustLoad(t)
	if v.doc.OpenAPI != "3.1.0" {
		t.Errorf("openapi = %q, want 3.1.0", v.doc.OpenAPI)
	}
	if v.doc.Info.Title != "kycgate" || v.doc.Info.Version != "0.1.0" {
		t.Errorf("info = %q %q", v.doc.Info.Title, v.doc.Info.Version)
	}
	if s := v.doc.Components.SecuritySchemes["ApiKey"]; s == nil || s.Value.In != "header" || s.Value.Name != "x-api-key" {
		t.Errorf("security scheme ApiKey is not the x-api-key header")
	}
	if v2, err := Load(); err != nil || v2 != v {
		t.Errorf("Load is not shared: %p %p %v", v, v2, err)
	}
}

// TestDocumentShape checks the rules the file follows that kin-openapi does not know.
func TestDocumentShape(t *testing.T) {
	v := mustLoad(t)
	paths := v.doc.Paths.Map()
	kyc := []string{"/kyc/prepare", "/security/email/send-otp", "/security/email/verify-otp",
		"/security/wallet/challenge", "/kyc/prepare-wallet", "/kyc/create/{kyc_type}", "/kyc/status", "/config/products"}
	for _, p := range kyc {
		bare, api := paths[p], paths["/api"+p]
		if bare == nil || api == nil {
			t.Errorf("%s: bare %v, /api %v; want both", p, bare != nil, api != nil)
			continue
		}
		for m, op := range bare.Operations() {
			twin := api.GetOperation(m)
			if twin == nil {
				t.Errorf("%s %s has no /api twin", m, p)
				continue
			}
			if op.OperationID == twin.OperationID {
				t.Errorf("%s %s: /api twin shares operationId %q", m, p, op.OperationID)
			}
			if !slices.Equal(sortedKeys(op.Responses.Map()), sortedKeys(twin.Responses.Map())) {
				t.Errorf("%s %s: /api twin documents other status codes", m, p)
			}
			// §1's cases every KYC endpoint can give.
			for _, code := range []string{"403", "429"} {
				if op.Responses.Value(code) == nil {
					t.Errorf("%s %s does not document %s", m, p, code)
				}
			}
			if op.RequestBody != nil {
				for _, code := range []string{"400", "413"} {
					if op.Responses.Value(code) == nil {
						t.Errorf("%s %s takes a body but does not document %s", m, p, code)
					}
				}
			}
			if op.Security != nil && len(*op.Security) == 0 {
				t.Errorf("%s %s is documented without an API key", m, p)
			}
		}
	}
	for p, item := range paths {
		for m, op := range item.Operations() {
			for code, r := range op.Responses.Map() {
				h := r.Value.Headers["X-Request-Id"]
				if h == nil || !h.Value.Required {
					t.Errorf("%s %s → %s does not require X-Request-Id", m, p, code)
				}
			}
		}
	}
	for _, name := range []string{"NotFound", "MethodNotAllowed"} {
		if h := v.doc.Components.Responses[name].Value.Headers["X-Request-Id"]; h == nil || !h.Value.Required {
			t.Errorf("components/responses/%s does not require X-Request-Id", name)
		}
	}
	// kyc_type must stay open so that the 404 method_not_found answer validates.
	create := paths["/kyc/create/{kyc_type}"].Post
	if p := create.Parameters.GetByInAndName("path", "kyc_type"); p == nil || len(p.Schema.Value.Enum) != 0 || p.Schema.Value.Const != nil {
		t.Errorf("kyc_type must be a documented free string, got %+v", p)
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func TestDocumentedResponsesPass(t *testing.T) {
	v := mustLoad(t)
	n := 0
	for _, ep := range endpoints() {
		paths := []string{ep.path}
		if !ep.bareOnly {
			paths = append(paths, "/api"+ep.path)
		}
		for _, path := range paths {
			for _, ex := range ep.examples {
				req := httptest.NewRequest(ep.method, path, nil)
				if err := v.Check(req, ex.status, ex.headers(), []byte(ex.body)); err != nil {
					t.Errorf("%s %s %s: %v", ep.method, path, ex.name, err)
				}
				n++
			}
		}
	}
	t.Logf("%d documented responses pass", n)
}

// TestEveryDocumentedCaseHasAnExample keeps the examples above in step with the file:
// a case added to the YAML without an example here fails.
func TestEveryDocumentedCaseHasAnExample(t *testing.T) {
	v := mustLoad(t)
	seen := map[Case]bool{}
	for _, ep := range endpoints() {
		for _, ex := range ep.examples {
			var e struct {
				StatusCode int    `json:"statusCode"`
				Status     string `json:"status"`
				Message    string `json:"message"`
			}
			if json.Unmarshal([]byte(ex.body), &e) == nil && e.StatusCode != 0 {
				seen[Case{e.StatusCode, e.Status, e.Message}] = true
				seen[Case{e.StatusCode, e.Status, ""}] = true
			}
		}
	}
	// The two generic answers have their own tests below.
	seen[Case{404, "not_found", "Route not found"}] = true
	seen[Case{405, "method_not_allowed", "Method not allowed"}] = true
	for _, c := range v.Cases() {
		if !seen[c] {
			t.Errorf("no example for documented case %+v", c)
		}
	}
}

func TestUnknownRoutesAndMethods(t *testing.T) {
	v := mustLoad(t)
	notFound := env(404, "not_found", "Route not found", nil)
	notAllowed := env(405, "method_not_allowed", "Method not allowed", nil)
	allow := jsonHeader("Allow", "POST")
	pass := []struct {
		method, path string
		status       int
		body         string
		header       http.Header
	}{
		{"GET", "/nope", 404, notFound, nil},
		{"POST", "/api/kyc/nope", 404, notFound, nil},
		{"POST", "/kyc/prepare/", 404, notFound, nil},
		{"GET", "/api", 404, `{"statusCode":404,"success":false,"status":"not_found","message":"Route not found","details":"GET /api"}`, nil},
		{"GET", "/kyc/prepare", 405, notAllowed, allow},
		{"DELETE", "/api/kyc/status", 405, notAllowed, jsonHeader("Allow", "GET, HEAD")},
		{"GET", "/kyc/create/verify_public_kyc", 405, notAllowed, allow},
		{"POST", "/healthz", 405, notAllowed, jsonHeader("Allow", "GET, HEAD")},
		{"GET", "/webhooks/didit", 405, notAllowed, allow},
		{"HEAD", "/healthz", 200, "", jsonHeader()},
	}
	for _, c := range pass {
		h := c.header
		if h == nil {
			h = jsonHeader()
		}
		if err := v.Check(httptest.NewRequest(c.method, c.path, nil), c.status, h, []byte(c.body)); err != nil {
			t.Errorf("%s %s → %d: %v", c.method, c.path, c.status, err)
		}
	}
}

func TestUndocumentedResponsesFail(t *testing.T) {
	v := mustLoad(t)
	prepared := env(201, "user_prepared", "User prepared for KYC, please verify your email", nil)
	plain := http.Header{"Content-Type": {"text/plain; charset=utf-8"}, "X-Request-Id": {"r"}}
	noID := http.Header{"Content-Type": {"application/json"}}
	fail := []struct {
		name, method, path string
		status             int
		body               string
		header             http.Header
	}{
		// status strings and messages
		{"wrong status string", "POST", "/kyc/prepare", 201, env(201, "user_created", "User prepared for KYC, please verify your email", nil), nil},
		{"wrong message", "POST", "/kyc/prepare", 201, env(201, "user_prepared", "User prepared", nil), nil},
		{"message of another case", "POST", "/kyc/prepare", 400, env(400, "missing_params", "wallet is required", nil), nil},
		{"status of another endpoint", "POST", "/kyc/prepare", 400, env(400, "otp_invalid", "Invalid code", nil), nil},
		{"server_error where server_failed", "POST", "/kyc/prepare", 500, env(500, "server_error", "Server failed, try again later", nil), nil},
		{"server_failed where server_error", "POST", "/security/email/send-otp", 500, env(500, "server_failed", "Server failed on KYC prepare", nil), nil},
		{"wallet message of the other endpoint", "POST", "/security/wallet/challenge", 400, env(400, "invalid_wallet", "Wallet is not a valid EVM or Solana address", nil), nil},
		{"invalid_body naming no field", "POST", "/kyc/prepare", 400, env(400, "invalid_body", "bad type", nil), nil},
		{"invalid_body naming another endpoint's field", "POST", "/kyc/prepare", 400, env(400, "invalid_body", "wallet must be a string", nil), nil},
		{"the challenge's invalid_wallet message on create", "POST", "/kyc/create/verify_public_kyc", 400, env(400, "invalid_wallet", "Wallet challenge failed", nil), nil},
		{"email_link of another value", "POST", "/kyc/prepare-wallet", 201, env(201, "user_prepared", "User prepared for KYC via wallet", linkData(false, "proven")), nil},
		{"email_link on prepare", "POST", "/kyc/prepare", 200, env(200, "user_already_prepared", "User already prepared for KYC", map[string]any{"email_verified": false, "kyc_approved": false, "kyc_status": "pending", "email_link": "pending"}), nil},
		{"prepare-wallet's conflict message on verify-otp", "POST", "/security/email/verify-otp", 409, env(409, "email_wallet_conflict", "This email is already linked to another wallet", nil), nil},
		{"verify-otp's conflict message on prepare-wallet", "POST", "/kyc/prepare-wallet", 409, env(409, "email_wallet_conflict", "This email and wallet cannot be linked: one already has another wallet or email, or both have KYC sessions", nil), nil},
		{"link conflict on send-otp", "POST", "/security/email/send-otp", 409, env(409, "email_wallet_conflict", "This email and wallet cannot be linked: one already has another wallet or email, or both have KYC sessions", nil), nil},
		{"product gate on products", "GET", "/config/products", 403, env(403, "product_not_enabled", "The kyc product is not enabled for this API key", nil), nil},
		{"method_not_found on status", "GET", "/kyc/status", 404, env(404, "method_not_found", "KYC method not found", nil), nil},
		// envelope shape
		{"data on an error", "POST", "/kyc/prepare", 400, env(400, "missing_params", "email is required", map[string]any{}), nil},
		{"details on a 400", "POST", "/kyc/prepare", 400, `{"statusCode":400,"success":false,"status":"missing_params","message":"email is required","details":"x"}`, nil},
		{"data where none is documented", "POST", "/security/email/send-otp", 201, env(201, "otp_sent", "Verification code sent to your email", map[string]any{"x": 1}), nil},
		{"statusCode differs from HTTP", "POST", "/kyc/prepare", 400, env(404, "missing_params", "email is required", nil), nil},
		{"success true on an error", "POST", "/kyc/prepare", 400, `{"statusCode":400,"success":true,"status":"missing_params","message":"email is required"}`, nil},
		{"statusCode as string", "POST", "/kyc/prepare", 201, `{"statusCode":"201","success":true,"status":"user_prepared","message":"User prepared for KYC, please verify your email"}`, nil},
		{"missing message", "POST", "/kyc/prepare", 201, `{"statusCode":201,"success":true,"status":"user_prepared"}`, nil},
		{"missing data", "POST", "/kyc/prepare", 200, env(200, "user_already_prepared", "User already prepared for KYC", nil), nil},
		{"extra field", "POST", "/kyc/prepare", 201, `{"statusCode":201,"success":true,"status":"user_prepared","message":"User prepared for KYC, please verify your email","error":null}`, nil},
		{"not JSON", "POST", "/kyc/prepare", 201, `statusCode: 201`, nil},
		{"empty body", "POST", "/kyc/prepare", 201, ``, nil},
		// data
		{"missing kyc_status", "POST", "/kyc/prepare", 200, env(200, "user_already_prepared", "User already prepared for KYC", map[string]any{"email_verified": true, "kyc_approved": false}), nil},
		{"kyc_approved disagrees", "POST", "/kyc/prepare", 200, env(200, "user_already_prepared", "User already prepared for KYC", stateData(true, true, "pending")), nil},
		{"unknown kyc_status", "POST", "/kyc/prepare", 200, env(200, "user_already_prepared", "User already prepared for KYC", stateData(true, false, "Pending")), nil},
		{"wallet_verified false", "POST", "/kyc/prepare-wallet", 201, env(201, "user_prepared", "User prepared for KYC via wallet", map[string]any{"email_verified": false, "wallet_verified": false, "kyc_approved": false, "kyc_status": "pending"}), nil},
		{"email prepare message on wallet", "POST", "/kyc/prepare-wallet", 201, env(201, "user_prepared", "User prepared for KYC, please verify your email", walletStateData(false, false, "pending")), nil},
		{"unknown chain", "POST", "/security/wallet/challenge", 201, env(201, "challenge_created", "Sign this message with your wallet", map[string]any{"message": challengeMessage(evmWallet, "evm"), "wallet": evmWallet, "wallet_chain": "btc"}), nil},
		{"chain disagrees", "POST", "/security/wallet/challenge", 201, env(201, "challenge_created", "Sign this message with your wallet", map[string]any{"message": challengeMessage(evmWallet, "evm"), "wallet": evmWallet, "wallet_chain": "solana"}), nil},
		{"challenge without expiry", "POST", "/security/wallet/challenge", 201, env(201, "challenge_created", "Sign this message with your wallet", map[string]any{"message": "StarkFi KYC verification\nWallet: " + evmWallet, "wallet": evmWallet, "wallet_chain": "evm"}), nil},
		{"approved without approved", "POST", "/kyc/create/verify_public_kyc", 201, env(201, "kyc_session_created", "KYC session created", session(map[string]any{"message": "kyc_already_approved"})), nil},
		{"approved true on new", "POST", "/kyc/create/verify_public_kyc", 201, env(201, "kyc_session_created", "KYC session created", session(map[string]any{"approved": true})), nil},
		{"unknown data.message", "POST", "/kyc/create/verify_public_kyc", 201, env(201, "kyc_session_created", "KYC session created", session(map[string]any{"message": "created"})), nil},
		{"session without url", "POST", "/kyc/create/verify_public_kyc", 201, env(201, "kyc_session_created", "KYC session created", session(map[string]any{"session": map[string]any{"session_id": "x"}})), nil},
		{"status and session_status disagree", "GET", "/kyc/status", 200, env(200, "kyc_status_retrieved", "KYC status retrieved", statusData("approved", "Declined", nil)), nil},
		{"unknown session_status", "GET", "/kyc/status", 200, env(200, "kyc_status_retrieved", "KYC status retrieved", statusData("pending", "Pending", nil)), nil},
		{"ip_info null", "GET", "/kyc/status", 200, env(200, "kyc_status_retrieved", "KYC status retrieved", func() map[string]any { d := statusData("pending", "In Progress", nil); d["ip_info"] = nil; return d }()), nil},
		{"ip_info item incomplete", "GET", "/kyc/status", 200, env(200, "kyc_status_retrieved", "KYC status retrieved", statusData("pending", "In Progress", []any{map[string]any{"ip_address": "203.0.113.7"}})), nil},
		{"products kyc not bool", "GET", "/config/products", 200, env(200, "products_retrieved", "Products retrieved", map[string]any{"kyc": "yes"}), nil},
		{"healthz wrong case", "GET", "/healthz", 200, `{"status":"OK"}`, nil},
		// status codes and routes
		{"undocumented status code", "POST", "/kyc/prepare", 404, env(404, "user_not_found", "User not found", nil), nil},
		{"undocumented 409", "POST", "/security/wallet/challenge", 409, env(409, "email_wallet_conflict", "This email is already linked to another wallet", nil), nil},
		{"undocumented 302", "GET", "/kyc/status", 302, ``, nil},
		{"undocumented route", "GET", "/kyc/unknown", 200, `{}`, nil},
		{"undocumented /api/api route", "POST", "/api/api/kyc/prepare", 201, prepared, nil},
		{"webhook under /api", "POST", "/api/webhooks/didit", 200, env(200, "webhook_received", "Webhook received", nil), nil},
		{"unknown route, not 404", "GET", "/nope", 403, env(403, "invalid_api_key", "Invalid or missing API key", nil), nil},
		{"unknown route, wrong body", "GET", "/nope", 404, env(404, "user_not_found", "User not found", nil), nil},
		{"wrong method answered 200", "GET", "/kyc/prepare", 200, prepared, nil},
		{"wrong method answered 404", "GET", "/kyc/prepare", 404, env(404, "not_found", "Route not found", nil), nil},
		{"405 without Allow", "GET", "/kyc/prepare", 405, env(405, "method_not_allowed", "Method not allowed", nil), nil},
		{"405 as plain text", "GET", "/kyc/prepare", 405, "Method Not Allowed\n", http.Header{"Content-Type": {"text/plain; charset=utf-8"}, "X-Request-Id": {"r"}, "Allow": {"POST"}}},
		// headers and media types
		{"no X-Request-Id", "POST", "/kyc/prepare", 201, prepared, noID},
		{"text/plain envelope", "POST", "/kyc/prepare", 201, prepared, plain},
		{"rate limit without RateLimit-*", "POST", "/kyc/prepare", 429, rateLimitBody, jsonHeader("Retry-After", "1")},
		{"rate limit on send-otp without RateLimit-*", "POST", "/security/email/send-otp", 429, rateLimitBody, jsonHeader("Retry-After", "1")},
		{"rate limit on create without RateLimit-*", "POST", "/kyc/create/verify_public_kyc", 429, rateLimitBody, jsonHeader()},
		{"rate limit as envelope", "POST", "/kyc/prepare", 429, env(429, "rate_limited", "Too many requests", nil), jsonHeader(rateLimitHeaders...)},
		{"rate limit, other docs", "POST", "/kyc/prepare", 429, `{"code":429,"message":"Too many requests. The limit is 600 request per minute and 10 requests per second.","docs":"https://docs.starkfi.io"}`, jsonHeader(rateLimitHeaders...)},
		{"rate limit, other wording", "POST", "/kyc/prepare", 429, `{"code":429,"message":"Too many requests. The limit is 600 requests per minute and 10 requests per second.","docs":"https://docs.starkfi.io/"}`, jsonHeader(rateLimitHeaders...)},
		{"rate limit with statusCode", "POST", "/kyc/prepare", 429, `{"code":429,"statusCode":429,"message":"Too many requests. The limit is 600 request per minute and 10 requests per second.","docs":"https://docs.starkfi.io/"}`, jsonHeader(rateLimitHeaders...)},
		{"rate limit, Retry-After a date", "POST", "/kyc/prepare", 429, rateLimitBody, jsonHeader("Retry-After", "Wed, 21 Oct 2015 07:28:00 GMT", "RateLimit-Limit", "600", "RateLimit-Remaining", "0", "RateLimit-Reset", "1")},
		{"otp send limit without Retry-After", "POST", "/security/email/send-otp", 429, env(429, "otp_send_rate_limited", "Please wait before requesting a new code", nil), nil},
	}
	for _, c := range fail {
		h := c.header
		if h == nil {
			h = jsonHeader()
		}
		err := v.Check(httptest.NewRequest(c.method, c.path, nil), c.status, h, []byte(c.body))
		if err == nil {
			t.Errorf("%s: %s %s → %d passed, want an error", c.name, c.method, c.path, c.status)
		} else if testing.Verbose() {
			t.Logf("%s: %v", c.name, err)
		}
	}
	t.Logf("%d undocumented responses rejected", len(fail))
}

func TestErrorNamesTheDocumentedCases(t *testing.T) {
	v := mustLoad(t)
	err := v.Check(httptest.NewRequest("POST", "/security/email/verify-otp", nil), 400, jsonHeader(),
		[]byte(env(400, "otp_invalid", "Wrong code", nil)))
	if err == nil {
		t.Fatal("want an error")
	}
	for _, want := range []string{"POST /security/email/verify-otp", "400", `otp_invalid "Invalid code"`, `otp_expired "Code expired, please request a new one"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), "Schema:") {
		t.Errorf("error carries a schema dump:\n%v", err)
	}
}

func TestStatuses(t *testing.T) {
	v := mustLoad(t)
	got := v.Statuses()
	want := map[string]bool{}
	for _, c := range specCases {
		want[c.Status] = true
	}
	for s := range want {
		if !got[s] {
			t.Errorf("Statuses() lacks %q", s)
		}
	}
	for s := range got {
		if !want[s] {
			t.Errorf("Statuses() has %q, which the spec does not name", s)
		}
	}
	// Not envelope statuses.
	for _, s := range []string{"ok", "ready", "unavailable", "pending", "approved"} {
		if got[s] {
			t.Errorf("Statuses() has %q", s)
		}
	}
	got["mutated"] = true
	if v.Statuses()["mutated"] {
		t.Error("Statuses() shares its map")
	}
}

func TestCasesAreTheSpecCases(t *testing.T) {
	v := mustLoad(t)
	documented := map[Case]bool{}
	for _, c := range v.Cases() {
		documented[c] = true
	}
	for _, c := range specCases {
		if !documented[c] {
			t.Errorf("spec case %+v is not in openapi.yaml", c)
		}
		delete(documented, c)
	}
	for c := range documented {
		t.Errorf("openapi.yaml has %+v, which the spec does not name", c)
	}
}

// TestDataMessages covers the strings §7 puts inside data rather than in the envelope.
func TestDataMessages(t *testing.T) {
	v := mustLoad(t)
	s := v.doc.Components.Schemas["KycSessionData"].Value.Properties["message"].Value
	var got []string
	for _, e := range s.Enum {
		got = append(got, e.(string))
	}
	slices.Sort(got)
	want := []string{"didit_create_kyc_session", "didit_existing_kyc_session", "kyc_already_approved"}
	if !slices.Equal(got, want) {
		t.Errorf("data.message enum = %v, want %v", got, want)
	}
	enum := func(name string) []string {
		var out []string
		for _, e := range v.doc.Components.Schemas[name].Value.Enum {
			out = append(out, e.(string))
		}
		return out
	}
	if got, want := enum("KycStatus"), []string{"pending", "in_review", "approved", "declined", "expired", "abandoned", "kyc_expired"}; !slices.Equal(got, want) {
		t.Errorf("KycStatus = %v, want %v", got, want)
	}
	if got, want := enum("DiditSessionStatus"), []string{"Not Started", "In Progress", "Approved", "Declined", "In Review", "Awaiting User", "Resubmitted", "Expired", "Abandoned", "Kyc Expired"}; !slices.Equal(got, want) {
		t.Errorf("DiditSessionStatus = %v, want %v", got, want)
	}
}

// TestCheckIsSafeForConcurrentUse runs every example from many goroutines at once, as
// parallel tests sharing one Validator do; run with -race.
func TestCheckIsSafeForConcurrentUse(t *testing.T) {
	v := mustLoad(t)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for _, ep := range endpoints() {
				for _, ex := range ep.examples {
					if err := v.Check(httptest.NewRequest(ep.method, ep.path, nil), ex.status, ex.headers(), []byte(ex.body)); err != nil {
						t.Errorf("%s %s %s: %v", ep.method, ep.path, ex.name, err)
					}
				}
			}
		})
	}
	wg.Wait()
}
