package main

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/kycgate/kycgate/internal/mail/mailtest"
)

// TestEmailPath walks docs/api.md §1–§4 and §9 through a running server: every
// documented status, on both path forms, with a real SMTP server.
func TestEmailPath(t *testing.T) {
	t.Parallel()
	mb := newMailbox(t)
	in := start(t, newEnv(t, mb.srv.URL()))
	_, key := in.tenant("Acme", "--rate-limit-per-minute", "0")

	for _, prefix := range []string{"", "/api"} {
		t.Run("paths"+prefix, func(t *testing.T) {
			email := fmt.Sprintf("Person%s@Example.COM ", strings.TrimPrefix(prefix, "/"))
			lower := strings.ToLower(strings.TrimSpace(email))
			p := func(path string) string { return prefix + path }

			// §2 prepare: created, then the resumable state.
			expect(t, in.call("POST", p("/kyc/prepare"), key, map[string]string{"email": email}), 201, "user_prepared",
				"User prepared for KYC, please verify your email")
			r := in.call("POST", p("/kyc/prepare"), key, map[string]string{"email": lower})
			expect(t, r, 200, "user_already_prepared", "User already prepared for KYC")
			var st struct {
				EmailVerified bool   `json:"email_verified"`
				KYCApproved   bool   `json:"kyc_approved"`
				KYCStatus     string `json:"kyc_status"`
			}
			r.data(t, &st)
			if st.EmailVerified || st.KYCApproved || st.KYCStatus != "pending" {
				t.Fatalf("fresh state = %+v", st)
			}

			// §4 before any code: otp_invalid.
			expect(t, in.call("POST", p("/security/email/verify-otp"), key, map[string]string{"email": lower, "code": "123456"}),
				400, "otp_invalid", "Invalid code")

			// §3 send, then the 60 s gap.
			expect(t, in.call("POST", p("/security/email/send-otp"), key, map[string]string{"email": email}), 201, "otp_sent",
				"Verification code sent to your email")
			code := mb.code(lower)
			r = in.call("POST", p("/security/email/send-otp"), key, map[string]string{"email": lower})
			expect(t, r, 429, "otp_send_rate_limited", "Please wait before requesting a new code")
			if ra, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || ra < 1 || ra > 60 {
				t.Fatalf("Retry-After = %q, want 1..60", r.Header.Get("Retry-After"))
			}

			// §4 wrong, then right, then used.
			wrong := "000000"
			if code == wrong {
				wrong = "111111"
			}
			expect(t, in.call("POST", p("/security/email/verify-otp"), key, map[string]string{"email": email, "code": wrong}),
				400, "otp_invalid", "Invalid code")
			expect(t, in.call("POST", p("/security/email/verify-otp"), key, map[string]string{"email": email, "code": code}),
				200, "email_verified", "Email verified successfully")
			expect(t, in.call("POST", p("/security/email/verify-otp"), key, map[string]string{"email": email, "code": code}),
				400, "email_already_verified", "Email is already verified")
			expect(t, in.call("POST", p("/security/email/send-otp"), key, map[string]string{"email": email}),
				400, "email_already_verified", "Email is already verified")
			r = in.call("POST", p("/kyc/prepare"), key, map[string]string{"email": email})
			r.data(t, &st)
			if !st.EmailVerified || st.KYCStatus != "pending" {
				t.Fatalf("verified state = %+v", st)
			}

			// Missing, empty, invalid, unknown.
			for _, path := range []string{"/kyc/prepare", "/security/email/send-otp"} {
				expect(t, in.call("POST", p(path), key, map[string]any{}), 400, "missing_params", "email is required")
				expect(t, in.call("POST", p(path), key, map[string]any{"email": ""}), 400, "missing_params", "email is required")
				expect(t, in.call("POST", p(path), key, map[string]any{"email": nil}), 400, "missing_params", "email is required")
				expect(t, in.call("POST", p(path), key, map[string]any{"email": "not-an-email"}), 400, "invalid_email", "email is not a valid address")
			}
			expect(t, in.call("POST", p("/security/email/verify-otp"), key, map[string]any{"email": lower}), 400, "missing_params", "email and code are required")
			expect(t, in.call("POST", p("/security/email/verify-otp"), key, map[string]any{"code": "123456"}), 400, "missing_params", "email and code are required")
			expect(t, in.call("POST", p("/security/email/verify-otp"), key, map[string]any{"email": "a@b", "code": "1"}), 400, "invalid_email")
			expect(t, in.call("POST", p("/security/email/send-otp"), key, map[string]string{"email": "nobody" + prefix[min(1, len(prefix)):] + "@example.com"}),
				404, "user_not_found", "User not found in whitelist")
			expect(t, in.call("POST", p("/security/email/verify-otp"), key, map[string]string{"email": "nobody@example.com", "code": "123456"}),
				404, "user_not_found", "User not found in whitelist")

			// §9.
			r = in.call("GET", p("/config/products"), key, nil)
			expect(t, r, 200, "products_retrieved", "Products retrieved")
			if string(r.Env.Data) != `{"kyc":true}` {
				t.Fatalf("products data = %s", r.Env.Data)
			}
		})
	}

	t.Run("bad requests", func(t *testing.T) {
		const objMsg = "Request body must be a JSON object"
		for _, body := range []string{"", "   ", "null", "[]", `"x"`, "12", "{", `{"email":"a@b.co"} trailing`, "not json"} {
			expect(t, in.call("POST", "/kyc/prepare", key, body), 400, "invalid_body", objMsg)
		}
		r := in.call("POST", "/kyc/prepare", key, `{"email": 42}`)
		expect(t, r, 400, "invalid_body")
		if !strings.Contains(r.Env.Message, "email") {
			t.Fatalf("wrong-type message %q does not name the field", r.Env.Message)
		}
		r = in.call("POST", "/security/email/verify-otp", key, `{"email":"a@example.com","code":123456}`)
		expect(t, r, 400, "invalid_body")
		if !strings.Contains(r.Env.Message, "code") {
			t.Fatalf("wrong-type message %q does not name the field", r.Env.Message)
		}
		// Unknown fields are ignored.
		expect(t, in.call("POST", "/kyc/prepare", key, `{"email":"extra@example.com","color":"blue","n":[1,2]}`), 201, "user_prepared")
		big := `{"email":"big@example.com","pad":"` + strings.Repeat("x", 70<<10) + `"}`
		expect(t, in.call("POST", "/kyc/prepare", key, big), 413, "payload_too_large", "Request body is too large")
		expect(t, in.call("GET", "/no/such/route", key, nil), 404, "not_found", "Route not found")
		expect(t, in.call("GET", "/api/kyc/nope", "", nil), 404, "not_found", "Route not found")
		r = in.call("GET", "/kyc/prepare", key, nil)
		expect(t, r, 405, "method_not_allowed", "Method not allowed")
		if r.Header.Get("Allow") != "POST" {
			t.Fatalf("Allow = %q", r.Header.Get("Allow"))
		}
		r = in.call("DELETE", "/api/config/products", key, nil)
		expect(t, r, 405, "method_not_allowed")
		if !strings.Contains(r.Header.Get("Allow"), "GET") {
			t.Fatalf("Allow = %q", r.Header.Get("Allow"))
		}
		if id := r.Header.Get("X-Request-Id"); id == "" {
			t.Fatal("no X-Request-Id")
		}
	})

	t.Run("api keys", func(t *testing.T) {
		body := map[string]string{"email": "k@example.com"}
		for _, k := range []string{"", "kg_unknown", strings.Repeat("k", 500)} {
			expect(t, in.call("POST", "/kyc/prepare", k, body), 403, "invalid_api_key", "Invalid or missing API key")
		}
		tid, _ := in.tenant("Rotating")
		out, err := in.cli("tenant", "key", "add", "--tenant", tid, "--json")
		if err != nil {
			t.Fatal(err)
		}
		keyID := regexp.MustCompile(`"key_id":"([^"]+)"`).FindStringSubmatch(out)
		newKey := regexp.MustCompile(`"api_key":"([^"]+)"`).FindStringSubmatch(out)
		if keyID == nil || newKey == nil {
			t.Fatalf("key add printed %q", out)
		}
		expect(t, in.call("GET", "/config/products", newKey[1], nil), 200, "products_retrieved")
		list, err := in.cli("tenant", "key", "list", "--tenant", tid, "--json")
		if err != nil || strings.Count(list, `"key_id"`) != 2 || !strings.Contains(list, keyID[1]) || strings.Contains(list, newKey[1]) {
			t.Fatalf("key list = %q, %v; want both key ids and no key", list, err)
		}
		if _, err := in.cli("tenant", "key", "revoke", "--tenant", tid, "--key", keyID[1]); err != nil {
			t.Fatal(err)
		}
		expect(t, in.call("GET", "/config/products", newKey[1], nil), 403, "invalid_api_key")
		if _, err := in.cli("tenant", "key", "revoke", "--tenant", tid, "--key", keyID[1]); err == nil {
			t.Fatal("revoking twice succeeded")
		}
	})

	t.Run("product gate", func(t *testing.T) {
		tid, k := in.tenant("NoKYC")
		if _, err := in.cli("tenant", "set-products", "--tenant", tid, "--kyc", "off"); err != nil {
			t.Fatal(err)
		}
		for _, path := range []string{"/kyc/prepare", "/api/security/email/send-otp", "/security/email/verify-otp"} {
			expect(t, in.call("POST", path, k, map[string]string{"email": "g@example.com", "code": "1"}),
				403, "product_not_enabled", "The kyc product is not enabled for this API key")
		}
		r := in.call("GET", "/config/products", k, nil)
		expect(t, r, 200, "products_retrieved")
		if string(r.Env.Data) != `{"kyc":false}` {
			t.Fatalf("products data = %s", r.Env.Data)
		}
	})

	t.Run("rate limit", func(t *testing.T) {
		_, k := in.tenant("Slow", "--rate-limit-per-minute", "1")
		expect(t, in.call("GET", "/config/products", k, nil), 200, "products_retrieved")
		// One per minute and one per second: the next request is over the
		// limit unless a minute boundary passed, so a few tries suffice.
		var r reply
		for range 5 {
			if r = in.call("GET", "/config/products", k, nil); r.Code == 429 {
				break
			}
		}
		if r.Code != 429 {
			t.Fatalf("never limited: %d %s", r.Code, r.Raw)
		}
		want := `{"code":429,"docs":"https://docs.starkfi.io/","message":"Too many requests. The limit is 1 request per minute and 1 requests per second."}`
		if strings.TrimSpace(string(r.Raw)) != want {
			t.Fatalf("429 body = %s\nwant %s", r.Raw, want)
		}
		for _, h := range []string{"Retry-After", "RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"} {
			if _, err := strconv.Atoi(r.Header.Get(h)); err != nil {
				t.Fatalf("header %s = %q", h, r.Header.Get(h))
			}
		}
		if r.Header.Get("RateLimit-Limit") != "1" || r.Header.Get("RateLimit-Remaining") != "0" {
			t.Fatalf("RateLimit headers %v", r.Header)
		}
	})

	t.Run("health", func(t *testing.T) {
		for _, p := range []string{"/healthz", "/readyz"} {
			r := in.call("GET", p, "", nil)
			if r.Code != 200 {
				t.Fatalf("%s = %d %s", p, r.Code, r.Raw)
			}
		}
		m := scrapeText(t, in.AdminURL, "")
		if !strings.Contains(m, `kycgate_http_requests_total{code="201",method="POST",route="/kyc/prepare"}`) ||
			!strings.Contains(m, `kycgate_http_request_duration_seconds_bucket{method="POST",route="/security/email/send-otp",status="2xx",le="+Inf"}`) {
			t.Fatalf("metrics lack the requests made:\n%s", m)
		}
	})

	t.Run("logs hold no secrets", func(t *testing.T) {
		logs := in.logs.String()
		for _, m := range mb.srv.Messages() {
			if c, err := m.Code(); err == nil && strings.Contains(logs, c) {
				t.Errorf("a code (%s) appears in the logs", c)
			}
		}
		if strings.Contains(logs, key) || strings.Contains(logs, key[3:13]) {
			t.Error("the API key appears in the logs")
		}
		for _, e := range []string{"person@example.com", "personapi@example.com"} {
			if strings.Contains(strings.ToLower(logs), e) {
				t.Errorf("full email %s appears in the logs", e)
			}
		}
	})
}

// TestTenantIsolation: enrollments and proofs are per tenant (docs/api.md §10).
func TestTenantIsolation(t *testing.T) {
	t.Parallel()
	mb := newMailbox(t)
	in := start(t, newEnv(t, mb.srv.URL()))
	_, a := in.tenant("A")
	_, b := in.tenant("B")
	const email = "shared@example.com"
	in.verifyEmail(mb, a, email)

	// B has never enrolled this person.
	expect(t, in.call("POST", "/security/email/send-otp", b, map[string]string{"email": email}), 404, "user_not_found")
	expect(t, in.call("POST", "/security/email/verify-otp", b, map[string]string{"email": email, "code": "123456"}), 404, "user_not_found")
	// B enrolls: a new enrollment, unverified, whatever A proved.
	expect(t, in.call("POST", "/kyc/prepare", b, map[string]string{"email": email}), 201, "user_prepared")
	r := in.call("POST", "/kyc/prepare", b, map[string]string{"email": email})
	var st struct {
		EmailVerified bool `json:"email_verified"`
	}
	r.data(t, &st)
	if st.EmailVerified {
		t.Fatal("tenant B sees tenant A's email proof")
	}
	// B's own send and verify work and do not disturb A.
	expect(t, in.call("POST", "/security/email/send-otp", b, map[string]string{"email": email}), 201, "otp_sent")
	code := mb.code(email)
	expect(t, in.call("POST", "/security/email/verify-otp", a, map[string]string{"email": email, "code": code}), 400, "email_already_verified")
	expect(t, in.call("POST", "/security/email/verify-otp", b, map[string]string{"email": email, "code": code}), 200, "email_verified")
}

// TestRestartKeepsCodes: a code sent before a restart verifies after it.
func TestRestartKeepsCodes(t *testing.T) {
	t.Parallel()
	mb := newMailbox(t)
	in := start(t, newEnv(t, mb.srv.URL()))
	_, key := in.tenant("Durable")
	const email = "durable@example.com"
	expect(t, in.call("POST", "/kyc/prepare", key, map[string]string{"email": email}), 201, "user_prepared")
	expect(t, in.call("POST", "/security/email/send-otp", key, map[string]string{"email": email}), 201, "otp_sent")
	code := mb.code(email)
	in.restart()
	// The generated secret, the key, the enrollment and the code all survived.
	expect(t, in.call("POST", "/security/email/verify-otp", key, map[string]string{"email": email, "code": code}), 200, "email_verified")
}

// TestConcurrentGuesses: 50 simultaneous wrong guesses count exactly 5,
// after which even the right code is refused.
func TestConcurrentGuesses(t *testing.T) {
	t.Parallel()
	mb := newMailbox(t)
	in := start(t, newEnv(t, mb.srv.URL()))
	_, key := in.tenant("Race", "--rate-limit-per-minute", "0")
	const email = "race@example.com"
	expect(t, in.call("POST", "/kyc/prepare", key, map[string]string{"email": email}), 201, "user_prepared")
	expect(t, in.call("POST", "/security/email/send-otp", key, map[string]string{"email": email}), 201, "otp_sent")
	code := mb.code(email)
	wrong := "000000"
	if code == wrong {
		wrong = "999999"
	}
	counts := map[string]int{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	gate := make(chan struct{})
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-gate
			r, err := in.try("POST", "/security/email/verify-otp", key, map[string]string{"email": email, "code": wrong})
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				counts["error: "+err.Error()]++
				return
			}
			counts[r.Env.Status]++
		}()
	}
	close(gate)
	wg.Wait()
	if counts["otp_invalid"] != 5 || counts["otp_max_attempts"] != 45 || len(counts) != 2 {
		t.Fatalf("outcomes %v, want 5 otp_invalid and 45 otp_max_attempts", counts)
	}
	expect(t, in.call("POST", "/security/email/verify-otp", key, map[string]string{"email": email, "code": code}),
		400, "otp_max_attempts", "Max attempts reached, please request a new code")
}

// TestConcurrentSends: simultaneous send-otp calls leave exactly one valid
// code (one mail; the others are refused by the 60 s rule).
func TestConcurrentSends(t *testing.T) {
	t.Parallel()
	mb := newMailbox(t)
	in := start(t, newEnv(t, mb.srv.URL()))
	_, key := in.tenant("Burst", "--rate-limit-per-minute", "0")
	const email = "burst@example.com"
	expect(t, in.call("POST", "/kyc/prepare", key, map[string]string{"email": email}), 201, "user_prepared")
	statuses := make(chan string, 20)
	var wg sync.WaitGroup
	gate := make(chan struct{})
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-gate
			r, err := in.try("POST", "/security/email/send-otp", key, map[string]string{"email": email})
			if err != nil {
				statuses <- err.Error()
				return
			}
			statuses <- r.Env.Status
		}()
	}
	close(gate)
	wg.Wait()
	close(statuses)
	got := map[string]int{}
	for s := range statuses {
		got[s]++
	}
	if got["otp_sent"] != 1 || got["otp_send_rate_limited"] != 19 {
		t.Fatalf("outcomes %v, want 1 otp_sent and 19 otp_send_rate_limited", got)
	}
	code := mb.code(email)
	if n := len(mb.srv.Messages()); n != 1 {
		t.Fatalf("%d mails delivered, want 1", n)
	}
	expect(t, in.call("POST", "/security/email/verify-otp", key, map[string]string{"email": email, "code": code}), 200, "email_verified")
}

// TestUndeliverableCode: when SMTP refuses the mail, send-otp answers 500
// server_error, no code stays valid, and the 60 s gap is given back.
func TestUndeliverableCode(t *testing.T) {
	t.Parallel()
	mb := newMailbox(t, mailtest.FailNext(1, 550, "mailbox unavailable"))
	in := start(t, newEnv(t, mb.srv.URL()))
	_, key := in.tenant("Bounce")
	const email = "bounce@example.com"
	expect(t, in.call("POST", "/kyc/prepare", key, map[string]string{"email": email}), 201, "user_prepared")
	expect(t, in.call("POST", "/security/email/send-otp", key, map[string]string{"email": email}), 500, "server_error",
		"Server failed, try again later")
	// Immediately allowed again, and this time delivered.
	expect(t, in.call("POST", "/security/email/send-otp", key, map[string]string{"email": email}), 201, "otp_sent")
	code := mb.code(email)
	expect(t, in.call("POST", "/security/email/verify-otp", key, map[string]string{"email": email, "code": code}), 200, "email_verified")
	if got := mb.srv.DataCommands(); got != 2 {
		t.Fatalf("%d DATA commands, want 2 (a permanent 550 is not retried)", got)
	}
}
