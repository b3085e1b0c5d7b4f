package main

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kycgate/kycgate/client"
)

// TestClient drives kycgate through the public Go client: the email path,
// the wallet path, a session approved in the simulator, and the errors as
// the client's sentinels. Every answer also passes the OpenAPI check.
func TestClient(t *testing.T) {
	t.Parallel()
	mb := newMailbox(t)
	in := start(t, newEnv(t, mb.srv.URL()))
	_, key := in.tenant("Acme", "--rate-limit-per-minute", "0")
	c := client.New(in.URL, key, client.WithHTTPClient(in.client))
	ctx := context.Background()

	t.Run("email", func(t *testing.T) {
		const email = "client@example.com"
		p, err := c.Prepare(ctx, email)
		if err != nil || !p.Created || p.State != nil {
			t.Fatalf("Prepare = %+v, %v; want created without state", p, err)
		}
		p, err = c.Prepare(ctx, email)
		if err != nil || p.Created || p.State == nil || p.State.EmailVerified || p.State.KYCStatus != "pending" {
			t.Fatalf("Prepare again = %+v, %v; want the state of an unverified user", p, err)
		}
		if _, err := c.CreateSession(ctx, client.KYCTypePublic, client.User{Email: email}); !errors.Is(err, client.ErrIdentityNotVerified) {
			t.Fatalf("CreateSession before verifying = %v, want ErrIdentityNotVerified", err)
		}
		if err := c.SendOTP(ctx, client.OTPRequest{Email: email}); err != nil {
			t.Fatal(err)
		}
		code := mb.code(email)
		err = c.SendOTP(ctx, client.OTPRequest{Email: email})
		var e *client.Error
		if !errors.Is(err, client.ErrOTPSendRateLimited) || !errors.As(err, &e) || e.HTTPStatus != 429 || e.RetryAfter <= 0 {
			t.Fatalf("second SendOTP = %#v, want ErrOTPSendRateLimited with Retry-After", err)
		}
		wrong := "000000"
		if code == wrong {
			wrong = "111111"
		}
		if err := c.VerifyOTP(ctx, client.OTPRequest{Email: email}, wrong); !errors.Is(err, client.ErrOTPInvalid) {
			t.Fatalf("VerifyOTP(wrong) = %v, want ErrOTPInvalid", err)
		}
		if err := c.VerifyOTP(ctx, client.OTPRequest{Email: email}, code); err != nil {
			t.Fatalf("VerifyOTP = %v", err)
		}
		s, err := c.CreateSession(ctx, client.KYCTypePublic, client.User{Email: email})
		if err != nil || s.ID == "" || s.URL == "" || s.Approved {
			t.Fatalf("CreateSession = %+v, %v", s, err)
		}
		st, err := c.Status(ctx, client.User{Email: email})
		if err != nil || st.SessionID != s.ID || st.Approved {
			t.Fatalf("Status = %+v, %v", st, err)
		}
		approveSession(t, in, s.ID)
		st, err = c.Status(ctx, client.User{Email: email})
		if err != nil || st.Status != "approved" || !st.Approved || st.SessionStatus != "Approved" {
			t.Fatalf("Status after approval = %+v, %v", st, err)
		}
		s2, err := c.CreateSession(ctx, client.KYCTypePublic, client.User{Email: email})
		if err != nil || !s2.Approved || s2.ID != s.ID {
			t.Fatalf("CreateSession after approval = %+v, %v; want the approved session", s2, err)
		}
	})

	t.Run("wallet", func(t *testing.T) {
		needSigner(t)
		w := testWallet(t, "evm", 1)
		ch, err := c.WalletChallenge(ctx, w.Address)
		if err != nil || ch.Chain != "evm" || ch.Message == "" {
			t.Fatalf("WalletChallenge = %+v, %v", ch, err)
		}
		proof := client.WalletProof{Wallet: w.Address, Message: ch.Message, SignedBytes: sign1(t, w, ch.Message)}
		p, err := c.PrepareWallet(ctx, proof)
		if err != nil || !p.Created || p.State == nil || p.State.WalletVerified == nil || !*p.State.WalletVerified {
			t.Fatalf("PrepareWallet = %+v, %v", p, err)
		}
		if _, err := c.PrepareWallet(ctx, proof); !errors.Is(err, client.ErrChallengeNotFound) {
			t.Fatalf("PrepareWallet with a used challenge = %v, want ErrChallengeNotFound", err)
		}
		if _, err := c.WalletChallenge(ctx, "0x1234"); !errors.Is(err, client.ErrInvalidWallet) {
			t.Fatalf("WalletChallenge(bad wallet) = %v, want ErrInvalidWallet", err)
		}
	})

	t.Run("key and product", func(t *testing.T) {
		on, err := c.Products(ctx)
		if err != nil || !on {
			t.Fatalf("Products = %v, %v", on, err)
		}
		bad := client.New(in.URL, "sk_wrong", client.WithHTTPClient(in.client))
		if _, err := bad.Status(ctx, client.User{Email: "x@example.com"}); !errors.Is(err, client.ErrInvalidAPIKey) {
			t.Fatalf("Status with a wrong key = %v, want ErrInvalidAPIKey", err)
		}
		if _, err := c.Status(ctx, client.User{Email: "nobody@example.com"}); !errors.Is(err, client.ErrUserNotFound) {
			t.Fatalf("Status of a stranger = %v, want ErrUserNotFound", err)
		}
	})
}

// TestClientRetryDoesNotRepeat: kycgate sends the code, the answer is
// lost on the way back (a proxy answers 504 after the request ran), and the client's retry carries the same Idempotency-Key: kycgate
// replays its answer instead of sending a second code (or answering 429
// for the 60 s gap, which is what a retry without the key gets).
func TestClientRetryDoesNotRepeat(t *testing.T) {
	t.Parallel()
	mb := newMailbox(t)
	in := start(t, newEnv(t, mb.srv.URL()))
	_, key := in.tenant("Acme", "--rate-limit-per-minute", "0")
	target, err := url.Parse(in.URL)
	if err != nil {
		t.Fatal(err)
	}
	var dropped atomic.Int32
	var keys sync.Map // Idempotency-Key → attempts seen
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if k := r.Header.Get("Idempotency-Key"); k != "" {
			n, _ := keys.LoadOrStore(k, new(atomic.Int32))
			n.(*atomic.Int32).Add(1)
		}
		if r.URL.Path != "/security/email/send-otp" || !dropped.CompareAndSwap(0, 1) {
			httputil.NewSingleHostReverseProxy(target).ServeHTTP(w, r)
			return
		}
		// Let the request run at kycgate, then lose its answer.
		out := r.Clone(r.Context())
		out.URL.Scheme, out.URL.Host, out.RequestURI = target.Scheme, target.Host, ""
		resp, err := in.client.Transport.RoundTrip(out)
		if err != nil {
			t.Errorf("proxy: %v", err)
			return
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			t.Errorf("first send-otp at kycgate answered %d", resp.StatusCode)
		}
		// A gateway that timed out waiting: Go's transport retries a
		// dropped connection by itself, so this is the loss only the
		// client's own retry recovers from.
		http.Error(w, "upstream timed out", http.StatusGatewayTimeout)
	}))
	defer proxy.Close()

	c := client.New(proxy.URL, key, client.WithMaxRetryWait(time.Second))
	ctx := context.Background()
	const email = "retry@example.com"
	if _, err := c.Prepare(ctx, email); err != nil {
		t.Fatal(err)
	}
	if err := c.SendOTP(ctx, client.OTPRequest{Email: email}); err != nil {
		t.Fatalf("SendOTP through a lost answer = %v, want the replayed 201", err)
	}
	if dropped.Load() != 1 {
		t.Fatal("the proxy lost no answer: the test proves nothing")
	}
	code := mb.code(email)
	var retried bool
	keys.Range(func(_, n any) bool {
		retried = retried || n.(*atomic.Int32).Load() == 2
		return true
	})
	if !retried {
		t.Error("no Idempotency-Key was sent twice: the retry did not reuse the key")
	}
	if err := c.VerifyOTP(ctx, client.OTPRequest{Email: email}, code); err != nil {
		t.Fatalf("VerifyOTP with the one code mailed = %v", err)
	}
	n := 0
	for _, m := range mb.srv.Messages() {
		if slices.Contains(m.To, email) {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d mails to %s, want 1", n, email)
	}
}
