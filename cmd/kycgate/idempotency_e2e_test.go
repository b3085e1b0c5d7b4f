package main

import (
	"bytes"
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kycgate/kycgate/internal/mail/mailtest"
)

func idemKey(k ...string) http.Header { return http.Header{"Idempotency-Key": k} }

// callKey is call with an Idempotency-Key.
func (in *instance) callKey(t *testing.T, path, apiKey, idem string, body any) reply {
	t.Helper()
	r, err := in.tryWith("POST", path, apiKey, body, idemKey(idem))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func expectReplay(t *testing.T, r, first reply) {
	t.Helper()
	if r.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("no Idempotent-Replayed: true on %d %s", r.Code, r.Raw)
	}
	if r.Code != first.Code || !bytes.Equal(r.Raw, first.Raw) || r.Header.Get("Content-Type") != first.Header.Get("Content-Type") {
		t.Fatalf("replay %d %s (%s), want %d %s (%s)", r.Code, r.Raw, r.Header.Get("Content-Type"),
			first.Code, first.Raw, first.Header.Get("Content-Type"))
	}
}

func expectFresh(t *testing.T, r reply) {
	t.Helper()
	if r.Header.Get("Idempotent-Replayed") != "" {
		t.Fatalf("a first answer says Idempotent-Replayed: %s", r.Raw)
	}
}

// TestIdempotentSendsAtOnce: 20 send-otp at once with one key. The first
// to claim it holds it while the mail server holds its message, so the 19
// others answer 409 with Retry-After (the key is in flight); once the mail
// is accepted the winner answers 201, a retry gets that 201 replayed, and
// exactly one mail was sent.
func TestIdempotentSendsAtOnce(t *testing.T) {
	t.Parallel()
	mb := newMailbox(t)
	in := start(t, newEnv(t, mb.srv.URL()))
	_, key := in.tenant("Retry", "--rate-limit-per-minute", "0")
	const email = "burst@example.com"
	expect(t, in.call("POST", "/kyc/prepare", key, map[string]string{"email": email}), 201, "user_prepared")

	first, _ := sendBurst(t, mb, 30*time.Second, func(int) (reply, error) {
		return in.tryWith("POST", "/security/email/send-otp", key, map[string]string{"email": email}, idemKey("burst-1"))
	})

	expectReplay(t, in.callKey(t, "/security/email/send-otp", key, "burst-1", map[string]string{"email": email}), first)
	mb.code(email)
	if n := mb.srv.DataCommands(); n != 1 {
		t.Fatalf("%d mails sent, want 1", n)
	}
	// A retry with another key is a new request, and the 60 s gap holds.
	expect(t, in.callKey(t, "/security/email/send-otp", key, "burst-2", map[string]string{"email": email}), 429, "otp_send_rate_limited")
}

// TestIdempotentReplay: what is replayed (2xx and 4xx, across a restart,
// under either mount, in either key form), what is refused (another
// request under the key: 422; malformed keys: 400) and that keys are the
// tenant's own.
func TestIdempotentReplay(t *testing.T) {
	t.Parallel()
	mb := newMailbox(t)
	in := start(t, newEnv(t, mb.srv.URL()))
	_, key := in.tenant("Replay", "--rate-limit-per-minute", "0")
	_, other := in.tenant("Other", "--rate-limit-per-minute", "0")
	const email = "replay@example.com"
	body := map[string]string{"email": email}

	first := in.callKey(t, "/kyc/prepare", key, "prep-1", body)
	expect(t, first, 201, "user_prepared")
	expectFresh(t, first)
	expectReplay(t, in.callKey(t, "/kyc/prepare", key, "prep-1", body), first)
	expectReplay(t, in.callKey(t, "/api/kyc/prepare", key, `"prep-1"`, body), first)
	// The same request without the key runs: prepare is already done.
	expect(t, in.call("POST", "/kyc/prepare", key, body), 200, "user_already_prepared")
	// Another tenant's key of the same name is its own.
	r := in.callKey(t, "/kyc/prepare", other, "prep-1", body)
	expect(t, r, 201, "user_prepared")
	expectFresh(t, r)

	// Another request under the key: body bytes, path.
	expect(t, in.callKey(t, "/kyc/prepare", key, "prep-1", `{"email": "replay@example.com"}`), 422, "idempotency_key_reused")
	expect(t, in.callKey(t, "/security/email/send-otp", key, "prep-1", body), 422, "idempotency_key_reused")

	// A 201 that mailed a code is replayed without mailing another.
	sent := in.callKey(t, "/security/email/send-otp", key, "send-1", body)
	expect(t, sent, 201, "otp_sent")
	code := mb.code(email)
	// A 4xx is kept too: the wrong code costs one attempt, not two.
	wrong := map[string]string{"email": email, "code": strings.Repeat(map[bool]string{true: "1", false: "0"}[code == "000000"], 6)}
	bad := in.callKey(t, "/security/email/verify-otp", key, "verify-bad", wrong)
	expect(t, bad, 400, "otp_invalid")

	in.restart()
	expectReplay(t, in.callKey(t, "/kyc/prepare", key, "prep-1", body), first)
	expectReplay(t, in.callKey(t, "/security/email/send-otp", key, "send-1", body), sent)
	expectReplay(t, in.callKey(t, "/security/email/verify-otp", key, "verify-bad", wrong), bad)
	if n := mb.srv.DataCommands(); n != 1 {
		t.Fatalf("%d mails sent, want 1", n)
	}
	ok := in.callKey(t, "/security/email/verify-otp", key, "verify-ok", map[string]string{"email": email, "code": code})
	expect(t, ok, 200, "email_verified")
	expectReplay(t, in.callKey(t, "/security/email/verify-otp", key, "verify-ok", map[string]string{"email": email, "code": code}), ok)

	// Malformed keys touch nothing.
	for name, h := range map[string]http.Header{
		"empty":        idemKey(""),
		"empty string": idemKey(`""`),
		"too long":     idemKey(strings.Repeat("k", 256)),
		"not ascii":    idemKey("clé"),
		"bad string":   idemKey(`"a\b"`),
		"two":          idemKey("a", "b"),
	} {
		r, err := in.tryWith("POST", "/kyc/prepare", key, map[string]string{"email": "fresh@example.com"}, h)
		if err != nil {
			t.Fatal(err)
		}
		if r.Code != 400 || r.Env.Status != "invalid_idempotency_key" {
			t.Errorf("%s: %d %s, want 400 invalid_idempotency_key", name, r.Code, r.Raw)
		}
	}
	expect(t, in.call("POST", "/kyc/prepare", key, map[string]string{"email": "fresh@example.com"}), 201, "user_prepared")
	// A bad API key answers before any key is looked at.
	r, err := in.tryWith("POST", "/kyc/prepare", "kg_wrong", body, idemKey(""))
	if err != nil {
		t.Fatal(err)
	}
	expect(t, r, 403, "invalid_api_key")
}

// TestIdempotentServerErrorRunsAgain: a 5xx is not kept; the retry with
// the same key runs again and this time delivers.
func TestIdempotentServerErrorRunsAgain(t *testing.T) {
	t.Parallel()
	mb := newMailbox(t, mailtest.FailNext(1, 550, "mailbox unavailable"))
	in := start(t, newEnv(t, mb.srv.URL()))
	_, key := in.tenant("Bounce", "--rate-limit-per-minute", "0")
	const email = "again@example.com"
	body := map[string]string{"email": email}
	expect(t, in.call("POST", "/kyc/prepare", key, body), 201, "user_prepared")
	expect(t, in.callKey(t, "/security/email/send-otp", key, "send", body), 500, "server_error")
	r := in.callKey(t, "/security/email/send-otp", key, "send", body)
	expect(t, r, 201, "otp_sent")
	expectFresh(t, r)
	mb.code(email)
	if n := mb.srv.DataCommands(); n != 2 {
		t.Fatalf("%d DATA commands, want 2 (the failed send and its retry)", n)
	}
	expectReplay(t, in.callKey(t, "/security/email/send-otp", key, "send", body), r)
}

// TestIdempotentAcrossReplicas: the key is shared by replicas, not kept
// per process. 20 send-otp with one key at once, spread over two
// replicas: the one that claims the key holds it while the mail server
// holds its message, the 19 others (on either replica) answer 409 with
// Retry-After; afterwards each replica replays the winner's 201, another
// body under the key is 422 at either, and one mail was sent.
func TestIdempotentAcrossReplicas(t *testing.T) {
	c := rpNewCluster(t)
	c.start(t, 2)
	_, key := c.tenant(t, "Retry", "--rate-limit-per-minute", "0")
	const email = "replicas-burst@example.com"
	body := map[string]string{"email": email}
	expect(t, c.pick(0).call("POST", "/kyc/prepare", key, body), 201, "user_prepared")

	first, refused := sendBurst(t, c.mail, 60*time.Second, func(i int) (reply, error) {
		return c.pick(i).tryWith("POST", "/security/email/send-otp", key, body, idemKey("burst-1"))
	})
	// Ten went to each replica and one won: both replicas refused some,
	// so the refusals came from the shared database, not one process.
	refusedAt := map[int]int{}
	for _, i := range refused {
		refusedAt[i%2]++
	}
	if refusedAt[0] < 9 || refusedAt[1] < 9 {
		t.Fatalf("409s by replica %v, want 9 or 10 at each", refusedAt)
	}

	for i := range 2 {
		expectReplay(t, c.pick(i).callKey(t, "/security/email/send-otp", key, "burst-1", body), first)
		expect(t, c.pick(i).callKey(t, "/security/email/send-otp", key, "burst-1", `{"email": "replicas-burst@example.com"}`),
			422, "idempotency_key_reused")
	}
	c.mail.code(email)
	if n := c.mail.srv.DataCommands(); n != 1 {
		t.Fatalf("%d mails sent, want 1", n)
	}
}

// sendBurst sends 20 requests at once through send(i), i = 0…19, all
// under one Idempotency-Key, while the mail server holds the first message
// it gets. The 19 that did not claim the key must answer 409
// idempotency_key_in_use with a Retry-After while the mail is held; then
// the mail is let go and the winner must answer 201 otp_sent, not
// replayed. It returns the winner's reply and the refused requests' i.
func sendBurst(t *testing.T, mb *mailbox, wait time.Duration, send func(i int) (reply, error)) (reply, []int) {
	t.Helper()
	inData, release := make(chan struct{}, 1), make(chan struct{})
	mb.srv.SetDataHook(func(ctx context.Context) error {
		inData <- struct{}{}
		select {
		case <-release:
		case <-ctx.Done():
		}
		return nil
	})
	defer mb.srv.SetDataHook(nil)
	type result struct {
		i   int
		r   reply
		err error
	}
	results := make(chan result, 20)
	gate := make(chan struct{})
	for i := range 20 {
		go func() {
			<-gate
			r, err := send(i)
			results <- result{i, r, err}
		}()
	}
	close(gate)
	deadline := time.After(wait)
	var refused []int
	for n := range 19 {
		select {
		case res := <-results:
			if res.err != nil {
				t.Fatal(res.err)
			}
			expect(t, res.r, 409, "idempotency_key_in_use")
			if ra, err := strconv.Atoi(res.r.Header.Get("Retry-After")); err != nil || ra < 1 {
				t.Fatalf("409 with Retry-After %q", res.r.Header.Get("Retry-After"))
			}
			refused = append(refused, res.i)
		case <-deadline:
			t.Fatalf("only %d of the 19 losers answered while the winner's mail was held", n)
		}
	}
	select {
	case <-inData:
	case <-deadline:
		t.Fatal("no mail reached the server")
	}
	close(release)
	first := <-results
	if first.err != nil {
		t.Fatal(first.err)
	}
	expect(t, first.r, 201, "otp_sent")
	expectFresh(t, first.r)
	return first.r, refused
}
