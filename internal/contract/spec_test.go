package contract

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
)

// specCases is every (HTTP status, status, message) the partner API can answer in its
// envelope, written out by hand: docs/api.md must list exactly these, and
// openapi.yaml must define them. A Message of "" stands for the wrong-type
// invalid_body, whose message names the field.
var specCases = []Case{
	// §1
	{400, "invalid_body", "Request body must be a JSON object"},
	{400, "invalid_body", ""},
	{413, "payload_too_large", "Request body is too large"},
	{400, "invalid_email", "email is not a valid address"},
	{404, "not_found", "Route not found"},
	{405, "method_not_allowed", "Method not allowed"},
	{403, "invalid_api_key", "Invalid or missing API key"},
	{403, "product_not_enabled", "The kyc product is not enabled for this API key"},
	// §2
	{201, "user_prepared", "User prepared for KYC, please verify your email"},
	{200, "user_already_prepared", "User already prepared for KYC"},
	{400, "missing_params", "email is required"},
	{500, "server_failed", "Server failed on KYC prepare"},
	// §3
	{201, "otp_sent", "Verification code sent to your email"},
	{400, "email_already_verified", "Email is already verified"},
	{404, "user_not_found", "User not found in whitelist"},
	{429, "otp_send_rate_limited", "Please wait before requesting a new code"},
	{500, "server_error", "Server failed, try again later"},
	// §4
	{200, "email_verified", "Email verified successfully"},
	{400, "missing_params", "email and code are required"},
	{400, "otp_invalid", "Invalid code"},
	{400, "otp_expired", "Code expired, please request a new one"},
	{400, "otp_max_attempts", "Max attempts reached, please request a new code"},
	{409, "email_wallet_conflict", "This email and wallet cannot be linked: one already has another wallet or email, or both have KYC sessions"},
	// §5
	{201, "challenge_created", "Sign this message with your wallet"},
	{400, "missing_params", "wallet is required"},
	{400, "invalid_wallet", "Wallet challenge failed"},
	{400, "invalid_purpose", "purpose must be kyc"},
	// §6
	{201, "user_prepared", "User prepared for KYC via wallet"},
	{400, "missing_params", "wallet, message and signed_bytes are required"},
	{400, "invalid_wallet", "Wallet is not a valid EVM or Solana address"},
	{400, "challenge_not_found", "No matching challenge; request a new one"},
	{400, "challenge_expired", "Challenge expired, request a new one"},
	{400, "invalid_signature", "Signature does not match the wallet"},
	{409, "email_wallet_conflict", "This email is already linked to another wallet"},
	// §7
	{201, "kyc_session_created", "KYC session created"},
	{400, "identity_mismatch", "email and wallet do not belong to the same user"},
	{404, "method_not_found", "KYC method not found"},
	{400, "missing_params", "email or wallet is required"},
	{403, "user_not_prepared", "Complete KYC prepare and verify your email or wallet before starting a session"},
	{403, "identity_not_verified", "You must verify your email or wallet before starting KYC"},
	{429, "verify_quota_exceeded", "Monthly KYC session quota exceeded"},
	{500, "server_failed", "Server failed on KYC"},
	// §8
	{200, "kyc_status_retrieved", "KYC status retrieved"},
	{404, "user_not_found", "User not found"},
	{404, "kyc_not_found", "No KYC session found for this user"},
	{500, "server_failed", "Server failed on KYC status"},
	// §9
	{200, "products_retrieved", "Products retrieved"},
	// §11, the Didit webhook
	{200, "webhook_received", "Webhook received"},
	{401, "invalid_webhook_signature", "Invalid webhook signature"},
	{503, "server_busy", "Server busy, try again later"},
	// Idempotency-Key, kycgate's own: the OpenAPI file defines its answers
	{400, "invalid_idempotency_key", ""},
	{409, "idempotency_key_in_use", "A request with this Idempotency-Key is still running"},
	{422, "idempotency_key_reused", "Idempotency-Key was already used for a different request"},
}

// docPath is docs/api.md, found from the test's directory up to the module root.
func docPath(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, "docs", "api.md")
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test directory")
		}
		dir = parent
	}
}

func readDoc(t *testing.T) []byte {
	t.Helper()
	text, err := os.ReadFile(docPath(t))
	if err != nil {
		t.Fatalf("the API contract must be in the repository: %v", err)
	}
	return text
}

var (
	// A table row's status cell: the first `snake_case` token in it.
	cellStatus = regexp.MustCompile("`([a-z][a-z0-9_]*)`")
	// A message cell: `"…"`.
	cellMessage = regexp.MustCompile("`\"([^\"`]+)\"`")
	// Prose such as **403** `invalid_api_key` / `"Invalid or missing API key"`, across lines.
	prosePair = regexp.MustCompile("(?:\\*\\*(\\d{3})\\*\\*\\s*|(\\d{3})\\s+)?`([a-z][a-z0-9_]*)`\\s*/\\s*`\"([^\"`]+)\"`")
	httpCell  = regexp.MustCompile(`^\s*(\d{3})\s*$`)
)

// parseSpec pulls the (HTTP, status, message) cases out of docs/api.md's tables and prose.
// HTTP is 0 where the prose does not say it next to the pair.
func parseSpec(text string) []Case {
	var out []Case
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "|") {
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		for i, cell := range cells {
			m := httpCell.FindStringSubmatch(cell)
			if m == nil || i+1 >= len(cells) {
				continue
			}
			st := cellStatus.FindStringSubmatch(cells[i+1])
			if st == nil {
				break
			}
			code, _ := strconv.Atoi(m[1])
			c := Case{HTTP: code, Status: st[1]}
			if i+2 < len(cells) {
				if msg := cellMessage.FindStringSubmatch(cells[i+2]); msg != nil {
					c.Message = msg[1]
				}
			}
			out = append(out, c)
			break
		}
	}
	for _, m := range prosePair.FindAllStringSubmatch(text, -1) {
		code, _ := strconv.Atoi(m[1] + m[2])
		out = append(out, Case{HTTP: code, Status: m[3], Message: m[4]})
	}
	return out
}

func TestSpecParseRecognisesTheForms(t *testing.T) {
	text := "| 201 | `user_prepared` | `\"User prepared for KYC, please verify your email\"` | — |\n" +
		"| a field has the wrong JSON type | 400 | `invalid_body` | names the field |\n" +
		"| 429 | `otp_send_rate_limited` (DECISION) | `\"Please wait before requesting a new code\"` (+ `Retry-After`) |\n" +
		"3. no user for this tenant → **403** `user_not_prepared` /\n   `\"Complete KYC prepare\"`\n" +
		"200 `products_retrieved` / `\"Products retrieved\"`, `data`\n"
	got := parseSpec(text)
	want := []Case{
		{201, "user_prepared", "User prepared for KYC, please verify your email"},
		{400, "invalid_body", ""},
		{429, "otp_send_rate_limited", "Please wait before requesting a new code"},
		{403, "user_not_prepared", "Complete KYC prepare"},
		{200, "products_retrieved", "Products retrieved"},
	}
	if len(got) != len(want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("case %d: got %+v, want %+v", i, got[i], want[i])
		}
	}
}

// TestSpecDocListsExactlySpecCases holds docs/api.md and specCases to each other: every
// case the page lists is in specCases, and every case in specCases is on the page.
func TestSpecDocListsExactlySpecCases(t *testing.T) {
	found := parseSpec(string(readDoc(t)))
	if len(found) < 40 {
		t.Fatalf("parsed only %d cases from docs/api.md; has its format changed?", len(found))
	}
	for _, d := range found {
		if !slices.ContainsFunc(specCases, func(c Case) bool { return sameCase(d, c) }) {
			t.Errorf("docs/api.md lists %+v, which is not in specCases", d)
		}
	}
	for _, c := range specCases {
		if !slices.ContainsFunc(found, func(d Case) bool { return sameCase(d, c) }) {
			t.Errorf("specCases has %+v, which docs/api.md does not list", c)
		}
	}
	t.Logf("%d cases parsed from docs/api.md", len(found))
}

// sameCase reports whether d, parsed from the page, is c. The page's prose may
// leave the HTTP status out (0).
func sameCase(d, c Case) bool {
	return d.Status == c.Status && d.Message == c.Message && (d.HTTP == 0 || d.HTTP == c.HTTP)
}

// TestSpecDocCasesAreInOpenAPI holds docs/api.md and openapi.yaml to each other: every
// case the page lists is defined in the YAML, and every fixed message the YAML
// defines is quoted on the page.
func TestSpecDocCasesAreInOpenAPI(t *testing.T) {
	text := readDoc(t)
	v := mustLoad(t)
	cases := v.Cases()
	statuses := v.Statuses()
	for _, want := range parseSpec(string(text)) {
		if !statuses[want.Status] {
			t.Errorf("docs/api.md status %q is not in openapi.yaml", want.Status)
			continue
		}
		ok := slices.ContainsFunc(cases, func(c Case) bool {
			return c.Status == want.Status && (want.Message == "" || c.Message == want.Message) && (want.HTTP == 0 || c.HTTP == want.HTTP)
		})
		if !ok {
			t.Errorf("docs/api.md case %+v is not in openapi.yaml", want)
		}
	}
	for _, c := range cases {
		if c.Message != "" && !bytes.Contains(text, []byte(`"`+c.Message+`"`)) {
			t.Errorf("openapi.yaml message %q (%s) is not quoted in docs/api.md", c.Message, c.Status)
		}
	}
}

var (
	// A section heading naming its endpoint: ## 7. `POST /kyc/create/{kyc_type}` — …
	endpointHeading = regexp.MustCompile("^#{2,3} .*`(GET|POST) (/[^`?\\s]+)")
	anyHeading      = regexp.MustCompile(`^#{2,3} `)
)

// TestSpecDocExamples runs every example answer in docs/api.md (a json block with a
// statusCode) through Check, as the answer of the endpoint its section is about, so
// the examples cannot drift from openapi.yaml.
func TestSpecDocExamples(t *testing.T) {
	v := mustLoad(t)
	var method, path string
	var block []string
	inJSON, checked := false, 0
	for _, line := range strings.Split(string(readDoc(t)), "\n") {
		trimmed := strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(trimmed, "```json"):
			inJSON, block = true, nil
		case inJSON && trimmed == "```":
			inJSON = false
			body := []byte(strings.Join(block, "\n"))
			var e struct {
				StatusCode int `json:"statusCode"`
			}
			if err := json.Unmarshal(body, &e); err != nil {
				t.Errorf("an example under %s %s is not JSON: %v", method, path, err)
				continue
			}
			if e.StatusCode == 0 || path == "" {
				continue
			}
			if err := v.Check(httptest.NewRequest(method, path, nil), e.StatusCode, jsonHeader(), body); err != nil {
				t.Error(err)
			}
			checked++
		case inJSON:
			block = append(block, line)
		case anyHeading.MatchString(line):
			method, path = "", ""
			if m := endpointHeading.FindStringSubmatch(line); m != nil {
				method, path = m[1], strings.ReplaceAll(m[2], "{kyc_type}", "verify_public_kyc")
			}
		}
	}
	if checked < 5 {
		t.Errorf("only %d example answers checked; has the page's format changed?", checked)
	}
	t.Logf("%d example answers checked", checked)
}

// The document's webhooks accept what kycgate sends and refuse what it
// must not.
func TestWebhookSchemas(t *testing.T) {
	v, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	good := map[string]string{
		"kyc.session.created": `{"type":"kyc.session.created","timestamp":"2026-01-02T03:04:05.123Z","data":{"session_id":"s","session_url":"https://x","email":"a@b.c"}}`,
		"kyc.status.updated": `{"type":"kyc.status.updated","timestamp":"2026-01-02T03:04:05Z","data":{"status":"approved","approved":true,` +
			`"session_id":"s","session_status":"Approved","session_url":"u","ip_info":[],"is_blocklisted":false,"wallet":"0xab"}}`,
		"email.verified":  `{"type":"email.verified","timestamp":"2026-01-02T03:04:05Z","data":{"email":"a@b.c"}}`,
		"wallet.verified": `{"type":"wallet.verified","timestamp":"2026-01-02T03:04:05Z","data":{"wallet":"0xab","chain":"evm"}}`,
		"identity.linked": `{"type":"identity.linked","timestamp":"2026-01-02T03:04:05Z","data":{"email":"a@b.c","wallet":"0xab"}}`,
	}
	for typ, body := range good {
		if err := v.CheckWebhook(typ, []byte(body)); err != nil {
			t.Errorf("%s: %v", typ, err)
		}
	}
	bad := map[string]string{
		"kyc.status.updated": `{"type":"kyc.status.updated","timestamp":"2026-01-02T03:04:05Z","data":{"status":"approved"}}`,
		"email.verified":     `{"type":"wallet.verified","timestamp":"2026-01-02T03:04:05Z","data":{"email":"a@b.c"}}`,
		"identity.linked":    `{"type":"identity.linked","timestamp":"2026-01-02T03:04:05Z","data":{"email":"a@b.c"}}`,
	}
	for typ, body := range bad {
		if err := v.CheckWebhook(typ, []byte(body)); err == nil {
			t.Errorf("%s accepted %s", typ, body)
		}
	}
	if err := v.CheckWebhook("kyc.nope", []byte(`{}`)); err == nil {
		t.Error("an undocumented webhook was accepted")
	}
}

// TestIdempotencyKeyOnEveryPartnerPOST: every partner POST in the OpenAPI
// file (both mounts) declares the Idempotency-Key header and its 409 and
// 422 answers, so generated clients can send the one and expect the
// others. The Didit webhook (signed by Didit, deduplicated by its event
// id) and the admin API do not take it.
func TestIdempotencyKeyOnEveryPartnerPOST(t *testing.T) {
	v := mustLoad(t)
	n := 0
	for path, item := range v.doc.Paths.Map() {
		op := item.Post
		if op == nil || strings.HasPrefix(path, "/admin/") || strings.HasSuffix(path, "/webhooks/didit") {
			continue
		}
		n++
		var header bool
		for _, p := range append(append(openapi3.Parameters{}, item.Parameters...), op.Parameters...) {
			if p.Value != nil && p.Value.In == openapi3.ParameterInHeader && strings.EqualFold(p.Value.Name, "Idempotency-Key") {
				header = true
			}
		}
		if !header {
			t.Errorf("POST %s does not declare the Idempotency-Key header", path)
		}
		for _, code := range []int{409, 422} {
			if op.Responses.Status(code) == nil {
				t.Errorf("POST %s does not document its %d (Idempotency-Key)", path, code)
			}
		}
	}
	if n != 12 {
		t.Errorf("%d partner POSTs in the OpenAPI file, want 12 (six, under / and /api)", n)
	}
}
